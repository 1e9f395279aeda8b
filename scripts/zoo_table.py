"""Print the Markdown table of the published zoo presets (from their cards).

    python scripts/zoo_table.py
"""

from tfmix import presets


def main():
    print("| preset | epochs | seed | wall time | Hungarian acc | majority acc | NMI | ARI | test error | kNN err k=3/5/10 | test -ELBO | test log p(x) (S, images) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in presets.published():
        c = presets.card(name)
        m = c["metrics"]
        pct = lambda k: f"{100 * m[k]:.1f}%" if k in m else "-"  # noqa: E731
        num = lambda k: f"{m[k]:.3f}" if k in m else "-"  # noqa: E731
        knn = "/".join(f"{100 * m[f'knn_error_k{k}']:.1f}" for k in (3, 5, 10) if f"knn_error_k{k}" in m)
        ll = f"{m['test_log_likelihood']:.2f} ({m['ll_samples']}, {m['ll_examples']})" if "test_log_likelihood" in m else "-"
        # models trained with labels are evaluated on (x, y): a bound on -log p(x | y)
        elbo = f"{m['test_neg_elbo']:.2f}" if "test_neg_elbo" in m else f"{m['test_labelled_neg_elbo']:.2f} (given y)"
        print(f"| {name} | {c['epochs']} | {c['seed']} | {c['wall_time_s'] / 3600:.2f} h | {pct('acc_hungarian')} | "
              f"{pct('acc_majority')} | {num('nmi')} | {num('ari')} | {pct('test_error')} | {knn} % | "
              f"{elbo} | {ll} |")


if __name__ == "__main__":
    main()
