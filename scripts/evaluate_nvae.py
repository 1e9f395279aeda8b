"""Evaluate an N-VAE run (issue 7): classification, the class-dependent
factor detector, traversals, sigma samples beside a Gauss-VAE, and
classifiers trained on artificial data.

    python scripts/evaluate_nvae.py NAME=RUN_DIR [--vae RUN_DIR_OR_PRESET] \
        [--fig-dir docs/figures] [--json results.json] \
        [--artificial-shares 0,0.4,1] [--clf-epochs 8] [--threads 0]

On the run's dataset (test split):
- the test error of q(y|x);
- the per-dimension KL of q(z_c|x) (and of q(z_s|x)) averaged over the test
  examples of each class: a heat map (`NAME_kl_heatmap.png`);
- traversals of the two most used shared dimensions (by mean KL), z_c = 0,
  applied to every class (`NAME_traversal_s<j>.png`);
- class-conditional ancestral samples at sigma = 1 and 1.4, and Gauss-VAE
  samples at the same sigmas (`NAME_sigma.png`); the judge (`zoo/judge_<dataset>`)
  scores each set: for N-VAE, the share labelled with the conditioning class;
  for both, the judge's mean confidence (max probability);
- classifiers (`tfmix.metrics.judge_cnn`, the judge's recipe) trained on the
  training split with a share s of its examples replaced by N-VAE samples of
  the same class (s = 0: real data only; s = 1: artificial only), tested on
  the real test split.
Prints a Markdown summary.
"""

