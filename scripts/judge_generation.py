"""Judged conditional generation of trained runs, three measures from one
set of samples per cluster / class y (`tfmix.metrics.generation_report`):
judged generation (the share of images generated from y that the dataset's
judge CNN, `zoo/judge_<dataset>` from `scripts/train_judge.py`, assigns to
the class matched to y through q(y|x) on the test set), generation purity
(the judge's labels matched one-to-one to the y on the samples themselves)
and self-consistency (the share that the model's own q(y|x) assigns back
to y).

    python scripts/judge_generation.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--per-cluster 100] [--json out.json]
    python scripts/judge_generation.py c100=cagem100_mnist     # a published preset instead of a run

Matching: the identity for models trained with labels (y is the class),
else the Hungarian matching of argmax q(y|x) on the test set
(`tfmix.metrics.conditional_generation_accuracy`). Works for every model
with `generate(cluster, n)`; prints a Markdown table.
"""

import argparse
import json
import os


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    p.add_argument("--per-cluster", type=int, default=100, help="images generated per cluster (default 100)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.per_cluster < 1:
        p.error(f"--per-cluster must be at least 1, got {args.per_cluster}")
    from tfmix.utils import atomic_write_json, named_runs, read_json

    named = named_runs(p, args.runs)

    from tfmix import evaluation, metrics, presets, publish, runs
    from tfmix import data as tdata

    results = {"per_cluster": args.per_cluster, "runs": {}}
    judges = {}  # one per dataset
    for name, run in named.items():
        if not os.path.isdir(run) and run in presets.PRESETS:  # a published preset
            card = presets.card(run)
            config, model = publish.card_config(card), presets.load(run, compile=False)
            progress = {"epochs_done": card["epochs"]}
        else:
            config, model = runs.load_run(run)
            progress = read_json(os.path.join(run, runs.PROGRESS_FILE))
        judged = evaluation.judge_dataset(config["dataset"])
        if judged not in judges:
            judges[judged] = metrics.load_judge(judged)
        x_test, y_test = tdata.split_arrays(config)
        y_test = tdata.split_labels(config, "test", y_test)
        report = evaluation.generation_metrics(model, config["dataset"], x_test, y_test,
                                               per_cluster=args.per_cluster, judge=judges[judged])
        results["runs"][name] = {
            "run": run, "model": config["model"], "dataset": config["dataset"], "num_labels": config["num_labels"],
            "epochs": progress.get("epochs_done"), **report,
        }
        print(json.dumps({name: results["runs"][name]}))
    if args.json:
        atomic_write_json(args.json, results)
    print(f"\n| run | model | labels | epochs | judged generation ({args.per_cluster} per y) | "
          "generation purity | self-consistency | judged, per y |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results["runs"].items():
        per = " ".join(f"{100 * a:.0f}" for a in r["judged_generation_per_cluster"])
        print(f"| {name} | {r['model']} | {r['num_labels']} | {r['epochs']} | {100 * r['judged_generation']:.1f}% | "
              f"{100 * r['generation_purity']:.1f}% | {100 * r['self_consistency']:.1f}% | {per} |")
    return results


if __name__ == "__main__":
    main()
