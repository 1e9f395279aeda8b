import numpy as np
import pytest

from tfmix import data

pytestmark = pytest.mark.mnist_data


def test_loaders_scale_and_shape():
    x, y = data.load_numpy("mnist", "test", limit=100)
    assert x.shape == (100, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert y.shape == (100,)
    xf, yf = data.load_numpy("fashion_mnist", "test", limit=10)
    assert xf.shape == (10, 28, 28, 1) and yf is not None
    xb, yb = data.load_numpy("binarized_mnist", "validation", limit=10)
    assert set(np.unique(xb)) == {0.0, 1.0} and yb is None and 0.05 < xb.mean() < 0.3


def test_binarized_mnist_pipeline_keeps_its_zeros_and_ones():
    """Stored as 0/1 uint8: the pipeline must not divide by 255."""
    x = next(iter(data.load("binarized_mnist", "validation", batch_size=50, binarize="none"))).numpy()
    assert set(np.unique(x)) == {0.0, 1.0} and 0.05 < x.mean() < 0.3
    xn, _ = data.load_numpy("binarized_mnist", "validation", limit=50)
    np.testing.assert_array_equal(x, xn)


def test_dynamic_binarisation_is_fresh_each_epoch_and_seeded():
    ds = data.load("mnist", "train[:200]", batch_size=200, shuffle=False, seed=1)
    e1, e2 = [next(iter(ds)).numpy() for _ in range(2)]
    assert set(np.unique(e1)) == {0.0, 1.0}
    assert (e1 != e2).mean() > 0.01  # a new sample each pass
    again = next(iter(data.load("mnist", "train[:200]", batch_size=200, shuffle=False, seed=1))).numpy()
    np.testing.assert_array_equal(e1, again)  # reproducible from the seed
    # its mean follows the grey levels
    grey, _ = data.load_numpy("mnist", "train[:200]")
    assert abs(e1.mean() - grey.mean()) < 0.01


def test_test_split_binarisation_is_fixed_and_flat_option():
    ds = data.load("mnist", "test[:100]", batch_size=100, labels=True, flatten=True)
    (a, ya), (b, yb) = [next(iter(ds)) for _ in range(2)]
    assert a.shape == (100, 784)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    none = next(iter(data.load("mnist", "test[:100]", batch_size=100, binarize="none")))
    assert len(np.unique(none.numpy())) > 2


def test_labelled_subset_balanced_and_reproducible():
    _, y = data.load_numpy("mnist", "train", limit=5000)
    idx = data.labelled_subset(y, 100, seed=0, num_classes=10)
    assert len(idx) == 100 and len(set(idx)) == 100
    assert np.all(np.bincount(y[idx], minlength=10) == 10)
    np.testing.assert_array_equal(idx, data.labelled_subset(y, 100, seed=0, num_classes=10))
    assert not np.array_equal(idx, data.labelled_subset(y, 100, seed=1, num_classes=10))
    with pytest.raises(ValueError, match="num_labels"):
        data.labelled_subset(y, 5, num_classes=10)


def test_semi_supervised_stream():
    ds, idx = data.semi_supervised("mnist", 20, batch_size=50, limit=1000, seed=0)
    _, y = data.load_numpy("mnist", "train", limit=1000)
    batches = list(ds)
    assert len(batches) == 20  # one pass over the 1000 unlabelled images
    seen = np.concatenate([b["y_labelled"].numpy() for b in batches])
    assert batches[0]["x"].shape == (50, 28, 28, 1)
    assert batches[0]["x_labelled"].shape == (20, 28, 28, 1)
    assert np.all(np.bincount(seen, minlength=10) == np.bincount(seen, minlength=10)[0])
    assert set(np.unique(y[idx])) == set(range(10))


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("cifar10", "train")
    with pytest.raises(ValueError, match="no split"):
        data.load("mnist", "validation")
    with pytest.raises(ValueError, match="no labels"):
        data.load("binarized_mnist", "train", labels=True)


def test_fixed_binarisation_does_not_depend_on_the_global_seed():
    # training sets TF's global seed, `tfmix evaluate` may not: the test
    # split must binarise the same either way (per-element stateless seeds)
    import keras
    import tensorflow as tf

    def first_batch():
        return next(iter(data.load("mnist", "test[:64]", batch_size=64, seed=3))).numpy()

    keras.utils.set_random_seed(0)
    a = first_batch()
    keras.utils.set_random_seed(12345)
    b = first_batch()
    tf.random.set_seed(None)
    c = first_batch()
    d = next(iter(data.load("mnist", "test[:64]", batch_size=64, seed=4))).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert set(np.unique(a)) == {0.0, 1.0} and not np.array_equal(a, d)


@pytest.mark.mnist_data
def test_match_labels_recovers_the_grey_images_binaries_were_sampled_from():
    grey, labels = data.load_numpy("mnist", "test", limit=2000)
    rng = np.random.default_rng(0)
    order = rng.permutation(2000)[:500]
    binary = (rng.random((500,) + grey.shape[1:]) < grey[order]).astype(np.float32)
    got, index, margin = data.match_labels(binary, grey, labels, chunk=128)
    assert np.mean(index == order) > 0.99
    np.testing.assert_array_equal(got, labels[index])
    assert np.all(margin >= 0)
    with pytest.raises(ValueError, match="pixels"):
        data.match_labels(binary[:, :14], grey, labels)


def test_pipelines_run_without_tf_data_autotuning():
    """Autotuning is off in every input pipeline (it stalled epochs here)."""
    assert data.load("mnist", "test[:10]", batch_size=5).options().autotune.enabled is False
    assert data.load("mnist", "train[:10]", batch_size=5, labels=True).options().autotune.enabled is False
    ds, _ = data.semi_supervised("mnist", 10, batch_size=50, limit=100)
    assert ds.options().autotune.enabled is False
    batch = next(iter(ds))  # and they still produce batches
    assert batch["x"].shape == (50, 28, 28, 1)
