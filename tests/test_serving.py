"""SavedModel exports as TF Serving sees them: no tfmix, keras or TFP.

- every zoo preset's `saved_model/` (and a tiny export of every model class)
  is loaded in a fresh subprocess where `tfmix`, `keras` and
  `tensorflow_probability` cannot be imported, every signature is called,
  and the outputs match the Keras model's;
- `saved_model_cli show --all` and `saved_model_cli run` on one model;
- a `PredictRequest` (tensorflow-serving-api) per signature, checked
  against the signature's inputs;
- a live `tensorflow_model_server` test when that binary is on PATH.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import tfmix
from conftest import tiny_model
from tfmix import export, presets

BLOCKED_RUNNER = r'''
import importlib.abc, importlib.machinery, sys, json
BLOCKED = ("tfmix", "keras", "tensorflow_probability", "tf_keras")
class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # A blocked package is "found" but cannot be imported (as if broken).
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        raise ImportError(f"{spec.name} is blocked in this serving test")
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, Block())
import numpy as np, tensorflow as tf
for mod in ("tfmix", "keras", "tensorflow_probability"):
    try:
        __import__(mod)
        raise SystemExit(f"{mod} could be imported")
    except ImportError:
        pass
job = json.load(open(sys.argv[1]))
inputs = dict(np.load(job["inputs"]))
out = {}
for name, path in job["models"].items():
    served = tf.saved_model.load(path)
    for sig, fn in served.signatures.items():
        if sig == "generate":
            res = fn(cluster=tf.constant(inputs["cluster"]), seed=tf.constant(inputs["seed"]))
        else:
            res = fn(x=tf.constant(inputs["x_" + name]))
        for key, value in res.items():
            out[f"{name}/{sig}/{key}"] = value.numpy()
np.savez(job["outputs"], **out)
print("served", len(out), "outputs")
'''

LL_SAMPLES = 20


def _zoo_models():
    return {name: tfmix.load(name, compile=False) for name in presets.published()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (keras model, saved_model dir)}: the zoo plus tiny exports."""
    root = tmp_path_factory.mktemp("exports")
    models = {}
    for name, model in _zoo_models().items():
        models[f"zoo_{name}"] = (model, os.path.join(presets.preset_dir(name), "saved_model"), presets.card(name)["export_ll_samples"])
    for name in sorted(tfmix.MODELS):
        model = tiny_model(name, labelled=name == "m2")
        path = str(root / name)
        export.export_saved_model(model, path, ll_samples=LL_SAMPLES)
        models[f"tiny_{name}"] = (model, path, LL_SAMPLES)
    return models


def test_the_zoo_publishes_the_foundation_presets():
    assert {"gmvae_mnist"} <= set(presets.published())


def _served_log_likelihood(model, x, ll_samples):
    """The `log_likelihood` signature's estimate recomputed through the
    model with the same noise: per image, chunks of `export.LL_CHUNK`
    importance samples, chunk i seeded fold_in([0, 0], i). (Two independent
    estimates are not comparable for every model: the SB-VAE's weights are
    heavy-tailed where a stick's b sits at its floor, and 100-sample
    estimates of one image differed by 50 nats.)"""
    base = tf.constant([0, 0], tf.int32)
    weights = tf.function(model.log_importance_weights)  # traced once per chunk size, not run op by op
    out = []
    for xi in x.reshape(len(x), -1):
        parts = [
            tf.reduce_logsumexp(weights(
                tf.constant(xi[None]), min(export.LL_CHUNK, ll_samples - s),
                tf.random.experimental.stateless_fold_in(base, i)), -1)
            for i, s in enumerate(range(0, ll_samples, export.LL_CHUNK))
        ]
        out.append(float(tf.reduce_logsumexp(tf.stack(parts, 0), 0)[0]) - np.log(ll_samples))
    return np.array(out, np.float32)


def test_every_signature_without_tfmix_keras_or_tfp(exported, tmp_path):
    rng = np.random.default_rng(0)
    noise = (rng.random((6, 28, 28, 1)) < 0.3).astype(np.float32)
    cluster, seed = np.array([0, 0, 0], np.int32), np.array([5, 0], np.int32)
    # Tiny models see noise; a zoo model sees binarised samples of its own
    # (on noise its importance-weighted log-likelihood is too noisy to compare).
    xs = {
        name: noise if name.startswith("tiny_")
        else (model.generate(np.arange(6) % model.num_clusters, seed=11) > 0.5).astype(np.float32)
        for name, (model, _, _) in exported.items()
    }
    np.savez(tmp_path / "in.npz", cluster=cluster, seed=seed, **{f"x_{k}": v for k, v in xs.items()})
    job = {"inputs": str(tmp_path / "in.npz"), "outputs": str(tmp_path / "out.npz"),
           "models": {k: v[1] for k, v in exported.items()}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "runner.py").write_text(BLOCKED_RUNNER)
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(np.load(tmp_path / "out.npz"))
    for name, (model, _, ll_samples) in exported.items():
        x = xs[name]
        sigs = {k.split("/")[1] for k in out if k.startswith(name + "/")}
        assert sigs == set(["serving_default"] + export.signature_names(model)), (name, sigs)
        probs = model.cluster_probs(x)
        np.testing.assert_allclose(out[f"{name}/cluster/probs"], probs, atol=1e-5)
        np.testing.assert_array_equal(out[f"{name}/serving_default/cluster"], probs.argmax(-1))
        np.testing.assert_allclose(out[f"{name}/encode/z_mean"], model.encode(x), atol=1e-4)
        np.testing.assert_allclose(out[f"{name}/reconstruct/x_mean"], model.reconstruct(x), atol=1e-5)
        np.testing.assert_allclose(out[f"{name}/generate/x_mean"], model.generate(cluster, seed=5), atol=1e-5)
        ll = out[f"{name}/log_likelihood/log_px"]
        assert ll.shape == (6,) and np.all(np.isfinite(ll))
        np.testing.assert_allclose(ll, _served_log_likelihood(model, x, ll_samples), rtol=1e-4, atol=1e-2)
        if model.labelled:
            np.testing.assert_array_equal(out[f"{name}/classify/label"], probs.argmax(-1))


