"""Keras callbacks of tfmix, one class per concern.

- `ClusterMetrics`: clustering accuracy (Hungarian, majority), NMI and ARI
  of argmax q(y|x) on given labelled data, added to the epoch's logs (so
  `ModelCheckpoint`, `EarlyStopping`, `CSVLogger` and TensorBoard see them);
- `KLWarmUp`: linear KL warm-up of a model's `kl_scale`;
- `ResumableEarlyStopping`: early stopping whose state survives a resume;
- `StopOnNaN`: aborts `fit` before a non-finite loss is checkpointed;
- `SampleImages`: one row of samples per cluster as a TensorBoard image;
- `TimeLimit` and `RunProgress`: the wall-time budget and the per-epoch
  saves of `tfmix train`'s run directory;
- `AtomicBackupAndRestore`: Keras's `BackupAndRestore` whose checkpoint a
  kill cannot leave half-written.

Example:
>>> from tfmix.callbacks import ClusterMetrics, SampleImages
>>> cbs = [ClusterMetrics(x_val, y_val, prefix="val_"), SampleImages("logs/samples", every=5)]  # doctest: +SKIP
>>> stop = keras.callbacks.EarlyStopping("val_acc_hungarian", mode="max", patience=10)  # doctest: +SKIP
>>> model.fit(ds, epochs=50, callbacks=cbs + [stop])  # doctest: +SKIP
"""

import os
import time

import keras
import numpy as np

from tfmix import metrics as tmetrics
from tfmix.utils import atomic_path, atomic_save_model, atomic_write_json, read_json


class ClusterMetrics(keras.callbacks.Callback):
    """Adds clustering metrics of argmax q(y|x) on `(x, y)` to the logs at
    the end of every `every`-th epoch: `{prefix}acc_hungarian`,
    `{prefix}acc_majority`, `{prefix}nmi`, `{prefix}ari`, and for a model
    trained with labels `{prefix}error` (its classification error).

    Being in the logs, they reach the callbacks after this one in the list
    (`ModelCheckpoint(monitor="val_acc_hungarian", mode="max")`,
    `EarlyStopping`, `CSVLogger`, TensorBoard).

    Example:
    >>> metrics = ClusterMetrics(x_test, y_test, prefix="test_")  # doctest: +SKIP
    """

    def __init__(self, x, y, prefix="val_", every=1):
        super().__init__()
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"`x` and `y` must be non-empty and of one length, got {len(x)} and {len(y)}")
        if int(every) < 1:
            raise ValueError(f"`every` must be >= 1, got {every}")
        self.x, self.y, self.prefix, self.every = x, np.asarray(y), str(prefix), int(every)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        probs = self.model.cluster_probs(self.x)
        report = tmetrics.clustering_report(self.y, probs)
        for key in ("acc_hungarian", "acc_majority", "nmi", "ari"):
            logs[f"{self.prefix}{key}"] = report[key]
        if self.model.labelled:
            logs[f"{self.prefix}error"] = float(np.mean(probs.argmax(-1) != self.y))


class SampleImages(keras.callbacks.Callback):
    """Writes a grid of `model.generate` samples to TensorBoard (`log_dir`,
    an image summary named "samples") every `every` epochs and after the
    last: one row of `per_cluster` samples per cluster (a square for a
    one-component model), with the same seed every time, so that each row
    shows how its cluster's samples change over training.

    Example:
    >>> model.fit(ds, epochs=100, callbacks=[SampleImages("runs/a/tensorboard/samples", every=10)])  # doctest: +SKIP
    """

    def __init__(self, log_dir, every=10, per_cluster=10, seed=0):
        super().__init__()
        if int(every) < 1 or int(per_cluster) < 1:
            raise ValueError(f"`every` and `per_cluster` must be >= 1, got {every} and {per_cluster}")
        self.log_dir, self.every, self.per_cluster, self.seed = log_dir, int(every), int(per_cluster), int(seed)
        self.epoch = self._last = None

    def grid(self):
        """The sample grid as a [1, H, W, 1] float32 image in [0, 1]."""
        from tfmix.plots import grid_clusters

        n = self.per_cluster
        clusters, rows = grid_clusters(self.model.num_clusters, n)
        x = np.asarray(self.model.generate(clusters, seed=self.seed), np.float32)
        h, w = x.shape[1], x.shape[2]
        x = x[..., 0].reshape(rows, n, h, w).transpose(0, 2, 1, 3).reshape(rows * h, n * w)
        return x[None, :, :, None]

    def _write(self, epoch):
        import tensorflow as tf

        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            tf.summary.image("samples", self.grid(), step=epoch + 1)
        writer.flush()
        self._last = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch
        if (epoch + 1) % self.every == 0:
            self._write(epoch)

    def on_train_end(self, logs=None):
        if self.epoch is not None and self._last != self.epoch:
            self._write(self.epoch)


