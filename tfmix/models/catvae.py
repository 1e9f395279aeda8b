"""CatVAE and InfoCatVAE of Pineau & Lelarge (2018), "InfoCatVAE:
representation learning with categorical variational autoencoders"
(arXiv 1806.08240).

Fixed prior: p(c) = Cat(1/K); p(z|c) = N(mu_c, I) in d = K * delta
dimensions, mu_c = lambda on the delta coordinates of block c and 0
elsewhere (the K means are orthogonal and equidistant). Encoder: one shared
hidden layer h(x), q(c|x) = softmax(W h) and q(z|x, c) for every c.
Decoder p(x|z).

CatVAE objective (the ELBO; the sum over c is exact, see
`MarginalMixtureVAE`): reconstruction, the KL of q(z|x,c) to every p(z|c)
weighted by q(c|x) (all K distances in the gradient), and
KL(q(c|x) || p(c)) = log K - H(q(c|x)), the entropy term.

InfoCatVAE adds the information-maximisation term (InfoGAN's bound, with no
extra network): generated images x~ = E[x|z] are re-encoded and
`info_weight` x the mean cross-entropy of q(.|x~) against the category they
were generated from is added to the loss. Two samplers (`info_sampling`):

- "stratified" (the default, as the authors' code `edouardpineau/infoCatVAE`
  `train_test_functions.py` / `utils.py` `sampling` does it): every
  category c, `info_samples // K` times, z ~ N(mu_c, I) exactly, and the
  hard cross-entropy -log q(c|x~);
- "relaxed": c~ ~ RelaxedOneHotCategorical(`temperature`, uniform) (the
  Gumbel-softmax relaxation the authors' model file defines but does not
  train with), z ~ N(c~ mu, I): z lies at a blend of the prior means, and
  the target -sum_k c~_k log q(k|x~) is soft.

The weight: the authors' loss sums the reconstruction, entropy and KL terms
over a batch of 128 images and adds 100 x the *mean* cross-entropy, so per
image (our losses are batch means) their information weight is
100 / 128 = 0.78125, the default here; `info_weight=100` puts 128 times more
weight on it than their code does.

Dropout (`dropout`, default 0): the authors' `infoCatVAE.py` drops 25% of
the hidden units of the encoder's and the decoder's hidden layer, before
the ReLU (the same as after it). Here `dropout=0.25` does so in training
(the ELBO terms and the information term), with stateless noise from the
step's seed, so a resumed run draws the masks the uninterrupted one would.
Their code calls `F.dropout` without `training=self.training`, which
keeps the dropout on at test time too; evaluation here is deterministic.

Where the authors' code (`edouardpineau/infoCatVAE` `main.py`, `utils.py`,
`infoCatVAE.py`, `train_test_functions.py`) differs from the defaults here:

- reconstruction: their encoder feeds the probabilities a = q(c|x) to the
  q(z|x, .) layers in place of a one-hot c and decodes one z ~ q(z|x, a),
  the KL terms summed exactly over c; here the default is the ELBO's exact
  expectation over c (K decoder passes), and `y_estimator="soft"` is
  theirs (one decoder pass; `MarginalMixtureVAE`);
- the KL and entropy terms have weight `kl_weight` = 1 (one of their
  commits uses 10, the others 1); `infocatvae_mnist` uses 10, which
  separates the MNIST categories best, `infocatvae_fashion_mnist` 1
  (BENCHMARKS.md section 10);
- no dropout by default (`dropout=0.25` is theirs);
- the presets train on dynamically binarised MNIST (theirs: grey levels
  with the same Bernoulli cross-entropy; `tfmix train ... --binarize none`);
- their information term applies `F.cross_entropy` to the probabilities a
  (a softmax of a softmax, at least log(1 + (K-1)/e) = 1.46 nats for
  K = 10); here the default is -log q(c|x~), InfoGAN's bound that
  the paper adapts, and `info_input="probabilities"` is theirs;
- their dropout stays on at test time (`F.dropout` without
  `training=self.training`); evaluation here is deterministic.

BENCHMARKS.md section 10 has the ones measured so far, each against the
`infocatvae_mnist` recipe. `CatVAE.reference_departures` lists them for a
given set of hyperparameters (each published card prints the list).
"""

import keras
import numpy as np
import tensorflow as tf

from tfmix import distributions as D
from tfmix.models.marginal import MarginalMixtureVAE
from tfmix.networks import ConditionalMLP, Decoder, GaussianHead, MLP, head


