"""The CPU this process runs on, and the training defaults that depend on it.

The project's machines change from one day to the next (an Intel Xeon with
AMX, an AMD EPYC with AVX-512 BF16, an AMD EPYC with AVX2 only, an Intel
Xeon with AVX-512 BF16 whose AMX its hypervisor hides), and which dtype
trains fastest depends on the kind (BENCHMARKS.md section 11):

- ``"amx"`` (AMX tiles, native bfloat16 matmuls): in mixed bfloat16 a GMVAE
  epoch took 0.79-0.89x the float32 time, M2 0.75-0.81x, CaGeM 0.74-0.81x,
  N-VAE 0.95-0.96x, InfoCatVAE 1.00-1.02x (three interleaved rounds,
  2026-12-04), and a 30-epoch GMVAE run matched its float32 twin (-ELBO
  94.27 / 94.41, log p(x) -89.26 / -89.43, accuracy 68.4% / 67.9%);
  With the decoder's output layer in bfloat16 too (``"mixed_bfloat16_logits"``)
  a GMVAE epoch took 0.72x the time of plain mixed bfloat16 (two rounds),
  and its 30-epoch run matched the float32 twin again (-ELBO 94.23 / 94.41,
  log p(x) -89.08 / -89.43, accuracy 66.4% / 67.9%; 2026-12-04);
- ``"avx512_bf16"`` (bfloat16 dot products, no AMX, an AMD CPU): GMVAE 0.70-0.90x the
  float32 time (2026-12-03), -ELBO 94.39 against 94.52 after 30 epochs;
  with the decoder's output layer in bfloat16 too and 10 steps per
  execution, 1.25-1.36x faster than float32 (median 1.34x over five
  interleaved rounds, 2026-12-04) and its 30-epoch run matched the float32
  twin (validation -ELBO 94.42 / 94.52, log p(x) -89.32, accuracy 57.0% /
  59.2%);
- ``"other"`` (e.g. AVX2 only): bfloat16 is emulated; CaGeM and InfoCatVAE
  steps took 1.4x / 1.3x longer than in float32. An Intel CPU with
  avx512_bf16 but no AMX is of this kind too: on such a Xeon (model 207,
  AMX hidden by its hypervisor) oneDNN's native bfloat16 matmuls
  (``brg_matmul:avx512_core_bf16``) peaked at 75-130 GFLOP/s against
  float32's 189-239, and the AMD kind's bfloat16 defaults took 1.08-1.60x
  the float32 baseline's epoch time for all five models (two interleaved
  rounds, 2026-12-08).

So `gmvae` trains in mixed bfloat16 by default on the first two kinds,
with its decoder's output layer in bfloat16 too, and
`cagem` on AMX, also with its decoder's output in bfloat16 (its 30-epoch
runs matched their float32 twin there: validation -ELBO 94.21 and, with
bfloat16 logits, 94.43 against 94.32; log p(x) -89.70 / -89.71 against
-89.58; accuracy 20.9% / 21.0% against 21.0%, 2026-12-04), and on AVX-512 BF16
CPUs the same way (1.32x faster than float32, median of five rounds; its
twin: validation -ELBO 94.42, log p(x) -89.69, 2026-12-04). On AVX-512
BF16 CPUs `m2`, `modified_m2` and `nvae` train the same way since
2026-12-06: 1.30-1.56x faster than float32 (1.61-1.69x with the ten steps
per execution M2 and modified M2 now take, two interleaved rounds), and
each 30-epoch run matched float32 within the float32 seed-to-seed spread
(M2: validation -ELBO 93.46 against 93.14 / 93.45 for float32 seeds 0 /
1, log p(x) -88.64 against -88.28 / -88.94; modified M2 and N-VAE beside
their float32 twins, BENCHMARKS.md section 11). Their twins have not run
on AMX, so there they stay float32 (M2's plain bfloat16 run on AMX ended
0.49 nats behind its float32 twin on the validation -ELBO). Every other
model trains in float32. XLA (N-VAE's float32 default) is not used in
bfloat16: it does not use oneDNN's bfloat16 matmuls and was slower
(`tfmix.runs.run_config`).

`tfmix train --dtype-policy auto` (the default) takes the policy of this
CPU's kind and the model from `DEFAULT_DTYPE_POLICY` (float32 for a model
the table does not name). bfloat16 becomes a default only for a kind and a
model where it was measured faster (`scripts/benchmark_speed.py train
--configs default,bf16`, interleaved rounds) and where a 30-epoch run in
bfloat16 matched float32's -ELBO, log p(x) and accuracy within the
seed-to-seed noise (issue 18); `--dtype-policy float32` or
`mixed_bfloat16` forces either.

Example:
>>> default_dtype_policy({"avx2", "fma"}, model="gmvae")
'float32'
>>> default_dtype_policy({"avx2", "avx512f", "avx512_bf16"}, model="gmvae", vendor="AuthenticAMD")
'mixed_bfloat16_logits'
>>> default_dtype_policy({"avx2", "avx512f", "avx512_bf16"}, model="gmvae", vendor="GenuineIntel")
'float32'
>>> default_dtype_policy({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}, model="gmvae")
'mixed_bfloat16_logits'
"""

import os
import platform

