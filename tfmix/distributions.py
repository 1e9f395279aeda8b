"""The distributions every tfmix model is built from, in one place.

All densities and KL divergences in tfmix come from TensorFlow Probability;
these helpers only fix the conventions (event shapes, parameterisations) so
that each model's loss reads as the paper writes it.

Conventions: images are flattened to vectors of length `D_x` inside models,
so a likelihood over one image has event shape `[D_x]`; latent Gaussians are
diagonal with event shape `[D_z]`; a cluster variable over `K` values is a
`tfd.Categorical` with batch shape `[...]`.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# Smallest standard deviation a Gaussian head may produce; keeps log densities
# finite when a softplus output underflows.
MIN_SCALE = 1e-4
#: what the softplus of a Gaussian head's raw output is (`positive_scale`)
SOFTPLUS_ON = ("scale", "variance")


def check_softplus_on(softplus_on):
    """`softplus_on` itself, or a ValueError naming the argument."""
    if softplus_on not in SOFTPLUS_ON:
        raise ValueError(f"`softplus_on` must be one of {SOFTPLUS_ON}, got {softplus_on!r}")
    return softplus_on


def positive_scale(raw, softplus_on="scale"):
    """The standard deviation a Gaussian head's raw output `raw` stands for.

    "scale": softplus(raw) + MIN_SCALE is the standard deviation (tfmix's
    default). "variance": softplus(raw) is the variance, as in Rui Shu's
    GMVAE and M2 code (`RuiShu/vae-clustering` `shared_subgraphs.py`,
    `gmvae.py`: the softplus outputs `zv` go into `tensorbayes`'s
    `log_normal(x, mu, var)` and `GaussianSample(zm, zv)`), floored at
    MIN_SCALE**2. The same family of Gaussians; the gradients differ.

    Example:
    >>> positive_scale(tf.constant([0.0]), "variance")  # sqrt(log 2)  # doctest: +SKIP
    """
    if check_softplus_on(softplus_on) == "scale":
        return tf.math.softplus(raw) + MIN_SCALE
    return tf.sqrt(tf.math.softplus(raw) + MIN_SCALE ** 2)


class LogitBernoulli(tfd.Bernoulli):
    """`tfd.Bernoulli` whose `log_prob` costs one softplus instead of two.

    log p(x) = x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l),
    the same density as `tfd.Bernoulli` (also for x in (0, 1), the "Bernoulli
    loss" on grey levels), computed with one softplus and one product per
    pixel instead of two softplus, two negations and two `multiply_no_nan`s.
    Every tfmix likelihood evaluates it on [B, K, 784] tensors in every step,
    where those elementwise passes cost as much as a dense layer (BENCHMARKS
    section 11). Everything else (sampling, mean, entropy, probs) is
    `tfd.Bernoulli`'s. The logits must be finite (a network's output); with
    `probs` it is `tfd.Bernoulli` unchanged.

    Example:
    >>> d = LogitBernoulli(logits=[0.0, 2.0], dtype=tf.float32)
    >>> d.log_prob([1.0, 0.0])  # doctest: +SKIP
    """

    def __init__(self, logits=None, probs=None, dtype=tf.int32, validate_args=False,
                 allow_nan_stats=True, name="LogitBernoulli"):
        parameters = dict(locals())
        super().__init__(logits=logits, probs=probs, dtype=dtype, validate_args=validate_args,
                         allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.Bernoulli._parameter_properties(dtype, num_classes=num_classes)  # the same parameters

    def _log_prob(self, event):
        if self._logits is None:
            return super()._log_prob(event)
        logits = tf.convert_to_tensor(self._logits)
        return tf.cast(event, logits.dtype) * logits - tf.math.softplus(logits)


def bernoulli_likelihood(logits):
    """p(x | .) as independent Bernoulli pixels; event shape = last axis."""
    return tfd.Independent(
        LogitBernoulli(logits=logits, dtype=logits.dtype),
        reinterpreted_batch_ndims=1,
    )


def diag_gaussian(loc, scale):
    """A Gaussian with diagonal covariance; event shape = last axis."""
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)


def standard_normal(dim, dtype=tf.float32):
    """The N(0, I) prior over a `dim`-dimensional latent."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([dim], dtype), scale_diag=tf.ones([dim], dtype)
    )


def uniform_categorical(num_classes, dtype=tf.float32):
    """The uniform prior p(y) = 1/K."""
    return tfd.Categorical(logits=tf.zeros([num_classes], dtype))


def categorical(logits):
    """q(y | x) from unnormalised logits (batch shape = leading axes)."""
    return tfd.Categorical(logits=logits)


def log_mean_exp(log_w, axis=-1):
    """log (1/S) sum_s exp(log_w_s): the importance-weighted estimate."""
    num = tf.cast(tf.shape(log_w)[axis], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=axis) - tf.math.log(num)


def log_uniform(num_classes):
    """log p(y) for the uniform prior over `num_classes` values."""
    return -math.log(num_classes)


def standard_normal_like(batch_shape, dim, dtype=tf.float32):
    """N(0, I) over a `dim`-dimensional latent with an explicit batch shape."""
    shape = tf.concat([batch_shape, [dim]], 0)
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros(shape, dtype), scale_diag=tf.ones(shape, dtype)
    )
