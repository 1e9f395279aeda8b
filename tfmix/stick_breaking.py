"""Stick-breaking math (Nalisnick & Smyth 2017; Nalisnick, Hertel & Smyth 2016).

- `kumaraswamy_beta_kl`: the closed-form series for KL(Kumaraswamy(a, b) ||
  Beta(alpha, beta)), registered with TFP (`tfd.kl_divergence` finds it);
- `stick_breaking`: fractions v [..., K-1] -> weights pi [..., K] with
  pi_k = v_k prod_{j<k} (1 - v_j) and the remaining stick as pi_K;
- `dirichlet_fractions` / `gem_fractions`: the Beta priors on the fractions
  of a symmetric Dirichlet (its marginal, stick-breaking construction) and of
  a truncated Dirichlet process GEM(alpha0).

Example:
>>> q = tfd.Kumaraswamy(concentration1=2.0, concentration0=3.0)
>>> p = tfd.Beta(concentration1=1.0, concentration0=5.0)
>>> float(tfd.kl_divergence(q, p)) > 0
True
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

EULER_GAMMA = 0.5772156649015329
#: Terms kept of the infinite series (it converges like m^-(1+b): slowly for
#: b < 1, so more terms than the ~10 of the reference code).
KL_SERIES_TERMS = 100
#: Fractions are kept in [EPS, 1 - EPS] so that log(1 - v) stays finite.
EPS = 1e-6


def log_beta_fn(x, y):
    """log B(x, y) = lgamma(x) + lgamma(y) - lgamma(x + y), broadcasting."""
    return tf.math.lgamma(x) + tf.math.lgamma(y) - tf.math.lgamma(x + y)


def kumaraswamy_beta_kl(a, b, alpha, beta, num_terms=KL_SERIES_TERMS):
    """KL(Kumaraswamy(a, b) || Beta(alpha, beta)), elementwise.

    (a - alpha)/a (-gamma - psi(b) - 1/b) + log(a b) + log B(alpha, beta)
    - (b - 1)/b + (beta - 1) b sum_{m=1}^{M} B(m/a, b) / (m + a b),
    the series (the Taylor expansion of E[log(1 - v)]) summed to M =
    num_terms plus an asymptotic estimate of its tail (the series converges
    slowly when b < 1).
    """
    a, b, alpha, beta = [tf.convert_to_tensor(t, tf.float32) for t in (a, b, alpha, beta)]
    m = tf.range(1, num_terms + 1, dtype=tf.float32)
    a_, b_ = a[..., None], b[..., None]
    log_terms = log_beta_fn(m / a_, b_) - tf.math.log(m + a_ * b_)
    series = tf.reduce_sum(tf.exp(log_terms), -1)
    # Tail m > M: the terms fall like m^-(1+b) (B(m/a, b) ~ Gamma(b) (a/m)^b),
    # so the rest is close to term_M (M + 1/2) / b. Taken from the last
    # term in log space: finite for every (a, b) (the closed form
    # Gamma(b) a^b M^-b / b overflows when a and b are both large).
    series += tf.exp(log_terms[..., -1] + tf.math.log((num_terms + 0.5) / b))
    return (
        (a - alpha) / a * (-EULER_GAMMA - tf.math.digamma(b) - 1.0 / b)
        + tf.math.log(a * b)
        + log_beta_fn(alpha, beta)
        - (b - 1.0) / b
        + (beta - 1.0) * b * series
    )


@tfd.RegisterKL(tfd.Kumaraswamy, tfd.Beta)
def _kl_kumaraswamy_beta(q, p, name=None):
    with tf.name_scope(name or "kl_kumaraswamy_beta"):
        return kumaraswamy_beta_kl(
            q.concentration1, q.concentration0, p.concentration1, p.concentration0
        )


def clip_fractions(v):
    return tf.clip_by_value(v, EPS, 1.0 - EPS)


def sample_fractions(q, seed, sample_shape=()):
    """Reparameterised samples of a `tfd.Kumaraswamy` q, clipped to [EPS, 1 - EPS].

    v = F^-1(u) = exp(log1mexp(log1p(-u) / b) / a), computed in log space
    with u ~ U[EPS, 1 - EPS] (and `log1mexp` below). TFP's own sampler draws u down to
    float32's `tiny` and its quantile rounds (1 - u)^(1/b) to 1 for large b:
    both give v = 0 with an infinite derivative, and the clip's zero
    gradient times it is NaN (the SB-VAE and DLDPMM runs diverged that way,
    once every few epochs).
    """
    a, b = q.concentration1, q.concentration0
    shape = tf.concat([tf.convert_to_tensor(sample_shape, tf.int32), tf.shape(a + b)], 0)
    u = tf.random.stateless_uniform(shape, seed=seed, minval=EPS, maxval=1.0 - EPS, dtype=a.dtype)
    log_v = log1mexp(tf.math.log1p(-u) / b) / a
    return clip_fractions(tf.exp(log_v))


def log1mexp(x):
    """log(1 - exp(x)) for x < 0, with finite gradients everywhere.

    The two branches are each fed only the inputs they are accurate for
    ("double where"): `tfp.math.log1mexp` also evaluates log1p(-exp(x)) at
    x close to 0, where it is -inf, and the gradient through its `tf.where`
    becomes NaN (0 x inf).
    """
    small = x < -np.log(2.0)
    x_small = tf.where(small, x, -1.0)
    x_near0 = tf.where(small, -1.0, x)
    return tf.where(small, tf.math.log1p(-tf.exp(x_small)), tf.math.log(-tf.math.expm1(x_near0)))


def log_stick_breaking(v):
    """log pi [..., K] from fractions v [..., K-1], in log space throughout:
    log pi_k = log v_k + sum_{j<k} log(1 - v_j). With many sticks (T = 17)
    pi_k itself underflows to 0, and log(pi_k) to -inf (NaN gradients)."""
    log_rest = tf.math.log1p(-v)
    before = tf.math.cumsum(log_rest, axis=-1, exclusive=True)
    return tf.concat([tf.math.log(v) + before, tf.reduce_sum(log_rest, -1, keepdims=True)], -1)


def stick_breaking(v):
    """Weights pi [..., K] from fractions v [..., K-1] (they sum to one)."""
    log_rest = tf.math.log1p(-v)
    before = tf.math.cumsum(log_rest, axis=-1, exclusive=True)
    head = v * tf.exp(before)
    last = tf.exp(tf.reduce_sum(log_rest, -1, keepdims=True))
    return tf.concat([head, last], -1)


def dirichlet_fractions(num_components, alpha=1.0):
    """Beta(alpha, (K-1-k) alpha), k = 0..K-2: the fractions whose stick-
    breaking weights are Dirichlet(alpha, ..., alpha) distributed."""
    k = np.arange(num_components - 1, dtype=np.float32)
    return tfd.Beta(
        concentration1=np.full_like(k, alpha), concentration0=(num_components - 1 - k) * alpha
    )


def gem_fractions(truncation, alpha0=1.0):
    """Beta(1, alpha0) fractions of a Dirichlet process truncated at T."""
    return tfd.Beta(
        concentration1=np.ones(truncation - 1, np.float32),
        concentration0=np.full(truncation - 1, alpha0, np.float32),
    )
