"""Concurrency: one training per run directory (`runs.RunLock`), and the
SavedModel signatures called from many threads at once."""

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from tfmix import export
from tfmix.cli import main
from tfmix.runs import RunLock, RunLocked

TINY = ["--hidden-units", "8", "--latent-dim", "2", "--num-clusters", "2", "--limit", "200", "--batch-size", "50"]
HOLDER = "import sys, time; from tfmix.runs import RunLock; RunLock(sys.argv[1]).__enter__(); print('locked', flush=True); time.sleep(300)"


def _hold(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, run_dir], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_and_a_killed_holders_lock_is_taken_over(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    holder = _hold(run_dir)
    try:
        code = main(["train", "gmvae", "--dataset", "mnist", "--epochs", "1", "--out", run_dir] + TINY)
        err = capsys.readouterr().err.strip()
        assert code == 2
        assert len(err.splitlines()) == 1, err
        assert run_dir in err and f"pid {holder.pid}" in err
        assert not os.path.exists(os.path.join(run_dir, "run.json"))  # nothing written by the refused run
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert f'"pid": {holder.pid}' in open(os.path.join(run_dir, RunLock.FILE)).read()  # the stale file is still there
    with RunLock(run_dir) as lock:  # taken over
        assert lock.holder()["pid"] == os.getpid()
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):  # and held: even this process cannot take it twice
            RunLock(run_dir).__enter__()
    with RunLock(run_dir):  # released on exit
        pass


@pytest.mark.mnist_data
def test_training_takes_the_lock_and_releases_it(tmp_path):
    run_dir = str(tmp_path / "run")
    assert main(["train", "gmvae", "--dataset", "mnist", "--epochs", "1", "--out", run_dir] + TINY) == 0
    with RunLock(run_dir):  # free again after the run
        pass


def test_every_signature_from_eight_threads(tmp_path):
    """8 threads x 200 calls, valid and invalid inputs mixed, over every
    signature: valid answers equal the single-threaded ones, invalid ones
    fail with their InvalidArgument message, nothing crashes."""
    model = tiny_model("m2", labelled=True)
    path = str(tmp_path / "sm")
    export.export_saved_model(model, path, ll_samples=3)
    served = tf.saved_model.load(path)
    rng = np.random.default_rng(0)
    x = tf.constant((rng.random((3, 28, 28, 1)) < 0.3).astype(np.float32))
    valid = {name: {"x": x} for name in served.signatures if name != "generate"}
    valid["generate"] = {"cluster": tf.constant([0, 3, 1], tf.int32), "seed": tf.constant([4, 2], tf.int32)}
    bad_x = tf.constant(np.full((2, 28, 28, 1), 2.0, np.float32))
    invalid = [
        ("cluster", {"x": bad_x}, "found a value > 1"),
        ("encode", {"x": tf.constant(np.full((1, 28, 28, 1), np.nan, np.float32))}, "NaN or Inf"),
        ("generate", {"cluster": tf.constant([9], tf.int32), "seed": tf.constant([1, 2], tf.int32)}, "out of range"),
        ("log_likelihood", {"x": tf.zeros([0, 28, 28, 1])}, "empty batch"),
    ]
    expected = {name: {k: v.numpy() for k, v in served.signatures[name](**inputs).items()}
                for name, inputs in valid.items()}
    calls = sorted(valid) + [None] * len(invalid)
    errors = []

    def worker(t):
        try:
            for i in range(200):
                pick = (t * 7 + i) % len(calls)
                if calls[pick] is not None:
                    name = calls[pick]
                    out = served.signatures[name](**valid[name])
                    for key, value in out.items():
                        np.testing.assert_array_equal(value.numpy(), expected[name][key], err_msg=f"{name}/{key}")
                else:
                    name, inputs, message = invalid[(t + i) % len(invalid)]
                    try:
                        served.signatures[name](**inputs)
                    except tf.errors.InvalidArgumentError as e:
                        assert message in e.message, (name, e.message)
                    else:
                        raise AssertionError(f"{name} accepted an invalid input")
        except BaseException as e:  # reported by the main thread
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
