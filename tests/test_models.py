"""The shared public API, saving and distribution, for every model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmix
from conftest import tiny_model

ALL = sorted(tfmix.MODELS)


@pytest.mark.parametrize("name", ALL)
def test_public_api_shapes_and_probabilities(name, binary_images):
    model = tiny_model(name)
    x = binary_images[:10]
    probs = model.cluster_probs(x)
    assert probs.shape == (10, model.num_clusters)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert np.all(probs >= 0)
    assert model.encode(x).shape[0] == 10
    rec = model.reconstruct(x.reshape(10, -1))  # flat input accepted too
    assert rec.shape == (10, 28, 28, 1) and rec.min() >= 0 and rec.max() <= 1
    gen = model.generate(0, n=4, seed=3)
    assert gen.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(gen, model.generate(0, n=4, seed=3))
    assert not np.array_equal(gen, model.generate(0, n=4, seed=4))
    ll = model.log_likelihood(x, num_samples=4)
    assert ll.shape == (10,) and np.all(np.isfinite(ll)) and np.all(ll < 0)
    # model(x) is q(y|x) too (what `predict` returns)
    np.testing.assert_allclose(model.predict(x, verbose=0), probs, atol=1e-6)


@pytest.mark.parametrize("name", ["m2", "modified_m2", "gmvae"])
def test_generation_is_conditioned_on_the_cluster(name):
    """generate(c) decodes z ~ p(z | y = c) with the decoder given y = c."""
    # (the identity method: with ReLU and a 3-d latent two clusters of an
    # untrained model can both land in the dead zone and decode alike)
    model = tiny_model(name, **({"method": "identity"} if name == "modified_m2" else {}))
    K = model.num_clusters
    clusters = np.arange(K, dtype=np.int32)
    seed = tf.constant([7, 0], tf.int32)
    gen = model.generate(clusters, seed=7).reshape(K, -1)
    y1 = tf.one_hot(clusters, K)
    z = model.prior_z(y1).sample(seed=seed)
    expected = tf.sigmoid(model.decode_logits(z, y1)).numpy()
    np.testing.assert_allclose(gen, expected, atol=1e-6)
    # and the cluster matters: the K rows differ
    assert len({row.tobytes() for row in np.round(gen, 5)}) == K


def test_gmvae_generation_uses_the_cluster_prior():
    """With near-zero prior scales, generate(c) must decode exactly mu_c."""
    model = tiny_model("gmvae")
    model.prior_raw_scale.assign(np.full(model.prior_raw_scale.shape, -30.0, "float32"))
    gen = model.generate([2, 0], seed=0).reshape(2, -1)
    expected = tf.sigmoid(model.decoder(tf.gather(model.prior_loc, [2, 0]))).numpy()
    np.testing.assert_allclose(gen, expected, atol=1e-4)


def test_dilokthanakul_generation_uses_the_cluster_component():
    model = tiny_model("dilokthanakul_gmvae", w_dim=2)
    gen = model.generate(np.arange(4, dtype=np.int32), seed=5)
    assert len({g.tobytes() for g in np.round(gen, 5)}) == 4


@pytest.mark.parametrize("name", ALL)
def test_keras_round_trip_identical_outputs_and_optimizer_state(name, binary_images, tmp_path):
    model = tiny_model(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(binary_images, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    x = binary_images[:6]
    for fn in ("cluster_probs", "encode", "reconstruct"):
        np.testing.assert_array_equal(getattr(loaded, fn)(x), getattr(model, fn)(x))
    np.testing.assert_array_equal(loaded.generate(0, 3, seed=1), model.generate(0, 3, seed=1))
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fit_lowers_the_loss_on_real_digits():
    pytest.importorskip("tensorflow_datasets")
    from tfmix import data

    ds = data.load("mnist", "train[:400]", batch_size=50, seed=0)
    model = tfmix.GMVAE(num_clusters=10, latent_dim=8, hidden_units=(64,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    hist = model.fit(ds, epochs=6, verbose=0).history
    assert hist["loss"][-1] < hist["loss"][0] - 50
    for term in ("reconstruction", "kl_z", "kl_y", "neg_elbo"):
        assert term in hist


test_fit_lowers_the_loss_on_real_digits = pytest.mark.mnist_data(test_fit_lowers_the_loss_on_real_digits)


def test_semi_supervised_m2_uses_labels(binary_images):
    model = tiny_model("m2", labelled=True, classification_weight=5.0)
    model.compile(optimizer="adam")
    y = np.arange(len(binary_images)) % 4
    ds = tf.data.Dataset.from_tensor_slices(
        {"x": binary_images, "x_labelled": binary_images, "y_labelled": y}
    ).batch(16)
    hist = model.fit(ds, epochs=2, verbose=0).history
    for key in ("labelled_classification", "labelled_neg_elbo", "neg_elbo", "accuracy"):
        assert key in hist
    assert model.classify(binary_images[:5]).shape == (5,)
    with pytest.raises(ValueError, match="not trained with labels"):
        tiny_model("gmvae").classify(binary_images[:2])


MIRRORED_CHECK = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, tfmix
from tfmix import distributions as D

class DeterministicVAE(tfmix.GaussVAE):
    # q(z|x) with a negligible scale: the gradient no longer depends on the
    # sampling noise, so one step can be compared across strategies.
    def q_z(self, x):
        loc, _ = self.qz_head(self.encoder(x))
        return D.diag_gaussian(loc, 1e-6 * tf.ones_like(loc))

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = (rng.random((16, 28, 28, 1)) < 0.3).astype("float32")
# Keras initialises biases at 0, so an example whose encoder units are all
# inactive lands on z = 0, where every decoder ReLU sits at its kink and the
# 1e-6 noise decides the gradient. Random biases move every unit off its kink.
init = [w + 0.1 * rng.standard_normal(w.shape).astype("float32")
        for w in DeterministicVAE(hidden_units=(8,), latent_dim=2, seed=0).get_weights()]

def one_sgd_step(strategy):
    with strategy.scope():
        model = DeterministicVAE(hidden_units=(8,), latent_dim=2, seed=0)
        model.set_weights(init)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, epochs=1, batch_size=16, verbose=0, shuffle=False)
    return model.get_weights()

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
w_single, w_mirror = one_sgd_step(tf.distribute.get_strategy()), one_sgd_step(mirrored)
assert sum(np.abs(a - b).sum() for a, b in zip(w_single, init)) > 1e-3
for a, b in zip(w_single, w_mirror):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
print("MIRRORED-OK")
"""


