"""tf.distribute strategies and worker roles of a run (`--strategy`).

`default` trains on one device; `mirrored` on the local devices
(MirroredStrategy); `multiworker` across hosts (MultiWorkerMirroredStrategy,
one process per host, TF_CONFIG naming each task). Every worker runs the
same command; the chief writes the run directory, the others
`run_dir/worker-<i>`.
"""

import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")


def single_device(strategy):
    """Whether `strategy` trains on one device (no tf.distribute replicas)."""
    return strategy in (None, "default")


def worker_role(strategy):
    """(is_chief, worker_index) of this process. Only `multiworker` has
    several workers: TF_CONFIG names this task; the chief is the task of
    type "chief", else worker 0."""
    if strategy != "multiworker":
        return True, 0
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--strategy multiworker needs the TF_CONFIG environment variable "
            '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}})'
        )
    try:
        tf_config = json.loads(raw)
        task = tf_config["task"]
        kind, index = task["type"], int(task["index"])
        cluster = tf_config["cluster"]
        if kind not in cluster or index >= len(cluster[kind]):
            raise KeyError(f"task {kind}:{index} is not in the cluster")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"TF_CONFIG is not a valid cluster description: {e}") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return chief, index if kind == "worker" else 0


def worker_dir(run_dir, strategy):
    """Where this process writes: `run_dir` for the chief (single-device and
    mirrored runs included), `run_dir/worker-<i>` for the other workers of a
    multi-worker run (each keeps its own backup, so every worker resumes
    from the same epoch)."""
    chief, index = worker_role(strategy)
    return run_dir if chief else os.path.join(run_dir, f"worker-{index}")


_MULTI_WORKER = []  # the process's one MultiWorkerMirroredStrategy


def make_strategy(name):
    """The tf.distribute strategy `name`. `multiworker` must be created at
    program start-up, before any other TensorFlow work (collective ops are
    configured then): call this first; later calls return the same object."""
    import tensorflow as tf

    if single_device(name):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        worker_role(name)  # validates TF_CONFIG
        if not _MULTI_WORKER:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        return _MULTI_WORKER[0]
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
