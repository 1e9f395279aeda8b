"""tf.distribute: two MultiWorkerMirroredStrategy workers on 127.0.0.1."""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfmix import runs
from tfmix import strategies

ARGS = ["train", "gmvae", "--dataset", "mnist", "--limit", "400", "--hidden-units", "32",
        "--latent-dim", "4", "--num-clusters", "4", "--batch-size", "100", "--epochs", "2", "--seed", "3"]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _last_loss(run_dir):
    rows = list(csv.DictReader(open(os.path.join(run_dir, "log.csv"))))
    return float(rows[-1]["loss"]), len(rows)


@pytest.mark.mnist_data
def test_two_workers_train_identically_and_follow_one_worker(tmp_path):
    out = str(tmp_path / "mw")
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    cmd = [sys.executable, "-m", "tfmix.cli"] + ARGS + ["--strategy", "multiworker", "--out", out]
    procs = [
        subprocess.Popen(cmd, env=_env({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=400)[0])
    finally:
        for p in procs:
            p.kill()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} failed:\n{logs[i][-3000:]}"
    # the chief writes the run directory, worker 1 its own
    chief = keras.saving.load_model(os.path.join(out, "model.keras"))
    other = keras.saving.load_model(os.path.join(out, "worker-1", "model.keras"))
    for a, b in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    mw_loss, epochs = _last_loss(out)
    assert epochs == 2

    # one worker, same global batch and seed
    single = str(tmp_path / "single")
    res = subprocess.run([sys.executable, "-m", "tfmix.cli"] + ARGS + ["--out", single], env=_env(),
                         capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    one_loss, _ = _last_loss(single)
    assert abs(mw_loss - one_loss) / one_loss < 0.03, (mw_loss, one_loss)


def test_multiworker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        strategies.worker_role("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not a valid cluster description"):
        strategies.worker_role("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ValueError, match="worker:3 is not in the cluster"):
        strategies.worker_role("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert strategies.worker_role("multiworker") == (False, 1)
    assert strategies.worker_dir("/r", "multiworker") == os.path.join("/r", "worker-1")
    assert strategies.worker_role("mirrored") == (True, 0)
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        runs.run_config("gmvae", "mnist", epochs=1, batch_size=10, seed=0, strategy="tpu")
