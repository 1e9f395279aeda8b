"""Test set-up: offline tfds data, two logical CPU devices, quiet TF."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARED = os.path.join(os.path.dirname(_REPO), "shared", "tensorflow_datasets")
if "TFDS_DATA_DIR" not in os.environ and os.path.isdir(_SHARED):
    os.environ["TFDS_DATA_DIR"] = _SHARED

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs for the MirroredStrategy tests; must precede TF's start-up.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)


def pytest_collection_modifyitems(items):
    # Skip (never download) when the prepared datasets are missing.
    have_data = os.path.isdir(os.environ.get("TFDS_DATA_DIR", "/nonexistent"))
    for item in items:
        if "mnist_data" in item.keywords and not have_data:
            item.add_marker(pytest.mark.skip(reason="TFDS_DATA_DIR with MNIST not found"))


def pytest_configure(config):
    config.addinivalue_line("markers", "mnist_data: needs the prepared tfds MNIST")


@pytest.fixture
def binary_images():
    rng = np.random.default_rng(0)
    return (rng.random((48, 28, 28, 1)) < 0.3).astype("float32")


TINY = dict(hidden_units=(16,), latent_dim=3, seed=1)


def tiny_model(name, **kw):
    import tfmix

    args = dict(TINY)
    if name != "vae":
        args["num_clusters"] = 4
    if name == "sbvae":
        args.pop("latent_dim")  # its latent is the num_clusters stick weights
    if name in ("catvae", "infocatvae"):
        args.pop("latent_dim")  # K * delta
        args["delta"] = 1
    if name == "infocatvae":
        args["info_samples"] = 8
    if name == "cagem":
        args["top_latent_dim"] = 2
    if name == "nvae":
        args.pop("latent_dim")
        args.update(class_latent_dim=2, shared_latent_dim=2, labelled=False)
    args.update(kw)
    return tfmix.get_model_class(name)(**args)


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session
    (separate instances in one process would reuse collective keys)."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy
