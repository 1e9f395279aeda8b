"""CaGeM of Maaløe, Fraccaro & Winther (2017), "Semi-supervised generation
with cluster-aware generative models" (arXiv 1704.00637).

Generative model: p(x, z1, z2) = sum_y p(x|y, z1) p(z1|y, z2) p(y|z2) p(z2),
with p(z2) = N(0, I): the discrete y depends on the top layer z2 only.
Inference: q(y, z1, z2|x) = q(z2|x, y, z1) q(y|z1, x) q(z1|x).

Unlabelled ELBO, the sum over y exact (networks run once on [B, K]):

    ELBO(x) = E_q(z1|x)[ sum_y q(y|z1,x) E_q(z2|x,y,z1)[ log p(x,y,z1,z2) - log q(y,z1,z2|x) ] ]

with z1 one sample and one z2 per y; KL(q(z2|x,y,z1) || p(z2)) analytic.
Labelled points use their y: -ELBO(x, y) plus `classification_weight` x
-log q(y|z1, x) (the classification term; with one z1 sample it bounds
-log q(y|x) from above).

KL warm-up (the paper trains with a warm-up of the KL terms): the minimised
loss is reconstruction + beta x (KL(z1) + KL(z2)) + the y terms, beta =
`kl_scale` (a non-trainable variable, 1 by default;
`tfmix.callbacks.KLWarmUp` raises it linearly from 0 to 1, `tfmix train
cagem --warmup-epochs N`); the logged `neg_elbo` is always the ELBO. Only
the continuous KLs are scaled: `kl_y` = E_q[log q(y|z1,x) - log p(y|z2)]
holds the entropy of q(y), and scaling it down rewards a winner-take-all
q(y) (how CaGeM-0 collapsed with the earlier, all-terms warm-up). For
labelled points -log p(y|z2) and the classification term are not scaled.

Conditional generation samples p(x|y) = E_p(z2|y)[...]: z2 ~ p(z2|y),
proportional to p(y|z2) p(z2), by sampling-importance-resampling (one of
`GENERATION_CANDIDATES` draws from p(z2), resampled with weights p(y|z2)).

Two classifiers: q(y|x) = E_q(z1|x)[q(y|z1, x)] (`cluster_probs`,
`classify`) and p(y|x) ~ E_q(z2|x)[p(y|z2)] (`generative_classifier`), both
Monte Carlo averages with a fixed seed.
"""

import keras
import tensorflow as tf

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import ConditionalMLP, Decoder, GaussianHead, MLP, head

#: z1 samples of the Monte Carlo classifiers (fixed seed: deterministic).
CLASSIFIER_SAMPLES = 10
#: draws from p(z2) per sample of p(z2|y) (sampling-importance-resampling)
GENERATION_CANDIDATES = 1024


