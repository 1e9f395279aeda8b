"""`MarginalMixtureVAE`: models with q(y|x) q(z|x,y) and p(y) p(z|y) p(x|z,y).

M2, the modified M2 and the real GMVAE share this inference network and
this objective; they differ only in p(z|y) and p(x|z,y), which each
subclass defines (`prior_z`, `decode_logits`).

Unlabelled ELBO, with the sum over the K values of y done exactly (the
decoder runs once on [B, K] rows, never in a Python loop):

    -ELBO(x) = sum_y q(y|x) [ -log p(x|z_y, y) + KL(q(z|x,y) || p(z|y)) ]
               + KL(q(y|x) || p(y)),        z_y ~ q(z|x,y)

Labelled ELBO (y observed), plus the classification term -log q(y|x):

    -ELBO(x, y) = -log p(x|z, y) + KL(q(z|x,y) || p(z|y)) - log p(y)
"""

import tensorflow as tf
from keras import ops

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import ConditionalMLP, GaussianHead, MLP, head


class MarginalMixtureVAE(MixtureVAE):
    """Shared inference network and objective of M2 / modified M2 / GMVAE."""

    labelled_term_names = ("neg_elbo", "reconstruction", "kl_z", "classification")
    supports_labels = True

    # -- the generative model, per subclass --------------------------------
    def build_generative(self):
        raise NotImplementedError

    def prior_z(self, y=None):
        """p(z|y): batch shape [K] (or none) when `y` is None, else batch
        shape [N] for one-hot `y` of shape [N, K]. Default: p(z) = N(0, I)."""
        if y is None:
            return D.standard_normal(self.latent_dim, tf.float32)
        return D.standard_normal_like(tf.shape(y)[:-1], self.latent_dim, tf.float32)

    def decode_logits(self, z, y):
        """Logits of p(x|z,y); `z` [..., D_z], `y` one-hot [..., K]."""
        raise NotImplementedError

    # -- inference network ---------------------------------------------------
    def build_networks(self):
        x_shape = (None, self.data_dim)
        self.qy_net = MLP(self.hidden_units, name="qy_net")
        self.qy_logits = head(self.num_clusters, name="qy_logits")
        self.qz_net = ConditionalMLP(
            self.hidden_units, self.num_clusters, name="qz_net"
        )
        self.qz_head = GaussianHead(self.latent_dim, name="qz_head")
        self.qy_net.build(x_shape)
        self.qy_logits.build((None, self.hidden_units[-1]))
        self.qz_net.build(x_shape)
        self.qz_head.build((None, self.hidden_units[-1]))
        self.build_generative()

    def cluster_logits(self, x):
        return self.qy_logits(self.qy_net(x))

    def q_z(self, x, y=None):
        """q(z|x,y): batch [B, K] for all y when `y` is None, else [B]."""
        loc, scale = self.qz_head(self.qz_net(x, y))
        return D.diag_gaussian(loc, scale)

    # -- objective -------------------------------------------------------------
    def unlabelled_terms(self, x, training=False):
        qy = D.categorical(self.cluster_logits(x))
        qz = self.q_z(x)  # batch [B, K]
        z = qz.sample(seed=self._noise_seed())  # [B, K, D]
        logits = self.decode_logits(z, self._all_y(tf.shape(x)[:1]))
        rec = -D.bernoulli_likelihood(logits).log_prob(x[:, None, :])  # [B, K]
        kl_z = D.tfd.kl_divergence(qz, self.prior_z())  # [B, K]
        kl_y = D.tfd.kl_divergence(qy, D.uniform_categorical(self.num_clusters))
        probs = qy.probs_parameter()
        rec = tf.reduce_sum(probs * rec, -1)
        kl_z = tf.reduce_sum(probs * kl_z, -1)
        return {
            "neg_elbo": rec + kl_z + kl_y,
            "reconstruction": rec,
            "kl_z": kl_z,
            "kl_y": kl_y,
        }

    def labelled_terms(self, x, y, training=False):
        y1 = tf.one_hot(y, self.num_clusters, dtype=tf.float32)
        qz = self.q_z(x, y1)
        z = qz.sample(seed=self._noise_seed())
        rec = -D.bernoulli_likelihood(self.decode_logits(z, y1)).log_prob(x)
        kl_z = D.tfd.kl_divergence(qz, self.prior_z(y1))
        log_py = D.uniform_categorical(self.num_clusters).log_prob(y)
        clf = -D.categorical(self.cluster_logits(x)).log_prob(y)
        return {
            "neg_elbo": rec + kl_z - log_py,
            "reconstruction": rec,
            "kl_z": kl_z,
            "classification": clf,
        }

    # -- public-API hooks ------------------------------------------------------
    def encode_mean(self, x):
        """E_q[z|x] = sum_y q(y|x) E[z|x,y]."""
        probs = ops.softmax(self.cluster_logits(x), -1)
        return tf.einsum("bk,bkd->bd", probs, self.q_z(x).mean())

    def reconstruct_mean(self, x):
        """sum_y q(y|x) E[x | z = E[z|x,y], y]."""
        probs = ops.softmax(self.cluster_logits(x), -1)
        z = self.q_z(x).mean()
        x_mean = tf.sigmoid(self.decode_logits(z, self._all_y(tf.shape(x)[:1])))
        return tf.einsum("bk,bkd->bd", probs, x_mean)

    def generate_mean(self, clusters, seed):
        y1 = tf.one_hot(clusters, self.num_clusters, dtype=tf.float32)
        prior = self.prior_z(y1)
        z = prior.sample(seed=seed)  # [N, D]: prior_z(y) has batch [N]
        return tf.sigmoid(self.decode_logits(z, y1))

    def log_importance_weights(self, x, num_samples, seed):
        """Stratified over y: w_s = log sum_y p(x,y,z_ys) / q(z_ys|x,y)."""
        qz = self.q_z(x)  # [B, K]
        z = qz.sample(num_samples, seed=seed)  # [S, B, K, D]
        logits = self.decode_logits(z, self._all_y(tf.shape(z)[:2]))
        log_px = D.bernoulli_likelihood(logits).log_prob(x[None, :, None, :])
        log_pz = self.prior_z().log_prob(z)
        log_w = log_px + log_pz - qz.log_prob(z) + D.log_uniform(self.num_clusters)
        return tf.transpose(tf.reduce_logsumexp(log_w, -1))  # [B, S]
