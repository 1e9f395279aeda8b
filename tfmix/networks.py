"""Network building blocks shared by every tfmix model.

Every block is a small Keras 3 layer with an explicit `build()` and a
`get_config()`, so that models built from them save and load completely.
"""

import math

import keras
from keras import ops

from tfmix.distributions import check_softplus_on, positive_scale


def _check_units(name, units):
    units = tuple(int(u) for u in units)
    if not units or any(u <= 0 for u in units):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive integers, "
            f"got {units!r}"
        )
    return units


#: The compute dtypes a `Decoder`'s output layer accepts (`logits_dtype`).
LOGITS_DTYPES = ("float32", "compute")


def head(units, name):
    """An output layer: a Dense layer that always computes in float32, so
    that distribution parameters are float32 under a mixed-precision policy
    (`mixed_bfloat16`: the hidden layers run in bfloat16, TFP densities and
    KLs in float32)."""
    return keras.layers.Dense(units, name=name, dtype="float32")


def check_logits_dtype(logits_dtype):
    if logits_dtype not in LOGITS_DTYPES:
        raise ValueError(f"`logits_dtype` must be one of {LOGITS_DTYPES}, got {logits_dtype!r}")
    return logits_dtype


@keras.saving.register_keras_serializable(package="tfmix")
class MLP(keras.layers.Layer):
    """A stack of dense layers, all with the same activation.

    Works on inputs of any rank (the dense layers act on the last axis), so
    a `[batch, K, features]` tensor runs through it for all K in one call.

    Example:
    >>> mlp = MLP((512, 512))
    >>> mlp(keras.ops.zeros((3, 784))).shape
    (3, 512)
    """

    def __init__(self, hidden_units, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _check_units("hidden_units", hidden_units)
        self.activation = activation
        self.dense_layers = [
            keras.layers.Dense(u, activation=activation, name=f"dense_{i}")
            for i, u in enumerate(self.hidden_units)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.built = True

    def call(self, x):
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.hidden_units[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units), activation=self.activation
        )
        return config


@keras.saving.register_keras_serializable(package="tfmix")
class ConditionalMLP(keras.layers.Layer):
    """An MLP on the concatenation [x, one_hot(y)], y over `num_classes`.

    The first layer's weight splits into an x part and a y part
    (W [x; y] = W_x x + W_y y), so evaluating the network for every value of
    y costs one x projection plus K cheap additions. Both parts start as
    glorot_uniform starts that one layer (fan-in D_x + K):

    - `call(x)` returns `[batch, K, units]`: the output for all K values.
    - `call(x, y)` with `y` of shape `[batch, K]` (one-hot or probabilities)
      returns `[batch, units]`.

    Example:
    >>> net = ConditionalMLP((512, 512), num_classes=10)
    >>> net(keras.ops.zeros((3, 784))).shape
    (3, 10, 512)
    """

    def __init__(self, hidden_units, num_classes, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _check_units("hidden_units", hidden_units)
        if int(num_classes) < 1:
            raise ValueError(f"`num_classes` must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.activation = activation
        self.x_proj = keras.layers.Dense(self.hidden_units[0], name="x_proj")
        self.rest = (
            MLP(self.hidden_units[1:], activation, name="rest")
            if len(self.hidden_units) > 1
            else None
        )

    def build(self, input_shape):
        # initialised as Keras's glorot_uniform initialises one Dense layer on
        # the concatenation [x, y] (fan-in D_x + K), which is what the authors'
        # code builds (`RuiShu/vae-clustering` `shared_subgraphs.py`: a dense
        # layer on concat(x, y), Xavier-initialised); a glorot_uniform y part
        # of its own would start 1.6x wider than the x part (fan-in K)
        limit = math.sqrt(6.0 / (int(input_shape[-1]) + self.num_classes + self.hidden_units[0]))
        self.x_proj.kernel_initializer = keras.initializers.RandomUniform(-limit, limit)
        self.x_proj.build(tuple(input_shape))
        self.y_proj = self.add_weight(
            name="y_proj",
            shape=(self.num_classes, self.hidden_units[0]),
            initializer=keras.initializers.RandomUniform(-limit, limit),
        )
        if self.rest is not None:
            self.rest.build(tuple(input_shape)[:-1] + (self.hidden_units[0],))
        self.built = True

    def call(self, x, y=None):
        hx = self.x_proj(x)
        if y is None:
            h = ops.expand_dims(hx, -2) + self.y_proj
        else:
            h = hx + ops.matmul(y, self.y_proj)
        h = keras.activations.get(self.activation)(h)
        return self.rest(h) if self.rest is not None else h

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            num_classes=self.num_classes,
            activation=self.activation,
        )
        return config


@keras.saving.register_keras_serializable(package="tfmix")
class GaussianHead(keras.layers.Layer):
    """Maps features to the (loc, scale) of a diagonal Gaussian.

    By default scale = softplus(raw) + MIN_SCALE, so it is always positive;
    with `softplus_on="variance"` the softplus is the variance (Rui Shu's
    code; `tfmix.distributions.positive_scale`).

    Example:
    >>> loc, scale = GaussianHead(64, softplus_on="variance")(h)  # doctest: +SKIP
    """

    def __init__(self, latent_dim, softplus_on="scale", **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"`latent_dim` must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.softplus_on = check_softplus_on(softplus_on)
        self.loc = head(self.latent_dim, name="loc")
        self.raw_scale = head(self.latent_dim, name="raw_scale")

    def build(self, input_shape):
        self.loc.build(tuple(input_shape))
        self.raw_scale.build(tuple(input_shape))
        self.built = True

    def call(self, h):
        return self.loc(h), positive_scale(self.raw_scale(h), self.softplus_on)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, softplus_on=self.softplus_on)
        return config


@keras.saving.register_keras_serializable(package="tfmix")
class Decoder(keras.layers.Layer):
    """An MLP followed by a linear layer to `output_dim` logits.

    With `num_classes`, the MLP is a `ConditionalMLP` on [z, one_hot(y)] and
    `call(z, y)` takes the one-hot (or probability) codes `y` [..., K].

    `logits_dtype` is the compute dtype of the output layer: "float32" (the
    default: a `head`, whatever the dtype policy) or "compute" (the dtype
    policy's compute dtype, with the logits cast to float32 afterwards, as
    TensorFlow's mixed-precision guide builds an output layer). The two are
    the same under float32; under `mixed_bfloat16` "compute" runs the
    largest matmul of a mixture VAE's step (hidden -> 784 pixels, once per
    value of y) in bfloat16 and rounds the logits to bfloat16's 8-bit
    mantissa before the float32 likelihood (BENCHMARKS.md section 11).

    Example:
    >>> dec = Decoder((512, 512), 784, num_classes=10)
    >>> y = keras.ops.one_hot(keras.ops.array([3, 1]), 10)
    >>> dec(keras.ops.zeros((2, 64)), y).shape
    (2, 784)
    """

    def __init__(
        self, hidden_units, output_dim, num_classes=None, activation="relu",
        logits_dtype="float32", **kwargs
    ):
        super().__init__(**kwargs)
        self.logits_dtype = check_logits_dtype(logits_dtype)
        self.hidden_units = _check_units("hidden_units", hidden_units)
        self.output_dim = int(output_dim)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.activation = activation
        if self.num_classes is None:
            self.mlp = MLP(self.hidden_units, activation, name="mlp")
        else:
            self.mlp = ConditionalMLP(
                self.hidden_units, self.num_classes, activation, name="mlp"
            )
        if self.logits_dtype == "float32":
            self.logits = head(self.output_dim, name="logits")
        else:  # the policy's compute dtype; `call` casts its output to float32
            self.logits = keras.layers.Dense(self.output_dim, name="logits")

    def build(self, input_shape):
        self.mlp.build(tuple(input_shape))
        self.logits.build(tuple(input_shape)[:-1] + (self.hidden_units[-1],))
        self.built = True

    def call(self, z, y=None):
        if self.num_classes is None:
            h = self.mlp(z)
        elif y is None:
            raise ValueError("this decoder is conditional: pass the codes `y`")
        else:
            h = self.mlp(z, y)
        return self.to_logits(h)

    def to_logits(self, h):
        """The float32 logits of the last hidden layer's features `h`."""
        return ops.cast(self.logits(h), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            output_dim=self.output_dim,
            num_classes=self.num_classes,
            activation=self.activation,
            logits_dtype=self.logits_dtype,
        )
        return config
