"""The training callbacks on their own (no data, no CLI)."""

import os

import numpy as np
import pytest

from conftest import tiny_model
from tfmix.callbacks import ResumableEarlyStopping


def _epochs(stopper, values, first=0):
    """Runs `stopper` through one `fit` whose epochs log `values`."""
    stopper.on_train_begin()
    for epoch, v in enumerate(values, start=first):
        stopper.on_epoch_begin(epoch)
        stopper.on_epoch_end(epoch, {"val_neg_elbo": v})
        if stopper.model.stop_training:
            return epoch
    return None


def _stopper(tmp_path, model, patience=5, monitor="val_neg_elbo"):
    stopper = ResumableEarlyStopping(str(tmp_path), monitor=monitor, patience=patience)
    stopper.set_model(model)
    return stopper


def _shift(model, by):
    model.set_weights([w + by for w in model.get_weights()])


def test_early_stopping_state_survives_a_resume(tmp_path):
    """Best at epoch 1 (value 4), then one worse epoch, then the run is
    killed. The resumed fit must stop after one more worse epoch (patience
    2 counts from epoch 1) and hand back epoch 1's weights; Keras' own
    EarlyStopping would start counting afresh and keep no weights of the
    first invocation."""
    model = tiny_model("vae")
    model.stop_training = False
    first = _stopper(tmp_path, model, patience=2)
    first.on_train_begin()
    first.on_epoch_begin(0)
    first.on_epoch_end(0, {"val_neg_elbo": 5.0})
    _shift(model, 0.01)
    best = model.get_weights()
    first.on_epoch_begin(1)
    first.on_epoch_end(1, {"val_neg_elbo": 4.0})
    _shift(model, 0.01)
    first.on_epoch_begin(2)
    first.on_epoch_end(2, {"val_neg_elbo": 6.0})
    assert not model.stop_training
    assert os.path.exists(tmp_path / "best.weights.h5")

    # the process dies; a new one resumes at epoch 3 with epoch 2's weights
    resumed = _stopper(tmp_path, model, patience=2)
    stopped = _epochs(resumed, [7.0, 8.0], first=3)
    assert stopped == 3 and resumed.stopped_epoch == 3
    assert resumed.best == 4.0 and resumed.best_epoch == 1
    resumed.on_train_end()  # restores the best weights, as Keras does
    for a, b in zip(model.get_weights(), best):
        np.testing.assert_array_equal(a, b)


def test_an_improvement_after_a_resume_replaces_the_saved_best(tmp_path):
    model = tiny_model("vae")
    model.stop_training = False
    stopper = _stopper(tmp_path, model)
    _epochs(stopper, [5.0, 6.0])
    resumed = _stopper(tmp_path, model)
    _epochs(resumed, [3.0], first=2)
    assert resumed.best == 3.0 and resumed.best_epoch == 2 and resumed.wait == 0
    again = _stopper(tmp_path, model)
    _epochs(again, [4.0], first=3)
    assert again.best == 3.0 and again.best_epoch == 2 and again.wait == 1


def test_another_monitor_or_a_fresh_run_starts_afresh(tmp_path):
    model = tiny_model("vae")
    model.stop_training = False
    stopper = _stopper(tmp_path, model)
    _epochs(stopper, [5.0, 6.0])
    other = _stopper(tmp_path, model, monitor="val_labelled_neg_elbo")
    other.on_train_begin()
    other.on_epoch_begin(2)
    assert other.best is None and other.wait == 0
    restart = _stopper(tmp_path, model)
    restart.on_train_begin()
    restart.on_epoch_begin(0)  # a fit from epoch 0 ignores a saved state
    assert restart.best is None


def test_missing_best_weights_is_a_clear_error(tmp_path):
    model = tiny_model("vae")
    model.stop_training = False
    stopper = _stopper(tmp_path, model)
    _epochs(stopper, [5.0])
    os.remove(tmp_path / "best.weights.h5")
    resumed = _stopper(tmp_path, model)
    resumed.on_train_begin()
    with pytest.raises(FileNotFoundError, match="best.weights.h5"):
        resumed.on_epoch_begin(1)


