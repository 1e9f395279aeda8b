"""Bad input, table-driven, through the Python API, the CLI and every
SavedModel signature: each case must fail with an error that names the
problem (the CLI: exit code 2, one line, no traceback).

The tables below are counted in BENCHMARKS.md (reliability section):
`python -m pytest tests/test_bad_input.py --collect-only -q`.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import tfmix
from conftest import tiny_model
from tfmix import data, export, presets, runs
from tfmix.cli import main

IMG = (28, 28, 1)


def _imgs(n=2, value=0.5, shape=IMG, dtype=np.float32):
    return np.full((n,) + shape, value, dtype)


# -- the Python API, on every model class: (case, call(model), exception, words in the
# message; "{last}" is the model's last cluster index)
API = [
    ("wrong rank", lambda m: m.cluster_probs(np.zeros((2, 28, 28), np.float32)[:, :, :5]), ValueError, "must have shape"),
    ("wrong size", lambda m: m.encode(np.zeros((2, 783), np.float32)), ValueError, "must have shape"),
    ("wrong dtype", lambda m: m.reconstruct(np.full((2, 784), "a")), TypeError, "numeric images"),
    ("value above 1", lambda m: m.cluster_probs(_imgs(value=1.5)), ValueError, "in [0, 1]"),
    ("value below 0", lambda m: m.encode(_imgs(value=-0.2)), ValueError, "in [0, 1]"),
    ("NaN", lambda m: m.log_likelihood(_imgs(value=np.nan), num_samples=2), ValueError, "NaN or Inf"),
    ("Inf", lambda m: m.reconstruct(_imgs(value=np.inf)), ValueError, "NaN or Inf"),
    ("empty batch", lambda m: m.cluster_probs(_imgs(n=0)), ValueError, "empty batch"),
    ("cluster out of range", lambda m: m.generate(m.num_clusters, 2), ValueError, "`cluster` must be in [0, {last}]"),
    ("negative cluster", lambda m: m.generate(np.array([0, -1])), ValueError, "`cluster` must be in [0, {last}]"),
    ("cluster array not 1-D", lambda m: m.generate(np.zeros((2, 2), int)), ValueError, "1-D array"),
    ("non-integer seed", lambda m: m.generate(0, 2, seed="a"), TypeError, "`seed` must be an integer"),
    ("negative seed", lambda m: m.log_likelihood(_imgs(), num_samples=2, seed=-1), ValueError, "`seed` must be in"),
    ("zero importance samples", lambda m: m.log_likelihood(_imgs(), num_samples=0), ValueError, "`num_samples` must be >= 1"),
]

# -- the Python API, once: (case, call(tmp_path), exception, words in the message)
API_ONCE = [
    ("unknown model", lambda t: tfmix.get_model_class("nope"), ValueError, "unknown model 'nope'"),
    ("unknown preset", lambda t: tfmix.load("nope"), ValueError, "unknown preset 'nope'"),
    ("unknown dataset", lambda t: data.load("cifar", "train"), ValueError, "unknown dataset 'cifar'"),
    ("unknown split", lambda t: data.load("mnist", "validation"), ValueError, "split"),
    ("missing checkpoint", lambda t: runs.load_run(str(t / "missing")), FileNotFoundError, "no run directory"),
    ("corrupt checkpoint", lambda t: runs.load_run(_corrupt_run(t)), ValueError, "cannot load"),
    ("bad model argument", lambda t: tfmix.GMVAE(num_clusters=0), ValueError, "num_clusters"),
]


def _corrupt_run(tmp_path):
    run = tmp_path / "corrupt"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "model.keras").write_bytes(b"PK\x03\x04 not a keras archive")
    return str(run)


_TINY = {}


@pytest.mark.parametrize("name", sorted(tfmix.MODELS))
@pytest.mark.parametrize("case, call, exc, words", API, ids=[c[0] for c in API])
def test_python_api(case, call, exc, words, name):
    if name not in _TINY:
        _TINY[name] = tiny_model(name)
    model = _TINY[name]
    with pytest.raises(exc) as info:
        call(model)
    assert words.format(last=model.num_clusters - 1) in str(info.value), str(info.value)


@pytest.mark.parametrize("case, call, exc, words", API_ONCE, ids=[c[0] for c in API_ONCE])
def test_python_api_once(case, call, exc, words, tmp_path):
    with pytest.raises(exc) as info:
        call(tmp_path)
    assert words in str(info.value), str(info.value)


# -- the CLI: (case, argv(tmp_path), words in the one-line message) -----------------
CLI = [
    ("unknown model", lambda t: ["train", "nope", "--out", str(t / "r")], "invalid choice: 'nope'"),
    ("unknown dataset", lambda t: ["train", "gmvae", "--dataset", "cifar", "--out", str(t / "r")], "invalid choice: 'cifar'"),
    ("unknown preset", lambda t: ["zoo", "show", "nope"], "unknown preset 'nope'"),
    ("unknown preset or run to export", lambda t: ["export", "nope", "--out", str(t / "sm")], "neither a run directory nor a preset"),
    ("bad epochs", lambda t: ["train", "gmvae", "--epochs", "0", "--out", str(t / "r")], "expected an integer >= 1"),
    ("bad labels", lambda t: ["train", "gmvae", "--labels", "many", "--out", str(t / "r")], "`num_labels` must be"),
    ("bad clip norm", lambda t: ["train", "gmvae", "--clip-norm", "-1", "--out", str(t / "r")], "`clip_norm` must be > 0"),
    ("bad adam epsilon", lambda t: ["train", "gmvae", "--adam-epsilon", "nan", "--out", str(t / "r")],
     "`adam_epsilon` must be > 0"),
    ("bad model argument", lambda t: ["train", "gmvae", "--param", "nope=1", "--out", str(t / "r")], "Unrecognized keyword arguments passed to GMVAE: {'nope'"),
    ("missing run directory", lambda t: ["evaluate", str(t / "missing")], "no run directory"),
    ("not a run directory", lambda t: ["sample", str(t), "--out", str(t / "g.png")], "is not a tfmix run"),
    ("corrupt checkpoint", lambda t: ["evaluate", _corrupt_run(t)], "cannot load"),
    ("export over an existing path", lambda t: ["export", _existing(t), "--out", str(t)], "exists"),
]


def _existing(tmp_path):
    return "gmvae_mnist" if "gmvae_mnist" in presets.published() else "vae_mnist"


@pytest.mark.parametrize("case, argv, words", CLI, ids=[c[0] for c in CLI])
def test_cli(case, argv, words, tmp_path, capsys):
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("tfmix: error:") and words in err[-1], err
    assert not any("Traceback" in line for line in err)


# -- every SavedModel signature: (case, signature, inputs, words) --------------------------
SEED = np.array([1, 2], np.int32)
SIGNATURES = [
    ("wrong rank", "cluster", {"x": np.zeros((2, 784), np.float32)}, "must have shape [N, 28, 28, 1]"),
    ("wrong size", "encode", {"x": np.zeros((2, 28, 27, 1), np.float32)}, "must have shape [N, 28, 28, 1]"),
    ("wrong dtype", "reconstruct", {"x": np.zeros((2, 28, 28, 1), np.float64)}, "expected to be a float tensor"),
    ("value above 1", "log_likelihood", {"x": _imgs(value=1.5)}, "in [0, 1]"),
    ("value below 0", "classify", {"x": _imgs(value=-0.5)}, "in [0, 1]"),
    ("value below 0", "cluster", {"x": _imgs(value=-0.5)}, "in [0, 1]"),
    ("NaN", "cluster", {"x": _imgs(value=np.nan)}, "NaN or Inf"),
    ("Inf", "reconstruct", {"x": _imgs(value=np.inf)}, "NaN or Inf"),
    ("empty batch", "encode", {"x": _imgs(n=0)}, "empty batch"),
    ("cluster out of range", "generate", {"cluster": np.array([4], np.int32), "seed": SEED}, "out of range"),
    ("negative cluster", "generate", {"cluster": np.array([-1], np.int32), "seed": SEED}, "index < 0"),
    ("empty cluster batch", "generate", {"cluster": np.zeros([0], np.int32), "seed": SEED}, "empty batch"),
    ("wrong seed shape", "generate", {"cluster": np.array([0], np.int32), "seed": np.array([1, 2, 3], np.int32)},
     "must have shape [2]"),
]


#: every model class (a tiny export, labelled so that it has `classify`
#: where the class supports labels) and every published zoo SavedModel
TARGETS = [f"tiny_{name}" for name in sorted(tfmix.MODELS)] + [f"zoo_{name}" for name in presets.published()]
_SERVED = {}


def _served(target, tmp_path_factory):
    if target not in _SERVED:
        kind, name = target.split("_", 1)
        if kind == "zoo":
            path = os.path.join(presets.preset_dir(name), "saved_model")
        else:
            model = tiny_model(name)
            if model.supports_labels:
                model = tiny_model(name, labelled=True)
            path = str(tmp_path_factory.mktemp("bad") / name)
            export.export_saved_model(model, path, ll_samples=3)
        _SERVED[target] = tf.saved_model.load(path)
    return _SERVED[target]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case, sig, inputs, words", SIGNATURES, ids=[c[0] for c in SIGNATURES])
def test_signatures(case, sig, inputs, words, target, tmp_path_factory):
    served = _served(target, tmp_path_factory)
    if sig not in served.signatures:
        assert sig == "classify"  # only models trained with labels have it
        pytest.skip(f"{target} has no classify signature")
    if sig == "generate" and "out of range" in words:
        inputs = dict(inputs, cluster=np.array([1000], np.int32))  # beyond any K
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)) as info:
        served.signatures[sig](**{k: tf.constant(v) for k, v in inputs.items()})
    assert words in str(info.value), str(info.value)[:500]


def test_missing_or_corrupt_saved_model_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="SavedModel file does not exist"):
        tf.saved_model.load(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "corrupt")
    (tmp_path / "corrupt" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(Exception, match="(?i)parse|saved_model"):
        tf.saved_model.load(str(tmp_path / "corrupt"))


def test_the_tables_cover_every_surface():
    """The counts BENCHMARKS.md reports."""
    assert (len(API), len(API_ONCE), len(CLI), len(SIGNATURES)) == (14, 7, 13, 13)
    assert {sig for _, sig, _, _ in SIGNATURES} == set(export.SIGNATURES)
