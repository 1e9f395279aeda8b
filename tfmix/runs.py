"""Run directories: the training pipeline behind `tfmix train`, which resumes.

A run directory holds:

- `run.json`: what was asked (model, hyperparameters, data, seed); a rerun
  of the same command must agree with it (only `epochs` may grow, and
  `jit_compile` may change);
- `model.keras`: the model after the last finished epoch (written
  atomically every epoch, optimizer state included);
- `backup/`: Keras `BackupAndRestore` state, so that the same command
  resumes a killed run from its last finished epoch;
- `log.csv` (one row per epoch, every ELBO term, test clustering metrics),
  `tensorboard/`, and `progress.json` (epochs done, cumulative wall time;
  with early stopping also the best epoch, whose weights `model.keras` holds);
- with early stopping, `best.weights.h5` and `early_stopping.json`: the best
  epoch so far, so that a resumed run counts its patience from it;
- `lock`: the process training in it now (`RunLock`).
"""

import csv
import math
import os

import keras
import numpy as np

from tfmix import data as tdata
from tfmix.callbacks import (
    AtomicBackupAndRestore, ClusterMetrics, EvaluationNoise, KLWarmUp, ResumableEarlyStopping, RunProgress,
    SampleImages, StopOnNaN, TimeLimit,
)
from tfmix.hardware import (DTYPE_POLICIES, decoder_logits_dtype, default_jit_compile, keras_dtype_policy,
                            resolve_dtype_policy)
from tfmix.models import get_model_class
from tfmix.optimizers import FusedAdam
from tfmix.strategies import STRATEGIES, make_strategy, single_device, worker_dir
from tfmix.utils import atomic_path, atomic_save_model, atomic_write_json, read_json, remove_stale_temporaries

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
LOG_FILE = "log.csv"
PROGRESS_FILE = "progress.json"
LABELLED_FILE = "labelled_indices.npy"  # semi-supervised runs: the labelled training images
BACKUP_DIR = "backup"  # Keras' BackupAndRestore state
SAMPLE_EVERY = 10  # epochs between the TensorBoard sample grids of tfmix train
#: run.json keys that may differ when a run is resumed.
RESUMABLE_KEYS = ("epochs", "jit_compile")
#: Settings added after the first runs, with the value older run.json files
#: imply, so that those runs still resume.
LATER_KEYS = {"validation": None, "patience": None, "jit_compile": False, "clip_norm": None,
              "dtype_policy": "float32", "warmup_epochs": 0, "adam_epsilon": 1e-7}
#: Keras's Adam epsilon, tfmix's default. Adam is invariant to the scale of
#: the loss but for its epsilon: tfmix minimises the batch *mean* of the
#: loss, so an author who minimised the batch *sum* with epsilon e (Rui
#: Shu's GMVAE: TF1 Adam, e = 1e-8, batch 100) trained with e / batch_size
#: (1e-10) on tfmix's scale (`adam_epsilon`; BENCHMARKS.md section 10).
ADAM_EPSILON = 1e-7
#: Kingma et al.'s alpha = 0.1 N, with the objective divided by N: the
#: weight of the mean classification term of semi-supervised runs
KINGMA_ALPHA = 0.1
#: How a semi-supervised run weighs its terms, as (labelled_fraction,
#: classification_weight) from N_l labels among N training images (the
#: models' arguments; BENCHMARKS.md section 10):
#: - "kingma": J^alpha divided by N (`dpkingma/nips14-ssl`): each ELBO once
#:   per epoch, 0.1 x the mean labelled cross-entropy;
#: - "maaloe": Maaloe et al.'s code (`larsmaaloee/auxiliary-deep-generative-models`
#:   `models/sdgmssl.py`): the two batch means equally, the mean labelled
#:   cross-entropy x 0.1 N / N_l (J^alpha with its labelled terms x N / N_l);
#: - "per_batch": the two batch means and the cross-entropy, weight 1 each.
WEIGHTINGS = {
    "kingma": lambda n_labels, n: (min(1.0, n_labels / n), KINGMA_ALPHA),
    "maaloe": lambda n_labels, n: (1.0, KINGMA_ALPHA * n / n_labels),
    "per_batch": lambda n_labels, n: (1.0, 1.0),
}


