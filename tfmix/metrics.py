"""Clustering and representation metrics (SciPy / scikit-learn).

- `cluster_accuracy(y, c, method="hungarian")`: the best one-to-one map of
  clusters to labels (scipy's `linear_sum_assignment`); with K > classes the
  extra clusters count as errors.
- `cluster_accuracy(y, c, method="majority")`: each cluster takes its most
  frequent label (many-to-one), the protocol of Shu's logs and of
  Dilokthanakul et al.'s GMVAE paper.
- `nmi`, `ari`: scikit-learn's normalised mutual information and adjusted
  Rand index.
- `knn_error(z_train, y_train, z_test, y_test, k)`: test error of a k-nearest
  neighbour classifier (scikit-learn) on a latent representation.
- `clustering_report(...)`: all of the above in one dict.
- The judge: `judge_cnn()` is the small CNN trained once on a real training
  set (`scripts/train_judge.py`, published as `zoo/judge_<dataset>/`);
  `load_judge(dataset)` loads it and `conditional_generation_accuracy(...)`
  scores a model's per-cluster samples with it; `generation_report(...)`
  adds the two measures that do not depend on the clustering of real
  images: generation purity and self-consistency.
"""

import os

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier

ACCURACY_METHODS = ("hungarian", "majority")


def _check_pair(y_true, y_pred):
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"labels and clusters differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}"
        )
    if y_true.size == 0:
        raise ValueError("empty labels")
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
            raise ValueError(f"`{name}` must be non-negative integers")
    return y_true, y_pred


def contingency(y_true, y_pred):
    """counts[c, l] = number of examples in cluster c with label l."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    counts = np.zeros((y_pred.max() + 1, y_true.max() + 1), dtype=np.int64)
    np.add.at(counts, (y_pred, y_true), 1)
    return counts


def cluster_accuracy(y_true, y_pred, method="hungarian"):
    """Accuracy of clusters `y_pred` against labels `y_true` after matching."""
    if method not in ACCURACY_METHODS:
        raise ValueError(f"`method` must be one of {ACCURACY_METHODS}, got {method!r}")
    counts = contingency(y_true, y_pred)
    if method == "majority":
        correct = counts.max(axis=1).sum()
    else:
        rows, cols = linear_sum_assignment(counts, maximize=True)
        correct = counts[rows, cols].sum()
    return float(correct) / counts.sum()


def cluster_to_label_map(y_true, y_pred, method="hungarian"):
    """The cluster -> label map the accuracy uses (-1: unmatched cluster)."""
    counts = contingency(y_true, y_pred)
    mapping = np.full(counts.shape[0], -1, dtype=np.int64)
    if method == "majority":
        nonempty = counts.sum(1) > 0
        mapping[nonempty] = counts[nonempty].argmax(1)
    else:
        rows, cols = linear_sum_assignment(counts, maximize=True)
        mapping[rows] = cols
    return mapping


def nmi(y_true, y_pred):
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred))


def ari(y_true, y_pred):
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(adjusted_rand_score(y_true, y_pred))


def knn_error(z_train, y_train, z_test, y_test, k=5):
    """Test error (fraction) of a k-NN classifier fit on (z_train, y_train)."""
    if int(k) < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    clf = KNeighborsClassifier(n_neighbors=int(k))
    clf.fit(np.asarray(z_train), np.asarray(y_train))
    return float(np.mean(clf.predict(np.asarray(z_test)) != np.asarray(y_test)))


def clustering_report(y_true, probs):
    """Hungarian and majority-vote accuracy, NMI and ARI of argmax clusters."""
    c = np.asarray(probs).argmax(-1)
    return {
        "acc_hungarian": cluster_accuracy(y_true, c, "hungarian"),
        "acc_majority": cluster_accuracy(y_true, c, "majority"),
        "nmi": nmi(y_true, c),
        "ari": ari(y_true, c),
        "clusters_used": int(len(np.unique(c))),
    }


# -- the judge: a classifier of real images that labels generated samples ------

JUDGE_IMAGE_SHAPE = (28, 28, 1)


def judge_cnn(num_classes=10, seed=0):
    """The judge classifier: conv(32)-pool-conv(64)-pool-dense(128), softmax.

    Trained once on a real training set by `scripts/train_judge.py`; takes
    images `[N, 28, 28, 1]` in [0, 1] and returns class probabilities.

    Example:
    >>> judge = judge_cnn(10)
    >>> judge.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    import keras
    from keras import layers

    if int(num_classes) < 2:
        raise ValueError(f"`num_classes` must be >= 2, got {num_classes}")
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    return keras.Sequential(
        [
            keras.Input(JUDGE_IMAGE_SHAPE, name="x"),
            layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(0)),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer=init(1)),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.25, seed=seed),
            layers.Dense(128, activation="relu", kernel_initializer=init(2)),
            layers.Dropout(0.5, seed=seed + 1),
            layers.Dense(int(num_classes), activation="softmax", kernel_initializer=init(3)),
        ],
        name="judge",
    )


