"""`tfmix.optimizers.FusedAdam` against Keras's Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmix.optimizers import FusedAdam

from conftest import tiny_model


def _initial_weights():
    return [w.numpy() for w in tiny_model("gmvae").weights]


def _train(make_optimizer, x, start, steps=6, strategy=None):
    with (strategy or tf.distribute.get_strategy()).scope():
        model = tiny_model("gmvae")
        model.set_weights(start)
        model.compile(optimizer=make_optimizer())
    model.fit(x, batch_size=16, epochs=steps * 16 // len(x), shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("kwargs", [{}, {"clipnorm": 0.5}, {"beta_1": 0.5, "epsilon": 1e-4}])
def test_fused_adam_follows_keras_adam(kwargs):
    """The same gradients applied by both: the same variables and moments."""
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (1,)]
    start = [rng.normal(size=s).astype("float32") for s in shapes]
    grads = [[(rng.normal(size=s) * 10.0 ** rng.integers(-4, 2)).astype("float32") for s in shapes]
             for _ in range(5)]
    results = []
    for cls in (FusedAdam, keras.optimizers.Adam):
        variables = [keras.Variable(w) for w in start]
        opt = cls(1e-2, **kwargs)
        for g in grads:
            opt.apply_gradients(zip([tf.constant(a) for a in g], variables))
        results.append(([v.numpy() for v in variables], [np.asarray(v) for v in opt.variables]))
    (ours, ours_state), (ref, ref_state) = results
    # the kernel forms 1 - beta_2 in float32 (1.0000467e-3 for 0.999), Keras in
    # float64 before its cast: moments agree to ~5e-5 relative, not to 1e-7
    for a, b in zip(ours + ours_state, ref + ref_state):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    # the update is not a no-op: every variable moved (by up to lr per step)
    assert all(np.abs(a - b).max() > 5e-3 for a, b in zip(ours, start))


def _close_after_training(ours, ref, start):
    """Trained from the same weights on the same data: the two runs differ by
    a few steps of float rounding (Adam amplifies it where a gradient is
    near 0), far less than the distance either travelled."""
    flat = lambda ws: np.concatenate([np.ravel(w) for w in ws])  # noqa: E731
    a, b, w = flat([v.numpy() for v in ours.weights]), flat([v.numpy() for v in ref.weights]), flat(start)
    assert np.linalg.norm(a - b) < 0.01 * np.linalg.norm(b - w)
    assert np.abs(a - w).max() > 2e-2


def test_fused_adam_under_mirrored_strategy(binary_images):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    start = _initial_weights()
    ours = _train(lambda: FusedAdam(1e-2), binary_images, start, strategy=strategy)
    ref = _train(lambda: keras.optimizers.Adam(1e-2), binary_images, start, strategy=strategy)
    _close_after_training(ours, ref, start)
    for variable in ours.weights + ours.optimizer.variables:  # the replicas stayed in sync
        copies = [np.asarray(c) for c in variable.value.values]
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0], copies[1], err_msg=variable.path)


def test_fused_adam_saves_and_loads(binary_images, tmp_path):
    model = _train(lambda: FusedAdam(3e-3, clipnorm=1.0), binary_images, _initial_weights())
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = keras.saving.load_model(path)
    assert type(back.optimizer) is FusedAdam
    assert back.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(back.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
