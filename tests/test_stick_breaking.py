"""Stick-breaking math and the DLGMM / DLDPMM / SB-VAE objectives."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import betaln, logsumexp
from scipy.stats import norm

from conftest import tiny_model
from tfmix import stick_breaking as SB
from tfmix.stick_breaking import tfd

from test_elbo import assert_close, bernoulli_loglik, model_mean


def log1mexp(x):
    """log(1 - exp(x)) for x < 0, accurate at both ends."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x < -0.693, np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def kumaraswamy_sample(rng, a, b, size):
    """log v of exact float64 samples, by inversion in log space:
    v = (1 - u^(1/b))^(1/a) (not clipped: the densities need the true v,
    however close to 0 or 1)."""
    u = rng.uniform(1e-12, 1 - 1e-12, size)
    return log1mexp(np.log(u) / b) / a


def log_ratio_kumaraswamy_beta(log_v, a, b, alpha, beta):
    """log Kumaraswamy(v; a, b) - log Beta(v; alpha, beta), from log v."""
    log_kuma = np.log(a) + np.log(b) + (a - 1) * log_v + (b - 1) * log1mexp(a * log_v)
    log_beta = (alpha - 1) * log_v + (beta - 1) * log1mexp(log_v) - betaln(alpha, beta)
    return log_kuma - log_beta


def sticks(log_v):
    """The model's weights: fractions clipped as the model clips them."""
    return SB.stick_breaking(tf.constant(np.clip(np.exp(log_v), SB.EPS, 1 - SB.EPS), tf.float32))


@pytest.mark.parametrize("a, b, alpha, beta", [(2.0, 3.0, 1.0, 5.0), (0.7, 1.5, 1.0, 2.0), (3.0, 0.8, 0.5, 4.0), (1.5, 0.5, 1.0, 3.0)])
def test_kumaraswamy_beta_kl_against_monte_carlo(a, b, alpha, beta):
    rng = np.random.default_rng(0)
    mc = log_ratio_kumaraswamy_beta(kumaraswamy_sample(rng, a, b, 2_000_000), a, b, alpha, beta)
    kl = float(tfd.kl_divergence(tfd.Kumaraswamy(a, b), tfd.Beta(alpha, beta)))  # registered
    assert kl >= 0
    assert abs(kl - mc.mean()) < 5 * mc.std() / np.sqrt(len(mc)) + 0.01 * abs(mc.mean()) + 1e-3
    # the tail estimate makes 100 terms as good as 10,000
    assert abs(kl - float(SB.kumaraswamy_beta_kl(a, b, alpha, beta, num_terms=10_000))) < 2e-3


def test_kl_is_zero_between_identical_uniforms_and_broadcasts():
    assert float(tfd.kl_divergence(tfd.Kumaraswamy(1.0, 1.0), tfd.Beta(1.0, 1.0))) == pytest.approx(0.0, abs=1e-6)
    q = tfd.Kumaraswamy(tf.fill([4, 3], 2.0), tf.fill([4, 3], 2.0))
    assert tfd.kl_divergence(q, SB.gem_fractions(4, 2.0)).shape == (4, 3)


def test_stick_breaking_weights():
    pi = SB.stick_breaking(tf.constant([[0.5, 0.5, 0.5], [0.2, 1.0 - 1e-6, 0.3]])).numpy()
    np.testing.assert_allclose(pi[0], [0.5, 0.25, 0.125, 0.125], atol=1e-7)
    np.testing.assert_allclose(pi.sum(-1), 1.0, atol=1e-6)
    assert pi[1, 0] == pytest.approx(0.2) and pi[1, 2] < 1e-5


def test_fraction_priors_give_dirichlet_and_gem_weights():
    pi = SB.stick_breaking(SB.dirichlet_fractions(5, 2.0).sample(100_000, seed=[0, 1])).numpy()
    np.testing.assert_allclose(pi.mean(0), np.full(5, 0.2), atol=5e-3)  # symmetric Dirichlet(2)
    np.testing.assert_allclose(pi.var(0), np.full(5, 0.2 * 0.8 / 11), rtol=0.05)  # Var = m(1-m)/(K alpha + 1)
    gem = SB.stick_breaking(SB.gem_fractions(6, 3.0).sample(100_000, seed=[2, 3])).numpy()
    assert gem[:, 0].mean() == pytest.approx(1 / 4, abs=5e-3)  # E[v_1] = 1 / (1 + alpha0)


@pytest.mark.parametrize("name,entropy", [("dlgmm", "component"), ("dldpmm", "component"),
                                          ("dlgmm", "mixture"), ("dldpmm", "mixture")])
