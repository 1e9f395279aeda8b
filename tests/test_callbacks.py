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
