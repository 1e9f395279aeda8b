"""Interrupted training: SIGKILL in the middle of an epoch (or, with short
epochs, while an epoch is being saved), then the same command resumes from
the last committed epoch, logs every epoch once and finishes."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

import tfmix.models  # noqa: F401  (registers the classes for load_model)
import tfmix.optimizers  # noqa: F401  (and the optimizer a run's model.keras stores)
from tfmix.runs import resumed_epoch, trim_log

ARGV = ["train", "gmvae", "--dataset", "mnist", "--limit", "4000", "--hidden-units", "32", "--latent-dim", "4",
        "--batch-size", "10", "--epochs", "3", "--seed", "5"]


def _progress(out):
    try:
        with open(os.path.join(out, "progress.json")) as f:
            return json.load(f)["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.mnist_data
def test_sigkill_mid_epoch_then_the_same_command_resumes(tmp_path):
    out = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "tfmix.cli"] + ARGV + ["--out", out]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while _progress(out) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into epoch 2 (400 steps of batch 10)
    assert proc.poll() is None, "training ended before it could be killed:\n" + proc.stdout.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _progress(out)
    # the checkpoint commits an epoch after its progress and log row are
    # written: a kill in between leaves the progress one epoch ahead
    committed = resumed_epoch(out)
    assert committed in (done - 1, done) and committed >= 1, (done, committed)
    # what a reader would load is whole: the model of the last finished epoch
    keras.saving.load_model(os.path.join(out, "model.keras"))
    # a kill during a save leaves only a hidden temporary beside the whole file
    assert all(p.startswith(".") for p in os.listdir(out) if ".tmp" in p)

    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    first_epoch = int(re.search(r"Epoch (\d+)/3", res.stdout).group(1))
    assert first_epoch == committed + 1  # resumed from the last committed epoch, not restarted
    assert _progress(out) == 3
    for d in (out, os.path.join(out, "backup")):  # the resumed run removed what the killed one was writing
        assert [p for p in os.listdir(d) if ".tmp" in p] == [], d
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(os.path.join(out, "log.csv")))]
    assert epochs == [0, 1, 2][: len(epochs)] and len(epochs) == 3  # every epoch logged once


def test_trim_log_drops_the_rows_of_epochs_not_committed(tmp_path):
    path = str(tmp_path / "log.csv")
    assert trim_log(path, 3) == 0  # no log yet
    with open(path, "w") as f:
        f.write("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n")
    assert trim_log(path, 2) == 1
    assert open(path).read().splitlines() == ["epoch,loss", "0,3.0", "1,2.0"]
    assert trim_log(path, 2) == 0
    assert [p for p in os.listdir(tmp_path)] == ["log.csv"]