@keras.saving.register_keras_serializable(package="tfmix")
class CaGeM(MixtureVAE):
    """Cluster-aware generative model (CaGeM-0 unsupervised, or with labels).

    Args:
        latent_dim: dimension of z1.
        top_latent_dim: dimension of z2 (2 for the paper's Figure 2).

    Example:
    >>> model = CaGeM(num_clusters=10, latent_dim=64, top_latent_dim=32)
    """

    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_z1", "kl_z2", "kl_y")
    labelled_term_names = ("neg_elbo", "reconstruction", "kl_z1", "kl_z2", "log_p_y", "classification")
    supports_labels = True
    supports_warmup = True

    def __init__(self, top_latent_dim=32, **kwargs):
        if int(top_latent_dim) < 1:
            raise ValueError(f"`top_latent_dim` must be >= 1, got {top_latent_dim}")
        self.top_latent_dim = int(top_latent_dim)
        super().__init__(**kwargs)

    def build_networks(self):
        K, D1, D2, H = self.num_clusters, self.latent_dim, self.top_latent_dim, self.hidden_units[-1]
        xd = self.data_dim
        self.kl_scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="kl_scale")
        self.qz1_net, self.qz1_head = MLP(self.hidden_units, name="qz1_net"), GaussianHead(D1, name="qz1_head")
        self.qy_net, self.qy_logits = MLP(self.hidden_units, name="qy_net"), head(K, name="qy_logits")
        self.qz2_net = ConditionalMLP(self.hidden_units, K, name="qz2_net")
        self.qz2_head = GaussianHead(D2, name="qz2_head")
        self.py_net, self.py_logits = MLP(self.hidden_units, name="py_net"), head(K, name="py_logits")
        self.pz1_net = ConditionalMLP(self.hidden_units, K, name="pz1_net")
        self.pz1_head = GaussianHead(D1, name="pz1_head")
        self.decoder = Decoder(self.hidden_units[::-1], xd, num_classes=K, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.qz1_net.build((None, xd))
        self.qy_net.build((None, xd + D1))
        self.qz2_net.build((None, xd + D1))
        self.py_net.build((None, D2))
        self.pz1_net.build((None, D2))
        for layer in (self.qz1_head, self.qy_logits, self.qz2_head, self.py_logits, self.pz1_head):
            layer.build((None, H))
        self.decoder.build((None, D1))

    # -- the distributions --------------------------------------------------------
    def q_z1(self, x):
        return D.diag_gaussian(*self.qz1_head(self.qz1_net(x)))

    def q_y_logits(self, x, z1):
        return self.qy_logits(self.qy_net(tf.concat([x, z1], -1)))

    def q_z2(self, x, z1, y=None):
        """q(z2|x, y, z1): batch [B, K] for all y if `y` is None."""
        return D.diag_gaussian(*self.qz2_head(self.qz2_net(tf.concat([x, z1], -1), y)))

    def p_y_logits(self, z2):
        return self.py_logits(self.py_net(z2))

    def p_z1(self, z2, y):
        return D.diag_gaussian(*self.pz1_head(self.pz1_net(z2, y)))

    def _per_y_terms(self, x, z1, qz2, z2, y_all):
        """-log p(x|y,z1), -log p(z1|y,z2), -log p(y|z2), KL(q(z2)||p(z2)), each [B, K]."""
        rec = -D.bernoulli_likelihood(self.decoder(tf.broadcast_to(z1[:, None, :], tf.concat([tf.shape(y_all)[:-1], [self.latent_dim]], 0)), y_all)).log_prob(x[:, None, :])
        nlp_z1 = -self.p_z1(z2, y_all).log_prob(z1[:, None, :])
        nlp_y = -tf.reduce_sum(y_all * tf.nn.log_softmax(self.p_y_logits(z2)), -1)
        kl_z2 = D.tfd.kl_divergence(qz2, D.standard_normal(self.top_latent_dim, tf.float32))
        return rec, nlp_z1, nlp_y, kl_z2

    # -- objective ----------------------------------------------------------------
    def unlabelled_terms(self, x, training=False):
        seed = self._noise_seed()
        qz1 = self.q_z1(x)
        z1 = qz1.sample(seed=seed)
        qy_logits = self.q_y_logits(x, z1)
        qz2 = self.q_z2(x, z1)  # [B, K]
        z2 = qz2.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))  # [B, K, D2]
        y_all = self._all_y(tf.shape(x)[:1])
        rec, nlp_z1, nlp_y, kl_z2 = self._per_y_terms(x, z1, qz2, z2, y_all)
        q = tf.nn.softmax(qy_logits)
        log_q = tf.nn.log_softmax(qy_logits)
        w = lambda t: tf.reduce_sum(q * t, -1)  # noqa: E731
        kl_z1 = qz1.log_prob(z1) + w(nlp_z1)
        kl_y = w(log_q + nlp_y)
        rec, kl_z2 = w(rec), w(kl_z2)
        beta = tf.cast(self.kl_scale, tf.float32)
        return {"neg_elbo": rec + kl_z1 + kl_z2 + kl_y, "loss": rec + beta * (kl_z1 + kl_z2) + kl_y,
                "reconstruction": rec, "kl_z1": kl_z1, "kl_z2": kl_z2, "kl_y": kl_y}

    def labelled_terms(self, x, y, training=False):
        seed = self._noise_seed()
        qz1 = self.q_z1(x)
        z1 = qz1.sample(seed=seed)
        y1 = tf.one_hot(y, self.num_clusters, dtype=tf.float32)
        qz2 = self.q_z2(x, z1, y1)
        z2 = qz2.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        rec = -D.bernoulli_likelihood(self.decoder(z1, y1)).log_prob(x)
        kl_z1 = qz1.log_prob(z1) - self.p_z1(z2, y1).log_prob(z1)
        kl_z2 = D.tfd.kl_divergence(qz2, D.standard_normal(self.top_latent_dim, tf.float32))
        nlp_y = -D.categorical(self.p_y_logits(z2)).log_prob(y)
        clf = -D.categorical(self.q_y_logits(x, z1)).log_prob(y)
        beta = tf.cast(self.kl_scale, tf.float32)
        return {"neg_elbo": rec + kl_z1 + kl_z2 + nlp_y, "loss": rec + beta * (kl_z1 + kl_z2) + nlp_y,
                "reconstruction": rec, "kl_z1": kl_z1, "kl_z2": kl_z2, "log_p_y": nlp_y,
                "classification": clf}

    # -- classifiers and the public-API hooks ---------------------------------------
    def _z1_samples(self, x, n=CLASSIFIER_SAMPLES):
        return self.q_z1(x).sample(n, seed=tf.constant([12345, 0]))  # [n, B, D1]

    def cluster_logits(self, x):
        """log q(y|x), q(y|x) = E_q(z1|x)[q(y|z1, x)] (Monte Carlo, fixed seed)."""
        z1 = self._z1_samples(x)
        xs = tf.broadcast_to(x, tf.concat([tf.shape(z1)[:2], [self.data_dim]], 0))
        return tf.reduce_logsumexp(tf.nn.log_softmax(self.q_y_logits(xs, z1)), 0) - tf.math.log(
            tf.cast(tf.shape(z1)[0], tf.float32))

    def generative_classifier(self, x):
        """p(y|x) ~ E_q(z2|x)[p(y|z2)] with q(z2|x) = E[sum_y q(y|z1,x) q(z2|x,y,z1)]
        (Monte Carlo, fixed seed, z2 at its conditional means); [B, K] probs."""
        x = tf.constant(self.check_images(x))
        z1 = self._z1_samples(x)  # [n, B, D1]
        xs = tf.broadcast_to(x, tf.concat([tf.shape(z1)[:2], [self.data_dim]], 0))
        q = tf.nn.softmax(self.q_y_logits(xs, z1))  # [n, B, K]
        py = tf.nn.softmax(self.p_y_logits(self.q_z2(xs, z1).mean()))  # [n, B, K(y of q), K]
        return tf.reduce_mean(tf.einsum("nbk,nbkj->nbj", q, py), 0).numpy()

    def encode_mean(self, x):
        """E[z1|x] (the lower latent)."""
        return self.q_z1(x).mean()

    def reconstruct_mean(self, x):
        z1 = self.q_z1(x).mean()
        probs = tf.nn.softmax(self.q_y_logits(x, z1))
        x_mean = tf.sigmoid(self.decoder(tf.broadcast_to(z1[:, None, :], tf.concat([tf.shape(probs), [self.latent_dim]], 0)),
                                         self._all_y(tf.shape(x)[:1])))
        return tf.einsum("bk,bkd->bd", probs, x_mean)

    def sample_z2_given_y(self, clusters, seed, candidates=GENERATION_CANDIDATES):
        """z2 ~ p(z2|y) for each y of `clusters` [N], by sampling-importance-
        resampling: `candidates` draws from p(z2) = N(0, I), one kept with
        probability proportional to p(y|z2). Stateless (`seed`, [2] int32);
        [N, D2]."""
        n, m = tf.shape(clusters)[0], int(candidates)
        z2 = tf.random.stateless_normal([n, m, self.top_latent_dim], seed=seed)
        log_w = tf.gather(tf.nn.log_softmax(self.p_y_logits(z2)), clusters, axis=-1, batch_dims=1)  # [N, M]
        pick = D.categorical(log_w).sample(seed=tf.random.experimental.stateless_fold_in(seed, 2))
        return tf.gather(z2, pick, axis=1, batch_dims=1)

    def generate_mean(self, clusters, seed):
        """z2 ~ p(z2|y = clusters) (`sample_z2_given_y`), z1 ~ p(z1|y, z2), x ~ p(x|y, z1)."""
        z2 = self.sample_z2_given_y(clusters, seed)
        y1 = tf.one_hot(clusters, self.num_clusters, dtype=tf.float32)
        z1 = self.p_z1(z2, y1).sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        return tf.sigmoid(self.decoder(z1, y1))

    def ancestral_sample(self, n, seed=0):
        """Random samples of the generative model, [n, D_x] Bernoulli means,
        and their y: z2 ~ p(z2), y ~ p(y|z2), z1 ~ p(z1|y, z2), x ~ p(x|y, z1)."""
        if int(n) < 1:
            raise ValueError(f"`n` must be >= 1, got {n}")
        seed = tf.constant([int(seed), 0], tf.int32)
        z2 = tf.random.stateless_normal([int(n), self.top_latent_dim], seed=seed)
        y = D.categorical(self.p_y_logits(z2)).sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        y1 = tf.one_hot(y, self.num_clusters, dtype=tf.float32)
        z1 = self.p_z1(z2, y1).sample(seed=tf.random.experimental.stateless_fold_in(seed, 2))
        return tf.sigmoid(self.decoder(z1, y1)).numpy(), y.numpy()

    def z2_mean(self, x):
        """E_q[z2|x] = sum_y q(y|z1,x) E[z2|x,y,z1] at z1 = E[z1|x], [B, D2]."""
        x = tf.constant(self.check_images(x))
        z1 = self.q_z1(x).mean()
        q = tf.nn.softmax(self.q_y_logits(x, z1))
        return tf.einsum("bk,bkd->bd", q, self.q_z2(x, z1).mean()).numpy()

    def decode_z2(self, z2):
        """The mean image of each z2 [N, D2]: y = argmax p(y|z2), z1 = E[z1|y, z2]."""
        z2 = tf.constant(z2, tf.float32)
        y1 = tf.one_hot(tf.argmax(self.p_y_logits(z2), -1), self.num_clusters, dtype=tf.float32)
        return tf.sigmoid(self.decoder(self.p_z1(z2, y1).mean(), y1)).numpy()

    def log_importance_weights(self, x, num_samples, seed):
        """z1 ~ q(z1|x), z2_y ~ q(z2|x,y,z1) for every y:
        w = log sum_y p(x,y,z1,z2_y) / q(z2_y|x,y,z1) - log q(z1|x)."""
        qz1 = self.q_z1(x)
        z1 = qz1.sample(num_samples, seed=seed)  # [S, B, D1]
        S, B = tf.shape(z1)[0], tf.shape(z1)[1]
        xs = tf.reshape(tf.broadcast_to(x, [S, B, self.data_dim]), [-1, self.data_dim])
        z1f = tf.reshape(z1, [-1, self.latent_dim])
        qz2 = self.q_z2(xs, z1f)  # [S*B, K]
        z2 = qz2.sample(seed=tf.random.experimental.stateless_fold_in(seed, 1))
        y_all = self._all_y(tf.shape(xs)[:1])
        rec, nlp_z1, nlp_y, _ = self._per_y_terms(xs, z1f, qz2, z2, y_all)
        log_pz2 = D.standard_normal(self.top_latent_dim, tf.float32).log_prob(z2)
        log_w_y = -rec - nlp_z1 - nlp_y + log_pz2 - qz2.log_prob(z2)  # [S*B, K]
        log_w = tf.reduce_logsumexp(log_w_y, -1) - tf.reshape(qz1.log_prob(z1), [-1])
        return tf.transpose(tf.reshape(log_w, [S, B]))

    reference_code = ("Maaloe et al.'s code for their earlier semi-supervised model, the nearest public code "
                      "to CaGeM's (`larsmaaloee/auxiliary-deep-generative-models` `models/sdgmssl.py`, "
                      "`run_mnist.py`)")

    @classmethod
    def reference_departures(cls, hyperparameters):
        """Where CaGeM's training with these hyperparameters departs from the
        training code of its first author's earlier model (no CaGeM code is
        public; BENCHMARKS.md section 10), one sentence each.

        Example:
        >>> CaGeM.reference_departures({"labelled": True, "labelled_fraction": 1.0,
        ...                             "classification_weight": 1.0})[0]  # doctest: +ELLIPSIS
        'the labelled batch mean ELBO has weight 1 beside the unlabelled one...'
        """
        hp, out = dict(hyperparameters), []
        if hp.get("labelled"):
            out.append(f"the labelled batch mean ELBO has weight {float(hp.get('labelled_fraction', 1.0)):g} beside "
                       f"the unlabelled one and the mean labelled cross-entropy "
                       f"{float(hp.get('classification_weight', 1.0)):g}; theirs 1 and 0.1 N / N_l "
                       "(60 for 100 labels of 60,000; `tfmix train --weighting maaloe`)")
        out.append("no N(0, 1) prior on the weights, no gradient clipping (theirs: global norm 5, then each "
                   "entry to [-1, 1]) and no learning-rate annealing (theirs: x 0.75 every 200 epochs, down "
                   "to 3e-5)")
        return out + cls.epsilon_departure(hp, 1e-8, framework="Lasagne")  # `lasagne.updates.adam` on a mean

    def get_config(self):
        config = super().get_config()
        config.update(top_latent_dim=self.top_latent_dim)
        return config
