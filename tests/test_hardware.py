"""`tfmix.hardware`: the CPU kind and the defaults it decides (issue 18)."""

import json
import os

import pytest

from tfmix import hardware

# the speed flags and vendors of the four kinds of machine this project has run on
XEON_AMX = {"fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8"}
EPYC_AVX512 = {"fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
XEON_AVX512 = EPYC_AVX512  # an Intel Xeon whose hypervisor hides AMX (session 29)
EPYC_AVX2 = {"fma", "avx2"}
AMD, INTEL = "AuthenticAMD", "GenuineIntel"


@pytest.mark.parametrize("flags, vendor, kind", [
    (XEON_AMX, INTEL, "amx"), (EPYC_AVX512, AMD, "avx512_bf16"), (XEON_AVX512, INTEL, "other"),
    (EPYC_AVX512, None, "other"), (EPYC_AVX2, AMD, "other"), (set(), "", "other"),
])
def test_each_cpu_kind_resolves_its_default_dtype(flags, vendor, kind):
    """The default of each (kind, model) is the table's, float32 where the
    table names no model; an explicit policy is never overridden. AVX-512
    BF16 without AMX is the bfloat16 kind on AMD CPUs only (an unknown
    vendor is not AMD)."""
    assert hardware.cpu_kind(flags, vendor) == kind
    import tfmix

    for model in tfmix.MODELS:
        want = hardware.DEFAULT_DTYPE_POLICY[kind].get(model, "float32")
        assert want in hardware.POLICY_SETTINGS
        assert hardware.default_dtype_policy(flags, model, vendor) == want
        assert hardware.resolve_dtype_policy("auto", flags, model, vendor) == want
        for forced in ("float32", "mixed_bfloat16", "mixed_bfloat16_logits"):
            assert hardware.resolve_dtype_policy(forced, flags, model, vendor) == forced
    assert hardware.default_dtype_policy(flags, vendor=vendor) == "float32"  # no model named
    with pytest.raises(ValueError, match="`policy` must be"):
        hardware.resolve_dtype_policy("bfloat16", flags, "gmvae", vendor)


@pytest.mark.parametrize("flags, vendor, want", [
    (XEON_AMX, INTEL, "mixed_bfloat16_logits"), (EPYC_AVX512, AMD, "mixed_bfloat16_logits"),
    (XEON_AVX512, INTEL, "float32"), (EPYC_AVX2, AMD, "float32"), (set(), "", "float32"),
])
def test_gmvae_trains_in_bfloat16_where_bfloat16_is_native(flags, vendor, want):
    """Issue 18's decisions: `auto` is bfloat16 for the GMVAE, with the
    decoder's output layer in bfloat16 too, on AMX and AVX-512 BF16 CPUs
    (measured faster on each, its 30-epoch twins on each matching float32's
    ELBO) and for CaGeM on
    both with the bfloat16 output layer (its twins compared on each), float32 where
    bfloat16 is emulated; M2, modified M2 and N-VAE the same way on AVX-512
    BF16 CPUs only (their twins ran there, session 23; not yet on AMX);
    InfoCatVAE and the others stay float32 on every kind (no faster in
    plain mixed bfloat16). On an Intel CPU with AVX-512 BF16 but no AMX
    every model trains in float32: bfloat16 was slower there for all five
    (session 29)."""
    assert hardware.resolve_dtype_policy("auto", flags, "gmvae", vendor) == want
    kind = hardware.cpu_kind(flags, vendor)
    cagem = "mixed_bfloat16_logits" if kind in ("amx", "avx512_bf16") else "float32"
    assert hardware.resolve_dtype_policy("auto", flags, "cagem", vendor) == cagem
    twinned_here = "mixed_bfloat16_logits" if kind == "avx512_bf16" else "float32"
    for model in ("m2", "modified_m2", "nvae"):
        assert hardware.resolve_dtype_policy("auto", flags, model, vendor) == twinned_here, model
    for model in ("infocatvae", "vae"):
        assert hardware.resolve_dtype_policy("auto", flags, model, vendor) == "float32"


def test_xla_is_the_default_in_float32_only(monkeypatch):
    """`tfmix train` compiles a model with XLA by default (N-VAE's
    `default_jit_compile`) only where it trains in float32: XLA does not use
    oneDNN's bfloat16 matmuls (catches an XLA default that ignores the
    dtype, or one that overrides an explicit choice)."""
    from tfmix import runs

    monkeypatch.setattr(hardware, "cpu_flags", lambda path=None: frozenset(EPYC_AVX512))
    monkeypatch.setattr(hardware, "cpu_vendor", lambda path=None: AMD)
    # `tfmix train` resolves a new run's "auto" XLA setting with its dtype (`runs.resolve_jit_compile`)
    config = lambda **kw: runs.resolve_jit_compile(  # noqa: E731
        runs.run_config("nvae", "mnist", epochs=1, batch_size=10, seed=0, **kw))
    assert config(dtype_policy="float32") is True
    assert config(dtype_policy="mixed_bfloat16_logits") is False
    assert config() is False  # auto: bfloat16 on this kind
    assert config(dtype_policy="mixed_bfloat16", jit_compile=True) is True
    monkeypatch.setattr(hardware, "cpu_flags", lambda path=None: frozenset(EPYC_AVX2))
    assert config() is True  # auto: float32 on this kind
    assert runs.run_config("m2", "mnist", epochs=1, batch_size=10, seed=0, dtype_policy="float32")["jit_compile"] is False


def test_each_policy_names_a_keras_policy_and_the_decoders_output_dtype():
    assert set(hardware.POLICY_SETTINGS) == set(hardware.DTYPE_POLICIES) - {"auto"}
    assert hardware.keras_dtype_policy("float32") == "float32"
    assert hardware.keras_dtype_policy("mixed_bfloat16") == hardware.keras_dtype_policy("mixed_bfloat16_logits") == "mixed_bfloat16"
    assert [hardware.decoder_logits_dtype(p) for p in ("float32", "mixed_bfloat16", "mixed_bfloat16_logits")] == [
        "float32", "float32", "compute"]
    with pytest.raises(ValueError, match="`policy` must be one of"):
        hardware.keras_dtype_policy("auto")  # resolve it first


def test_bfloat16_only_where_it_was_measured_faster():
    """Where bfloat16 is emulated (no avx512_bf16, no AMX) every model trains
    in float32; the table names only models of the zoo."""
    import tfmix

    assert hardware.DEFAULT_DTYPE_POLICY["other"] == {}
    for kind, table in hardware.DEFAULT_DTYPE_POLICY.items():
        assert set(table) <= set(tfmix.MODELS), kind


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
                    "flags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n")
    assert hardware.cpu_flags(str(info)) == {"fpu", "sse2", "avx2", "fma"}
    assert hardware.cpu_vendor(str(info)) == AMD
    assert hardware.cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert hardware.cpu_vendor(str(tmp_path / "missing")) == ""
    assert hardware.cpu_kind(hardware.cpu_flags(str(info)), hardware.cpu_vendor(str(info))) == "other"