def judge_dir(dataset):
    from tfmix import presets

    return os.path.join(presets.zoo_dir(), f"judge_{dataset}")


def load_judge(dataset="mnist"):
    """The published judge of `dataset` (a Keras model: images -> probabilities)."""
    import keras

    path = os.path.join(judge_dir(dataset), "model.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no judge classifier for {dataset!r} at {path} (train it with scripts/train_judge.py {dataset})"
        )
    try:
        return keras.saving.load_model(path)
    except Exception as e:
        raise ValueError(f"cannot load the judge {path}: {type(e).__name__}: {e}") from None


def judge_labels(judge, images, batch_size=1000):
    """The judge's labels of `images` (any shape with 784 pixels per image)."""
    x = np.asarray(images, np.float32).reshape((-1,) + JUDGE_IMAGE_SHAPE)
    return judge.predict(x, batch_size=batch_size, verbose=0).argmax(-1)


def conditional_generation_accuracy(model, judge, x_test, y_test, per_cluster=100, seed=0):
    """Share of the samples generated from cluster c that the judge assigns
    to the class matched to c (Hungarian matching of argmax q(y|x) on the
    test set; the identity for models trained with labels), over all K
    clusters. Returns `(accuracy, per_cluster_accuracy)`;
    unmatched clusters (K > classes) count as wrong.
    """
    K = model.num_clusters
    mapping = _generation_map(model, x_test, y_test)
    per = []
    for c in range(K):
        x = model.generate(c, int(per_cluster), seed=seed + c)
        per.append(float(np.mean(judge_labels(judge, x) == mapping[c])))
    return float(np.mean(per)), per


def _generation_map(model, x_test, y_test):
    """The class each cluster's samples should be: the identity for a model
    trained with labels, else the Hungarian map of argmax q(y|x) on the test
    set (-1: a cluster left unmatched)."""
    K = model.num_clusters
    if getattr(model, "labelled", False):  # trained with labels: cluster c is class c
        return np.arange(K)
    mapping = cluster_to_label_map(np.asarray(y_test), model.cluster_probs(x_test).argmax(-1), "hungarian")
    return np.concatenate([mapping, np.full(K - len(mapping), -1)]) if len(mapping) < K else mapping


def generation_report(model, judge, x_test, y_test, per_cluster=100, seed=0):
    """Three measures of conditional generation, from one set of samples
    (`per_cluster` images of each y, `model.generate(y, n, seed=seed + y)`):

    - `judged_generation`: `conditional_generation_accuracy`, the share of
      samples of y that the judge assigns to the class matched to y through
      q(y|x) on the test set (so it cannot exceed the clustering accuracy);
    - `generation_purity`: the judge's labels of the samples matched
      one-to-one to the y by Hungarian matching on those same samples: how
      cleanly each y generates one class, whatever q(y|x) does on real data
      (with K > classes the extra y count as wrong);
    - `self_consistency`: the share of samples of y that the model's own
      `cluster_probs` assigns back to y.

    Returns a dict with these and their per-y lists (`*_per_cluster`).

    Example:
    >>> report = generation_report(model, load_judge("mnist"), x_test, y_test)  # doctest: +SKIP
    >>> report["generation_purity"], report["self_consistency"]  # doctest: +SKIP
    """
    if int(per_cluster) < 1:
        raise ValueError(f"`per_cluster` must be >= 1, got {per_cluster}")
    K, n = model.num_clusters, int(per_cluster)
    mapping = _generation_map(model, x_test, y_test)
    judged, back = [], []
    for c in range(K):
        x = model.generate(c, n, seed=seed + c)
        judged.append(judge_labels(judge, x))
        back.append(np.asarray(model.cluster_probs(x)).argmax(-1))
    category = np.repeat(np.arange(K), n)
    labels = np.concatenate(judged)
    purity_map = cluster_to_label_map(labels, category, "hungarian")
    per = [float(np.mean(j == mapping[c])) for c, j in enumerate(judged)]
    return {
        "judged_generation": float(np.mean(per)),
        "judged_generation_per_cluster": per,
        "generation_purity": cluster_accuracy(labels, category, "hungarian"),
        "generation_purity_per_cluster": [float(np.mean(j == purity_map[c])) for c, j in enumerate(judged)],
        "self_consistency": float(np.mean(np.concatenate(back) == category)),
        "self_consistency_per_cluster": [float(np.mean(b == c)) for c, b in enumerate(back)],
    }