def test_mirrored_strategy_matches_single_device(tmp_path):
    """Two replicas, each with half the batch: the loss divided by the
    number of replicas gives the same SGD step as one device on the batch.
    (A fresh process, so that no earlier test's TF state interferes.)"""
    import subprocess
    import sys

    script = tmp_path / "mirrored_check.py"
    script.write_text(MIRRORED_CHECK)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "MIRRORED-OK" in proc.stdout, proc.stderr[-3000:]


def test_mirrored_fit_of_a_mixture_model(binary_images, mirrored):
    with mirrored.scope():
        model = tiny_model("gmvae")
        model.compile(optimizer="adam")
    hist = model.fit(binary_images, epochs=2, batch_size=16, verbose=0).history
    assert np.all(np.isfinite(hist["loss"]))


@pytest.mark.parametrize(
    "bad, err, match",
    [
        (np.zeros((2, 27, 28, 1), "float32"), ValueError, "shape"),
        (np.zeros((0, 28, 28, 1), "float32"), ValueError, "empty"),
        (np.full((2, 28, 28, 1), 2.0, "float32"), ValueError, r"\[0, 1\]"),
        (np.full((2, 784), np.nan, "float32"), ValueError, "NaN"),
        (np.array([["a"] * 784]), TypeError, "dtype"),
    ],
)
def test_bad_images_give_clear_errors(bad, err, match):
    model = tiny_model("gmvae")
    with pytest.raises(err, match=match):
        model.cluster_probs(bad)


def test_bad_arguments_give_clear_errors():
    model = tiny_model("gmvae")
    with pytest.raises(ValueError, match="cluster"):
        model.generate(4, n=2)
    with pytest.raises(ValueError, match="num_clusters"):
        tfmix.GMVAE(num_clusters=0)
    with pytest.raises(ValueError, match="method"):
        tfmix.ModifiedM2(method="bogus")
    with pytest.raises(ValueError, match="unknown model"):
        tfmix.get_model_class("nope")
    with pytest.raises(ValueError, match="labels"):
        tfmix.GaussVAE(labelled=True)