def test_training_defaults_are_each_models_measured_fastest():
    """XLA by default for the models it speeds up, on one device only and
    in float32 only (`tests/test_hardware.py` for the dtype); an explicit
    choice wins; steps per execution from the model class."""
    from tfmix import runs

    def config(model, **kw):
        return runs.run_config(model, "mnist", epochs=1, batch_size=8, seed=0, **kw)

    jit = runs.resolve_jit_compile
    assert config("nvae", dtype_policy="float32")["jit_compile"] is True and jit(config("dlgmm")) is True
    assert config("dlgmm")["jit_compile"] == "auto"  # decided once `train` knows the run's dtype
    assert jit(config("gmvae")) is False and jit(config("dldpmm")) is False
    assert config("nvae", dtype_policy="float32", strategy="mirrored")["jit_compile"] is False
    assert config("nvae", strategy="mirrored")["jit_compile"] is False
    assert config("nvae", jit_compile=False)["jit_compile"] is False
    assert config("gmvae", jit_compile=True)["jit_compile"] is True
    kwargs = {"hidden_units": [8], "latent_dim": 2}
    vae = runs.build_model(config("vae", model_kwargs=kwargs))
    gmvae = runs.build_model(config("gmvae", model_kwargs=kwargs))
    m2 = runs.build_model(config("m2", model_kwargs=kwargs))
    dlgmm = runs.build_model(config("dlgmm", model_kwargs=kwargs))
    assert vae.steps_per_execution == 10 and gmvae.steps_per_execution == 10 and m2.steps_per_execution == 10
    assert dlgmm.steps_per_execution == 1
    mirrored = runs.build_model(config("vae", model_kwargs=kwargs, strategy="mirrored"))
    assert mirrored.steps_per_execution == 1


