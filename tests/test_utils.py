"""File utilities: a killed atomic write leaves the previous file whole,
and the next run removes the temporary it left."""

import os
import signal
import subprocess
import sys

from tfmix.utils import atomic_write_json, read_json, remove_stale_temporaries

KILLED_MID_WRITE = """
import os, signal, sys
from tfmix.utils import atomic_path
with atomic_path(sys.argv[1], suffix=".weights.h5") as tmp:
    open(tmp, "w").write("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_write_leaves_the_old_file_and_only_its_temporary_is_removed(tmp_path):
    target = tmp_path / "model.weights.h5"
    target.write_text("whole")
    atomic_write_json(str(tmp_path / "progress.json"), {"epochs_done": 1})
    keep = [".hidden", "notes.tmp", ".model.weights.h5.tmp"]  # not atomic_path's names
    for name in keep:
        (tmp_path / name).write_text("mine")
    res = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(target)])
    assert res.returncode == -signal.SIGKILL
    assert target.read_text() == "whole"
    stale = [p for p in os.listdir(tmp_path) if p not in keep and ".tmp" in p]
    assert len(stale) == 1 and stale[0].startswith(".model.weights.h5.") and stale[0].endswith(".tmp.weights.h5")

    assert remove_stale_temporaries(str(tmp_path)) == stale
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["model.weights.h5", "progress.json"])
    assert read_json(str(tmp_path / "progress.json")) == {"epochs_done": 1}
    assert remove_stale_temporaries(str(tmp_path / "missing")) == []
