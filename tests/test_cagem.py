"""CaGeM: its ELBO (sum over y exact) against naive ancestral sampling."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax
from scipy.stats import norm

from conftest import tiny_model
from test_elbo import N_MC, assert_close, bernoulli_loglik, model_mean


def _t(a):
    return tf.constant(a, tf.float32)


def _naive_neg_elbo(model, xb, rng, y_fixed=None, n=N_MC):
    """log q(y,z1,z2|x) - log p(x,y,z1,z2), ancestral samples from q."""
    K = model.num_clusters
    x = np.repeat(xb[None], n, 0)
    qz1 = model.q_z1(_t(xb[None]))
    l1, s1 = qz1.loc.numpy()[0], qz1.stddev().numpy()[0]
    z1 = l1 + s1 * rng.standard_normal((n, model.latent_dim))
    log_qy = log_softmax(model.q_y_logits(_t(x), _t(z1)).numpy(), -1)
    if y_fixed is None:
        y = (rng.random((n, 1)) > np.cumsum(np.exp(log_qy), -1)).sum(-1).clip(0, K - 1)
    else:
        y = np.full(n, y_fixed)
    y1 = np.eye(K)[y]
    qz2 = model.q_z2(_t(x), _t(z1), _t(y1))
    l2, s2 = qz2.loc.numpy(), qz2.stddev().numpy()
    z2 = l2 + s2 * rng.standard_normal(l2.shape)
    pz1 = model.p_z1(_t(z2), _t(y1))
    log_q = norm.logpdf(z1, l1, s1).sum(-1) + norm.logpdf(z2, l2, s2).sum(-1)
    if y_fixed is None:
        log_q += log_qy[np.arange(n), y]
    log_p = (bernoulli_loglik(xb, model.decoder(_t(z1), _t(y1)).numpy())
             + norm.logpdf(z1, pz1.loc.numpy(), pz1.stddev().numpy()).sum(-1)
             + log_softmax(model.p_y_logits(_t(z2)).numpy(), -1)[np.arange(n), y]
             + norm.logpdf(z2).sum(-1))
    return log_q - log_p


def test_unlabelled_elbo_against_ancestral_sampling(binary_images):
    model = tiny_model("cagem")
    x = binary_images[:3].reshape(3, -1)
    val, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    rng = np.random.default_rng(0)
    for b in range(3):
        assert_close(val[b], se[b], _naive_neg_elbo(model, x[b], rng))


def test_labelled_elbo_against_ancestral_sampling(binary_images):
    model = tiny_model("cagem", labelled=True)
    x = binary_images[:3].reshape(3, -1)
    y = np.array([2, 0, 3])
    val, se = model_mean(lambda: model.labelled_terms(tf.constant(x), tf.constant(y))["neg_elbo"])
    rng = np.random.default_rng(1)
    for b in range(3):
        assert_close(val[b], se[b], _naive_neg_elbo(model, x[b], rng, y_fixed=y[b]))


def test_two_classifiers_are_distributions(binary_images):
    model = tiny_model("cagem", labelled=True)
    q = model.cluster_probs(binary_images[:5])
    p = model.generative_classifier(binary_images[:5])
    for probs in (q, p):
        assert probs.shape == (5, 4)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(q, model.cluster_probs(binary_images[:5]))  # fixed seed
    assert model.classify(binary_images[:5]).shape == (5,)


def _sharp_py(model, scale=20.0):
    """Makes p(y|z2) depend strongly on z2 (an untrained one is nearly flat,
    and then p(z2|y) is close to p(z2) whatever the sampler does)."""
    kernel, bias = model.py_logits.get_weights()
    model.py_logits.set_weights([kernel * scale, bias])


def test_generation_draws_z2_from_p_z2_given_y():
    """With a 1-dimensional z2, the z2 that `generate(cluster=y)` uses follow
    p(z2|y) = p(y|z2) p(z2) / p(y), computed on a grid: their mean, standard
    deviation and CDF at three points. Fails for z2 ~ p(z2), which ignores
    that y depends on z2 (the earlier sampler)."""
    import keras

    keras.utils.set_random_seed(0)  # the initial weights, so that p(z2|y) differs enough between y
    model = tiny_model("cagem", top_latent_dim=1)
    _sharp_py(model)
    grid = np.linspace(-6, 6, 4001)[:, None].astype(np.float32)
    log_post = log_softmax(model.p_y_logits(tf.constant(grid)).numpy(), -1) + norm.logpdf(grid)  # [G, K]
    post = np.exp(log_post - log_post.max(0))
    post /= post.sum(0)
    n = 4000
    means = []
    for y in range(4):
        z2 = model.sample_z2_given_y(tf.fill([n], y), tf.constant([3, y])).numpy()[:, 0]
        mean = float((post[:, y] * grid[:, 0]).sum())
        sd = float(np.sqrt((post[:, y] * (grid[:, 0] - mean) ** 2).sum()))
        se = sd / np.sqrt(n)
        assert abs(z2.mean() - mean) < 5 * se + 0.02, (y, z2.mean(), mean)
        assert abs(z2.std() - sd) < 0.05 * sd + 0.02
        cdf = np.cumsum(post[:, y])
        for q in (0.25, 0.5, 0.75):
            at = grid[np.searchsorted(cdf, q), 0]
            assert abs(np.mean(z2 <= at) - q) < 0.03
        means.append(mean)
    assert max(means) - min(means) > 0.5  # the test has teeth: p(z2|y) differs between y


def test_generation_is_conditioned_on_y_and_stateless():
    model = tiny_model("cagem")
    clusters = np.arange(4, dtype=np.int32)
    gen = model.generate(clusters, seed=7).reshape(4, -1)
    np.testing.assert_array_equal(gen, model.generate(clusters, seed=7).reshape(4, -1))
    seed = tf.constant([7, 0])
    z2 = model.sample_z2_given_y(tf.constant(clusters), seed)
    y1 = tf.eye(4)
    z1 = model.p_z1(z2, y1).sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
    np.testing.assert_allclose(gen, tf.sigmoid(model.decoder(z1, y1)).numpy(), atol=1e-5)
    same_seed = model.generate(np.zeros(4, np.int32), seed=7).reshape(4, -1)
    assert not np.allclose(gen[1:], same_seed[1:])  # the same seed, other clusters: other images


def test_bad_arguments():
    import tfmix

    with pytest.raises(ValueError, match="top_latent_dim"):
        tfmix.CaGeM(top_latent_dim=0)


def test_kl_warmup_scales_only_the_continuous_kl_terms(binary_images):
    from tfmix.callbacks import KLWarmUp

    model = tiny_model("cagem", labelled=True)
    x = tf.constant(binary_images[:4].reshape(4, -1))
    y = tf.constant([0, 1, 2, 3])
    warm = KLWarmUp(4)
    warm.set_model(model)
    warm.on_epoch_begin(0)
    assert float(model.kl_scale) == 0.25
    t = model.unlabelled_terms(x)
    kl = t["kl_z1"] + t["kl_z2"]  # only the continuous KLs: kl_y holds the entropy of q(y)
    np.testing.assert_allclose(t["loss"], t["reconstruction"] + 0.25 * kl + t["kl_y"], rtol=1e-5)
    np.testing.assert_allclose(t["neg_elbo"], t["reconstruction"] + kl + t["kl_y"], rtol=1e-5)
    t = model.labelled_terms(x, y)
    np.testing.assert_allclose(
        t["loss"], t["reconstruction"] + 0.25 * (t["kl_z1"] + t["kl_z2"]) + t["log_p_y"], rtol=1e-5)
    warm.on_epoch_end(0)
    assert float(model.kl_scale) == 1.0  # before the epoch's checkpoint
    warm.on_epoch_begin(9)
    assert float(model.kl_scale) == 1.0
    warm.on_epoch_begin(1)
    warm.on_train_end()  # evaluation and export see the ELBO
    assert float(model.kl_scale) == 1.0


def test_ancestral_samples_mesh_decoding_and_z2_means(binary_images):
    model = tiny_model("cagem")
    images, ys = model.ancestral_sample(40, seed=3)
    again, ys2 = model.ancestral_sample(40, seed=3)
    assert images.shape == (40, 784) and np.all((images >= 0) & (images <= 1))
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(ys, ys2)
    assert ys.min() >= 0 and ys.max() < model.num_clusters
    z2 = model.z2_mean(binary_images[:5])
    assert z2.shape == (5, model.top_latent_dim)
    assert model.decode_z2(z2).shape == (5, 784)
    with pytest.raises(ValueError, match="`n`"):
        model.ancestral_sample(0)
