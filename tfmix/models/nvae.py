"""N-VAE of Antorán & Miguel (2019), "Disentangling and learning robust
representations with natural clustering" (arXiv 1901.09415).

The latent z = [z_c, z_s]: z_c (L dims) carries class-dependent factors,
z_s (S dims) factors shared by all classes; q(z|x) = q(z_c|x) q(z_s|x) and
q(y|x) share one encoder. The decoder sees

    z_cy = vec(c_y ⊙ [1_L, z_c])  (the slot of class y holds [1, z_c], the
                                   other K - 1 slots are zero), then [z_cy, z_s],

and the labelled objective is the paper's equation (7):

    L(x, y) = E_q(z|x)[log p(x|y, z)] - KL(q(z_s|x) || p(z))
              - beta_c KL(q(z_c|x) || p(z)) + log q(y|x)

(a lower bound on log p(x, y) for beta_c = 1). Our extension, not in the
paper: unlabelled points sum over y with q(y|x), as M2 does,

    U(x) = sum_y q(y|x) E_q(z|x)[log p(x|y, z)] - KL(q(z_s|x) || p(z))
           - beta_c KL(q(z_c|x) || p(z)) - KL(q(y|x) || p(y)),

so the model can also be trained semi-supervised.
"""

import keras
import numpy as np
import tensorflow as tf

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import Decoder, GaussianHead, MLP, head


