"""Publishing a trained run as a zoo preset (`scripts/publish_zoo.py`),
and a user's own model as a preset (`save_to_preset`).

`publish(preset, run_dir)` measures the run on its test split and writes it
with `save_to_preset`: the SavedModel (checked against the Keras model),
the card, a sample grid and the manifest, moved into `zoo/<preset>/` in one
rename, so the zoo never holds a half-written preset.
"""

import datetime
import os
import shutil
import sys

import numpy as np

from tfmix import evaluation, export, plots, preset_utils, presets, runs
from tfmix.models import get_model_class
from tfmix import data as tdata
from tfmix.utils import atomic_directory, atomic_path, atomic_write_json, read_json

METRIC_DOC = {
    "acc_hungarian": "test cluster accuracy, Hungarian (one-to-one) matching",
    "acc_majority": "test cluster accuracy, majority vote (many-to-one)",
    "nmi": "test normalised mutual information",
    "ari": "test adjusted Rand index",
    "knn_error_k3": "test kNN error on encode() (train-set latents), k = 3",
    "knn_error_k5": "same, k = 5",
    "knn_error_k10": "same, k = 10",
    "knn_sample_error_k3": "test kNN error on one posterior sample per image (sample_latent()), k = 3",
    "knn_sample_error_k5": "same, k = 5",
    "knn_sample_error_k10": "same, k = 10",
    "test_neg_elbo": "test negative ELBO (nats)",
    "test_log_likelihood": "test importance-weighted log-likelihood (nats)",
    "test_error": "test classification error of q(y|x)",
    "judged_generation": "share of generate(y) samples the judge classifier assigns to the class matched to y "
                         "by q(y|x) on the test set (at most the cluster accuracy)",
    "generation_purity": "the judge's labels of the generate(y) samples matched one-to-one to the y on those "
                         "samples (how cleanly each y generates one class)",
    "self_consistency": "share of generate(y) samples that the model's own q(y|x) assigns back to y",
}


def machine_description():
    """`tfmix.hardware.describe()`: CPU model, cores, speed flags, versions."""
    from tfmix import hardware

    return hardware.describe()


