"""`tfmix.distributions` on their own: each helper against TFP's reference."""

import numpy as np
import pytest
import tensorflow as tf

from tfmix import distributions as D


def _logits_and_pixels(seed=0):
    rng = np.random.default_rng(seed)
    # large logits too: a decoder saturates on the background pixels
    logits = np.concatenate([rng.normal(0, 3, (4, 3, 50)), rng.uniform(-80, 80, (4, 3, 50))], -1)
    binary = (rng.random((4, 1, 100)) < 0.4).astype("float32")  # broadcast over the K axis
    grey = rng.random((4, 1, 100)).astype("float32")  # the "Bernoulli loss" on grey levels
    return tf.constant(logits, tf.float32), binary, grey


@pytest.mark.parametrize("pixels", ["binary", "grey"])
def test_logit_bernoulli_log_prob_and_gradient_equal_tfp(pixels):
    logits, binary, grey = _logits_and_pixels()
    x = binary if pixels == "binary" else grey
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = D.bernoulli_likelihood(logits).log_prob(x)
        ref = D.tfd.Independent(D.tfd.Bernoulli(logits=logits, dtype=tf.float32), 1).log_prob(x)
        weights = tf.constant(np.random.default_rng(1).normal(size=ours.shape), tf.float32)
        ours_sum, ref_sum = tf.reduce_sum(weights * ours), tf.reduce_sum(weights * ref)
    assert ours.shape == ref.shape == (4, 3)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tape.gradient(ours_sum, logits).numpy(), tape.gradient(ref_sum, logits).numpy(),
                               rtol=1e-5, atol=1e-6)
    # against the density written out in NumPy (float64)
    l = logits.numpy().astype("float64")
    exact = (x * -np.logaddexp(0, -l) + (1 - x) * -np.logaddexp(0, l)).sum(-1)
    np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-5, atol=1e-3)


def test_logit_bernoulli_keeps_everything_else_of_tfp_bernoulli():
    logits = tf.constant([[-2.0, 0.0, 3.0]])
    ours, ref = D.LogitBernoulli(logits=logits, dtype=tf.float32), D.tfd.Bernoulli(logits=logits, dtype=tf.float32)
    assert isinstance(ours, D.tfd.Bernoulli)
    np.testing.assert_allclose(ours.mean().numpy(), ref.mean().numpy())
    np.testing.assert_allclose(ours.entropy().numpy(), ref.entropy().numpy(), rtol=1e-6)
    seed = tf.constant([1, 2], tf.int32)
    np.testing.assert_array_equal(ours.sample(5, seed=seed).numpy(), ref.sample(5, seed=seed).numpy())
    assert ours.parameters["logits"] is logits and ours.batch_shape == (1, 3)
    # sliced and copied like any TFP distribution
    assert ours[0, 1:].batch_shape == (2,)
    # with probs it is tfd.Bernoulli unchanged
    p = D.LogitBernoulli(probs=[0.25, 0.5], dtype=tf.float32)
    np.testing.assert_allclose(p.log_prob([1.0, 0.0]).numpy(), np.log([0.25, 0.5]), rtol=1e-6)
