"""M2 of Kingma, Rezende, Mohamed & Welling (2014), "Semi-supervised
learning with deep generative models".

Generative model: p(y) = Cat(1/K), p(z) = N(0, I), p(x | y, z) Bernoulli
with an MLP on [z, y]. Inference: q(y|x), q(z|x, y). Unsupervised it is
trained on the exact sum over y (see `MarginalMixtureVAE`); with labels, the
labelled ELBO plus `classification_weight * (-log q(y|x))`.
"""

import keras

from tfmix.models.marginal import MarginalMixtureVAE
from tfmix.networks import Decoder


@keras.saving.register_keras_serializable(package="tfmix")
class M2(MarginalMixtureVAE):
    """Kingma et al.'s M2, unsupervised (`labelled=False`) or semi-supervised.

    Example:
    >>> model = M2(num_clusters=10, latent_dim=64, hidden_units=(512, 512))
    >>> model.compile(optimizer="adam")
    >>> model.fit(x_train, epochs=1, batch_size=100)  # doctest: +SKIP
    """

    # 8-18% faster with the bfloat16 output layer on an AVX-512 BF16 CPU in two
    # interleaved rounds (BENCHMARKS.md section 11, session 23); the same updates
    default_steps_per_execution = 10

    def build_generative(self):
        self.decoder = Decoder(
            self.hidden_units, self.data_dim, num_classes=self.num_clusters,
            name="decoder", logits_dtype=self.decoder_logits_dtype,
        )
        self.decoder.build((None, self.latent_dim))

    def decode_logits(self, z, y):
        return self.decoder(z, y)
