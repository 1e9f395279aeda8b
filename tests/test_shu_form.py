"""Rui Shu's parameterisation of the marginal models (`RuiShu/vae-clustering`
`shared_subgraphs.py`, `gmvae.py`): the softplus outputs are variances
(`softplus_on="variance"`) and training estimates KL(q(z|x,y) || p(z|y))
by the one-sample log-ratio at the decoded z (`kl_estimator="sample"`).

What they catch (each seen failing on a broken copy): a head that still
treats the softplus as the standard deviation; a GMVAE prior that ignores
the option; a sampled KL taken at a fresh z instead of the decoded one
(its mean is still the KL, but not the same draw: the per-draw identity
below fails); a sampled KL in evaluation."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from tfmix import distributions as D
from tfmix.networks import GaussianHead
from test_elbo_terms import bernoulli_loglik, check_all, model_terms, sharpen_q_y

SHU = dict(kl_estimator="sample", softplus_on="variance")


def test_positive_scale_reads_the_softplus_as_scale_or_variance():
    raw = tf.constant([-30.0, -2.0, 0.0, 3.0])
    sp = np.log1p(np.exp(raw.numpy()))
    np.testing.assert_allclose(D.positive_scale(raw, "scale").numpy(), sp + D.MIN_SCALE, rtol=1e-6)
    np.testing.assert_allclose(D.positive_scale(raw, "variance").numpy() ** 2, sp + D.MIN_SCALE ** 2, rtol=1e-5)
    assert D.positive_scale(raw, "variance").numpy().min() >= D.MIN_SCALE * 0.999  # floored, finite
    with pytest.raises(ValueError, match="softplus_on"):
        D.positive_scale(raw, "std")


def test_gaussian_head_with_variance_and_its_config():
    head = GaussianHead(3, softplus_on="variance")
    h = tf.random.stateless_normal((5, 4), seed=(1, 2))
    loc, scale = head(h)
    raw = head.raw_scale(h).numpy()
    np.testing.assert_allclose(scale.numpy() ** 2, np.log1p(np.exp(raw)) + D.MIN_SCALE ** 2, rtol=1e-5)
    assert GaussianHead.from_config(head.get_config()).softplus_on == "variance"
    with pytest.raises(ValueError, match="softplus_on"):
        GaussianHead(3, softplus_on="sd")


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae", "catvae"])
def test_every_marginal_model_passes_the_form_to_its_head_and_names_bad_options(name):
    assert tiny_model(name, softplus_on="variance").qz_head.softplus_on == "variance"
    with pytest.raises(ValueError, match="kl_estimator"):
        tiny_model(name, kl_estimator="mc")
    with pytest.raises(ValueError, match="softplus_on"):
        tiny_model(name, softplus_on="std")


def test_gmvae_prior_takes_the_variance_form():
    model = tiny_model("gmvae", **SHU)
    raw = model.prior_raw_scale.numpy()
    np.testing.assert_allclose(model.prior_z().variance().numpy(), np.log1p(np.exp(raw)) + D.MIN_SCALE ** 2,
                               rtol=1e-5)
    clone = type(model).from_config(model.get_config())
    assert (clone.kl_estimator, clone.softplus_on) == ("sample", "variance")


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae", "catvae"])
def test_sampled_kl_is_the_log_ratio_at_the_decoded_z(name, binary_images):
    """In training, with the same noise, kl_z (sample) = log q(z|x,y) -
    log p(z|y) at the z whose reconstruction is reported: the
    reconstruction is the analytic model's, draw for draw, and the mean of
    the sampled KL over draws is the analytic KL. Evaluation is analytic."""
    shu, ref = tiny_model(name, kl_estimator="sample"), tiny_model(name)
    sharpen_q_y(shu)
    ref.set_weights(shu.get_weights())
    x = tf.constant(binary_images[:3].reshape(3, -1))
    seed = tf.constant([7, 11], tf.int32)
    for m in (shu, ref):
        m._noise_seed = lambda: seed  # the same draw in both models
    a, b = shu.unlabelled_terms(x, training=True), ref.unlabelled_terms(x, training=True)
    np.testing.assert_allclose(a["reconstruction"], b["reconstruction"], rtol=1e-5)
    assert np.abs(a["kl_z"].numpy() - b["kl_z"].numpy()).max() > 1e-3  # one draw, not the closed form
    qz = shu.q_z(x)
    z = qz.sample(seed=seed)  # the draw unlabelled_terms decoded
    probs = tf.nn.softmax(shu.cluster_logits(x), -1)
    log_ratio = qz.log_prob(z) - shu.prior_z().log_prob(z)  # [B, K]
    np.testing.assert_allclose(a["kl_z"], tf.reduce_sum(probs * log_ratio, -1), rtol=1e-4, atol=1e-4)
    e_a, e_b = shu.unlabelled_terms(x, training=False), ref.unlabelled_terms(x, training=False)
    np.testing.assert_allclose(e_a["kl_z"], e_b["kl_z"], rtol=1e-6)
    y = tf.constant([0, 1, 2])
    la, lb = shu.labelled_terms(x, y, training=True), ref.labelled_terms(x, y, training=True)
    np.testing.assert_allclose(la["reconstruction"], lb["reconstruction"], rtol=1e-5)
    assert np.abs(la["kl_z"].numpy() - lb["kl_z"].numpy()).max() > 1e-3


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae"])
def test_each_training_term_of_shus_form(name, binary_images):
    """Shu's form in training: every term against its own independent Monte
    Carlo estimate (`test_elbo_terms.py`), with the model's own variances."""
    from scipy.special import log_softmax
    from scipy.stats import norm

    model = tiny_model(name, **SHU)
    sharpen_q_y(model)
    x = binary_images[:3].reshape(3, -1)
    K, Dz = model.num_clusters, model.latent_dim
    rng = np.random.default_rng(12)
    terms = model_terms(model, lambda: model.unlabelled_terms(tf.constant(x), training=True),
                        ["neg_elbo", "reconstruction", "kl_z", "kl_y"])
    log_qy = log_softmax(model.cluster_logits(x).numpy(), -1)
    qz = model.q_z(x)
    loc, scale = qz.loc.numpy(), qz.stddev().numpy()
    prior = model.prior_z()
    p_loc, p_scale = (np.broadcast_to(v.numpy(), (K, Dz)) for v in (prior.mean(), prior.stddev()))
    for b in range(len(x)):
        y = rng.choice(K, size=20000, p=np.exp(log_qy[b]))
        z = loc[b, y] + scale[b, y] * rng.standard_normal((20000, Dz))
        logits = model.decode_logits(tf.constant(z, tf.float32), tf.constant(np.eye(K)[y], tf.float32)).numpy()
        check_all(terms, {
            "reconstruction": -bernoulli_loglik(x[b], logits),
            "kl_z": norm.logpdf(z, loc[b, y], scale[b, y]).sum(-1) - norm.logpdf(z, p_loc[y], p_scale[y]).sum(-1),
            "kl_y": log_qy[b, y] - np.log(1.0 / K),
        }, b)


