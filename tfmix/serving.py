"""TF Serving bundles: model directories that `tensorflow_model_server`
loads as they are (`tfmix export ... --serving-bundle DIR`).

A bundle is `DIR/<name>/<version>/` (saved_model.pb, variables/) with
`assets.extra/tf_serving_warmup_requests`: a TFRecord of
`tensorflow.serving.PredictionLog` records, one valid `PredictRequest` per
signature, which TF Serving replays when it loads the version so that the
first real request does not pay for the graph's warm-up. The requests are
built from the SavedModel's own signatures (blank images for `x`, cluster
0 and seed [0, 0] for `generate`) and checked by replaying them through the
SavedModel before the version is moved into place. With several models,
`DIR/models.config` lists them for `--model_config_file`.

Example:
>>> write_bundle("zoo/gmvae_mnist/saved_model", "bundle", "gmvae_mnist")  # doctest: +SKIP
>>> write_models_config("bundle", ["gmvae_mnist"])  # doctest: +SKIP

    docker run -p 8501:8501 -v "$PWD/bundle:/models" tensorflow/serving \\
        --model_config_file=/models/models.config
"""

import os
import shutil

import numpy as np

from tfmix.utils import atomic_directory, atomic_path

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: images in each warm-up request
WARMUP_BATCH = 2


def _example_input(spec):
    """A valid value for one signature input, from its TensorSpec."""
    if spec.name == "seed":
        return np.zeros([2], np.int32)
    if spec.name == "cluster":
        return np.zeros([1], spec.dtype.as_numpy_dtype)
    shape = [WARMUP_BATCH if d is None else d for d in spec.shape.as_list()]
    return np.zeros(shape, spec.dtype.as_numpy_dtype)  # blank images: valid pixel values


def warmup_requests(saved_model_dir, model_name):
    """[PredictionLog], one PredictRequest per signature of the SavedModel."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    served = tf.saved_model.load(saved_model_dir)
    logs = []
    for name in sorted(served.signatures):
        _, specs = served.signatures[name].structured_input_signature
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = name
        for key, spec in sorted(specs.items()):
            request.inputs[key].CopyFrom(tf.make_tensor_proto(_example_input(spec)))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def read_warmup(path):
    """The PredictionLog records of a warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def replay(saved_model_dir, logs):
    """Runs every warm-up request through the SavedModel; returns
    {signature: {output: shape}}; raises if a signature is missing or an
    output is not finite."""
    import tensorflow as tf

    served = tf.saved_model.load(saved_model_dir)
    shapes = {}
    for log in logs:
        request = log.predict_log.request
        name = request.model_spec.signature_name
        if name not in served.signatures:
            raise ValueError(f"warm-up request for signature {name!r}, which the SavedModel does not have")
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = served.signatures[name](**inputs)
        for key, value in outputs.items():
            if value.dtype.is_floating and not np.all(np.isfinite(value.numpy())):
                raise ValueError(f"signature {name!r} output {key!r} is not finite on its warm-up request")
        shapes[name] = {k: tuple(v.shape) for k, v in outputs.items()}
    return shapes


def write_bundle(saved_model_dir, bundle_dir, name, version=1, overwrite=False):
    """Copies a SavedModel to `bundle_dir/name/version/` with its warm-up
    requests (checked by replaying them), in one rename. Returns the
    version directory."""
    import tensorflow as tf

    version = int(version)
    if version < 1:
        raise ValueError(f"`version` must be a positive integer, got {version}")
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain directory name, got {name!r}")
    if not os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel in {saved_model_dir!r}")
    target = os.path.join(bundle_dir, name, str(version))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        os.rmdir(tmp)
        shutil.copytree(saved_model_dir, tmp)
        logs = warmup_requests(tmp, name)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(tmp, WARMUP_FILE)) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
        replay(tmp, read_warmup(os.path.join(tmp, WARMUP_FILE)))
    return target


def models_config(names, base_path="/models"):
    """The text of a `--model_config_file` serving `names` from
    `base_path/<name>` (the bundle's path inside the server's container)."""
    lines = ["model_config_list {"]
    for name in names:
        lines += ["  config {", f'    name: "{name}"', f'    base_path: "{base_path.rstrip("/")}/{name}"',
                  '    model_platform: "tensorflow"', "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_models_config(bundle_dir, names, base_path="/models"):
    path = os.path.join(bundle_dir, "models.config")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(models_config(names, base_path))
    return path
