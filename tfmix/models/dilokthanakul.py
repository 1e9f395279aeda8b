"""GMVAE of Dilokthanakul et al. (2016), "Deep unsupervised clustering with
Gaussian mixture variational autoencoders" - the model Shu's post compares.

Generative model (their x, w, z renamed to our z, w, y):
p(w) = N(0, I); p(y) = Cat(1/K); p(z | w, y) = N(mu_y(w), sigma_y(w)^2) from a
network of w; p(x | z) Bernoulli. Inference: q(z|x) q(w|x), with the cluster
posterior computed exactly as p(y | z, w) ∝ p(y) p(z | w, y).

    -ELBO(x) = -E[log p(x|z)]                                  reconstruction
               + KL(q(w|x) || p(w))                            kl_w
               + E[ sum_y p(y|z,w) KL(q(z|x) || p(z|w,y)) ]    kl_z (conditional prior)
               + E[ KL(p(y|z,w) || p(y)) ]                     kl_y (z-prior term)

Following the paper, the minimised loss replaces the kl_y term by
max(lambda, mean over the batch of kl_y) (the "threshold" on the z-prior
term: free bits); `neg_elbo` is logged unthresholded. The default lambda =
0.5 is the authors' (`Nat-D/GMVAE` `main.lua`, which also trains with Adam
1e-4 and batch 50: `tfmix train dilokthanakul_gmvae --learning-rate 1e-4
--batch-size 50`).
"""

import keras
import tensorflow as tf

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import Decoder, GaussianHead, MLP


