"""The tfmix models and their registry (name -> class)."""

from tfmix.models.base import MixtureVAE
from tfmix.models.cagem import CaGeM
from tfmix.models.catvae import CatVAE, InfoCatVAE
from tfmix.models.dilokthanakul import DilokthanakulGMVAE
from tfmix.models.dlgmm import DLDPMM, DLGMM
from tfmix.models.gmvae import GMVAE
from tfmix.models.m2 import M2
from tfmix.models.marginal import MarginalMixtureVAE
from tfmix.models.modified_m2 import ModifiedM2
from tfmix.models.nvae import NVAE
from tfmix.models.sbvae import SBVAE
from tfmix.models.vae import GaussVAE

#: Model names as the CLI and presets know them.
MODELS = {
    "vae": GaussVAE,
    "m2": M2,
    "modified_m2": ModifiedM2,
    "gmvae": GMVAE,
    "dilokthanakul_gmvae": DilokthanakulGMVAE,
    "dlgmm": DLGMM,
    "dldpmm": DLDPMM,
    "sbvae": SBVAE,
    "nvae": NVAE,
    "cagem": CaGeM,
    "catvae": CatVAE,
    "infocatvae": InfoCatVAE,
}


def get_model_class(name):
    """The model class registered under `name` (a clear error otherwise)."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None


__all__ = [
    "MODELS", "MixtureVAE", "MarginalMixtureVAE", "GaussVAE", "M2",
    "ModifiedM2", "GMVAE", "DilokthanakulGMVAE", "DLGMM", "DLDPMM", "SBVAE",
    "NVAE", "CaGeM", "CatVAE", "InfoCatVAE", "get_model_class",
]
