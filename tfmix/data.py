"""Datasets through the real `tensorflow_datasets` loaders.

`tfds.load` reads prepared data from `data_dir` (default: `$TFDS_DATA_DIR`,
else tfds' own default). With `download=False` (the default here) nothing is
ever downloaded: a dataset that is not prepared gives a clear error.

Example:
>>> ds = load("mnist", "train", batch_size=100, binarize="dynamic")  # doctest: +SKIP
>>> x_test, y_test = load_numpy("mnist", "test")  # doctest: +SKIP
"""

import os

import numpy as np
import tensorflow as tf

from tfmix.utils import atomic_path

#: dataset name -> (splits, has labels, number of classes)
DATASETS = {
    "mnist": (("train", "test"), True, 10),
    "fashion_mnist": (("train", "test"), True, 10),
    "binarized_mnist": (("train", "validation", "test"), False, None),
}
#: what a stored pixel value of "fully on" is: grey levels 0..255, or the
#: fixed binarisation's 0/1 (stored as uint8 too)
PIXEL_MAX = {"mnist": 255.0, "fashion_mnist": 255.0, "binarized_mnist": 1.0}
BINARIZE = ("dynamic", "none")
IMAGE_SHAPE = (28, 28, 1)


def check_dataset(name, split=None):
    """Raises a clear ValueError for an unknown dataset or split."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}"
        )
    if split is not None:
        base = split.split("[")[0]
        if base not in DATASETS[name][0]:
            raise ValueError(
                f"dataset {name!r} has no split {base!r}; splits: "
                f"{', '.join(DATASETS[name][0])}"
            )


def _tfds_load(name, split, data_dir, shuffle_files=False):
    import tensorflow_datasets as tfds

    check_dataset(name, split)
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        return tfds.load(
            name, split=split, data_dir=data_dir, download=False,
            shuffle_files=shuffle_files,
        )
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
        raise FileNotFoundError(
            f"dataset {name!r} is not prepared under {data_dir or 'the tfds default dir'}"
            f" (set TFDS_DATA_DIR or pass data_dir); tfds said: {e}"
        ) from None


def _scale(example, name):
    """Images as float32 in [0, 1] (binarized_mnist is stored as 0/1 uint8)."""
    return tf.cast(example["image"], tf.float32) / PIXEL_MAX[name]


def load_numpy(name, split, data_dir=None, limit=None):
    """The whole split as NumPy: images float32 [N, 28, 28, 1] in [0, 1]
    and labels int64 [N] (None for unlabelled datasets)."""
    ds = _tfds_load(name, split, data_dir)
    if limit is not None:
        ds = ds.take(int(limit))
    xs, ys = [], []
    for batch in ds.batch(10000).as_numpy_iterator():
        xs.append(batch["image"])
        if "label" in batch:
            ys.append(batch["label"])
    x = np.concatenate(xs).astype(np.float32) / PIXEL_MAX[name]
    y = np.concatenate(ys).astype(np.int64) if ys else None
    return x, y


def binarize_dynamic(x, seed):
    """A Bernoulli(x) sample of each pixel, from a stateless [2] seed."""
    u = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=x.dtype)
    return tf.cast(u < x, x.dtype)


def pipeline_options():
    """The `tf.data.Options` of every tfmix input pipeline: autotuning off.

    On this 2-core machine tf.data's autotuning cost more than it gained:
    with it, `fit` epochs stalled after their last step (epoch times rounded
    up to about 2.55, 5.1 or 10.2 s) and no model trained faster
    (BENCHMARKS.md section 5; `python scripts/benchmark_speed.py train
    --configs fp32,autotune`). Parallel maps and prefetching still run, at
    fixed sizes.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _pipeline(ds, *, binarize, seed, shuffle, batch_size, flatten, repeat,
              fresh_each_epoch, cache=True, drop_remainder=False):
    """scale -> cache -> (shuffle) -> (binarise) -> batch -> prefetch.

    Dynamic binarisation draws a new sample of every image at every pass
    over the data (`fresh_each_epoch`), from seeds derived from `seed`, so a
    run is reproducible; with `fresh_each_epoch=False` (test splits) every
    pass sees the same binarisation.
    """
    if binarize not in BINARIZE:
        raise ValueError(f"`binarize` must be one of {BINARIZE}, got {binarize!r}")
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if binarize == "dynamic" and fresh_each_epoch:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda el, s: (binarize_dynamic(el[0], tf.cast(s % 2**31, tf.int32)),)
            + tuple(el[1:]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    elif binarize == "dynamic":
        # one fixed binarisation: element i uses the stateless seed
        # [seed, i], whatever TF's global seed (tf.data.Dataset.random would
        # depend on it, and evaluation would differ from training's logs)
        ds = ds.enumerate().map(
            lambda i, el: (binarize_dynamic(el[0], tf.stack([tf.cast(seed, tf.int32), tf.cast(i, tf.int32)])),)
            + tuple(el[1:]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if flatten:
        ds = ds.map(lambda *el: (tf.reshape(el[0], [-1]),) + tuple(el[1:]))
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())


#: salts of the stateless keys derived from a run's seed: one for the
#: order of each epoch, one for its dynamic binarisation
_ORDER_SALT, _BINARIZE_SALT = 0x5EED0, 0x5EED1


def steps_per_epoch(num_examples, batch_size, drop_remainder=False):
    """Batches in one pass over `num_examples` (the last one partial unless
    `drop_remainder`)."""
    n, b = int(num_examples), int(batch_size)
    if n < 1 or b < 1:
        raise ValueError(f"`num_examples` and `batch_size` must be >= 1, got {n} and {b}")
    steps = n // b if drop_remainder else -(-n // b)
    if steps < 1:
        raise ValueError(f"`batch_size` {b} exceeds the {n} examples with drop_remainder=True")
    return steps


def epoch_stream(arrays, *, seed, batch_size, binarize="dynamic", start_epoch=0,
                 skip_batches=0, drop_remainder=False, flatten=False):
    """Endless batches of in-memory arrays, one shuffled pass (epoch) after
    another, each epoch a function of `(seed, epoch)` only.

    Epoch e's order is a stateless permutation keyed by (seed, e), and batch
    b of epoch e is dynamically binarised (if `binarize="dynamic"`; the
    first array holds the images) from a key folded from (seed, e, b). So
    the stream that starts at `start_epoch` yields exactly what a stream
    started at epoch 0 yields from that epoch on: a run resumed in a new
    process neither replays nor skips any epoch's data. `skip_batches` drops
    that many batches of the first epoch (to resume a stream mid-epoch).
    Give `fit` `steps_per_epoch=steps_per_epoch(len(arrays[0]), batch_size)`.

    Example:
    >>> x = np.random.default_rng(0).random((10, 4), dtype=np.float32)
    >>> ds = epoch_stream((x,), seed=0, batch_size=5, start_epoch=3)
    >>> next(iter(ds))[0].shape
    TensorShape([5, 4])
    """
    if binarize not in BINARIZE:
        raise ValueError(f"`binarize` must be one of {BINARIZE}, got {binarize!r}")
    if int(start_epoch) < 0 or int(skip_batches) < 0:
        raise ValueError(f"`start_epoch` and `skip_batches` must be >= 0, got {start_epoch}, {skip_batches}")
    tensors = tuple(tf.convert_to_tensor(a) for a in arrays)
    n = int(tensors[0].shape[0])
    steps_per_epoch(n, batch_size, drop_remainder)  # validates the sizes
    seed = int(seed)
    order_key = tf.constant([seed % 2**31, _ORDER_SALT], tf.int32)
    binarize_key = tf.constant([seed % 2**31, _BINARIZE_SALT], tf.int32)

    def batch_of(epoch, index, rows):
        el = tuple(tf.gather(t, rows) for t in tensors)
        if binarize == "dynamic":
            key = tf.random.experimental.stateless_fold_in(binarize_key, tf.cast(epoch, tf.int32))
            key = tf.random.experimental.stateless_fold_in(key, tf.cast(index, tf.int32))
            el = (binarize_dynamic(el[0], key),) + el[1:]
        if flatten:
            el = (tf.reshape(el[0], [tf.shape(el[0])[0], -1]),) + el[1:]
        return el

    def one_epoch(epoch):
        key = tf.random.experimental.stateless_fold_in(order_key, tf.cast(epoch, tf.int32))
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        rows = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        return rows.enumerate().map(lambda i, r: batch_of(epoch, i, r))

    ds = tf.data.Dataset.range(int(start_epoch), 2**31 - 1).flat_map(one_epoch)
    if skip_batches:
        ds = ds.skip(int(skip_batches))
    return ds.prefetch(2).with_options(pipeline_options())


def split_size(name, split, data_dir=None):
    """The number of examples of a tfds split or slice ("train[:500]")."""
    import tensorflow_datasets as tfds

    check_dataset(name, split)
    builder = tfds.builder(name, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"))
    return int(builder.info.splits[split].num_examples)


def training_stream(name, split="train", *, batch_size=100, binarize="dynamic", labels=False,
                    seed=0, start_epoch=0, data_dir=None, limit=None):
    """A training split as a resumable `epoch_stream`: returns
    `(dataset, steps_per_epoch)`; the dataset yields `x` batches (or `(x, y)`
    with `labels`) from epoch `start_epoch` on, each epoch's order and
    binarisation fixed by (seed, epoch). `tfmix train` uses it, so that a
    resumed run sees the data the uninterrupted run would have seen.

    Example:
    >>> ds, steps = training_stream("mnist", batch_size=100, start_epoch=5)  # doctest: +SKIP
    >>> model.fit(ds, epochs=10, initial_epoch=5, steps_per_epoch=steps)  # doctest: +SKIP
    """
    check_dataset(name, split)
    if labels and not DATASETS[name][1]:
        raise ValueError(f"dataset {name!r} has no labels")
    x, y = load_numpy(name, split, data_dir=data_dir, limit=limit)
    ds = epoch_stream((x, y) if labels else (x,), seed=seed, batch_size=batch_size,
                      binarize=binarize, start_epoch=start_epoch)
    if not labels:
        ds = ds.map(lambda x: x)  # 1-tuples -> plain image batches
    return ds, steps_per_epoch(len(x), batch_size)


def load(name, split, *, batch_size=100, binarize="dynamic", labels=False,
         shuffle=None, seed=0, flatten=False, repeat=False, data_dir=None,
         limit=None, fresh_each_epoch=None):
    """A batched `tf.data.Dataset` of images in [0, 1] (or binarised).

    Args:
        name: "mnist", "fashion_mnist" or "binarized_mnist".
        split: "train", "test", "validation" or a tfds slice ("train[:500]").
        binarize: "dynamic" (a fresh Bernoulli sample each epoch on training
            splits, a fixed one on others) or "none".
        labels: yield `(x, y)` batches; otherwise batches of images only.
        shuffle: defaults to True for training splits.
        fresh_each_epoch: a new dynamic binarisation at every pass (default
            True for training splits); False: one fixed binarisation from
            `seed` (per-element stateless seeds).
        limit: keep only the first `limit` examples.
    """
    check_dataset(name, split)
    if labels and not DATASETS[name][1]:
        raise ValueError(f"dataset {name!r} has no labels")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    training = split.split("[")[0] == "train"
    shuffle = training if shuffle is None else shuffle
    ds = _tfds_load(name, split, data_dir)
    if limit is not None:
        ds = ds.take(int(limit))
    if labels:
        ds = ds.map(lambda e: (_scale(e, name), e["label"]))
    else:
        ds = ds.map(lambda e: (_scale(e, name),))
    ds = _pipeline(
        ds, binarize=binarize, seed=seed, shuffle=shuffle, batch_size=batch_size,
        flatten=flatten, repeat=repeat,
        fresh_each_epoch=training if fresh_each_epoch is None else bool(fresh_each_epoch),
    )
    if not labels:
        ds = ds.map(lambda x: x)  # 1-tuples -> plain image batches
    return ds


def labelled_subset(y, num_labels, seed=0, num_classes=None):
    """Indices of `num_labels` examples, balanced across classes, fixed by `seed`.

    Each class gets `num_labels // num_classes` examples (the first
    `num_labels % num_classes` classes one more).
    """
    y = np.asarray(y)
    classes = np.arange(num_classes) if num_classes else np.unique(y)
    n = int(num_labels)
    if n < len(classes):
        raise ValueError(
            f"`num_labels` must be at least the number of classes ({len(classes)}), got {n}"
        )
    rng = np.random.default_rng(seed)
    per_class = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    idx = []
    for c, k in zip(classes, per_class):
        pool = np.flatnonzero(y == c)
        if len(pool) < k:
            raise ValueError(f"class {c} has only {len(pool)} examples, {k} requested")
        idx.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(idx))


def semi_supervised(name, num_labels, *, batch_size=100, labelled_batch_size=None,
                    binarize="dynamic", seed=0, data_dir=None, limit=None, start_epoch=None):
    """Unlabelled training data with a balanced labelled subset streamed beside it.

    Yields dicts `{"x": [B, 28, 28, 1], "x_labelled": [B_l, ...],
    "y_labelled": [B_l]}`: every batch of the (whole, unlabelled) training
    split comes with a batch of the `num_labels` labelled examples, repeated
    as often as needed. Returns `(dataset, labelled_indices)`.

    `start_epoch=None`: one pass over the unlabelled data per iteration of
    the dataset (a fresh order and binarisation each pass, a sequence that
    restarts in a new process). `start_epoch=E`: an endless resumable
    stream from epoch E (`epoch_stream`; give `fit` `steps_per_epoch`),
    the labelled stream positioned where E epochs of batches leave it.
    """
    check_dataset(name, "train")
    if not DATASETS[name][1]:
        raise ValueError(f"dataset {name!r} has no labels")
    x, y = load_numpy(name, "train", data_dir=data_dir, limit=limit)
    idx = labelled_subset(y, num_labels, seed=seed, num_classes=DATASETS[name][2])
    lb = int(labelled_batch_size or min(batch_size, len(idx)))
    if start_epoch is not None:
        done = int(start_epoch) * steps_per_epoch(len(x), batch_size)  # labelled batches drawn so far
        labelled_steps = steps_per_epoch(len(idx), lb, drop_remainder=True)
        unl = epoch_stream((x,), seed=seed, batch_size=batch_size, binarize=binarize,
                           start_epoch=start_epoch)
        lab = epoch_stream((x[idx], y[idx]), seed=seed + 1, batch_size=lb, binarize=binarize,
                           start_epoch=done // labelled_steps, skip_batches=done % labelled_steps,
                           drop_remainder=True)
    else:
        unl = _pipeline(
            tf.data.Dataset.from_tensor_slices((x,)), binarize=binarize, seed=seed,
            shuffle=True, batch_size=batch_size, flatten=False, repeat=False,
            fresh_each_epoch=True, cache=False,
        )
        lab = _pipeline(
            tf.data.Dataset.from_tensor_slices((x[idx], y[idx])), binarize=binarize,
            seed=seed + 1, shuffle=True, batch_size=lb, flatten=False, repeat=True,
            fresh_each_epoch=True, cache=False, drop_remainder=True,
        )
    ds = tf.data.Dataset.zip((unl, lab)).map(
        lambda u, l: {"x": u[0], "x_labelled": l[0], "y_labelled": l[1]}
    )
    return ds, idx  # both inputs carry pipeline_options(); zip and map keep them


def match_labels(binary, grey, grey_labels, chunk=1000):
    """Labels for binarised images from the grey-level images they were
    sampled from.

    Each binary image b gets the label of the grey image g (pixel
    probabilities, clipped to [1e-3, 1 - 1e-3]) under which it is most
    likely: argmax_g sum_i b_i log g_i + (1 - b_i) log(1 - g_i). Returns
    (labels [N], index of the matched grey image [N], log-likelihood margin
    between the best and the second-best grey image [N]).
    """
    b = tf.reshape(tf.constant(binary, tf.float32), [len(binary), -1])
    g = tf.clip_by_value(tf.reshape(tf.constant(grey, tf.float32), [len(grey), -1]), 1e-3, 1 - 1e-3)
    if b.shape[1] != g.shape[1]:
        raise ValueError(f"binary images have {b.shape[1]} pixels, grey ones {g.shape[1]}")
    log_odds = tf.transpose(tf.math.log(g) - tf.math.log1p(-g))  # [P, M]
    offset = tf.reduce_sum(tf.math.log1p(-g), -1)  # [M]
    index, margin = [], []
    for i in range(0, len(binary), chunk):
        ll = tf.matmul(b[i : i + chunk], log_odds) + offset  # [chunk, M]
        top = tf.math.top_k(ll, k=2)
        index.append(top.indices[:, 0].numpy())
        margin.append((top.values[:, 0] - top.values[:, 1]).numpy())
    index, margin = np.concatenate(index), np.concatenate(margin)
    return np.asarray(grey_labels)[index], index, margin


#: the grey-level MNIST split each binarized_mnist split was sampled from
BINARIZED_SOURCE = {"train": "train", "validation": "train", "test": "test"}


def binarized_mnist_labels(split, data_dir=None, cache_dir=None):
    """Digit labels of a binarized_mnist split (tfds has none), by
    `match_labels` against grey-level MNIST; cached as
    `<cache_dir>/binarized_mnist_<split>_labels.npz` (default
    `$TFMIX_CACHE`, else `~/.cache/tfmix`). Returns (labels, margin)."""
    check_dataset("binarized_mnist", split)
    if split not in BINARIZED_SOURCE:
        raise ValueError(f"`split` must be one of {sorted(BINARIZED_SOURCE)}, got {split!r}")
    cache_dir = cache_dir or os.environ.get("TFMIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tfmix")
    path = os.path.join(cache_dir, f"binarized_mnist_{split}_labels.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return f["labels"], f["margin"]
    binary, _ = load_numpy("binarized_mnist", split, data_dir)
    grey, grey_labels = load_numpy("mnist", BINARIZED_SOURCE[split], data_dir)
    labels, index, margin = match_labels(binary, grey, grey_labels)
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, labels=labels, index=index, margin=margin)
    return labels, margin


def array_batches(x, y=None, batch_size=1000):
    """Evaluation batches of in-memory images (with their labels if given)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    return ds.batch(batch_size).with_options(pipeline_options())


def validation_split(config):
    """The split monitored during training."""
    if config.get("validation"):
        return config["validation"]
    return "validation" if "validation" in DATASETS[config["dataset"]][0] else "test"


def split_arrays(config, split="test"):
    """Images of `split` in file order (binarised with a fixed seed) and labels."""
    split = split if config["limit"] is None else f"{split}[:{config['limit']}]"
    ds = load(
        config["dataset"], split, batch_size=1000, binarize=config["binarize"],
        labels=DATASETS[config["dataset"]][1], seed=config["seed"], shuffle=False,
        fresh_each_epoch=False,
    )
    if DATASETS[config["dataset"]][1]:
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        return np.concatenate(xs), np.concatenate(ys)
    return np.concatenate([x.numpy() for x in ds]), None


def split_labels(config, split, y):
    """The split's labels; for binarized_mnist (tfds has none) matched from
    grey-level MNIST (`tfmix.data.binarized_mnist_labels`)."""
    if y is not None or config["dataset"] != "binarized_mnist":
        return y
    labels, _ = binarized_mnist_labels(split)
    return labels if config["limit"] is None else labels[: config["limit"]]
