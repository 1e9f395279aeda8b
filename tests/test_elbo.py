"""Each model's ELBO against an independent Monte Carlo computation.

The models marginalise y exactly and use analytic Gaussian KLs (TFP); here
the same objective is estimated the naive way - ancestral samples of
(y, z) from q, NumPy/SciPy log densities - and the two must agree within
Monte Carlo error.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax, logsumexp
from scipy.stats import norm

from conftest import tiny_model

N_MC = 40000
REPS = 300


def bernoulli_loglik(x, logits):
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


def model_mean(fn, reps=REPS):
    f = tf.function(fn)
    vals = np.stack([f().numpy() for _ in range(reps)])
    return vals.mean(0), vals.std(0) / np.sqrt(reps)


def assert_close(model_val, model_se, mc_vals):
    mc, mc_se = mc_vals.mean(), mc_vals.std() / np.sqrt(len(mc_vals))
    tol = 5 * np.hypot(model_se, mc_se) + 1e-5 * abs(mc)  # no slack beyond float32 rounding
    assert abs(model_val - mc) < tol, (model_val, mc, tol)


def _x(binary_images, n=3):
    return binary_images[:n].reshape(n, -1)


def _decode(model, z, y_onehot):
    return model.decode_logits(tf.constant(z, tf.float32), tf.constant(y_onehot, tf.float32)).numpy()


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae", "catvae"])
def test_unlabelled_elbo_of_marginal_models(name, binary_images):
    model = tiny_model(name)
    x = _x(binary_images)
    K = model.num_clusters
    rng = np.random.default_rng(0)
    log_qy = log_softmax(model.cluster_logits(x).numpy(), -1)
    qz = model.q_z(x)
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()  # [B, K, D]
    prior = model.prior_z()
    p_loc = np.broadcast_to(prior.mean().numpy(), (K, model.latent_dim))
    p_scale = np.broadcast_to(prior.stddev().numpy(), (K, model.latent_dim))
    terms = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    for b in range(len(x)):
        y = np.array([rng.choice(K, p=np.exp(log_qy[b])) for _ in range(N_MC)])
        z = loc[b, y] + scale[b, y] * rng.standard_normal((N_MC, model.latent_dim))
        log_q = log_qy[b, y] + norm.logpdf(z, loc[b, y], scale[b, y]).sum(-1)
        log_p = (
            np.log(1.0 / K)
            + norm.logpdf(z, p_loc[y], p_scale[y]).sum(-1)
            + bernoulli_loglik(x[b], _decode(model, z, np.eye(K)[y]))
        )
        assert_close(terms[0][b], terms[1][b], log_q - log_p)


@pytest.mark.parametrize("name", ["m2", "gmvae"])
def test_labelled_elbo_and_classification_term(name, binary_images):
    model = tiny_model(name, labelled=True)
    x = _x(binary_images)
    y = np.array([0, 3, 1])
    K = model.num_clusters
    rng = np.random.default_rng(1)
    fn = lambda: tf.stack(  # noqa: E731
        [model.labelled_terms(tf.constant(x), tf.constant(y))[k] for k in ("neg_elbo", "classification")]
    )
    (elbo, clf), (elbo_se, _) = model_mean(fn)
    log_qy = log_softmax(model.cluster_logits(x).numpy(), -1)
    np.testing.assert_allclose(clf, -log_qy[np.arange(3), y], rtol=1e-5)
    y1 = np.eye(K)[y]
    qz = model.q_z(x, tf.constant(y1, tf.float32))
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()
    prior = model.prior_z(tf.constant(y1, tf.float32))
    p_loc, p_scale = prior.mean().numpy(), prior.stddev().numpy()
    for b in range(3):
        z = loc[b] + scale[b] * rng.standard_normal((N_MC, model.latent_dim))
        log_q = norm.logpdf(z, loc[b], scale[b]).sum(-1)
        log_p = (
            np.log(1.0 / K) + norm.logpdf(z, p_loc[b], p_scale[b]).sum(-1)
            + bernoulli_loglik(x[b], _decode(model, z, np.repeat(y1[b : b + 1], N_MC, 0)))
        )
        assert_close(elbo[b], elbo_se[b], log_q - log_p)


def test_gauss_vae_elbo(binary_images):
    model = tiny_model("vae")
    x = _x(binary_images)
    rng = np.random.default_rng(2)
    val, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    qz = model.q_z(x)
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()
    for b in range(len(x)):
        z = loc[b] + scale[b] * rng.standard_normal((N_MC, model.latent_dim))
        log_q = norm.logpdf(z, loc[b], scale[b]).sum(-1)
        log_p = norm.logpdf(z).sum(-1) + bernoulli_loglik(x[b], model.decoder(tf.constant(z, tf.float32)).numpy())
        assert_close(val[b], se[b], log_q - log_p)


def test_dilokthanakul_objective(binary_images):
    """Their objective (eq. of the paper): reconstruction, KL(w), the
    conditional-prior term sum_y p(y|z,w) KL(q(z|x) || p(z|w,y)) and
    KL(p(y|z,w) || p(y)), with p(y|z,w) the exact posterior."""
    model = tiny_model("dilokthanakul_gmvae", w_dim=2)
    x = _x(binary_images)
    K = model.num_clusters
    rng = np.random.default_rng(3)
    val, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    qz, qw = model.posteriors(x)
    zl, zs = qz.loc.numpy(), qz.stddev().numpy()
    wl, ws = qw.loc.numpy(), qw.stddev().numpy()
    n = 20000
    for b in range(len(x)):
        z = zl[b] + zs[b] * rng.standard_normal((n, model.latent_dim))
        w = wl[b] + ws[b] * rng.standard_normal((n, model.w_dim))
        pz = model.p_z_given_w(tf.constant(w, tf.float32))
        ml, ms = pz.loc.numpy(), pz.stddev().numpy()  # [n, K, D]
        log_pz_y = norm.logpdf(z[:, None, :], ml, ms).sum(-1)  # [n, K]
        post = np.exp(log_pz_y - logsumexp(log_pz_y, -1, keepdims=True))
        kl_gauss = (np.log(ms / zs[b]) + (zs[b] ** 2 + (zl[b] - ml) ** 2) / (2 * ms**2) - 0.5).sum(-1)
        kl_w = (np.log(1 / ws[b]) + (ws[b] ** 2 + wl[b] ** 2) / 2 - 0.5).sum()
        rec = -bernoulli_loglik(x[b], model.decoder(tf.constant(z, tf.float32)).numpy())
        kl_y = np.sum(post * (np.log(post + 1e-30) - np.log(1.0 / K)), -1)
        assert_close(val[b], se[b], rec + kl_w + np.sum(post * kl_gauss, -1) + kl_y)


@pytest.mark.parametrize("name", ["vae", "m2", "modified_m2", "gmvae", "dilokthanakul_gmvae", "dldpmm", "dlgmm", "sbvae", "nvae", "cagem", "catvae"])
def test_importance_weighted_bound_is_above_elbo(name, binary_images):
    model = tiny_model(name)
    x = binary_images[:8]
    neg_elbo, _ = model_mean(lambda: model.unlabelled_terms(tf.constant(x.reshape(8, -1)))["neg_elbo"], reps=50)
    ll_1 = np.mean([model.log_likelihood(x, num_samples=1, seed=s).mean() for s in range(30)])
    ll_many = model.log_likelihood(x, num_samples=2000, sample_chunk=250).mean()
    # IWAE: E[log p_S] grows with S; S = 1 is an (unbiased) ELBO estimate.
    assert ll_many >= -neg_elbo.mean() - 0.05
    assert ll_many >= ll_1 - 0.05
    # chunking must not change the estimator beyond MC noise (a wrong
    # normaliser, log 7 instead of log 2000, would be off by 5.6 nats)
    ll_chunked = model.log_likelihood(x, num_samples=2000, sample_chunk=7, seed=1).mean()
    assert abs(ll_chunked - ll_many) < 1.5
    # the seed fixes the estimate
    np.testing.assert_array_equal(
        model.log_likelihood(x, num_samples=5, seed=4), model.log_likelihood(x, num_samples=5, seed=4)
    )


def test_log_likelihood_progress_bar_reports_images_and_leaves_the_estimate_unchanged(binary_images, capsys):
    model = tiny_model("gmvae")
    x = binary_images[:7]
    quiet = model.log_likelihood(x, num_samples=5, batch_size=3, seed=2)
    assert capsys.readouterr().out == ""
    shown = model.log_likelihood(x, num_samples=5, batch_size=3, seed=2, verbose=1)
    out = capsys.readouterr().out
    assert "7/7" in out and "log_px" in out  # batches of 3, 3 and 1 images
    np.testing.assert_array_equal(shown, quiet)
    with pytest.raises(ValueError, match="`verbose` must be 0 or 1"):
        model.log_likelihood(x, num_samples=5, verbose=2)