@pytest.mark.parametrize("name", ALL)
def test_trains_under_mixed_bfloat16(name, binary_images):
    """Hidden layers in bfloat16, heads and every density in float32."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = tiny_model(name)
        assert model.decoder.dtype_policy.compute_dtype == "bfloat16"
        model.compile(optimizer="adam")
        hist = model.fit(binary_images, epochs=1, batch_size=24, verbose=0).history
        assert np.isfinite(hist["loss"][-1])
        probs = model.cluster_probs(binary_images[:4])
        assert probs.dtype == np.float32 and np.allclose(probs.sum(-1), 1, atol=1e-3)
        assert all(w.dtype == "float32" for w in model.weights)
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name", ALL)
def test_decoder_logits_in_the_compute_dtype(name, binary_images):
    """`decoder_logits_dtype="compute"` (what `--dtype-policy
    mixed_bfloat16_logits` builds): under mixed_bfloat16 the decoder's
    output layer computes in bfloat16 (the default keeps it in float32) and
    the logits reach the likelihood as float32; under float32 the two
    settings are the same model (the same logits and -ELBO for the same
    weights); the setting survives get_config and a .keras round trip."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        fp32_head, bf16_head = tiny_model(name), tiny_model(name, decoder_logits_dtype="compute")
        assert fp32_head.decoder.logits.compute_dtype == "float32"
        assert bf16_head.decoder.logits.compute_dtype == "bfloat16"
        bf16_head.compile(optimizer="adam")
        hist = bf16_head.fit(binary_images, epochs=1, batch_size=24, verbose=0).history
        assert np.isfinite(hist["loss"][-1])
        h = keras.ops.zeros((3, bf16_head.decoder.logits.kernel.shape[0]), "bfloat16")
        assert keras.ops.convert_to_numpy(bf16_head.decoder.logits(h)).dtype != np.float32  # bfloat16 out of the layer
        terms = bf16_head._objective(tf.reshape(binary_images[:8], [8, -1]), training=False)[1]
        assert terms["neg_elbo"].dtype == tf.float32
    finally:
        keras.config.set_dtype_policy("float32")
    a, b = tiny_model(name), tiny_model(name, decoder_logits_dtype="compute")
    b.set_weights(a.get_weights())
    x = tf.reshape(binary_images[:8], [8, -1])
    np.testing.assert_array_equal(a.log_importance_weights(x, 4, tf.constant([1, 2])).numpy(),
                                  b.log_importance_weights(x, 4, tf.constant([1, 2])).numpy())
    assert b.get_config()["decoder_logits_dtype"] == "compute"
    assert type(b).from_config(b.get_config()).decoder.logits_dtype == "compute"
    with pytest.raises(ValueError, match="`logits_dtype` must be one of"):
        tiny_model(name, decoder_logits_dtype="bfloat16")


@pytest.mark.parametrize("name", ALL)
def test_trains_with_xla(name, binary_images):
    """jit_compile=True (XLA) gives the same loss as the eager-graph step for
    the same weights.

    XLA draws other numbers from the same stateless seeds, so the two
    estimates differ by sampling noise, made small by averaging over 480
    images. The initial weights are seeded: for some initialisations the
    untrained tiny CaGeM's one-sample KL_z1 is heavy-tailed (94 vs 126 nats
    on these 480 images for one of them), which made the unseeded test flaky.
    """
    keras.utils.set_random_seed(0)
    x = np.tile(binary_images, (10, 1, 1, 1))
    losses, initial = [], None
    for jit in (False, True):
        model = tiny_model(name)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
        model.evaluate(x[:24], batch_size=24, verbose=0)  # builds the model
        if initial is None:
            initial = model.get_weights()
        else:
            model.set_weights(initial)
        losses.append(model.evaluate(x, batch_size=24, verbose=0, return_dict=True)["neg_elbo"])
        hist = model.fit(binary_images, epochs=1, batch_size=24, verbose=0).history
        assert np.isfinite(hist["loss"][-1])
    assert losses[0] == pytest.approx(losses[1], rel=0.01)


def test_dilokthanakul_free_bits_default_to_the_authors_lambda(binary_images):
    """lambda = 0.5 (Nat-D/GMVAE main.lua): the minimised loss holds
    max(0.5, mean kl_y), so the z-prior term has no gradient below it."""
    import tensorflow as tf

    from conftest import tiny_model

    model = tiny_model("dilokthanakul_gmvae")
    assert model.threshold == 0.5
    x = tf.constant(binary_images[:6].reshape(6, -1))
    t = model.unlabelled_terms(x)
    want = t["reconstruction"] + t["kl_w"] + t["kl_z"] + np.maximum(0.5, np.mean(t["kl_y"]))
    np.testing.assert_allclose(t["loss"], want, rtol=1e-5)
    np.testing.assert_allclose(t["neg_elbo"], t["reconstruction"] + t["kl_w"] + t["kl_z"] + t["kl_y"], rtol=1e-5)


def test_conditional_mlp_starts_as_one_glorot_layer_on_x_and_y():
    """The split first layer (W_x x + W_y y) is initialised as Keras's
    glorot_uniform initialises a Dense layer on the concatenation [x, y]
    (the authors' layer): both parts uniform in +-sqrt(6 / (D_x + K + units)).
    Seen failing with the y part initialised by glorot_uniform on its own
    (K, units) shape, 1.6x wider."""
    import math

    import keras

    from tfmix.networks import ConditionalMLP

    keras.utils.set_random_seed(3)
    net = ConditionalMLP((512, 64), num_classes=10)
    net.build((None, 784))
    limit = math.sqrt(6.0 / (784 + 10 + 512))
    for w in (net.x_proj.kernel, net.y_proj):
        w = np.asarray(w)
        assert np.abs(w).max() <= limit
        np.testing.assert_allclose(w.std(), limit / math.sqrt(3.0), rtol=0.05)
    assert net.rest.dense_layers[0].kernel.shape == (512, 64)  # the layers after the first keep their own init
