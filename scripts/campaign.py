"""The zoo campaign (issue 19): one command trains the queued presets.

    # start the queue for H hours (returns at once; the queue runs in the background)
    python scripts/campaign.py run --hours 2.5 [--runs-dir ~/tfmix-runs/campaign]
    python scripts/campaign.py run --hours 2.5 --jobs 1 --threads 1  # a core left free (an evaluation)
    python scripts/campaign.py status            # epochs done per run, what is running
    python scripts/campaign.py pause | resume    # SIGSTOP / SIGCONT the whole queue (benchmarks, CI)
    python scripts/campaign.py save              # copy every run's resumable state into zoo/campaign/
                                                 # (once per session, at the end: see submission_size.py)
    python scripts/campaign.py report            # Markdown: GMVAE test accuracy at Shu's epochs, every
                                                 # preset run's epochs, the published presets' figures
    python scripts/campaign.py plot [--out PNG]  # the same per epoch beside Shu's logs (docs/figures/)
    python scripts/campaign.py publish RUN [--ll-limit N] [--notes "..."]  # a finished preset run -> zoo/<preset>/
    python scripts/campaign.py prune [RUN ...] [--apply]  # the weights zoo/campaign/ no longer needs

`run` snapshots the committed code (`git archive HEAD`) under the runs
directory and trains from that snapshot (PYTHONPATH), so that editing the
work tree never changes a running job. It keeps as many trainings going as
there are cores (one TF thread each; `--jobs`, `--threads` to change), each resuming where it stopped
(`tfmix.runs.train`: the same run directory, the same data per epoch),
in the order of `QUEUE`, and stops them cleanly: each invocation gets a
time limit that ends its last epoch before the hours run out.

A run's directory lives outside the repository; `save` copies what a
resume needs (`run.json`, `progress.json`, `log.csv`, the Keras
`backup/` state with the optimizer, the early-stopping state) into
`zoo/campaign/<run>/`, one copy per unfinished run, and `run` restores a
run from there when its directory is missing (a new machine). A finished
run keeps only its log there (no weights), except a preset run not yet
published (`publish` runs `scripts/publish_zoo.py` on it and records
`published.json` in its directory; `status` lists the runs waiting for it)
and a finished seed, which keeps its weights until the continuation that
chooses among the seeds has chosen (`chosen.json`, saved and restored with
the continuation). A run already saved at its last epoch is not rewritten
(dropping its weights then would cost a stop their size again in diffs):
`prune` lists the weights that saved copies keep but no longer need, with
what deleting them would add to a stop's diffs, and `--apply` deletes them
(a few runs per stop, as the diff budget allows).
"""

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RUNS = os.path.join(os.path.expanduser("~"), "tfmix-runs", "campaign")
SAVED = os.path.join(REPO, "zoo", "campaign")
ZOO = os.path.join(REPO, "zoo")
PUBLISH_ZOO = os.path.join(REPO, "scripts", "publish_zoo.py")
#: in a preset run's directory once `publish` has published it: {"preset", "epochs", "date"}
PUBLISHED_FILE = "published.json"
#: what a run directory needs to resume exactly (BackupAndRestore state included)
RESUME_FILES = ("run.json", "progress.json", "log.csv", "backup/latest.weights.h5",
                "backup/training_metadata.json", "best.weights.h5", "early_stopping.json",
                "labelled_indices.npy", "chosen.json", PUBLISHED_FILE)  # chosen.json: a continuation's seed
#: what a finished preset run keeps in zoo/campaign/ until `publish` (which reads its model)
AWAITING_FILES = RESUME_FILES + ("model.keras",)
#: what a finished measurement run keeps in zoo/campaign/ (no weights)
FINISHED_FILES = ("run.json", "progress.json", "log.csv", "backup/training_metadata.json", PUBLISHED_FILE)
MIB = 1 << 20
#: one of Shu's epochs is 500 steps of 100 images; ours is one pass over 60,000
SHU_EPOCH = 50000 / 60000