@keras.saving.register_keras_serializable(package="tfmix")
class CatVAE(MarginalMixtureVAE):
    """Categorical VAE with a fixed orthogonal multimodal prior.

    Args:
        num_clusters: K.
        delta: dimensions per category block (latent_dim = K * delta).
        prior_scale: lambda, the prior means' value on their block.
        hidden_units: the shared encoder layer(s) and the decoder's.
        kl_weight: beta, multiplying both KL terms in the minimised loss
            (1: the ELBO of the paper; the authors' public code uses 10).
            The logged `neg_elbo` is always the unweighted ELBO.
        dropout: the share of the encoder's and the decoder's last hidden
            units dropped in training (0: none; the authors' code: 0.25).

    Defaults (K = 10, delta = 2, lambda = 2, 400 hidden units) follow the
    authors' public code; check them against the paper before benchmarking.

    Example:
    >>> model = CatVAE(num_clusters=10, delta=2, prior_scale=2.0)
    """

    def __init__(self, num_clusters=10, delta=2, prior_scale=2.0, hidden_units=(400,),
                 latent_dim=None, kl_weight=1.0, dropout=0.0, **kwargs):
        if int(delta) < 1:
            raise ValueError(f"`delta` must be >= 1, got {delta}")
        if float(prior_scale) <= 0:
            raise ValueError(f"`prior_scale` (lambda) must be > 0, got {prior_scale}")
        if float(kl_weight) <= 0:
            raise ValueError(f"`kl_weight` must be > 0, got {kl_weight}")
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        self.dropout, self._dropout_key = float(dropout), None
        d = int(num_clusters) * int(delta)
        if latent_dim is not None and int(latent_dim) != d:
            raise ValueError(f"`latent_dim` must be num_clusters * delta = {d}, got {latent_dim}")
        self.delta, self.prior_scale, self.kl_weight = int(delta), float(prior_scale), float(kl_weight)
        super().__init__(num_clusters=num_clusters, latent_dim=d, hidden_units=hidden_units, **kwargs)

    def prior_means(self):
        """mu_c: lambda on the delta coordinates of block c, [K, K * delta]."""
        return np.kron(np.eye(self.num_clusters), np.ones((1, self.delta))).astype(np.float32) * self.prior_scale

    # -- one shared encoder instead of separate q(y|x) and q(z|x,y) networks --------
    def build_networks(self):
        K, H = self.num_clusters, self.hidden_units[-1]
        self.shared = MLP(self.hidden_units, name="shared")
        self.qy_logits = head(K, name="qy_logits")
        self.qz_net = ConditionalMLP((H,), K, activation="linear", name="qz_net")
        self.qz_head = GaussianHead(self.latent_dim, softplus_on=self.softplus_on, name="qz_head")
        self.shared.build((None, self.data_dim))
        self.qy_logits.build((None, H))
        self.qz_net.build((None, H))
        self.qz_head.build((None, H))
        self.decoder = Decoder(self.hidden_units[::-1], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.decoder.build((None, self.latent_dim))

    def build_generative(self):  # the decoder is built with the encoder
        pass

    #: where dropout acts: the encoder's hidden layer h(x), the decoder's
    DROPOUT_SITES = {"encoder": 0, "decoder": 1}

    def _drop(self, h, site):
        """Dropout of hidden units `h` while a training objective is traced.
        One mask per site and pass: q(c|x) and q(z|x,c) see the same h(x),
        as in the authors' encoder, which computes h(x) once."""
        if self._dropout_key is None or not self.dropout:
            return h
        seed = tf.random.experimental.stateless_fold_in(self._dropout_key, self.DROPOUT_SITES[site])
        return tf.nn.experimental.stateless_dropout(h, self.dropout, seed=seed)

    def _training_pass(self, terms_fn, x, training):
        """`terms_fn(x, training)`, with dropout on (a fresh key) when `training`."""
        self._dropout_key = self._noise_seed() if training and self.dropout else None
        try:
            return terms_fn(x, training)
        finally:
            self._dropout_key = None

    def cluster_logits(self, x):
        return self.qy_logits(self._drop(self.shared(x), "encoder"))

    def q_z(self, x, y=None):
        loc, scale = self.qz_head(self.qz_net(self._drop(self.shared(x), "encoder"), y))
        return D.diag_gaussian(loc, scale)

    def prior_z(self, y=None):
        mu = tf.constant(self.prior_means())
        if y is not None:
            mu = tf.matmul(y, mu)
        return D.diag_gaussian(mu, tf.ones_like(mu))

    def decode_logits(self, z, y):
        return self.decoder.to_logits(self._drop(self.decoder.mlp(z), "decoder"))

    def decode(self, z):
        """Bernoulli means of p(x|z) for latents `z` [N, K * delta], image
        shaped (for traversals and interpolations in the latent space)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape [N, {self.latent_dim}], got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError("`z` contains NaN or Inf")
        x = tf.sigmoid(self.decoder(tf.constant(z))).numpy()
        return x.reshape((-1,) + self.image_shape)

    def traversal(self, steps=10, max_scale=3.0):
        """Latents moving away from the origin along each category's block:
        row c holds t * mu_c for t in [0, max_scale] (t = 1 is the prior
        mean mu_c, lambda on block c). Returns [K * steps, K * delta]."""
        t = np.linspace(0.0, float(max_scale), int(steps), dtype=np.float32)
        mu = self.prior_means()
        return (mu[:, None, :] * t[None, :, None]).reshape(-1, self.latent_dim)

    def centroid_path(self, steps=10):
        """Latents on the segment from mu_c to mu_{c+1 mod K}, one row per c.
        Returns [K * steps, K * delta]."""
        a = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[None, :, None]
        mu = self.prior_means()
        nxt = np.roll(mu, -1, axis=0)
        return ((1 - a) * mu[:, None, :] + a * nxt[:, None, :]).reshape(-1, self.latent_dim)

    def unlabelled_terms(self, x, training=False):
        terms = self._training_pass(super().unlabelled_terms, x, training)
        if self.kl_weight != 1.0:
            terms["loss"] = terms["reconstruction"] + self.kl_weight * (terms["kl_z"] + terms["kl_y"])
        return terms

    reference_code = ("the authors' code (`edouardpineau/infoCatVAE` `main.py`, `utils.py`, `infoCatVAE.py`, "
                      "`train_test_functions.py`)")

    @classmethod
    def reference_departures(cls, hyperparameters):
        """Where a model with these hyperparameters departs from the authors'
        code (`edouardpineau/infoCatVAE`), one sentence each (module docstring).

        Example:
        >>> CatVAE.reference_departures({"kl_weight": 10.0, "dropout": 0.25, "binarize": "none",
        ...                               "y_estimator": "soft", "adam_epsilon": 7.8e-11})  # doctest: +ELLIPSIS
        ['evaluation is deterministic...']
        """
        hp, out = dict(hyperparameters), []
        if hp.get("y_estimator", "exact") != "soft":
            out.append("reconstruction: the exact expectation over c (K decoder passes); the authors' code feeds "
                       "q(c|x) to q(z|x, .) in place of a one-hot c and decodes one z (`y_estimator=\"soft\"`)")
        if float(hp.get("kl_weight", 1.0)) not in (1.0, 10.0):
            out.append(f"weight {float(hp['kl_weight']):g} on the KL and entropy terms; theirs is 10 in one commit "
                       "and 1 in the others")
        if float(hp.get("dropout", 0.0)) != 0.25:
            out.append(f"dropout {float(hp.get('dropout', 0.0)):g}; theirs drops 25% of the encoder's and the "
                       "decoder's hidden units (`dropout=0.25`)")
        out.append("evaluation is deterministic; their dropout stays on at test time (`F.dropout` without "
                   "`training=self.training`)")
        if hp.get("binarize", "dynamic") != "none":
            out.append("trained on dynamically binarised images; theirs on grey levels with the same Bernoulli "
                       "cross-entropy (`--binarize none`)")
        out += cls.epsilon_departure(hp, 1e-8, 128, framework="PyTorch")  # `optim.Adam`, a summed loss
        return out + cls.setting_departures(hp, {"num_clusters": 10, "delta": 2, "prior_scale": 2.0,
                                                 "hidden_units": [400], "learning_rate": 1e-3, "batch_size": 128})

    def get_config(self):
        config = super().get_config()
        config.pop("latent_dim")
        config.update(delta=self.delta, prior_scale=self.prior_scale, kl_weight=self.kl_weight, dropout=self.dropout)
        return config


@keras.saving.register_keras_serializable(package="tfmix")
class InfoCatVAE(CatVAE):
    """CatVAE plus the information-maximisation term.

    Args:
        info_weight: weight of the information term beside the per-image
            ELBO (default 100 / 128: the authors' 100 on a loss summed over
            batches of 128 images; see the module docstring).
        info_sampling: "stratified" (default; every category c equally
            often, z ~ N(mu_c, I), hard cross-entropy against c: the
            authors' code) or "relaxed" (Gumbel-softmax c~ at
            `temperature`, z ~ N(c~ mu, I), soft cross-entropy).
        temperature: the Gumbel-softmax temperature ("relaxed" only).
        info_samples: generated samples per training step (the authors':
            10 per category, 100 for K = 10); "stratified" uses
            `info_samples // K` per category and needs `info_samples >= K`.
        info_input: what the cross-entropy against the code reads:
            "logits" (default; -log q(c|x~), the mutual-information bound
            of InfoGAN) or "probabilities" (the authors' code: PyTorch's
            `F.cross_entropy` applied to q(c|x~) itself, a softmax of the
            probabilities).

    Example:
    >>> model = InfoCatVAE(num_clusters=10, info_sampling="stratified")
    """

    unlabelled_term_names = MarginalMixtureVAE.unlabelled_term_names + ("info",)
    INFO_SAMPLING = ("stratified", "relaxed")
    INFO_INPUT = ("logits", "probabilities")

    def __init__(self, info_weight=100 / 128, temperature=0.5, info_samples=100,
                 info_sampling="stratified", info_input="logits", **kwargs):
        if float(info_weight) < 0 or float(temperature) <= 0 or int(info_samples) < 1:
            raise ValueError(
                "`info_weight` must be >= 0, `temperature` > 0 and `info_samples` >= 1; got "
                f"{info_weight}, {temperature}, {info_samples}"
            )
        if info_sampling not in self.INFO_SAMPLING:
            raise ValueError(f"`info_sampling` must be one of {self.INFO_SAMPLING}, got {info_sampling!r}")
        if info_input not in self.INFO_INPUT:
            raise ValueError(f"`info_input` must be one of {self.INFO_INPUT}, got {info_input!r}")
        self.info_input = info_input
        self.info_weight, self.temperature, self.info_samples = float(info_weight), float(temperature), int(info_samples)
        self.info_sampling = info_sampling
        super().__init__(**kwargs)
        if info_sampling == "stratified" and self.info_samples < self.num_clusters:
            raise ValueError(
                f"`info_samples` must be at least num_clusters ({self.num_clusters}) with "
                f"info_sampling='stratified' (one sample of each category or more), got {info_samples}")

    def info_codes(self, seed):
        """The categories of one step's generated samples, [M, K]: one-hot
        (stratified) or relaxed one-hot samples."""
        K = self.num_clusters
        if self.info_sampling == "stratified":
            return tf.one_hot(tf.tile(tf.range(K), [self.info_samples // K]), K)
        uniform = tf.zeros([self.info_samples, K], tf.float32)
        return D.tfd.RelaxedOneHotCategorical(self.temperature, logits=uniform).sample(seed=seed)

    def info_term(self, seed):
        """E[-sum_k c_k log q(k | x~)] over generated x~, with z ~ N(c mu, I)
        and x~ = E[x|z] (a [M] tensor; c one-hot or relaxed, `info_codes`).
        With `info_input="probabilities"` (the authors' code) q(.|x~) is
        replaced by softmax(q(.|x~))."""
        c = self.info_codes(seed)
        z = tf.matmul(c, tf.constant(self.prior_means())) + tf.random.stateless_normal(
            [tf.shape(c)[0], self.latent_dim], seed=tf.random.experimental.stateless_fold_in(seed, 1))
        x_gen = tf.sigmoid(self.decode_logits(z, c))
        scores = self.cluster_logits(x_gen)
        if self.info_input == "probabilities":
            scores = tf.nn.softmax(scores)
        return -tf.reduce_sum(c * tf.nn.log_softmax(scores), -1)

    def unlabelled_terms(self, x, training=False):
        terms = super().unlabelled_terms(x, training)
        seed = tf.random.experimental.stateless_fold_in(self._noise_seed(), 7)
        info = tf.reduce_mean(self._training_pass(lambda _, training: self.info_term(seed), None, training))
        terms["info"] = tf.fill(tf.shape(terms["neg_elbo"]), info)
        terms["loss"] = terms.get("loss", terms["neg_elbo"]) + self.info_weight * info
        return terms

    @classmethod
    def reference_departures(cls, hyperparameters):
        """CatVAE's departures, and the information term's (module docstring)."""
        hp, out = dict(hyperparameters), super().reference_departures(hyperparameters)
        if hp.get("info_sampling", "stratified") == "relaxed":
            out.append(f"information term on Gumbel-softmax codes (temperature {float(hp.get('temperature', 0.5)):g}) "
                       "with a soft cross-entropy (`info_sampling=\"relaxed\"`); theirs draws z ~ N(mu_c, I) for "
                       "every category c and uses the hard cross-entropy")
        weight = float(hp.get("info_weight", 100 / 128))
        if abs(weight - 100 / 128) > 1e-9:
            out.append(f"information weight {weight:g} per image; theirs is 100 on the mean cross-entropy beside "
                       "a loss summed over batches of 128 images, 100 / 128 = 0.78 per image")
        if int(hp.get("info_samples", 100)) != 100:
            out.append(f"{int(hp['info_samples'])} generated samples per step; theirs 10 per category, 100")
        if hp.get("info_input", "logits") != "probabilities":
            out.append("the information term is -log q(c|x~); theirs applies `F.cross_entropy` to the probabilities "
                       "q(c|x~) (a softmax of a softmax, at least 1.46 nats for K = 10)")
        return out

    def get_config(self):
        config = super().get_config()
        config.update(info_weight=self.info_weight, temperature=self.temperature, info_samples=self.info_samples,
                      info_sampling=self.info_sampling, info_input=self.info_input)
        return config
