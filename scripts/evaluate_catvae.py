"""Evaluate CatVAE / InfoCatVAE runs (issue 6): clustering, judged
conditional generation, and the figures.

    python scripts/evaluate_catvae.py NAME=RUN_DIR [NAME=RUN_DIR ...] \
        [--per-cluster 1000] [--fig-dir docs/figures] [--json results.json]

For each run, on its dataset's test split: Hungarian and majority-vote
accuracy, NMI, ARI (argmax q(c|x)); the share of `--per-cluster` samples of
each category c that the dataset's judge (`zoo/judge_<dataset>`,
`scripts/train_judge.py`) assigns to the class matched to c; and three
figures in `--fig-dir`: samples per category, the lambda traversal (t * mu_c,
t = 0 .. 3, one row per category) and interpolations between consecutive
centroids. Prints a Markdown table.
"""

import argparse
import json
import os


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    p.add_argument("--per-cluster", type=int, default=1000)
    p.add_argument("--fig-dir", default="docs/figures")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    from tfmix.utils import named_runs

    named = named_runs(p, args.runs)

    import numpy as np

    from tfmix import metrics, plots, runs, utils
    from tfmix import data as tdata
    from tfmix.models.catvae import CatVAE

    os.makedirs(args.fig_dir, exist_ok=True)
    results = []
    for name, run_dir in named.items():
        config, model = runs.load_run(run_dir)
        if not isinstance(model, CatVAE):
            raise SystemExit(f"{run_dir} holds a {type(model).__name__}, not a CatVAE/InfoCatVAE")
        x_test, y_test = tdata.split_arrays(config)
        row = {"name": name, "run": run_dir, "model": type(model).__name__, "dataset": config["dataset"]}
        progress = utils.read_json(os.path.join(run_dir, runs.PROGRESS_FILE))
        row.update(epochs=progress["epochs_done"], wall_time_s=progress["wall_time_s"])
        report = metrics.clustering_report(y_test, model.cluster_probs(x_test))
        row.update(report)
        try:
            judge = metrics.load_judge(config["dataset"])
        except FileNotFoundError as e:
            print(f"{name}: {e}")
        else:
            acc, per = metrics.conditional_generation_accuracy(
                model, judge, x_test, y_test, per_cluster=args.per_cluster, seed=0)
            row.update(judged_generation=acc, judged_generation_per_cluster=per)
        K = model.num_clusters
        labels = [f"c={c}" for c in range(K)]
        plots.cluster_samples_grid(model, os.path.join(args.fig_dir, f"{name}_samples.png"), per_cluster=10,
                                   title=f"{name}: samples, one row per category")
        plots.image_grid(model.decode(model.traversal(10, 3.0)), K, labels,
                         out=os.path.join(args.fig_dir, f"{name}_traversal.png"),
                         title=f"{name}: decode(t * mu_c), t = 0 .. 3 (t = 1: the prior mean)")
        plots.image_grid(model.decode(model.centroid_path(10)), K, [f"{c}->{(c + 1) % K}" for c in range(K)],
                         out=os.path.join(args.fig_dir, f"{name}_interpolation.png"),
                         title=f"{name}: from mu_c to mu_(c+1)")
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "judged_generation_per_cluster"}))

    print()
    print("| run | model | dataset | epochs | acc (Hungarian) | acc (majority) | NMI | ARI | judged generation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        jg = f"{100 * r['judged_generation']:.1f}%" if "judged_generation" in r else "n/a"
        print(f"| {r['name']} | {r['model']} | {r['dataset']} | {r['epochs']} | {100 * r['acc_hungarian']:.1f}% | "
              f"{100 * r['acc_majority']:.1f}% | {r['nmi']:.3f} | {r['ari']:.3f} | {jg} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=lambda o: np.asarray(o).tolist())


if __name__ == "__main__":
    main()
