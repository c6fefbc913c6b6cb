"""Marks for the tests that need a CUDA device, and the devices a test runs on.

``ON_DEVICES`` parametrises a test over the CPU and CUDA: the CPU case runs everywhere (it
checks the same contract, that results follow the device they were asked for), the CUDA case is
marked ``gpu`` and skipped with a reason where there is no CUDA device. ``bench/gpu_session.sh``
runs these tests on a GPU machine.
"""

import pytest
import torch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
GPU = [pytest.mark.gpu, needs_cuda]

ON_DEVICES = pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=GPU)])


def gpu(test):
    """Mark a test ``gpu`` and skip it where there is no CUDA device."""
    return pytest.mark.gpu(needs_cuda(test))


@pytest.fixture
def exact_float32():
    """CUDA matmuls in IEEE float32, as they are by default: TF32 would round the engine's
    float32 products to 10 mantissa bits. The test fails, rather than relaxes, if a default
    changed."""
    assert not torch.backends.cuda.matmul.allow_tf32, "TF32 matmuls are on: float32 spectra " \
        "would lose precision on the GPU"
