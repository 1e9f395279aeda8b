"""Gauss-VAE: the standard VAE of Kingma & Welling (2014), the baseline.

p(z) = N(0, I), p(x|z) Bernoulli, q(z|x) diagonal Gaussian:

    -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z))

It is a mixture VAE with a single component (K = 1): `cluster_probs` is
all ones and `generate` takes cluster 0.
"""

import keras
import tensorflow as tf

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import Decoder, GaussianHead, MLP


@keras.saving.register_keras_serializable(package="tfmix")
class GaussVAE(MixtureVAE):
    """The Gaussian VAE baseline.

    Example:
    >>> model = GaussVAE(latent_dim=25, hidden_units=(500,))
    >>> model.compile(optimizer="adam")
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_z")
    default_steps_per_execution = 10  # 9-16% faster (BENCHMARKS.md section 5)

    def __init__(self, num_clusters=1, **kwargs):
        if int(num_clusters) != 1:
            raise ValueError(f"GaussVAE has one component: `num_clusters` must be 1, got {num_clusters}")
        super().__init__(num_clusters=1, **kwargs)

    def build_networks(self):
        self.encoder = MLP(self.hidden_units, name="encoder")
        self.qz_head = GaussianHead(self.latent_dim, name="qz_head")
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.encoder.build((None, self.data_dim))
        self.qz_head.build((None, self.hidden_units[-1]))
        self.decoder.build((None, self.latent_dim))

    def q_z(self, x):
        return D.diag_gaussian(*self.qz_head(self.encoder(x)))

    def unlabelled_terms(self, x, training=False):
        qz = self.q_z(x)
        z = qz.sample(seed=self._noise_seed())
        rec = -D.bernoulli_likelihood(self.decoder(z)).log_prob(x)
        kl_z = D.tfd.kl_divergence(qz, D.standard_normal(self.latent_dim, tf.float32))
        return {"neg_elbo": rec + kl_z, "reconstruction": rec, "kl_z": kl_z}

    def cluster_logits(self, x):
        return tf.zeros([tf.shape(x)[0], 1], tf.float32)

    def encode_mean(self, x):
        return self.q_z(x).mean()

    def posterior_sample_batch(self, x, seed):
        return self.q_z(x).sample(seed=seed)

    def reconstruct_mean(self, x):
        return tf.sigmoid(self.decoder(self.q_z(x).mean()))

    supports_sigma = True

    def generate_mean(self, clusters, seed, sigma=1.0):
        prior = D.standard_normal_like(tf.shape(clusters), self.latent_dim, tf.float32)
        return tf.sigmoid(self.decoder(sigma * prior.sample(seed=seed)))

    def log_importance_weights(self, x, num_samples, seed):
        qz = self.q_z(x)
        z = qz.sample(num_samples, seed=seed)  # [S, B, D]
        log_px = D.bernoulli_likelihood(self.decoder(z)).log_prob(x)
        log_pz = D.standard_normal(self.latent_dim, tf.float32).log_prob(z)
        return tf.transpose(log_px + log_pz - qz.log_prob(z))