def shu_epochs(n):
    """Our epochs (60,000 images) covering `n` of Shu's (50,000)."""
    return int(-(-n * SHU_EPOCH // 1))


CAGEM = ["cagem", "--dataset", "mnist", "--learning-rate", "3e-4", "--batch-size", "100", "--seed", "0",
         "--hidden-units", "500,500", "--latent-dim", "64", "--param", "top_latent_dim=32", "--num-clusters", "10"]
INFOCAT = ["infocatvae", "--dataset", "mnist", "--learning-rate", "1e-3", "--batch-size", "128", "--seed", "0",
           "--num-clusters", "10", "--param", "delta=2", "--param", "prior_scale=2.0", "--hidden-units", "400"]
M2 = ["m2", "--dataset", "mnist", "--batch-size", "100", "--seed", "0", "--labels", "100"]
#: unsupervised M2 at the GMVAE's size (the speed benchmark's reference M2)
M2_UNSUP = ["m2", "--dataset", "mnist", "--batch-size", "100", "--learning-rate", "1e-3", "--seed", "0",
            "--hidden-units", "512,512", "--latent-dim", "64", "--num-clusters", "10"]
#: modified M2 (Shu's) at the same size
MODIFIED_M2 = ["modified_m2"] + M2_UNSUP[1:]
#: the nvae_mnist recipe (fully supervised) as a tfmix train command line
NVAE = ["nvae", "--dataset", "mnist", "--batch-size", "100", "--learning-rate", "1e-3", "--seed", "0", "--labels", "all",
        "--hidden-units", "512,512", "--num-clusters", "10", "--param", "class_latent_dim=6",
        "--param", "shared_latent_dim=10"]
#: the gmvae_mnist recipe (Shu's protocol) as a tfmix train command line
GMVAE_SHU = ["gmvae", "--dataset", "mnist", "--batch-size", "100", "--learning-rate", "1e-3", "--seed", "0",
             "--hidden-units", "512,512", "--latent-dim", "64", "--num-clusters", "10"]
#: the second round of issue 19's protocol: that recipe with Shu's Adam epsilon (the gmvae_mnist
#: recipe since session 22), float32 like the first round's seeds
GMVAE_EPS = GMVAE_SHU + ["--dtype-policy", "float32", "--adam-epsilon", "1e-10"]


def seeded(command, seed):
    """A `tfmix train` command line with its `--seed` value replaced."""
    i = command.index("--seed")
    return command[:i + 1] + [str(seed)] + command[i + 2:]


def maaloe_weighting(num_labels):
    """`tfmix train` arguments for a CaGeM run with `num_labels` labels and
    the semi-supervised weighting of Maaloe et al.'s code
    (`tfmix.runs.WEIGHTINGS["maaloe"]`)."""
    return ["--labels", str(num_labels), "--warmup-epochs", "10", "--weighting", "maaloe"]


#: Dilokthanakul et al.'s settings from `Nat-D/GMVAE` main.lua (Adam 1e-4, batch 50) on our MLP
DILOK = ["dilokthanakul_gmvae", "--dataset", "mnist", "--batch-size", "50", "--learning-rate", "1e-4", "--seed", "0",
         "--num-clusters", "10"]
#: the dlgmm_mnist recipe
DLGMM = ["dlgmm", "--dataset", "binarized_mnist", "--batch-size", "100", "--learning-rate", "3e-4", "--seed", "0",
         "--num-clusters", "3", "--latent-dim", "25", "--hidden-units", "500"]

#: The queue, in priority order (issues 17 and 19). A job trains a preset's
#: recipe (`preset`, `seed`) or runs `tfmix train` with `train` (the
#: fidelity measurements of issue 17: the same 30-epoch budget as the
#: earlier runs, now with J^alpha, the continuous-only warm-up, the
#: authors' InfoCatVAE term). `seed="best"` continues the seed of `among`
#: with the lowest training -ELBO once all of them are done (a `train`
#: continuation with that seed's `--seed`). A `train` job that trains a
#: preset's run names it in `for_preset` (the report's campaign table). With two
#: slots, GMVAE seed 0 keeps one while the measurements take the other;
#: the 300-epoch CaGeM and InfoCatVAE runs of issue 19 come after the
#: GMVAE seeds, in the issue's order of priority. The CaGeM-0 warm-up checks
#: (K = 5 / 10 / 20 and the no-warm-up control, 4 epochs on 10,000 images)
#: ran to the end in session 8 and are reported in BENCHMARKS.md section 10,
#: so they are no longer queued.
QUEUE = [
    {"run": "gmvae_mnist_seed0", "preset": "gmvae_mnist", "seed": 0, "epochs": shu_epochs(300)},
    # M2-100: J^alpha (stopped at 18 epochs in session 9: q(y|x) had been
    # uniform on unlabelled images and the validation accuracy falling since
    # epoch 0) and the earlier per-batch weighting for the same 18 epochs
    {"run": "m2_100labels_jalpha", "train": M2, "epochs": 18},
    {"run": "m2_100labels_perbatch", "train": M2 + ["--param", "labelled_fraction=1", "--classification-weight", "1"],
     "epochs": 18},
    # CaGeM J^alpha: stopped at 18 epochs in session 9 (the 100-label test
    # error rose every epoch, 66.5% after the first to 94.9%), 20 and 50
    # labels for 10 epochs
    {"run": "cagem100_jalpha", "train": CAGEM + ["--labels", "100", "--warmup-epochs", "10"], "epochs": 18},
    {"run": "infocatvae_stratified", "train": INFOCAT, "epochs": 40},
    # issue 17 item 1: the authors' weight 10 on the KL and entropy terms
    # (`utils.py` `loss_function` in one commit), alone and with their dropout
    # 0.25; session 11 measured kl10 (its submission was refused, the runs lost)
    {"run": "infocatvae_kl10", "train": INFOCAT + ["--param", "kl_weight=10"], "epochs": 40},
    # the authors' reconstruction (one z from the soft assignment, y_estimator="soft") with their
    # weight 10, then every setting of theirs at once (with dropout 0.25 and grey levels)
    {"run": "infocatvae_kl10_soft", "train": INFOCAT + ["--param", "kl_weight=10", "--param", "y_estimator=\"soft\""],
     "epochs": 40},
    {"run": "infocatvae_authors", "train": INFOCAT + ["--param", "kl_weight=10", "--param", "y_estimator=\"soft\"",
                                                      "--param", "dropout=0.25", "--binarize", "none"], "epochs": 40},
    {"run": "infocatvae_kl10_dropout", "train": INFOCAT + ["--param", "kl_weight=10", "--param", "dropout=0.25"],
     "epochs": 40},
    # issue 17 item 7, 30 epochs each (measured in session 10, whose machine went before it was saved)
    {"run": "dlgmm_entropy_component", "train": DLGMM, "epochs": 30},
    {"run": "dlgmm_entropy_mixture", "train": DLGMM + ["--param", "entropy=\"mixture\""], "epochs": 30},
    {"run": "infocatvae_relaxed", "train": INFOCAT + ["--param", "info_sampling=\"relaxed\""], "epochs": 40},
    # issue 18: bfloat16 against float32 with the same seed (float32 seed 0
    # and seed 1 are the first 30 epochs of gmvae_mnist_seed0 / _seed1); only
    # on a CPU with native bfloat16 (elsewhere bfloat16 is emulated, slower
    # than float32, and never the default)
    {"run": "gmvae_bf16_seed0", "train": GMVAE_SHU + ["--dtype-policy", "mixed_bfloat16"], "epochs": 30,
     "cpu_flag": "avx512_bf16"},
    # issue 17 item 1: the infocatvae presets with the authors' weight 10 (the recipe since
    # session 13), 40 epochs as before, to be republished (infocatvae_mnist's 40 epochs ran as
    # `infocatvae_mnist_kl10`, renamed infocatvae_mnist_seed0 below when it went on to 300); then
    # DLGMM item 7 again with the weights kept for log p(x) and the component separation
    {"run": "infocatvae_fashion_mnist_kl10", "preset": "infocatvae_fashion_mnist", "seed": 0, "epochs": 40},
    {"run": "dlgmm_component_kept", "train": DLGMM, "epochs": 30},
    {"run": "dlgmm_mixture_kept", "train": DLGMM + ["--param", "entropy=\"mixture\""], "epochs": 30},
    # issue 18: the float32 twin of gmvae_bf16_seed0 (the same seed and data; gmvae_mnist_seed0's
    # epoch-30 weights are gone), so that log p(x) is measured on both at epoch 30
    {"run": "gmvae_fp32_seed0", "train": GMVAE_SHU + ["--dtype-policy", "float32"], "epochs": 30,
     "cpu_flag": "avx512_bf16"},
    # the Fashion-MNIST preset with weight 10 lost on every measure to the earlier preset (the
    # relaxed term, weight 1; BENCHMARKS.md section 10): the authors' term with weight 1
    {"run": "infocatvae_fashion_mnist_kl1", "preset": "infocatvae_fashion_mnist", "seed": 0, "epochs": 40},
    # issue 18 on an AMX CPU: the same pair (bfloat16 and its float32 twin, seed 0, 30 epochs),
    # both kept for log p(x), so that the AMX default is decided on AMX numerics
    {"run": "gmvae_amx_bf16_seed0", "train": GMVAE_SHU + ["--dtype-policy", "mixed_bfloat16"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    {"run": "gmvae_amx_fp32_seed0", "train": GMVAE_SHU + ["--dtype-policy", "float32"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    # issue 17 item 5: CaGeM-20 / -50 with J^alpha, 10 epochs each (measured in session 11, lost)
    {"run": "cagem20_jalpha", "train": CAGEM + ["--labels", "20", "--warmup-epochs", "10"], "epochs": 10},
    {"run": "cagem50_jalpha", "train": CAGEM + ["--labels", "50", "--warmup-epochs", "10"], "epochs": 10},
    {"run": "gmvae_mnist_seed1", "preset": "gmvae_mnist", "seed": 1, "epochs": shu_epochs(300)},
    {"run": "gmvae_mnist_seed2", "preset": "gmvae_mnist", "seed": 2, "epochs": shu_epochs(300)},
    # issue 19 item 3: the infocatvae_mnist recipe (weight 10) to 300 epochs, from its 40
    # (after the GMVAE seeds, issue 19's first priority)
    {"run": "infocatvae_mnist_seed0", "preset": "infocatvae_mnist", "seed": 0, "epochs": 300},
    # issue 18: M2 and CaGeM are 1.23-1.35x faster in bfloat16 on AMX (BENCHMARKS.md section 11);
    # the same 30-epoch twin comparison as the GMVAE's decides whether bfloat16 becomes their default
    {"run": "m2_amx_bf16_seed0", "train": M2_UNSUP + ["--dtype-policy", "mixed_bfloat16"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    {"run": "m2_amx_fp32_seed0", "train": M2_UNSUP + ["--dtype-policy", "float32"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    # issue 18 on an AVX-512 BF16 CPU without AMX: with the decoder's output layer in bfloat16 a
    # GMVAE epoch took 1.05-1.22x less time than in plain mixed_bfloat16 (that kind's default) in
    # five interleaved rounds (session 18); its 30-epoch twin against gmvae_bf16_seed0 /
    # gmvae_fp32_seed0 (the same seed and data) decides the default. Both twins are short and need
    # this CPU kind, which a session may not have again soon: ahead of the 1000-epoch continuation
    {"run": "gmvae_bf16logits_seed0", "train": GMVAE_SHU + ["--dtype-policy", "mixed_bfloat16_logits"],
     "epochs": 30, "cpu_kind": "avx512_bf16"},
    # CaGeM there: 1.28-1.40x faster with it than its float32 default (the same five rounds); its
    # twin is cagem_amx_fp32_seed0 (float32's numerics do not depend on AMX). Before the CaGeM
    # presets start, so that a run started on such a CPU takes the decided default
    {"run": "cagem_bf16logits_seed0", "train": CAGEM + ["--dtype-policy", "mixed_bfloat16_logits"],
     "epochs": 30, "cpu_kind": "avx512_bf16"},
    # issue 19 item 1: the seed with the best training -ELBO at Shu's epoch 300 goes on to his
    # 1000 (float32, the dtype its seed started with), ahead of the M2 and InfoCatVAE variants
    # (it finished its 834 epochs in session 20 or 21 on a machine since lost, after the last save at 797;
    # its figures are in BENCHMARKS.md section 9 and the gmvae_mnist card, and its recipe, before
    # Shu's Adam epsilon, cannot resume under today's preset)
    {"run": "gmvae_mnist_best", "preset": "gmvae_mnist", "seed": "best", "epochs": shu_epochs(1000),
     "among": ["gmvae_mnist_seed0", "gmvae_mnist_seed1", "gmvae_mnist_seed2"],
     "finished_elsewhere": "saved at 797; finished at 834 in sessions 20-21, whose figures are the gmvae_mnist card's"},
    {"run": "cagem_amx_bf16_seed0", "train": CAGEM + ["--dtype-policy", "mixed_bfloat16"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    {"run": "cagem_amx_fp32_seed0", "train": CAGEM + ["--dtype-policy", "float32"], "epochs": 30,
     "cpu_flag": "amx_bf16"},
    # issue 18: the decoder's output layer in bfloat16 too (`--dtype-policy mixed_bfloat16_logits`,
    # 1.3-1.4x faster than mixed_bfloat16 for the GMVAE on AMX in session 16): the same 30-epoch
    # twin comparison against gmvae_amx_fp32_seed0 / gmvae_amx_bf16_seed0 decides the default
    {"run": "gmvae_amx_bf16logits_seed0", "train": GMVAE_SHU + ["--dtype-policy", "mixed_bfloat16_logits"],
     "epochs": 30, "cpu_flag": "amx_bf16"},
    {"run": "cagem_amx_bf16logits_seed0", "train": CAGEM + ["--dtype-policy", "mixed_bfloat16_logits"],
     "epochs": 30, "cpu_flag": "amx_bf16"},
    # issue 17 item 5: M2-100 with the per-batch weighting was at 16.7% test error after 18 epochs
    # and still falling (Kingma: 11.97%); the same run to 100 epochs (about 5 h at 3.2 min/epoch)
    {"run": "m2_100labels_perbatch_100", "train": M2 + ["--param", "labelled_fraction=1", "--classification-weight", "1"],
     "epochs": 100},
    # issue 17 / 19: Rui Shu's parameterisation, which tfmix's GMVAE departed from (his softplus
    # outputs are variances, his KL(q(z|x,y) || p(z|y)) the one-sample log-ratio: `RuiShu/vae-clustering`
    # `shared_subgraphs.py`); seed 0 of the gmvae_mnist recipe in float32 like seeds 0-2, to Shu's
    # epoch 100 (our 84), where our seeds average 68.8% (majority vote) and his logs 76.6%
    {"run": "gmvae_shu_form_seed0", "train": GMVAE_SHU + ["--param", 'softplus_on="variance"', "--param",
                                                          'kl_estimator="sample"', "--dtype-policy", "float32"],
     "epochs": shu_epochs(100), "beside_shu": True},
    # issue 17 / 19: the first layer of q(z|x,y) now starts as one glorot_uniform layer on [x, y],
    # as in Shu's code (its y part had started 1.6x wider); the gmvae_mnist recipe, seed 0, float32,
    # to Shu's epoch 100 beside the seeds that started the old way
    {"run": "gmvae_concat_init_seed0", "train": GMVAE_SHU + ["--dtype-policy", "float32"],
     "epochs": shu_epochs(100), "beside_shu": True},
    # issue 17 item 5 / issue 19 item 2: the semi-supervised weighting of Maaloe et al.'s own code
    # for the ADGM (`larsmaaloee/auxiliary-deep-generative-models` `models/sdgmssl.py`; the CaGeM
    # paper's first author, the nearest public code to CaGeM's): the labelled and unlabelled batch
    # means weighted equally and the mean labelled cross-entropy by 0.1 N / N_l, 60 / 120 / 300 for
    # 100 / 50 / 20 labels of N = 60,000, where the per-batch weighting has 1. The cagem100_mnist
    # recipe takes it since session 19 (`"weighting": "maaloe"`), so its 300-epoch run is also the
    # measurement: it began as the job `cagem100_maaloe` (the same run.json but for its 30 epochs)
    # and was renamed. `cagem100_perbatch_seed0` is the first 4 epochs of that preset under the
    # earlier recipe (cross-entropy weight 1), stopped when the recipe changed; CaGeM-20 and -50 with
    # the new weighting for the 30 epochs of section 8's per-batch runs (41.9% / 53.3% test error)
    {"run": "cagem100_perbatch_seed0", "train": CAGEM + ["--labels", "100", "--warmup-epochs", "10",
                                                         "--weighting", "per_batch"], "epochs": 4},
    # issue 17 / 19: in Shu's seven logs the entropy of q(y|x) on the test images is 1.19-1.67 nats
    # after his first epoch and 0.56-1.46 after his fifth; in every gmvae_mnist run here it is
    # 0.55-0.78 after our first (60,000 images) and 0.33-0.39 after our fourth: q(y|x) commits about
    # twice as fast (`campaign.py report`, last table). Four epochs (Shu's 4.8) of each of his
    # parameterisation's parts, alone and together, from the gmvae_concat_init_seed0 recipe (its
    # first four epochs are the default's row), to find which of them slows the commitment
    {"run": "gmvae_entropy_variance", "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param",
                                                            'softplus_on="variance"'],
     "epochs": 4, "entropy_probe": True},
    {"run": "gmvae_entropy_sample_kl", "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param",
                                                             'kl_estimator="sample"'],
     "epochs": 4, "entropy_probe": True},
    {"run": "gmvae_entropy_prior_bias", "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param",
                                                              "prior_bias=true"],
     "epochs": 4, "entropy_probe": True},
    {"run": "gmvae_entropy_shu_form", "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param",
                                                            'softplus_on="variance"', "--param",
                                                            'kl_estimator="sample"'],
     "epochs": 4, "entropy_probe": True},
    {"run": "gmvae_entropy_shu_all", "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param",
                                                           'softplus_on="variance"', "--param",
                                                           'kl_estimator="sample"', "--param", "prior_bias=true"],
     "epochs": 4, "entropy_probe": True},
    # the probes (session 20): each part of Shu's parameterisation slows the commitment and the three
    # together (softplus on the variances, the sampled KL, p(z|y) with a bias) give 1.77 / 1.54 nats
    # after our epochs 1 / 2, inside his logs' range, where the default gives 0.55 / 0.41. Three seeds
    # of that form, with Shu's initialisation of q(z|x,y), to his epoch 100 (his logs' mean 76.6%
    # majority; our three default seeds 68.8%): ahead of the CaGeM measurements, because the
    # gmvae_fashion_mnist run waits on which form the GMVAE recipe takes
    *[{"run": f"gmvae_shu_all_seed{seed}",
       "train": seeded(GMVAE_SHU, seed) + ["--dtype-policy", "float32", "--param", 'softplus_on="variance"',
                                           "--param", 'kl_estimator="sample"', "--param", "prior_bias=true"],
       "epochs": shu_epochs(100), "beside_shu": True} for seed in (0, 1, 2)],
    # (finished its 30 epochs in sessions 21-22 on a machine since lost; saved at epoch 1 only; its
    # figures are in BENCHMARKS.md section 10)
    {"run": "cagem20_maaloe", "train": CAGEM + maaloe_weighting(20), "epochs": 30,
     "finished_elsewhere": "saved at 1; finished at 30 in sessions 21-22"},
    # issue 18 on an AVX-512 BF16 CPU (session 23): with the decoder's output layer in bfloat16 and
    # ten steps per execution, M2, modified M2 and N-VAE train an epoch 1.44-1.69x faster than their
    # float32 default of before (BENCHMARKS.md section 11). The same 30-epoch twins as the GMVAE's
    # and CaGeM's decide whether that becomes their default: M2 beside m2_amx_fp32_seed0 (float32's
    # numerics do not depend on AMX) and a second float32 seed for M2's own noise; modified M2 and
    # N-VAE (the nvae_mnist recipe) each beside a float32 twin
    {"run": "m2_bf16logits_seed0", "train": M2_UNSUP + ["--dtype-policy", "mixed_bfloat16_logits"],
     "epochs": 30, "cpu_flag": "avx512_bf16"},
    {"run": "m2_fp32_seed1", "train": seeded(M2_UNSUP, 1) + ["--dtype-policy", "float32"], "epochs": 30,
     "cpu_flag": "avx512_bf16"},
    *[{"run": f"{name}_{tag}_seed0", "train": command + ["--dtype-policy", policy], "epochs": 30,
       "cpu_flag": "avx512_bf16"}
      for name, command in (("modified_m2", MODIFIED_M2), ("nvae", NVAE))
      for tag, policy in (("bf16logits", "mixed_bfloat16_logits"), ("fp32", "float32"))],
    # they matched there (BENCHMARKS.md section 11), and these three models now train that way on
    # AVX-512 BF16 CPUs; on an AMX CPU the same three bfloat16 runs, beside the float32 twins above
    # (float32's numerics do not depend on AMX), decide it there
    *[{"run": f"{name}_amx_bf16logits_seed0", "train": command + ["--dtype-policy", "mixed_bfloat16_logits"],
       "epochs": 30, "cpu_flag": "amx_bf16"}
      for name, command in (("m2", M2_UNSUP), ("modified_m2", MODIFIED_M2), ("nvae", NVAE))],
    # issue 19 item 2: the unsupervised CaGeM preset, 300 epochs; moved ahead of the second GMVAE
    # round in session 23: the first round already took issue 19's GMVAE runs to their epochs, while
    # the CaGeM-0 run, which the issue also asks for, had not started (it gave its slot to the
    # twins above once it had passed the published preset's 30 epochs)
    # finished and published in session 26; its saved copy stays at epoch 115 (dropping those weights
    # would cost a stop about 50 MB of diffs), which a new machine must not train again
    {"run": "cagem0_mnist_seed0", "preset": "cagem0_mnist", "seed": 0, "epochs": 300,
     "finished_elsewhere": "saved at 115; finished at 300 in session 26, published as cagem0_mnist"},
    # issue 17 / 19 item 3: the one difference of the authors' InfoCatVAE code never measured: their
    # information term applies `F.cross_entropy` to q(c|x~)'s probabilities (`edouardpineau/infoCatVAE`
    # `train_test_functions.py`), `info_input="probabilities"`; the infocatvae_kl10 command (the preset
    # recipe, 40 epochs: 76.0% Hungarian) with it, session 25 (about 20 minutes of one slot)
    {"run": "infocatvae_kl10_probs", "train": INFOCAT + ["--param", "kl_weight=10", "--param",
                                                         'info_input="probabilities"'], "epochs": 40},
    # issue 17 / 19: Shu's `train_step = tf.train.AdamOptimizer().minimize(loss)` minimises a vector of
    # per-example losses, i.e. their sum over the batch of 100, with TF1's epsilon 1e-8: on tfmix's
    # batch mean that is epsilon 1e-10, against Keras's 1e-7. Adam is scale-free but for epsilon: in
    # the Adam state of gmvae_mnist_best at its epoch 834 (`scripts/adam_state.py`) 55-75% of the
    # entries of q(y|x)'s three kernels have sqrt(v_hat) below 1e-7, most of them below 1e-10 too
    # (always-zero border pixels, dead ReLU units), and 3.6-5.0% between the two: the weights that
    # 1e-7 all but freezes and his 1e-10 does not. The gmvae_concat_init_seed0 command with his
    # epsilon (the same seed, weights and data; its 74.6% majority at his epoch 100 is the
    # comparison), then with his whole form too
    {"run": "gmvae_eps_seed0", "train": GMVAE_EPS, "epochs": shu_epochs(300), "beside_shu": True,
     "for_preset": "gmvae_mnist"},
    {"run": "gmvae_shu_all_eps_seed0",
     "train": GMVAE_SHU + ["--dtype-policy", "float32", "--param", 'softplus_on="variance"', "--param",
                           'kl_estimator="sample"', "--param", "prior_bias=true", "--adam-epsilon", "1e-10"],
     "epochs": shu_epochs(100), "beside_shu": True},
    # the same for InfoCatVAE: the authors' PyTorch Adam (epsilon 1e-8) minimises a loss summed over
    # batches of 128 (`edouardpineau/infoCatVAE` `main.py`), 7.8e-11 on tfmix's mean; the
    # infocatvae_kl10 command (the preset recipe, 40 epochs) with it
    {"run": "infocatvae_kl10_eps", "train": INFOCAT + ["--param", "kl_weight=10", "--adam-epsilon", "7.8e-11"],
     "epochs": 40},
    # issue 17 / 19: Shu's initialisation of q(z|x,y) (above) gave seed 0 the best accuracy of
    # the four seed-0/1/2 runs at Shu's epoch 100 (74.6% majority against 65.2-71.9%), one seed
    # inside their spread; seeds 1 and 2 the same way, so that three seeds of each initialisation
    # compare at Shu's epoch 100 (his logs' mean: 76.6%)
    {"run": "gmvae_concat_init_seed1", "train": seeded(GMVAE_SHU, 1) + ["--dtype-policy", "float32"],
     "epochs": shu_epochs(100), "beside_shu": True},
    # Shu's epsilon gave seed 0 78.3% Hungarian (and majority) at his epoch 100 where the same seed,
    # weights and data with Keras's 1e-7 gave 70.7% (74.6% majority) at the same training -ELBO
    # (91.02 / 91.07), and his whole form with it 76.9%: one seed. Seeds 1 and 2 with his epsilon,
    # each beside its twin with Keras's (session 22), to his epoch 100.
    # Then, since session 22, issue 19's protocol a second time: the first round's seeds
    # (gmvae_mnist_seed*) had started with the earlier initialisation of q(z|x,y); with his
    # initialisation both epsilons cluster alike at his epoch 100, and the gmvae_mnist recipe takes
    # his epsilon (BENCHMARKS.md section 10). Seeds 0, 1 and 2 of that recipe go on to his epoch 300
    # and the one with the lowest training -ELBO to his 1000, as the first round's did
    *[{"run": f"gmvae_eps_seed{seed}",
       "train": seeded(GMVAE_EPS, seed), "epochs": shu_epochs(300), "beside_shu": True,
       "for_preset": "gmvae_mnist"} for seed in (1, 2)],
    {"run": "gmvae_mnist_eps_best", "seed": "best", "epochs": shu_epochs(1000), "beside_shu": True,
     "for_preset": "gmvae_mnist",
     "train": GMVAE_EPS, "among": ["gmvae_eps_seed0", "gmvae_eps_seed1", "gmvae_eps_seed2"]},
    {"run": "gmvae_concat_init_seed2", "train": seeded(GMVAE_SHU, 2) + ["--dtype-policy", "float32"],
     "epochs": shu_epochs(100), "beside_shu": True},
    {"run": "cagem50_maaloe", "train": CAGEM + maaloe_weighting(50), "epochs": 30},
    # the preset after the 30-epoch CaGeM-20 / -50 and the 84-epoch GMVAE
    # initialisation measurements (issue 17 first; in session 20 their finished runs keep only logs, while
    # saving this run's weights again would cost about 100 MB of a stop's 256 MB of diffs)
    {"run": "cagem100_mnist_seed0", "preset": "cagem100_mnist", "seed": 0, "epochs": 300},
    {"run": "gmvae_fashion_mnist_seed0", "preset": "gmvae_fashion_mnist", "seed": 0, "epochs": shu_epochs(1000)},
    # measured in session 11, whose submission was refused (lost): the single-change InfoCatVAE
    # variants, after issue 19's runs since session 16
    {"run": "infocatvae_stratified_w100", "train": INFOCAT + ["--param", "info_weight=100"], "epochs": 40},
    {"run": "infocatvae_grey", "train": INFOCAT + ["--binarize", "none"], "epochs": 40},
    {"run": "infocatvae_dropout", "train": INFOCAT + ["--param", "dropout=0.25"], "epochs": 40},
]


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def epochs_done(run_dir):
    meta = read_json(os.path.join(run_dir, "backup", "training_metadata.json"), {})
    return int(meta.get("epoch", 0))


def log_rows(run_dir):
    """The rows of a run's log.csv by epochs done (1 after the first epoch;
    a resume may repeat an epoch: its last row counts), {} without a log."""
    path = os.path.join(run_dir, "log.csv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {int(r["epoch"]) + 1: r for r in csv.DictReader(f)}


def training_neg_elbo(run_dir, last=10):
    """Mean training -ELBO (the `neg_elbo` column of log.csv) over the last
    `last` epochs: the seed-selection criterion (no test labels)."""
    rows = log_rows(run_dir)
    values = [float(rows[e]["neg_elbo"]) for e in sorted(rows)[-last:]]
    return sum(values) / len(values)


def cpu_flags():
    """This machine's CPU flags (`tfmix.hardware.cpu_flags`), empty where unreadable."""
    from tfmix.hardware import cpu_flags

    return set(cpu_flags())


def cpu_vendor():
    """This machine's CPU vendor (`tfmix.hardware.cpu_vendor`)."""
    from tfmix.hardware import cpu_vendor

    return cpu_vendor()


def runs_here(job):
    """Whether this CPU suits `job`: its `cpu_flag` (a flag the CPU must
    have) and its `cpu_kind` (the kind `tfmix.hardware.cpu_kind` names,
    e.g. "avx512_bf16": AVX-512 BF16 without AMX on an AMD CPU)."""
    from tfmix.hardware import cpu_kind

    flags = cpu_flags()
    if job.get("cpu_flag") and job["cpu_flag"] not in flags:
        return False
    return not job.get("cpu_kind") or cpu_kind(frozenset(flags), cpu_vendor()) == job["cpu_kind"]


def run_dir_of(runs_dir, job):
    return os.path.join(runs_dir, job["run"])


def resolve(job, runs_dir):
    """(seed, source run dir to start from or None) of a job; None if it is not ready."""
    if job.get("seed", 0) != "best":
        return job.get("seed"), None  # a tfmix train job names its seed in its arguments
    dirs = [os.path.join(runs_dir, r) for r in job["among"]]
    chosen = os.path.join(runs_dir, job["run"], "chosen.json")
    if os.path.exists(chosen):
        c = read_json(chosen)
        return c["seed"], None
    want = next(j["epochs"] for j in QUEUE if j["run"] == job["among"][0])
    if any(epochs_done(d) < want for d in dirs):
        return None
    scores = {d: training_neg_elbo(d) for d in dirs}
    best = min(scores, key=scores.get)
    return read_json(os.path.join(best, "run.json"))["seed"], (best, scores)


def restore(job, runs_dir):
    """A missing run directory comes back from its saved copy in zoo/campaign/."""
    src, dst = os.path.join(SAVED, job["run"]), run_dir_of(runs_dir, job)
    if os.path.isdir(dst) or not os.path.isdir(src):
        return False
    for name in AWAITING_FILES:  # model.keras: in a saved copy while it awaits `publish` only
        if os.path.exists(os.path.join(src, name)):
            os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    return True


def snapshot(runs_dir):
    """The committed code, unpacked once per commit; returns its directory."""
    sha = subprocess.check_output(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], text=True).strip()
    code = os.path.join(runs_dir, "code", sha)
    if not os.path.isdir(code):
        tmp = code + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        archive = subprocess.run(["git", "-C", REPO, "archive", "HEAD", "tfmix", "scripts"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        os.rename(tmp, code)
    return code


def job_command(job, seed, code, run_dir, minutes, threads):
    """The command line that trains `job` in `run_dir` for at most `minutes`.
    A `tfmix train` job names its seed in its arguments, except a
    `seed="best"` continuation, which takes the seed it chose."""
    if "train" in job:  # a tfmix train command line (its threads from TF's environment variables)
        train = seeded(job["train"], seed) if job.get("seed") == "best" else job["train"]
        return [sys.executable, "-m", "tfmix.cli", "train", *train, "--out", run_dir,
                "--epochs", str(job["epochs"]), "--time-limit", f"{minutes:.1f}"]
    return [sys.executable, os.path.join(code, "scripts", "train_zoo.py"), job["preset"],
            "--run-dir", run_dir, "--seed", str(seed), "--epochs", str(job["epochs"]),
            "--threads", str(threads), "--time-limit", f"{minutes:.1f}"]


def start_job(job, seed, code, runs_dir, minutes, threads, log):
    run_dir = run_dir_of(runs_dir, job)
    os.makedirs(run_dir, exist_ok=True)
    cmd = job_command(job, seed, code, run_dir, minutes, threads)
    env = dict(os.environ, PYTHONPATH=code, TF_CPP_MIN_LOG_LEVEL="2",
               TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    env.setdefault("TFDS_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "tensorflow_datasets"))
    out = open(os.path.join(run_dir, "campaign.log"), "a")
    out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
    out.flush()
    log(f"start {job['run']} (seed {seed}, to epoch {job['epochs']}, from {epochs_done(run_dir)}, "
        f"{minutes:.0f} min, {threads} thread(s))")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=run_dir,
                            preexec_fn=interruptible)


def interruptible():
    """Runs in a training's child process before it starts: `stop` ends a
    training with SIGINT, which a queue started in the background from a
    script inherits as ignored (POSIX shells ignore it in their background
    jobs), and an ignored SIGINT would leave the training running."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def epoch_minutes(run_dir, default=5.0):
    p = read_json(os.path.join(run_dir, "progress.json"), {})
    if p.get("epochs_done") and p.get("wall_time_s"):
        return p["wall_time_s"] / 60 / p["epochs_done"]
    return default


def cmd_serve(args):
    """The queue itself (what `run` starts in the background)."""
    runs_dir, deadline = args.runs_dir, time.time() + 3600 * args.hours
    code = snapshot(runs_dir)
    sys.path.insert(0, code)  # `runs_here` asks the snapshot's tfmix.hardware, installed or not
    logf = open(os.path.join(runs_dir, "campaign.log"), "a")

    def log(msg):
        logf.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        logf.flush()

    log(f"queue started for {args.hours} h with code {code}, {args.jobs} slot(s)")
    running = {}  # run name -> Popen
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        for p in running.values():
            p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    while True:
        for name, p in list(running.items()):
            if p.poll() is not None:
                log(f"{name} exited with {p.returncode} at epoch {epochs_done(os.path.join(runs_dir, name))}")
                if p.returncode > 0 and p.returncode != 130:  # an error (130: interrupted by `stop`): not retried until the marker is removed
                    with open(os.path.join(runs_dir, name, "failed"), "w") as f:
                        f.write(f"exit code {p.returncode}; see campaign.log here\n")
                del running[name]
        if stopping and not running:
            break
        free = args.jobs - len(running)
        if free > 0 and not stopping:
            for job in QUEUE:
                if free == 0:
                    break
                run_dir = run_dir_of(runs_dir, job)
                if job["run"] in running or job.get("finished_elsewhere"):
                    continue  # finished_elsewhere: its machine was lost after the figures were recorded
                if restore(job, runs_dir):
                    log(f"restored {job['run']} from {SAVED} at epoch {epochs_done(run_dir)}")
                if epochs_done(run_dir) >= job["epochs"] or os.path.exists(os.path.join(run_dir, "failed")):
                    continue
                if not runs_here(job):
                    continue  # e.g. the bfloat16 comparison waits for a CPU with native bfloat16
                resolved = resolve(job, runs_dir)
                if resolved is None:
                    continue
                seed, source = resolved
                if source is not None:  # continue the chosen seed's run in a directory of its own
                    best, scores = source
                    os.makedirs(run_dir, exist_ok=True)
                    for fname in RESUME_FILES:
                        if os.path.exists(os.path.join(best, fname)):
                            os.makedirs(os.path.dirname(os.path.join(run_dir, fname)), exist_ok=True)
                            shutil.copyfile(os.path.join(best, fname), os.path.join(run_dir, fname))
                    with open(os.path.join(run_dir, "chosen.json"), "w") as f:
                        json.dump({"seed": seed, "from": best, "training_neg_elbo_last10": scores}, f, indent=2)
                    log(f"{job['run']}: seed {seed} chosen by training -ELBO {scores}")
                minutes = (deadline - time.time()) / 60 - 1.5 * epoch_minutes(run_dir) - 2
                if minutes < 1:
                    continue
                threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
                running[job["run"]] = start_job(job, seed, code, runs_dir, minutes, threads, log)
                free -= 1
            if not running:
                log("nothing left to run in the time remaining")
                break
        time.sleep(10)
    log("queue stopped")


def pid_file(runs_dir):
    return os.path.join(runs_dir, "campaign.pid")


def cmd_run(args):
    os.makedirs(args.runs_dir, exist_ok=True)
    pid = read_json(pid_file(args.runs_dir))
    if pid and _alive(pid["pid"]):
        sys.exit(f"a campaign queue is already running (pid {pid['pid']}); `status`, `pause` or `stop` it")
    cmd = [sys.executable, os.path.abspath(__file__), "serve", "--hours", str(args.hours),
           "--runs-dir", args.runs_dir, "--jobs", str(args.jobs)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(args.runs_dir, "campaign.err"), "a"))
    with open(pid_file(args.runs_dir), "w") as f:
        json.dump({"pid": proc.pid, "started": time.time(), "hours": args.hours}, f)
    print(f"campaign queue started (process group {proc.pid}) for {args.hours} h; log: "
          f"{os.path.join(args.runs_dir, 'campaign.log')}")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a finished queue whose parent has not reaped it yet is a zombie, not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _signal(args, sig, what):
    pid = read_json(pid_file(args.runs_dir))
    if not pid or not _alive(pid["pid"]):
        sys.exit("no campaign queue is running")
    os.killpg(pid["pid"], sig)
    print(f"{what} campaign process group {pid['pid']}")


def cmd_status(args):
    pid = read_json(pid_file(args.runs_dir))
    print(f"queue: {'running, pid ' + str(pid['pid']) if pid and _alive(pid['pid']) else 'not running'}")
    print(f"{'run':<28} {'epochs':>9} {'min/epoch':>9} {'h left':>7}  last test acc (Hungarian)")
    left = 0.0  # slot-hours of the unfinished runs this CPU can train, at their own pace so far
    for job in QUEUE:
        d = state_dir(args.runs_dir, job)  # its saved copy before the queue has restored it
        p = read_json(os.path.join(d, "progress.json"), {})
        acc = p.get("last_logs", {}).get("test_acc_hungarian")
        acc = f"{100 * acc:.1f}%" if acc is not None else ""
        done, pace = epochs_done(d), epoch_minutes(d, 0)
        todo = 0 if job.get("finished_elsewhere") else max(0, job["epochs"] - done)
        hours = todo * pace / 60
        if runs_here(job):
            left += hours
        print(f"{job['run']:<28} {done:>4}/{job['epochs']:<4} {pace:>9.2f} "
              f"{(f'{hours:.1f}' if hours else ''):>7}  {acc}")
    print(f"slot-hours left on this CPU, at each run's pace so far (runs not started count 0): {left:.1f}")
    for job in QUEUE:
        if awaiting_publication(job, args.runs_dir):
            print(f"finished, not yet published: {job['run']} -> zoo/{preset_of(job)}/ "
                  f"(python scripts/campaign.py publish {job['run']} --notes \"...\")")


#: Shu's test accuracy (majority vote) in `RuiShu/vae-clustering`
#: `logs/gmvae.log.0` ... `.6` (K = 10) at his epochs (50,000 examples each);
#: None where the log ends before (log 1 at epoch 98, logs 5 and 6 at 552 /
#: 516, logs 2-4 at 738 / 684 / 684).
SHU_LOGS = {50: (0.693, 0.706, 0.693, 0.711, 0.670, 0.817, 0.767),
            100: (0.732, None, 0.733, 0.732, 0.719, 0.848, 0.833),
            200: (0.809, None, 0.748, 0.750, 0.768, 0.879, 0.841),
            300: (0.826, None, 0.755, 0.753, 0.789, 0.898, 0.851),
            500: (0.848, None, 0.802, 0.764, 0.811, 0.930, 0.854),
            1000: (0.871, None, None, None, None, None, None)}


def mean_cell(values):
    """"mean (n = k, min-max)" of the values that are not None, in percent."""
    v = [100 * a for a in values if a is not None]
    return f"{sum(v) / len(v):.1f}% (n = {len(v)}, {min(v):.1f}-{max(v):.1f}%)" if v else ""


#: the entropy of q(y|x) on the test images (`t_ent`) in Shu's `logs/gmvae.log.0` ... `.6`
#: after his epochs 1, 2, 5, 10 and 20 (50,000 images each)
SHU_TEST_ENTROPY = {1: (1.67, 1.37, 1.31, 1.54, 1.19, 1.32, 1.64),
                    2: (1.74, 1.27, 1.09, 1.45, 1.16, 1.22, 1.45),
                    5: (1.46, 1.12, 0.556, 1.07, 0.707, 0.942, 1.05),
                    10: (1.02, 0.697, 0.342, 0.485, 0.460, 0.549, 0.426),
                    20: (0.401, 0.337, 0.276, 0.197, 0.289, 0.253, 0.239)}
#: our epoch (60,000 images) nearest in images to each of those
ENTROPY_EPOCHS = {1: 1, 2: 2, 5: 4, 10: 8, 20: 17}


def entropy_table(runs_dir):
    """Markdown rows: H(q(y|x)) on the test images (log K - `val_kl_y`) of
    the GMVAE runs beside Shu's, after our epochs nearest his 1 / 2 / 5 /
    10 / 20, and the range of his logs' `t_ent` there."""
    import math

    heads = " | ".join(f"Shu {n} (ours {e})" for n, e in ENTROPY_EPOCHS.items())
    lines = [f"| run | {heads} |", "|---|" + "---|" * len(ENTROPY_EPOCHS)]
    for job in QUEUE:
        d = state_dir(runs_dir, job)
        shu_like = job.get("preset") == "gmvae_mnist" or job.get("beside_shu") or job.get("entropy_probe")
        rows = log_rows(d) if shu_like else {}
        if not rows:
            continue
        cells = [f"{math.log(10) - float(rows[e]['val_kl_y']):.2f}" if e in rows and rows[e].get("val_kl_y") else ""
                 for e in ENTROPY_EPOCHS.values()]
        lines.append(f"| {job['run']} | " + " | ".join(cells) + " |")
    lines.append("| Shu's logs 0-6 (`t_ent`): min-max | "
                 + " | ".join(f"{min(v):.2f}-{max(v):.2f}" for v in SHU_TEST_ENTROPY.values()) + " |")
    return lines


#: our epochs at Shu's 50 / 100 / 200 / 300 / 500 / 1000
CHECKPOINTS = {n: shu_epochs(n) for n in (50, 100, 200, 300, 500, 1000)}


#: issue 19's targets per preset, as the campaign table states them
TARGETS = {
    "gmvae_mnist": ">= 87% Hungarian (published seed); 3-seed mean at Shu's 300 >= his",
    "cagem100_mnist": "log p(x) >= -79.38; q(y\\|x) test error <= 3.33%",  # \\|: the Markdown cell stays whole
    "cagem0_mnist": "log p(x) >= -81.60",
    "infocatvae_mnist": "generation purity >= 95%, Hungarian >= 90%",
    "gmvae_fashion_mnist": ">= 75% Hungarian",
    "infocatvae_fashion_mnist": "retrained with the authors' information term (issue 17 item 1)",
}


def run_label(job):
    """A run's name in the report, with where it finished if that machine was lost."""
    return job["run"] + (f" ({job['finished_elsewhere']})" if job.get("finished_elsewhere") else "")


def state_dir(runs_dir, job):
    """Where a run's state is: its run directory, else its saved copy in
    zoo/campaign/ (a new machine before the queue restored it)."""
    d = run_dir_of(runs_dir, job)
    saved = os.path.join(SAVED, job["run"])
    return d if os.path.isdir(d) or not os.path.isdir(saved) else saved


def campaign_table(runs_dir):
    """Markdown rows (preset, run, epochs done / planned, target, now) of the
    preset runs; "now" is the last epoch's test metrics in log.csv (log p(x)
    and purity are measured when a run is published)."""
    lines = ["| preset | run | epochs done / planned | target (issue 19) | now (last epoch, log.csv) |",
             "|---|---|---|---|---|"]
    for job in QUEUE:
        preset = job.get("preset") or job.get("for_preset")
        if preset is None:
            continue
        d = state_dir(runs_dir, job)
        now = "not started"
        if os.path.exists(os.path.join(d, "log.csv")):
            with open(os.path.join(d, "log.csv")) as f:
                rows = list(csv.DictReader(f))
            last = rows[-1] if rows else {}
            parts = [f"Hungarian {100 * float(last['test_acc_hungarian']):.1f}%"] if last.get("test_acc_hungarian") else []
            if last.get("test_error"):
                parts.append(f"q(y\\|x) test error {100 * float(last['test_error']):.2f}%")
            if last.get("val_neg_elbo"):
                parts.append(f"validation -ELBO {float(last['val_neg_elbo']):.2f}")
            now = ", ".join(parts) or "-"
        lines.append(f"| {preset} | {run_label(job)} | {epochs_done(d)} / {job['epochs']} | "
                     f"{TARGETS.get(preset, '')} | {now} |")
    return lines


def published_table():
    """Markdown rows of the presets issue 19 sets targets for, as published
    (`zoo/<preset>/card.json`): epochs, date and the figures the targets
    name, beside the targets. log p(x) is measured only when a preset is
    published, so this is where the table states it."""
    lines = ["| preset | published: epochs, date | Hungarian | q(y\\|x) test error | log p(x) (test images) | "
             "generation purity | target (issue 19) |", "|---|---|---|---|---|---|---|"]
    for preset, target in TARGETS.items():
        card = read_json(os.path.join(ZOO, preset, "card.json"))
        if card is None:
            lines.append(f"| {preset} | not published | | | | | {target} |")
            continue
        m = card.get("metrics", {})

        def pct(key, digits=1):
            return f"{100 * m[key]:.{digits}f}%" if m.get(key) is not None else "-"

        ll = (f"{m['test_log_likelihood']:.2f} ({m.get('ll_examples') or 'all'})"
              if m.get("test_log_likelihood") is not None else "-")
        lines.append(f"| {preset} | {card.get('epochs')}, {card.get('date')} | {pct('acc_hungarian')} | "
                     f"{pct('test_error', 2)} | {ll} | {pct('generation_purity')} | {target} |")
    return lines


#: the first line of the report, and of its tables in BENCHMARKS.md section 9 (`report --update`)
REPORT_MARKER = "<!-- python scripts/campaign.py report;"


def gmvae_table(runs_dir):
    """Markdown rows: the GMVAE runs' test accuracy at Shu's epochs, each
    recipe's seed mean where all its seeds have the epoch, and Shu's logs."""
    heads = " | ".join(f"Shu epoch {n} (ours {e}): majority / Hungarian" for n, e in CHECKPOINTS.items())
    lines = [f"| run | epochs (ours / Shu's) | training time | {heads} | training -ELBO (last 10) |",
             "|---|---|---|" + "---|" * len(CHECKPOINTS) + "---|"]
    ours = {prefix: {} for prefix in SEED_GROUPS}  # group -> Shu's epoch -> its seeds' majority-vote accuracies
    for job in QUEUE:
        d = state_dir(runs_dir, job)
        shu_like = job.get("preset") == "gmvae_mnist" or job.get("beside_shu")  # Shu's protocol on MNIST
        rows = log_rows(d) if shu_like else {}
        if not rows:
            continue  # not Shu's protocol, or no epoch finished yet
        cells = []
        for e in CHECKPOINTS.values():
            r = rows.get(e)
            cells.append(f"{100 * float(r['test_acc_majority']):.1f}% / {100 * float(r['test_acc_hungarian']):.1f}%"
                         if r else "")
        done = epochs_done(d)
        p = read_json(os.path.join(d, "progress.json"), {})
        lines.append(f"| {run_label(job)} | {done} / {done / SHU_EPOCH:.0f} | {p.get('wall_time_s', 0) / 3600:.1f} h | "
                     + " | ".join(cells) + f" | {training_neg_elbo(d):.2f} |")
        group = seed_group(job["run"])
        if group is not None:
            for n, e in CHECKPOINTS.items():
                if e in rows:
                    ours[group].setdefault(n, []).append(float(rows[e]["test_acc_majority"]))
    for prefix, what in SEED_GROUPS.items():
        seeds = sum(1 for j in QUEUE if seed_group(j["run"]) == prefix)
        cells = [mean_cell(ours[prefix][n]) if seeds and len(ours[prefix].get(n, ())) == seeds else ""
                 for n in CHECKPOINTS]
        if any(cells):
            lines.append(f"| {what} (`{prefix}*`): mean (majority), where all have the epoch | | | "
                         + " | ".join(cells) + " | |")
    lines.append("| Shu's logs 0-6 (`logs/gmvae.log.*`, majority): mean | | | "
                 + " | ".join(mean_cell(SHU_LOGS.get(n, ())) for n in CHECKPOINTS) + " | |")
    return lines


def report_tables(runs_dir):
    """The report's tables, each a list of Markdown lines: GMVAE runs at
    Shu's epochs (after the marker line naming the command, date and CPU),
    the campaign table, the targeted presets as published, and the test
    entropy of q(y|x)."""
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    marker = f"{REPORT_MARKER} {time.strftime('%Y-%m-%d')}; {cpu}, {os.cpu_count()} cores -->"
    return [[marker] + gmvae_table(runs_dir), campaign_table(runs_dir), published_table(), entropy_table(runs_dir)]


def update_report(path, tables):
    """Replace, in the Markdown file `path`, the block that starts at the
    line beginning with REPORT_MARKER (the marker and the tables after it,
    each separated by one blank line) by `tables`; the rest of the file is
    kept byte for byte. The file is rewritten whole or not at all."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(REPORT_MARKER)]
    if len(starts) != 1:
        raise SystemExit(f"--update: {path} must have exactly one line starting with {REPORT_MARKER!r} "
                         f"(where the tables go), found {len(starts)}")
    end = starts[0] + 1
    while end < len(lines) and (lines[end].startswith("|")
                                or (lines[end] == "" and end + 1 < len(lines) and lines[end + 1].startswith("|"))):
        end += 1
    from tfmix.utils import atomic_path

    block = "\n\n".join("\n".join(t) for t in tables).split("\n")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines[:starts[0]] + block + lines[end:]))


def cmd_report(args):
    """Markdown tables: the GMVAE runs' test accuracy at Shu's epochs, the
    campaign table of every preset run, the targeted presets as published,
    and the GMVAE runs' test entropy beside Shu's. With `--update FILE`
    the first three replace those under FILE's report marker (BENCHMARKS.md
    section 9)."""
    tables = report_tables(args.runs_dir)
    print("\n\n".join("\n".join(t) for t in tables))
    if args.update:
        update_report(args.update, tables[:3])
        print(f"\nwrote the first three tables into {args.update}")


#: the seeds (0, 1, 2) of one GMVAE recipe, whose mean the report gives beside Shu's logs
SEED_GROUPS = {
    "gmvae_mnist_seed": "first round: the earlier initialisation of q(z|x,y), Keras's epsilon",
    "gmvae_shu_all_seed": "Shu's whole form",
    "gmvae_concat_init_seed": "Shu's initialisation, Keras's epsilon",
    "gmvae_eps_seed": "second round: Shu's initialisation and epsilon",
}


def seed_group(run):
    """The `SEED_GROUPS` prefix of a run name that is the prefix and a seed, else None."""
    prefix = run.rstrip("0123456789")
    return prefix if prefix != run and prefix in SEED_GROUPS else None


#: `plot`'s panels: (title, seed groups drawn, last of Shu's epochs shown or None for all)
PLOT_PANELS = (
    ("The recipes, to Shu's epoch 100", tuple(SEED_GROUPS), 101),
    ("Issue 19's protocol: three seeds to his epoch 300, the lowest training -ELBO on to 1000",
     ("gmvae_mnist_seed", "gmvae_eps_seed"), None),
)


def accuracy_curves(runs_dir):
    """The GMVAE seed groups' test accuracy (majority vote) after each epoch,
    against Shu's epochs: {group prefix: [(run, Shu's epochs, accuracies)]}.
    A `seed="best"` continuation joins the group of the seeds it chooses
    among (its log begins with its seed's)."""
    curves = {}
    for job in QUEUE:
        group = seed_group(job["run"]) or (seed_group(job["among"][0]) if job.get("seed") == "best" else None)
        rows = log_rows(state_dir(runs_dir, job)) if group else {}
        epochs = sorted(e for e, r in rows.items() if r.get("test_acc_majority"))
        if epochs:
            curves.setdefault(group, []).append(
                (job["run"], [e / SHU_EPOCH for e in epochs], [float(rows[e]["test_acc_majority"]) for e in epochs]))
    return curves


def cmd_plot(args):
    """A PNG of `accuracy_curves` beside Shu's logs (`SHU_LOGS`), one panel
    per `PLOT_PANELS` entry; written whole or not at all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = accuracy_curves(args.runs_dir)
    if not curves:
        sys.exit(f"campaign.py plot: no GMVAE seed run has a test accuracy in {args.runs_dir} or {SAVED}")
    colours = {prefix: f"C{i}" for i, prefix in enumerate(SEED_GROUPS)}
    fig, axes = plt.subplots(1, len(PLOT_PANELS), figsize=(6 * len(PLOT_PANELS), 4.5))
    for ax, (title, groups, last) in zip(axes, PLOT_PANELS):
        for prefix in groups:
            for i, (run, xs, ys) in enumerate(curves.get(prefix, ())):
                keep = [k for k, x in enumerate(xs) if last is None or x <= last]
                best = not seed_group(run)  # the continuation (its log begins with its seed's)
                label = (f"{run}: the chosen seed, continued" if best
                         else f"{SEED_GROUPS[prefix]} ({prefix}*)" if i == 0 else None)
                ax.plot([xs[k] for k in keep], [100 * ys[k] for k in keep], color=colours[prefix],
                        lw=1.8 if best else 0.8, alpha=1.0 if best else 0.7, label=label)
        for i, log in enumerate(zip(*SHU_LOGS.values())):
            points = [(n, 100 * a) for n, a in zip(SHU_LOGS, log) if a is not None and (last is None or n <= last)]
            ax.plot(*zip(*points), color="black", lw=0.6, ls=":", marker="o", ms=3,
                    label="Shu's logs 0-6 (RuiShu/vae-clustering logs/gmvae.log.*)" if i == 0 else None)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("Shu's epochs (50,000 images each)")
        ax.set_ylabel("MNIST test accuracy, majority vote (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    from tfmix.utils import atomic_path

    try:
        with atomic_path(args.out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    print(f"wrote {args.out}: " + ", ".join(f"{p} ({len(c)} run(s))" for p, c in curves.items()))


def continuations_of(job):
    """The `seed="best"` jobs that choose among `job` and other seeds."""
    return [j for j in QUEUE if job["run"] in j.get("among", ())]


def needed_as_source(job, runs_dir):
    """Whether a finished run's weights are still needed: it is one of the
    seeds a `seed="best"` job chooses among, and that job has not chosen yet
    (no chosen.json in its run directory, or in its saved copy on a machine
    that has not restored it; once chosen, the continuation has its own copy)."""
    return any(not os.path.exists(os.path.join(state_dir(runs_dir, j), "chosen.json")) for j in continuations_of(job))


def preset_of(job):
    """The zoo preset `job` trains, None for a measurement or for a seed
    that a `seed="best"` continuation chooses among (the continuation is
    the one published)."""
    if continuations_of(job):
        return None
    return job.get("preset") or (job.get("for_preset") if job.get("seed") == "best" else None)


def awaiting_publication(job, runs_dir, d=None):
    """Whether `job` is a preset run that has reached its epochs in `d` (by
    default its run directory on this machine), with its model (a run
    restored as finished has its log only), and has not been published at
    them (`published.json`)."""
    d = d or run_dir_of(runs_dir, job)
    if (preset_of(job) is None or job.get("finished_elsewhere") or epochs_done(d) < job["epochs"]
            or not os.path.exists(os.path.join(d, "model.keras"))):
        return False
    return read_json(os.path.join(d, PUBLISHED_FILE), {}).get("epochs") != epochs_done(d)


def keeps_weights(job, runs_dir, d):
    """Whether the run (or saved copy) in `d` needs its weights: it has
    epochs left to train, or is a seed its continuation has not chosen among
    yet, or a preset run awaiting `publish`. A run finished on a lost
    machine (`finished_elsewhere`) never resumes: its copy needs its log only."""
    if job.get("finished_elsewhere"):
        return False
    return (epochs_done(d) < job["epochs"] or needed_as_source(job, runs_dir)
            or awaiting_publication(job, runs_dir, d))


def cmd_publish(args):
    """Publishes a finished preset run as its zoo preset (`publish_zoo.py`,
    whose command the card records) and marks the run published."""
    job = next((j for j in QUEUE if j["run"] == args.run), None)
    if job is None:
        sys.exit(f"no run {args.run!r} in the queue")
    preset, d = preset_of(job), run_dir_of(args.runs_dir, job)
    if preset is None:
        sys.exit(f"{args.run} is a measurement or a seed, not a preset run: nothing to publish")
    done = epochs_done(d)
    if done < job["epochs"]:
        sys.exit(f"{args.run} is at epoch {done} of {job['epochs']}: publish it when it has finished")
    cmd = [sys.executable, PUBLISH_ZOO, preset, "--run", d, "--ll-samples", str(args.ll_samples)]
    cmd += ["--ll-limit", str(args.ll_limit)] if args.ll_limit else []
    cmd += ["--notes", args.notes] if args.notes else []
    cmd += ["--train-command", args.train_command] if args.train_command else []
    returncode = subprocess.run(cmd, cwd=REPO).returncode
    if returncode != 0:
        sys.exit(f"publish_zoo.py failed (exit code {returncode}); {args.run} stays unpublished")
    from tfmix.utils import atomic_path

    with atomic_path(os.path.join(d, PUBLISHED_FILE)) as tmp, open(tmp, "w") as f:
        json.dump({"preset": preset, "epochs": done, "date": time.strftime("%Y-%m-%d")}, f)
    print(f"published {args.run} at epoch {done} as zoo/{preset}/ (`save` records it in zoo/campaign/)")


def cmd_save(args):
    """Copies each run's resumable state into zoo/campaign/<run>/ (atomically per run)."""
    for job in QUEUE:
        d = run_dir_of(args.runs_dir, job)
        done = epochs_done(d)
        if not done or job.get("finished_elsewhere"):
            continue  # finished_elsewhere: its saved copy stays as it is (its figures are recorded)
        dst = os.path.join(SAVED, job["run"])
        published = read_json(os.path.join(d, PUBLISHED_FILE))
        if (done >= job["epochs"] and epochs_done(dst) == done
                and read_json(os.path.join(dst, PUBLISHED_FILE)) == published):
            continue  # saved at its last epoch already: rewriting it would only add diffs (dropping weights too)
        # a finished run keeps its log and its epoch count, not its weights
        # (a measurement's figures go to BENCHMARKS.md, a preset run's
        # weights are in its preset once published; a seed keeps them until
        # its continuation has chosen): a new machine restores it as finished
        # instead of training it again. A preset run not yet published keeps
        # its model too, which `publish` reads on whichever machine.
        waiting = awaiting_publication(job, args.runs_dir)
        finished = not keeps_weights(job, args.runs_dir, d)
        names = FINISHED_FILES if finished else AWAITING_FILES if waiting else RESUME_FILES
        tmp = dst + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            if os.path.exists(os.path.join(d, name)):
                os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
                shutil.copyfile(os.path.join(d, name), os.path.join(tmp, name))
        old = dst + ".old"
        if os.path.isdir(dst):
            os.rename(dst, old)
        os.rename(tmp, dst)
        shutil.rmtree(old, ignore_errors=True)
        print(f"saved {job['run']} at epoch {done} to {dst}" + (" (finished: log only)" if finished else "")
              + (" (finished, model and weights kept until `publish`)" if waiting else ""))
    # each save of a 25 MB run adds about 60 MB to the stop's diffs: say where the stop stands
    submission_size = _submission_size()
    try:
        print(submission_size.describe(submission_size.report(REPO)))
    except (subprocess.CalledProcessError, SystemExit) as e:
        print(f"(submission size not measured: {e})")


def _submission_size():
    """scripts/submission_size.py (beside this script), what `save` and `prune` measure diffs with."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import submission_size

    return submission_size


#: the files of a saved copy that hold weights (what `prune` may delete)
WEIGHT_FILES = ("backup/latest.weights.h5", "best.weights.h5", "model.keras")


def prunable(runs_dir, runs=()):
    """[(run, [weight files], bytes)] of the saved copies in zoo/campaign/
    whose weights no run needs any more (`keeps_weights`), limited to
    `runs` if given; an unknown name in `runs` is an error."""
    queue = {j["run"]: j for j in QUEUE}
    unknown = [r for r in runs if r not in queue]
    if unknown:
        raise SystemExit(f"prune: no run {', '.join(map(repr, unknown))} in the queue")
    out = []
    for name, job in queue.items():
        dst = os.path.join(SAVED, name)
        if (runs and name not in runs) or not os.path.isdir(dst) or keeps_weights(job, runs_dir, dst):
            continue
        files = [f for f in WEIGHT_FILES if os.path.exists(os.path.join(dst, f))]
        if files:
            out.append((name, files, sum(os.path.getsize(os.path.join(dst, f)) for f in files)))
    return out


def cmd_prune(args):
    """Lists (and with --apply deletes) the weights saved copies no longer
    need, with what each deletion adds to the stop's diffs (`git show
    --binary` writes a deleted file's old content, deflated, base85)."""
    literal_bytes = _submission_size().literal_bytes
    found = prunable(args.runs_dir, args.runs)
    if not found:
        print("prune: no saved copy keeps weights it no longer needs")
        return
    total = diff = 0
    for name, files, size in found:
        paths = [os.path.join(SAVED, name, f) for f in files]
        cost = sum(literal_bytes(p) for p in paths)
        total, diff = total + size, diff + cost
        print(f"{name}: {', '.join(files)} ({size / MIB:.1f} MiB; {cost / MIB:.1f} MiB of diff)")
        if args.apply:
            for p in paths:
                os.remove(p)
    print(f"{'deleted' if args.apply else 'would delete'} {total / MIB:.1f} MiB in {len(found)} saved cop"
          f"{'y' if len(found) == 1 else 'ies'}, {diff / MIB:.1f} MiB of a stop's diffs"
          + ("" if args.apply else " (--apply to delete; name runs to prune a few)"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, func in (("run", cmd_run), ("serve", cmd_serve), ("status", cmd_status), ("save", cmd_save),
                       ("report", cmd_report), ("plot", cmd_plot), ("publish", cmd_publish), ("prune", cmd_prune),
                       ("pause", None), ("resume", None), ("stop", None)):
        s = sub.add_parser(name)
        s.add_argument("--runs-dir", default=DEFAULT_RUNS)
        if name == "publish":
            s.add_argument("run", help="a preset run of the queue that has reached its epochs")
            s.add_argument("--ll-samples", type=int, default=1000, help="importance samples for log p(x)")
            s.add_argument("--ll-limit", type=int, default=None, help="test images for log p(x) (default all)")
            s.add_argument("--notes", default="", help="the card's notes")
            s.add_argument("--train-command", default=None, help="the card's training command")
        if name == "prune":
            s.add_argument("runs", nargs="*", help="only these runs' saved copies (default: every one)")
            s.add_argument("--apply", action="store_true", help="delete the files (default: list them)")
        if name == "report":
            s.add_argument("--update", metavar="FILE", default=None,
                           help="also write the first three tables into FILE in place of those under its "
                                "report marker (e.g. BENCHMARKS.md)")
        if name == "plot":
            s.add_argument("--out", default=os.path.join(REPO, "docs", "figures", "campaign_gmvae_mnist.png"),
                           help="the PNG to write")
        if name in ("run", "serve"):
            s.add_argument("--hours", type=float, required=True)
            s.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                           help="trainings at once (default: one per core)")
            s.add_argument("--threads", type=int, default=None,
                           help="threads per training (default: the cores shared among --jobs); e.g. "
                                "`--jobs 1 --threads 1` leaves a core free for an evaluation")
        s.set_defaults(func=func)
    args = p.parse_args(argv)
    if args.cmd in ("run", "serve"):
        for name in ("jobs", "threads"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.cmd == "pause":
        return _signal(args, signal.SIGSTOP, "paused")
    if args.cmd == "resume":
        return _signal(args, signal.SIGCONT, "resumed")
    if args.cmd == "stop":
        _signal(args, signal.SIGCONT, "resumed")
        pid = read_json(pid_file(args.runs_dir))
        os.kill(pid["pid"], signal.SIGTERM)
        print("asked the queue to stop: each training is interrupted now and resumes from its last "
              "finished epoch (the epoch in progress is lost)")
        return
    args.func(args)


if __name__ == "__main__":
    main()
