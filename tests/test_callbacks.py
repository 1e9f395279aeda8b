"""The public Keras callbacks (`tfmix.callbacks`) inside a real `fit`."""

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from tfmix import callbacks, metrics


def test_cluster_metrics_reach_the_logs_and_later_callbacks(binary_images):
    model = tiny_model("gmvae")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    y = np.arange(len(binary_images)) % 3
    seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))
    stop = keras.callbacks.EarlyStopping(monitor="val_acc_hungarian", mode="max", patience=5)
    hist = model.fit(binary_images, epochs=2, batch_size=16, verbose=0,
                     callbacks=[callbacks.ClusterMetrics(binary_images, y, prefix="val_"), stop, probe]).history
    report = metrics.clustering_report(y, model.cluster_probs(binary_images))
    assert hist["val_acc_hungarian"][-1] == pytest.approx(report["acc_hungarian"])
    assert hist["val_nmi"][-1] == pytest.approx(report["nmi"])
    assert "val_acc_majority" in seen[-1] and "val_ari" in seen[-1] and "val_error" not in seen[-1]
    with pytest.raises(ValueError, match="one length"):
        callbacks.ClusterMetrics(binary_images, y[:3])
    with pytest.raises(ValueError, match="every"):
        callbacks.ClusterMetrics(binary_images, y, every=0)


def _image_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(log_dir, size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    return {e.step: tf.io.decode_png(e.tensor_proto.string_val[2]).shape for e in acc.Tensors("samples")}


def test_sample_images_writes_one_row_per_cluster_every_n_epochs(binary_images, tmp_path):
    model = tiny_model("gmvae")  # K = 4
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    log_dir = str(tmp_path / "samples")
    model.fit(binary_images, epochs=3, batch_size=16, verbose=0,
              callbacks=[callbacks.SampleImages(log_dir, every=2, per_cluster=5)])
    assert glob.glob(f"{log_dir}/events.out.tfevents.*")
    shapes = _image_events(log_dir)
    assert sorted(shapes) == [2, 3]  # every 2 epochs, and after the last
    assert tuple(shapes[2]) == (4 * 28, 5 * 28, 1)
    grid = callbacks.SampleImages(log_dir, per_cluster=5)
    grid.set_model(model)
    g = grid.grid()
    x = model.generate(np.repeat(np.arange(4), 5).astype(np.int32), seed=0)
    np.testing.assert_allclose(g[0, :28, 28:56, 0], x[1, :, :, 0], atol=1e-6)  # row y = 0, column 1
    np.testing.assert_allclose(g[0, 28:56, :28, 0], x[5, :, :, 0], atol=1e-6)  # row y = 1, column 0
    with pytest.raises(ValueError, match="every"):
        callbacks.SampleImages(log_dir, every=0)


def test_a_save_killed_half_way_leaves_the_previous_backup_whole(binary_images, tmp_path):
    """`AtomicBackupAndRestore`: a save that dies after writing part of the
    weights (as under SIGKILL) leaves the last epoch's checkpoint loadable,
    and a resumed `fit` starts after that epoch. Keras's own
    `BackupAndRestore` writes in place, so the same failure leaves a
    truncated HDF5 file (checked here too)."""
    import json
    import os

    backup = str(tmp_path / "backup")

    class Killed(Exception):
        pass

    def fit(epochs, cls=callbacks.AtomicBackupAndRestore):
        model = tiny_model("vae")
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        hist = model.fit(binary_images, epochs=epochs, batch_size=24, verbose=0,
                         callbacks=[cls(backup, delete_checkpoint=False)])
        return model, hist

    model, _ = fit(1)
    weights = os.path.join(backup, "latest.weights.h5")
    assert json.load(open(os.path.join(backup, "training_metadata.json")))["epoch"] == 1

    def dies_half_way(self, filepath, overwrite=True):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # the start of a file, then the kill
        raise Killed

    original = keras.Model.save_weights
    for cls, whole, epochs in ((callbacks.AtomicBackupAndRestore, True, 2), (keras.callbacks.BackupAndRestore, False, 3)):
        keras.Model.save_weights = dies_half_way
        try:
            with pytest.raises(Killed):
                fit(epochs, cls)  # one more epoch than the checkpoint's, killed while it saves
        finally:
            keras.Model.save_weights = original
        if whole:
            assert [p for p in os.listdir(backup) if ".tmp" in p] == []
            resumed, hist = fit(2)
            assert len(hist.history["loss"]) == 1  # epoch 2 only: resumed after epoch 1
        else:
            with pytest.raises(Exception):
                tiny_model("vae").load_weights(weights)