def test_gmvae_prior_bias_is_a_dense_layer_on_the_one_hot_y():
    """`prior_bias=True`: p(z|y)'s mean and raw scale are W y + b, as Shu's
    dense layer on the one-hot y computes them, for one-hot and soft y and
    for the K components at once; b starts at zero, so the prior starts as
    the table's (catches a bias left out of either parameter or of one of
    the two paths of `prior_z`, and a config that drops the option)."""
    model = tiny_model("gmvae", prior_bias=True)
    assert not model.prior_loc_bias.numpy().any() and not model.prior_raw_scale_bias.numpy().any()
    rng = np.random.default_rng(0)
    b_loc = rng.normal(size=model.prior_loc_bias.shape).astype("float32")
    b_raw = rng.normal(size=model.prior_raw_scale_bias.shape).astype("float32")
    model.prior_loc_bias.assign(b_loc)
    model.prior_raw_scale_bias.assign(b_raw)
    W_loc, W_raw = model.prior_loc.numpy(), model.prior_raw_scale.numpy()
    K = W_loc.shape[0]
    y = np.concatenate([np.eye(K), rng.dirichlet(np.ones(K), size=2)]).astype("float32")
    for prior, onehot in ((model.prior_z(tf.constant(y)), y), (model.prior_z(), np.eye(K, dtype="float32"))):
        np.testing.assert_allclose(prior.mean().numpy(), onehot @ W_loc + b_loc, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prior.stddev().numpy(), np.log1p(np.exp(onehot @ W_raw + b_raw)) + D.MIN_SCALE,
                                   rtol=1e-5)
    clone = type(model).from_config(model.get_config())
    assert clone.prior_bias is True and tiny_model("gmvae").prior_bias is False
    assert len(model.trainable_weights) == len(tiny_model("gmvae").trainable_weights) + 2
    with pytest.raises(ValueError, match="prior_bias"):
        tiny_model("gmvae", prior_bias="yes")
