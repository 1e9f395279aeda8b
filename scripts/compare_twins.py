"""Compare runs that differ in one setting (twins: the same seed, data and
recipe), epoch by epoch, from their `log.csv`: the validation -ELBO, the
training -ELBO and the test Hungarian accuracy at chosen epochs, and the
mean -ELBOs over the last ten epochs (issue 18's test of a dtype: a
configuration becomes a default only where its twin agrees with float32
within the seed-to-seed noise, which a second float32 seed measures).

    python scripts/compare_twins.py RUN_A RUN_B [RUN_C ...] [--epochs 1,10,20,25,30] [--names a,b,c]

Labelled models (fully supervised N-VAE) log the labelled -ELBO
(`labelled_neg_elbo`); the table says which column it read. Epochs are
counted from 1 (the first row of `log.csv` is epoch 1).
"""

import argparse
import csv
import os

#: (label, training column, validation column), the first present wins
ELBO_COLUMNS = (("-ELBO", "neg_elbo", "val_neg_elbo"),
                ("labelled -ELBO", "labelled_neg_elbo", "val_labelled_neg_elbo"))


def read_log(run):
    """The rows of `run`/log.csv as {column: float}, in epoch order."""
    path = os.path.join(run, "log.csv")
    if not os.path.exists(path):
        raise SystemExit(f"{run!r} has no log.csv")
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    if not rows:
        raise SystemExit(f"{path!r} has no epochs")
    return sorted(rows, key=lambda r: r["epoch"])


def elbo_columns(rows):
    for label, train, val in ELBO_COLUMNS:
        if train in rows[0] and val in rows[0]:
            return label, train, val
    raise SystemExit(f"log.csv has none of the -ELBO columns {[c[1] for c in ELBO_COLUMNS]}")


def last_mean(rows, column, last=10):
    """Mean of `column` over the last `last` epochs (all if fewer)."""
    values = [r[column] for r in rows[-last:]]
    return sum(values) / len(values)


def table(runs, epochs, names=None):
    """The Markdown table comparing `runs` (directories) at `epochs`."""
    logs = [read_log(run) for run in runs]
    names = names or [os.path.basename(os.path.normpath(run)) for run in runs]
    if len(names) != len(runs):
        raise SystemExit(f"--names gives {len(names)} names for {len(runs)} runs")
    columns = {elbo_columns(rows) for rows in logs}
    if len(columns) > 1:
        raise SystemExit("the runs log different -ELBO columns: they are not twins")
    (label, train, val), = columns
    sep = " / "
    lines = [f"runs: {sep.join(names)}", "",
             f"| epoch | validation {label} | training {label} | test Hungarian |", "|---|---|---|---|"]
    for epoch in epochs:
        at = [next((r for r in rows if int(r["epoch"]) + 1 == epoch), None) for rows in logs]
        cell = lambda key, fmt: sep.join("-" if r is None or key not in r else fmt(r[key]) for r in at)  # noqa: E731
        lines.append(f"| {epoch} | {cell(val, '{:.2f}'.format)} | {cell(train, '{:.2f}'.format)} | "
                     f"{cell('test_acc_hungarian', lambda v: f'{100 * v:.1f}%')} |")
    n = min(len(rows) for rows in logs)
    lines.append(f"| mean of epochs {max(1, n - 9)}-{n} | "
                 f"{sep.join(f'{last_mean(rows[:n], val):.2f}' for rows in logs)} | "
                 f"{sep.join(f'{last_mean(rows[:n], train):.2f}' for rows in logs)} | |")
    return "\n".join(lines)


def parse_epochs(text):
    try:
        epochs = [int(e) for e in text.split(",")]
    except ValueError:
        raise SystemExit(f"--epochs must be comma-separated integers, got {text!r}") from None
    if not epochs or min(epochs) < 1:
        raise SystemExit(f"--epochs must be >= 1, got {text!r}")
    return epochs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories (each with log.csv)")
    p.add_argument("--epochs", default="1,10,20,25,30", help="comma-separated epochs (from 1)")
    p.add_argument("--names", default=None, help="comma-separated names for the runs (default: directory names)")
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        raise SystemExit("give at least two runs to compare")
    print(table(args.runs, parse_epochs(args.epochs), args.names.split(",") if args.names else None))


if __name__ == "__main__":
    main()
