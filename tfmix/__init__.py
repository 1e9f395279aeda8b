"""tfmix: a Keras 3 / TensorFlow Probability zoo of mixture VAEs.

The model classes are imported lazily, so that `tfmix --help` and argument
errors answer without loading TensorFlow.
"""

__version__ = "0.1.0"

_MODEL_EXPORTS = (
    "DilokthanakulGMVAE", "GaussVAE", "GMVAE", "M2", "MODELS", "ModifiedM2",
    "MixtureVAE", "MarginalMixtureVAE", "DLGMM", "DLDPMM", "SBVAE", "NVAE", "CaGeM", "CatVAE", "InfoCatVAE",
    "get_model_class",
)


def load(handle, compile=True):
    """A preset as a trainable Keras model: a registered name
    (`tfmix.load("gmvae_mnist")`), a preset directory or `.tar.gz`, or a
    `file://`, `http(s)://` or `hf://org/name` handle (`tfmix.preset_utils`)."""
    from tfmix import presets

    return presets.load(handle, compile=compile)


def save_to_preset(model, directory, card=None, **kwargs):
    """Writes `model` as a preset directory (model.keras, saved_model/,
    card.json, README.md, samples.png, manifest.json) that `tfmix.load`
    and `from_preset` accept; see `tfmix.publish.save_to_preset`."""
    from tfmix import publish

    return publish.save_to_preset(model, directory, card=card, **kwargs)


def __getattr__(name):
    if name in _MODEL_EXPORTS:
        from tfmix import models

        return getattr(models, name)
    if name == "FusedAdam":
        from tfmix.optimizers import FusedAdam

        return FusedAdam
    raise AttributeError(f"module 'tfmix' has no attribute {name!r}")


__all__ = list(_MODEL_EXPORTS) + ["FusedAdam", "load", "save_to_preset"]
