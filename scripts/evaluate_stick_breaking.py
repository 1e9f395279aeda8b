"""Reproduce the stick-breaking papers' MNIST tables (issue 4): Nalisnick,
Hertel & Smyth (2016) DLGMM / DLDPMM and Nalisnick & Smyth (2017) SB-VAE,
with the Gauss-VAE baseline, on the fixed binarised MNIST.

    python scripts/evaluate_stick_breaking.py dlgmm=RUN dldpmm=RUN sbvae=RUN vae=RUN \
        [--ll-samples 1000] [--json results.json] [--fig-dir docs/figures]

For each run (`tfmix train ... --dataset binarized_mnist`), on the test split:
- the -ELBO and the Monte Carlo (importance-sampled) marginal log-likelihood
  with `--ll-samples` samples per image;
- kNN test error (k = 3, 5, 10; reference: the 50,000 training images) on
  one sample per image from the latent posterior (the papers' protocol) and
  on the posterior mean (`encode`). binarized_mnist has no labels in tfds:
  each image gets the label of the grey-level MNIST image it is most likely
  under (`tfmix.data.binarized_mnist_labels`); the script prints the check
  (the class counts of the matched labels against grey MNIST's);
- epochs, best epoch, wall time, and why the run stopped;
- for the mixtures, whether the posterior components collapse onto one
  (`component_separation`): on 1,000 test images, the mean distance
  between two components' posterior means q_k(z|x) in units of their
  standard deviation (0: identical components), the mean absolute pixel
  difference of their decoded means, and the effective number of components
  exp(H(E_x[pi_bar(x)])) in use.
Figures: `nalisnick_embedding.png` (t-SNE of posterior samples of 2,000 test
images coloured by digit, Gauss-VAE beside DLGMM) and
`<name>_components.png` (for mixture models: test images, then the decoded
mean of every posterior component q_k(z|x), with the weights E[pi_k|x]) and
`<name>_component_samples.png` (samples z ~ p(z|k) of each prior component,
decoded: one row per component). `dlgmm_spread` is the qualitative
experiment's DLGMM (`--param 'component_means=[-1.5,-0.75,0,0.75,1.5]'`).
Prints a Markdown table beside the papers' figures.
"""

import json
import os

from tfmix.utils import evaluation_parser

#: the papers' figures: kNN error % (k = 3, 5, 10) and test log-likelihood (nats)
PAPER = {
    "dlgmm": {"knn": (9.14, 8.38, 8.42), "ll": -96.50},
    "dldpmm": {"knn": None, "ll": -96.91},
    "vae": {"knn": (28.4, 20.96, 15.33), "ll": -96.80},
    "sbvae": {"knn": (9.34, 8.65, 8.90), "ll": -98.01},
    # the qualitative experiment: K = 5, component priors N(m_k, I), m_k = SPREAD_MEANS
    "dlgmm_spread": {"knn": None, "ll": None},
    # issue 17 item 7: the DLGMM with the mixture's own entropy (`entropy="mixture"`), not in the paper
    "dlgmm_mixture": {"knn": None, "ll": None},
}
KS = (3, 5, 10)


def label_check():
    import numpy as np

    from tfmix import data

    grey = {s: data.load_numpy("mnist", s)[1] for s in ("train", "test")}
    out = {}
    for split in ("train", "validation", "test"):
        labels, margin = data.binarized_mnist_labels(split)
        out[split] = {"n": int(len(labels)), "median_margin_nats": float(np.median(margin)),
                      "margin_below_10_nats": int((margin < 10).sum())}
    train_val = np.concatenate([data.binarized_mnist_labels(s)[0] for s in ("train", "validation")])
    out["test_counts_equal_mnist_test"] = bool(
        np.array_equal(np.bincount(data.binarized_mnist_labels("test")[0], minlength=10),
                       np.bincount(grey["test"], minlength=10)))
    out["train_validation_counts_equal_mnist_train"] = bool(
        np.array_equal(np.bincount(train_val, minlength=10), np.bincount(grey["train"], minlength=10)))
    return out


def component_separation(model, x):
    """How distinct the K posterior components q_k(z|x) are (module docstring)."""
    import numpy as np
    import tensorflow as tf

    xb = tf.constant(x.reshape(len(x), -1))
    qv, qz = model.posteriors(xb)
    mu, sd = qz.mean().numpy(), qz.stddev().numpy()  # [N, K, D]
    dec = tf.sigmoid(model.decoder(qz.mean())).numpy()  # [N, K, 784]
    K, D = mu.shape[1], mu.shape[2]
    pairs = [(k, j) for k in range(K) for j in range(k + 1, K)]
    dist = np.mean([np.linalg.norm(mu[:, k] - mu[:, j], axis=-1) / np.sqrt(D) for k, j in pairs])
    pixels = np.mean([np.abs(dec[:, k] - dec[:, j]).mean() for k, j in pairs])
    w = model.mean_weights(qv).numpy().mean(0)
    return {"component_separation_sd": float(dist / sd.mean()), "component_pixel_difference": float(pixels),
            "effective_components": float(np.exp(-(w * np.log(np.maximum(w, 1e-12))).sum()))}