def test_dlgmm_elbo_against_monte_carlo(name, entropy, binary_images):
    """Equation (1) of Nalisnick et al., estimated naively with NumPy; with
    entropy="mixture" its last term is sum_k pi_k log sum_j pi_j q_j(z_k)
    (catches a mixture term that scores z_k under its own component only)."""
    model = tiny_model(name, component_means=[-1.0, 0.0, 0.5, 1.5], entropy=entropy)
    x = binary_images[:3].reshape(3, -1)
    K, Dz = model.num_clusters, model.latent_dim
    val, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    qv, qz = model.posteriors(x)
    a, b = qv.concentration1.numpy(), qv.concentration0.numpy()
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()
    prior = model.prior_fractions()
    p1, p0 = prior.concentration1.numpy(), prior.concentration0.numpy()
    m = np.asarray(model.component_means)
    rng = np.random.default_rng(5)
    n = 20000
    for i in range(3):
        v_mean = b[i] * np.exp(betaln(1 + 1 / a[i], b[i]))
        pi_bar = SB.stick_breaking(tf.constant(np.clip(v_mean, SB.EPS, 1 - SB.EPS)[None], tf.float32)).numpy()[0]
        v = kumaraswamy_sample(rng, a[i], b[i], (n, K - 1))
        pi = sticks(v).numpy()
        z = loc[i] + scale[i] * rng.standard_normal((n, K, Dz))
        logits = model.decoder(tf.constant(z.reshape(-1, Dz), tf.float32)).numpy().reshape(n, K, -1)
        rec = -bernoulli_loglik(x[i], logits)  # [n, K]
        log_pz = norm.logpdf(z, m[:, None], 1.0).sum(-1)
        log_qz = norm.logpdf(z, loc[i], scale[i]).sum(-1)
        kl = log_ratio_kumaraswamy_beta(v, a[i], b[i], p1, p0).sum(-1)
        if entropy == "mixture":  # log q_j(z_k): [n, K (k), K (j)]
            log_q_jk = norm.logpdf(z[:, :, None], loc[i][None, None], scale[i][None, None]).sum(-1)
            mix = (pi * logsumexp(np.log(pi)[:, None, :] + log_q_jk, -1)).sum(-1)
        else:
            mix = logsumexp(np.log(pi) + log_qz, -1)
        neg = (pi_bar * (rec - log_pz)).sum(-1) + kl + mix
        assert_close(val[i], se[i], neg)


def test_log_stick_breaking_stays_finite_where_the_weights_underflow():
    v = tf.constant([[0.5, 0.5, 0.5], [0.2, 1.0 - 1e-6, 0.3]])
    np.testing.assert_allclose(np.exp(SB.log_stick_breaking(v).numpy()), SB.stick_breaking(v).numpy(), rtol=1e-5)
    # 16 sticks each taking nearly everything that is left: pi_17 ~ 1e-96 underflows
    v = tf.Variable(tf.fill([1, 16], 1.0 - 1e-6))
    with tf.GradientTape() as tape:
        log_pi = SB.log_stick_breaking(v)
        total = tf.reduce_sum(log_pi)
    assert np.all(np.isfinite(log_pi.numpy())) and log_pi.numpy()[0, -1] < -200
    assert SB.stick_breaking(v).numpy()[0, -1] == 0.0  # what log(stick_breaking(v)) would take the log of
    assert np.all(np.isfinite(tape.gradient(total, v).numpy()))


def test_mixture_entropy_is_finite_with_seventeen_components(binary_images):
    model = tiny_model("dldpmm", num_clusters=17, entropy="mixture")
    x = tf.constant(binary_images[:8].reshape(8, -1))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.unlabelled_terms(x)["neg_elbo"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g.numpy())) for g in grads if g is not None)
    with pytest.raises(ValueError, match="entropy"):
        tiny_model("dlgmm", entropy="exact")


def test_sbvae_elbo_against_monte_carlo(binary_images):
    model = tiny_model("sbvae", prior_alpha=3.0)
    x = binary_images[:3].reshape(3, -1)
    val, se = model_mean(lambda: model.unlabelled_terms(tf.constant(x))["neg_elbo"])
    qv = model.q_v(x)
    a, b = qv.concentration1.numpy(), qv.concentration0.numpy()
    rng = np.random.default_rng(6)
    for i in range(3):
        v = kumaraswamy_sample(rng, a[i], b[i], (40000, model.num_clusters - 1))
        pi = sticks(v)
        rec = -bernoulli_loglik(x[i], model.decoder(pi).numpy())
        kl = log_ratio_kumaraswamy_beta(v, a[i], b[i], 1.0, 3.0).sum(-1)
        assert_close(val[i], se[i], rec + kl)


def test_dlgmm_generation_uses_the_component_prior():
    model = tiny_model("dlgmm", component_means=[-1.5, -0.75, 0.75, 1.5])
    gen = model.generate(np.array([0, 3], np.int32), seed=2).reshape(2, -1)
    eps = tf.random.stateless_normal([2, model.latent_dim], seed=tf.constant([2, 0]))
    expected = tf.sigmoid(model.decoder(tf.constant([[-1.5], [1.5]]) + eps)).numpy()
    np.testing.assert_allclose(gen, expected, atol=1e-6)


