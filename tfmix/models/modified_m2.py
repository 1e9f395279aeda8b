"""The "modified M2" of Rui Shu's post "Gaussian Mixture VAE: Lessons in
variational inference, generative modeling, and deep learning" (2016).

As M2, but the decoder's first hidden layer is h = W_y y + W_z z with W_z
diagonal and positive: h = mu(y) + sigma(y) * z, so that h | y is a proper
Gaussian (and h a Gaussian mixture) while p(z) = N(0, I). Then
`method` (identity / relu / layer) is applied to h and the rest of the
decoder follows. With `shared_scale=True` sigma does not depend on y (the
post's constant-variance variant).
"""

import keras
from keras import ops

from tfmix import distributions as D
from tfmix.models.marginal import MarginalMixtureVAE
from tfmix.networks import Decoder

METHODS = ("identity", "relu", "layer")


@keras.saving.register_keras_serializable(package="tfmix")
class ModifiedM2(MarginalMixtureVAE):
    """Shu's modified M2.

    Args:
        method: what follows h = W_y y + W_z z: "identity", "relu" or
            "layer" (a dense ReLU layer of `hidden_units[0]` units).
        shared_scale: sigma (the diagonal of W_z) shared by all y.

    Example:
    >>> model = ModifiedM2(method="relu")
    """

    # 10-16% faster with the bfloat16 output layer on an AVX-512 BF16 CPU in two
    # interleaved rounds (BENCHMARKS.md section 11, session 23); the same updates
    default_steps_per_execution = 10

    def __init__(self, method="relu", shared_scale=False, **kwargs):
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
        self.method = method
        self.shared_scale = bool(shared_scale)
        super().__init__(**kwargs)

    def build_generative(self):
        K, Dz = self.num_clusters, self.latent_dim
        self.h_loc = self.add_weight(name="h_loc", shape=(K, Dz), initializer="glorot_uniform")
        self.h_loc_bias = self.add_weight(name="h_loc_bias", shape=(Dz,), initializer="zeros")
        self.h_raw_scale = self.add_weight(
            name="h_raw_scale", shape=(1 if self.shared_scale else K, Dz),
            initializer="glorot_uniform",
        )
        self.h_raw_scale_bias = self.add_weight(
            name="h_raw_scale_bias", shape=(Dz,), initializer="zeros"
        )
        hidden = self.hidden_units if self.method == "layer" else self.hidden_units[1:]
        self.decoder = Decoder(hidden or self.hidden_units[-1:], self.data_dim, name="decoder",
                               logits_dtype=self.decoder_logits_dtype)
        self.decoder.build((None, Dz))

    def decode_logits(self, z, y):
        loc = ops.matmul(y, self.h_loc) + self.h_loc_bias
        raw = self.h_raw_scale if self.shared_scale else ops.matmul(y, self.h_raw_scale)
        h = loc + (ops.softplus(raw + self.h_raw_scale_bias) + D.MIN_SCALE) * z
        if self.method == "relu":
            h = ops.relu(h)
        return self.decoder(h)

    def get_config(self):
        config = super().get_config()
        config.update(method=self.method, shared_scale=self.shared_scale)
        return config
