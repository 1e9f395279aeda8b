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
"""

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
