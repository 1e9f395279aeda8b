"""The FLOP counting of scripts/benchmark_speed.py (no timing here)."""

import importlib.util
import os

import pytest

from conftest import tiny_model

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "benchmark_speed.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_speed", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signature_flops_count_the_matmuls(bench):
    model = tiny_model("gmvae")  # q(y|x): 784 -> 16 -> 4
    flops = bench.signature_flops(model, ll_samples=3)
    matmuls = 2 * (784 * 16 + 16 * 4)
    # the matmuls dominate; biases, ReLU and softmax add a few hundred
    assert matmuls <= flops["cluster"] < matmuls + 1000
    assert flops["classify"] == flops["cluster"]
    assert flops["log_likelihood"] > 3 * flops["reconstruct"] / 2  # S = 3 decoder passes per cluster


def test_every_model_has_a_reference_size(bench):
    import tfmix

    assert set(bench.REFERENCE) == set(tfmix.MODELS)