def check_num_labels(num_labels):
    """`num_labels`: an int >= 0 (a balanced labelled subset of that size,
    streamed beside the unlabelled data) or "all" (fully supervised)."""
    if isinstance(num_labels, str):
        if num_labels == "all":
            return "all"
        try:
            num_labels = int(num_labels)
        except ValueError:
            raise ValueError(f"`num_labels` must be an integer >= 0 or 'all', got {num_labels!r}") from None
    if int(num_labels) < 0:
        raise ValueError(f"`num_labels` must be an integer >= 0 or 'all', got {num_labels!r}")
    return int(num_labels)


def run_config(model, dataset, *, epochs, batch_size, seed, learning_rate=1e-3,
               num_labels=0, binarize=None, limit=None, model_kwargs=None,
               strategy="default", validation=None, patience=None, jit_compile=None,
               clip_norm=None, dtype_policy="auto", warmup_epochs=0, weighting="kingma",
               adam_epsilon=None):
    """The `run.json` of a run (validated).

    `validation`: the split monitored every epoch (default: the dataset's
    validation split if it has one, else its test split); `patience`: stop
    after that many epochs without a better validation -ELBO and keep the
    best weights (early stopping with look-ahead; None: no early stopping);
    `jit_compile`: compile the train step with XLA (single device only: XLA
    has no CPU collectives for tf.distribute strategies; None: the model's
    `default_jit_compile` on one device in float32, else False: XLA does
    not use oneDNN's bfloat16 matmuls and was slower in bfloat16, BENCHMARKS.md
    section 11; with `dtype_policy="auto"` it stays "auto" until `train`
    knows the run's dtype: a resumed float32 run keeps its float32 XLA
    setting on a CPU whose new runs take bfloat16); `clip_norm`: clip
    each gradient to this norm (Adam's `clipnorm`; None: no clipping);
    `adam_epsilon`: Adam's epsilon on the batch mean of the loss (None:
    Keras's 1e-7, `ADAM_EPSILON`);
    `dtype_policy`: "mixed_bfloat16" runs the hidden layers in bfloat16 (the
    heads, densities and KLs stay float32; the weights are float32),
    "mixed_bfloat16_logits" the decoder's output layer too (the models'
    `decoder_logits_dtype="compute"`; the densities stay float32), "auto"
    this CPU's default for the model (`tfmix.hardware.default_dtype_policy`) for a new
    run and the run's own dtype for a resumed one (`train` resolves it and
    writes the concrete policy to run.json: a run keeps the dtype it
    started with, whichever CPU resumes it);
    `warmup_epochs`: KL warm-up over that many epochs (models with
    `supports_warmup`, e.g. CaGeM; 0: none). A semi-supervised run
    (`num_labels` = N_l > 0) sets `labelled_fraction` and
    `classification_weight` in `model_kwargs` from `weighting` unless
    `model_kwargs` names them: "kingma" (the default, Kingma et al.'s
    J^alpha: N_l / N and 0.1), "maaloe" (Maaloe et al.'s code: 1 and
    0.1 N / N_l) or "per_batch" (1 and 1); see `WEIGHTINGS`.
    """
    model_class = get_model_class(model)
    tdata.check_dataset(dataset)
    has_labels = tdata.DATASETS[dataset][1]
    if binarize is None:
        binarize = "none" if dataset == "binarized_mnist" else "dynamic"
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if int(v) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {v}")
    if float(learning_rate) <= 0:
        raise ValueError(f"`learning_rate` must be > 0, got {learning_rate}")
    num_labels = check_num_labels(num_labels)
    if num_labels and not has_labels:
        raise ValueError(f"dataset {dataset!r} has no labels for --labels")
    if validation is not None:
        tdata.check_dataset(dataset, validation)
    if patience is not None and int(patience) < 0:
        raise ValueError(f"`patience` must be >= 0, got {patience}")
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"`dtype_policy` must be one of {DTYPE_POLICIES}, got {dtype_policy!r}")
    if clip_norm is not None and not float(clip_norm) > 0:
        raise ValueError(f"`clip_norm` must be > 0, got {clip_norm}")
    if int(warmup_epochs) < 0:
        raise ValueError(f"`warmup_epochs` must be >= 0, got {warmup_epochs}")
    adam_epsilon = ADAM_EPSILON if adam_epsilon is None else adam_epsilon
    if not float(adam_epsilon) > 0:  # also NaN
        raise ValueError(f"`adam_epsilon` must be > 0, got {adam_epsilon}")
    if int(warmup_epochs) and not getattr(model_class, "supports_warmup", False):
        raise ValueError(f"model {model!r} has no KL warm-up (`warmup_epochs` must be 0)")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"`weighting` must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if jit_compile is None:  # the model's measured fastest; XLA only on one device, in float32
        # with dtype "auto", the dtype (and so XLA) is known only once `train`
        # has seen whether the run resumes: "auto" until then
        jit_compile = ("auto" if dtype_policy == "auto" and single_device(strategy)
                       else _default_jit_compile(model, strategy, dtype_policy))
    if jit_compile is True and not single_device(strategy):
        raise ValueError(
            f"--jit-compile applies to single-device runs only: XLA cannot be combined with the "
            f"{strategy!r} strategy on the CPU (no XLA collectives); drop one of the two"
        )
    model_kwargs = dict(model_kwargs or {})
    if isinstance(num_labels, int) and num_labels:
        n = tdata.split_size(dataset, "train")
        n = n if limit is None else min(int(limit), n)
        labelled_fraction, classification_weight = WEIGHTINGS[weighting](num_labels, n)
        model_kwargs.setdefault("labelled_fraction", labelled_fraction)
        model_kwargs.setdefault("classification_weight", classification_weight)
    return {
        "model": model,
        "dataset": dataset,
        "binarize": binarize,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "learning_rate": float(learning_rate),
        "num_labels": num_labels,
        "limit": None if limit is None else int(limit),
        "model_kwargs": model_kwargs,
        "strategy": strategy,
        "validation": validation,
        "patience": None if patience is None else int(patience),
        "jit_compile": jit_compile if jit_compile == "auto" else bool(jit_compile),
        "clip_norm": None if clip_norm is None else float(clip_norm),
        "dtype_policy": dtype_policy,
        "warmup_epochs": int(warmup_epochs),
        "adam_epsilon": float(adam_epsilon),
    }