@pytest.mark.parametrize(
    "sig, kwargs, message",
    [
        ("cluster", {"x": np.full((2, 28, 28, 1), 1.5, np.float32)}, "in [0, 1]"),
        ("cluster", {"x": np.full((2, 28, 28, 1), -0.1, np.float32)}, "in [0, 1]"),
        ("encode", {"x": np.full((2, 28, 28, 1), np.nan, np.float32)}, "NaN or Inf"),
        ("reconstruct", {"x": np.zeros((0, 28, 28, 1), np.float32)}, "empty batch"),
        ("generate", {"cluster": np.array([4], np.int32), "seed": np.array([0, 0], np.int32)}, "out of range"),
        ("generate", {"cluster": np.array([-1], np.int32), "seed": np.array([0, 0], np.int32)}, "index < 0"),
    ],
)
def test_signatures_reject_bad_input_with_invalid_argument(exported, sig, kwargs, message):
    served = tf.saved_model.load(exported["tiny_gmvae"][1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        served.signatures[sig](**{k: tf.constant(v) for k, v in kwargs.items()})


def test_export_is_atomic_and_refuses_to_overwrite(tmp_path, monkeypatch):
    model = tiny_model("gmvae")
    target = tmp_path / "sm"
    export.export_saved_model(model, str(target), ll_samples=2)
    with pytest.raises(FileExistsError):
        export.export_saved_model(model, str(target), ll_samples=2)

    def boom(self, path, **kw):
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, "partial"), "w").write("x")
        raise RuntimeError("disk full")

    import keras

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_saved_model(model, str(tmp_path / "new"), ll_samples=2)
    assert sorted(os.listdir(tmp_path)) == ["sm"]  # nothing half-written left


def _cli_target(exported):
    return exported["zoo_gmvae_mnist"][1] if "zoo_gmvae_mnist" in exported else exported["tiny_gmvae"][1]


def test_saved_model_cli_show_and_run(exported, tmp_path):
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli not on PATH")
    target = _cli_target(exported)
    show = subprocess.run([cli, "show", "--dir", target, "--all"], capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for sig in ("serving_default", "cluster", "encode", "reconstruct", "generate", "log_likelihood"):
        assert f"signature_def['{sig}']" in show.stdout
    assert show.stdout.count("Method name is: tensorflow/serving/predict") >= 6
    x = np.zeros((2, 28, 28, 1), np.float32)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run(
        [cli, "run", "--dir", target, "--tag_set", "serve", "--signature_def", "cluster",
         "--inputs", f"x={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    probs = np.load(tmp_path / "out" / "probs.npy")
    assert probs.shape[0] == 2
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def _predict_requests(served_dir):
    from tensorflow_serving.apis import predict_pb2

    served = tf.saved_model.load(served_dir)
    requests = {}
    for sig, fn in served.signatures.items():
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "tfmix"
        req.model_spec.signature_name = sig
        if sig == "generate":
            req.inputs["cluster"].CopyFrom(tf.make_tensor_proto(np.array([0, 1], np.int32)))
            req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.array([1, 2], np.int32)))
        else:
            req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((3, 28, 28, 1), np.float32)))
        requests[sig] = (req, fn.structured_input_signature[1])
    return requests


def test_predict_requests_match_the_signatures(exported):
    pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    requests = _predict_requests(_cli_target(exported))
    assert set(requests) >= {"serving_default", "cluster", "encode", "reconstruct", "generate", "log_likelihood"}
    for sig, (req, spec) in requests.items():
        assert set(req.inputs) == set(spec), sig
        for key, proto in req.inputs.items():
            assert tf.dtypes.as_dtype(proto.dtype) == spec[key].dtype, (sig, key)
            shape = tf.TensorShape([d.size for d in proto.tensor_shape.dim])
            assert spec[key].shape.is_compatible_with(shape), (sig, key, shape)
        # the request round-trips through its wire format
        from tensorflow_serving.apis import predict_pb2

        again = predict_pb2.PredictRequest.FromString(req.SerializeToString())
        assert again.model_spec.signature_name == sig


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not on PATH (cannot be installed here)")
def test_live_tensorflow_model_server(exported, tmp_path):
    import urllib.request

    base = tmp_path / "models" / "tfmix"
    shutil.copytree(_cli_target(exported), base / "1")
    port = _free_port()
    server = subprocess.Popen(["tensorflow_model_server", f"--rest_api_port={port}", "--port=0",
                               "--model_name=tfmix", f"--model_base_path={base}"])
    try:
        url = f"http://127.0.0.1:{port}/v1/models/tfmix:predict"
        body = json.dumps({"signature_name": "cluster", "instances": np.zeros((2, 28, 28, 1)).tolist()}).encode()
        for _ in range(60):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, body), timeout=5) as r:
                    preds = json.load(r)["predictions"]
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("tensorflow_model_server did not answer")
        assert len(preds) == 2 and abs(sum(preds[0]["probs"]) - 1) < 1e-4
    finally:
        server.terminate()
        server.wait(timeout=30)
