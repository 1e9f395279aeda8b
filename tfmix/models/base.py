"""`MixtureVAE`: the base class every tfmix model derives from.

A subclass supplies its networks (`build_networks`) and its ELBO
(`unlabelled_terms`, and `labelled_terms` if it can use labels); this class
supplies the rest, identically for every model:

- a custom `train_step`/`test_step` that logs every ELBO term as a Keras
  metric (so `fit` shows them in the progress bar) and divides the loss by
  the number of replicas under `tf.distribute`;
- the public API: `cluster_probs`, `encode`, `reconstruct`, `generate`,
  `log_likelihood` (importance weighted, chunked) and `classify`, each taking
  NumPy or tensor images in [0, 1] and validating them;
- `get_config`, an explicit `build`, and thus `.keras` round trips.

Data given to `fit`/`evaluate` may be:

- images `x` alone (unlabelled);
- a tuple `(x, y)`: labelled if the model was built with `labelled=True`,
  otherwise `y` is ignored (so `evaluate(x_test, y_test)` works for all);
- a dict with keys `x` (unlabelled) and/or `x_labelled`, `y_labelled`, as
  `tfmix.data.semi_supervised` streams them.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfmix.networks import check_logits_dtype


def _check_seed(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= int(seed) < 2**31:
        raise ValueError(f"`seed` must be in [0, 2**31), got {seed}")
    return int(seed)


def _across_workers(strategy=None):
    """Whether the (current) strategy spans several workers (MultiWorkerMirrored)."""
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker()) if in_multi_worker else True


class MixtureVAE(keras.Model):
    """Base class of the tfmix mixture VAEs.

    Args:
        input_shape: shape of one image, e.g. `(28, 28, 1)`.
        num_clusters: K, the number of values of the cluster variable y.
        latent_dim: dimension of the continuous latent z.
        hidden_units: widths of the hidden layers of every MLP.
        labelled: whether the model is trained with labels (enables the
            labelled ELBO, the classification term and `classify`).
        classification_weight: weight of the classification term
            -log q(y|x) on labelled data (Kingma et al.'s alpha, applied to
            the mean over the labelled batch).
        labelled_fraction: the weight of the labelled batch's mean ELBO
            beside the unlabelled batch's mean ELBO. Kingma et al.'s
            J^alpha counts every example's ELBO once per epoch: with the
            labelled subset streamed beside the whole training split, that
            is N_labelled / N, which `tfmix train --labels N` sets (with
            `classification_weight=0.1`: alpha = 0.1 N with the objective
            divided by N). 1 (the default) weighs the two batch means
            equally, so that with 100 labels each labelled image counts
            about 600 times as much per epoch as an unlabelled one.
        decoder_logits_dtype: the compute dtype of the decoder's output
            layer, "float32" (the default) or "compute" (the dtype policy's:
            bfloat16 under `mixed_bfloat16`, the logits then cast to
            float32; `tfmix.networks.Decoder`). `tfmix train --dtype-policy
            mixed_bfloat16_logits` sets "compute".
        seed: seed of the sampling noise used in training.
    """

    #: Names of the per-example terms `unlabelled_terms` returns.
    unlabelled_term_names = ("neg_elbo", "reconstruction", "kl_z", "kl_y")
    #: Names of the per-example terms `labelled_terms` returns.
    labelled_term_names = ()
    #: Whether the model can be trained with labels at all.
    supports_labels = False
    #: generate(..., sigma=s) scales the N(0, I) prior (GaussVAE, NVAE).
    supports_sigma = False
    #: The fastest training configuration measured for this model on the
    #: CPU (BENCHMARKS.md section 5), used by `tfmix train` unless told
    #: otherwise: XLA (single-device runs only) and steps per execution.
    #: Neither changes the updates, only how fast they run.
    default_jit_compile = False
    default_steps_per_execution = 1

    #: The public code `reference_departures` compares with (Markdown).
    reference_code = None

    @staticmethod
    def setting_departures(hyperparameters, reference, whose="theirs"):
        """One sentence per setting of `reference` ({name: the reference
        code's value}) that `hyperparameters` sets differently (for
        `reference_departures`).

        Example:
        >>> MixtureVAE.setting_departures({"batch_size": 50, "latent_dim": 64},
        ...                               {"batch_size": 100, "latent_dim": 64}, "his")
        ['`batch_size` 50; his 100']
        """
        return [f"`{key}` {hyperparameters[key]}; {whose} {value}" for key, value in reference.items()
                if key in hyperparameters and np.ravel(hyperparameters[key]).tolist() != np.ravel(value).tolist()]

    @staticmethod
    def epsilon_departure(hyperparameters, epsilon, batch_size=None, whose="theirs", framework="TF1"):
        """The sentence (in a list, empty if none) for a run whose Adam
        epsilon on the batch mean of the loss (`adam_epsilon`, Keras's 1e-7
        if unset) differs from the reference code's `epsilon`. Reference
        code that minimises the *sum* of its batch's losses (`batch_size`
        given; None: the batch mean too) trains as `epsilon / batch_size`
        does here: Adam is scale-free but for epsilon.

        Example:
        >>> MixtureVAE.epsilon_departure({}, 1e-8, 100, "his")  # doctest: +ELLIPSIS
        ["Adam's epsilon is 1e-07 on the batch mean of the loss; his is TF1's 1e-08 on ... (`--adam-epsilon 1e-10`)"]
        """
        ours = float(hyperparameters.get("adam_epsilon", 1e-7))
        mean = epsilon / (batch_size or 1)
        if abs(ours - mean) <= 0.01 * mean:
            return []
        where = (f"the sum over batches of {batch_size}, {mean:.2g} on the mean" if batch_size
                 else "the batch mean too")
        return [f"Adam's epsilon is {ours:g} on the batch mean of the loss; {whose} is {framework}'s {epsilon:g} on "
                f"{where} (`--adam-epsilon {mean:.2g}`)"]

    @classmethod
    def reference_departures(cls, hyperparameters):
        """Where a model with these hyperparameters (a preset card's, or
        `get_config()` plus the training settings) departs from its
        reference code, one sentence each; `None` where no reference list
        is kept. Published cards print the list (`tfmix.publish`)."""
        return None

    def __init__(
        self,
        input_shape=(28, 28, 1),
        num_clusters=10,
        latent_dim=64,
        hidden_units=(512, 512),
        labelled=False,
        classification_weight=1.0,
        labelled_fraction=1.0,
        decoder_logits_dtype="float32",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        input_shape = tuple(int(d) for d in input_shape)
        if not input_shape or any(d <= 0 for d in input_shape):
            raise ValueError(
                f"`input_shape` must be a tuple of positive ints, got {input_shape}"
            )
        if int(num_clusters) < 1:
            raise ValueError(f"`num_clusters` must be >= 1, got {num_clusters}")
        if int(latent_dim) < 1:
            raise ValueError(f"`latent_dim` must be >= 1, got {latent_dim}")
        if labelled and not self.supports_labels:
            raise ValueError(
                f"{type(self).__name__} cannot be trained with labels "
                "(`labelled=True`)"
            )
        if float(classification_weight) < 0:
            raise ValueError(
                "`classification_weight` must be >= 0, got "
                f"{classification_weight}"
            )
        if not 0 < float(labelled_fraction) <= 1:
            raise ValueError(f"`labelled_fraction` must be in (0, 1], got {labelled_fraction}")
        self.labelled_fraction = float(labelled_fraction)
        self.decoder_logits_dtype = check_logits_dtype(decoder_logits_dtype)
        self.image_shape = input_shape
        self.data_dim = int(np.prod(input_shape))
        self.num_clusters = int(num_clusters)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.labelled = bool(labelled)
        self.classification_weight = float(classification_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        names = ("loss",) + tuple(self.unlabelled_term_names)
        if self.labelled:
            names += tuple(f"labelled_{n}" for n in self.labelled_term_names)
            names += ("accuracy",)
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        # Build every sublayer now: a model whose weights all exist saves and
        # restores all of them (Keras silently skips unbuilt sublayers).
        self.build((None,) + self.image_shape)

    # ------------------------------------------------------------------
    # What a subclass implements.
    def build_networks(self):
        """Create and build every sublayer (called once by `build`)."""
        raise NotImplementedError

    def unlabelled_terms(self, x, training=False):
        """Per-example ELBO terms for flat images `x` [B, D_x].

        Returns a dict of [B] tensors with the keys `unlabelled_term_names`;
        `neg_elbo` is the negative ELBO. An optional `loss` key overrides
        what is minimised (e.g. a thresholded term); by default it is
        `neg_elbo`.
        """
        raise NotImplementedError

    def labelled_terms(self, x, y, training=False):
        """Per-example terms for labelled data; must include `neg_elbo` and
        `classification` (= -log q(y|x))."""
        raise NotImplementedError(f"{type(self).__name__} does not use labels")

    def cluster_logits(self, x):
        """Unnormalised log q(y|x) (or the model's cluster posterior) [B, K]."""
        raise NotImplementedError

    def encode_mean(self, x):
        """The representation used for kNN and plots, [B, latent]."""
        raise NotImplementedError

    def reconstruct_mean(self, x):
        """Mean of p(x | latent at its posterior mean), [B, D_x]."""
        raise NotImplementedError

    def generate_mean(self, clusters, seed):
        """Bernoulli means of samples from p(x | y = clusters); `seed` is a
        stateless [2] int32 seed. Returns [N, D_x]."""
        raise NotImplementedError

    def posterior_sample_batch(self, x, seed):
        """One sample of the latent that `encode_mean` summarises, z ~ q(z|x),
        [B, latent]; `seed` is a stateless [2] int32 seed. Optional."""
        raise NotImplementedError(f"{type(self).__name__} has no posterior sampling")

    def log_importance_weights(self, x, num_samples, seed):
        """[B, S] log-weights, each exp(.) an unbiased estimate of p(x);
        `seed` is a stateless [2] int32 seed."""
        raise NotImplementedError

    @classmethod
    def from_preset(cls, handle, compile=True):
        """A preset as a trainable Keras model (keras-hub style).

        `GMVAE.from_preset("gmvae_mnist")`; `handle` is anything
        `tfmix.load` accepts (a name, a directory, a file://, http(s):// or
        hf:// handle); the preset must hold a `cls` (any preset for
        `MixtureVAE.from_preset`).
        """
        from tfmix import presets

        model = presets.load(handle, compile=compile)
        if not isinstance(model, cls):
            raise ValueError(
                f"preset {handle!r} is a {type(model).__name__}, not a {cls.__name__}; "
                f"use {type(model).__name__}.from_preset or tfmix.load"
            )
        return model

    # ------------------------------------------------------------------
    # Keras plumbing.
    def build(self, input_shape=None):
        if self.built:
            return
        self.build_networks()
        self.built = True

    def call(self, x, training=False):
        """Returns the cluster probabilities q(y | x)."""
        return tf.nn.softmax(self.cluster_logits(self._flatten(x)), axis=-1)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def get_config(self):
        config = super().get_config()
        config.update(
            input_shape=list(self.image_shape),
            num_clusters=self.num_clusters,
            latent_dim=self.latent_dim,
            hidden_units=list(self.hidden_units),
            labelled=self.labelled,
            classification_weight=self.classification_weight,
            labelled_fraction=self.labelled_fraction,
            decoder_logits_dtype=self.decoder_logits_dtype,
            seed=self.seed,
        )
        return config

    def _flatten(self, x):
        x = tf.convert_to_tensor(x)
        return tf.reshape(tf.cast(x, tf.float32), [-1, self.data_dim])

    def _all_y(self, batch_shape):
        """One-hot codes of every y, broadcast to `batch_shape + [K, K]`
        (to run a network for all K values of y in one call)."""
        eye = tf.eye(self.num_clusters, dtype=tf.float32)
        return tf.broadcast_to(eye, tf.concat([batch_shape, tf.shape(eye)], 0))

    def _noise_seed(self):
        """A fresh stateless seed for each sampling op, distinct on each replica.

        In `train_step` the seeds are a function of (`seed`, the optimizer's
        step, the op's place in the step) only, so a run resumed from a
        checkpoint (which restores the step count but not a
        `SeedGenerator`'s state) draws the noise the uninterrupted run would
        have drawn; elsewhere they come from the model's `SeedGenerator`.
        """
        step_key = getattr(self, "_step_key", None)
        if step_key is not None:
            seed = tf.random.experimental.stateless_fold_in(step_key, self._step_draws)
            self._step_draws += 1  # at trace time: one distinct key per sampling op
        else:
            seed = tf.cast(self.seed_generator.next(), tf.int32)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(
                seed, ctx.replica_id_in_sync_group
            )
        return seed

    def _unpack(self, data):
        if isinstance(data, dict):
            unknown = set(data) - {"x", "x_labelled", "y_labelled"}
            if unknown:
                raise ValueError(f"unknown keys in the data dict: {sorted(unknown)}")
            x_l = data.get("x_labelled")
            if x_l is not None and not self.labelled:
                raise ValueError(
                    "labelled data given to a model built with labelled=False"
                )
            return data.get("x"), x_l, data.get("y_labelled")
        if isinstance(data, (tuple, list)):
            x, y = data[0], (data[1] if len(data) > 1 else None)
            if self.labelled and y is not None:
                return None, x, y
            return x, None, None
        return data, None, None

    def _objective(self, data, training):
        """The minimised loss and the per-example logs of one batch."""
        x_u, x_l, y_l = self._unpack(data)
        loss = tf.constant(0.0, tf.float32)
        logs = {}
        if x_u is not None:
            terms = self.unlabelled_terms(self._flatten(x_u), training=training)
            loss += tf.reduce_mean(terms.pop("loss", terms["neg_elbo"]))
            logs.update(terms)
        if x_l is not None:
            y = tf.cast(tf.reshape(y_l, [-1]), tf.int32)
            terms = self.labelled_terms(self._flatten(x_l), y, training=training)
            labelled_loss = tf.reduce_mean(terms.pop("loss", terms["neg_elbo"]))
            # beside unlabelled data: J^alpha's per-example weighting (see `labelled_fraction`)
            loss += labelled_loss * (self.labelled_fraction if x_u is not None else 1.0)
            loss += self.classification_weight * tf.reduce_mean(
                terms["classification"]
            )
            logs.update({f"labelled_{k}": v for k, v in terms.items()})
            pred = tf.argmax(self.cluster_logits(self._flatten(x_l)), -1)
            logs["accuracy"] = tf.cast(tf.equal(tf.cast(pred, tf.int32), y), tf.float32)
        logs["loss"] = loss
        return loss, logs

    def _record(self, logs):
        out = {}
        for name, value in logs.items():
            tracker = self._trackers.get(name)
            if tracker is not None:
                tracker.update_state(value)
                out[name] = tracker.result()
        if _across_workers():
            # Keras reduces step outputs across workers with
            # strategy.reduce(MEAN, v, axis=0), which fails on scalars
            # (tensorflow/tensorflow#72388): return them as rank-1 [1].
            out = {k: tf.reshape(v, [1]) for k, v in out.items()}
        return out

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' TF trainer reduces a data batch across workers to build the
        # model symbolically, which fails under MultiWorkerMirroredStrategy
        # ("Attempt to convert a value (PerReplica...)"). Our models are
        # built in __init__ and have no compiled metrics: only the optimizer
        # needs building, in the strategy's scope.
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and _across_workers(strategy):
            with strategy.scope():
                if self.optimizer is not None and not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
            return
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        base = (tf.constant([self.seed, 0x7EA1], tf.int32) if self.seed is not None
                else tf.cast(self.seed_generator.next(), tf.int32))
        self._step_key = tf.random.experimental.stateless_fold_in(
            base, tf.cast(self.optimizer.iterations, tf.int32))
        self._step_draws = 0
        with tf.GradientTape() as tape:
            try:
                loss, logs = self._objective(data, training=True)
            finally:
                self._step_key = None
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = loss / tf.cast(replicas, loss.dtype)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._record(logs)

    def test_step(self, data):
        _, logs = self._objective(data, training=False)
        return self._record(logs)

    # ------------------------------------------------------------------
    # Public API (NumPy in, NumPy out).
    def check_images(self, x, name="x"):
        """Validates images and returns them as float32 [N, D_x].

        Accepts `[N, *input_shape]` or `[N, D_x]` with values in [0, 1].
        """
        if isinstance(x, tf.Tensor):
            x = x.numpy()
        x = np.asarray(x)
        if x.dtype == object or not (
            np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == bool
        ):
            raise TypeError(f"`{name}` must be numeric images, got dtype {x.dtype}")
        if x.shape[1:] not in (self.image_shape, (self.data_dim,)):
            raise ValueError(
                f"`{name}` must have shape [N, {', '.join(map(str, self.image_shape))}]"
                f" or [N, {self.data_dim}], got {list(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"`{name}` is an empty batch")
        x = x.reshape(len(x), self.data_dim).astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"`{name}` contains NaN or Inf")
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(
                f"`{name}` must be in [0, 1], got values in "
                f"[{x.min():.3g}, {x.max():.3g}]"
            )
        return x

    def _ensure_built(self):
        if not self.built:
            self.build((None,) + self.image_shape)

    def _batched(self, fn, x, batch_size):
        self._ensure_built()
        outs = [
            np.asarray(fn(tf.constant(x[i : i + batch_size])))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outs, axis=0)

    @tf.function(reduce_retracing=True)
    def _probs_fn(self, x):
        return tf.nn.softmax(tf.cast(self.cluster_logits(x), tf.float32), -1)

    @tf.function(reduce_retracing=True)
    def _encode_fn(self, x):
        return self.encode_mean(x)

    @tf.function(reduce_retracing=True)
    def _reconstruct_fn(self, x):
        return self.reconstruct_mean(x)

    @tf.function(reduce_retracing=True)
    def _generate_fn(self, clusters, seed):
        return self.generate_mean(clusters, seed)

    @tf.function(reduce_retracing=True)
    def _generate_sigma_fn(self, clusters, seed, sigma):
        return self.generate_mean(clusters, seed, sigma=sigma)

    @tf.function(reduce_retracing=True)
    def _log_weights_lse(self, x, num_samples, seed):
        w = tf.cast(self.log_importance_weights(x, num_samples, seed), tf.float32)
        return tf.reduce_logsumexp(w, axis=-1)

    def cluster_probs(self, x, batch_size=1000):
        """q(y | x) (or the model's cluster posterior) as [N, K] probabilities."""
        return self._batched(self._probs_fn, self.check_images(x), batch_size)

    def encode(self, x, batch_size=1000):
        """The latent representation used for kNN and plots, [N, latent]."""
        return self._batched(self._encode_fn, self.check_images(x), batch_size)

    def sample_latent(self, x, seed=0, batch_size=1000):
        """One sample per image from the latent posterior (the latent of
        `encode`), [N, latent]; the same `seed` gives the same samples."""
        x = self.check_images(x)
        self._ensure_built()
        base = tf.constant([_check_seed(seed), 0], tf.int32)
        outs = [
            np.asarray(self._sample_latent_fn(
                tf.constant(x[i : i + batch_size]), tf.random.experimental.stateless_fold_in(base, i)))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outs, axis=0)

    @tf.function(reduce_retracing=True)
    def _sample_latent_fn(self, x, seed):
        return self.posterior_sample_batch(x, seed)

    def reconstruct(self, x, batch_size=1000):
        """Reconstructions (Bernoulli means), shaped like `input_shape`."""
        out = self._batched(self._reconstruct_fn, self.check_images(x), batch_size)
        return out.reshape((-1,) + self.image_shape)

    def check_clusters(self, cluster, n=None):
        c = np.asarray(cluster)
        if not np.issubdtype(c.dtype, np.integer):
            raise TypeError(f"`cluster` must be integers, got dtype {c.dtype}")
        if c.ndim == 0:
            if n is None:
                n = 1
            if int(n) < 1:
                raise ValueError(f"`n` must be >= 1, got {n}")
            c = np.full([int(n)], int(c))
        elif c.ndim != 1 or (n is not None and len(c) != n):
            raise ValueError("`cluster` must be an int or a 1-D array of length n")
        if len(c) == 0:
            raise ValueError("`cluster` is empty")
        if c.min() < 0 or c.max() >= self.num_clusters:
            raise ValueError(
                f"`cluster` must be in [0, {self.num_clusters - 1}], got "
                f"values in [{c.min()}, {c.max()}]"
            )
        return c.astype(np.int32)

    def generate(self, cluster, n=None, seed=0, sigma=None):
        """Samples from p(x | y = cluster): Bernoulli means, image shaped.

        `cluster` is an int (with `n` samples) or a 1-D int array; the same
        `seed` gives the same images. `sigma` scales the standard deviation
        of the N(0, I) prior (e.g. 1.4 to probe the prior's tails); only for
        models with that prior (`supports_sigma`).
        """
        self._ensure_built()
        c = self.check_clusters(cluster, n)
        seed = tf.constant([_check_seed(seed), 0], tf.int32)
        if sigma is None:
            out = self._generate_fn(tf.constant(c), seed)
        else:
            if not self.supports_sigma:
                raise ValueError(f"{type(self).__name__} does not support `sigma` (its prior is not N(0, I))")
            if not np.isfinite(sigma) or float(sigma) <= 0:
                raise ValueError(f"`sigma` must be a finite number > 0, got {sigma}")
            out = self._generate_sigma_fn(tf.constant(c), seed, tf.constant(float(sigma), tf.float32))
        return np.asarray(out).reshape((-1,) + self.image_shape)

    def log_likelihood(self, x, num_samples=1000, batch_size=100, sample_chunk=None, seed=0, verbose=0):
        """Importance-weighted estimate of log p(x) in nats, [N].

        log p(x) ~ log (1/S) sum_s w_s with S = `num_samples`; computed in
        chunks of `batch_size` examples and `sample_chunk` samples so that
        memory stays bounded whatever S. The same `seed` gives the same
        estimate. `verbose=1` shows a Keras progress bar (images done, the
        running mean of log p(x)): 1000 samples over the 10,000 MNIST test
        images take about an hour for CaGeM on two CPU cores.

        Example:
        >>> model.log_likelihood(x_test[:100], num_samples=1000, verbose=1).mean()  # doctest: +SKIP
        """
        x = self.check_images(x)
        if int(num_samples) < 1:
            raise ValueError(f"`num_samples` must be >= 1, got {num_samples}")
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1, got {verbose!r}")
        self._ensure_built()
        num_samples = int(num_samples)
        if sample_chunk is None:
            rows = 20000  # decoder rows per call
            sample_chunk = max(1, rows // (batch_size * self.num_clusters))
        sample_chunk = min(int(sample_chunk), num_samples)
        out = []
        base_seed = tf.constant([_check_seed(seed), 0], tf.int32)
        progress = keras.utils.Progbar(len(x), unit_name="image", stateful_metrics=["log_px"]) if verbose else None
        total = 0.0  # the running sum of log p(x) the progress bar shows as a mean
        for i in range(0, len(x), batch_size):
            xb = tf.constant(x[i : i + batch_size])
            parts = []
            for s in range(0, num_samples, sample_chunk):
                n = min(sample_chunk, num_samples - s)
                chunk_seed = tf.random.experimental.stateless_fold_in(
                    tf.random.experimental.stateless_fold_in(base_seed, i), s
                )
                parts.append(self._log_weights_lse(xb, tf.constant(n), chunk_seed))
            lse = tf.reduce_logsumexp(tf.stack(parts, 0), axis=0)
            out.append((lse - math.log(num_samples)).numpy())
            if progress is not None:
                done = min(i + batch_size, len(x))
                total += float(out[-1].sum())
                progress.update(done, values=[("log_px", total / done)])
        return np.concatenate(out)

    def classify(self, x, batch_size=1000):
        """Predicted labels argmax q(y|x), for models trained with labels."""
        if not self.labelled:
            raise ValueError(
                f"{type(self).__name__} was not trained with labels; use "
                "cluster_probs() for its (unlabelled) clusters"
            )
        return self.cluster_probs(x, batch_size).argmax(-1)