def _default_jit_compile(model, strategy, dtype_policy):
    """XLA's default for `model` trained with `strategy` in `dtype_policy`
    ("auto": this CPU's default for the model): the model's
    `default_jit_compile` on one device, in float32 only."""
    policy = resolve_dtype_policy(dtype_policy, model=model)
    return single_device(strategy) and default_jit_compile(get_model_class(model), policy)


def resolve_jit_compile(config):
    """Whether a run config trains with XLA: its `jit_compile`, or for
    "auto" the model's default in the run's concrete dtype (`run_config`)."""
    jit = config.get("jit_compile", False)
    if jit == "auto":
        jit = _default_jit_compile(config["model"], config.get("strategy"), config.get("dtype_policy", "float32"))
    return bool(jit)


def build_model(config, steps_per_epoch=None):
    """A compiled model for a run config. With `steps_per_epoch`, the steps
    per execution divide it (Keras runs whole executions, so 10 steps per
    execution of a 3-step epoch would train 10 steps an epoch)."""
    cls = get_model_class(config["model"])
    kwargs = dict(config["model_kwargs"])
    kwargs.setdefault("seed", config["seed"])
    policy = resolve_dtype_policy(config.get("dtype_policy", "float32"), model=config["model"])
    kwargs.setdefault("decoder_logits_dtype", decoder_logits_dtype(policy))
    if config["num_labels"]:
        kwargs["labelled"] = True
    model = cls(**kwargs)
    classes = tdata.DATASETS[config["dataset"]][2]
    if config["num_labels"] and model.num_clusters != classes:
        raise ValueError(
            f"training with labels needs one cluster per class: {config['dataset']} has "
            f"{classes} classes, the model has num_clusters={model.num_clusters}"
        )
    model.compile(
        # Keras's Adam with each variable's update in one kernel (tfmix.optimizers)
        optimizer=FusedAdam(config["learning_rate"], epsilon=config.get("adam_epsilon", ADAM_EPSILON),
                            clipnorm=config.get("clip_norm")),
        jit_compile=resolve_jit_compile(config),
        # several steps per tf.function call: the same updates, less Python
        # between steps (the NaN guard then sees the loss every N steps)
        steps_per_execution=executed_steps(model, config, steps_per_epoch),
    )
    return model


