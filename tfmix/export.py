"""SavedModel export with TF Serving signatures (`keras.export.ExportArchive`).

Every signature has the method `tensorflow/serving/predict`; images are
`x`: float32 `[None, 28, 28, 1]` in [0, 1].

| signature | inputs | outputs |
|---|---|---|
| `serving_default` = `cluster` | `x` | `probs` [N, K], `cluster` [N] int64 |
| `encode` | `x` | `z_mean` [N, D] |
| `reconstruct` | `x` | `x_mean` [N, 28, 28, 1] |
| `generate` | `cluster` [N] int32, `seed` [2] int32 | `x_mean` [N, 28, 28, 1] |
| `log_likelihood` | `x` | `log_px` [N] (S importance samples, fixed at export) |
| `classify` (models trained with labels) | `x` | `probs` [N, K], `label` [N] int64 |

Inputs are validated inside the graph: an empty batch, NaN/Inf, values
outside [0, 1] or a cluster index out of range fail with an
InvalidArgument error whose message names the problem. The export is
atomic: written to a temporary directory beside `out` and renamed.

Example:
>>> export_saved_model(model, "export/gmvae", ll_samples=100)  # doctest: +SKIP
>>> served = tf.saved_model.load("export/gmvae")  # doctest: +SKIP
>>> served.signatures["cluster"](x=images)["probs"]  # doctest: +SKIP
"""

import tensorflow as tf

from tfmix.utils import atomic_directory

SIGNATURES = ("cluster", "encode", "reconstruct", "generate", "log_likelihood", "classify")
#: Samples per chunk inside the log_likelihood signature (memory bound).
LL_CHUNK = 25


def signature_names(model):
    """The signatures a model exports (`classify` only if trained with labels)."""
    return [s for s in SIGNATURES if s != "classify" or model.labelled]


def _checked_images(model, x):
    shape = list(model.image_shape)
    message = f"x: images must have shape [N, {', '.join(map(str, shape))}]"
    rank_check = tf.debugging.assert_rank(x, len(shape) + 1, message=message)
    shape_check = tf.debugging.assert_equal(tf.shape(x)[1:], tf.constant(shape, tf.int32), message=message)
    with tf.control_dependencies([rank_check, shape_check]):
        x = tf.identity(x)
    checks = [
        tf.debugging.assert_positive(tf.shape(x)[0], message="x: empty batch"),
        tf.debugging.assert_all_finite(x, "x: contains NaN or Inf"),
        tf.debugging.assert_greater_equal(
            tf.reduce_min(x), 0.0, message="x: pixel values must be in [0, 1], found a value < 0"
        ),
        tf.debugging.assert_less_equal(
            tf.reduce_max(x), 1.0, message="x: pixel values must be in [0, 1], found a value > 1"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.reshape(tf.identity(x), [-1, model.data_dim])


def _checked_clusters(model, cluster):
    K = model.num_clusters
    checks = [
        tf.debugging.assert_positive(tf.size(cluster), message="cluster: empty batch"),
        tf.debugging.assert_non_negative(cluster, message="cluster: index < 0"),
        tf.debugging.assert_less(
            cluster, tf.constant(K, cluster.dtype),
            message=f"cluster: index out of range, the model has {K} clusters (0..{K - 1})",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(cluster)


def serving_functions(model, ll_samples=100):
    """{signature name: (fn, input_signature)} for `model`."""
    shape = [None] + list(model.image_shape)
    x_spec = [tf.TensorSpec(shape, tf.float32, name="x")]
    image_shape = [-1] + list(model.image_shape)
    ll_samples = int(ll_samples)
    if ll_samples < 1:
        raise ValueError(f"`ll_samples` must be >= 1, got {ll_samples}")

    def cluster(x):
        probs = tf.nn.softmax(tf.cast(model.cluster_logits(_checked_images(model, x)), tf.float32), -1)
        return {"probs": probs, "cluster": tf.argmax(probs, -1)}

    def encode(x):
        return {"z_mean": tf.cast(model.encode_mean(_checked_images(model, x)), tf.float32)}

    def reconstruct(x):
        out = model.reconstruct_mean(_checked_images(model, x))
        return {"x_mean": tf.reshape(tf.cast(out, tf.float32), image_shape)}

    def generate(cluster, seed):
        # the sampler only ever sees seed[:2]; the output waits for the
        # check, so a seed of the wrong shape fails with this message
        check = tf.debugging.assert_equal(tf.size(seed), 2, message="seed: must have shape [2]")
        out = model.generate_mean(_checked_clusters(model, cluster), tf.reshape(seed[:2], [2]))
        with tf.control_dependencies([check]):
            return {"x_mean": tf.reshape(tf.cast(out, tf.float32), image_shape)}

    def log_likelihood(x):
        flat = _checked_images(model, x)
        base = tf.constant([0, 0], tf.int32)

        def one(xi):
            parts = []
            for i, s in enumerate(range(0, ll_samples, LL_CHUNK)):
                n = min(LL_CHUNK, ll_samples - s)
                seed = tf.random.experimental.stateless_fold_in(base, i)
                w = model.log_importance_weights(xi[None], n, seed)
                parts.append(tf.reduce_logsumexp(tf.cast(w, tf.float32), -1))
            lse = tf.reduce_logsumexp(tf.stack(parts, 0), 0)[0]
            return lse - tf.math.log(float(ll_samples))

        return {"log_px": tf.map_fn(one, flat, fn_output_signature=tf.float32)}

    def classify(x):
        out = cluster(x)
        return {"probs": out["probs"], "label": out["cluster"]}

    fns = {
        "cluster": (cluster, x_spec),
        "encode": (encode, x_spec),
        "reconstruct": (reconstruct, x_spec),
        "generate": (
            generate,
            [tf.TensorSpec([None], tf.int32, name="cluster"), tf.TensorSpec([None], tf.int32, name="seed")],
        ),
        "log_likelihood": (log_likelihood, x_spec),
        "classify": (classify, x_spec),
    }
    return {name: fns[name] for name in signature_names(model)}


def export_saved_model(model, out, ll_samples=100, overwrite=False):
    """Writes `model` as a SavedModel with the serving signatures, atomically.

    Returns the list of signature names. `out` must not exist unless
    `overwrite`; nothing is left half-written on failure.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    fns = serving_functions(model, ll_samples)
    archive.add_endpoint("serving_default", *fns["cluster"])
    for name, (fn, spec) in fns.items():
        archive.add_endpoint(name, fn, spec)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
    return ["serving_default"] + list(fns)
