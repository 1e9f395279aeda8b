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


class _ConstantJudge:
    """A stand-in judge that labels every image with class `label`."""

    def __init__(self, label, num_classes=4):
        self.label, self.num_classes = label, num_classes

    def predict(self, x, batch_size=None, verbose=0):
        assert x.shape[1:] == metrics.JUDGE_IMAGE_SHAPE
        return np.eye(self.num_classes)[np.full(len(x), self.label)]


def test_conditional_generation_accuracy_uses_the_matched_class():
    from conftest import tiny_model

    # labelled: cluster c is class c, so a judge that always says 2 is right
    # for cluster 2 only
    model = tiny_model("nvae", labelled=True)
    acc, per = metrics.conditional_generation_accuracy(
        model, _ConstantJudge(2), x_test=None, y_test=None, per_cluster=5)
    assert per == [0.0, 0.0, 1.0, 0.0] and acc == 0.25
    # unlabelled: the Hungarian map of argmax q(y|x) on the test set decides
    model = tiny_model("gmvae")
    x = (np.random.default_rng(0).random((40, 28, 28, 1)) < 0.3).astype("float32")
    clusters = model.cluster_probs(x).argmax(-1)
    y = clusters.copy()  # labels equal to the clusters: the map is the identity on used clusters
    acc, per = metrics.conditional_generation_accuracy(model, _ConstantJudge(int(y[0])), x, y, per_cluster=3)
    assert per[int(y[0])] == 1.0 and sum(per) == 1.0


def test_judge_cnn_learns_and_validates():
    import keras

    with pytest.raises(ValueError, match="num_classes"):
        metrics.judge_cnn(1)
    judge = metrics.judge_cnn(2, seed=0)
    judge.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x = np.zeros((64, 28, 28, 1), np.float32)
    y = np.arange(64) % 2
    x[y == 1, :14] = 1.0  # class 1: top half lit
    judge.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert list(metrics.judge_labels(judge, x.reshape(64, 784))) == list(y)


def test_load_judge_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFMIX_ZOO", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="scripts/train_judge.py mnist"):
        metrics.load_judge("mnist")
    (tmp_path / "judge_mnist").mkdir()
    (tmp_path / "judge_mnist" / "model.keras").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="cannot load the judge"):
        metrics.load_judge("mnist")


@pytest.mark.mnist_data
@pytest.mark.parametrize("dataset,target", [("mnist", 0.99), ("fashion_mnist", 0.90)])
def test_published_judge_is_accurate_and_serves(dataset, target):
    import os

    import tensorflow as tf

    from tfmix import data

    if not os.path.exists(os.path.join(metrics.judge_dir(dataset), "card.json")):
        pytest.skip(f"judge_{dataset} not published")
    judge = metrics.load_judge(dataset)
    x, y = data.load_numpy(dataset, "test", limit=2000)
    assert np.mean(metrics.judge_labels(judge, x) == y) >= target
    served = tf.saved_model.load(os.path.join(metrics.judge_dir(dataset), "saved_model"))
    probs = served.signatures["serving_default"](tf.constant(x[:8]))
    (out,) = probs.values()
    np.testing.assert_allclose(out.numpy(), judge.predict(x[:8], verbose=0), atol=1e-5)


class _CodedModel:
    """A stand-in model whose samples of y carry y in their first pixel;
    `cluster_probs` reads it back, except that y = 2 is read as 0."""

    num_clusters, labelled = 3, False

    def generate(self, cluster, n, seed=0):
        x = np.zeros((n, 28, 28, 1), np.float32)
        x[:, 0, 0, 0] = (cluster + 1) / 10
        return x

    def cluster_probs(self, x):
        code = np.rint(np.asarray(x).reshape(len(x), -1)[:, 0] * 10).astype(int) - 1
        code = np.where(code == 2, 0, code)
        return np.eye(3)[np.clip(code, 0, 2)]


class _CodeJudge:
    """Labels a coded sample of y with class `classes[y]`; real (uncoded) images with 0."""

    def __init__(self, classes):
        self.classes = np.asarray(classes)

    def predict(self, x, batch_size=None, verbose=0):
        code = np.rint(x.reshape(len(x), -1)[:, 0] * 10).astype(int) - 1
        return np.eye(4)[np.where(code >= 0, self.classes[np.clip(code, 0, 2)], 0)]


def test_generation_purity_and_self_consistency_do_not_depend_on_the_clustering():
    """Each y generates one class cleanly (purity 1) although the test-set
    matching of q(y|x) maps every y to the wrong class (judged generation
    0); q(y|x) reads y = 2's samples as 0 (self-consistency 2/3). Catches a
    purity that reuses the test-set map and a self-consistency that reads
    the judge."""
    model = _CodedModel()
    x_test = np.stack([model.generate(c, 1)[0] for c in (0, 1, 2, 0, 1, 2)])
    y_test = np.array([1, 2, 0, 1, 2, 0])  # q(y|x) clusters 0, 1, 0: mapped to 1, 2 (cluster 2 unused: -1)
    report = metrics.generation_report(model, _CodeJudge([3, 1, 2]), x_test, y_test, per_cluster=4)
    assert report["judged_generation"] == 0.0
    assert report["generation_purity"] == 1.0 and report["generation_purity_per_cluster"] == [1.0, 1.0, 1.0]
    assert report["self_consistency"] == pytest.approx(2 / 3)
    assert report["self_consistency_per_cluster"] == [1.0, 1.0, 0.0]
    # two y generating the same class: one of them is unmatched
    report = metrics.generation_report(model, _CodeJudge([1, 1, 2]), x_test, y_test, per_cluster=4)
    assert report["generation_purity"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="per_cluster"):
        metrics.generation_report(model, _CodeJudge([1, 1, 2]), x_test, y_test, per_cluster=0)
