"""Train the judge classifier of a dataset once and publish it in the zoo.

    python scripts/train_judge.py mnist [--epochs 8] [--seed 0] [--threads 0]

The judge (`tfmix.metrics.judge_cnn`, a small CNN) is fit on the real
training split (grey images in [0, 1]), measured on the test split, and
written atomically to `zoo/judge_<dataset>/`: `model.keras`, `saved_model/`
(signature `serving_default`: images [N, 28, 28, 1] -> probabilities),
`card.json` and `README.md`. It labels generated samples in
`tfmix.metrics.conditional_generation_accuracy`.
"""

import argparse
import datetime
import os
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=["mnist", "fashion_mnist"])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="TF threads (0: all cores)")
    args = p.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfmix import data, metrics, publish
    from tfmix.utils import atomic_directory, atomic_write_json

    keras.utils.set_random_seed(args.seed)
    x, y = data.load_numpy(args.dataset, "train")
    x_test, y_test = data.load_numpy(args.dataset, "test")
    judge = metrics.judge_cnn(int(y.max()) + 1, seed=args.seed)
    judge.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.time()
    history = judge.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
                        validation_data=(x_test, y_test))
    wall = time.time() - start
    acc = float(np.mean(metrics.judge_labels(judge, x_test) == y_test))
    print(f"judge_{args.dataset}: test accuracy {acc:.4f} after {args.epochs} epochs ({wall:.0f} s)")

    command = " ".join(["python", "scripts/train_judge.py"] + sys.argv[1:])
    with atomic_directory(metrics.judge_dir(args.dataset), overwrite=True) as tmp:
        judge.save(os.path.join(tmp, "model.keras"))
        judge.export(os.path.join(tmp, "saved_model"), verbose=False)
        served = tf.saved_model.load(os.path.join(tmp, "saved_model"))
        probs = served.serve(tf.constant(x_test[:64]))
        err = float(np.abs(probs.numpy() - judge.predict(x_test[:64], verbose=0)).max())
        if err > 1e-4:
            raise RuntimeError(f"exported judge disagrees with the Keras model (max |dp| = {err})")
        card = {
            "name": f"judge_{args.dataset}",
            "description": "The judge: a small CNN (conv32-pool-conv64-pool-dense128) trained once on the real "
                           f"{args.dataset} training split; it labels generated samples "
                           "(tfmix.metrics.conditional_generation_accuracy).",
            "dataset": args.dataset,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "optimizer": "Adam(1e-3)",
            "test_accuracy": acc,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "wall_time_s": round(wall, 1),
            "machine": publish.machine_description(),
            "date": datetime.date.today().isoformat(),
            "command": command,
        }
        atomic_write_json(os.path.join(tmp, "card.json"), card)
        with open(os.path.join(tmp, "README.md"), "w") as f:
            f.write(
                f"# judge_{args.dataset}\n\n{card['description']}\n\n"
                f"- test accuracy: **{acc:.4f}** ({len(y_test)} test images)\n"
                f"- trained: {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, Adam 1e-3, "
                f"{wall:.0f} s on {card['machine']}, {card['date']}\n"
                f"- reproduce: `{command}`\n"
                f"- load: `tfmix.metrics.load_judge(\"{args.dataset}\")`; serve: `saved_model/` "
                "(`serving_default`: float32 [N, 28, 28, 1] in [0, 1] -> float32 [N, 10] probabilities)\n"
            )
    print(f"published {metrics.judge_dir(args.dataset)}")


if __name__ == "__main__":
    main()