def executed_steps(model, config, steps_per_epoch=None):
    """The model's `default_steps_per_execution` on one device (1 under a
    strategy), cut to a divisor of `steps_per_epoch` when it is given."""
    steps = model.default_steps_per_execution if single_device(config.get("strategy")) else 1
    return math.gcd(steps, int(steps_per_epoch)) if steps_per_epoch else steps


def trim_log(path, start_epoch):
    """Removes the rows of epochs >= `start_epoch` from the CSV log at
    `path` (if it exists), so that a resumed run logs every epoch once: a
    run killed after logging an epoch but before its checkpoint committed it
    repeats that epoch. Returns the number of rows removed."""
    if not os.path.exists(path):
        return 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0
    column = rows[0].index("epoch")
    kept = [r for r in rows[1:] if r and int(r[column]) < start_epoch]
    removed = len(rows) - 1 - len(kept)
    if removed:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([rows[0]] + kept)
    return removed


def resumed_epoch(run_dir):
    """The epoch a rerun of the run in `run_dir` starts at: the one Keras'
    `BackupAndRestore` state (`backup/training_metadata.json`) names, else 0."""
    meta = read_json(os.path.join(run_dir, BACKUP_DIR, "training_metadata.json"), default=None)
    return int(meta["epoch"]) if meta else 0


def init_from_preset(model, preset, config):
    """Loads a zoo preset's weights into a fresh run's `model` and returns
    the epochs its card counts (the run goes on from there). The preset must
    hold the same model class and configuration (apart from the seed). A
    preset stores no optimizer state (`publish` strips it): Adam restarts
    its moments."""
    from tfmix import presets

    source, card = presets.load_with_card(preset, compile=False)
    ours, theirs = dict(model.get_config()), dict(source.get_config())
    for c in (ours, theirs):
        for key in ("name", "seed", "trainable", "dtype", "decoder_logits_dtype"):  # not the architecture
            c.pop(key, None)
    if type(source) is not type(model) or ours != theirs:
        diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        raise ValueError(
            f"--init-from {preset}: the preset is a {type(source).__name__} with other settings "
            f"({', '.join(diff) or 'class'}) than this run's {type(model).__name__}")
    model.set_weights(source.get_weights())
    epochs = int(card.get("epochs") or 0)
    if epochs >= config["epochs"]:
        raise ValueError(f"--init-from {preset}: its card counts {epochs} epochs, not fewer than --epochs {config['epochs']}")
    return epochs


class RunLocked(ValueError):
    """Another live process is training in this run directory."""


class RunLock:
    """An exclusive lock on a run directory, held while a process trains in
    it: `run_dir/lock` holds the holder's process id and host, and an
    advisory `flock` on it that the kernel releases when the holder exits,
    however it exits. A second process is refused with `RunLocked` naming
    the directory and the holder's pid; a lock file left by a killed
    process is taken over.

    Example:
    >>> with RunLock("runs/gmvae"):  # doctest: +SKIP
    ...     train_in_it()
    """

    FILE = "lock"

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, self.FILE)
        self._fd = None

    def holder(self):
        """{"pid", "host", "since"} written by the holder (or {})."""
        return read_json(self.path, default={}) if os.path.exists(self.path) else {}

    def __enter__(self):
        import fcntl
        import json
        import socket
        import time

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                holder = self.holder()
            except ValueError:
                holder = {}
            raise RunLocked(
                f"{os.path.dirname(self.path)} is in use by another tfmix process "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}); wait for it or use another --out"
            ) from None
        # ours now (a stale file of a killed holder is simply overwritten)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False