@keras.saving.register_keras_serializable(package="tfmix")
class DilokthanakulGMVAE(MixtureVAE):
    """Dilokthanakul et al.'s GMVAE.

    Args:
        w_dim: dimension of the latent w that parameterises the mixture.
        prior_hidden_units: hidden layers of the network w -> {mu_y, sigma_y}.
        threshold: lambda of the thresholded z-prior term (free bits; 0
            disables; default 0.5, the authors' code).

    Example:
    >>> model = DilokthanakulGMVAE(num_clusters=10, latent_dim=64, w_dim=32)
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_w", "kl_z", "kl_y")

    def __init__(self, w_dim=32, prior_hidden_units=(512,), threshold=0.5, **kwargs):
        if int(w_dim) < 1:
            raise ValueError(f"`w_dim` must be >= 1, got {w_dim}")
        if float(threshold) < 0:
            raise ValueError(f"`threshold` must be >= 0, got {threshold}")
        self.w_dim = int(w_dim)
        self.prior_hidden_units = tuple(int(u) for u in prior_hidden_units)
        self.threshold = float(threshold)
        super().__init__(**kwargs)

    def build_networks(self):
        K, Dz = self.num_clusters, self.latent_dim
        self.encoder = MLP(self.hidden_units, name="encoder")
        self.qz_head = GaussianHead(Dz, name="qz_head")
        self.qw_head = GaussianHead(self.w_dim, name="qw_head")
        self.prior_net = MLP(self.prior_hidden_units, activation="tanh", name="prior_net")
        self.prior_head = GaussianHead(K * Dz, name="prior_head")
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.encoder.build((None, self.data_dim))
        self.qz_head.build((None, self.hidden_units[-1]))
        self.qw_head.build((None, self.hidden_units[-1]))
        self.prior_net.build((None, self.w_dim))
        self.prior_head.build((None, self.prior_hidden_units[-1]))
        self.decoder.build((None, Dz))

    def posteriors(self, x):
        h = self.encoder(x)
        return D.diag_gaussian(*self.qz_head(h)), D.diag_gaussian(*self.qw_head(h))

    def p_z_given_w(self, w):
        """p(z | w, y) for every y: batch shape [..., K]."""
        loc, scale = self.prior_head(self.prior_net(w))
        shape = tf.concat([tf.shape(w)[:-1], [self.num_clusters, self.latent_dim]], 0)
        return D.diag_gaussian(tf.reshape(loc, shape), tf.reshape(scale, shape))

    def _cluster_posterior_logits(self, z, w):
        """log p(y | z, w) up to a constant: log p(y) + log p(z | w, y)."""
        return self.p_z_given_w(w).log_prob(z[..., None, :])

    def unlabelled_terms(self, x, training=False):
        qz, qw = self.posteriors(x)
        seed = self._noise_seed()
        z = qz.sample(seed=seed)
        w = qw.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        rec = -D.bernoulli_likelihood(self.decoder(z)).log_prob(x)
        kl_w = D.tfd.kl_divergence(qw, D.standard_normal(self.w_dim, tf.float32))
        pz = self.p_z_given_w(w)  # [B, K]
        py = D.categorical(pz.log_prob(z[:, None, :]))
        kl_z_each = D.tfd.kl_divergence(
            D.diag_gaussian(qz.loc[:, None, :], qz.stddev()[:, None, :]), pz
        )
        kl_z = tf.reduce_sum(py.probs_parameter() * kl_z_each, -1)
        kl_y = D.tfd.kl_divergence(py, D.uniform_categorical(self.num_clusters))
        neg_elbo = rec + kl_w + kl_z + kl_y
        loss = rec + kl_w + kl_z + tf.maximum(self.threshold, tf.reduce_mean(kl_y))
        return {
            "neg_elbo": neg_elbo, "loss": loss, "reconstruction": rec,
            "kl_w": kl_w, "kl_z": kl_z, "kl_y": kl_y,
        }

    def cluster_logits(self, x):
        qz, qw = self.posteriors(x)
        return self._cluster_posterior_logits(qz.mean(), qw.mean())

    def encode_mean(self, x):
        return self.posteriors(x)[0].mean()

    def reconstruct_mean(self, x):
        return tf.sigmoid(self.decoder(self.posteriors(x)[0].mean()))

    def generate_mean(self, clusters, seed):
        pw = D.standard_normal_like(tf.shape(clusters), self.w_dim, tf.float32)
        w = pw.sample(seed=seed)
        pz = self.p_z_given_w(w)  # [N, K]
        y1 = tf.one_hot(clusters, self.num_clusters, dtype=tf.float32)
        loc = tf.einsum("nk,nkd->nd", y1, pz.mean())
        scale = tf.einsum("nk,nkd->nd", y1, pz.stddev())
        z = D.diag_gaussian(loc, scale).sample(
            seed=tf.random.experimental.stateless_fold_in(seed, 1)
        )
        return tf.sigmoid(self.decoder(z))

    def log_importance_weights(self, x, num_samples, seed):
        """w = log p(x|z) + log p(z|w) + log p(w) - log q(z|x) - log q(w|x),
        with p(z|w) = sum_y p(y) p(z|w,y) as a `tfd.MixtureSameFamily`."""
        qz, qw = self.posteriors(x)
        z = qz.sample(num_samples, seed=seed)  # [S, B, Dz]
        w = qw.sample(num_samples, seed=tf.random.experimental.stateless_fold_in(seed, 1))
        comps = self.p_z_given_w(w)  # [S, B, K]
        mix = D.tfd.MixtureSameFamily(
            D.categorical(tf.zeros(tf.shape(comps.loc)[:-1], tf.float32)), comps
        )
        log_px = D.bernoulli_likelihood(self.decoder(z)).log_prob(x)
        log_pw = D.standard_normal(self.w_dim, tf.float32).log_prob(w)
        log_w = log_px + mix.log_prob(z) + log_pw - qz.log_prob(z) - qw.log_prob(w)
        return tf.transpose(log_w)

    def get_config(self):
        config = super().get_config()
        config.update(
            w_dim=self.w_dim,
            prior_hidden_units=list(self.prior_hidden_units),
            threshold=self.threshold,
        )
        return config
