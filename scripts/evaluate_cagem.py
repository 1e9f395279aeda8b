"""Evaluate CaGeM runs (issue 5): the paper's MNIST table, both
classifiers, and its figures.

    python scripts/evaluate_cagem.py NAME=RUN_DIR [NAME=RUN_DIR ...] \
        [--ll-samples 1000] [--ll-limit N] [--json results.json] [--fig-dir docs/figures]

NAME is free (e.g. cagem0_k10, cagem100); the paper's figure is looked up
from the run: CaGeM-0 by its K, CaGeM-L by its number of labels. For each run,
on the test split (dynamically binarised MNIST, one fixed binarisation):
- the -ELBO and log p(x) by importance sampling (`--ll-samples` samples,
  each summing over y exactly);
- the test error (labelled runs) or the Hungarian accuracy / NMI (CaGeM-0)
  of both classifiers: q(y|x) = E_q(z1|x)[q(y|z1,x)] and p(y|x) ~
  E_q(z2|x)[p(y|z2)];
- epochs, wall time, seed.
Figures (`--fig-dir`): `NAME_samples.png` (one row per y),
`NAME_random.png` (ancestral samples, y ~ p(y|z2)), `NAME_reconstructions.png`
(test images above their reconstructions); with a 2-dimensional z2 also
`NAME_z2.png` (E_q[z2|x] of the test set coloured by digit, beside the
decoded mesh of z2 over [-3, 3]^2, as the paper's Figure 2).
Prints a Markdown table beside the paper's figures.
"""

import json
import os

from tfmix.utils import evaluation_parser

#: the paper's test log-likelihoods (nats): CaGeM-0 by K, CaGeM-L by labels
PAPER_LL = {("unsupervised", 5): -81.86, ("unsupervised", 10): -81.60, ("unsupervised", 20): -81.92,
            ("labels", 20): -81.47, ("labels", 50): -80.49, ("labels", 100): -79.38}


def figures(name, model, x_test, y_test, fig_dir):
    import numpy as np

    from tfmix import plots

    out = []
    K = model.num_clusters
    path = os.path.join(fig_dir, f"{name}_samples.png")
    plots.cluster_samples_grid(model, path, per_cluster=12, seed=0, title=f"{name}: p(x|y), one row per y")
    out.append(path)
    images, ys = model.ancestral_sample(60, seed=0)
    path = os.path.join(fig_dir, f"{name}_random.png")
    plots.image_grid(images.reshape(-1, 28, 28, 1), rows=5, out=path,
                     title=f"{name}: ancestral samples z2 -> y -> z1 -> x")
    out.append(path)
    x = x_test[:12]
    path = os.path.join(fig_dir, f"{name}_reconstructions.png")
    plots.image_grid(np.concatenate([x, model.reconstruct(x)]), rows=2, row_labels=["test", "recon."], out=path,
                     title=f"{name}: reconstructions")
    out.append(path)
    if model.top_latent_dim == 2:
        import matplotlib.pyplot as plt

        z2 = np.concatenate([model.z2_mean(x_test[i : i + 1000]) for i in range(0, len(x_test), 1000)])
        grid = np.linspace(-3, 3, 15)
        mesh = np.array([[a, b] for b in grid[::-1] for a in grid], np.float32)
        imgs = model.decode_z2(mesh).reshape(15, 15, 28, 28)
        canvas = imgs.transpose(0, 2, 1, 3).reshape(15 * 28, 15 * 28)
        fig, axes = plt.subplots(1, 2, figsize=(11, 5))
        sc = axes[0].scatter(z2[:, 0], z2[:, 1], c=y_test, cmap="tab10", s=3, alpha=0.6)
        axes[0].set_xlim(-3, 3)
        axes[0].set_ylim(-3, 3)
        axes[0].set_title("E_q[z2|x], test set, coloured by digit", fontsize=9)
        fig.colorbar(sc, ax=axes[0], ticks=range(K))
        axes[1].imshow(canvas, cmap="gray_r", extent=(-3, 3, -3, 3))
        axes[1].set_title("decoded z2 mesh (y = argmax p(y|z2))", fontsize=9)
        fig.suptitle(name, fontsize=10)
        fig.tight_layout()
        path = os.path.join(fig_dir, f"{name}_z2.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out


def main():
    args, named, p = evaluation_parser(__doc__.split("\n")[0], None)

    import numpy as np

    from tfmix import evaluation, metrics, runs
    from tfmix import data as tdata
    from tfmix.utils import atomic_write_json, read_json

    results = {"ll_samples": args.ll_samples, "runs": {}}
    for name, run in named.items():
        config, model = runs.load_run(run)
        if config["model"] != "cagem":
            p.error(f"{run} is a {config['model']} run, not cagem")
        progress = read_json(os.path.join(run, runs.PROGRESS_FILE))
        m = evaluation.evaluate_model(config, model, epochs=progress.get("epochs_done"), ll_samples=args.ll_samples,
                                    ll_limit=args.ll_limit)
        x_test, y_test = tdata.split_arrays(config)
        # the -ELBO of x alone (labelled runs' evaluate_run scores (x, y) pairs)
        m["test_neg_elbo_x"] = float(model.evaluate(tdata.array_batches(x_test), verbose=0,
                                                    return_dict=True)["neg_elbo"])
        p_gen = np.concatenate([model.generative_classifier(x_test[i : i + 500]) for i in range(0, len(x_test), 500)])
        p_inf = model.cluster_probs(x_test)
        for key, probs in (("q_y_x", p_inf), ("p_y_x", p_gen)):
            if model.labelled:
                m[f"test_error_{key}"] = float(np.mean(probs.argmax(-1) != y_test))
            else:
                report = metrics.clustering_report(y_test, probs)
                m[f"acc_hungarian_{key}"], m[f"nmi_{key}"] = report["acc_hungarian"], report["nmi"]
        m.update(run=run, seed=config["seed"], num_labels=config["num_labels"], wall_time_s=progress.get("wall_time_s"),
                 model_kwargs=config["model_kwargs"], warmup_epochs=config.get("warmup_epochs", 0),
                 stopped_by_time_limit=progress.get("stopped_by_time_limit", False))
        if args.fig_dir:
            os.makedirs(args.fig_dir, exist_ok=True)
            m["figures"] = figures(name, model, x_test, y_test, args.fig_dir)
        results["runs"][name] = m
        print(json.dumps({name: m}))
    if args.json:
        atomic_write_json(args.json, results)

    print(f"\n| run | K | labels | epochs | wall time | seed | -ELBO | log p(x), {args.ll_samples} IW samples (paper) "
          "| q(y|x) | p(y|x) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in results["runs"].items():
        K = m["model_kwargs"].get("num_clusters", 10)
        key = ("labels", m["num_labels"]) if m["num_labels"] else ("unsupervised", K)
        paper = PAPER_LL.get(key, "n/a")
        if m["num_labels"]:
            clf = [f"{100 * m[f'test_error_{c}']:.2f}% error" for c in ("q_y_x", "p_y_x")]
        else:
            clf = [f"{100 * m[f'acc_hungarian_{c}']:.1f}% Hungarian acc." for c in ("q_y_x", "p_y_x")]
        print(f"| {name} | {K} | {m['num_labels']} | {m['epochs']} | {m['wall_time_s'] / 60:.0f} min | {m['seed']} | "
              f"{m['test_neg_elbo_x']:.2f} | {m['test_log_likelihood']:.2f} ({paper}) | {clf[0]} | {clf[1]} |")


if __name__ == "__main__":
    main()
