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

A sampled-y estimator (`y_estimator`, training only; not the papers'
estimator, so no preset uses it): one y per example instead of all K, so
that q(z|x,y), the decoder and the KL run once instead of K times:

    -ELBO(x) ~ -log p(x|z, y~) + KL(q(z|x,y~) || p(z|y~)) + KL(q(y|x) || p(y)),
    y~ ~ RelaxedOneHotCategorical(`y_temperature`, q(y|x)),  z ~ q(z|x,y~)

"relaxed" feeds the relaxed y~ to the networks (Gumbel-softmax: biased,
lower-variance gradients); "straight_through" feeds its one-hot argmax,
an exact sample of q(y|x) (the Gumbel-max trick), with the relaxed
sample's gradient, so its value is an unbiased one-sample estimate of the
exact -ELBO above.

"soft" is the reconstruction of Pineau & Lelarge's InfoCatVAE code
(`edouardpineau/infoCatVAE` `infoCatVAE.py` `encode` / `forward`, `utils.py`
`loss_function`): the probabilities a = q(y|x) go into q(z|x, .) in place of
a one-hot y, one z ~ q(z|x, a) is decoded (in CatVAE, whose q(z|x,c) is
linear in c, its mean is sum_c a_c E[z|x,c]), and the KL terms stay exact:

    loss(x) = -log p(x|z, a) + sum_y a_y KL(q(z|x,y) || p(z|y)) + KL(q(y|x) || p(y)),
    z ~ q(z|x, a)

It is not an estimate of the -ELBO (z is not drawn from any q(z|x,y)), so
the `neg_elbo` it logs in training is this surrogate. Evaluation
(`evaluate`, validation, the test metrics) always sums over y exactly.

