"""N-VAE: its decoder input, equation (7) and our unlabelled extension."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax
from scipy.stats import norm

from conftest import tiny_model
from test_elbo import N_MC, assert_close, bernoulli_loglik, model_mean


def test_decoder_input_puts_one_and_z_c_in_the_slot_of_y():
    model = tiny_model("nvae")  # K = 4, L = 2, S = 2
    zc = tf.constant([[0.5, -1.0]])
    zs = tf.constant([[3.0, 4.0]])
    inp = model.decoder_input(zc, zs, tf.one_hot([2], 4)).numpy()[0]
    slots = inp[:12].reshape(4, 3)
    np.testing.assert_array_equal(slots[2], [1.0, 0.5, -1.0])
    assert np.all(slots[[0, 1, 3]] == 0)
    np.testing.assert_array_equal(inp[12:], [3.0, 4.0])


def _moments(model, x):
    qzc, qzs, logits = model.posteriors(x)
    return (qzc.loc.numpy(), qzc.stddev().numpy(), qzs.loc.numpy(), qzs.stddev().numpy(),
            log_softmax(logits.numpy(), -1))


def _decode(model, zc, zs, y):
    inp = model.decoder_input(tf.constant(zc, tf.float32), tf.constant(zs, tf.float32),
                              tf.one_hot(y, model.num_clusters))
    return model.decoder(inp).numpy()


def test_labelled_objective_is_equation_7(binary_images):
    model = tiny_model("nvae", labelled=True, beta_c=2.5)
    x = binary_images[:3].reshape(3, -1)
    y = np.array([1, 3, 0])
    fn = lambda: tf.stack([model.labelled_terms(tf.constant(x), tf.constant(y))[k]  # noqa: E731
                           for k in ("neg_elbo", "classification")])
    (neg, clf), (neg_se, _) = model_mean(fn)
    cl, cs, sl, ss, log_qy = _moments(model, x)
    np.testing.assert_allclose(clf, -log_qy[np.arange(3), y], rtol=1e-5)
    rng = np.random.default_rng(0)
    for b in range(3):
        zc = cl[b] + cs[b] * rng.standard_normal((N_MC, 2))
        zs = sl[b] + ss[b] * rng.standard_normal((N_MC, 2))
        rec = -bernoulli_loglik(x[b], _decode(model, zc, zs, np.full(N_MC, y[b])))
        kl_s = norm.logpdf(zs, sl[b], ss[b]).sum(-1) - norm.logpdf(zs).sum(-1)
        kl_c = norm.logpdf(zc, cl[b], cs[b]).sum(-1) - norm.logpdf(zc).sum(-1)
        assert_close(neg[b], neg_se[b], rec + kl_s + 2.5 * kl_c)


def test_unlabelled_extension_sums_over_y(binary_images):
    model = tiny_model("nvae")
    x = binary_images[:3].reshape(3, -1)
    neg, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    cl, cs, sl, ss, log_qy = _moments(model, x)
    rng = np.random.default_rng(1)
    for b in range(3):
        y = np.array([rng.choice(4, p=np.exp(log_qy[b])) for _ in range(N_MC)])
        zc = cl[b] + cs[b] * rng.standard_normal((N_MC, 2))
        zs = sl[b] + ss[b] * rng.standard_normal((N_MC, 2))
        log_q = log_qy[b, y] + norm.logpdf(zc, cl[b], cs[b]).sum(-1) + norm.logpdf(zs, sl[b], ss[b]).sum(-1)
        log_p = (np.log(0.25) + norm.logpdf(zc).sum(-1) + norm.logpdf(zs).sum(-1)
                 + bernoulli_loglik(x[b], _decode(model, zc, zs, y)))
        assert_close(neg[b], se[b], log_q - log_p)


def test_generation_is_conditioned_on_the_class():
    model = tiny_model("nvae")
    gen = model.generate(np.arange(4, dtype=np.int32), seed=3).reshape(4, -1)
    z = tf.random.stateless_normal([4, 4], seed=tf.constant([3, 0])).numpy()
    expected = 1 / (1 + np.exp(-_decode(model, z[:, :2], z[:, 2:], np.arange(4))))
    np.testing.assert_allclose(gen, expected, atol=1e-5)
    assert len({g.tobytes() for g in np.round(gen, 5)}) == 4


def test_bad_arguments():
    import tfmix

    with pytest.raises(ValueError, match="class_latent_dim"):
        tfmix.NVAE(class_latent_dim=0)
    with pytest.raises(ValueError, match="latent_dim"):
        tfmix.NVAE(class_latent_dim=2, shared_latent_dim=3, latent_dim=4)


def test_per_dimension_kl_sums_to_the_kl_terms(binary_images):
    model = tiny_model("nvae", labelled=True)
    kl_c, kl_s = model.per_dimension_kl(binary_images[:7], batch_size=3)
    assert kl_c.shape == (7, 2) and kl_s.shape == (7, 2) and (kl_c >= 0).all()
    terms = model.labelled_terms(tf.constant(binary_images[:7].reshape(7, -1)), tf.zeros([7], tf.int32))
    np.testing.assert_allclose(kl_c.sum(-1), terms["kl_zc"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(kl_s.sum(-1), terms["kl_zs"].numpy(), rtol=1e-5)


def test_sigma_scales_the_prior_samples():
    model = tiny_model("nvae")
    c = np.arange(4, dtype=np.int32)
    z = 1.4 * tf.random.stateless_normal([4, 4], seed=tf.constant([3, 0])).numpy()
    expected = 1 / (1 + np.exp(-_decode(model, z[:, :2], z[:, 2:], c)))
    np.testing.assert_allclose(model.generate(c, seed=3, sigma=1.4).reshape(4, -1), expected, atol=1e-5)
    np.testing.assert_allclose(model.generate(c, seed=3, sigma=1.0), model.generate(c, seed=3), atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        model.generate(c, seed=3, sigma=0.0)
    with pytest.raises(ValueError, match="does not support `sigma`"):
        tiny_model("gmvae").generate(c, seed=3, sigma=1.4)