def components_figure(model, x, out, name):
    """Test images, then each component's decoded posterior mean."""
    import numpy as np
    import tensorflow as tf

    from tfmix import plots

    xb = tf.constant(x.reshape(len(x), -1))
    qv, qz = model.posteriors(xb)
    w = model.mean_weights(qv).numpy()  # [N, K]
    dec = tf.sigmoid(model.decoder(qz.mean())).numpy()  # [N, K, 784]
    K = model.num_clusters
    order = np.argsort(-w.mean(0))[: min(K, 8)]  # the most used components
    rows = [x.reshape(len(x), 28, 28, 1)] + [dec[:, k].reshape(len(x), 28, 28, 1) for k in order]
    labels = ["input"] + [f"k={k} (E[pi]={w[:, k].mean():.2f})" for k in order]
    plots.image_grid(np.concatenate(rows), rows=len(rows), row_labels=labels, out=out,
                     title=f"{name}: decoded mean of each posterior component q_k(z|x)")


def main():
    args, named, p = evaluation_parser(__doc__.split("\n")[0], sorted(PAPER))

    import numpy as np

    from tfmix import data, evaluation, plots, runs
    from tfmix.utils import atomic_write_json, read_json

    results = {"labels": label_check(), "ll_samples": args.ll_samples, "runs": {}}
    print(json.dumps(results["labels"]))
    models = {}
    for name, run in named.items():
        config, models[name] = runs.load_run(run)
        progress = read_json(os.path.join(run, runs.PROGRESS_FILE))
        m = evaluation.evaluate_model(config, models[name], epochs=progress.get("epochs_done"),
                                    ll_samples=args.ll_samples, ll_limit=args.ll_limit, knn_ks=KS)
        m.update(run=run, best_epoch=progress.get("best_epoch"), wall_time_s=progress.get("wall_time_s"),
                 stopped_early=progress.get("stopped_early", False),
                 stopped_by_time_limit=progress.get("stopped_by_time_limit", False),
                 max_epochs=config["epochs"], model_kwargs=config["model_kwargs"], clip_norm=config.get("clip_norm"))
        if hasattr(models[name], "posteriors"):  # the mixtures
            x_sep, _ = data.load_numpy("binarized_mnist", "test")
            m.update(component_separation(models[name], x_sep[:1000]))
        results["runs"][name] = m
        print(json.dumps({name: m}))
    if args.json:
        atomic_write_json(args.json, results)

    if args.fig_dir:
        os.makedirs(args.fig_dir, exist_ok=True)
        x_test, _ = data.load_numpy("binarized_mnist", "test")
        y_test, _ = data.binarized_mnist_labels("test")
        idx = np.random.default_rng(0).choice(len(x_test), 2000, replace=False)
        panels = []
        for name in ("vae", "dlgmm"):
            if name in models:
                z = models[name].sample_latent(x_test[idx], seed=0)
                panels.append((f"{name}: t-SNE of posterior samples", y_test[idx], plots.project_2d(z, "tsne")))
        if panels:
            out = os.path.join(args.fig_dir, "nalisnick_embedding.png")
            plots.latent_scatter(None, panels, out, title="binarised MNIST test, coloured by digit")
            print("wrote", out)
        for name in ("dlgmm", "dldpmm", "dlgmm_spread", "dlgmm_mixture"):
            if name in models:
                out = os.path.join(args.fig_dir, f"{name}_components.png")
                components_figure(models[name], x_test[:12], out, name)
                print("wrote", out)
                out = os.path.join(args.fig_dir, f"{name}_component_samples.png")
                plots.cluster_samples_grid(models[name], out, per_cluster=12, seed=0,
                                           title=f"{name}: samples of each prior component p(z|k), one row per k")
                print("wrote", out)

    print(f"\n| model | epochs (best) | wall time | stopped | kNN error % k=3 / 5 / 10, posterior samples "
          f"(paper) | kNN on means | -ELBO | log p(x), {args.ll_samples} samples (paper) | component separation "
          f"(sd) / pixel difference / components in use |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in results["runs"].items():
        paper = PAPER[name]
        knn = " / ".join(f"{100 * m[f'knn_sample_error_k{k}']:.2f}" for k in KS)
        pknn = " / ".join(f"{v}" for v in paper["knn"]) if paper["knn"] else "not reported"
        means = " / ".join(f"{100 * m[f'knn_error_k{k}']:.2f}" for k in KS)
        why = ("early stopping" if m["stopped_early"] else "time budget" if m["stopped_by_time_limit"]
               else "epoch budget" if m["epochs"] >= m["max_epochs"] else "running")
        ll = f"{m['test_log_likelihood']:.2f}" if "test_log_likelihood" in m else "not measured"
        sep = (f"{m['component_separation_sd']:.3f} / {m['component_pixel_difference']:.4f} / "
               f"{m['effective_components']:.2f}" if "component_separation_sd" in m else "-")
        print(f"| {name} | {m['epochs']} ({m['best_epoch'] or '-'}) | {m['wall_time_s'] / 60:.0f} min | {why} | "
              f"{knn} ({pknn}) | {means} | {m['test_neg_elbo']:.2f} | {ll} ({paper['ll'] or 'not reported'}) | {sep} |")


if __name__ == "__main__":
    main()
