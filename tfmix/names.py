"""Names the CLI validates before TensorFlow is imported (kept in sync with
`tfmix.models.MODELS` and `tfmix.data.DATASETS` by the tests)."""

MODEL_NAMES = (
    "cagem", "catvae", "dilokthanakul_gmvae", "dldpmm", "dlgmm", "gmvae", "infocatvae", "m2",
    "modified_m2", "nvae", "sbvae", "vae",
)
DATASET_NAMES = ("mnist", "fashion_mnist", "binarized_mnist")
BINARIZE = ("dynamic", "none")
