"""Train a zoo preset's recipe (resumable: rerun the same command after a kill).

    python scripts/train_zoo.py gmvae_fashion_mnist --runs-dir ~/tfmix-runs/zoo [--epochs N] [--seed S]
    python scripts/train_zoo.py gmvae_mnist --run-dir ~/tfmix-runs/campaign/gmvae_mnist_seed0 --seed 0

Then publish it with `python scripts/publish_zoo.py PRESET --run RUN_DIR`.
"""

import argparse
import os


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("preset")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--runs-dir", help="the run goes to RUNS_DIR/<preset>_seed<seed>")
    where.add_argument("--run-dir", help="the run directory itself")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--seed", type=int, help="default: the recipe's")
    p.add_argument("--threads", type=int, default=0, help="TF threads (0: all cores)")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop after the epoch that ends past this many minutes (rerun to go on)")
    args = p.parse_args(argv)

    from tfmix import presets

    recipe = presets.check_preset(args.preset)
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfmix import runs

    seed = recipe["seed"] if args.seed is None else args.seed
    config = runs.run_config(
        recipe["model"], recipe["dataset"], epochs=args.epochs or recipe["epochs"],
        batch_size=recipe["batch_size"], seed=seed, learning_rate=recipe["learning_rate"],
        model_kwargs=recipe["model_kwargs"], num_labels=recipe.get("num_labels", 0),
        patience=recipe.get("patience"), clip_norm=recipe.get("clip_norm"),
        warmup_epochs=recipe.get("warmup_epochs", 0), weighting=recipe.get("weighting", "kingma"),
        adam_epsilon=recipe.get("adam_epsilon"),
    )
    run_dir = args.run_dir or os.path.join(args.runs_dir, f"{args.preset}_seed{seed}")
    runs.train(config, run_dir, verbose=2, time_limit=args.time_limit)
    print(f"trained {args.preset}: {run_dir}")


if __name__ == "__main__":
    main()
