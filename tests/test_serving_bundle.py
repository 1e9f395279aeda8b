"""TF Serving bundles (`tfmix.serving`, `tfmix export --serving-bundle`):
the layout TF Serving loads, warm-up requests read back with
tensorflow-serving-api and replayed through the SavedModel, models.config
parsed as a ModelServerConfig."""

import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import tfmix
from conftest import tiny_model
from tfmix import export, serving
from tfmix.cli import main


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model = tiny_model("m2", labelled=True)  # every signature, `classify` included
    path = str(tmp_path_factory.mktemp("sm") / "m2")
    names = export.export_saved_model(model, path, ll_samples=2)
    return path, names


def test_bundle_layout_and_warmup_requests_replay(saved_model, tmp_path):
    path, names = saved_model
    target = serving.write_bundle(path, str(tmp_path / "bundle"), "tiny_m2", version=3)
    assert target == str(tmp_path / "bundle" / "tiny_m2" / "3")
    assert {"saved_model.pb", "variables", "assets.extra"} <= set(os.listdir(target))
    logs = serving.read_warmup(os.path.join(target, serving.WARMUP_FILE))
    requests = [log.predict_log.request for log in logs]
    assert sorted(r.model_spec.signature_name for r in requests) == sorted(set(names))  # one per signature
    assert {r.model_spec.name for r in requests} == {"tiny_m2"}
    gen = next(r for r in requests if r.model_spec.signature_name == "generate")
    assert set(gen.inputs) == {"cluster", "seed"}
    np.testing.assert_array_equal(tf.make_ndarray(gen.inputs["seed"]), [0, 0])
    x = tf.make_ndarray(next(r for r in requests if r.model_spec.signature_name == "cluster").inputs["x"])
    assert x.shape == (serving.WARMUP_BATCH, 28, 28, 1) and x.dtype == np.float32
    shapes = serving.replay(target, logs)
    assert shapes["cluster"]["probs"] == (serving.WARMUP_BATCH, 4)
    assert shapes["generate"]["x_mean"] == (1, 28, 28, 1)
    assert shapes["classify"]["label"] == (serving.WARMUP_BATCH,)
    # the same version again is refused and the old one is untouched
    before = sorted(os.listdir(target))
    with pytest.raises(FileExistsError):
        serving.write_bundle(path, str(tmp_path / "bundle"), "tiny_m2", version=3)
    assert sorted(os.listdir(target)) == before
    assert sorted(os.listdir(tmp_path / "bundle" / "tiny_m2")) == ["3"]  # nothing half-written beside it


def test_replay_catches_a_request_for_a_missing_signature(saved_model, tmp_path):
    path = saved_model[0]
    logs = serving.warmup_requests(path, "m")
    logs[0].predict_log.request.model_spec.signature_name = "nope"
    with pytest.raises(ValueError, match="signature 'nope'"):
        serving.replay(path, logs)


def test_bad_bundle_arguments(saved_model, tmp_path):
    with pytest.raises(ValueError, match="`version` must be a positive integer"):
        serving.write_bundle(saved_model[0], str(tmp_path), "m", version=0)
    with pytest.raises(ValueError, match="`name` must be a plain directory name"):
        serving.write_bundle(saved_model[0], str(tmp_path), "a/b")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        serving.write_bundle(str(tmp_path), str(tmp_path), "m")


def test_cli_zoo_bundle_with_models_config(tmp_path, monkeypatch, capsys):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for name, kind in (("gmvae_mnist", "gmvae"), ("vae_mnist", "vae")):
        tfmix.save_to_preset(tiny_model(kind), str(zoo / name), export_ll_samples=2)
    monkeypatch.setenv("TFMIX_ZOO", str(zoo))
    bundle = tmp_path / "bundle"
    assert main(["export", "--zoo", "--serving-bundle", str(bundle), "--version", "2"]) == 0
    assert sorted(os.listdir(bundle)) == ["gmvae_mnist", "models.config", "vae_mnist"]
    config = text_format.Parse((bundle / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"gmvae_mnist", "vae_mnist"}
    assert entries["vae_mnist"].base_path == "/models/vae_mnist" and entries["vae_mnist"].model_platform == "tensorflow"
    for name in entries:
        version = bundle / name / "2"
        assert (version / serving.WARMUP_FILE).exists()
        serving.replay(str(version), serving.read_warmup(str(version / serving.WARMUP_FILE)))
    # one preset by handle (its directory), under another name and version
    assert main(["export", str(zoo / "vae_mnist"), "--serving-bundle", str(bundle), "--name", "mine",
                 "--version", "7"]) == 0
    assert os.listdir(bundle / "mine") == ["7"]
    capsys.readouterr()
    assert main(["export", "--zoo", "--out", str(tmp_path / "x")]) == 2
    assert "needs --serving-bundle" in capsys.readouterr().err
    assert main(["export", str(zoo / "vae_mnist"), "--out", str(tmp_path / "x"), "--serving-bundle", str(bundle)]) == 2
    assert "exactly one of --out DIR and --serving-bundle DIR" in capsys.readouterr().err
    assert main(["export", "--zoo", "--serving-bundle", str(bundle), "--version", "2"]) == 2  # exists
    assert "exists" in capsys.readouterr().err
