"""How much Adam's epsilon holds back each weight of a run: the root of
Adam's bias-corrected second moment, sqrt(v_hat), of every trainable
variable, against the epsilon the run trains with and any other.

    python scripts/adam_state.py RUN_DIR [RUN_DIR ...] [--epsilons 1e-10,1e-7]

Adam moves a weight by lr * m_hat / (sqrt(v_hat) + epsilon): where
sqrt(v_hat) is far below epsilon the step shrinks by about
sqrt(v_hat) / epsilon, so the share of a variable's entries below an
epsilon is the share that epsilon all but freezes. Reads the run's
resumable state (`backup/latest.weights.h5`: the weights and Adam moments
after its last finished epoch; `tfmix train` and `scripts/campaign.py`
runs). Prints a Markdown table per run: variable, shape, median sqrt(v_hat)
and, for each epsilon, the share of entries with sqrt(v_hat) below it.
"""

import argparse
import os


def adam_state(run_dir):
    """(iterations, [(variable path inside the model, shape, sqrt(v_hat) as
    a numpy array)]) of a run's backup state."""
    import numpy as np

    from tfmix import runs
    from tfmix.utils import read_json

    config = read_json(os.path.join(run_dir, runs.RUN_FILE), None)
    if config is None:
        raise SystemExit(f"{run_dir}: no {runs.RUN_FILE} (not a tfmix run directory)")
    path = os.path.join(run_dir, runs.BACKUP_DIR, "latest.weights.h5")
    if not os.path.exists(path):
        raise SystemExit(f"{run_dir}: no {path} (the run kept only its log)")
    model = runs.build_model({**runs.LATER_KEYS, **config, "dtype_policy": "float32"})
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    opt = model.optimizer
    steps = int(opt.iterations.numpy())
    if steps == 0:
        raise SystemExit(f"{run_dir}: its backup holds no optimizer state")
    correction = 1.0 - float(opt.beta_2) ** steps
    out = []
    for var in model.trainable_variables:
        v = opt._velocities[opt._get_variable_index(var)].numpy()
        out.append((var.path.split("/", 1)[-1], tuple(var.shape), np.sqrt(v / correction)))
    return steps, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--epsilons", default="1e-10,1e-7", help="comma-separated (default 1e-10,1e-7)")
    args = p.parse_args(argv)
    try:
        epsilons = [float(e) for e in args.epsilons.split(",")]
    except ValueError:
        p.error(f"--epsilons must be comma-separated numbers, got {args.epsilons!r}")
    if not epsilons or not all(e > 0 for e in epsilons):
        p.error(f"--epsilons must be > 0, got {args.epsilons!r}")
    import numpy as np

    for run_dir in args.runs:
        steps, state = adam_state(run_dir)
        print(f"\n{run_dir} (Adam step {steps})\n")
        print("| variable | shape | median sqrt(v_hat) | " + " | ".join(f"share < {e:g}" for e in epsilons) + " |")
        print("|---|---|---|" + "---|" * len(epsilons))
        for name, shape, root in state:
            shares = " | ".join(f"{(root < e).mean():.1%}" for e in epsilons)
            print(f"| {name} | {list(shape)} | {np.median(root):.1e} | {shares} |")


if __name__ == "__main__":
    main()