When each wins (BENCHMARKS.md section 11, the GMVAE on MNIST): an epoch
with a sampled y costs 3.7x less, and per CPU-hour it reaches a lower
validation -ELBO than the exact sum (95.5 after 30 sampled epochs against
99.3 after the 8 exact ones of the same cost), but its clusters do not
form (42% test accuracy against 54-70%): sample y to fit the likelihood
cheaply, sum over y to cluster.
"""

import tensorflow as tf
from keras import ops

from tfmix import distributions as D
from tfmix.models.base import MixtureVAE
from tfmix.networks import ConditionalMLP, GaussianHead, MLP, head


#: How the unlabelled ELBO treats y in training (see the module docstring).
Y_ESTIMATORS = ("exact", "relaxed", "straight_through", "soft")
#: How training estimates KL(q(z|x,y) || p(z|y)) (see `MarginalMixtureVAE`).
KL_ESTIMATORS = ("analytic", "sample")


class MarginalMixtureVAE(MixtureVAE):
    """Shared inference network and objective of M2 / modified M2 / GMVAE.

    Args:
        y_estimator: "exact" (the default: the sum over all K values of y),
            a sampled y in training, "relaxed" or "straight_through", or
            the InfoCatVAE authors' soft assignment, "soft" (module
            docstring).
        y_temperature: the temperature of the relaxed y sample.
        kl_estimator: how training estimates KL(q(z|x,y) || p(z|y)):
            "analytic" (the default: TFP's closed form) or "sample", the
            one-sample log q(z_y|x,y) - log p(z_y|y) at the z_y that is
            decoded, as Rui Shu's code does (`RuiShu/vae-clustering`
            `shared_subgraphs.py` `labeled_loss`). Both are unbiased for the
            same -ELBO; evaluation always uses the closed form.
        softplus_on: what the softplus of q(z|x,y)'s raw output (and, in the
            GMVAE, of p(z|y)'s) is: "scale" (the default) or "variance" (Shu's
            code; `tfmix.distributions.positive_scale`).
        **kwargs: `MixtureVAE`'s arguments.

    Rui Shu's form, which the GMVAE campaign measures (BENCHMARKS.md
    section 10):

    >>> model = GMVAE(num_clusters=10, kl_estimator="sample", softplus_on="variance")  # doctest: +SKIP
    """

    labelled_term_names = ("neg_elbo", "reconstruction", "kl_z", "classification")
    supports_labels = True

    def __init__(self, y_estimator="exact", y_temperature=1.0, kl_estimator="analytic", softplus_on="scale",
                 **kwargs):
        if y_estimator not in Y_ESTIMATORS:
            raise ValueError(f"`y_estimator` must be one of {Y_ESTIMATORS}, got {y_estimator!r}")
        if not float(y_temperature) > 0:
            raise ValueError(f"`y_temperature` must be > 0, got {y_temperature}")
        if kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"`kl_estimator` must be one of {KL_ESTIMATORS}, got {kl_estimator!r}")
        self.y_estimator, self.y_temperature = y_estimator, float(y_temperature)
        self.kl_estimator, self.softplus_on = kl_estimator, D.check_softplus_on(softplus_on)
        super().__init__(**kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(y_estimator=self.y_estimator, y_temperature=self.y_temperature,
                      kl_estimator=self.kl_estimator, softplus_on=self.softplus_on)
        return config

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
        self.qz_head = GaussianHead(self.latent_dim, softplus_on=self.softplus_on, name="qz_head")
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
    def _kl_z(self, qz, prior, z, training):
        """KL(q(z|x,y) || p(z|y)), or in training with `kl_estimator="sample"`
        its one-sample estimate at the decoded `z`."""
        if training and self.kl_estimator == "sample":
            return qz.log_prob(z) - prior.log_prob(z)
        return D.tfd.kl_divergence(qz, prior)

    def unlabelled_terms(self, x, training=False):
        if training and self.y_estimator == "soft":
            return self._soft_y_terms(x)
        if training and self.y_estimator != "exact":
            return self._sampled_y_terms(x)
        qy = D.categorical(self.cluster_logits(x))
        qz = self.q_z(x)  # batch [B, K]
        z = qz.sample(seed=self._noise_seed())  # [B, K, D]
        logits = self.decode_logits(z, self._all_y(tf.shape(x)[:1]))
        rec = -D.bernoulli_likelihood(logits).log_prob(x[:, None, :])  # [B, K]
        kl_z = self._kl_z(qz, self.prior_z(), z, training)  # [B, K]
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

    def _sampled_y_terms(self, x):
        """The unlabelled terms with one y per example (`y_estimator`)."""
        logits = self.cluster_logits(x)
        qy = D.categorical(logits)
        seed = self._noise_seed()
        y = D.tfd.RelaxedOneHotCategorical(self.y_temperature, logits=logits).sample(
            seed=tf.random.experimental.stateless_fold_in(seed, 1))
        if self.y_estimator == "straight_through":
            hard = tf.one_hot(tf.argmax(y, -1), self.num_clusters, dtype=y.dtype)
            y = hard + y - tf.stop_gradient(y)  # the value one-hot, the gradient the relaxed sample's
        qz = self.q_z(x, y)  # batch [B]
        z = qz.sample(seed=seed)
        rec = -D.bernoulli_likelihood(self.decode_logits(z, y)).log_prob(x)
        kl_z = self._kl_z(qz, self.prior_z(y), z, training=True)
        kl_y = D.tfd.kl_divergence(qy, D.uniform_categorical(self.num_clusters))
        return {"neg_elbo": rec + kl_z + kl_y, "reconstruction": rec, "kl_z": kl_z, "kl_y": kl_y}

    def _soft_y_terms(self, x):
        """The unlabelled terms with the soft assignment (`y_estimator="soft"`):
        one decoder pass on z ~ q(z|x, q(y|x)), the KL terms exact."""
        qy = D.categorical(self.cluster_logits(x))
        probs = qy.probs_parameter()
        kl_z = tf.reduce_sum(probs * D.tfd.kl_divergence(self.q_z(x), self.prior_z()), -1)
        kl_y = D.tfd.kl_divergence(qy, D.uniform_categorical(self.num_clusters))
        z = self.q_z(x, probs).sample(seed=self._noise_seed())
        rec = -D.bernoulli_likelihood(self.decode_logits(z, probs)).log_prob(x)
        return {"neg_elbo": rec + kl_z + kl_y, "reconstruction": rec, "kl_z": kl_z, "kl_y": kl_y}

    def labelled_terms(self, x, y, training=False):
        y1 = tf.one_hot(y, self.num_clusters, dtype=tf.float32)
        qz = self.q_z(x, y1)
        z = qz.sample(seed=self._noise_seed())
        rec = -D.bernoulli_likelihood(self.decode_logits(z, y1)).log_prob(x)
        kl_z = self._kl_z(qz, self.prior_z(y1), z, training)
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
