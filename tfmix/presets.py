"""The zoo: a registry of presets and their published artefacts.

Each preset is a recipe (model, dataset, hyperparameters: what
`scripts/train_zoo.py PRESET` trains) plus, once published, a directory
`zoo/<preset>/` with

- `model.keras`: config and weights (no optimizer state) for fine-tuning;
- `saved_model/`: the SavedModel with the TF Serving signatures;
- `card.json` and `README.md`: what was trained, how long, with which seed,
  and every metric with the command that measured it; `samples.png`;
- `manifest.json`: every other file with its size and sha256.

`preset_utils` resolves handles (names, directories, URLs, `hf://`) and
checks each file against the preset's `manifest.json`.

Example:
>>> model = tfmix.load("gmvae_mnist")  # doctest: +SKIP
>>> model = tfmix.load("https://example.org/zoo/gmvae_mnist/")  # doctest: +SKIP
>>> model = tfmix.GMVAE.from_preset("gmvae_mnist")  # doctest: +SKIP
"""

import os

from tfmix.utils import read_json

SHU_MLP = {"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}

#: name -> recipe and metadata (the registry).
PRESETS = {
    "vae_mnist": {
        "model": "vae",
        "class": "GaussVAE",
        "dataset": "mnist",
        "description": "Gauss-VAE baseline, 512-512 MLPs, z = 64, dynamically binarised MNIST",
        "model_kwargs": {"latent_dim": 64, "hidden_units": [512, 512]},
        "epochs": 100,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "gmvae_mnist": {
        "model": "gmvae",
        "class": "GMVAE",
        "dataset": "mnist",
        "description": "Real GMVAE (Shu 2016), K = 10, 512-512 MLPs, z = 64, dynamically binarised MNIST",
        # Adam's epsilon of Shu's code (`RuiShu/vae-clustering` `gmvae.py`: TF1's 1e-8 on his batch's
        # sum of 100 losses, 1e-10 on tfmix's mean), not Keras's 1e-7: three seeds could not tell the
        # two apart (BENCHMARKS.md section 10, "Adam's epsilon"), so the recipe follows his code
        "adam_epsilon": 1e-10,
        "model_kwargs": dict(SHU_MLP),
        "epochs": 1000,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "gmvae_fashion_mnist": {
        "model": "gmvae",
        "class": "GMVAE",
        "dataset": "fashion_mnist",
        "description": "Real GMVAE (Shu 2016), K = 10, 512-512 MLPs, z = 64, dynamically binarised Fashion-MNIST",
        "adam_epsilon": 1e-10,  # Shu's, as gmvae_mnist's
        "model_kwargs": dict(SHU_MLP),
        "epochs": 1000,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "catvae_mnist": {
        "model": "catvae",
        "class": "CatVAE",
        "dataset": "mnist",
        "description": "CatVAE (Pineau & Lelarge 2018), K = 10, delta = 2, lambda = 2, 400 hidden units, dynamically binarised MNIST",
        "model_kwargs": {"num_clusters": 10, "delta": 2, "prior_scale": 2.0, "hidden_units": [400]},
        "epochs": 40,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "infocatvae_mnist": {
        "model": "infocatvae",
        "class": "InfoCatVAE",
        "dataset": "mnist",
        "description": "InfoCatVAE (Pineau & Lelarge 2018), K = 10, delta = 2, lambda = 2, 400 hidden units, KL weight 10, dynamically binarised MNIST",
        "model_kwargs": {"num_clusters": 10, "delta": 2, "prior_scale": 2.0, "hidden_units": [400],
                         "kl_weight": 10.0},
        "epochs": 40,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "infocatvae_fashion_mnist": {
        "model": "infocatvae",
        "class": "InfoCatVAE",
        "dataset": "fashion_mnist",
        "description": "InfoCatVAE (Pineau & Lelarge 2018), K = 10, delta = 2, lambda = 2, 400 hidden units, "
                       "Gumbel-softmax information term, dynamically binarised Fashion-MNIST",
        # the published weights' term (relaxed codes, weight 1): the authors' term clustered
        # worse on Fashion-MNIST (BENCHMARKS.md section 10), so the preset keeps this one
        "model_kwargs": {"num_clusters": 10, "delta": 2, "prior_scale": 2.0, "hidden_units": [400],
                         "info_sampling": "relaxed", "info_weight": 1.0},
        "epochs": 40,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "nvae_mnist": {
        "model": "nvae",
        "class": "NVAE",
        "dataset": "mnist",
        "description": "N-VAE (Antoran & Miguel 2019), fully supervised, z_c = 6, z_s = 10, 512-512 MLPs, dynamically binarised MNIST",
        "model_kwargs": {"num_clusters": 10, "class_latent_dim": 6, "shared_latent_dim": 10, "hidden_units": [512, 512]},
        "num_labels": "all",
        "epochs": 100,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "nvae_fashion_mnist": {
        "model": "nvae",
        "class": "NVAE",
        "dataset": "fashion_mnist",
        "description": "N-VAE (Antoran & Miguel 2019), fully supervised, z_c = 6, z_s = 10, 512-512 MLPs, dynamically binarised Fashion-MNIST",
        "model_kwargs": {"num_clusters": 10, "class_latent_dim": 6, "shared_latent_dim": 10, "hidden_units": [512, 512]},
        "num_labels": "all",
        "epochs": 60,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "seed": 0,
    },
    "dlgmm_mnist": {
        "model": "dlgmm",
        "class": "DLGMM",
        "dataset": "binarized_mnist",
        "description": "DLGMM (Nalisnick, Hertel & Smyth 2016), 500d-3x25s: K = 3 Gaussian components, "
                       "Kumaraswamy stick-breaking weights, Dirichlet(1) prior, fixed binarised MNIST",
        "model_kwargs": {"num_clusters": 3, "latent_dim": 25, "hidden_units": [500]},
        "epochs": 2000,
        "patience": 30,
        "batch_size": 100,
        "learning_rate": 3e-4,
        "seed": 0,
    },
    "dldpmm_mnist": {
        "model": "dldpmm",
        "class": "DLDPMM",
        "dataset": "binarized_mnist",
        "description": "DLDPMM (Nalisnick, Hertel & Smyth 2016), 500d-17tx25s: Dirichlet process truncated at "
                       "T = 17 Gaussian components, Kumaraswamy sticks, fixed binarised MNIST",
        "model_kwargs": {"num_clusters": 17, "latent_dim": 25, "hidden_units": [500]},
        "epochs": 2000,
        "patience": 30,
        "batch_size": 100,
        "learning_rate": 3e-4,
        "seed": 0,
    },
    "sbvae_mnist": {
        "model": "sbvae",
        "class": "SBVAE",
        "dataset": "binarized_mnist",
        "description": "SB-VAE (Nalisnick & Smyth 2017), 500d-25t: 25 stick-breaking weights with Kumaraswamy "
                       "posteriors, GEM(5) prior, fixed binarised MNIST",
        "model_kwargs": {"num_clusters": 25, "hidden_units": [500]},
        "epochs": 2000,
        "patience": 30,
        "batch_size": 100,
        "learning_rate": 3e-4,
        "seed": 0,
    },
    "cagem0_mnist": {
        "model": "cagem",
        "class": "CaGeM",
        "dataset": "mnist",
        "description": "CaGeM-0 (Maaloe, Fraccaro & Winther 2017), unsupervised, K = 10, 500-500 MLPs, "
                       "z1 = 64, z2 = 32, no KL warm-up, dynamically binarised MNIST",
        "model_kwargs": {"num_clusters": 10, "latent_dim": 64, "top_latent_dim": 32, "hidden_units": [500, 500]},
        # no warm-up: with a 10-epoch linear KL warm-up q(y|x) and p(y|z2)
        # collapsed onto one cluster within the first epoch (KL_y -> 0, NMI 0),
        # without it y stays in use (session 4, 4-epoch runs on 10,000 images)
        "warmup_epochs": 0,
        "epochs": 1000,
        "batch_size": 100,
        "learning_rate": 3e-4,
        "seed": 0,
    },
    "cagem100_mnist": {
        "model": "cagem",
        "class": "CaGeM",
        "dataset": "mnist",
        "description": "CaGeM with 100 labels (Maaloe, Fraccaro & Winther 2017), K = 10, 500-500 MLPs, "
                       "z1 = 64, z2 = 32, KL warm-up, dynamically binarised MNIST",
        # the weighting of Maaloe et al.'s own semi-supervised code
        # (`larsmaaloee/auxiliary-deep-generative-models` `models/sdgmssl.py`,
        # the nearest public code to CaGeM's): the labelled and unlabelled batch
        # means weighted equally and the labelled cross-entropy by 0.1 N / N_l
        # = 60, not tfmix train's J^alpha default (the test error of q(y|x) rose
        # from 66.5% after epoch 1 to 94.9% after 18). The published weights
        # (30 epochs, session 8) used the per-batch weighting with cross-entropy
        # weight 1 (6.88% after 30 epochs then; with today's code 61.9% after 4,
        # against 15.7% with this one: BENCHMARKS.md section 10)
        "model_kwargs": {"num_clusters": 10, "latent_dim": 64, "top_latent_dim": 32, "hidden_units": [500, 500]},
        "weighting": "maaloe",
        "num_labels": 100,
        "warmup_epochs": 10,
        "epochs": 1000,
        "batch_size": 100,
        "learning_rate": 3e-4,
        "seed": 0,
    },
}


def check_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def zoo_dir():
    """`$TFMIX_ZOO`, else the `zoo/` directory beside the package."""
    env = os.environ.get("TFMIX_ZOO")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zoo")


def preset_dir(name, must_exist=True):
    check_preset(name)
    path = os.path.join(zoo_dir(), name)
    if must_exist and not os.path.exists(os.path.join(path, "card.json")):
        raise FileNotFoundError(
            f"preset {name!r} is registered but not published in {zoo_dir()!r} "
            f"(train it with scripts/train_zoo.py {name})"
        )
    return path


def published():
    """Names of the presets with artefacts in the zoo directory."""
    return [n for n in sorted(PRESETS) if os.path.exists(os.path.join(zoo_dir(), n, "card.json"))]


def card(handle):
    """The card (dict) of a preset handle (a name, directory or URL:
    `preset_utils.resolve`)."""
    from tfmix import preset_utils

    return read_json(os.path.join(preset_utils.resolve(handle), "card.json"))


def load(handle, compile=True):
    """The Keras model of a preset handle (a registered name, a preset
    directory, a file://, http(s):// or hf:// handle: `preset_utils`),
    ready to `fit` (Adam at the card's learning rate) unless `compile=False`."""
    return load_with_card(handle, compile=compile)[0]


def load_with_card(handle, compile=True):
    """(model, card) of a preset handle, resolved (and for a remote handle
    fetched and verified) once: `load` and `card` in one."""
    import keras

    import tfmix.models  # noqa: F401  (registers the classes with Keras)
    from tfmix import preset_utils

    directory = preset_utils.resolve(handle)
    path = os.path.join(directory, "model.keras")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise ValueError(f"cannot load preset {handle!r} from {path}: {type(e).__name__}: {e}") from None
    meta = read_json(os.path.join(directory, "card.json"), {})
    if compile:
        from tfmix.optimizers import FusedAdam

        hp = meta.get("hyperparameters", {})
        lr = hp.get("learning_rate") or PRESETS.get(handle, {}).get("learning_rate", 1e-3)
        model.compile(optimizer=FusedAdam(lr, epsilon=hp.get("adam_epsilon", 1e-7)))
    return model, meta
