import numpy as np
import pytest

from tfmix import metrics


def test_hungarian_and_majority_hand_computed():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    c = np.array([2, 2, 1, 0, 0, 0, 0, 1])
    # contingency (cluster x label): c0 -> {1:3, 2:1}, c1 -> {0:1, 2:1}, c2 -> {0:2}
    # Hungarian: c2->0 (2), c0->1 (3), c1->2 (1) = 6/8
    assert metrics.cluster_accuracy(y, c, "hungarian") == pytest.approx(6 / 8)
    # Majority: c0->1 (3), c1->0 or 2 (1), c2->0 (2) = 6/8
    assert metrics.cluster_accuracy(y, c, "majority") == pytest.approx(6 / 8)


def test_majority_beats_hungarian_when_clusters_share_a_label():
    y = np.array([0, 0, 0, 0, 1, 1])
    c = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.cluster_accuracy(y, c, "majority") == 1.0
    assert metrics.cluster_accuracy(y, c, "hungarian") == pytest.approx(4 / 6)
    assert list(metrics.cluster_to_label_map(y, c, "majority")) == [0, 0, 1]


def test_relabelled_perfect_clustering_scores_one():
    y = np.repeat(np.arange(5), 7)
    perm = np.array([3, 0, 4, 1, 2])
    c = perm[y]
    assert metrics.cluster_accuracy(y, c) == 1.0
    assert metrics.nmi(y, c) == pytest.approx(1.0)
    assert metrics.ari(y, c) == pytest.approx(1.0)
    report = metrics.clustering_report(y, np.eye(5)[c])
    assert report["acc_hungarian"] == 1.0 and report["clusters_used"] == 5


def test_knn_error_hand_computed():
    z_train = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    y_train = np.array([0, 0, 0, 1, 1, 1])
    z_test = np.array([[0.05], [5.05], [4.9], [0.3]])
    y_test = np.array([0, 1, 0, 0])  # the third is on the wrong side
    assert metrics.knn_error(z_train, y_train, z_test, y_test, k=3) == pytest.approx(0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.cluster_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="method"):
        metrics.cluster_accuracy([0, 1], [0, 1], "best")
    with pytest.raises(ValueError, match="non-negative integers"):
        metrics.cluster_accuracy([0.5, 1], [0, 1])
