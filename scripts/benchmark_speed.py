"""Training throughput and serving latency on this machine (issue 8).

    python scripts/benchmark_speed.py train [--models gmvae,vae,...] [--configs default,fp32,xla,bf16,spe10,autotune] \
        [--examples 6000] [--repeats 1] [--rounds 1] [--data synthetic|mnist] [--json train.json]
    python scripts/benchmark_speed.py serve [--presets gmvae_mnist,...] [--calls 300] [--json serve.json]
    python scripts/benchmark_speed.py peak [--json peak.json]
    python scripts/benchmark_speed.py report --peak peak.json --train train.json --serve serve.json

`peak`: the measured matrix-multiply peak (float32 and bfloat16, a
4096 x 1024 x 1024 matmul), the reference for the "share of peak" columns.

`train`: examples/s of `model.fit` at each model's reference size (its zoo
recipe, else the sizes below) on cached synthetic binary images, after one
warm-up epoch; configurations: `default` (what `tfmix train` uses on this
machine: the dtype policy `tfmix.hardware` picks for the model on this CPU,
with the model's `default_jit_compile` and `default_steps_per_execution`),
`fp32` (plain float32 graphs), `xla` (`jit_compile=True`), `bf16`
(`mixed_bfloat16` policy, every output layer in float32), `bf16_logits`
(`mixed_bfloat16_logits`: the decoder's output layer in bfloat16 too;
`bf16_logits_spe10` with 10 steps per execution, `bf16_logits_xla` with XLA), `spe10`
(`steps_per_execution=10`), `bf16_xla` / `bf16_spe10` (bfloat16 with XLA / with 10 steps per execution), `autotune` (tf.data autotuning on, as before
tfmix turned it off: `tfmix.data.pipeline_options`), `sampled_y` (float32,
`y_estimator="straight_through"`: one y per example instead of the sum over
y; models that marginalise y only, FLOPs of the sampled training objective);
`baseline` is `default` as it was before issue 18's changes (float32
everywhere, TFP's two-softplus Bernoulli `log_prob`, Keras's unfused Adam
and, for gmvae, m2 and modified_m2, one step per execution; XLA where the model's float32 default has it), `tfp_bernoulli`
and `keras_adam` undo one of the two each. `--data mnist` reads the
real tfds MNIST pipeline (`tfmix.data.load`, dynamic binarisation) instead. Each row times one `fit`
of `--repeats` epochs (the median epoch; epochs are timed from their start
to their end) and the time from its last step to the return of `fit`
(`end_of_fit_s`). FLOPs per training example are 3x the forward
FLOPs of the objective (TF's graph profiler on the traced -ELBO), a standard
estimate of forward + backward. The CPU model and its speed-relevant
flags are printed first; every `--rounds` round measures the matmul peak of
both dtypes again and runs every row, interleaved, and each row reports its
share of the same round's peak of the dtype it trains in.

`serve`: for every signature of each zoo SavedModel (loaded with
`tf.saved_model.load`, no tfmix code in the call path): batch-1 latency p50
and p99 over `--calls` calls after warm-up, and batch-1024 throughput; FLOPs
per example from the signature's graph.

Run on an otherwise idle machine; each result is printed as a JSON line and
as a Markdown table.
"""

import argparse
import contextlib
import json
import os
import time

