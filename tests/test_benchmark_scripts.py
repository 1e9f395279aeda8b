"""The FLOP counting of scripts/benchmark_speed.py (no timing here)."""

import argparse
import importlib.util
import os
import re

import numpy as np
import pytest

from conftest import tiny_model

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "benchmark_speed.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_speed", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signature_flops_count_the_matmuls(bench):
    model = tiny_model("gmvae")  # q(y|x): 784 -> 16 -> 4
    flops = bench.signature_flops(model, ll_samples=3)
    matmuls = 2 * (784 * 16 + 16 * 4)
    # the matmuls dominate; biases, ReLU and softmax add a few hundred
    assert matmuls <= flops["cluster"] < matmuls + 1000
    assert flops["classify"] == flops["cluster"]
    assert flops["log_likelihood"] > 3 * flops["reconstruct"] / 2  # S = 3 decoder passes per cluster


def test_every_model_has_a_reference_size(bench):
    import tfmix

    assert set(bench.REFERENCE) == set(tfmix.MODELS)


def test_default_configuration_is_what_tfmix_train_uses(bench):
    from tfmix import runs
    from tfmix.hardware import decoder_logits_dtype, keras_dtype_policy, resolve_dtype_policy
    from tfmix.optimizers import FusedAdam

    for name in ("gmvae", "vae", "dlgmm", "nvae", "cagem"):
        config = runs.run_config(name, "mnist", epochs=1, batch_size=10, seed=0)
        model = runs.build_model(config)
        policy = resolve_dtype_policy(config["dtype_policy"], model=name)
        want = {"jit_compile": runs.resolve_jit_compile(config), "steps_per_execution": model.steps_per_execution,
                "dtype_policy": keras_dtype_policy(policy), "decoder_logits_dtype": decoder_logits_dtype(policy)}
        assert config["dtype_policy"] == "auto"  # resolved by `train` for this CPU
        assert bench.default_config(name) == want, name
        assert model.decoder_logits_dtype == want["decoder_logits_dtype"], name
        assert isinstance(model.optimizer, FusedAdam)  # and the `default` rows train with it
    from tfmix.hardware import SPEED_FLAGS

    assert set(bench.cpu_flags()) <= set(SPEED_FLAGS)
    assert "CPU flags:" in bench.machine()


def test_baseline_is_the_default_of_before_issue_18(bench):
    """`baseline` undoes exactly issue 18's changes: float32, Keras's
    unfused Adam, TFP's Bernoulli and, for gmvae, one step per execution
    instead of 10 (catches a baseline that silently took a later default,
    such as the bfloat16 policy of a CPU with native bfloat16)."""
    import keras

    from tfmix import distributions as D
    from tfmix.optimizers import FusedAdam

    try:
        for name, spe_before in (("gmvae", 1), ("m2", 1), ("modified_m2", 1)):
            base, _, base_settings = bench.build_model(name, "baseline")
            default, _, default_settings = bench.build_model(name, "default")
            assert base_settings["steps_per_execution"] == spe_before, name
            assert default_settings == bench.default_config(name), name
            assert base_settings["dtype_policy"] == "float32" and base_settings["decoder_logits_dtype"] == "float32"
            later = ("steps_per_execution", "dtype_policy", "decoder_logits_dtype")
            assert {k: v for k, v in base_settings.items() if k not in later} == \
                {k: v for k, v in default_settings.items() if k not in later}, name
            assert not isinstance(base.optimizer, FusedAdam) and isinstance(default.optimizer, FusedAdam)
        assert bench.default_config("gmvae")["steps_per_execution"] == 10
        assert bench.default_config("m2")["steps_per_execution"] == 10
        _, _, nvae = bench.build_model("nvae", "baseline")  # float32 with XLA, its default before issue 18
        assert nvae["jit_compile"] and nvae["dtype_policy"] == "float32" and nvae["steps_per_execution"] == 1
        with bench.likelihood_of("baseline"):
            assert type(D.bernoulli_likelihood(keras.ops.zeros((2, 3))).distribution) is D.tfd.Bernoulli
        assert type(D.bernoulli_likelihood(keras.ops.zeros((2, 3))).distribution) is D.LogitBernoulli
    finally:
        keras.config.set_dtype_policy("float32")


def test_profile_step_says_where_the_time_goes(bench):
    r = bench.profile_step("vae", "default", steps=3, top=50)
    phases = {name: ms for name, ms, _ in r["phases"]}
    assert set(phases) == {"forward", "backward", "optimizer"} and all(ms > 0 for ms in phases.values())
    ops = {name for name, _, _ in r["ops"]}
    assert {"MatMul", "ResourceApplyAdam"} <= ops | {"_FusedMatMul"}  # the fused Adam runs as one kernel
    assert "Softplus" in ops and sum(share for _, _, share in r["ops"]) <= 1.001  # shares rounded to 4 digits
    assert r["op_ms_per_step"] > 0 and r["dtype_policy"] == "float32"


def test_op_type_counts_onednn_kernels_as_the_ops_they_replace(bench):
    """On AVX-512 CPUs oneDNN renames MatMul to _MklMatMul (seen in session
    11, where the profile test failed there); a profile names the op type."""
    assert bench.op_type("_MklMatMul") == "MatMul"
    assert bench.op_type("_MklNativeFusedMatMul") == "_FusedMatMul"
    assert bench.op_type("_MklFusedMatMul") == "_FusedMatMul"
    assert bench.op_type("_FusedMatMul") == "_FusedMatMul" and bench.op_type("Softplus") == "Softplus"


