"""PolyBench as written, cross-compiled for AVX-512 CPUs: LLVM's own loop
vectorizer must not fall back to gathers and scatters there (it did for the
register tiles of polyop.ops before their loops were vectorized explicitly)."""

import re

import pytest

import polyop
from tests.polybench import BENCHES

KERNELS = ["gemm", "2mm", "syrk", "doitgen", "covariance", "jacobi-2d", "heat-3d", "trmm"]


@pytest.mark.parametrize("cpu", ["znver4", "skylake-avx512"])
@pytest.mark.parametrize("name", KERNELS)
def test_no_gathers_without_a_schedule(name, cpu):
    k = polyop.kernel(BENCHES[name].kernel.py_func)
    asm = polyop.build(k, target=f"cpu -mtriple=x86_64-linux-gnu -mcpu={cpu}").asm
    if name in ("gemm", "jacobi-2d"):  # unit-stride inner loops: vector code
        assert "zmm" in asm or "ymm" in asm, f"{name}: no vector code at all on {cpu}"
    assert not re.search(r"\bvp?(gather|scatter)", asm), f"{name}: gathers on {cpu}"
