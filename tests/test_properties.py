"""Property tests (hypothesis): metric invariances, the importance-weighted
bound against the ELBO, and determinism of training from a seed."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tfmix
from conftest import tiny_model
from tfmix.models.marginal import MarginalMixtureVAE
from tfmix import metrics

labels_and_clusters = st.integers(2, 8).flatmap(
    lambda k: st.tuples(
        arrays(np.int64, st.integers(1, 60), elements=st.integers(0, k - 1)),
        st.permutations(range(k)),
        st.integers(0, 2**32 - 1),
    )
)


@settings(max_examples=60, deadline=None)
@given(labels_and_clusters)
def test_relabelling_clusters_changes_no_score(data):
    y, perm, seed = data
    c = np.random.default_rng(seed).integers(0, len(perm), len(y))
    relabelled = np.asarray(perm)[c]
    for method in metrics.ACCURACY_METHODS:
        assert metrics.cluster_accuracy(y, c, method) == pytest.approx(metrics.cluster_accuracy(y, relabelled, method))
    assert metrics.nmi(y, c) == pytest.approx(metrics.nmi(y, relabelled))
    assert metrics.ari(y, c) == pytest.approx(metrics.ari(y, relabelled))


@settings(max_examples=60, deadline=None)
@given(labels_and_clusters)
def test_a_perfect_clustering_scores_one_under_any_names(data):
    y, perm, _ = data
    c = np.asarray(perm)[y]  # a bijective renaming of the labels
    assert metrics.cluster_accuracy(y, c, "hungarian") == 1.0
    assert metrics.cluster_accuracy(y, c, "majority") == 1.0
    if len(np.unique(y)) > 1:
        assert metrics.nmi(y, c) == pytest.approx(1.0)
        assert metrics.ari(y, c) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(labels_and_clusters)
def test_accuracies_are_bounded_and_ordered(data):
    y, perm, seed = data
    c = np.random.default_rng(seed).integers(0, len(perm), len(y))
    hung, maj = metrics.cluster_accuracy(y, c, "hungarian"), metrics.cluster_accuracy(y, c, "majority")
    assert 0 < hung <= maj <= 1  # many-to-one matching can only do better


#: models whose importance weight sums over y with one z per y (stratified
#: sampling, `MarginalMixtureVAE`: GMVAE, M2, modified M2, CatVAE,
#: InfoCatVAE; and CaGeM, whose weight sums over y with one z2 per y,
#: `CaGeM.log_importance_weights`): E[log w_1] exceeds the ELBO by up to
#: about log K (0.7-1.8 nats measured on the tiny models; CaGeM's 0.63 once
#: its initial weights changed, where the equality check had passed by luck)
STRATIFIED = {n for n, c in tfmix.MODELS.items() if issubclass(c, MarginalMixtureVAE)} | {"cagem"}


@pytest.mark.parametrize("name", sorted(tfmix.MODELS))
def test_importance_weighted_bound_is_above_the_elbo_and_grows_with_samples(name, binary_images):
    """log p(x) >= IW_S >= ... >= IW_1 = ELBO in expectation: the S-sample
    estimate averaged over the batch is not below the ELBO, and grows with S
    on average, up to Monte Carlo noise: 4 standard errors, estimated from
    the repeats (per image, across seeds) so that the tolerance follows each
    model's own noise instead of a fixed number of nats."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_model(name)
    model.compile(optimizer="adam")
    model.fit(binary_images, epochs=3, batch_size=16, verbose=0)  # away from the initialisation
    x = binary_images[:24]
    elbos = np.array([model.evaluate(x, batch_size=24, verbose=0, return_dict=True)["neg_elbo"] for _ in range(10)])
    runs = {s: np.stack([model.log_likelihood(x, num_samples=s, seed=r) for r in range(6)]) for s in (1, 10, 100)}
    ll = {s: float(v.mean()) for s, v in runs.items()}
    # standard error of each batch average: the Monte Carlo spread across seeds, per image
    se = {s: float(np.sqrt(v.var(axis=0, ddof=1).mean() / v.size)) for s, v in runs.items()}
    se_elbo = float(elbos.std(ddof=1) / np.sqrt(len(elbos)))
    tol = lambda *e: 4 * float(np.sqrt(sum(x * x for x in e))) + 1e-3  # noqa: E731
    if name in STRATIFIED:  # one z per y, summed: a tighter bound than the ELBO with one sample already
        assert ll[1] >= -elbos.mean() - tol(se[1], se_elbo)
    else:  # one sample: an unbiased estimate of the ELBO
        assert ll[1] == pytest.approx(-elbos.mean(), abs=tol(se[1], se_elbo))
    assert ll[100] >= -elbos.mean() - tol(se[100], se_elbo)
    assert ll[100] >= ll[10] - tol(se[100], se[10])
    assert ll[10] >= ll[1] - tol(se[10], se[1])


@pytest.mark.parametrize("name", sorted(tfmix.MODELS))
def test_same_seed_same_weights_after_training(name, binary_images):
    """On one device, the same seed gives the same weights after N steps."""
    import keras

    def run(seed=11):
        keras.utils.set_random_seed(seed)
        model = tiny_model(name, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        ds = tf.data.Dataset.from_tensor_slices(binary_images).batch(12)
        model.fit(ds, epochs=2, verbose=0)  # 8 steps
        return model.get_weights()

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    if name == "gmvae":  # and the seed matters (once: a third training per model costs CI time)
        assert any(not np.array_equal(a, b) for a, b in zip(first, run(12)))