class KLWarmUp(keras.callbacks.Callback):
    """Raises the model's `kl_scale` linearly from 1/N to 1 over the first N
    epochs (Sønderby et al.'s warm-up); it depends only on the epoch, so a
    resumed run continues the same schedule."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_scale.assign(min(1.0, (epoch + 1) / self.epochs))

    def on_epoch_end(self, epoch, logs=None):
        # before the checkpoints are written: a saved model always holds
        # kl_scale = 1 (fine-tuning a loaded one optimises the ELBO)
        self.model.kl_scale.assign(1.0)

    def on_train_end(self, logs=None):
        self.model.kl_scale.assign(1.0)  # evaluation and export use the ELBO


class EvaluationNoise(keras.callbacks.Callback):
    """Starts the sampling noise of each evaluation during `fit` from a
    state fixed by the model's `seed` and the optimizer's step, so that a
    run resumed in a new process reports the validation -ELBO the
    uninterrupted run would have (the model's `SeedGenerator`, which draws
    evaluation noise, is not checkpointed; training noise is keyed by the
    step already, `BaseModel._noise_seed`). Models without a seed are left
    alone.

    Example:

    >>> model.fit(train, validation_data=val, callbacks=[EvaluationNoise()])  # doctest: +SKIP
    """

    SALT = 0x5EED

    def on_test_begin(self, logs=None):
        if getattr(self.model, "seed", None) is None:
            return
        step = int(self.model.optimizer.iterations.numpy())
        state = self.model.seed_generator.state
        state.assign(np.array([self.model.seed ^ self.SALT, step], dtype=state.dtype))


class TimeLimit(keras.callbacks.Callback):
    """Stops `fit` at the end of the first epoch that ends more than
    `minutes` after training started (a wall-time budget per invocation)."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = 60.0 * float(minutes)
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if time.time() - self.start > self.seconds:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping whose state survives a resumed run.

    Keras' `EarlyStopping` starts afresh at every `fit`, so a run resumed
    N times would count its patience from the last resume and could keep
    the best epoch of the last invocation only. This one writes the best
    epoch's weights (`best.weights.h5`) and its value and epoch
    (`early_stopping.json`) at every improvement, atomically, and reloads
    them at the first epoch of a resumed run: patience counts epochs since
    the best epoch of the whole run, whose weights it keeps.

    Example:
    >>> stopper = ResumableEarlyStopping("runs/a", monitor="val_neg_elbo", patience=30)
    """

    WEIGHTS_FILE = "best.weights.h5"
    STATE_FILE = "early_stopping.json"

    def __init__(self, run_dir, **kwargs):
        kwargs.setdefault("restore_best_weights", True)
        kwargs.setdefault("mode", "min")  # a -ELBO
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self._resumed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._resumed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._resumed:
            return
        self._resumed = True  # the first epoch of this fit: epoch = the resumed epoch
        state = read_json(os.path.join(self.run_dir, self.STATE_FILE), default=None)
        weights = os.path.join(self.run_dir, self.WEIGHTS_FILE)
        if not state or state.get("monitor") != self.monitor or int(state["best_epoch"]) >= epoch:
            return
        if not os.path.exists(weights):
            raise FileNotFoundError(f"{self.STATE_FILE} in {self.run_dir} names a best epoch but {weights} is missing")
        current = self.model.get_weights()
        self.model.load_weights(weights)
        self.best_weights = self.model.get_weights()
        self.model.set_weights(current)
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.wait = epoch - 1 - self.best_epoch  # epochs already run without improvement

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best is not None:  # improved this epoch
            with atomic_path(os.path.join(self.run_dir, self.WEIGHTS_FILE), suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
            atomic_write_json(os.path.join(self.run_dir, self.STATE_FILE),
                              {"monitor": self.monitor, "best": float(self.best), "best_epoch": int(epoch)})


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run's checkpoints are untouched."""


class StopOnNaN(keras.callbacks.Callback):
    """Aborts `fit` at the first non-finite loss, by raising, so that no
    epoch-end callback (checkpoint, backup) can save the broken weights.

    `progress_file`: a run's `progress.json` (optional), to say in the
    error which epoch's checkpoint is intact.

    Example:
    >>> model.fit(ds, epochs=10, callbacks=[StopOnNaN()])  # doctest: +SKIP
    """

    def __init__(self, progress_file=None):
        super().__init__()
        self.progress_file = progress_file
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            done = read_json(self.progress_file, default={}).get("epochs_done", 0) if self.progress_file else 0
            where = os.path.dirname(self.progress_file) if self.progress_file else "the run"
            kept = f"the checkpoint of epoch {done} is intact" if done else "no epoch had finished"
            raise TrainingDiverged(
                f"training diverged: the loss is {float(loss)} at epoch {self.epoch + 1}, "
                f"batch {batch + 1}; {kept} in {where} (lower the learning rate)"
            )


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that writes its checkpoint (the
    weights with the optimizer state, then the epoch) through temporary
    files renamed into place, so that a process killed while it saves
    leaves the previous epoch's checkpoint whole. Keras's own writes the
    weights file in place: a SIGKILL during that write left an HDF5 file
    that the resumed run could not open ("bad object header version
    number"; `tests/test_interrupt.py`). A kill between the two renames
    leaves the new weights beside the old epoch: the resumed run repeats
    one epoch from the newer weights.

    Example:
    >>> model.fit(ds, epochs=10, callbacks=[AtomicBackupAndRestore("run/backup")])  # doctest: +SKIP
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        atomic_write_json(self._training_metadata_path,
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class RunProgress(keras.callbacks.Callback):
    """Atomically saves the model (`model_file`) and the progress
    (`progress_file`: epochs done, cumulative wall time, the last logs)
    after every epoch. Wall time accumulates across resumed sessions."""

    def __init__(self, run_dir, progress_file="progress.json", model_file="model.keras"):
        super().__init__()
        self.run_dir, self.progress_file, self.model_file = run_dir, progress_file, model_file
        prev = read_json(os.path.join(run_dir, progress_file), default={})
        self.wall_before = float(prev.get("wall_time_s", 0.0))

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        atomic_save_model(self.model, os.path.join(self.run_dir, self.model_file))
        atomic_write_json(
            os.path.join(self.run_dir, self.progress_file),
            {
                "epochs_done": epoch + 1,
                "wall_time_s": round(self.wall_before + time.time() - self.start, 1),
                "last_logs": {k: float(v) for k, v in (logs or {}).items()},
            },
        )