def train(config, run_dir, verbose=1, time_limit=None, init_from=None):
    """Trains (or resumes) the run `config` in `run_dir`; returns the model.

    `init_from`: a preset name; a new run starts from its weights and
    counts its card's epochs (`init_from_preset`); ignored when the run
    directory already holds a resumable run.

    `time_limit`: minutes of training for this invocation; the epoch that
    ends past it is the last (with early stopping the best epoch's weights
    are kept, as when it stops early; rerun the command to go on).

    With `strategy="multiworker"` every worker runs this same call (the same
    command on every host, TF_CONFIG naming the task); the chief writes
    `run_dir`, the others `run_dir/worker-<i>` (see `worker_dir`). A
    second process training in the same directory is refused (`RunLock`).
    """
    if time_limit is not None and not float(time_limit) > 0:
        raise ValueError(f"`time_limit` must be > 0 minutes, got {time_limit}")
    run_dir = worker_dir(run_dir, config["strategy"])
    os.makedirs(run_dir, exist_ok=True)
    with RunLock(run_dir):  # one training per run directory
        return _train(config, run_dir, verbose, time_limit, init_from)


def _train(config, run_dir, verbose, time_limit, init_from):
    import tensorflow as tf

    for d in (run_dir, os.path.join(run_dir, BACKUP_DIR)):  # what a killed run was writing
        remove_stale_temporaries(d)

    run_file = os.path.join(run_dir, RUN_FILE)
    old = read_json(run_file, default=None)
    if old is not None:
        old = {**LATER_KEYS, **old}
    if config.get("dtype_policy") == "auto":  # a run keeps its dtype; a new one takes this CPU's default
        config = {**config, "dtype_policy": old["dtype_policy"] if old else resolve_dtype_policy("auto", model=config["model"])}
    # XLA's default follows the dtype the run trains in (a float32 run resumed
    # on a CPU whose new runs take bfloat16 keeps its float32 XLA setting)
    config = {**config, "jit_compile": resolve_jit_compile(config)}
    if old is not None:
        diff = sorted(
            k for k in set(old) | set(config)
            if k not in RESUMABLE_KEYS and old.get(k) != config.get(k)
        )
        if diff:
            raise ValueError(
                f"{run_dir} holds a run with different settings ({', '.join(diff)});"
                " use another --out"
            )
    atomic_write_json(run_file, config)
    progress = read_json(os.path.join(run_dir, PROGRESS_FILE), default={})
    if progress.get("stopped_early"):
        print(f"{run_dir}: stopped early (best epoch {progress.get('best_epoch')}); nothing to do")
        return load_run(run_dir)[1]
    keras.utils.set_random_seed(config["seed"])

    strategy = make_strategy(config["strategy"])
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras_dtype_policy(config.get("dtype_policy", "float32")))
    split = "train" if config["limit"] is None else f"train[:{config['limit']}]"
    global_batch = config["batch_size"]
    steps = tdata.steps_per_epoch(tdata.split_size(config["dataset"], split), global_batch)
    try:
        with strategy.scope():
            model = build_model(config, steps)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    # the epoch this invocation starts at (BackupAndRestore resumes there):
    # the training data of epoch e depends on (seed, e) only, so a resumed
    # run sees what the uninterrupted run would have seen
    start_epoch = resumed_epoch(run_dir)
    if init_from and not start_epoch:
        start_epoch = init_from_preset(model, init_from, config)
    log_file = os.path.join(run_dir, LOG_FILE)
    trim_log(log_file, start_epoch)  # the rows of an epoch a killed run did not commit
    if config["num_labels"] and config["num_labels"] != "all":
        train_ds, idx = tdata.semi_supervised(
            config["dataset"], config["num_labels"], batch_size=global_batch,
            binarize=config["binarize"], seed=config["seed"], limit=config["limit"],
            start_epoch=start_epoch,
        )
        np.save(os.path.join(run_dir, LABELLED_FILE), idx)
    else:  # with --labels all, fully supervised (x, y) batches
        train_ds, stream_steps = tdata.training_stream(
            config["dataset"], split, batch_size=global_batch, labels=config["num_labels"] == "all",
            binarize=config["binarize"], seed=config["seed"], start_epoch=start_epoch,
        )
        assert stream_steps == steps, (stream_steps, steps)
    x_test, y_test = tdata.split_arrays(config)
    val_split = tdata.validation_split(config)
    x_val, y_val = (x_test, y_test) if val_split == "test" else tdata.split_arrays(config, val_split)
    val_ds = tdata.array_batches(x_val, y_val)
    if config["strategy"] == "multiworker":
        # shard by example (tfds MNIST has one file per split, too few to
        # shard by file); every worker reads the same seeded pipeline
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)

    callbacks = [StopOnNaN(os.path.join(run_dir, PROGRESS_FILE)), EvaluationNoise()]
    if config.get("warmup_epochs"):
        callbacks.append(KLWarmUp(config["warmup_epochs"]))
    timer = None if time_limit is None else TimeLimit(time_limit)
    if timer is not None:
        callbacks.append(timer)
    if y_test is not None and model.num_clusters > 1:
        callbacks.append(ClusterMetrics(x_test, y_test, prefix="test_"))
    stopper = None
    if config.get("patience") is not None:
        # a labelled model logs the -ELBO of labelled (x, y) validation data as labelled_neg_elbo
        labelled_val = model.labelled and y_val is not None
        stopper = ResumableEarlyStopping(
            run_dir, monitor="val_labelled_neg_elbo" if labelled_val else "val_neg_elbo", mode="min",
            patience=config["patience"], restore_best_weights=True,
        )
        callbacks.append(stopper)
    callbacks += [
        RunProgress(run_dir, PROGRESS_FILE, MODEL_FILE),
        keras.callbacks.CSVLogger(log_file, append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        SampleImages(os.path.join(run_dir, "tensorboard", "samples"), every=SAMPLE_EVERY),
        # last: its checkpoint commits the epoch, after everything else has
        # written it (a run killed before the commit repeats the epoch)
        AtomicBackupAndRestore(os.path.join(run_dir, BACKUP_DIR), delete_checkpoint=False),
    ]
    model.fit(
        train_ds, epochs=config["epochs"], initial_epoch=start_epoch, steps_per_epoch=steps, validation_data=val_ds,
        callbacks=callbacks, verbose=verbose,
    )
    timed_out = timer is not None and timer.stopped_epoch is not None
    model_file = os.path.join(run_dir, MODEL_FILE)
    update = {}
    if stopper is not None and stopper.best_weights is not None:
        # the best epoch's weights (of the whole run), which the stopper's
        # on_train_end restored, also when the time limit ended the fit
        atomic_save_model(model, model_file)
        update.update(best_epoch=int(stopper.best_epoch) + 1, stopped_early=bool(stopper.stopped_epoch))
    if not os.path.exists(model_file) and start_epoch >= config["epochs"]:
        # a finished run restored from its resumable state only (a new machine,
        # `scripts/campaign.py`): no epoch ran, so the model comes from the
        # weights BackupAndRestore just loaded
        atomic_save_model(model, model_file)
    if timed_out:
        update.update(stopped_by_time_limit=True, time_limit_min=float(time_limit))
    if update:
        progress_file = os.path.join(run_dir, PROGRESS_FILE)
        atomic_write_json(progress_file, {**read_json(progress_file, default={}), **update})
    return model


def load_run(run_dir):
    """(config, model) of a finished or partial run directory."""
    run_file = os.path.join(run_dir, RUN_FILE)
    model_file = os.path.join(run_dir, MODEL_FILE)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"no run directory {run_dir!r}")
    if not os.path.exists(run_file) or not os.path.exists(model_file):
        raise FileNotFoundError(
            f"{run_dir!r} is not a tfmix run (no {RUN_FILE} or {MODEL_FILE}; "
            "has an epoch finished?)"
        )
    config = read_json(run_file)
    try:
        model = keras.saving.load_model(model_file)
    except Exception as e:  # corrupt or foreign file
        raise ValueError(f"cannot load {model_file}: {type(e).__name__}: {e}") from None
    return config, model


