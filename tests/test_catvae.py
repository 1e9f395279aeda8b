"""CatVAE / InfoCatVAE: the fixed prior and the information term."""

import numpy as np
import pytest
import tensorflow as tf

import tfmix
from conftest import tiny_model


def test_prior_means_are_orthogonal_equidistant_blocks():
    model = tfmix.CatVAE(num_clusters=5, delta=3, prior_scale=2.0, hidden_units=(8,))
    mu = model.prior_means()
    assert mu.shape == (5, 15) and model.latent_dim == 15
    np.testing.assert_allclose(mu @ mu.T, 4.0 * 3 * np.eye(5))  # orthogonal, norm^2 = lambda^2 delta
    np.testing.assert_array_equal(mu[2, 6:9], [2.0, 2.0, 2.0])
    d = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
    assert np.allclose(d[~np.eye(5, dtype=bool)], d[0, 1])  # equidistant
    prior = model.prior_z()
    np.testing.assert_array_equal(prior.stddev().numpy(), np.ones((5, 15)))


def test_info_term_is_the_hard_cross_entropy_of_stratified_prior_samples():
    """The default (the authors' code): every category equally often,
    z ~ N(mu_c, I) exactly, -log q(c|x~). Catches a relaxed or blended
    code, a soft target and a sampler that skips categories."""
    model = tiny_model("infocatvae", info_weight=3.0)  # K = 4, 8 samples: 2 per category
    seed = tf.constant([5, 6])
    c = model.info_codes(seed).numpy()
    np.testing.assert_array_equal(c, np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]])
    info = model.info_term(seed).numpy()
    z = model.prior_means()[[0, 1, 2, 3, 0, 1, 2, 3]] + tf.random.stateless_normal(
        [8, 4], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    x_gen = tf.sigmoid(model.decoder(z))
    log_q = tf.nn.log_softmax(model.cluster_logits(x_gen)).numpy()
    np.testing.assert_allclose(info, -log_q[np.arange(8), [0, 1, 2, 3, 0, 1, 2, 3]], rtol=1e-5)
    # exact N(mu_c, I): the latents of many samples of category c centre on mu_c with unit spread
    big = tiny_model("infocatvae", info_samples=4000)
    z = tf.matmul(big.info_codes(seed), tf.constant(big.prior_means())) + tf.random.stateless_normal([4000, 4], seed=seed)
    np.testing.assert_allclose(z.numpy()[0::4].mean(0), big.prior_means()[0], atol=0.1)
    with pytest.raises(ValueError, match="info_samples"):
        tiny_model("infocatvae", info_samples=3)


def test_relaxed_info_term_is_the_soft_cross_entropy_of_gumbel_softmax_codes():
    model = tiny_model("infocatvae", info_weight=3.0, info_sampling="relaxed")
    seed = tf.constant([5, 6])
    info = model.info_term(seed).numpy()
    c = tfmix.models.catvae.D.tfd.RelaxedOneHotCategorical(model.temperature, logits=tf.zeros([8, 4])).sample(seed=seed)
    z = c @ model.prior_means() + tf.random.stateless_normal([8, 4], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    x_gen = tf.sigmoid(model.decoder(z))
    expected = -tf.reduce_sum(c * tf.nn.log_softmax(model.cluster_logits(x_gen)), -1).numpy()
    np.testing.assert_allclose(info, expected, rtol=1e-5)
    assert np.all(np.abs(c.numpy().sum(-1) - 1) < 1e-5) and c.numpy().max() < 1.0  # relaxed one-hot
    assert tfmix.InfoCatVAE.from_config(model.get_config()).info_sampling == "relaxed"
    with pytest.raises(ValueError, match="info_sampling"):
        tiny_model("infocatvae", info_sampling="gumbel")


def test_info_input_probabilities_is_the_authors_cross_entropy_of_the_probabilities():
    """`info_input="probabilities"`: PyTorch's `F.cross_entropy` applied to
    q(c|x~) itself (a softmax of the probabilities), as the authors' code
    does; bounded below by log(1 + (K - 1) / e), where -log q(c|x~) is not."""
    model = tiny_model("infocatvae", info_input="probabilities")  # K = 4
    seed = tf.constant([5, 6])
    codes = [0, 1, 2, 3, 0, 1, 2, 3]
    z = model.prior_means()[codes] + tf.random.stateless_normal(
        [8, 4], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    q = tf.nn.softmax(model.cluster_logits(tf.sigmoid(model.decoder(z))))
    expected = -tf.nn.log_softmax(q).numpy()[np.arange(8), codes]
    info = model.info_term(seed).numpy()
    np.testing.assert_allclose(info, expected, rtol=1e-5)
    assert np.all(info >= np.log(1 + 3 / np.e) - 1e-6)
    logits_model = tiny_model("infocatvae")
    logits_model.set_weights(model.get_weights())
    assert not np.allclose(logits_model.info_term(seed).numpy(), info)
    assert tfmix.InfoCatVAE.from_config(model.get_config()).info_input == "probabilities"
    assert tfmix.InfoCatVAE(hidden_units=(8,)).info_input == "logits"
    with pytest.raises(ValueError, match="info_input"):
        tiny_model("infocatvae", info_input="softmax")
    departures = tfmix.InfoCatVAE.reference_departures
    assert any("F.cross_entropy" in d for d in departures({}))
    assert not any("F.cross_entropy" in d for d in departures({"info_input": "probabilities"}))


def test_default_information_weight_is_the_authors_per_image():
    # their 100 x mean cross-entropy beside a loss summed over 128 images
    assert tfmix.InfoCatVAE(hidden_units=(8,)).info_weight == pytest.approx(100 / 128)


def test_infocatvae_loss_adds_the_weighted_information_term(binary_images):
    model = tiny_model("infocatvae", info_weight=3.0)
    terms = model.unlabelled_terms(tf.constant(binary_images[:5].reshape(5, -1)))
    np.testing.assert_allclose(terms["loss"].numpy(), (terms["neg_elbo"] + 3.0 * terms["info"]).numpy(), rtol=1e-6)
    model.compile(optimizer="adam")
    hist = model.fit(binary_images, epochs=1, batch_size=16, verbose=0).history
    assert "info" in hist and np.isfinite(hist["loss"][-1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="delta"):
        tfmix.CatVAE(delta=0)
    with pytest.raises(ValueError, match="latent_dim"):
        tfmix.CatVAE(num_clusters=3, delta=2, latent_dim=5)
    with pytest.raises(ValueError, match="temperature"):
        tfmix.InfoCatVAE(temperature=0)
    with pytest.raises(ValueError, match="kl_weight"):
        tfmix.CatVAE(kl_weight=0)


def test_kl_weight_scales_both_kls_in_the_loss_only(binary_images):
    x = tf.constant(binary_images[:6].reshape(6, -1))
    plain = tiny_model("catvae")
    heavy = tiny_model("catvae", kl_weight=10.0)
    heavy.set_weights(plain.get_weights())
    t1, t10 = plain.unlabelled_terms(x), heavy.unlabelled_terms(x)
    assert "loss" not in t1  # beta = 1: the loss is the -ELBO
    np.testing.assert_allclose(t10["neg_elbo"].numpy(), t1["neg_elbo"].numpy(), rtol=1e-5)
    expected = t1["reconstruction"] + 10.0 * (t1["kl_z"] + t1["kl_y"])
    np.testing.assert_allclose(t10["loss"].numpy(), expected.numpy(), rtol=1e-5)
    info = tiny_model("infocatvae", kl_weight=10.0, info_weight=2.0)
    t = info.unlabelled_terms(x)
    np.testing.assert_allclose(
        t["loss"].numpy(), (t["reconstruction"] + 10.0 * (t["kl_z"] + t["kl_y"]) + 2.0 * t["info"]).numpy(), rtol=1e-5)
    assert tfmix.CatVAE.from_config(heavy.get_config()).kl_weight == 10.0


def test_traversal_and_centroid_path_decode_the_prior_geometry():
    model = tiny_model("catvae", delta=2, prior_scale=1.5)
    mu = model.prior_means()
    trav = model.traversal(steps=4, max_scale=3.0).reshape(4, 4, 8)
    np.testing.assert_allclose(trav[2, 0], 0.0)  # t = 0: the origin
    np.testing.assert_allclose(trav[2, -1], 3.0 * mu[2])  # t = 3: three times mu_2
    np.testing.assert_allclose(trav[1, 1], mu[1])  # t = 1: the prior mean
    path = model.centroid_path(steps=5).reshape(4, 5, 8)
    np.testing.assert_allclose(path[3, 0], mu[3])
    np.testing.assert_allclose(path[3, -1], mu[0])  # wraps around to mu_0
    np.testing.assert_allclose(path[0, 2], (mu[0] + mu[1]) / 2)
    images = model.decode(path.reshape(-1, 8))
    assert images.shape == (20, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_allclose(
        images[:1].reshape(1, -1), tf.sigmoid(model.decoder(tf.constant(mu[:1]))).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"`z` must have shape \[N, 8\]"):
        model.decode(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(np.full((1, 8), np.nan))


@pytest.mark.parametrize("name", ["catvae", "infocatvae"])
def test_generation_follows_p_x_given_c(name):
    """generate(c) is E[x|z] with z ~ N(mu_c, I): the same seed with
    different categories gives different images, and the mean image of
    many samples of category c matches an independent NumPy estimate of
    E_{z ~ N(mu_c, I)}[E[x|z]] (within 6 standard errors per pixel) and not
    that of the next category (a sampler that ignores c, blends the means
    or takes another block fails)."""
    model = tiny_model(name, prior_scale=3.0)
    K, n = model.num_clusters, 3000
    same_seed = model.generate(np.arange(K, dtype=np.int32), seed=11).reshape(K, -1)
    assert len({row.tobytes() for row in np.round(same_seed, 5)}) == K
    rng = np.random.default_rng(3)
    mu = model.prior_means()
    refs, ses = [], []
    for c in range(K):
        z = mu[c] + rng.standard_normal((n, model.latent_dim)).astype("float32")
        ref = tf.sigmoid(model.decoder(tf.constant(z))).numpy()
        refs.append(ref.mean(0))
        ses.append(ref.std(0) / np.sqrt(n))
    for c in range(K):
        gen = model.generate(c, n=n, seed=c).reshape(n, -1)
        se = np.hypot(gen.std(0) / np.sqrt(n), ses[c])
        assert np.all(np.abs(gen.mean(0) - refs[c]) < 6 * se + 1e-6), f"category {c} is not p(x|c)"
        other = (c + 1) % K
        assert np.any(np.abs(gen.mean(0) - refs[other]) > 6 * np.hypot(se, ses[other])), "categories alike"


def test_dropout_acts_in_training_passes_only_with_one_mask_per_site(binary_images):
    x = tf.constant(binary_images[:6].reshape(6, -1))
    plain = tiny_model("infocatvae")
    drop = tiny_model("infocatvae", dropout=0.25)
    drop.set_weights(plain.get_weights())
    # evaluation (and any call outside a training pass) is deterministic and dropout-free
    h = tf.ones([6, 16])
    assert drop._drop(h, "encoder") is h
    for a, b in zip(plain.unlabelled_terms(x).values(), drop.unlabelled_terms(x).values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    masks = {}

    def capture(_, training):
        masks["enc"] = drop._drop(h, "encoder").numpy()
        masks["enc_again"] = drop._drop(h, "encoder").numpy()
        masks["dec"] = drop._drop(h, "decoder").numpy()
        return {}

    drop._training_pass(capture, None, True)
    kept = masks["enc"] != 0
    assert 0.6 < kept.mean() < 0.9  # about 75% kept
    np.testing.assert_allclose(masks["enc"][kept], 1 / 0.75, rtol=1e-6)  # the rest scaled up
    np.testing.assert_array_equal(masks["enc"], masks["enc_again"])  # q(c|x) and q(z|x,c) share h(x)'s mask
    assert (masks["dec"] != masks["enc"]).any()
    drop._training_pass(lambda *_: {}, None, False)
    assert drop._dropout_key is None
    assert tfmix.InfoCatVAE.from_config(drop.get_config()).dropout == 0.25
    with pytest.raises(ValueError, match="dropout"):
        tfmix.CatVAE(dropout=1.0)


def test_dropout_training_is_deterministic_given_the_seed_and_changes_the_updates(binary_images):
    def trained(**kw):
        model = tiny_model("infocatvae", **kw)
        model.set_weights(start)
        model.compile(optimizer="adam")
        model.fit(binary_images, epochs=1, batch_size=16, shuffle=False, verbose=0)
        return np.concatenate([w.numpy().ravel() for w in model.weights])

    start = tiny_model("infocatvae").get_weights()
    a, b, none = trained(dropout=0.25), trained(dropout=0.25), trained()
    np.testing.assert_array_equal(a, b)  # stateless masks: a resumed run draws the same ones
    assert np.abs(a - none).max() > 1e-4
