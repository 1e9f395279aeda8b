"""Each term of each ELBO against its own Monte Carlo estimate.

`test_elbo.py` checks the total; a wrong term can hide in a total (a KL_y
of 0.3 nats is inside a relative tolerance on 540 nats). Here every term a
model reports (reconstruction, each KL, the y terms) is compared with an
independent estimate of that term alone - ancestral samples of (y, z) from
q drawn with NumPy, log densities from SciPy - and the model's total with
the sum of its terms. Tolerances are 5 standard errors of the two
estimates combined, with no relative slack beyond float32 rounding
(`FLOAT32`: 1e-5 of the value, 0.005 nats on a 540-nat reconstruction).

What they catch, each seen failing on a deliberately broken copy of the
objective: KL_y without log p(y) (all four marginal models); the decoder
given the wrong y (M2, modified M2) or decoding another y's z (M2,
CatVAE); KL_z against the wrong y's prior (GMVAE, CatVAE); CaGeM's y
term against a uniform p(y) instead of p(y|z2); a total missing KL_y
(N-VAE) or KL_z (Gauss-VAE). q(y|x) is sharpened first so that KL_y is
large against its tolerance (asserted: a KL_y of 0 could not pass).
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax
from scipy.stats import norm

from conftest import tiny_model

N_MC = 40000
REPS = 300
SIGMAS = 5.0
FLOAT32 = 1e-5


def bernoulli_loglik(x, logits):
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


def model_terms(model, fn, names, reps=REPS):
    """Mean and standard error over `reps` calls of each named term, [B]."""
    def stacked():
        t = fn()  # one call: every term from the same noise
        return tf.stack([t[k] for k in names])

    f = tf.function(stacked)
    vals = np.stack([f().numpy() for _ in range(reps)])  # [reps, T, B]
    mean, se = vals.mean(0), vals.std(0) / np.sqrt(reps)
    return {k: (mean[i], se[i]) for i, k in enumerate(names)}


def check(name, model_val, model_se, samples):
    """The model's term against the Monte Carlo samples of the same term;
    returns the tolerance used."""
    mc, mc_se = samples.mean(), samples.std() / np.sqrt(len(samples))
    tol = SIGMAS * np.hypot(model_se, mc_se) + FLOAT32 * abs(mc)
    assert abs(model_val - mc) < tol, f"{name}: model {model_val:.4f}, Monte Carlo {mc:.4f} +- {tol:.4f}"
    return tol


def check_all(terms, mc, b, weights=None):
    """Every term of example b against its estimate, and the model's total
    against the (weighted) sum of its own terms: with every term right,
    that identity makes the total right, and it holds to float32 rounding
    rather than to a Monte Carlo error larger than KL_y. A KL_y must be
    well above its tolerance (a KL_y of 0 would fail)."""
    weights = weights or {}
    tols = {k: check(k, terms[k][0][b], terms[k][1][b], v) for k, v in mc.items()}
    total = sum(weights.get(k, 1.0) * terms[k][0][b] for k in mc)
    np.testing.assert_allclose(terms["neg_elbo"][0][b], total, rtol=FLOAT32, err_msg="neg_elbo != sum of its terms")
    if "kl_y" in mc:
        assert abs(mc["kl_y"].mean()) > 3 * tols["kl_y"], f"KL_y {mc['kl_y'].mean():.4f} too small against {tols['kl_y']:.4f}"


def sharpen_q_y(model, factor=3.0, layer="qy_logits", tilt=2.0):
    """Scales a logits layer and tilts its bias towards the last class."""
    layer = getattr(model, layer)
    layer.kernel.assign(layer.kernel * factor)
    layer.bias.assign(layer.bias + np.linspace(-tilt, tilt, layer.bias.shape[0]).astype("float32"))


def _x(binary_images, n=3):
    return binary_images[:n].reshape(n, -1)


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae", "catvae"])
def test_each_term_of_the_marginal_models(name, binary_images):
    """reconstruction = E_q(y|x) E_q(z|x,y)[-log p(x|y,z)],
    kl_z = E_q(y|x) KL(q(z|x,y) || p(z|y)), kl_y = KL(q(y|x) || p(y))."""
    model = tiny_model(name)
    sharpen_q_y(model)
    x = _x(binary_images)
    K, Dz = model.num_clusters, model.latent_dim
    rng = np.random.default_rng(10)
    terms = model_terms(model, lambda: model.unlabelled_terms(tf.constant(x)),
                        ["neg_elbo", "reconstruction", "kl_z", "kl_y"])
    log_qy = log_softmax(model.cluster_logits(x).numpy(), -1)
    qz = model.q_z(x)
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()  # [B, K, D]
    prior = model.prior_z()
    p_loc = np.broadcast_to(prior.mean().numpy(), (K, Dz))
    p_scale = np.broadcast_to(prior.stddev().numpy(), (K, Dz))
    for b in range(len(x)):
        y = rng.choice(K, size=N_MC, p=np.exp(log_qy[b]))
        z = loc[b, y] + scale[b, y] * rng.standard_normal((N_MC, Dz))
        logits = model.decode_logits(tf.constant(z, tf.float32), tf.constant(np.eye(K)[y], tf.float32)).numpy()
        mc = {
            "reconstruction": -bernoulli_loglik(x[b], logits),
            "kl_z": norm.logpdf(z, loc[b, y], scale[b, y]).sum(-1) - norm.logpdf(z, p_loc[y], p_scale[y]).sum(-1),
            "kl_y": log_qy[b, y] - np.log(1.0 / K),
        }
        check_all(terms, mc, b)


def test_each_term_of_the_gauss_vae(binary_images):
    model = tiny_model("vae")
    x = _x(binary_images)
    rng = np.random.default_rng(11)
    terms = model_terms(model, lambda: model.unlabelled_terms(tf.constant(x)), ["neg_elbo", "reconstruction", "kl_z"])
    qz = model.q_z(x)
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()
    for b in range(len(x)):
        z = loc[b] + scale[b] * rng.standard_normal((N_MC, model.latent_dim))
        mc = {
            "reconstruction": -bernoulli_loglik(x[b], model.decoder(tf.constant(z, tf.float32)).numpy()),
            "kl_z": norm.logpdf(z, loc[b], scale[b]).sum(-1) - norm.logpdf(z).sum(-1),
        }
        check_all(terms, mc, b)


def test_each_term_of_cagem(binary_images):
    """Ancestral q(z1|x) q(y|x,z1) q(z2|x,z1,y): reconstruction -log p(x|y,z1),
    kl_z1 = log q(z1|x) - log p(z1|y,z2), kl_z2 = log q(z2|.) - log p(z2),
    kl_y = log q(y|x,z1) - log p(y|z2) (the y prior is p(y|z2), not uniform)."""
    model = tiny_model("cagem")
    sharpen_q_y(model)
    sharpen_q_y(model, layer="py_logits", tilt=-2.0)  # p(y|z2) unlike both q(y|x,z1) and uniform
    x = _x(binary_images)
    K = model.num_clusters
    rng = np.random.default_rng(12)
    n = 20000
    terms = model_terms(model, lambda: model.unlabelled_terms(tf.constant(x)),
                        ["neg_elbo", "reconstruction", "kl_z1", "kl_z2", "kl_y"], reps=1000)
    qz1 = model.q_z1(x)
    l1, s1 = qz1.loc.numpy(), qz1.stddev().numpy()
    for b in range(len(x)):
        z1 = l1[b] + s1[b] * rng.standard_normal((n, model.latent_dim))
        xb = np.repeat(x[b : b + 1], n, 0)
        log_qy = log_softmax(model.q_y_logits(tf.constant(xb), tf.constant(z1, tf.float32)).numpy(), -1)
        y = (rng.random((n, 1)) > np.cumsum(np.exp(log_qy), -1)).sum(-1).clip(0, K - 1)
        y1 = tf.constant(np.eye(K)[y], tf.float32)
        qz2 = model.q_z2(tf.constant(xb), tf.constant(z1, tf.float32), y1)
        l2, s2 = qz2.loc.numpy(), qz2.stddev().numpy()
        z2 = l2 + s2 * rng.standard_normal(l2.shape)
        pz1 = model.p_z1(tf.constant(z2, tf.float32), y1)
        log_py = log_softmax(model.p_y_logits(tf.constant(z2, tf.float32)).numpy(), -1)
        logits = model.decoder(tf.constant(z1, tf.float32), y1).numpy()
        mc = {
            "reconstruction": -bernoulli_loglik(x[b], logits),
            "kl_z1": norm.logpdf(z1, l1[b], s1[b]).sum(-1) - norm.logpdf(z1, pz1.loc.numpy(), pz1.stddev().numpy()).sum(-1),
            "kl_z2": norm.logpdf(z2, l2, s2).sum(-1) - norm.logpdf(z2).sum(-1),
            "kl_y": log_qy[np.arange(n), y] - log_py[np.arange(n), y],
        }
        check_all(terms, mc, b)


def test_each_term_of_nvae(binary_images):
    """reconstruction E_q(y|x) E_q(zc,zs|x)[-log p(x|y,zc,zs)], the two
    Gaussian KLs (kl_zc weighted by beta_c in the total) and KL(q(y|x)||p(y))."""
    model = tiny_model("nvae", beta_c=2.0)
    sharpen_q_y(model)
    x = _x(binary_images)
    K = model.num_clusters
    rng = np.random.default_rng(13)
    terms = model_terms(model, lambda: model.unlabelled_terms(tf.constant(x)),
                        ["neg_elbo", "reconstruction", "kl_zs", "kl_zc", "kl_y"])
    qzc, qzs, logits = model.posteriors(x)
    lc, sc, ls, ss = (t.numpy() for t in (qzc.loc, qzc.stddev(), qzs.loc, qzs.stddev()))
    log_qy = log_softmax(logits.numpy(), -1)
    for b in range(len(x)):
        y = rng.choice(K, size=N_MC, p=np.exp(log_qy[b]))
        zc = lc[b] + sc[b] * rng.standard_normal((N_MC, model.class_latent_dim))
        zs = ls[b] + ss[b] * rng.standard_normal((N_MC, model.shared_latent_dim))
        inp = model.decoder_input(tf.constant(zc, tf.float32), tf.constant(zs, tf.float32),
                                  tf.constant(np.eye(K)[y], tf.float32))
        mc = {
            "reconstruction": -bernoulli_loglik(x[b], model.decoder(inp).numpy()),
            "kl_zs": norm.logpdf(zs, ls[b], ss[b]).sum(-1) - norm.logpdf(zs).sum(-1),
            "kl_zc": norm.logpdf(zc, lc[b], sc[b]).sum(-1) - norm.logpdf(zc).sum(-1),
            "kl_y": log_qy[b, y] - np.log(1.0 / K),
        }
        check_all(terms, mc, b, weights={"kl_zc": model.beta_c})