@pytest.mark.mnist_data
def test_a_resumed_float32_run_keeps_its_xla_default_on_a_bfloat16_cpu(tmp_path, monkeypatch):
    """XLA's default follows the dtype the run trains in: a float32 N-VAE
    run resumed with dtype "auto" on a CPU whose new N-VAE runs take
    bfloat16 keeps float32 and XLA (it used to lose XLA: the choice was
    made from the CPU's default dtype before the run's own was known)."""
    from tfmix import hardware, runs

    monkeypatch.setattr(hardware, "cpu_flags", lambda path=None: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.setattr(hardware, "cpu_vendor", lambda path=None: "AuthenticAMD")
    kw = {"batch_size": 50, "seed": 0, "limit": 100, "num_labels": "all",
          "model_kwargs": {"hidden_units": [8], "class_latent_dim": 1, "shared_latent_dim": 1}}
    assert runs.resolve_jit_compile(runs.run_config("nvae", "mnist", epochs=1, **kw)) is False  # a new run: bfloat16
    run_dir = str(tmp_path / "nvae")
    runs.train(runs.run_config("nvae", "mnist", epochs=1, dtype_policy="float32", **kw), run_dir, verbose=0)
    model = runs.train(runs.run_config("nvae", "mnist", epochs=2, **kw), run_dir, verbose=0)
    saved = runs.read_json(os.path.join(run_dir, runs.RUN_FILE))
    assert saved["dtype_policy"] == "float32" and saved["jit_compile"] is True
    assert model.jit_compile is True


@pytest.mark.mnist_data
def test_an_epoch_trains_its_steps_whatever_the_steps_per_execution(tmp_path):
    """Keras runs whole executions: 10 steps per execution of a 3-step epoch
    trained 10 steps an epoch (and a resumed run then differed from the
    uninterrupted one). `tfmix train` cuts the model's steps per execution
    to a divisor of the epoch's steps."""
    from tfmix import runs

    kw = dict(batch_size=50, seed=0, limit=150, model_kwargs={"hidden_units": [8], "latent_dim": 2})
    model = runs.train(runs.run_config("vae", "mnist", epochs=2, **kw), str(tmp_path / "vae"), verbose=0)
    assert int(model.optimizer.iterations) == 2 * 3
    config = runs.run_config("vae", "mnist", epochs=1, **kw)
    assert [runs.executed_steps(model, config, n) for n in (600, 500, 468, 3, None)] == [10, 10, 2, 1, 10]


@pytest.mark.mnist_data
def test_adam_epsilon_reaches_the_optimizer_and_older_runs_resume_with_kerass(tmp_path):
    """`adam_epsilon` is Adam's epsilon (Keras's 1e-7 unless given); a
    run.json written before the setting existed resumes with 1e-7, and a
    resume with another epsilon is refused (catches an option that never
    reaches the optimizer, or that breaks the resumption of older runs)."""
    import json

    from tfmix import runs

    kw = dict(batch_size=50, seed=0, limit=100, model_kwargs={"hidden_units": [8], "latent_dim": 2})
    assert runs.run_config("vae", "mnist", epochs=1, **kw)["adam_epsilon"] == 1e-7
    shu = runs.build_model(runs.run_config("gmvae", "mnist", epochs=1, adam_epsilon=1e-10, **kw))
    assert float(shu.optimizer.epsilon) == pytest.approx(1e-10, rel=1e-6)
    with pytest.raises(ValueError, match="`adam_epsilon` must be > 0"):
        runs.run_config("vae", "mnist", epochs=1, adam_epsilon=0.0, **kw)
    run_dir = str(tmp_path / "vae")
    model = runs.train(runs.run_config("vae", "mnist", epochs=1, **kw), run_dir, verbose=0)
    assert float(model.optimizer.epsilon) == pytest.approx(1e-7, rel=1e-6)
    path = os.path.join(run_dir, runs.RUN_FILE)
    old = json.load(open(path))
    del old["adam_epsilon"]  # as written before the setting existed
    json.dump(old, open(path, "w"))
    model = runs.train(runs.run_config("vae", "mnist", epochs=2, **kw), run_dir, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 2
    with pytest.raises(ValueError, match="adam_epsilon"):
        runs.train(runs.run_config("vae", "mnist", epochs=3, adam_epsilon=1e-10, **kw), run_dir, verbose=0)


@pytest.mark.parametrize("name", ["m2", "cagem", "nvae"])
def test_semi_supervised_loss_is_kingmas_j_alpha(name, binary_images):
    """loss = mean_u U(x) + labelled_fraction x mean_l L(x, y) + alpha x
    mean_l -log q(y|x), from the terms of the same step. Catches a labelled
    ELBO weighted 1 beside the unlabelled one (the earlier per-batch
    weighting, ~600x per labelled image with 100 labels)."""
    import tensorflow as tf

    model = tiny_model(name, labelled=True, labelled_fraction=0.01, classification_weight=0.1)
    data = {"x": tf.constant(binary_images[:8]), "x_labelled": tf.constant(binary_images[8:12]),
            "y_labelled": tf.constant([0, 1, 2, 3])}
    loss, logs = model._objective(data, training=False)
    want = (np.mean(logs["neg_elbo"]) + 0.01 * np.mean(logs["labelled_neg_elbo"])
            + 0.1 * np.mean(logs["labelled_classification"]))
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    # only labelled data (e.g. --labels all): the labelled mean has weight 1
    loss, logs = model._objective({"x_labelled": data["x_labelled"], "y_labelled": data["y_labelled"]}, training=False)
    np.testing.assert_allclose(
        float(loss), np.mean(logs["labelled_neg_elbo"]) + 0.1 * np.mean(logs["labelled_classification"]), rtol=1e-5)
    assert type(model).from_config(model.get_config()).labelled_fraction == 0.01
    with pytest.raises(ValueError, match="labelled_fraction"):
        tiny_model(name, labelled=True, labelled_fraction=0.0)


@pytest.mark.mnist_data
def test_semi_supervised_runs_default_to_j_alpha():
    from tfmix import runs

    config = runs.run_config("m2", "mnist", epochs=1, batch_size=100, seed=0, num_labels=100)
    assert config["model_kwargs"] == {"labelled_fraction": 100 / 60000, "classification_weight": 0.1}
    small = runs.run_config("m2", "mnist", epochs=1, batch_size=100, seed=0, num_labels=20, limit=1000)
    assert small["model_kwargs"]["labelled_fraction"] == 20 / 1000
    old = runs.run_config("m2", "mnist", epochs=1, batch_size=100, seed=0, num_labels=100,
                              model_kwargs={"labelled_fraction": 1.0, "classification_weight": 1.0})
    assert old["model_kwargs"] == {"labelled_fraction": 1.0, "classification_weight": 1.0}
    assert runs.run_config("nvae", "mnist", epochs=1, batch_size=100, seed=0, num_labels="all")["model_kwargs"] == {}


@pytest.mark.mnist_data
def test_semi_supervised_weightings_set_the_labelled_terms():
    """`weighting`: Maaloe et al.'s code scales J^alpha's labelled terms by
    N / N_l (cross-entropy 0.1 N / N_l beside a labelled ELBO of weight 1);
    named model arguments still win; an unknown name is refused; the CLI
    offers exactly these names."""
    import argparse

    from tfmix import cli, runs

    def kwargs(labels, **kw):
        return runs.run_config("cagem", "mnist", epochs=1, batch_size=100, seed=0, num_labels=labels,
                               **kw)["model_kwargs"]

    assert kwargs(100, weighting="maaloe") == {"labelled_fraction": 1.0, "classification_weight": 60.0}
    assert kwargs(20, weighting="maaloe")["classification_weight"] == 300.0
    assert kwargs(20, weighting="maaloe", limit=1000)["classification_weight"] == 5.0  # N = 1000 images
    assert kwargs(100, weighting="per_batch") == {"labelled_fraction": 1.0, "classification_weight": 1.0}
    assert kwargs(100) == kwargs(100, weighting="kingma") == {"labelled_fraction": 100 / 60000,
                                                              "classification_weight": 0.1}
    assert kwargs(100, weighting="maaloe", model_kwargs={"classification_weight": 2.0}) == {
        "labelled_fraction": 1.0, "classification_weight": 2.0}
    with pytest.raises(ValueError, match="`weighting` must be one of kingma, maaloe, per_batch, got 'kingmaa'"):
        kwargs(100, weighting="kingmaa")
    subparsers = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train = subparsers.choices["train"]
    assert list(next(a for a in train._actions if a.dest == "weighting").choices) == list(runs.WEIGHTINGS)
    assert train.parse_args(["m2", "--out", "r", "--weighting", "maaloe"]).weighting == "maaloe"