def test_this_cpus_kind_reads_its_flags_and_vendor(monkeypatch):
    """Without arguments the kind is this CPU's: its flags and its vendor
    (an Intel Xeon with AVX-512 BF16 and hidden AMX is not the AMD kind)."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda path=None: frozenset(EPYC_AVX512))
    for vendor, kind in ((AMD, "avx512_bf16"), (INTEL, "other")):
        monkeypatch.setattr(hardware, "cpu_vendor", lambda path=None, vendor=vendor: vendor)
        assert hardware.cpu_kind() == kind
        assert hardware.default_dtype_policy(model="gmvae") == hardware.DEFAULT_DTYPE_POLICY[kind].get("gmvae", "float32")
    assert hardware.cpu_kind(vendor=AMD) == "avx512_bf16"  # a vendor given, this CPU's flags


@pytest.mark.mnist_data
def test_auto_dtype_for_a_new_run_and_the_own_dtype_for_a_resumed_one(tmp_path, monkeypatch):
    from tfmix import runs

    kind = hardware.cpu_kind()
    monkeypatch.setitem(hardware.DEFAULT_DTYPE_POLICY, kind, {"vae": "mixed_bfloat16"})  # as if bf16 were vae's default here
    small = dict(epochs=1, batch_size=50, seed=0, limit=100, model_kwargs={"hidden_units": [8], "latent_dim": 2})
    new = str(tmp_path / "new")
    runs.train(runs.run_config("vae", "mnist", **small), new, verbose=0)
    assert json.load(open(os.path.join(new, "run.json")))["dtype_policy"] == "mixed_bfloat16"
    # a float32 run resumed with "auto" stays float32 (and is not refused as different)
    old = str(tmp_path / "old")
    runs.train(runs.run_config("vae", "mnist", dtype_policy="float32", **small), old, verbose=0)
    runs.train(runs.run_config("vae", "mnist", **dict(small, epochs=2)), old, verbose=0)
    assert json.load(open(os.path.join(old, "run.json")))["dtype_policy"] == "float32"
    assert json.load(open(os.path.join(old, "progress.json")))["epochs_done"] == 2


def test_the_machine_description_names_the_cpu_and_its_speed_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 fma\n")
    assert hardware.cpu_model(str(info)) == "AMD EPYC 9R14"
    text = hardware.describe()
    assert text.startswith(hardware.cpu_model()) and "CPU flags: " in text and "TensorFlow " in text
    flags = text.split("CPU flags: ", 1)[1].split(",", 1)[0].split()
    assert set(flags) <= set(hardware.SPEED_FLAGS) or text.count("none of") == 1