def measuring_machine():
    """Where the metrics are measured: the machine and TensorFlow's
    intra-op threads. The seeded samples of the generation measures depend
    on both (a bfloat16 model's round-off changes with the CPU and the
    number of threads), so a card records them beside the figures."""
    import tensorflow as tf

    threads = (tf.config.threading.get_intra_op_parallelism_threads()
               or int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0") or 0) or os.cpu_count())
    return f"{machine_description()}, {threads} TF thread(s)"


def _measured_by(date, command, machine):
    """"measured on DATE by `COMMAND` (MACHINE)." as a card states it; no
    machine for the cards published before it was recorded."""
    return f"on {date} by `{command}`" + (f" ({machine})." if machine else ".")


def signature_table(model):
    """{name: {"inputs": ..., "outputs": ...}} as the card states them."""
    img = "float32 [N, " + ", ".join(map(str, model.image_shape)) + "] in [0, 1]"
    K, D = model.num_clusters, model.encode(np.zeros((1,) + model.image_shape, np.float32)).shape[-1]
    table = {
        "serving_default": {"inputs": {"x": img}, "outputs": {"probs": f"float32 [N, {K}]", "cluster": "int64 [N]"}},
        "cluster": {"inputs": {"x": img}, "outputs": {"probs": f"float32 [N, {K}]", "cluster": "int64 [N]"}},
        "encode": {"inputs": {"x": img}, "outputs": {"z_mean": f"float32 [N, {D}]"}},
        "reconstruct": {"inputs": {"x": img}, "outputs": {"x_mean": img.replace(" in [0, 1]", "")}},
        "generate": {
            "inputs": {"cluster": f"int32 [N] in [0, {K - 1}]", "seed": "int32 [2]"},
            "outputs": {"x_mean": img.replace(" in [0, 1]", "")},
        },
        "log_likelihood": {"inputs": {"x": img}, "outputs": {"log_px": "float32 [N]"}},
        "classify": {"inputs": {"x": img}, "outputs": {"probs": f"float32 [N, {K}]", "label": "int64 [N]"}},
    }
    return {k: v for k, v in table.items() if k in ["serving_default"] + export.signature_names(model)}


def _check_export(model, saved_model_dir, x):
    import tensorflow as tf

    served = tf.saved_model.load(saved_model_dir)
    probs = served.signatures["cluster"](x=tf.constant(x))["probs"].numpy()
    err = float(np.abs(probs - model.cluster_probs(x)).max())
    if err > 1e-4:
        raise RuntimeError(f"exported SavedModel disagrees with the Keras model (max |dp| = {err})")
    return err


def _labels_line(num_labels):
    if num_labels == "all":
        return ["- labels: every training image (supervised)"]
    if num_labels:
        return [f"- labels: {num_labels} labelled training images, the rest unlabelled; their indices "
                f"in the training split: `{runs.LABELLED_FILE}`"]
    return []


HF_METRICS = {  # card metric -> (Hugging Face metric type, name shown)
    "acc_hungarian": ("accuracy", "cluster accuracy (Hungarian)"),
    "acc_majority": ("accuracy", "cluster accuracy (majority)"),
    "nmi": ("nmi", "normalised mutual information"),
    "ari": ("ari", "adjusted Rand index"),
    "test_error": ("error", "q(y|x) classification error"),
    "generation_purity": ("accuracy", "generation purity (judged samples, Hungarian)"),
    "self_consistency": ("accuracy", "generation self-consistency"),
    "test_neg_elbo": ("neg_elbo", "negative ELBO (nats)"),
    "test_log_likelihood": ("log_likelihood", "importance-weighted log-likelihood (nats)"),
}


def _yaml(value):
    """A scalar as YAML (JSON strings and numbers are valid YAML)."""
    import json

    return json.dumps(value)


def front_matter(card):
    """Hugging Face model-card front matter (YAML between `---` lines) from a
    card: library_name, tags, datasets, metrics and a model-index holding
    the measured results."""
    m = card.get("metrics", {})
    rows = [(k, *HF_METRICS[k], m[k]) for k in HF_METRICS if isinstance(m.get(k), (int, float))]
    lines = ["---", "library_name: keras", "tags:"]
    lines += [f"  - {t}" for t in ("tfmix", "keras", "tensorflow-probability", "variational-autoencoder",
                                   "clustering", card["model"])]
    if card.get("dataset"):
        lines += ["datasets:", f"  - {card['dataset']}"]
    if rows:
        lines += ["metrics:"] + [f"  - {t}" for t in dict.fromkeys(r[1] for r in rows)]
        lines += ["model-index:", f"  - name: {_yaml(card['preset'])}", "    results:",
                  "      - task:", "          type: image-clustering", "          name: clustering and generation"]
        if card.get("dataset"):
            lines += ["        dataset:", f"          type: {card['dataset']}", f"          name: {card['dataset']}",
                      "          split: test"]
        lines += ["        metrics:"]
        for key, mtype, name, value in rows:
            lines += [f"          - type: {mtype}", f"            name: {_yaml(name)}", f"            value: {float(value):.6g}"]
    lines += ["---", ""]
    return "\n".join(lines)


def render_card(card):
    """The preset's README.md: front matter, then what was trained and how,
    the metrics with the command that measured them, the signatures."""
    m = card.get("metrics", {})
    lines = [front_matter(card) + f"# {card['preset']}", "", card["description"], ""]
    lines.append(f"- model: `{card['class']}` (`tfmix train {card['model']}`)"
                 + (f", dataset: `{card['dataset']}`" if card.get("dataset") else "")
                 + (f" (binarisation: {card['hyperparameters']['binarize']})" if "binarize" in card["hyperparameters"] else ""))
    if "epochs" in card:
        lines.append(f"- trained: {card['epochs']} epochs, seed {card['seed']}, wall time "
                     f"{card['wall_time_s'] / 3600:.2f} h on {card['machine']}")
    lines += [
        f"- hyperparameters: `{card['hyperparameters']}`",
        *_labels_line(card.get("num_labels")),
        f"- load: `tfmix.load(\"{card['preset']}\")` or `{card['class']}.from_preset(\"{card['preset']}\")`; "
        f"serve: `saved_model/` (signatures below)",
    ]
    if m:
        lines += ["", "## Metrics (test split)", "",
                  "Measured " + _measured_by(card["date"], card["metrics_command"], card.get("metrics_machine")), "",
                  "| metric | value | meaning |", "|---|---|---|"]
    for k, v in m.items():
        if k in METRIC_DOC:
            lines.append(f"| {k} | {v:.4f} | {METRIC_DOC[k]} |")
    if "test_log_likelihood" in m:
        lines.append("")
        lines.append(
            f"The log-likelihood uses {m['ll_samples']} importance samples per image on "
            f"{m['ll_examples']} test images; the `log_likelihood` signature uses "
            f"{card['export_ll_samples']} samples."
        )
    if "generation_purity" in m:
        lines += ["", f"The generation measures judge {m['generation_per_cluster']} samples of each cluster "
                      f"(`generate(y, seed=y)`; the same seed may draw other samples with another CPU or number "
                      f"of threads) with the classifier `judge_{evaluation.judge_dataset(card['dataset'])}` "
                      "of the zoo (`scripts/train_judge.py`)"
                      + ("; measured " + _measured_by(card["generation_date"], card["generation_command"],
                                                     card.get("generation_machine"))
                         if card.get("generation_command") else ".")]
    if card.get("notes"):
        lines += ["", "## Notes", "", card["notes"]]
    model_class = get_model_class(card["model"])
    departures = model_class.reference_departures(card["hyperparameters"])
    if departures:
        lines += ["", "## Departures from the reference code", "",
                  f"Where this model, with the hyperparameters above, differs from {model_class.reference_code} "
                  "(BENCHMARKS.md section 10 measures most of them):", ""]
        lines += [f"- {d}" for d in departures]
    lines += ["", "## Signatures (method `tensorflow/serving/predict`)", "", "| signature | inputs | outputs |", "|---|---|---|"]
    for name, sig in card["signatures"].items():
        ins = ", ".join(f"`{k}` {v}" for k, v in sig["inputs"].items())
        outs = ", ".join(f"`{k}` {v}" for k, v in sig["outputs"].items())
        lines.append(f"| `{name}` | {ins} | {outs} |")
    per_cluster = " (one row per cluster)" if card["hyperparameters"]["num_clusters"] > 1 else ""
    lines += ["", f"## Samples{per_cluster}", "", "![samples](samples.png)", ""]
    return "\n".join(lines)


def write_card(directory, card):
    """Writes a preset directory's `card.json`, its `README.md` rendered from
    it, then `manifest.json` of the files as they are now (each atomically);
    returns the manifest. The README is rendered from `card.json` as
    written (sorted keys, JSON types), so that rendering the stored card
    later gives the same text."""
    atomic_write_json(os.path.join(directory, "card.json"), card)
    with atomic_path(os.path.join(directory, "README.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(render_card(read_json(os.path.join(directory, "card.json"))))
    return preset_utils.write_manifest(directory)


def save_to_preset(model, directory, card=None, export_ll_samples=100, overwrite=False,
                   extra_files=(), check_images=None):
    """Writes `model` as a preset directory that `tfmix.load(directory)`
    and `from_preset` accept (also once copied to a server or the Hub):
    `model.keras` (config and weights, no optimizer state), `saved_model/`
    (the TF Serving signatures), `card.json` and `README.md` (with
    Hugging Face front matter), `samples.png`, any `extra_files` and
    `manifest.json` (size and sha256 of every file). Everything is
    written in a temporary directory moved into place in one rename.

    `card` (dict): what to record; `preset` (default: the directory's
    name), `description`, `metrics`, `notes`, ... are kept; the model's
    class, registry name, hyperparameters and signatures are filled in.
    `check_images`: test images on which the exported `cluster` signature
    must agree with the Keras model. Returns the card.

    Example:
    >>> model.fit(x, epochs=5)  # doctest: +SKIP
    >>> tfmix.save_to_preset(model, "my_gmvae", card={"description": "GMVAE on my data"})  # doctest: +SKIP
    >>> same = tfmix.load("my_gmvae")  # doctest: +SKIP
    """
    from tfmix.models import MODELS, MixtureVAE

    if not isinstance(model, MixtureVAE):
        raise TypeError(f"`model` must be a tfmix model, got {type(model).__name__}")
    if card is not None and not isinstance(card, dict):
        raise TypeError(f"`card` must be a dict or None, got {type(card).__name__}")
    model._ensure_built()
    name = os.path.basename(os.path.abspath(directory))
    clean = type(model).from_config(model.get_config())  # no optimizer state
    clean.set_weights(model.get_weights())
    card = dict(card or {})
    card.setdefault("preset", name)
    card.setdefault("model", next((k for k, v in MODELS.items() if v is type(model)), type(model).__name__))
    card.setdefault("class", type(model).__name__)
    card.setdefault("description", f"{type(model).__name__} saved with tfmix.save_to_preset")
    hyper = {**clean.get_config(), **card.get("hyperparameters", {})}
    for key in ("name", "trainable", "dtype"):
        hyper.pop(key, None)
    card["hyperparameters"] = hyper
    card["export_ll_samples"] = export_ll_samples
    card["signatures"] = signature_table(clean)
    card.setdefault("metrics", {})
    card.setdefault("python", sys.version.split()[0])
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        clean.save(os.path.join(tmp, "model.keras"))
        export.export_saved_model(clean, os.path.join(tmp, "saved_model"), ll_samples=export_ll_samples)
        if check_images is not None:
            _check_export(clean, os.path.join(tmp, "saved_model"), check_images)
        for path in extra_files:
            shutil.copyfile(path, os.path.join(tmp, os.path.basename(path)))
        _draw_samples(clean, os.path.join(tmp, "samples.png"), card["preset"])
        write_card(tmp, card)
    return card


def publish(preset, run_dir, ll_samples=1000, export_ll_samples=100, notes="", command=None,
            train_command=None, ll_limit=None):
    """Evaluates `run_dir` and writes `zoo/<preset>/` atomically; returns the card."""
    recipe = presets.check_preset(preset)
    config, model = runs.load_run(run_dir)
    for key in ("model", "dataset"):
        if config[key] != recipe[key]:
            raise ValueError(f"run {run_dir!r} has {key}={config[key]!r}, preset {preset!r} wants {recipe[key]!r}")
    metrics = evaluation.evaluate_run(run_dir, ll_samples=ll_samples, ll_limit=ll_limit, verbose=1)
    progress = read_json(os.path.join(run_dir, runs.PROGRESS_FILE))
    zoo = presets.zoo_dir()
    os.makedirs(zoo, exist_ok=True)
    x_test, _ = tdata.split_arrays(dict(config, limit=64))
    labelled = os.path.join(run_dir, runs.LABELLED_FILE)  # semi-supervised: which training images had labels
    card = {
        "preset": preset,
        "model": config["model"],
        "dataset": config["dataset"],
        "description": recipe["description"],
        "hyperparameters": {
            "batch_size": config["batch_size"],
            "learning_rate": config["learning_rate"],
            "binarize": config["binarize"],
            "optimizer": "Adam",
            "adam_epsilon": config.get("adam_epsilon", runs.ADAM_EPSILON),
        },
        "seed": config["seed"],
        "limit": config["limit"],
        "num_labels": config["num_labels"],
        "epochs": progress["epochs_done"],
        "wall_time_s": progress["wall_time_s"],
        "machine": machine_description(),
        "date": datetime.date.today().isoformat(),
        "metrics": metrics,
        "metrics_command": command or f"python scripts/publish_zoo.py {preset} --run {run_dir} --ll-samples {ll_samples}",
        "metrics_machine": measuring_machine(),
        "train_command": train_command or f"python scripts/train_zoo.py {preset} --runs-dir RUNS --epochs {progress['epochs_done']} --seed {config['seed']}",
        "notes": notes,
    }
    return save_to_preset(model, os.path.join(zoo, preset), card, export_ll_samples=export_ll_samples,
                          overwrite=True, check_images=x_test,
                          extra_files=[labelled] if os.path.exists(labelled) else [])


def _draw_samples(model, path, preset):
    """The preset's `samples.png`: 10 samples per cluster, seed 0."""
    plots.cluster_samples_grid(
        model, path, per_cluster=10, seed=0,
        title=f"{preset}: samples" + (", one row per cluster" if model.num_clusters > 1 else ""),
    )


def card_config(card, limit=None):
    """The run-config keys that `tdata.split_arrays` needs, from a
    preset's card (the test split binarised as the card's metrics were)."""
    return {"model": card["model"], "dataset": card["dataset"], "binarize": card["hyperparameters"]["binarize"],
            "seed": card["seed"], "limit": limit, "num_labels": card.get("num_labels", 0)}


def reexport(preset):
    """Re-exports `zoo/<preset>/saved_model` from its `model.keras` (same
    weights, metrics unchanged) with the current signatures, checks it
    against the Keras model and swaps it in atomically; draws `samples.png`
    again; records the date in the card."""
    model, card = presets.load_with_card(preset, compile=False)
    entry = presets.preset_dir(preset)
    x_test, _ = tdata.split_arrays(card_config(card, limit=64))
    target = os.path.join(entry, "saved_model")
    with atomic_directory(target, overwrite=True) as tmp:
        os.rmdir(tmp)  # export_saved_model writes (atomically) into a fresh path
        export.export_saved_model(model, tmp, ll_samples=card["export_ll_samples"])
        _check_export(model, tmp, x_test)
    with atomic_path(os.path.join(entry, "samples.png"), suffix=".png") as tmp:  # generation may have changed
        _draw_samples(model, tmp, preset)
    card["saved_model_exported"] = datetime.date.today().isoformat()
    write_card(entry, card)
    return card


def refresh(preset):
    """Rewrites a published preset's README.md from its card (the current
    layout, with the Hugging Face front matter) and its manifest.json (the
    files as they are now); weights, SavedModel and metrics unchanged."""
    entry = presets.preset_dir(preset)
    return write_card(entry, read_json(os.path.join(entry, "card.json")))


def rejudge(preset, per_cluster=evaluation.GENERATION_PER_CLUSTER, command=None):
    """Measures only the judged generation of a published preset (same
    weights; `evaluation.generation_metrics`) and adds it to its card and
    README; the other metrics stay as measured. Returns the card, unchanged
    where the preset has one cluster, no labels or no judge."""
    model, card = presets.load_with_card(preset, compile=False)
    config = card_config(card)
    if model.num_clusters < 2 or not evaluation.has_judge(config["dataset"]):
        return card
    x_test, y_test = tdata.split_arrays(config)
    y_test = tdata.split_labels(config, "test", y_test)
    if y_test is None:
        return card
    report = evaluation.generation_metrics(model, config["dataset"], x_test, y_test, per_cluster=per_cluster)
    card["metrics"].update(evaluation.scalar_generation(report), generation_per_cluster=int(per_cluster))
    card["generation_command"] = command or f"python scripts/publish_zoo.py {preset} --judge"
    card["generation_date"] = datetime.date.today().isoformat()
    card["generation_machine"] = measuring_machine()
    write_card(presets.preset_dir(preset), card)
    return card


def reevaluate(preset, ll_samples=None, ll_limit=None, command=None):
    """Measures a published preset again with the current evaluation code
    (same weights, same settings as its card: importance samples and test
    images unless given) and rewrites its card and README atomically."""
    model, card = presets.load_with_card(preset, compile=True)
    old = card["metrics"]
    config = {"model": card["model"], "dataset": card["dataset"], "binarize": card["hyperparameters"]["binarize"],
              "seed": card["seed"], "limit": card.get("limit")}
    ll_samples = old.get("ll_samples", 0) if ll_samples is None else ll_samples
    ll_limit = old.get("ll_examples") if ll_limit is None else ll_limit
    metrics = evaluation.evaluate_model(config, model, epochs=card["epochs"], ll_samples=ll_samples,
                                        ll_limit=ll_limit, verbose=1)
    card["metrics"] = metrics
    card.pop("generation_command", None)  # measured again with the rest
    card.pop("generation_date", None)
    card.pop("generation_machine", None)
    card["date"] = datetime.date.today().isoformat()
    card["metrics_command"] = command or f"python scripts/publish_zoo.py {preset} --reevaluate"
    card["metrics_machine"] = measuring_machine()
    write_card(presets.preset_dir(preset), card)
    return card