def test_sbvae_generation_puts_the_largest_weight_on_the_cluster():
    model = tiny_model("sbvae")
    seed = tf.constant([4, 0])
    v = model.prior_fractions().sample(4, seed=seed)
    pi = SB.stick_breaking(SB.clip_fractions(v)).numpy()
    gen = model.generate(np.arange(4, dtype=np.int32), seed=4).reshape(4, -1)
    for c in range(4):
        swapped = pi[c].copy()
        top = swapped.argmax()
        swapped[[c, top]] = swapped[[top, c]]
        assert swapped.argmax() == c
        np.testing.assert_allclose(gen[c], tf.sigmoid(model.decoder(swapped[None])).numpy()[0], atol=1e-6)


def test_bad_arguments():
    import tfmix

    with pytest.raises(ValueError, match="component_means"):
        tfmix.DLGMM(num_clusters=3, component_means=[0.0, 1.0])
    with pytest.raises(ValueError, match="num_clusters"):
        tfmix.DLGMM(num_clusters=1)
    with pytest.raises(ValueError, match="latent_dim"):
        tfmix.SBVAE(num_clusters=5, latent_dim=3)


@pytest.mark.parametrize("name", ["vae", "dlgmm", "dldpmm", "sbvae"])
def test_posterior_samples_average_to_the_encoded_mean(name, binary_images):
    # E[z|x] of the mixture (and of the stick weights, the fractions being
    # independent) is what `encode` returns
    model = tiny_model(name)
    x = np.repeat(binary_images[:1], 4000, 0)
    z = model.sample_latent(x, seed=5)
    np.testing.assert_array_equal(z, model.sample_latent(x, seed=5))
    mean = model.encode(binary_images[:1])[0]
    se = z.std(0) / np.sqrt(len(z))
    assert np.all(np.abs(z.mean(0) - mean) < 5 * se + 1e-4), (z.mean(0), mean)
    assert z.std(0).max() > 0  # samples, not the mean


def test_kl_is_finite_with_a_and_b_both_large():
    # the tail of the series used to overflow (Gamma(b) a^b) here, and the
    # SB-VAE run diverged with NaN gradients; the Monte Carlo value is 16.39
    a, b = tf.Variable(200.0), tf.Variable(200.0)
    with tf.GradientTape() as tape:
        kl = SB.kumaraswamy_beta_kl(a, b, 1.0, 5.0)
    grads = tape.gradient(kl, [a, b])
    assert abs(float(kl) - 16.39) < 0.2
    assert all(np.isfinite(float(g)) for g in grads)


def test_fraction_samples_have_finite_gradients_and_the_kumaraswamy_moments():
    # TFP's sampler gave v = 0 with infinite derivatives (u = float32 tiny,
    # or (1 - u)^(1/b) rounded to 1): NaN gradients through the clip
    for a0 in (1e-3, 0.43, 1.0, 17.0, 1000.0):
        for b0 in (1e-3, 1.5, 134.8, 1000.0):
            a, b = tf.Variable(a0), tf.Variable(b0)
            with tf.GradientTape() as tape:
                v = SB.sample_fractions(tfd.Kumaraswamy(a, b), tf.constant([1, 2]), [5000])
                total = tf.reduce_sum(v)
            assert all(np.isfinite(g.numpy()) for g in tape.gradient(total, [a, b])), (a0, b0)
            assert np.float32(SB.EPS) <= float(tf.reduce_min(v)) and float(tf.reduce_max(v)) <= np.float32(1 - SB.EPS)
    q = tfd.Kumaraswamy([2.0, 0.5], [3.0, 4.0])
    v = SB.sample_fractions(q, tf.constant([3, 4]), [100000]).numpy()
    np.testing.assert_allclose(v.mean(0), q.mean().numpy(), atol=4e-3)
    np.testing.assert_allclose(v.var(0), q.variance().numpy(), rtol=0.03)


def test_log1mexp_values_and_gradients_near_zero():
    x = tf.Variable([-1e-9, -3e-8, -1e-3, -0.5, -0.8, -5.0, -60.0])
    with tf.GradientTape() as tape:
        y = SB.log1mexp(x)
    g = tape.gradient(y, x).numpy()
    xs = x.numpy().astype(np.float64)
    np.testing.assert_allclose(y.numpy(), np.log(-np.expm1(xs)), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(g, -np.exp(xs) / -np.expm1(xs), rtol=1e-4)
    # the NaN the SB-VAE hit: gradients through samples whose u / b is tiny
    a, b = tf.Variable(1.0), tf.Variable(300.0)
    q = tfd.Kumaraswamy(a, b)
    with tf.GradientTape() as tape:
        v = SB.sample_fractions(q, tf.constant([7, 7]), [200000])
        total = tf.reduce_sum(v)
    assert all(np.isfinite(t.numpy()) for t in tape.gradient(total, [a, b]))