import argparse
import json
import os


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", metavar="NAME=RUN_DIR")
    p.add_argument("--vae", help="Gauss-VAE run directory or preset for the sigma comparison")
    p.add_argument("--fig-dir", default="docs/figures")
    p.add_argument("--json")
    p.add_argument("--artificial-shares", default="0,0.4,1")
    p.add_argument("--clf-epochs", type=int, default=8)
    p.add_argument("--samples", type=int, default=1000, help="samples per class for the judged sigma sets")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    from tfmix.utils import named_runs

    ((name, run_dir),) = named_runs(p, [args.run]).items()
    shares = [float(s) for s in args.artificial_shares.split(",") if s]
    if any(not 0.0 <= s <= 1.0 for s in shares):
        p.error("--artificial-shares must be in [0, 1]")

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import matplotlib.pyplot as plt

    from tfmix import data, metrics, plots, presets, runs, utils
    from tfmix import data as tdata
    from tfmix.models.nvae import NVAE

    os.makedirs(args.fig_dir, exist_ok=True)
    fig = lambda suffix: os.path.join(args.fig_dir, f"{name}_{suffix}")  # noqa: E731
    config, model = runs.load_run(run_dir)
    if not isinstance(model, NVAE):
        raise SystemExit(f"{run_dir} holds a {type(model).__name__}, not an NVAE")
    K, L, S = model.num_clusters, model.class_latent_dim, model.shared_latent_dim
    x_test, y_test = tdata.split_arrays(config)
    progress = utils.read_json(os.path.join(run_dir, runs.PROGRESS_FILE))
    res = {"name": name, "run": run_dir, "dataset": config["dataset"], "epochs": progress["epochs_done"],
           "wall_time_s": progress["wall_time_s"]}
    res["test_error"] = float(np.mean(model.cluster_probs(x_test).argmax(-1) != y_test))

    # -- the class-dependent factor detector --------------------------------------
    kl_c, kl_s = model.per_dimension_kl(x_test)
    heat_c = np.stack([kl_c[y_test == k].mean(0) for k in range(K)])  # [K, L]
    heat_s = np.stack([kl_s[y_test == k].mean(0) for k in range(K)])  # [K, S]
    res["kl_zc_per_class"], res["kl_zs_per_class"] = heat_c.tolist(), heat_s.tolist()
    f, axes = plt.subplots(1, 2, figsize=(3 + 0.45 * (L + S), 4.2), gridspec_kw={"width_ratios": [L, S]})
    vmax = float(max(heat_c.max(), heat_s.max()))
    for ax, heat, title in ((axes[0], heat_c, "KL of z_c dims"), (axes[1], heat_s, "KL of z_s dims")):
        im = ax.imshow(heat, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(heat.shape[1]))
        ax.set_yticks(range(K))
        ax.set_ylabel("class")
        ax.set_xlabel("dimension")
        ax.set_title(title, fontsize=9)
    f.colorbar(im, ax=axes, shrink=0.8, label="mean KL (nats)")
    f.suptitle(f"{name}: per-dimension KL(q(z|x) || N(0,1)) averaged per test class", fontsize=9)
    f.savefig(fig("kl_heatmap.png"), dpi=110)
    plt.close(f)

    # -- shared-latent traversals applied to every class ----------------------------
    top = np.argsort(-kl_s.mean(0))[:2]
    res["traversed_shared_dims"] = top.tolist()
    values = np.linspace(-3, 3, 9, dtype=np.float32)
    for j in top:
        zc = np.zeros((K * len(values), L), np.float32)
        zs = np.zeros((K * len(values), S), np.float32)
        zs[:, j] = np.tile(values, K)
        y1 = np.repeat(np.eye(K, dtype=np.float32), len(values), axis=0)
        x = tf.sigmoid(model.decoder(model.decoder_input(tf.constant(zc), tf.constant(zs), tf.constant(y1))))
        plots.image_grid(np.reshape(x.numpy(), (-1,) + model.image_shape), K, [f"y={k}" for k in range(K)],
                         out=fig(f"traversal_s{j}.png"),
                         title=f"{name}: shared dim z_s[{j}] from -3 to 3 (z_c = 0), every class")

    # -- sigma = 1 and 1.4: N-VAE beside the Gauss-VAE -----------------------------------
    judge = metrics.load_judge(config["dataset"])
    vae = None
    if args.vae:
        is_run = os.path.exists(os.path.join(args.vae, runs.RUN_FILE))
        vae = runs.load_run(args.vae)[1] if is_run else presets.load(args.vae)
    grid, row_labels = [], []
    clusters = np.repeat(np.arange(K), args.samples // K).astype(np.int32)
    for sigma in (1.0, 1.4):
        xs = model.generate(clusters, seed=args.seed, sigma=sigma)
        probs = judge.predict(xs, batch_size=1000, verbose=0)
        res[f"nvae_sigma{sigma}_judged_accuracy"] = float(np.mean(probs.argmax(-1) == clusters))
        res[f"nvae_sigma{sigma}_judge_confidence"] = float(probs.max(-1).mean())
        grid.append(xs.reshape((K, -1) + model.image_shape)[:, :1].reshape((-1,) + model.image_shape))
        row_labels.append(f"N-VAE s={sigma}")
        if vae is not None:
            xv = vae.generate(np.zeros(len(clusters), np.int32), seed=args.seed, sigma=sigma)
            pv = judge.predict(xv, batch_size=1000, verbose=0)
            res[f"vae_sigma{sigma}_judge_confidence"] = float(pv.max(-1).mean())
            grid.append(xv[:K])
            row_labels.append(f"VAE s={sigma}")
    plots.image_grid(np.concatenate(grid), len(grid), row_labels, out=fig("sigma.png"),
                     title=f"{name}: samples, sigma 1 and 1.4")

    # -- classifiers trained with artificial data -------------------------------------------------
    x_train, y_train = data.load_numpy(config["dataset"], "train")
    x_real_test, y_real_test = data.load_numpy(config["dataset"], "test")
    rng = np.random.default_rng(args.seed)
    res["artificial"] = {}
    for share in shares:
        n_art = int(round(share * len(x_train)))
        idx = rng.permutation(len(x_train))
        x_mix, y_mix = x_train.copy(), y_train.copy()
        if n_art:
            art = idx[:n_art]  # these examples are replaced by samples of their class
            x_mix[art] = model.generate(y_train[art].astype(np.int32), seed=args.seed + 1)
        keras.utils.set_random_seed(args.seed)
        clf = metrics.judge_cnn(K, seed=args.seed)
        clf.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
        clf.fit(x_mix, y_mix, batch_size=128, epochs=args.clf_epochs, verbose=2)
        acc = float(np.mean(metrics.judge_labels(clf, x_real_test) == y_real_test))
        res["artificial"][f"{share:g}"] = acc
        print(f"{name}: classifier with {100 * share:.0f}% artificial training data: real test accuracy {acc:.4f}")

    print(json.dumps(res))
    print()
    print(f"| {name} | value |")
    print("|---|---|")
    print(f"| epochs | {res['epochs']} |")
    print(f"| test error of q(y|x) | {100 * res['test_error']:.2f}% |")
    for sigma in (1.0, 1.4):
        print(f"| N-VAE samples, sigma={sigma}: judged as their class | "
              f"{100 * res[f'nvae_sigma{sigma}_judged_accuracy']:.1f}% |")
        print(f"| N-VAE samples, sigma={sigma}: judge confidence | {res[f'nvae_sigma{sigma}_judge_confidence']:.3f} |")
        if f"vae_sigma{sigma}_judge_confidence" in res:
            print(f"| Gauss-VAE samples, sigma={sigma}: judge confidence | "
                  f"{res[f'vae_sigma{sigma}_judge_confidence']:.3f} |")
    for share, acc in res["artificial"].items():
        print(f"| classifier, {100 * float(share):.0f}% artificial training data: real test accuracy | "
              f"{100 * acc:.2f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