@keras.saving.register_keras_serializable(package="tfmix")
class NVAE(MixtureVAE):
    """Natural-clustering VAE with class-specific and shared latents.

    Args:
        class_latent_dim: L, the dimension of z_c.
        shared_latent_dim: S, the dimension of z_s (`latent_dim` = L + S).
        beta_c: weight of KL(q(z_c|x) || p(z)).
        labelled: trained with labels (the paper's setting; default True).

    Example:
    >>> model = NVAE(num_clusters=10, class_latent_dim=4, shared_latent_dim=6)
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_zs", "kl_zc", "kl_y")
    # 18-32% faster with XLA in float32 in three measurements (BENCHMARKS.md section 5); in bfloat16
    # XLA is slower (it does not use oneDNN's bfloat16 matmuls), so `tfmix train` uses it in float32 only
    default_jit_compile = True
    labelled_term_names = ("neg_elbo", "reconstruction", "kl_zs", "kl_zc", "classification")
    supports_labels = True
    supports_sigma = True

    def __init__(self, class_latent_dim=4, shared_latent_dim=6, beta_c=1.0, labelled=True,
                 latent_dim=None, classification_weight=1.0, **kwargs):
        L, S = int(class_latent_dim), int(shared_latent_dim)
        if L < 1 or S < 1:
            raise ValueError(
                f"`class_latent_dim` and `shared_latent_dim` must be >= 1, got {class_latent_dim}, {shared_latent_dim}"
            )
        if latent_dim is not None and int(latent_dim) != L + S:
            raise ValueError(f"`latent_dim` must be class_latent_dim + shared_latent_dim = {L + S}, got {latent_dim}")
        if float(beta_c) < 0:
            raise ValueError(f"`beta_c` must be >= 0, got {beta_c}")
        self.class_latent_dim, self.shared_latent_dim, self.beta_c = L, S, float(beta_c)
        super().__init__(latent_dim=L + S, labelled=labelled,
                         classification_weight=classification_weight, **kwargs)

    def build_networks(self):
        H = self.hidden_units[-1]
        self.encoder = MLP(self.hidden_units, name="encoder")
        self.qzc_head = GaussianHead(self.class_latent_dim, name="qzc_head")
        self.qzs_head = GaussianHead(self.shared_latent_dim, name="qzs_head")
        self.qy_logits = head(self.num_clusters, name="qy_logits")
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.encoder.build((None, self.data_dim))
        for layer in (self.qzc_head, self.qzs_head, self.qy_logits):
            layer.build((None, H))
        self.decoder.build((None, self.num_clusters * (self.class_latent_dim + 1) + self.shared_latent_dim))

    def posteriors(self, x):
        """(q(z_c|x), q(z_s|x), logits of q(y|x))."""
        h = self.encoder(x)
        return D.diag_gaussian(*self.qzc_head(h)), D.diag_gaussian(*self.qzs_head(h)), self.qy_logits(h)

    def decoder_input(self, zc, zs, y):
        """[vec(c_y ⊙ [1_L, z_c]), z_s]; `y` one-hot [..., K] (or all K
        classes at once when `y` is [..., K, K] and z broadcast)."""
        slot = tf.concat([tf.ones_like(zc[..., :1]), zc], -1)  # [..., L + 1]
        zcy = y[..., :, None] * slot[..., None, :]  # [..., K, L + 1]
        shape = tf.concat([tf.shape(zcy)[:-2], [self.num_clusters * (self.class_latent_dim + 1)]], 0)
        return tf.concat([tf.reshape(zcy, shape), zs], -1)

    def _kl_terms(self, qzc, qzs):
        return (
            D.tfd.kl_divergence(qzs, D.standard_normal(self.shared_latent_dim, tf.float32)),
            D.tfd.kl_divergence(qzc, D.standard_normal(self.class_latent_dim, tf.float32)),
        )

    def labelled_terms(self, x, y, training=False):
        qzc, qzs, logits = self.posteriors(x)
        seed = self._noise_seed()
        zc = qzc.sample(seed=seed)
        zs = qzs.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        y1 = tf.one_hot(y, self.num_clusters, dtype=tf.float32)
        rec = -D.bernoulli_likelihood(self.decoder(self.decoder_input(zc, zs, y1))).log_prob(x)
        kl_zs, kl_zc = self._kl_terms(qzc, qzs)
        clf = -D.categorical(logits).log_prob(y)
        return {
            "neg_elbo": rec + kl_zs + self.beta_c * kl_zc,  # + classification (weighted by the base)
            "reconstruction": rec, "kl_zs": kl_zs, "kl_zc": kl_zc, "classification": clf,
        }

    def unlabelled_terms(self, x, training=False):
        qzc, qzs, logits = self.posteriors(x)
        seed = self._noise_seed()
        zc = qzc.sample(seed=seed)
        zs = qzs.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        y_all = self._all_y(tf.shape(x)[:1])  # [B, K, K]
        inp = self.decoder_input(zc[:, None, :], zs[:, None, :] + 0 * y_all[..., :1], y_all)
        rec = -D.bernoulli_likelihood(self.decoder(inp)).log_prob(x[:, None, :])  # [B, K]
        qy = D.categorical(logits)
        rec = tf.reduce_sum(qy.probs_parameter() * rec, -1)
        kl_zs, kl_zc = self._kl_terms(qzc, qzs)
        kl_y = D.tfd.kl_divergence(qy, D.uniform_categorical(self.num_clusters))
        return {
            "neg_elbo": rec + kl_zs + self.beta_c * kl_zc + kl_y,
            "reconstruction": rec, "kl_zs": kl_zs, "kl_zc": kl_zc, "kl_y": kl_y,
        }

    def cluster_logits(self, x):
        return self.posteriors(x)[2]

    def per_dimension_kl(self, x, batch_size=1000):
        """Per-dimension KL(q(z_j|x) || N(0, 1)) of z_c and of z_s:
        NumPy arrays [N, L] and [N, S] (the paper's feature detector: averaged
        over the examples of a class, it shows which z_c dimensions the class
        uses)."""
        x = self.check_images(x)
        self._ensure_built()
        std = D.tfd.Normal(0.0, 1.0)
        out_c, out_s = [], []
        for i in range(0, len(x), batch_size):
            qzc, qzs, _ = self.posteriors(tf.constant(x[i:i + batch_size]))  # [B, D_x] already
            for q, out in ((qzc, out_c), (qzs, out_s)):
                per_dim = D.tfd.Normal(q.mean(), q.stddev())
                out.append(D.tfd.kl_divergence(per_dim, std).numpy())
        return np.concatenate(out_c), np.concatenate(out_s)

    def encode_mean(self, x):
        qzc, qzs, _ = self.posteriors(x)
        return tf.concat([qzc.mean(), qzs.mean()], -1)

    def reconstruct_mean(self, x):
        """Decoded at the posterior means, with y = argmax q(y|x)."""
        qzc, qzs, logits = self.posteriors(x)
        y1 = tf.one_hot(tf.argmax(logits, -1), self.num_clusters, dtype=tf.float32)
        return tf.sigmoid(self.decoder(self.decoder_input(qzc.mean(), qzs.mean(), y1)))

    def generate_mean(self, clusters, seed, sigma=1.0):
        """Ancestral samples z ~ N(0, sigma^2 I) decoded with y = `clusters`."""
        z = sigma * tf.random.stateless_normal([tf.shape(clusters)[0], self.latent_dim], seed=seed)
        y1 = tf.one_hot(clusters, self.num_clusters, dtype=tf.float32)
        zc, zs = z[:, : self.class_latent_dim], z[:, self.class_latent_dim:]
        return tf.sigmoid(self.decoder(self.decoder_input(zc, zs, y1)))

    def log_importance_weights(self, x, num_samples, seed):
        """log p(x) with y summed exactly: w_s = log sum_y p(y) p(x|y, z_s)
        + log p(z_s) - log q(z_s|x), z_s ~ q(z|x)."""
        qzc, qzs, _ = self.posteriors(x)
        zc = qzc.sample(num_samples, seed=seed)  # [S, B, L]
        zs = qzs.sample(num_samples, seed=tf.random.experimental.stateless_fold_in(seed, 1))
        y_all = self._all_y(tf.shape(zc)[:2])  # [S, B, K, K]
        inp = self.decoder_input(zc[..., None, :], zs[..., None, :] + 0 * y_all[..., :1], y_all)
        log_px = D.bernoulli_likelihood(self.decoder(inp)).log_prob(x[None, :, None, :])  # [S, B, K]
        log_px_marg = tf.reduce_logsumexp(log_px, -1) + D.log_uniform(self.num_clusters)
        log_pz = (D.standard_normal(self.class_latent_dim, tf.float32).log_prob(zc)
                  + D.standard_normal(self.shared_latent_dim, tf.float32).log_prob(zs))
        return tf.transpose(log_px_marg + log_pz - qzc.log_prob(zc) - qzs.log_prob(zs))

    def get_config(self):
        config = super().get_config()
        config.pop("latent_dim")
        config.update(class_latent_dim=self.class_latent_dim,
                      shared_latent_dim=self.shared_latent_dim, beta_c=self.beta_c)
        return config
