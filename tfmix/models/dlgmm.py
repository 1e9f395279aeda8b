"""DLGMM and DLDPMM of Nalisnick, Hertel & Smyth (2016), "Approximate
inference for deep latent Gaussian mixtures".

Generative model: pi ~ Dirichlet(alpha) (DLGMM) or a Dirichlet process
truncated at T (DLDPMM), k ~ Cat(pi), z ~ p_k(z) = N(m_k, I), x ~ p(x|z).
Inference: q(pi|x) = stick-breaking of Kumaraswamy(a_k(x), b_k(x))
fractions; q(z|x, pi) = sum_k pi_k N(mu_k(x), sigma_k(x)).

The ELBO of the paper's equation (1), with pi_bar the posterior-mean weights
and pi a Kumaraswamy sample, z_k ~ q_k (the decoder runs once on [B, K]):

    ELBO(x) = sum_k pi_bar_k [ log p(x|z_k) + E_{q_k}[log p_k(z)] ]
              - KL(q(pi|x) || p(pi))
              - log sum_k pi_k q_k(z_k)          (mixture entropy term)

KL(q(pi|x) || p(pi)) is the sum of KL(Kumaraswamy || Beta) over the
fractions (`tfmix.stick_breaking`).

`entropy` chooses the entropy term: "component" (the default) is equation
(1) as above, what the authors' `mcMixtureEntropy`
(`enalisnick/mixture_density_VAEs` `models/gaussMMVAE_collapsed.py`)
computes: each component's density at its own sample only, which gives
the components no reason to separate. "mixture" is the entropy of the
mixture itself, stratified over its components:
sum_k pi_k log sum_j pi_j q_j(z_k), each sample z_k scored by every
component (no extra decoder passes). log pi is computed in log space
(`stick_breaking.log_stick_breaking`).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmix import distributions as D
from tfmix import stick_breaking as SB
from tfmix.models.base import MixtureVAE
from tfmix.networks import Decoder, MLP, head

#: The component prior means of the paper's qualitative experiment (K = 5).
SPREAD_MEANS = (-1.5, -0.75, 0.0, 0.75, 1.5)


@keras.saving.register_keras_serializable(package="tfmix")
class DLGMM(MixtureVAE):
    """Deep latent Gaussian mixture with a Dirichlet(alpha) prior on pi.

    Args:
        num_clusters: K, the number of mixture components.
        prior_alpha: the symmetric Dirichlet concentration.
        component_means: K scalars m_k of the component priors N(m_k, I)
            (default all 0, the likelihood experiments; `SPREAD_MEANS` for
            the qualitative one).
        entropy: "component" (equation (1), the authors' code) or
            "mixture" (the mixture's entropy; see the module docstring).

    Example:
    >>> model = DLGMM(num_clusters=3, latent_dim=25, hidden_units=(500,))
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "cross_entropy_z", "kl_pi", "mixture_log_q")
    default_jit_compile = True  # 13-21% faster with XLA in three measurements (BENCHMARKS.md section 5)

    ENTROPY = ("component", "mixture")

    def __init__(self, num_clusters=3, latent_dim=25, hidden_units=(500,), prior_alpha=1.0,
                 component_means=None, entropy="component", **kwargs):
        if entropy not in self.ENTROPY:
            raise ValueError(f"`entropy` must be one of {self.ENTROPY}, got {entropy!r}")
        self.entropy = entropy
        if int(num_clusters) < 2:
            raise ValueError(f"`num_clusters` must be >= 2 for a mixture, got {num_clusters}")
        if float(prior_alpha) <= 0:
            raise ValueError(f"`prior_alpha` must be > 0, got {prior_alpha}")
        means = [0.0] * int(num_clusters) if component_means is None else [float(m) for m in component_means]
        if len(means) != int(num_clusters):
            raise ValueError(
                f"`component_means` must have num_clusters = {num_clusters} values, got {len(means)}"
            )
        self.prior_alpha = float(prior_alpha)
        self.component_means = means
        super().__init__(num_clusters=num_clusters, latent_dim=latent_dim, hidden_units=hidden_units, **kwargs)

    # -- priors ------------------------------------------------------------------
    def prior_fractions(self):
        """p(v): Beta priors of the K-1 stick-breaking fractions."""
        return SB.dirichlet_fractions(self.num_clusters, self.prior_alpha)

    def prior_components(self):
        """p_k(z) = N(m_k, I), batch shape [K]."""
        loc = np.repeat(np.asarray(self.component_means, np.float32)[:, None], self.latent_dim, 1)
        return D.diag_gaussian(tf.constant(loc), tf.ones_like(loc))

    # -- networks ------------------------------------------------------------------
    def build_networks(self):
        K, Dz, H = self.num_clusters, self.latent_dim, self.hidden_units[-1]
        self.encoder = MLP(self.hidden_units, name="encoder")
        self.loc_head = head(K * Dz, name="loc_head")
        self.scale_head = head(K * Dz, name="scale_head")
        self.kumaraswamy_head = head(2 * (K - 1), name="kumaraswamy_head")
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.encoder.build((None, self.data_dim))
        for layer in (self.loc_head, self.scale_head, self.kumaraswamy_head):
            layer.build((None, H))
        self.decoder.build((None, Dz))

    def posteriors(self, x):
        """(q(v|x) batch [B, K-1], q_k(z|x) batch [B, K])."""
        h = self.encoder(x)
        shape = [-1, self.num_clusters, self.latent_dim]
        loc = tf.reshape(self.loc_head(h), shape)
        scale = tf.reshape(ops.softplus(self.scale_head(h)), shape) + D.MIN_SCALE
        a, b = tf.split(ops.softplus(self.kumaraswamy_head(h)) + 1e-3, 2, axis=-1)
        return D.tfd.Kumaraswamy(concentration1=a, concentration0=b), D.diag_gaussian(loc, scale)

    def mean_weights(self, qv):
        return SB.stick_breaking(SB.clip_fractions(qv.mean()))

    # -- objective -----------------------------------------------------------------
    def unlabelled_terms(self, x, training=False):
        qv, qz = self.posteriors(x)
        seed = self._noise_seed()
        pi_bar = self.mean_weights(qv)  # [B, K]
        log_pi = SB.log_stick_breaking(SB.sample_fractions(qv, seed))  # [B, K]
        z = qz.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))  # [B, K, D]
        rec = -D.bernoulli_likelihood(self.decoder(z)).log_prob(x[:, None, :])  # [B, K]
        cross_ent = qz.cross_entropy(self.prior_components())  # -E_{q_k}[log p_k(z)], [B, K]
        kl_pi = tf.reduce_sum(D.tfd.kl_divergence(qv, self.prior_fractions()), -1)
        if self.entropy == "mixture":  # log q_j(z_k) for every sample k and component j: [B, K, K]
            log_q_jk = D.diag_gaussian(qz.mean()[:, None], qz.stddev()[:, None]).log_prob(z[:, :, None])
            mix_log_q = tf.reduce_sum(
                tf.exp(log_pi) * tf.reduce_logsumexp(log_pi[:, None, :] + log_q_jk, -1), -1)
        else:
            mix_log_q = tf.reduce_logsumexp(log_pi + qz.log_prob(z), -1)
        rec = tf.reduce_sum(pi_bar * rec, -1)
        cross_ent = tf.reduce_sum(pi_bar * cross_ent, -1)
        return {
            "neg_elbo": rec + cross_ent + kl_pi + mix_log_q,
            "reconstruction": rec,
            "cross_entropy_z": cross_ent,
            "kl_pi": kl_pi,
            "mixture_log_q": mix_log_q,
        }

    # -- public-API hooks ----------------------------------------------------------
    def cluster_logits(self, x):
        """log of the posterior-mean mixture weights E[pi|x]."""
        return tf.math.log(self.mean_weights(self.posteriors(x)[0]))

    def encode_mean(self, x):
        """Mean of q(z|x): sum_k pi_bar_k mu_k(x)."""
        qv, qz = self.posteriors(x)
        return tf.einsum("bk,bkd->bd", self.mean_weights(qv), qz.mean())

    def posterior_sample_batch(self, x, seed):
        """z ~ q(z|x): pi from the Kumaraswamy sticks, then the mixture."""
        qv, qz = self.posteriors(x)
        pi = SB.stick_breaking(SB.sample_fractions(qv, seed))
        mixture = D.tfd.MixtureSameFamily(D.categorical(tf.math.log(pi)), qz)
        return mixture.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))

    def reconstruct_mean(self, x):
        qv, qz = self.posteriors(x)
        return tf.einsum("bk,bkd->bd", self.mean_weights(qv), tf.sigmoid(self.decoder(qz.mean())))

    def generate_mean(self, clusters, seed):
        """Decodes z ~ p_k(z) for k = `clusters` (identical components when
        all prior means are equal, as in the likelihood experiments)."""
        means = tf.gather(tf.constant(self.component_means, tf.float32), clusters)
        eps = tf.random.stateless_normal([tf.shape(clusters)[0], self.latent_dim], seed=seed)
        return tf.sigmoid(self.decoder(means[:, None] + eps))

    def log_importance_weights(self, x, num_samples, seed):
        """Latents (v, z), k summed out: z ~ q(z|x, pi) as a mixture, and
        w = log p(x|z) + log sum_k pi_k p_k(z) + log p(v) - log q(v|x)
            - log sum_k pi_k q_k(z|x)."""
        qv, qz = self.posteriors(x)
        v = SB.sample_fractions(qv, seed, [num_samples])  # [S, B, K-1]
        pi = SB.stick_breaking(v)
        shape = tf.concat([tf.shape(pi), [self.latent_dim]], 0)  # [S, B, K, D]

        def mixture(comps):
            return D.tfd.MixtureSameFamily(
                D.categorical(tf.math.log(pi)),
                D.diag_gaussian(tf.broadcast_to(comps.mean(), shape), tf.broadcast_to(comps.stddev(), shape)),
            )

        q_mix, p_mix = mixture(qz), mixture(self.prior_components())  # batch [S, B]
        z = q_mix.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))  # [S, B, D]
        log_pv = tf.reduce_sum(self.prior_fractions().log_prob(v) - qv.log_prob(v), -1)
        log_w = D.bernoulli_likelihood(self.decoder(z)).log_prob(x) + p_mix.log_prob(z) - q_mix.log_prob(z) + log_pv
        return tf.transpose(log_w)

    def get_config(self):
        config = super().get_config()
        config.update(prior_alpha=self.prior_alpha, component_means=list(self.component_means),
                      entropy=self.entropy)
        return config


@keras.saving.register_keras_serializable(package="tfmix")
class DLDPMM(DLGMM):
    """DLGMM with a Dirichlet-process prior truncated at T = `num_clusters`:
    the fractions are Beta(1, alpha0) (`prior_alpha` is alpha0).

    Example:
    >>> model = DLDPMM(num_clusters=17, latent_dim=25, hidden_units=(500,))
    """

    default_jit_compile = False  # XLA measured no faster for the 17-component DLDPMM

    def prior_fractions(self):
        return SB.gem_fractions(self.num_clusters, self.prior_alpha)
