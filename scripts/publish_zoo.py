"""Publish a trained run as a zoo preset: measure, export, card, atomically.

    python scripts/publish_zoo.py gmvae_mnist --run ~/tfmix-runs/zoo/gmvae_mnist_seed0 \
        [--ll-samples 1000] [--export-ll-samples 100] [--notes "..."] [--train-command "..."]
    python scripts/publish_zoo.py gmvae_mnist --reexport   # new signatures, same weights
    python scripts/publish_zoo.py gmvae_mnist --reevaluate [--ll-samples N]   # measure the card again
    python scripts/publish_zoo.py all --judge    # add the judged-generation measures to the cards
    python scripts/publish_zoo.py all --refresh   # README from card.json, manifest.json of the files

Writes zoo/<preset>/ (model.keras, saved_model/, card.json, README.md,
samples.png, manifest.json) and prints the card's metrics.
"""

import argparse
import json
import shlex
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("preset")
    p.add_argument("--run", help="run directory of tfmix train / train_zoo.py")
    p.add_argument("--reexport", action="store_true",
                   help="only re-export the published preset's SavedModel from its model.keras")
    p.add_argument("--reevaluate", action="store_true",
                   help="only measure the published preset again (same weights and card settings) and rewrite its card")
    p.add_argument("--judge", action="store_true",
                   help="only measure the judged generation (judged generation, generation purity, "
                        "self-consistency) of the published preset(s) again and add it to the card "
                        "(PRESET 'all': every published preset)")
    p.add_argument("--per-cluster", type=int, default=100, help="--judge: samples per cluster (default 100)")
    p.add_argument("--refresh", action="store_true",
                   help="only rewrite README.md from card.json and manifest.json from the files "
                        "(PRESET 'all': every published preset)")
    p.add_argument("--ll-samples", type=int, default=None, help="default 1000 (--reevaluate: the card's)")
    p.add_argument("--ll-limit", type=int, default=None, help="test images for the log-likelihood (default all)")
    p.add_argument("--export-ll-samples", type=int, default=100)
    p.add_argument("--notes", default="")
    p.add_argument("--train-command", default=None)
    args = p.parse_args()
    from tfmix import presets, publish

    if args.refresh:
        for name in presets.published() if args.preset == "all" else [args.preset]:
            manifest = publish.refresh(name)
            print(f"refreshed {name}: README.md and manifest.json ({len(manifest['files'])} files)")
        return
    if args.judge:
        if args.per_cluster < 1:
            p.error(f"--per-cluster must be at least 1, got {args.per_cluster}")
        command = "python scripts/publish_zoo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        for name in presets.published() if args.preset == "all" else [args.preset]:
            card = publish.rejudge(name, per_cluster=args.per_cluster, command=command)
            m = card["metrics"]
            print(json.dumps({"preset": name, **{k: m[k] for k in ("judged_generation", "generation_purity",
                                                                     "self_consistency") if k in m}}))
        return
    if args.reexport:
        card = publish.reexport(args.preset)
        print(f"re-exported {args.preset}: saved_model of {card['saved_model_exported']}")
        return
    if args.reevaluate:
        command = "python scripts/publish_zoo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        card = publish.reevaluate(args.preset, ll_samples=args.ll_samples, ll_limit=args.ll_limit, command=command)
        print(json.dumps({"preset": card["preset"], "metrics": card["metrics"]}, indent=2))
        return
    if not args.run:
        p.error("--run is required (unless --reexport or --reevaluate)")
    if args.ll_samples is None:
        args.ll_samples = 1000

    command = "python scripts/publish_zoo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    card = publish.publish(
        args.preset, args.run, ll_samples=args.ll_samples, export_ll_samples=args.export_ll_samples,
        notes=args.notes, command=command, train_command=args.train_command, ll_limit=args.ll_limit,
    )
    print(json.dumps({"preset": card["preset"], "epochs": card["epochs"], "metrics": card["metrics"]}, indent=2))


if __name__ == "__main__":
    main()