def _script(name):
    path = os.path.join(os.path.dirname(_PATH), f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.mnist_data
def test_evaluate_cagem_table_and_figures(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from tfmix.cli import main as cli

    run = str(tmp_path / "run")
    assert cli(["train", "cagem", "--epochs", "1", "--limit", "200", "--hidden-units", "16", "--latent-dim", "4",
                "--param", "top_latent_dim=2", "--labels", "20", "--batch-size", "50", "--out", run]) == 0
    out, figs = str(tmp_path / "r.json"), str(tmp_path / "figs")
    monkeypatch.setattr(sys, "argv", ["evaluate_cagem.py", f"c20={run}", "--ll-samples", "2", "--ll-limit", "20",
                                      "--json", out, "--fig-dir", figs])
    _script("evaluate_cagem").main()
    m = json.load(open(out))["runs"]["c20"]
    assert 0 <= m["test_error_q_y_x"] <= 1 and 0 <= m["test_error_p_y_x"] <= 1
    assert m["test_log_likelihood"] < 0 and m["ll_samples"] == 2 and m["num_labels"] == 20
    assert sorted(os.listdir(figs)) == ["c20_random.png", "c20_reconstructions.png", "c20_samples.png", "c20_z2.png"]
    assert "(-81.47)" in capsys.readouterr().out  # the paper's CaGeM-20 beside ours


@pytest.mark.mnist_data
def test_judge_generation_per_cluster(tmp_path, capsys):
    import json

    from tfmix.cli import main as cli

    run = str(tmp_path / "run")
    assert cli(["train", "cagem", "--epochs", "1", "--limit", "200", "--hidden-units", "16", "--latent-dim", "4",
                "--param", "top_latent_dim=2", "--batch-size", "50", "--out", run]) == 0
    out = str(tmp_path / "j.json")
    results = _script("judge_generation").main([f"c0={run}", "--per-cluster", "3", "--json", out])
    r = json.load(open(out))["runs"]["c0"]
    assert r == results["runs"]["c0"] and r["num_labels"] == 0 and r["epochs"] == 1
    per = r["judged_generation_per_cluster"]
    assert len(per) == 10 and all(3 * a == pytest.approx(round(3 * a)) and 0 <= a <= 1 for a in per)
    assert r["judged_generation"] == pytest.approx(sum(per) / 10)
    assert 0 <= r["generation_purity"] <= 1 and len(r["generation_purity_per_cluster"]) == 10
    assert r["self_consistency"] == pytest.approx(sum(r["self_consistency_per_cluster"]) / 10)
    table = capsys.readouterr().out
    assert "| c0 | cagem | 0 | 1 |" in table and "generation purity | self-consistency" in table
    with pytest.raises(SystemExit):
        _script("judge_generation").main([f"c0={run}", "--per-cluster", "0"])
    with pytest.raises(SystemExit):
        _script("judge_generation").main([run])  # not NAME=RUN_DIR
    assert f"expected NAME=RUN_DIR, got {run!r}" in capsys.readouterr().err


def test_campaign_run_rejects_no_slots_or_threads(capsys):
    campaign = _script("campaign")
    for flag in ("--jobs", "--threads"):
        with pytest.raises(SystemExit):
            campaign.main(["run", "--hours", "1", flag, "0"])
        assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.mnist_data
def test_campaign_queue_trains_saves_restores_and_resumes(tmp_path, monkeypatch, capsys):
    """The queue trains a (tiny) job from the committed code in a
    subprocess; `save` keeps an unfinished run's resumable state, which a
    new machine (the run directory gone) restores, and the queue resumes it
    at the epoch where it stopped."""
    import argparse
    import csv

    campaign = _script("campaign")
    runs, saved = tmp_path / "runs", tmp_path / "saved"
    runs.mkdir()
    tiny = ["gmvae", "--dataset", "mnist", "--limit", "100", "--batch-size", "50", "--hidden-units", "8",
            "--latent-dim", "2", "--num-clusters", "3", "--seed", "0"]
    # a job for a CPU flag this machine lacks (the bfloat16 comparison) waits
    gated = {"run": "gated", "train": tiny, "epochs": 1, "cpu_flag": "no_such_cpu_flag"}
    # a job that finished on a lost machine after its last save is neither restored nor trained again
    (saved / "lost").mkdir(parents=True)
    (saved / "lost" / "progress.json").write_text('{"epochs_done": 1}')
    lost = {"run": "lost", "train": tiny, "epochs": 2, "finished_elsewhere": "finished at 2 on a lost machine"}
    monkeypatch.setattr(campaign, "QUEUE", [lost, {"run": "tiny", "train": tiny, "epochs": 2}, gated])
    monkeypatch.setattr(campaign, "SAVED", str(saved))
    args = argparse.Namespace(runs_dir=str(runs), hours=0.5, jobs=1, threads=None)
    campaign.cmd_serve(args)
    assert campaign.epochs_done(str(runs / "tiny")) == 2
    def started(from_epoch):  # the queue's log lines for the trainings it started from that epoch
        return re.findall(rf"start tiny \(seed None, to epoch \d+, from {from_epoch}, .*",
                          (runs / "campaign.log").read_text())

    assert started(0)[0].endswith(f"{os.cpu_count() or 2} thread(s))")  # one job: every core
    assert not (runs / "gated").exists() and "no_such_cpu_flag" not in campaign.cpu_flags()
    assert not (runs / "lost").exists()
    campaign.QUEUE.pop()
    campaign.QUEUE.pop(0)
    campaign.QUEUE[0]["epochs"] = 3  # not finished any more: save keeps it
    capsys.readouterr()
    campaign.cmd_status(args)  # one more epoch at the run's own pace so far
    minutes = campaign.epoch_minutes(str(runs / "tiny"))
    assert f"  2/3    {minutes:9.2f} {minutes / 60:7.1f}" in capsys.readouterr().out
    campaign.cmd_save(args)
    assert (saved / "tiny" / "backup" / "latest.weights.h5").exists()
    import shutil

    shutil.rmtree(runs / "tiny")  # a new machine
    args.threads = 1  # `--threads 1`: a core left for something else
    campaign.cmd_serve(args)
    assert "restored tiny" in (runs / "campaign.log").read_text()
    assert started(2)[0].endswith(" 1 thread(s))")
    with open(runs / "tiny" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]  # the restored log, then epoch 3
    # finished now: save keeps its log and epoch count but no weights, and a
    # new machine restores it as finished instead of training it again
    campaign.cmd_save(args)
    assert (saved / "tiny" / "log.csv").exists() and not (saved / "tiny" / "backup" / "latest.weights.h5").exists()
    shutil.rmtree(runs / "tiny")
    starts = (runs / "campaign.log").read_text().count("start tiny")
    campaign.cmd_serve(args)
    assert campaign.epochs_done(str(runs / "tiny")) == 3
    assert (runs / "campaign.log").read_text().count("start tiny") == starts


def test_campaign_chooses_the_seed_by_training_elbo(tmp_path, monkeypatch):
    campaign = _script("campaign")
    for seed, elbo in ((0, 95.0), (1, 93.0), (2, 94.0)):
        d = tmp_path / f"s{seed}"
        (d / "backup").mkdir(parents=True)
        (d / "backup" / "training_metadata.json").write_text('{"epoch": 5}')
        (d / "run.json").write_text(f'{{"seed": {seed}}}')
        (d / "log.csv").write_text("epoch,neg_elbo,test_acc_hungarian\n" + "".join(
            f"{e},{elbo + 5 - e},{0.99 if seed == 0 else 0.5}\n" for e in range(5)))
    jobs = [{"run": f"s{s}", "train": [], "epochs": 5} for s in range(3)]
    best = {"run": "best", "seed": "best", "epochs": 9, "among": ["s0", "s1", "s2"]}
    monkeypatch.setattr(campaign, "QUEUE", jobs + [best])
    seed, (source, scores) = campaign.resolve(best, str(tmp_path))
    assert seed == 1 and source.endswith("s1")  # the lowest training -ELBO, not the best test accuracy
    assert campaign.shu_epochs(300) == 250 and campaign.shu_epochs(1000) == 834
    (tmp_path / "s2" / "backup" / "training_metadata.json").write_text('{"epoch": 4}')
    assert campaign.resolve(best, str(tmp_path)) is None  # not every seed is done
    # a continuation of `tfmix train` seeds trains with the seed it chose
    trained = {"run": "best", "seed": "best", "epochs": 9, "among": ["s0", "s1", "s2"],
               "train": ["gmvae", "--seed", "0", "--adam-epsilon", "1e-10"]}
    cmd = campaign.job_command(trained, 1, "code", "RUN", 5.0, 1)
    assert cmd[cmd.index("train") + 1:cmd.index("--out")] == ["gmvae", "--seed", "1", "--adam-epsilon", "1e-10"]
    assert campaign.job_command(jobs[0] | {"train": ["gmvae", "--seed", "2"]}, None, "code", "RUN", 5.0, 1)[4:7] \
        == ["gmvae", "--seed", "2"]  # a seed's own job keeps its seed


def test_campaign_keeps_the_seeds_weights_until_the_continuation_has_chosen(tmp_path, monkeypatch):
    """`save` keeps a finished seed's weights while the `seed="best"` job
    has not chosen, then saves a seed that finished since as its log only,
    and leaves a run already saved at its last epoch as it is (rewriting it
    would only add diffs); the continuation's choice (chosen.json) is saved
    and restored, so that a new machine continues the chosen run instead of
    choosing again and copying a seed over it."""
    import argparse

    campaign = _script("campaign")
    runs, saved = tmp_path / "runs", tmp_path / "saved"

    def seed_run(seed, epoch):
        d = runs / f"s{seed}"
        (d / "backup").mkdir(parents=True, exist_ok=True)
        (d / "backup" / "training_metadata.json").write_text(f'{{"epoch": {epoch}}}')
        (d / "backup" / "latest.weights.h5").write_text("weights")
        (d / "run.json").write_text(f'{{"seed": {seed}}}')
        (d / "log.csv").write_text("epoch,neg_elbo\n" + "".join(f"{e},{90 + seed - e}\n" for e in range(epoch)))

    seed_run(0, 5)
    seed_run(1, 4)  # still training
    seeds = [{"run": f"s{s}", "preset": "p", "seed": s, "epochs": 5} for s in range(2)]
    best = {"run": "best", "preset": "p", "seed": "best", "epochs": 9, "among": ["s0", "s1"]}
    monkeypatch.setattr(campaign, "QUEUE", seeds + [best])
    monkeypatch.setattr(campaign, "SAVED", str(saved))
    args = argparse.Namespace(runs_dir=str(runs))
    campaign.cmd_save(args)
    assert (saved / "s0" / "backup" / "latest.weights.h5").exists()  # finished, not chosen yet: weights kept
    assert (saved / "s1" / "backup" / "latest.weights.h5").exists()  # unfinished
    # seed 1 finished, the continuation chose seed 0 and trained two epochs
    seed_run(1, 5)
    (runs / "best" / "backup").mkdir(parents=True)
    (runs / "best" / "backup" / "training_metadata.json").write_text('{"epoch": 7}')
    (runs / "best" / "backup" / "latest.weights.h5").write_text("continued")
    (runs / "best" / "chosen.json").write_text('{"seed": 0}')
    campaign.cmd_save(args)
    assert not (saved / "s1" / "backup" / "latest.weights.h5").exists() and (saved / "s1" / "log.csv").exists()
    assert (saved / "s0" / "backup" / "latest.weights.h5").exists()  # saved at its last epoch before: left alone
    assert (saved / "best" / "chosen.json").exists()
    # `prune` finds the weights s0's copy kept although the choice is made, and deletes them with --apply only
    assert [(name, files) for name, files, _ in campaign.prunable(str(runs))] == [("s0", ["backup/latest.weights.h5"])]
    campaign.main(["prune", "--runs-dir", str(runs)])
    assert (saved / "s0" / "backup" / "latest.weights.h5").exists()
    campaign.main(["prune", "--runs-dir", str(runs), "--apply"])
    assert not (saved / "s0" / "backup" / "latest.weights.h5").exists() and (saved / "s0" / "log.csv").exists()
    assert (saved / "best" / "backup" / "latest.weights.h5").exists()  # 7 of 9 epochs: it resumes from them
    assert campaign.prunable(str(runs)) == []
    import shutil

    shutil.rmtree(runs)  # a new machine
    runs.mkdir()
    for job in campaign.QUEUE:
        campaign.restore(job, str(runs))
    assert campaign.resolve(best, str(runs)) == (0, None)  # the saved choice, not a new one
    assert campaign.epochs_done(str(runs / "best")) == 7 and campaign.epochs_done(str(runs / "s1")) == 5
    assert (runs / "best" / "backup" / "latest.weights.h5").read_text() == "continued"


def test_campaign_prune_keeps_the_weights_a_run_still_needs(tmp_path, monkeypatch, capsys):
    """`prune` lists the saved copies' weights of runs finished on a lost
    machine and of published or measurement runs, never those of a run with
    epochs left or a preset run awaiting `publish`; named runs limit it, an
    unknown name is refused before anything is deleted."""
    campaign = _script("campaign")
    runs, saved = tmp_path / "runs", tmp_path / "saved"

    def copy(name, epoch, *extra):
        d = saved / name
        (d / "backup").mkdir(parents=True)
        (d / "backup" / "training_metadata.json").write_text(f'{{"epoch": {epoch}}}')
        for f in ("backup/latest.weights.h5", "log.csv") + extra:
            (d / f).write_text("x" * 1000)

    copy("training", 5)
    copy("lost", 1)
    copy("measured", 30)
    copy("awaiting", 30, "model.keras")
    copy("published", 30, "model.keras")
    (saved / "published" / "published.json").write_text('{"epochs": 30}')
    monkeypatch.setattr(campaign, "SAVED", str(saved))
    monkeypatch.setattr(campaign, "QUEUE", [
        {"run": "training", "train": [], "epochs": 30},
        {"run": "lost", "train": [], "epochs": 30, "finished_elsewhere": "saved at 1; finished at 30 elsewhere"},
        {"run": "measured", "train": [], "epochs": 30},
        {"run": "awaiting", "preset": "p", "seed": 0, "epochs": 30},
        {"run": "published", "preset": "q", "seed": 0, "epochs": 30}])
    found = {name: files for name, files, _ in campaign.prunable(str(runs))}
    assert found == {"lost": ["backup/latest.weights.h5"], "measured": ["backup/latest.weights.h5"],
                     "published": ["backup/latest.weights.h5", "model.keras"]}
    with pytest.raises(SystemExit, match="no run 'nope' in the queue"):
        campaign.main(["prune", "--runs-dir", str(runs), "lost", "nope", "--apply"])
    assert (saved / "lost" / "backup" / "latest.weights.h5").exists()
    campaign.main(["prune", "--runs-dir", str(runs), "lost", "published", "--apply"])
    out = capsys.readouterr().out
    assert "deleted" in out and "2 saved copies" in out and "MiB of a stop's diffs" in out
    left = {p.relative_to(saved).as_posix() for p in saved.rglob("*.h5")} | {
        p.relative_to(saved).as_posix() for p in saved.rglob("*.keras")}
    assert left == {"training/backup/latest.weights.h5", "measured/backup/latest.weights.h5",
                    "awaiting/backup/latest.weights.h5", "awaiting/model.keras"}
    assert all((saved / n / "log.csv").exists() for n in ("lost", "published"))


def test_campaign_keeps_a_finished_preset_run_until_it_is_published(tmp_path, monkeypatch, capsys):
    """A preset run that reached its epochs keeps its weights and model in
    its saved copy until `publish` has run publish_zoo.py on it (a new
    machine can then publish it); `status` lists it meanwhile; `publish`
    refuses a measurement, an unfinished run and a failed publication, and
    once published, `save` keeps the run's log only."""
    import argparse
    import json
    import shutil

    campaign = _script("campaign")
    runs, saved = tmp_path / "runs", tmp_path / "saved"

    def run(name, epoch):
        d = runs / name
        (d / "backup").mkdir(parents=True, exist_ok=True)
        (d / "backup" / "training_metadata.json").write_text(f'{{"epoch": {epoch}}}')
        (d / "backup" / "latest.weights.h5").write_text("weights")
        (d / "model.keras").write_text("model")
        (d / "run.json").write_text('{"seed": 0}')
        (d / "log.csv").write_text("epoch,neg_elbo\n" + "".join(f"{e},{90 - e}\n" for e in range(epoch)))
        return d

    preset_run, measurement, unfinished = run("p_seed0", 3), run("m", 3), run("q_seed0", 2)
    monkeypatch.setattr(campaign, "QUEUE", [{"run": "p_seed0", "preset": "p", "seed": 0, "epochs": 3},
                                            {"run": "m", "train": [], "epochs": 3},
                                            {"run": "q_seed0", "preset": "q", "seed": 0, "epochs": 3}])
    monkeypatch.setattr(campaign, "SAVED", str(saved))
    calls = tmp_path / "calls.json"
    fake = tmp_path / "publish_zoo.py"  # records its arguments; fails while tmp_path/fail exists
    fake.write_text("import json, os, sys\n"
                    f"json.dump(sys.argv[1:], open({str(calls)!r}, 'w'))\n"
                    f"sys.exit(1 if os.path.exists({str(tmp_path / 'fail')!r}) else 0)\n")
    monkeypatch.setattr(campaign, "PUBLISH_ZOO", str(fake))
    args = argparse.Namespace(runs_dir=str(runs))
    campaign.cmd_status(args)
    out = capsys.readouterr().out
    assert "finished, not yet published: p_seed0 -> zoo/p/" in out and "published: m ->" not in out
    campaign.cmd_save(args)
    assert (saved / "p_seed0" / "backup" / "latest.weights.h5").exists() and (saved / "p_seed0" / "model.keras").exists()
    assert not (saved / "m" / "backup" / "latest.weights.h5").exists()  # a finished measurement: its log only
    # a new machine restores the waiting run with its model: publishable there
    shutil.rmtree(preset_run)
    assert campaign.restore(campaign.QUEUE[0], str(runs)) and (preset_run / "model.keras").exists()
    assert campaign.awaiting_publication(campaign.QUEUE[0], str(runs))

    def publish(name):
        return campaign.cmd_publish(argparse.Namespace(runs_dir=str(runs), run=name, ll_samples=1000, ll_limit=20,
                                                       notes="n", train_command=None))

    for name, message in (("m", "not a preset run"), ("q_seed0", "is at epoch 2 of 3"), ("nope", "no run 'nope'")):
        with pytest.raises(SystemExit, match=message):
            publish(name)
    (tmp_path / "fail").write_text("")
    with pytest.raises(SystemExit, match="stays unpublished"):
        publish("p_seed0")
    assert not (preset_run / campaign.PUBLISHED_FILE).exists()
    (tmp_path / "fail").unlink()
    publish("p_seed0")
    assert json.loads(calls.read_text()) == ["p", "--run", str(preset_run), "--ll-samples", "1000",
                                             "--ll-limit", "20", "--notes", "n"]
    assert json.loads((preset_run / campaign.PUBLISHED_FILE).read_text())["epochs"] == 3
    campaign.cmd_status(args)
    assert "not yet published" not in capsys.readouterr().out
    campaign.cmd_save(args)  # saved at its last epoch before, but not as published: rewritten, log only
    assert not (saved / "p_seed0" / "backup" / "latest.weights.h5").exists()
    assert not (saved / "p_seed0" / "model.keras").exists() and (saved / "p_seed0" / campaign.PUBLISHED_FILE).exists()
    # a run marked finished_elsewhere keeps its saved copy, whatever its directory here holds
    campaign.QUEUE[1]["finished_elsewhere"] = "saved at 3; finished at 4"
    (measurement / "backup" / "training_metadata.json").write_text('{"epoch": 4}')
    campaign.cmd_save(args)
    assert campaign.epochs_done(str(saved / "m")) == 3 and unfinished.exists()


def test_component_separation_tells_collapsed_components_from_distinct_ones():
    import types

    import tensorflow as tf

    from tfmix import distributions as D

    sep = _script("evaluate_stick_breaking").component_separation
    x = np.zeros((4, 784), np.float32)

    def fake(loc, weights):
        loc = tf.constant(loc, tf.float32)
        return types.SimpleNamespace(
            posteriors=lambda xb: (None, D.diag_gaussian(loc, 0.5 * tf.ones_like(loc))),
            decoder=lambda z: tf.tile(z[..., :1], [1, 1, 784]),
            mean_weights=lambda qv: tf.constant(weights, tf.float32))

    same = sep(fake(np.ones((4, 3, 2)), np.full((4, 3), 1 / 3)), x)
    assert same["component_separation_sd"] == 0 and same["component_pixel_difference"] == 0
    assert same["effective_components"] == pytest.approx(3)
    loc = np.zeros((4, 3, 2))
    loc[:, 1] += 1.0  # component 1 one unit away in both coordinates, 2 sd
    apart = sep(fake(loc, np.tile([[0.98, 0.01, 0.01]], (4, 1))), x)
    assert apart["component_separation_sd"] == pytest.approx((2 * 2.0) / 3)  # 2 of the 3 pairs differ
    assert apart["component_pixel_difference"] > 0 and apart["effective_components"] < 1.2


@pytest.mark.mnist_data
def test_evaluate_stick_breaking_reports_the_mixture_entropy_run(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from tfmix.cli import main as cli

    run = str(tmp_path / "run")
    assert cli(["train", "dlgmm", "--dataset", "binarized_mnist", "--epochs", "1", "--limit", "200",
                "--hidden-units", "16", "--latent-dim", "3", "--num-clusters", "3", "--batch-size", "50",
                "--param", 'entropy="mixture"', "--out", run]) == 0
    out = str(tmp_path / "r.json")
    monkeypatch.setattr(sys, "argv", ["evaluate_stick_breaking.py", f"dlgmm_mixture={run}", "--ll-samples", "2",
                                      "--ll-limit", "20", "--json", out])
    script = _script("evaluate_stick_breaking")
    monkeypatch.setattr(script, "label_check", lambda: {})  # the label matching of all 70,000 images: not this test's concern
    script.main()
    m = json.load(open(out))["runs"]["dlgmm_mixture"]
    assert m["component_separation_sd"] >= 0 and 1 <= m["effective_components"] <= 3
    assert m["model_kwargs"]["entropy"] == "mixture"
    assert "| dlgmm_mixture | 1 (-) |" in capsys.readouterr().out


def test_campaign_table_states_each_preset_run_against_its_target(tmp_path, monkeypatch):
    campaign = _script("campaign")
    runs, saved = tmp_path / "runs", tmp_path / "saved"
    (runs / "c100" / "backup").mkdir(parents=True)
    (runs / "c100" / "backup" / "training_metadata.json").write_text('{"epoch": 2}')
    (runs / "c100" / "log.csv").write_text("epoch,test_acc_hungarian,test_error,val_neg_elbo\n"
                                           "0,0.5,0.2,100.0\n1,0.6,0.1,95.5\n")
    # a run not on this machine yet: its saved copy in zoo/campaign counts
    (saved / "g0" / "backup").mkdir(parents=True)
    (saved / "g0" / "backup" / "training_metadata.json").write_text('{"epoch": 7}')
    (saved / "g0" / "log.csv").write_text("epoch,test_acc_hungarian,val_neg_elbo\n6,0.7,92.0\n")
    monkeypatch.setattr(campaign, "SAVED", str(saved))
    monkeypatch.setattr(campaign, "QUEUE", [
        {"run": "c100", "preset": "cagem100_mnist", "seed": 0, "epochs": 300},
        {"run": "g0", "preset": "gmvae_mnist", "seed": 0, "epochs": 250, "finished_elsewhere": "finished at 250 elsewhere"},
        {"run": "f0", "preset": "gmvae_fashion_mnist", "seed": 0, "epochs": 834},
        {"run": "measure", "train": [], "epochs": 3},  # not a preset run: not in the table
        {"run": "e0", "train": [], "epochs": 250, "for_preset": "gmvae_mnist"}])  # a tfmix train run of a preset's
    rows = campaign.campaign_table(str(runs))
    assert len(rows) == 2 + 4
    assert rows[5].startswith("| gmvae_mnist | e0 | 0 / 250 | >= 87% Hungarian") and rows[5].endswith("| not started |")
    assert rows[2] == ("| cagem100_mnist | c100 | 2 / 300 | log p(x) >= -79.38; q(y\\|x) test error <= 3.33% | "
                       "Hungarian 60.0%, q(y\\|x) test error 10.00%, validation -ELBO 95.50 |")
    # a run whose machine was lost after its last save says where it finished
    assert "| g0 (finished at 250 elsewhere) | 7 / 250 |" in rows[3] and "Hungarian 70.0%" in rows[3]
    assert rows[4].endswith("| >= 75% Hungarian | not started |")


def test_published_table_states_each_targeted_preset_from_its_card(tmp_path, monkeypatch):
    """log p(x) is measured only when a preset is published: the report
    reads it from the card, with how many test images it covers."""
    import json

    campaign = _script("campaign")
    (tmp_path / "cagem0_mnist").mkdir()
    (tmp_path / "cagem0_mnist" / "card.json").write_text(json.dumps({"epochs": 300, "date": "2026-12-07", "metrics": {
        "acc_hungarian": 0.2033, "test_log_likelihood": -84.823, "ll_examples": 10000, "generation_purity": 0.189}}))
    (tmp_path / "cagem100_mnist").mkdir()
    (tmp_path / "cagem100_mnist" / "card.json").write_text(json.dumps({"epochs": 42, "date": "2026-12-06", "metrics": {
        "acc_hungarian": 0.9609, "test_error": 0.0391, "test_log_likelihood": -89.79, "ll_examples": None}}))
    monkeypatch.setattr(campaign, "ZOO", str(tmp_path))
    monkeypatch.setattr(campaign, "TARGETS", {"cagem0_mnist": "log p(x) >= -81.60", "cagem100_mnist": "t100",
                                              "gmvae_fashion_mnist": ">= 75% Hungarian"})
    rows = campaign.published_table()
    assert len(rows) == 2 + 3
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 8 for row in rows)  # 7 cells each (an escaped \| inside one)
    assert rows[2] == "| cagem0_mnist | 300, 2026-12-07 | 20.3% | - | -84.82 (10000) | 18.9% | log p(x) >= -81.60 |"
    assert rows[3] == "| cagem100_mnist | 42, 2026-12-06 | 96.1% | 3.91% | -89.79 (all) | - | t100 |"
    assert rows[4] == "| gmvae_fashion_mnist | not published | | | | | >= 75% Hungarian |"


def test_entropy_table_reads_the_test_entropy_at_shus_epochs(tmp_path, monkeypatch, capsys):
    """H(q(y|x)) = log K - val_kl_y after our epochs 1 / 2 / 4 / 8 / 17, for
    the GMVAE runs beside Shu's only, and his logs' range (catches the KL
    printed instead of the entropy, or an epoch off by one)."""
    campaign = _script("campaign")
    runs = tmp_path / "runs"
    (runs / "probe").mkdir(parents=True)
    (runs / "probe" / "log.csv").write_text("epoch,val_kl_y\n0,1.0\n1,1.5\n2,9.9\n3,2.0\n")
    (runs / "started").mkdir(parents=True)
    (runs / "started" / "log.csv").write_text("epoch,val_kl_y,neg_elbo,test_acc_majority,test_acc_hungarian\n")
    (runs / "other").mkdir(parents=True)
    (runs / "other" / "log.csv").write_text("epoch,val_kl_y\n0,1.0\n")
    monkeypatch.setattr(campaign, "SAVED", str(tmp_path / "saved"))
    monkeypatch.setattr(campaign, "QUEUE", [{"run": "probe", "train": [], "epochs": 4, "entropy_probe": True},
                                            {"run": "other", "train": [], "epochs": 1}])
    monkeypatch.setattr(campaign, "QUEUE", campaign.QUEUE + [{"run": "started", "train": [], "epochs": 4,
                                                               "beside_shu": True}])
    campaign.main(["report", "--runs-dir", str(runs)])  # a run with no finished epoch is left out
    assert "| started |" not in capsys.readouterr().out
    rows = campaign.entropy_table(str(runs))
    assert len(rows) == 2 + 1 + 1
    assert rows[2] == "| probe | 1.30 | 0.80 | 0.30 |  |  |"
    assert rows[3].startswith("| Shu's logs 0-6 (`t_ent`): min-max | 1.19-1.67 | 1.09-1.74 | 0.56-1.46 |")


def test_report_gives_each_seed_groups_mean_where_all_its_seeds_have_the_epoch(tmp_path, monkeypatch, capsys):
    """One mean row per `SEED_GROUPS` recipe, over its seeds' majority-vote
    accuracy at Shu's epochs, left empty where a seed has not got there (a
    mean over the seeds that happen to be ahead would mislead)."""
    campaign = _script("campaign")
    runs = tmp_path / "runs"
    for seed, (acc42, acc84) in enumerate(((0.70, 0.80), (0.80, None))):
        (runs / f"gmvae_eps_seed{seed}").mkdir(parents=True)
        epochs = range(84 if acc84 else 42)
        (runs / f"gmvae_eps_seed{seed}" / "log.csv").write_text(
            "epoch,neg_elbo,test_acc_majority,test_acc_hungarian\n" + "".join(
                f"{e},{100 - e / 10},{acc42 if e < 42 else acc84},0.5\n" for e in epochs))
    monkeypatch.setattr(campaign, "SAVED", str(tmp_path / "saved"))
    monkeypatch.setattr(campaign, "QUEUE", [{"run": f"gmvae_eps_seed{s}", "train": [], "epochs": 250,
                                             "beside_shu": True} for s in range(2)])
    campaign.main(["report", "--runs-dir", str(runs)])
    row = next(line for line in capsys.readouterr().out.splitlines() if "(`gmvae_eps_seed*`)" in line)
    assert [c.strip() for c in row.split("|")[4:6]] == ["75.0% (n = 2, 70.0-80.0%)", ""]


def test_report_update_replaces_only_the_tables_under_the_marker(tmp_path, monkeypatch):
    """`report --update FILE` puts the first three tables (GMVAE runs,
    campaign, published) under FILE's marker line in place of the old ones,
    keeps the text around them byte for byte, leaves the entropy table out,
    and refuses a file without exactly one marker, leaving it untouched."""
    campaign = _script("campaign")
    runs = tmp_path / "runs"
    (runs / "gmvae_eps_seed0").mkdir(parents=True)
    (runs / "gmvae_eps_seed0" / "log.csv").write_text(
        "epoch,neg_elbo,test_acc_majority,test_acc_hungarian,val_kl_y\n0,99.0,0.61,0.6,1.0\n")
    (runs / "gmvae_eps_seed0" / "backup").mkdir()
    (runs / "gmvae_eps_seed0" / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
    monkeypatch.setattr(campaign, "SAVED", str(tmp_path / "saved"))
    monkeypatch.setattr(campaign, "ZOO", str(tmp_path / "zoo"))
    monkeypatch.setattr(campaign, "QUEUE", [{"run": "gmvae_eps_seed0", "train": [], "epochs": 250,
                                             "beside_shu": True, "preset": "gmvae_mnist"}])
    before = "## 9. The campaign\n\nText before.\n\n"
    after = "\n\nSessions 10-15: text after, | with a pipe.\n## 10. Next\n"
    old = ("<!-- python scripts/campaign.py report; 2026-01-01; OLD CPU -->\n| old | gmvae |\n|---|---|\n\n"
           "| old | campaign |\n|---|---|\n\n| old | published |\n|---|---|")
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(before + old + after)
    campaign.main(["report", "--runs-dir", str(runs), "--update", str(doc)])
    text = doc.read_text()
    assert text.startswith(before + campaign.REPORT_MARKER) and text.endswith(after)
    assert "| old |" not in text and "OLD CPU" not in text
    block = text[len(before):-len(after)]
    tables = block.split("\n\n")
    assert len(tables) == 3, tables
    assert "| gmvae_eps_seed0 | 1 / 1 |" in tables[0]
    assert tables[1].startswith("| preset | run |") and "| gmvae_mnist | gmvae_eps_seed0 | 1 / 250 |" in tables[1]
    assert tables[2].startswith("| preset | published: epochs, date |")
    assert "t_ent" not in text  # the entropy table stays in the printed report only
    # once more: the marker block is found again and replaced, not duplicated
    campaign.main(["report", "--runs-dir", str(runs), "--update", str(doc)])
    assert doc.read_text() == text
    doc.write_text(before + after)
    with pytest.raises(SystemExit, match="exactly one line starting with"):
        campaign.main(["report", "--runs-dir", str(runs), "--update", str(doc)])
    assert doc.read_text() == before + after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BENCHMARKS.md", "runs"]


def test_plot_draws_each_seed_groups_accuracy_per_shu_epoch(tmp_path, monkeypatch):
    """`accuracy_curves` puts each seed and the continuation that chose among
    them in their group, at Shu's epochs (ours / (5/6)); `plot` writes a
    PNG, and with no run to draw says so and leaves no file behind."""
    campaign = _script("campaign")
    runs = tmp_path / "runs"
    for run, accs in (("gmvae_eps_seed0", (0.5, 0.6)), ("gmvae_eps_seed1", (0.4,)),
                      ("gmvae_eps_best", (0.5, 0.6, 0.7)), ("measure", (0.9,))):
        (runs / run).mkdir(parents=True)
        (runs / run / "log.csv").write_text("epoch,test_acc_majority\n"
                                            + "".join(f"{e},{a}\n" for e, a in enumerate(accs)))
    monkeypatch.setattr(campaign, "SAVED", str(tmp_path / "saved"))
    monkeypatch.setattr(campaign, "QUEUE", [
        {"run": "gmvae_eps_seed0", "train": [], "epochs": 2}, {"run": "gmvae_eps_seed1", "train": [], "epochs": 2},
        {"run": "gmvae_eps_best", "seed": "best", "train": [], "epochs": 3,
         "among": ["gmvae_eps_seed0", "gmvae_eps_seed1"]},
        {"run": "measure", "train": [], "epochs": 1}])
    curves = campaign.accuracy_curves(str(runs))
    assert list(curves) == ["gmvae_eps_seed"]
    assert [run for run, _, _ in curves["gmvae_eps_seed"]] == ["gmvae_eps_seed0", "gmvae_eps_seed1", "gmvae_eps_best"]
    run, xs, ys = curves["gmvae_eps_seed"][0]
    assert xs == pytest.approx([1.2, 2.4]) and ys == [0.5, 0.6]
    out = tmp_path / "curves.png"
    campaign.main(["plot", "--runs-dir", str(runs), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.png"
    with pytest.raises(SystemExit, match="no GMVAE seed run has a test accuracy"):
        campaign.main(["plot", "--runs-dir", str(tmp_path / "none"), "--out", str(empty)])
    assert not empty.exists()


def test_submission_size_counts_every_committed_version_and_the_work_tree(tmp_path):
    """A binary file committed twice costs both versions' diffs (and its old
    content again as the reverse half), and the uncommitted change counts
    too: session 11's stop was refused for the sum of its campaign saves."""
    import subprocess

    size = _script("submission_size")
    repo = str(tmp_path / "repo")
    os.makedirs(repo)

    def git(*a):
        subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", *a], check=True,
                       capture_output=True)

    git("init", "-q")
    open(os.path.join(repo, "README"), "w").write("start\n")
    git("add", "-A")
    git("commit", "-q", "-m", "start")
    base = subprocess.check_output(["git", "-C", repo, "rev-parse", "HEAD"], text=True).strip()
    rng = np.random.default_rng(0)
    weights = os.path.join(repo, "w.bin")
    for i in range(2):
        rng.bytes(1 << 20)  # incompressible, like trained weights
        open(weights, "wb").write(rng.bytes(1 << 20))
        git("add", "-A")
        git("commit", "-q", "-m", f"weights {i}")
    r = size.report(repo, base=base)
    # first commit: the new file (~1.25 MiB); second: the new and the old version
    assert r["commits"] == 2 and 3.5 < r["committed_diff_mib"] < 4.2 and r["pending_diff_mib"] < 0.01
    assert r["ok"]
    open(os.path.join(repo, "new.bin"), "wb").write(rng.bytes(1 << 20))  # untracked, not ignored
    r = size.report(repo, base=base)
    assert 1.2 < r["pending_diff_mib"] < 1.3 and r["total_diff_mib"] > r["committed_diff_mib"] + 1.2
    assert size.main(["--repo", repo, "--base", base, "--limit-mib", "4"]) == 1  # over 80% of a 4 MiB limit
    assert size.main(["--repo", repo, "--base", base]) == 0
    assert size.report(repo)["base"] == base[:12]  # the default base: the oldest reflog entry


def test_campaign_jobs_wait_for_their_cpu_flag_and_kind(monkeypatch):
    """A job names a flag the CPU must have (`cpu_flag`) or the kind of
    `tfmix.hardware.cpu_kind` (`cpu_kind`: AVX-512 BF16 without AMX is not
    an AMX CPU's kind, although an AMX CPU has the avx512_bf16 flag, nor an
    Intel CPU's without AMX: the kind is AMD's)."""
    campaign = _script("campaign")
    amx = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    epyc = {"avx2", "avx512f", "avx512_bf16"}
    job = {"run": "j", "train": [], "epochs": 1, "cpu_kind": "avx512_bf16"}
    for flags, vendor, kind_ok in ((amx, "GenuineIntel", False), (epyc, "AuthenticAMD", True),
                                   (epyc, "GenuineIntel", False), ({"avx2"}, "AuthenticAMD", False)):
        monkeypatch.setattr(campaign, "cpu_flags", lambda flags=flags: set(flags))
        monkeypatch.setattr(campaign, "cpu_vendor", lambda vendor=vendor: vendor)
        assert campaign.runs_here(job) is kind_ok
        assert campaign.runs_here({**job, "cpu_kind": None, "cpu_flag": "avx512_bf16"}) is ("avx512_bf16" in flags)
        assert campaign.runs_here({"run": "any", "train": [], "epochs": 1})


def test_campaign_seed_variants_differ_from_their_recipe_only_in_the_seed():
    """`seeded` replaces the one `--seed` value; the initialisation check's
    seeds 1 and 2 train seed 0's command otherwise unchanged, and every run
    name in the queue is unique (a repeated name would resume another run)."""
    campaign = _script("campaign")
    assert campaign.seeded(["gmvae", "--seed", "0", "--epochs", "3"], 2) == ["gmvae", "--seed", "2", "--epochs", "3"]
    jobs = {job["run"]: job for job in campaign.QUEUE}
    assert len(jobs) == len(campaign.QUEUE)
    for group in ("gmvae_concat_init_seed", "gmvae_eps_seed", "gmvae_shu_all_seed"):
        base = jobs[f"{group}0"]["train"]
        for seed in (1, 2):
            train = jobs[f"{group}{seed}"]["train"]
            assert train == campaign.seeded(base, seed) and train != base
            assert jobs[f"{group}{seed}"]["epochs"] == jobs[f"{group}0"]["epochs"]
    # the second round's continuation trains the seeds' command (with the seed it chooses)
    assert jobs["gmvae_mnist_eps_best"]["train"] == jobs["gmvae_eps_seed0"]["train"]
    assert jobs["gmvae_mnist_eps_best"]["among"] == [f"gmvae_eps_seed{s}" for s in range(3)]
    # the report's seed groups: a prefix and a seed only
    assert campaign.seed_group("gmvae_eps_seed12") == "gmvae_eps_seed"
    assert campaign.seed_group("gmvae_shu_all_eps_seed0") is None and campaign.seed_group("gmvae_eps_seed") is None
    assert campaign.seed_group("gmvae_mnist_best") is None


def test_campaign_maaloe_weighting_scales_the_cross_entropy_by_beta_n_over_n_labelled():
    """Maaloe et al.'s weighting: per-batch ELBO means and 0.1 N / N_l on the
    labelled cross-entropy (60 / 120 / 300 for 100 / 50 / 20 of 60,000)."""
    from tfmix import cli, runs

    campaign = _script("campaign")
    for labels, weight in ((100, 60.0), (50, 120.0), (20, 300.0)):
        args = cli.build_parser().parse_args(["train", *campaign.CAGEM, *campaign.maaloe_weighting(labels),
                                              "--out", "r"])
        assert (args.labels, args.weighting, args.warmup_epochs) == (str(labels), "maaloe", 10)
        assert runs.WEIGHTINGS[args.weighting](labels, 60000) == (1.0, weight)
    jobs = {j["run"]: j for j in campaign.QUEUE}
    for labels in (20, 50):
        train = jobs[f"cagem{labels}_maaloe"]["train"]
        assert train[:len(campaign.CAGEM)] == campaign.CAGEM and train[len(campaign.CAGEM):] == \
            campaign.maaloe_weighting(labels)
    assert jobs["cagem100_mnist_seed0"]["preset"] == "cagem100_mnist"  # the recipe's weighting: test below


@pytest.mark.mnist_data
def test_train_zoo_takes_the_recipes_weighting(tmp_path, monkeypatch):
    """The cagem100_mnist recipe trains with Maaloe et al.'s weighting
    (cross-entropy x 0.1 N / N_l = 60, labelled mean x 1)."""
    from tfmix import runs

    seen = {}
    monkeypatch.setattr(runs, "train", lambda config, run_dir, **kw: seen.setdefault("config", config))
    _script("train_zoo").main(["cagem100_mnist", "--epochs", "1", "--run-dir", str(tmp_path / "r")])
    kwargs = seen["config"]["model_kwargs"]
    assert (kwargs["labelled_fraction"], kwargs["classification_weight"]) == (1.0, 60.0)
    assert seen["config"]["num_labels"] == 100 and seen["config"]["warmup_epochs"] == 10


def test_campaign_trainings_take_sigint_even_when_the_queue_ignores_it():
    """`stop` interrupts each training with SIGINT; a queue started in the
    background of a script ignores SIGINT, and without `interruptible` its
    trainings inherited that and kept running after `stop`."""
    import signal
    import subprocess
    import sys

    campaign = _script("campaign")
    probe = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job
    try:
        inherited = subprocess.run(probe, capture_output=True, text=True).stdout.strip()
        fixed = subprocess.run(probe, capture_output=True, text=True, preexec_fn=campaign.interruptible).stdout.strip()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (inherited, fixed) == ("False", "True")


@pytest.mark.mnist_data
def test_adam_state_reads_each_variables_second_moment(tmp_path, capsys):
    """scripts/adam_state.py reads the Adam moments of a run's backup, each
    with its own variable, and counts the entries below each epsilon
    (catches moments paired with the wrong variable, a missing bias
    correction, or shares that ignore the threshold)."""
    from tfmix import runs

    run = str(tmp_path / "run")
    config = runs.run_config("gmvae", "mnist", epochs=1, batch_size=50, seed=0, limit=100,
                             model_kwargs={"hidden_units": [8], "latent_dim": 2, "num_clusters": 3})
    model = runs.train(config, run, verbose=0)
    script = _script("adam_state")
    steps, state = script.adam_state(run)
    opt = model.optimizer
    assert steps == int(opt.iterations) == 2 and len(state) == len(model.trainable_variables)
    for (name, shape, root), var in zip(state, model.trainable_variables):
        v = opt._velocities[opt._get_variable_index(var)].numpy()
        assert name == var.path.split("/", 1)[1] and shape == tuple(var.shape)
        np.testing.assert_allclose(root, np.sqrt(v / (1 - 0.999 ** 2)), rtol=1e-5)
    script.main([run, "--epsilons", "1e-30,1e3"])
    table = capsys.readouterr().out
    assert "(Adam step 2)" in table and "| share < 1e-30 | share < 1000 |" in table
    names = {name for name, _, _ in state}
    rows = [row for row in table.splitlines() if row.split(" | ")[0][2:] in names]
    assert len(rows) == len(state) and all(row.endswith("| 100.0% |") for row in rows)
    with pytest.raises(SystemExit):
        script.main([run, "--epsilons", "0"])
    with pytest.raises(SystemExit, match="no run.json"):
        script.adam_state(str(tmp_path))


def test_compare_twins_reads_each_runs_epochs_and_last_ten_means(tmp_path, capsys):
    """scripts/compare_twins.py puts each run's own log.csv row for epoch e
    (row e - 1) side by side and averages the last ten epochs both runs
    have (catches an off-by-one epoch, runs swapped, a mean over the wrong
    rows, or twins that log different -ELBOs compared anyway)."""

    def log(run, rows, columns=("neg_elbo", "val_neg_elbo")):
        os.makedirs(run)
        with open(os.path.join(run, "log.csv"), "w") as f:
            f.write(",".join(("epoch", *columns, "test_acc_hungarian")) + "\n")
            for e, (train, val, acc) in enumerate(rows):
                f.write(f"{e},{train},{val},{acc}\n")

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    log(a, [(100 + e, 200 + e, 0.5) for e in range(12)])  # 12 epochs
    log(b, [(300 + e, 400 + e, 0.25) for e in range(11)])  # 11 epochs
    script = _script("compare_twins")
    script.main([a, b, "--epochs", "1,12", "--names", "bf16,fp32"])
    out = capsys.readouterr().out
    assert "runs: bf16 / fp32" in out
    assert "| 1 | 200.00 / 400.00 | 100.00 / 300.00 | 50.0% / 25.0% |" in out
    assert "| 12 | 211.00 / - | 111.00 / - | 50.0% / - |" in out
    # epochs 2-11 of each (the 11 both have): mean of 201..210 and of 401..410
    assert "| mean of epochs 2-11 | 205.50 / 405.50 | 105.50 / 305.50 | |" in out
    c = str(tmp_path / "c")
    log(c, [(1, 2, 0.1)], columns=("labelled_neg_elbo", "val_labelled_neg_elbo"))
    with pytest.raises(SystemExit, match="not twins"):
        script.main([a, c])
    script.main([c, c, "--epochs", "1"])
    assert "validation labelled -ELBO" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no log.csv"):
        script.main([a, str(tmp_path)])
    with pytest.raises(SystemExit, match="at least two runs"):
        script.main([a])
    with pytest.raises(SystemExit, match="--epochs"):
        script.main([a, b, "--epochs", "0"])


def test_each_configuration_names_its_settings(bench):
    """A configuration's name says what it sets: `_xla` compiles with XLA,
    `_spe10` runs ten steps per execution, `bf16_logits` puts the decoder's
    output layer in bfloat16 (catches a new configuration that silently
    falls back to another's settings)."""
    import keras

    want = {"fp32": (False, 1, "float32", "float32"), "xla": (True, 1, "float32", "float32"),
            "bf16_xla": (True, 1, "mixed_bfloat16", "float32"),
            "bf16_logits_xla": (True, 1, "mixed_bfloat16", "compute"),
            "bf16_logits_spe10": (False, 10, "mixed_bfloat16", "compute")}
    try:
        for config, (jit, spe, policy, logits) in want.items():
            model, _, settings = bench.build_model("nvae", config)
            assert (settings["jit_compile"], settings["steps_per_execution"], settings["dtype_policy"],
                    settings["decoder_logits_dtype"]) == (jit, spe, policy, logits), config
            assert model.decoder_logits_dtype == logits, config
    finally:
        keras.config.set_dtype_policy("float32")