REFERENCE = {  # model -> (constructor kwargs, batch size) when no zoo recipe names it
    "gmvae": ({"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "vae": ({"latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "m2": ({"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "modified_m2": ({"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "dilokthanakul_gmvae": ({"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "dlgmm": ({"num_clusters": 3, "latent_dim": 25, "hidden_units": [500]}, 100),
    "dldpmm": ({"num_clusters": 17, "latent_dim": 25, "hidden_units": [500]}, 100),
    "sbvae": ({"num_clusters": 25, "hidden_units": [500]}, 100),
    "cagem": ({"num_clusters": 10, "latent_dim": 64, "hidden_units": [512, 512]}, 100),
    "catvae": ({"num_clusters": 10, "delta": 2, "hidden_units": [400]}, 128),
    "infocatvae": ({"num_clusters": 10, "delta": 2, "hidden_units": [400]}, 128),
    "nvae": ({"num_clusters": 10, "class_latent_dim": 6, "shared_latent_dim": 10, "hidden_units": [512, 512]}, 100),
}
CONFIGS = ("default", "baseline", "tfp_bernoulli", "keras_adam", "fp32", "xla", "bf16", "bf16_logits", "bf16_xla",
           "bf16_logits_xla", "bf16_spe10", "bf16_logits_spe10", "spe10", "autotune", "sampled_y")
def cpu_flags():
    """The speed flags (`tfmix.hardware.SPEED_FLAGS`) this CPU has."""
    from tfmix import hardware

    return [f for f in hardware.SPEED_FLAGS if f in hardware.cpu_flags()]


def machine():
    from tfmix import hardware

    return hardware.describe()


#: models whose steps per execution issue 18 raised (1 -> 10), so that
#: `baseline` is their default of before it
SPE_SINCE_ISSUE_18 = ("gmvae", "m2", "modified_m2")


def default_config(name):
    """What `tfmix train NAME` uses on one device: this CPU's default dtype
    for the model (`tfmix.hardware`), the model's `default_jit_compile` and
    `default_steps_per_execution`, the fused Adam."""
    from tfmix.models import get_model_class

    from tfmix.hardware import decoder_logits_dtype, default_dtype_policy, default_jit_compile, keras_dtype_policy

    cls, policy = get_model_class(name), default_dtype_policy(model=name)
    return {"jit_compile": default_jit_compile(cls, policy),
            "steps_per_execution": int(cls.default_steps_per_execution),
            "dtype_policy": keras_dtype_policy(policy), "decoder_logits_dtype": decoder_logits_dtype(policy)}


def graph_flops(concrete_function):
    """Float operations of a traced function's graph (TF's profiler)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation())
    opts = opts.with_empty_output().build()
    return int(model_analyzer.profile(concrete_function.graph, options=opts).total_float_ops)


def matmul_peak(dtype, n=(4096, 1024, 1024), reps=30):
    import tensorflow as tf

    a = tf.cast(tf.random.normal(n[:2]), dtype)
    b = tf.cast(tf.random.normal(n[1:]), dtype)
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    start = time.perf_counter()
    for _ in range(reps):
        c = f(a, b)
    c.numpy()
    return 2 * n[0] * n[1] * n[2] * reps / (time.perf_counter() - start)


def cmd_peak(args):
    import tensorflow as tf

    res = {"machine": machine(), "fp32_gflops": matmul_peak(tf.float32) / 1e9,
           "bf16_gflops": matmul_peak(tf.bfloat16) / 1e9}
    print(json.dumps(res))
    return [res]


def reference(name):
    from tfmix import presets

    for recipe in presets.PRESETS.values():
        if recipe["model"] == name:
            return dict(recipe["model_kwargs"]), recipe["batch_size"]
    return REFERENCE[name]


def train_dataset(data, examples, batch, seed=0):
    """The timed input: cached synthetic binary images, or the real MNIST
    training pipeline (`data="mnist"`)."""
    import numpy as np
    import tensorflow as tf

    from tfmix import data as tdata

    if data == "mnist":
        return tdata.load("mnist", "train", batch_size=batch, limit=examples, seed=seed)
    x = (np.random.default_rng(seed).random((examples, 28, 28, 1)) < 0.3).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True).cache()
    return ds.with_options(tdata.pipeline_options())


@contextlib.contextmanager
def likelihood_of(config):
    """Models built and traced inside use TFP's own `tfd.Bernoulli` log_prob
    (two softplus per pixel) for the `baseline` and `tfp_bernoulli` rows."""
    from tfmix import distributions as D

    fast = D.bernoulli_likelihood
    if config in ("baseline", "tfp_bernoulli"):
        D.bernoulli_likelihood = lambda logits: D.tfd.Independent(
            D.tfd.Bernoulli(logits=logits, dtype=logits.dtype), reinterpreted_batch_ndims=1)
    try:
        yield
    finally:
        D.bernoulli_likelihood = fast


def build_model(name, config, seed=0):
    """(compiled model, batch size, settings) of one benchmark row. Sets the
    Keras dtype policy of `config`; the caller resets it to float32."""
    import keras

    from tfmix import hardware
    from tfmix.models import get_model_class
    from tfmix.optimizers import FusedAdam

    kwargs, batch = reference(name)
    if config == "sampled_y":
        from tfmix.models import MarginalMixtureVAE

        if not issubclass(get_model_class(name), MarginalMixtureVAE):
            raise SystemExit(f"`sampled_y`: {name} does not sum over y (no y_estimator)")
        kwargs = dict(kwargs, y_estimator="straight_through")
    if config in ("default", "baseline", "tfp_bernoulli", "keras_adam"):
        settings = default_config(name)
        if config == "baseline":  # every model trained in float32 before issue 18, with its XLA default
            settings.update(dtype_policy="float32", decoder_logits_dtype="float32",
                            jit_compile=hardware.default_jit_compile(get_model_class(name), "float32"))
            if name in SPE_SINCE_ISSUE_18:
                settings["steps_per_execution"] = 1
    else:
        settings = {"jit_compile": config.endswith("xla"),
                    "steps_per_execution": 10 if config.endswith("spe10") else 1,
                    "dtype_policy": "mixed_bfloat16" if config.startswith("bf16") else "float32",
                    "decoder_logits_dtype": "compute" if config.startswith("bf16_logits") else "float32"}
    keras.config.set_dtype_policy(settings["dtype_policy"])
    model = get_model_class(name)(seed=seed, decoder_logits_dtype=settings["decoder_logits_dtype"], **kwargs)
    adam = keras.optimizers.Adam if config in ("baseline", "keras_adam") else FusedAdam
    model.compile(optimizer=adam(1e-3), jit_compile=settings["jit_compile"],
                  steps_per_execution=settings["steps_per_execution"])
    return model, batch, settings


def train_throughput(name, config, examples, seed=0, repeats=1, data="synthetic"):
    import keras
    import numpy as np
    import tensorflow as tf

    class EpochTimes(keras.callbacks.Callback):
        """Wall time of each epoch (begin to end), and of the last step's end."""

        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_step = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    try:
        stack = contextlib.ExitStack()
        stack.enter_context(likelihood_of(config))
        model, batch, settings = build_model(name, config, seed)
        ds = train_dataset(data, examples, batch, seed)
        if config == "autotune":
            options = tf.data.Options()
            options.autotune.enabled = True
            ds = ds.with_options(options)
        model.fit(ds, epochs=1, verbose=0)  # warm-up: tracing, compilation, caching
        # one fit of `repeats` epochs, as in training; the median epoch counts
        clock = EpochTimes()
        hist = model.fit(ds, epochs=int(repeats), verbose=0, callbacks=[clock]).history
        times, end_of_fit = clock.times, time.perf_counter() - clock.last_step
        seconds = float(np.median(times))
        sampled = config == "sampled_y"  # its training objective is not the evaluation one
        forward = tf.function(tf.autograph.experimental.do_not_convert(lambda xb: model._objective(xb, training=sampled)[0]))
        flops = graph_flops(forward.get_concrete_function(tf.TensorSpec([batch, 28, 28, 1], tf.float32)))
    finally:
        stack.close()
        keras.config.set_dtype_policy("float32")
    n = examples // batch * batch if data == "synthetic" else examples
    return {
        "model": name, "config": config, "batch_size": batch, "examples_per_s": n / seconds,
        "s_per_mnist_epoch": 60000 / (n / seconds), "train_flops_per_example": 3 * flops / batch,
        "loss": float(hist["loss"][-1]), "finite": bool(np.isfinite(hist["loss"][-1])),
        "epoch_seconds": [round(t, 3) for t in times], "end_of_fit_s": round(end_of_fit, 3),
        "data": data, "dtype_policy": settings["dtype_policy"], "decoder_logits_dtype": settings["decoder_logits_dtype"],
        "jit_compile": settings["jit_compile"],
        "steps_per_execution": settings["steps_per_execution"],
    }


#: where a traced op's time goes: its node name says which part of the step ran it
PHASES = (("optimizer", ("adam/", "Adam/", "AssignAdd", "AssignSub", "ResourceApplyAdam")),
          ("backward", ("gradient_tape/",)))


def op_type(op):
    """The TensorFlow op type behind a kernel's name: oneDNN's rewrites
    (`_MklMatMul`, `_MklNativeFusedMatMul`, ...: on CPUs where oneDNN takes
    over, e.g. with AVX-512) count as the op they replace (`MatMul`,
    `_FusedMatMul`), so that profiles compare across CPU kinds."""
    for prefix in ("_MklNative", "_Mkl"):
        if op.startswith(prefix):
            op = op[len(prefix):]
            return "_" + op if op.startswith("Fused") else op
    return op


def op_times(logdir):
    """Per-op time (ms) of a `tf.profiler` trace: the TF ops run by the
    executor's compute threads, keyed by (node name, op type)."""
    import collections
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    times = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" not in name or name.startswith("ExecutorState"):
                        continue  # executor bookkeeping, not an op
                    node, op = name.rsplit(":", 1)
                    times[(node.split("/", 1)[-1], op_type(op))] += event.duration_ps / 1e9
    return times


def phase_of(node, op=""):
    """forward, backward or optimizer, from the node's name and op type (an
    XLA-compiled step runs as one cluster op and counts as forward)."""
    for phase, markers in PHASES:
        if any(m in node or m == op for m in markers):
            return phase
    return "forward"


def profile_step(name, config, steps=20, seed=0, top=8):
    """Where the time of one training step goes: `steps` steps traced with
    TensorFlow's profiler after a warm-up, their op time summed by op type
    and by phase (forward, backward, optimizer), in ms per step."""
    import collections
    import shutil
    import tempfile

    import keras
    import tensorflow as tf

    try:
        stack = contextlib.ExitStack()
        stack.enter_context(likelihood_of(config))
        model, batch, settings = build_model(name, config, seed)
        ds = train_dataset("synthetic", batch * steps, batch, seed)
        model.fit(ds, epochs=1, verbose=0)  # warm-up: tracing, caching
        logdir = tempfile.mkdtemp(prefix="tfmix-profile-")
        try:
            start = time.perf_counter()
            tf.profiler.experimental.start(logdir)
            model.fit(ds, epochs=1, verbose=0)
            tf.profiler.experimental.stop()
            wall = time.perf_counter() - start
            times = op_times(logdir)
        finally:
            shutil.rmtree(logdir, ignore_errors=True)
    finally:
        stack.close()
        keras.config.set_dtype_policy("float32")
    by_op, by_phase, by_node = collections.Counter(), collections.Counter(), collections.Counter()
    for (node, op), ms in times.items():
        by_op[op] += ms / steps
        by_phase[phase_of(node, op)] += ms / steps
        by_node[f"{node}:{op}"] += ms / steps
    total = sum(by_op.values())
    share = lambda c: [[k, round(v, 3), round(v / total, 4)] for k, v in c.most_common(top)]  # noqa: E731
    return {"model": name, "config": config, "dtype_policy": settings["dtype_policy"], "batch_size": batch,
            "steps": steps, "wall_ms_per_step": round(1000 * wall / steps, 2), "op_ms_per_step": round(total, 2),
            "phases": share(by_phase), "ops": share(by_op), "nodes": share(by_node)}


def cmd_profile(args):
    print(json.dumps({"machine": machine()}), flush=True)
    results = []
    for name in args.models.split(","):
        for config in args.configs.split(","):
            res = profile_step(name, config, steps=args.steps, top=args.top)
            print(json.dumps(res), flush=True)
            results.append(res)
    lines = ["| model | config | ms per step (traced) | forward / backward / optimizer | top op types (share of op time) |",
             "|---|---|---|---|---|"]
    for r in results:
        ph = dict((k, v) for k, _, v in r["phases"])
        ops = ", ".join(f"{k} {100 * v:.0f}%" for k, _, v in r["ops"][:6])
        lines.append(f"| {r['model']} | {r['config']} | {r['wall_ms_per_step']:.1f} | "
                     f"{100 * ph.get('forward', 0):.0f}% / {100 * ph.get('backward', 0):.0f}% / "
                     f"{100 * ph.get('optimizer', 0):.0f}% | {ops} |")
    print("\n".join(lines))
    return results


def cmd_train(args):
    models = args.models.split(",") if args.models else list(REFERENCE)
    configs = args.configs.split(",")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    import tensorflow as tf

    print(json.dumps({"machine": machine()}), flush=True)
    results = []
    for round_ in range(int(args.rounds)):  # interleaved: the machine's speed drifts within an hour
        # the same run's matmul peak of each dtype, measured again every round
        peak = {"float32": matmul_peak(tf.float32) / 1e9, "mixed_bfloat16": matmul_peak(tf.bfloat16) / 1e9}
        for name in models:
            for config in configs:
                try:
                    res = train_throughput(name, config, args.examples, repeats=args.repeats, data=args.data)
                    gflops = res["examples_per_s"] * res["train_flops_per_example"] / 1e9
                    res.update(round=round_, peak_gflops=peak[res["dtype_policy"]],
                               share_of_peak=gflops / peak[res["dtype_policy"]])
                except Exception as e:  # a configuration a model does not support is reported, not hidden
                    res = {"model": name, "config": config, "round": round_,
                           "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
                print(json.dumps(res), flush=True)
                results.append(res)
    return results


def signature_flops(model, ll_samples):
    """FLOPs per example of each signature's computation (the Keras model's
    functions the export wraps, traced at batch 1; the in-graph input checks
    are not counted)."""
    import tensorflow as tf

    x = tf.TensorSpec([1, model.data_dim], tf.float32)
    seed = tf.TensorSpec([2], tf.int32)
    fns = {
        "cluster": (lambda x: tf.nn.softmax(model.cluster_logits(x)), [x]),
        "encode": (model.encode_mean, [x]),
        "reconstruct": (model.reconstruct_mean, [x]),
        "generate": (lambda c, s: model.generate_mean(c, s), [tf.TensorSpec([1], tf.int32), seed]),
        "log_likelihood": (lambda x, s: model.log_importance_weights(x, ll_samples, s), [x, seed]),
    }
    fns["classify"] = fns["cluster"]
    out = {}
    for name, (fn, specs) in fns.items():
        traced = tf.autograph.experimental.do_not_convert(fn)
        out[name] = graph_flops(tf.function(traced).get_concrete_function(*specs))
    return out


def cmd_serve(args):
    import numpy as np
    import tensorflow as tf

    from tfmix import presets

    names = args.presets.split(",") if args.presets else presets.published()
    rng = np.random.default_rng(0)
    results = []
    for name in names:
        served = tf.saved_model.load(os.path.join(presets.preset_dir(name), "saved_model"))
        flops = signature_flops(presets.load(name, compile=False), presets.card(name).get("export_ll_samples", 100))
        for sig_name, fn in sorted(served.signatures.items()):
            if sig_name == "serving_default":
                continue  # the same function as `cluster`

            def inputs(n):
                if sig_name == "generate":
                    k = presets.card(name)["hyperparameters"].get("num_clusters", 1)
                    return {"cluster": tf.constant(np.arange(n) % k, tf.int32), "seed": tf.constant([1, 2], tf.int32)}
                return {"x": tf.constant((rng.random((n, 28, 28, 1)) < 0.3).astype("float32"))}

            one, big = inputs(1), inputs(args.batch)
            for _ in range(20):
                fn(**one)
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                out = fn(**one)
                _ = [v.numpy() for v in out.values()]
                times.append(time.perf_counter() - start)
            reps = 3 if sig_name == "log_likelihood" else 10
            fn(**big)
            start = time.perf_counter()
            for _ in range(reps):
                _ = [v.numpy() for v in fn(**big).values()]
            throughput = reps * args.batch / (time.perf_counter() - start)
            res = {"preset": name, "signature": sig_name, "p50_ms": 1e3 * float(np.percentile(times, 50)),
                   "p99_ms": 1e3 * float(np.percentile(times, 99)), "batch": args.batch,
                   "examples_per_s": throughput, "flops_per_example": flops.get(sig_name)}
            print(json.dumps(res), flush=True)
            results.append(res)
    return results


def cmd_report(args):
    """Markdown tables from the JSON files of `peak`, `train` and `serve`."""
    peak = json.load(open(args.peak))["results"][0]
    lines = [f"Machine: {peak['machine']}; measured matmul peak (4096x1024x1024): "
             f"float32 {peak['fp32_gflops']:.0f} GFLOP/s, bfloat16 {peak['bf16_gflops']:.0f} GFLOP/s.", ""]
    if args.train:
        data = json.load(open(args.train))
        lines += [f"Training throughput ({data['date']}, `python scripts/benchmark_speed.py train --json ...`):", "",
                  "| model | batch | config | data | examples/s | s per MNIST epoch | last step to end of fit (s) "
                  "| train GFLOP/example | GFLOP/s | share of its dtype's peak |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in data["results"]:
            if "error" in r:
                lines.append(f"| {r['model']} | | {r['config']} | | error: {r['error']} | | | | | |")
                continue
            gflops = r["examples_per_s"] * r["train_flops_per_example"] / 1e9
            lines.append(
                f"| {r['model']} | {r['batch_size']} | {r['config']} | {r.get('data', 'synthetic')} | "
                f"{r['examples_per_s']:.0f} | {r['s_per_mnist_epoch']:.1f} | {r.get('end_of_fit_s', '')} | "
                f"{r['train_flops_per_example'] / 1e9:.4f} | {gflops:.0f} | "
                f"{100 * r.get('share_of_peak', gflops / peak['fp32_gflops']):.0f}% |")
        lines.append("")
    for serve in args.serve or []:
        data = json.load(open(serve))
        lines += [f"Serving ({data['date']}, `python scripts/benchmark_speed.py serve --json ...`; in-process "
                  "`tf.saved_model.load`, batch 1 latency over the signature call and output copy):", "",
                  "| preset | signature | batch-1 p50 (ms) | batch-1 p99 (ms) | batch-1024 examples/s | MFLOP/example | GFLOP/s at batch 1024 |",
                  "|---|---|---|---|---|---|---|"]
        for r in data["results"]:
            f = r.get("flops_per_example") or 0
            lines.append(
                f"| {r['preset']} | {r['signature']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                f"{r['examples_per_s']:.0f} | {f / 1e6:.2f} | {r['examples_per_s'] * f / 1e9:.1f} |")
    print("\n".join(lines))
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--models", default="")
    t.add_argument("--configs", default=",".join(c for c in CONFIGS if c != "sampled_y"))
    t.add_argument("--examples", type=int, default=6000)
    t.add_argument("--repeats", type=int, default=1, help="timed epochs per row, in one fit (the median is reported)")
    t.add_argument("--data", choices=("synthetic", "mnist"), default="synthetic")
    t.add_argument("--rounds", type=int, default=1, help="interleaved rounds over all rows, each with its own peak")
    s = sub.add_parser("serve")
    s.add_argument("--presets", default="")
    s.add_argument("--calls", type=int, default=300)
    s.add_argument("--batch", type=int, default=1024)
    f = sub.add_parser("profile", help="where the time of one training step goes (TensorFlow's profiler)")
    f.add_argument("--models", default="gmvae,m2,cagem,nvae,infocatvae")
    f.add_argument("--configs", default="fp32,bf16")
    f.add_argument("--steps", type=int, default=20)
    f.add_argument("--top", type=int, default=8)
    k = sub.add_parser("peak")
    r = sub.add_parser("report")
    r.add_argument("--peak", required=True)
    r.add_argument("--train")
    r.add_argument("--serve", nargs="*", help="one or more JSON files of `serve`")
    for q in (t, s, k, f):
        q.add_argument("--json")
    args = p.parse_args()
    results = {"train": cmd_train, "profile": cmd_profile, "serve": cmd_serve, "peak": cmd_peak, "report": cmd_report}[args.cmd](args)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
