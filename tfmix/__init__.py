"""tfmix: a Keras 3 / TensorFlow Probability zoo of mixture VAEs.

The model classes are imported lazily, so that `tfmix --help` and argument
errors answer without loading TensorFlow.
"""

__version__ = "0.1.0"

_MODEL_EXPORTS = (
    "DilokthanakulGMVAE", "GaussVAE", "GMVAE", "M2", "MODELS", "ModifiedM2",
    "MixtureVAE", "MarginalMixtureVAE", "DLGMM", "DLDPMM", "SBVAE", "NVAE", "CaGeM", "CatVAE", "InfoCatVAE",
    "get_model_class",
)


def load(name, compile=True):
    """A zoo preset as a trainable Keras model, e.g. `tfmix.load("gmvae_mnist")`."""
    from tfmix import presets

    return presets.load(name, compile=compile)


def __getattr__(name):
    if name in _MODEL_EXPORTS:
        from tfmix import models

        return getattr(models, name)
    raise AttributeError(f"module 'tfmix' has no attribute {name!r}")


__all__ = list(_MODEL_EXPORTS) + ["load"]
