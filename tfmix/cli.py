"""The `tfmix` command line.

    tfmix train MODEL --dataset mnist --epochs N --batch-size B --seed S --out DIR
    tfmix evaluate DIR [--json]
    tfmix sample DIR --out grid.png
    tfmix plot-latent DIR --out latent.png
    tfmix export RUN_OR_PRESET --out DIR
    tfmix export RUN_OR_PRESET --serving-bundle DIR [--version N]
    tfmix export --zoo --serving-bundle DIR
    tfmix zoo list | tfmix zoo show PRESET
    tfmix demo [--preset gmvae_mnist] [--out demo.png]

Every error (unknown model or dataset, missing run directory, bad flag) is
one line on stderr and exit code 2.
"""

import argparse
import contextlib
import json
import os
import sys

from tfmix.hardware import DTYPE_POLICIES

EXIT_USAGE = 2
_QUIET = [True]  # hide TensorFlow's start-up lines (main sets it from --verbose)


class CLIError(Exception):
    """An error reported to the user as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CLIError(message)


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return values


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def _model_kwargs(args):
    kwargs = {}
    for key in ("num_clusters", "latent_dim", "hidden_units", "classification_weight"):
        value = getattr(args, key, None)
        if value is not None:
            kwargs[key] = value
    for item in args.param or []:
        if "=" not in item:
            raise CLIError(f"--param expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            kwargs[k] = json.loads(v)
        except json.JSONDecodeError:
            kwargs[k] = v
    return kwargs


def cmd_train(args):
    _load_tensorflow()
    from tfmix import runs, strategies

    if args.strategy == "multiworker":  # must come before any other TF work
        strategies.make_strategy("multiworker")
    config = runs.run_config(
        args.model, args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, learning_rate=args.learning_rate, num_labels=args.labels,
        binarize=args.binarize, limit=args.limit, model_kwargs=_model_kwargs(args),
        strategy=args.strategy, validation=args.validation, patience=args.patience,
        jit_compile=args.jit_compile, clip_norm=args.clip_norm, dtype_policy=args.dtype_policy,
        warmup_epochs=args.warmup_epochs, weighting=args.weighting, adam_epsilon=args.adam_epsilon,
    )
    try:
        runs.build_model(config)  # validates the model arguments early
    except TypeError as e:
        raise CLIError(f"bad model argument: {e}")
    if args.init_from:
        from tfmix import presets

        try:
            presets.check_preset(args.init_from)
        except ValueError as e:
            raise CLIError(str(e))
    runs.train(config, args.out, verbose=1 if sys.stdout.isatty() else 2, time_limit=args.time_limit,
               init_from=args.init_from)
    print(f"trained {args.model} on {args.dataset}: run directory {args.out}")


def cmd_evaluate(args):
    _check_run_dir(args.run_dir)
    _load_tensorflow()
    from tfmix import evaluation

    with contextlib.redirect_stdout(sys.stderr):  # the progress bar; stdout keeps the results (--json)
        results = evaluation.evaluate_run(
            args.run_dir, ll_samples=args.ll_samples, ll_limit=args.ll_limit, verbose=1
        )
    from tfmix.utils import atomic_write_json

    atomic_write_json(os.path.join(args.run_dir, "metrics.json"), results)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    width = max(len(k) for k in results)
    print(f"{'metric':<{width}}  value")
    for k, v in results.items():
        v = f"{v:.4f}" if isinstance(v, float) else str(v)
        print(f"{k:<{width}}  {v}")


def cmd_sample(args):
    _check_run_dir(args.run_dir)
    _load_tensorflow()
    from tfmix import plots, runs

    _, model = runs.load_run(args.run_dir)
    _ensure_parent(args.out)
    n = plots.cluster_samples_grid(model, args.out, args.per_cluster, args.seed,
                                   title=f"{type(model).__name__}: one row per cluster")
    print(f"wrote {n} samples ({model.num_clusters} cluster(s)) to {args.out}")


def cmd_plot_latent(args):
    _check_run_dir(args.run_dir)
    _load_tensorflow()
    from tfmix import plots, runs
    from tfmix import data as tdata

    config, model = runs.load_run(args.run_dir)
    x, y = tdata.split_arrays(dict(config, limit=args.limit))
    z2 = plots.project_2d(model.encode(x), args.method, seed=config["seed"])
    clusters = model.cluster_probs(x).argmax(-1)
    panels = ([("true label", y)] if y is not None else []) + [("cluster argmax q(y|x)", clusters)]
    _ensure_parent(args.out)
    plots.latent_scatter(z2, panels, args.out, title=f"{type(model).__name__} latent ({args.method})")
    print(f"wrote the latent of {len(x)} test images ({args.method}) to {args.out}")


def _load_run_or_preset(target):
    """(model, card or None) from a run directory or a preset handle (a
    name, a preset directory or .tar.gz, a file://, http(s):// or hf:// URL)."""
    from tfmix import presets

    if os.path.isdir(target) and os.path.exists(os.path.join(target, "run.json")):
        _check_run_dir(target)
        _load_tensorflow()
        from tfmix import runs

        return runs.load_run(target)[1], None
    if target in presets.PRESETS or "://" in target or os.path.exists(target):
        _load_tensorflow()
        return presets.load_with_card(target, compile=False)
    raise CLIError(
        f"{target!r} is neither a run directory nor a preset; presets: {', '.join(sorted(presets.PRESETS))}"
    )


def cmd_export(args):
    if args.zoo:
        if args.target or not args.serving_bundle:
            raise CLIError("export --zoo takes no TARGET and needs --serving-bundle DIR")
        return _export_zoo_bundle(args)
    if not args.target:
        raise CLIError("export needs a TARGET (run directory or preset), or --zoo")
    if bool(args.out) == bool(args.serving_bundle):
        raise CLIError("export needs exactly one of --out DIR and --serving-bundle DIR")
    model, card = _load_run_or_preset(args.target)
    from tfmix import export

    ll = args.ll_samples or (card or {}).get("export_ll_samples", 100)
    if args.serving_bundle:
        import tempfile

        from tfmix import serving

        name = args.name or (card or {}).get("preset") or os.path.basename(os.path.abspath(args.target))
        with tempfile.TemporaryDirectory() as tmp:
            export.export_saved_model(model, os.path.join(tmp, "sm"), ll_samples=ll)
            try:
                target = serving.write_bundle(os.path.join(tmp, "sm"), args.serving_bundle, name, args.version,
                                              overwrite=args.overwrite)
            except FileExistsError as e:
                raise CLIError(str(e))
        print(f"wrote the TF Serving model {name!r} version {args.version} to {target} "
              f"(with warm-up requests for every signature)")
        return
    try:
        names = export.export_saved_model(model, args.out, ll_samples=ll, overwrite=args.overwrite)
    except FileExistsError as e:
        raise CLIError(str(e))
    print(f"exported {type(model).__name__} to {args.out}: signatures {', '.join(names)} (log_likelihood: {ll} samples)")


def _export_zoo_bundle(args):
    """Every published preset's SavedModel as one bundle with models.config."""
    from tfmix import presets

    names = presets.published()
    if not names:
        raise CLIError(f"no published presets in {presets.zoo_dir()!r}")
    _load_tensorflow()
    from tfmix import preset_utils, serving

    os.makedirs(args.serving_bundle, exist_ok=True)
    for name in names:
        source = os.path.join(preset_utils.resolve(name), "saved_model")  # checked against its manifest
        try:
            serving.write_bundle(source, args.serving_bundle, name, args.version, overwrite=args.overwrite)
        except FileExistsError as e:
            raise CLIError(str(e))
        print(f"  {name}/{args.version}")
    path = serving.write_models_config(args.serving_bundle, names)
    print(f"wrote {len(names)} models and {path} (tensorflow_model_server --model_config_file)")


def cmd_zoo(args):
    from tfmix import presets

    if args.action == "list":
        done = set(presets.published())
        print(f"{'preset':<24} {'model':<10} {'dataset':<14} {'published':<10} description")
        for name, r in sorted(presets.PRESETS.items()):
            print(f"{name:<24} {r['model']:<10} {r['dataset']:<14} {'yes' if name in done else 'no':<10} {r['description']}")
        return
    if not args.preset:
        raise CLIError("zoo show needs a PRESET")
    presets.check_preset(args.preset)
    with open(os.path.join(presets.preset_dir(args.preset), "README.md")) as f:
        print(f.read())


def cmd_demo(args):
    _load_tensorflow()
    import numpy as np

    from tfmix import metrics, plots, presets
    from tfmix.data import binarize_dynamic

    import importlib.resources as resources

    with resources.files("tfmix").joinpath("assets/digits.npz").open("rb") as f:
        digits = np.load(f)
        images, labels = digits["images"], digits["labels"].astype(np.int64)
    model, card = presets.load_with_card(args.preset, compile=False)
    import tensorflow as tf

    x = binarize_dynamic(tf.constant(images[..., None] / 255.0, tf.float32), tf.constant([0, 0])).numpy()
    clusters = model.cluster_probs(x).argmax(-1)
    k = model.num_clusters
    print(f"{args.preset}: {type(model).__name__} with {k} clusters, {card['epochs']} epochs")
    print(f"clustered {len(x)} real MNIST test digits shipped with tfmix (10 per class):")
    for c in range(k):
        members = labels[clusters == c]
        if len(members):
            counts = np.bincount(members, minlength=10)
            top = ", ".join(f"{d}x{n}" for d, n in sorted(enumerate(counts), key=lambda t: -t[1]) if n)
            print(f"  cluster {c}: {len(members):3d} digits  (label x count: {top})")
    acc = metrics.cluster_accuracy(labels, clusters, "hungarian")
    print(f"Hungarian accuracy on these {len(x)} digits: {acc:.2f}")
    _ensure_parent(args.out)
    per = 10
    n = plots.cluster_samples_grid(model, args.out, per, args.seed,
                                   title=f"{args.preset}: generated samples, one row per cluster")
    print(f"wrote {n} generated samples ({per} per cluster) to {args.out}")


def _ensure_parent(path):
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CLIError(f"output directory {parent!r} does not exist")


def _check_run_dir(run_dir):
    """Cheap checks before TensorFlow is imported."""
    if not os.path.isdir(run_dir):
        raise CLIError(f"no run directory {run_dir!r}")
    for name in ("run.json", "model.keras"):
        if not os.path.exists(os.path.join(run_dir, name)):
            raise CLIError(f"{run_dir!r} is not a tfmix run (no {name}; has an epoch finished?)")


def build_parser():
    from tfmix.names import BINARIZE, DATASET_NAMES, MODEL_NAMES

    p = _Parser(prog="tfmix", description="Cluster-aware mixture VAEs in Keras 3 + TFP")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's C++ start-up log lines (hidden by default)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (resumes a killed run)")
    t.add_argument("model", choices=MODEL_NAMES)
    t.add_argument("--dataset", default="mnist", choices=DATASET_NAMES)
    t.add_argument("--epochs", type=_positive_int, default=10)
    t.add_argument("--batch-size", type=_positive_int, default=100)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--labels", default="0",
                   help="labelled examples: a number (a balanced subset) or 'all' (fully supervised)")
    t.add_argument("--binarize", choices=BINARIZE, default=None)
    t.add_argument("--limit", type=_positive_int, default=None, help="use only the first N examples of each split")
    t.add_argument("--num-clusters", type=_positive_int)
    t.add_argument("--latent-dim", type=_positive_int)
    t.add_argument("--hidden-units", type=_int_list, help="e.g. 512,512")
    t.add_argument("--classification-weight", type=float)
    t.add_argument("--weighting", choices=["kingma", "maaloe", "per_batch"], default="kingma",
                   help="with --labels N: Kingma et al.'s J^alpha (default), Maaloe et al.'s code (the labelled "
                        "terms x N / N_labelled) or the batch means with weight 1 (tfmix.runs.WEIGHTINGS); "
                        "--classification-weight and --param labelled_fraction=... override it")
    t.add_argument("--param", action="append", help="other model argument NAME=VALUE (JSON value)")
    t.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy; multiworker reads TF_CONFIG (run the same command on every worker)")
    t.add_argument("--dtype-policy", choices=DTYPE_POLICIES, default="auto",
                   help="mixed_bfloat16: hidden layers in bfloat16, densities in float32; mixed_bfloat16_logits: "
                        "the decoder's output layer in bfloat16 too; auto (default): "
                        "the measured fastest for this kind of CPU (tfmix.hardware)")
    t.add_argument("--clip-norm", type=float, default=None,
                   help="clip each gradient to this norm (guards against divergence)")
    t.add_argument("--adam-epsilon", type=float, default=None,
                   help="Adam's epsilon on the batch mean of the loss (default: Keras's 1e-7); code that "
                        "minimises the batch's sum with epsilon e trains as e / batch size here (Rui Shu's "
                        "GMVAE: 1e-8 / 100 = 1e-10)")
    t.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the training step with XLA (single device only; default: the model's measured "
                        "fastest, XLA for dlgmm and nvae)")
    t.add_argument("--validation", default=None,
                   help="split monitored each epoch (default: validation if the dataset has one, else test)")
    t.add_argument("--patience", type=int, default=None,
                   help="early stopping: epochs without a better validation -ELBO before stopping")
    t.add_argument("--warmup-epochs", type=int, default=0,
                   help="KL warm-up: the KL terms' weight rises linearly to 1 over N epochs (CaGeM)")
    t.add_argument("--init-from", default=None, metavar="PRESET",
                   help="start a new run from a zoo preset's weights, counting its card's epochs")
    t.add_argument("--time-limit", type=_positive_float, default=None, metavar="MINUTES",
                   help="stop after the epoch that ends past this many minutes (rerun to go on)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="all metrics of a run on the test split")
    e.add_argument("run_dir")
    e.add_argument("--json", action="store_true")
    e.add_argument("--ll-samples", type=int, default=100, help="importance samples (0: skip)")
    e.add_argument("--ll-limit", type=_positive_int, default=None, help="test examples for the log-likelihood")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="a PNG grid with one row of samples per cluster")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    s.add_argument("--per-cluster", type=_positive_int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_sample)

    pl = sub.add_parser("plot-latent", help="2-D projection of the latent, by label and by cluster")
    pl.add_argument("run_dir")
    pl.add_argument("--out", required=True)
    pl.add_argument("--method", choices=["tsne", "pca"], default="tsne")
    pl.add_argument("--limit", type=_positive_int, default=2000)
    pl.set_defaults(func=cmd_plot_latent)
    x = sub.add_parser("export", help="SavedModel with TF Serving signatures, or a TF Serving bundle")
    x.add_argument("target", nargs="?", help="run directory or preset handle")
    x.add_argument("--out", help="the SavedModel's directory")
    x.add_argument("--serving-bundle", metavar="DIR",
                   help="write DIR/<name>/<version>/ with warm-up requests (TF Serving's layout)")
    x.add_argument("--zoo", action="store_true", help="every published preset into --serving-bundle, with models.config")
    x.add_argument("--name", help="the model's name in the bundle (default: the preset or run directory name)")
    x.add_argument("--version", type=_positive_int, default=1)
    x.add_argument("--ll-samples", type=_positive_int, default=None)
    x.add_argument("--overwrite", action="store_true")
    x.set_defaults(func=cmd_export)

    z = sub.add_parser("zoo", help="list the presets or show a preset's card")
    z.add_argument("action", choices=["list", "show"])
    z.add_argument("preset", nargs="?")
    z.set_defaults(func=cmd_zoo)

    d = sub.add_parser("demo", help="cluster shipped digits with a zoo preset and draw samples")
    d.add_argument("--preset", default="gmvae_mnist")
    d.add_argument("--out", default="demo.png")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    return p


def _load_tensorflow():
    """Imports TensorFlow (quietly unless --verbose); commands call it after
    their cheap checks, so that usage errors answer before it loads."""
    if "tensorflow" not in sys.modules and _QUIET[0]:
        _import_tensorflow_quietly()


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 pointed at a temporary
    file: its C++ start-up lines (oneDNN, CUDA stubs on a machine without a
    GPU) are written before its log level applies; the lines of the device
    start-up that follows are below TF_CPP_MIN_LOG_LEVEL=3 (set unless the
    environment sets it). If the import fails, what it wrote is shown."""
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401  (devices start later: MultiWorkerMirroredStrategy must come first)
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        _QUIET[0] = not args.verbose
        args.func(args)
    except CLIError as e:
        print(f"tfmix: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"tfmix: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:
        if type(e).__name__ != "TrainingDiverged":
            raise
        print(f"tfmix: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tfmix: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