#: the CPU flags that decide the fast paths (FMA / AVX-512 / bfloat16 / AMX matmuls)
SPEED_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8")
#: the kinds, fastest bfloat16 matmuls first, each with the flag that marks it and the CPU vendor
#: it needs (None: any): AVX-512 BF16 without AMX was measured faster than float32 on AMD EPYC
#: only; on an Intel Xeon (AMX hidden by its hypervisor) bfloat16 was slower (module docstring)
CPU_KINDS = (("amx", "amx_bf16", None), ("avx512_bf16", "avx512_bf16", "AuthenticAMD"), ("other", None, None))
#: what `tfmix train --dtype-policy` accepts; "auto" resolves to this CPU's default for the model
DTYPE_POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_bfloat16_logits")
#: each concrete policy as (the Keras dtype policy, the models' `decoder_logits_dtype`):
#: "mixed_bfloat16" keeps every output layer in float32; "mixed_bfloat16_logits"
#: also runs the decoder's output layer in bfloat16 (`tfmix.networks.Decoder`)
POLICY_SETTINGS = {"float32": ("float32", "float32"), "mixed_bfloat16": ("mixed_bfloat16", "float32"),
                   "mixed_bfloat16_logits": ("mixed_bfloat16", "compute")}
#: kind -> {model: the dtype policy `auto` resolves to} (module docstring); float32 where unnamed
DEFAULT_DTYPE_POLICY = {"amx": {"gmvae": "mixed_bfloat16_logits", "cagem": "mixed_bfloat16_logits"},
                        "avx512_bf16": {model: "mixed_bfloat16_logits"
                                        for model in ("gmvae", "cagem", "m2", "modified_m2", "nvae")},
                        "other": {}}


def _cpuinfo_field(name, path):
    """The value of the first CPU's `name` line in `path` (None where it is
    missing or the file unreadable)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(path="/proc/cpuinfo"):
    """The flags of the first CPU in `path` (empty where it is unreadable)."""
    return frozenset((_cpuinfo_field("flags", path) or "").split())


def cpu_vendor(path="/proc/cpuinfo"):
    """The `vendor_id` of the first CPU in `path` ("AuthenticAMD", "GenuineIntel"; "" where unreadable)."""
    return _cpuinfo_field("vendor_id", path) or ""


def cpu_kind(flags=None, vendor=None):
    """"amx", "avx512_bf16" or "other" for a CPU with these flags and this
    `vendor_id` (`CPU_KINDS`). Without `flags`, this CPU's flags and (unless
    given) vendor; with `flags` and no `vendor` the vendor is unknown, which
    is never the AMD-only "avx512_bf16" kind."""
    if flags is None:
        flags, vendor = cpu_flags(), cpu_vendor() if vendor is None else vendor
    flags = frozenset(flags)
    return next(kind for kind, flag, maker in CPU_KINDS
                if flag is None or (flag in flags and maker in (None, vendor)))


def default_dtype_policy(flags=None, model=None, vendor=None):
    """The dtype policy `auto` means for `model` (a `tfmix.MODELS` name) on a
    CPU with these flags and vendor (default: this one; see `cpu_kind`)."""
    return DEFAULT_DTYPE_POLICY[cpu_kind(flags, vendor)].get(model, "float32")


def default_jit_compile(model_class, policy):
    """Whether a model of `model_class` compiles with XLA by default when it
    trains in the concrete `policy`: its `default_jit_compile`, in float32
    only (XLA does not use oneDNN's bfloat16 matmuls and was slower in
    bfloat16, BENCHMARKS.md section 11)."""
    return bool(model_class.default_jit_compile) and policy == "float32"


def resolve_dtype_policy(policy, flags=None, model=None, vendor=None):
    """`policy` itself, or this CPU's default for `model` for "auto"."""
    if policy not in DTYPE_POLICIES:
        raise ValueError(f"`policy` must be one of {DTYPE_POLICIES}, got {policy!r}")
    return default_dtype_policy(flags, model, vendor) if policy == "auto" else policy


def keras_dtype_policy(policy):
    """The Keras dtype policy of a concrete tfmix policy ("mixed_bfloat16" for both mixed ones)."""
    return _settings(policy)[0]


def decoder_logits_dtype(policy):
    """The `decoder_logits_dtype` a concrete tfmix policy builds models with."""
    return _settings(policy)[1]


def _settings(policy):
    if policy not in POLICY_SETTINGS:
        raise ValueError(f"`policy` must be one of {tuple(POLICY_SETTINGS)} (\"auto\" resolved), got {policy!r}")
    return POLICY_SETTINGS[policy]


def cpu_model(path="/proc/cpuinfo"):
    """The CPU's model name (`platform`'s answer where /proc is unreadable)."""
    return _cpuinfo_field("model name", path) or platform.processor() or platform.machine()


def describe():
    """The machine as every card and benchmark records it: CPU model, cores,
    the speed flags it has, TensorFlow and Python versions."""
    import tensorflow as tf

    flags = [f for f in SPEED_FLAGS if f in cpu_flags()]
    return (f"{cpu_model()}, {os.cpu_count()} cores, CPU flags: {' '.join(flags) or 'none of ' + ' '.join(SPEED_FLAGS)}, "
            f"TensorFlow {tf.__version__}, Python {platform.python_version()}")
