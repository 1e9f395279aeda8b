"""The `tfmix` CLI end to end on a tiny split, and its one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from tfmix.cli import main

TINY = ["--limit", "200", "--hidden-units", "32", "--latent-dim", "4", "--batch-size", "50"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert main(["train", "gmvae", "--dataset", "mnist", "--epochs", "1", "--seed", "3", "--out", out] + TINY) == 0
    return out


@pytest.mark.mnist_data
def test_train_writes_a_complete_run(run_dir):
    for name in ("run.json", "model.keras", "progress.json", "log.csv", "backup", "tensorboard"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    progress = json.load(open(os.path.join(run_dir, "progress.json")))
    assert progress["epochs_done"] == 1
    header = open(os.path.join(run_dir, "log.csv")).readline()
    for col in ("neg_elbo", "kl_y", "kl_z", "reconstruction", "test_acc_hungarian", "test_acc_majority"):
        assert col in header


@pytest.mark.mnist_data
def test_rerun_resumes_and_extends(run_dir):
    assert main(["train", "gmvae", "--dataset", "mnist", "--epochs", "2", "--seed", "3", "--out", run_dir] + TINY) == 0
    assert json.load(open(os.path.join(run_dir, "progress.json")))["epochs_done"] == 2
    rows = open(os.path.join(run_dir, "log.csv")).read().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]  # epoch 0 not redone


@pytest.mark.mnist_data
def test_a_finished_run_without_its_model_file_gets_it_back(tmp_path):
    """A finished run restored from its resumable state only (`campaign.py
    save` keeps no model.keras): rerunning the same command trains nothing
    and writes model.keras with the backed-up weights."""
    import keras
    import numpy as np

    out = str(tmp_path / "run")
    cmd = ["train", "gmvae", "--dataset", "mnist", "--epochs", "1", "--seed", "3", "--out", out] + TINY
    assert main(cmd) == 0
    trained = keras.saving.load_model(os.path.join(out, "model.keras")).get_weights()
    os.remove(os.path.join(out, "model.keras"))
    assert main(cmd) == 0
    rows = open(os.path.join(out, "log.csv")).read().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0"]  # no epoch trained again
    restored = keras.saving.load_model(os.path.join(out, "model.keras")).get_weights()
    assert len(restored) == len(trained)
    for a, b in zip(restored, trained):
        np.testing.assert_array_equal(a, b)


@pytest.mark.mnist_data
def test_evaluate_json_and_table(run_dir, capsys):
    assert main(["evaluate", run_dir, "--json", "--ll-samples", "3", "--ll-limit", "50"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)  # the log-likelihood's progress bar goes to stderr, not into the JSON
    assert "50/50" in captured.err and "log_px" in captured.err
    for key in ("acc_hungarian", "acc_majority", "nmi", "ari", "knn_error_k3", "knn_error_k5",
                "knn_error_k10", "test_log_likelihood", "test_neg_elbo"):
        assert key in res, key
    assert 0 <= res["acc_hungarian"] <= res["acc_majority"] <= 1
    assert res["test_log_likelihood"] < 0 and res["ll_samples"] == 3
    assert os.path.exists(os.path.join(run_dir, "metrics.json"))
    assert main(["evaluate", run_dir, "--ll-samples", "0"]) == 0
    assert "acc_hungarian" in capsys.readouterr().out


@pytest.mark.mnist_data
def test_sample_and_plot_latent_write_pngs(run_dir, tmp_path):
    grid, lat = str(tmp_path / "grid.png"), str(tmp_path / "latent.png")
    assert main(["sample", run_dir, "--out", grid, "--per-cluster", "4"]) == 0
    assert main(["plot-latent", run_dir, "--out", lat, "--limit", "100"]) == 0
    for path in (grid, lat):
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.mnist_data
def test_settings_mismatch_is_refused(run_dir, capsys):
    code = main(["train", "m2", "--epochs", "1", "--out", run_dir] + TINY)
    assert code == 2
    assert "different settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "nope", "--out", "x"], "invalid choice: 'nope'"),
        (["train", "gmvae", "--dataset", "cifar", "--out", "x"], "invalid choice: 'cifar'"),
        (["train", "gmvae", "--epochs", "0", "--out", "x"], "expected an integer >= 1"),
        (["train", "gmvae"], "--out"),
        (["evaluate", "/nonexistent/run"], "no run directory"),
        (["sample", "/tmp", "--out", "g.png"], "is not a tfmix run"),
        (["frobnicate"], "invalid choice"),
        (["train", "gmvae", "--out", "x", "--param", "oops"], "NAME=VALUE"),
        (["train", "vae", "--out", "x", "--num-clusters", "3"], "num_clusters"),
        (["train", "vae", "--out", "x", "--warmup-epochs", "5"], "has no KL warm-up"),
        (["train", "cagem", "--out", "x", "--warmup-epochs", "-1"], "`warmup_epochs` must be >= 0"),
        (["train", "vae", "--out", "x", "--time-limit", "0"], "expected a number > 0"),
        (["train", "cagem", "--out", "x", "--labels", "20", "--num-clusters", "3"], "one cluster per class"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert not os.path.exists("x")  # nothing half-written
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfmix: error:") and needle in err[-1]
    assert not any("Traceback" in line for line in err)


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tfmix.cli", "evaluate", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("tfmix: error: no run directory")


def test_cli_name_lists_match_the_registries():
    import tfmix
    from tfmix import data, names

    assert sorted(names.MODEL_NAMES) == sorted(tfmix.MODELS)
    assert sorted(names.DATASET_NAMES) == sorted(data.DATASETS)
    assert names.BINARIZE == data.BINARIZE


@pytest.mark.parametrize("argv", [["train", "nope", "--out", "x"], ["evaluate", "/nonexistent/run"]])
def test_usage_errors_answer_before_tensorflow_loads(argv):
    code = ("import sys; from tfmix.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[-1]]  # exactly one line
    assert proc.stderr.startswith("tfmix: error:")


@pytest.mark.mnist_data
def test_early_stopping_on_the_validation_split(tmp_path):
    out = str(tmp_path / "es")
    argv = ["train", "vae", "--dataset", "binarized_mnist", "--epochs", "30", "--patience", "0",
            "--learning-rate", "0.5", "--out", out, "--limit", "200", "--hidden-units", "16", "--latent-dim", "2"]
    assert main(argv) == 0  # lr 0.5 on 200 images: the validation -ELBO stops improving (epoch 8 here)
    progress = json.load(open(os.path.join(out, "progress.json")))
    assert progress["stopped_early"] is True and progress["best_epoch"] >= 1
    state = json.load(open(os.path.join(out, "early_stopping.json")))  # what a resume would restore
    assert state["best_epoch"] + 1 == progress["best_epoch"] and os.path.exists(os.path.join(out, "best.weights.h5"))
    rows = open(os.path.join(out, "log.csv")).read().strip().splitlines()
    assert "val_neg_elbo" in rows[0] and len(rows) - 1 < 30
    assert json.load(open(os.path.join(out, "run.json")))["validation"] is None  # auto: "validation"
    assert main(argv) == 0  # rerun: nothing more to do
    assert len(open(os.path.join(out, "log.csv")).read().strip().splitlines()) == len(rows)


@pytest.mark.mnist_data
def test_jit_compile_trains_and_refuses_strategies(tmp_path, capsys):
    out = str(tmp_path / "xla")
    assert main(["train", "gmvae", "--epochs", "1", "--jit-compile", "--out", out] + TINY) == 0
    assert json.load(open(os.path.join(out, "progress.json")))["epochs_done"] == 1
    assert main(["train", "gmvae", "--jit-compile", "--strategy", "mirrored", "--out", str(tmp_path / "x")] + TINY) == 2
    assert "single-device runs only" in capsys.readouterr().err


@pytest.mark.mnist_data
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    import keras
    import numpy as np

    from tfmix.models.base import MixtureVAE

    out = str(tmp_path / "nan")
    argv = ["train", "gmvae", "--seed", "1", "--out", out] + TINY
    assert main(argv + ["--epochs", "1"]) == 0
    good = keras.saving.load_model(os.path.join(out, "model.keras")).get_weights()

    original = MixtureVAE._objective

    def poisoned(self, data, training):
        loss, logs = original(self, data, training)
        return loss * np.nan, dict(logs, loss=loss * np.nan)

    monkeypatch.setattr(MixtureVAE, "_objective", poisoned)
    assert main(argv + ["--epochs", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training diverged" in err and "epoch 2" in err and "checkpoint of epoch 1 is intact" in err
    kept = keras.saving.load_model(os.path.join(out, "model.keras")).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(good, kept))
    assert json.load(open(os.path.join(out, "progress.json")))["epochs_done"] == 1
    assert json.load(open(os.path.join(out, "backup", "training_metadata.json")))["epoch"] == 1
    monkeypatch.setattr(MixtureVAE, "_objective", original)
    assert main(argv + ["--epochs", "2"]) == 0  # resumes from the intact epoch 1
    assert all(np.all(np.isfinite(w)) for w in keras.saving.load_model(os.path.join(out, "model.keras")).get_weights())


@pytest.mark.mnist_data
def test_semi_supervised_m2_through_the_cli(tmp_path, capsys):
    import numpy as np

    out = str(tmp_path / "m2")
    assert main(["train", "m2", "--labels", "20", "--epochs", "1", "--out", out] + TINY) == 0
    idx = np.load(os.path.join(out, "labelled_indices.npy"))
    assert len(idx) == 20
    header = open(os.path.join(out, "log.csv")).readline()
    for col in ("labelled_classification", "accuracy", "test_error", "neg_elbo"):
        assert col in header, col
    capsys.readouterr()
    assert main(["evaluate", out, "--json", "--ll-samples", "0"]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["test_error"] <= 1.0


@pytest.mark.mnist_data
def test_fully_supervised_nvae_through_the_cli(tmp_path, capsys):
    out = str(tmp_path / "nvae")
    nvae_tiny = ["--limit", "200", "--hidden-units", "32", "--batch-size", "50"]
    argv = ["train", "nvae", "--labels", "all", "--epochs", "1", "--out", out, "--param", "class_latent_dim=2",
            "--param", "shared_latent_dim=2"] + nvae_tiny
    assert main(argv) == 0
    assert not os.path.exists(os.path.join(out, "labelled_indices.npy"))  # every example is labelled
    header = open(os.path.join(out, "log.csv")).readline()
    for col in ("labelled_neg_elbo", "labelled_kl_zc", "accuracy", "test_error"):
        assert col in header, col
    assert "kl_y" not in header.replace("labelled_", "")  # no unlabelled term was computed
    capsys.readouterr()
    assert main(["train", "nvae", "--labels", "some", "--epochs", "1", "--out", str(tmp_path / "x")] + nvae_tiny) == 2
    assert "`num_labels` must be an integer >= 0 or 'all'" in capsys.readouterr().err


@pytest.mark.mnist_data
def test_mixed_bfloat16_training_through_the_cli(tmp_path):
    import keras

    out = str(tmp_path / "bf16")
    assert main(["train", "gmvae", "--dtype-policy", "mixed_bfloat16", "--epochs", "1", "--out", out] + TINY) == 0
    assert json.load(open(os.path.join(out, "run.json")))["dtype_policy"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    rows = open(os.path.join(out, "log.csv")).read().splitlines()
    assert len(rows) == 2 and "nan" not in rows[1].lower()


@pytest.mark.mnist_data
def test_mixed_bfloat16_logits_runs_the_decoder_output_in_bfloat16(tmp_path):
    """`--dtype-policy mixed_bfloat16_logits` trains under Keras's
    mixed_bfloat16 with the decoder's output layer in bfloat16 too; the
    run keeps the policy (a rerun resumes it) and its model says so."""
    from tfmix import runs

    out = str(tmp_path / "bf16_logits")
    argv = ["train", "gmvae", "--dtype-policy", "mixed_bfloat16_logits", "--out", out] + TINY
    assert main(argv + ["--epochs", "1"]) == 0
    assert json.load(open(os.path.join(out, "run.json")))["dtype_policy"] == "mixed_bfloat16_logits"
    assert main(argv + ["--epochs", "2"]) == 0
    assert json.load(open(os.path.join(out, "progress.json")))["epochs_done"] == 2
    model = runs.load_run(out)[1]
    assert model.decoder_logits_dtype == "compute"
    rows = open(os.path.join(out, "log.csv")).read().splitlines()
    assert len(rows) == 3 and "nan" not in rows[2].lower()


@pytest.mark.mnist_data
def test_time_limit_stops_after_an_epoch_and_a_rerun_goes_on(tmp_path):
    out = str(tmp_path / "tl")
    argv = ["train", "vae", "--epochs", "5", "--time-limit", "0.0001", "--patience", "10",
            "--out", out] + TINY
    assert main(argv) == 0
    progress = json.load(open(os.path.join(out, "progress.json")))
    assert progress["epochs_done"] == 1 and progress["stopped_by_time_limit"] is True
    assert progress["best_epoch"] == 1
    assert main(argv) == 0  # the same command resumes: one more epoch
    progress = json.load(open(os.path.join(out, "progress.json")))
    assert progress["epochs_done"] == 2


@pytest.mark.mnist_data
def test_kl_warmup_through_the_cli(tmp_path):
    out = str(tmp_path / "wu")
    argv = ["train", "cagem", "--epochs", "2", "--warmup-epochs", "4", "--out", out] + TINY
    assert main(argv) == 0
    rows = open(os.path.join(out, "log.csv")).read().strip().splitlines()
    head = rows[0].split(",")
    first = dict(zip(head, map(float, rows[1].split(","))))
    # epoch 1 minimises reconstruction + 0.25 KL: the loss is below the -ELBO
    assert first["loss"] < first["neg_elbo"]
    assert json.load(open(os.path.join(out, "run.json")))["warmup_epochs"] == 4
    import keras

    saved = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert float(saved.kl_scale) == 1.0  # checkpoints hold the ELBO's weight


def test_the_cli_prints_no_tensorflow_start_up_lines(tmp_path):
    """TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) are hidden
    unless --verbose; the command's own output is unchanged."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "tfmix.cli", "demo", "--out", str(tmp_path / "demo.png")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote 100 generated samples" in proc.stdout
    for line in ("I0000", "oneDNN", "cuda", "absl::InitializeLog"):
        assert line not in proc.stderr, proc.stderr[-2000:]
    from tfmix.cli import build_parser

    assert build_parser().parse_args(["--verbose", "zoo", "list"]).verbose is True
