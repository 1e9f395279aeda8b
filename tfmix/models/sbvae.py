"""SB-VAE of Nalisnick & Smyth (2017), "Stick-breaking variational
autoencoders".

The latent is a vector of T stick-breaking weights pi = SB(v) with
q(v_k|x) = Kumaraswamy(a_k(x), b_k(x)) and a GEM(alpha0) prior (v_k ~
Beta(1, alpha0)), truncated at T:

    -ELBO(x) = -E_q[log p(x | pi(v))] + sum_k KL(Kumaraswamy(a_k, b_k) || Beta(1, alpha0))

Its "clusters" are the T sticks: `cluster_probs` is E[pi|x] at the mean
fractions; `generate(c)` decodes prior samples of pi in which the largest
weight has been moved to stick c (an approximate conditioning: GEM weights
are not exchangeable).
"""

import keras
import tensorflow as tf
from keras import ops

from tfmix import distributions as D
from tfmix import stick_breaking as SB
from tfmix.models.base import MixtureVAE
from tfmix.networks import Decoder, MLP, head


@keras.saving.register_keras_serializable(package="tfmix")
class SBVAE(MixtureVAE):
    """Stick-breaking VAE; `num_clusters` is the truncation T (also the
    latent dimension).

    Example:
    >>> model = SBVAE(num_clusters=25, hidden_units=(500,), prior_alpha=5.0)
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_v")
    default_steps_per_execution = 10  # 15% faster (BENCHMARKS.md section 5)

    def __init__(self, num_clusters=25, hidden_units=(500,), prior_alpha=5.0, latent_dim=None, **kwargs):
        if int(num_clusters) < 2:
            raise ValueError(f"`num_clusters` (the truncation) must be >= 2, got {num_clusters}")
        if latent_dim is not None and int(latent_dim) != int(num_clusters):
            raise ValueError(f"SBVAE's latent is the T = num_clusters weights; got latent_dim={latent_dim}")
        if float(prior_alpha) <= 0:
            raise ValueError(f"`prior_alpha` must be > 0, got {prior_alpha}")
        self.prior_alpha = float(prior_alpha)
        super().__init__(num_clusters=num_clusters, latent_dim=num_clusters, hidden_units=hidden_units, **kwargs)

    def prior_fractions(self):
        return SB.gem_fractions(self.num_clusters, self.prior_alpha)

    def build_networks(self):
        self.encoder = MLP(self.hidden_units, name="encoder")
        self.kumaraswamy_head = head(2 * (self.num_clusters - 1), name="kumaraswamy_head")
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.encoder.build((None, self.data_dim))
        self.kumaraswamy_head.build((None, self.hidden_units[-1]))
        self.decoder.build((None, self.num_clusters))

    def q_v(self, x):
        a, b = tf.split(ops.softplus(self.kumaraswamy_head(self.encoder(x))) + 1e-3, 2, axis=-1)
        return D.tfd.Kumaraswamy(concentration1=a, concentration0=b)

    def unlabelled_terms(self, x, training=False):
        qv = self.q_v(x)
        pi = SB.stick_breaking(SB.sample_fractions(qv, self._noise_seed()))
        rec = -D.bernoulli_likelihood(self.decoder(pi)).log_prob(x)
        kl_v = tf.reduce_sum(D.tfd.kl_divergence(qv, self.prior_fractions()), -1)
        return {"neg_elbo": rec + kl_v, "reconstruction": rec, "kl_v": kl_v}

    def _mean_weights(self, x):
        return SB.stick_breaking(SB.clip_fractions(self.q_v(x).mean()))

    def cluster_logits(self, x):
        return tf.math.log(self._mean_weights(x))

    def encode_mean(self, x):
        return self._mean_weights(x)

    def posterior_sample_batch(self, x, seed):
        """pi = SB(v), v ~ q(v|x) (the latent the decoder reads)."""
        return SB.stick_breaking(SB.sample_fractions(self.q_v(x), seed))

    def reconstruct_mean(self, x):
        return tf.sigmoid(self.decoder(self._mean_weights(x)))

    def generate_mean(self, clusters, seed):
        v = self.prior_fractions().sample(tf.shape(clusters)[0], seed=seed)
        pi = SB.stick_breaking(SB.clip_fractions(v))
        top = tf.argmax(pi, -1, output_type=tf.int32)
        rows = tf.range(tf.shape(pi)[0])
        c = tf.cast(clusters, tf.int32)
        swapped = tf.tensor_scatter_nd_update(
            pi, tf.stack([tf.concat([rows, rows], 0), tf.concat([c, top], 0)], 1),
            tf.concat([tf.gather_nd(pi, tf.stack([rows, top], 1)), tf.gather_nd(pi, tf.stack([rows, c], 1))], 0),
        )
        return tf.sigmoid(self.decoder(swapped))

    def log_importance_weights(self, x, num_samples, seed):
        qv = self.q_v(x)
        v = SB.sample_fractions(qv, seed, [num_samples])  # [S, B, T-1]
        log_px = D.bernoulli_likelihood(self.decoder(SB.stick_breaking(v))).log_prob(x)
        log_w = log_px + tf.reduce_sum(self.prior_fractions().log_prob(v) - qv.log_prob(v), -1)
        return tf.transpose(log_w)

    def get_config(self):
        config = super().get_config()
        config.pop("latent_dim")
        config.update(prior_alpha=self.prior_alpha)
        return config
