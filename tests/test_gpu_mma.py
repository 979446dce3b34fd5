"""Tensor cores: the 16 x 16 x 16 WMMA tile intrinsic (``polyop_cuda.wmma``).

The contract is checked like a CPU micro-kernel's: a declaration of another
shape or type is refused, and so is a schedule tile that does not match.
The tensorized GEMM's CUDA C (``nvcuda::wmma`` fragments, blocks of one warp)
compiles to cubins for sm_80 and sm_90 in one nvcc run; PoCL cannot run
WMMA, so the same tile schedule without the intrinsic runs there against
numpy.
"""

import numpy as np
import pytest

import polyop
from polyop.errors import ScheduleError, TargetError
from polyop.schedule.intrinsic_contract import IntrinsicError
from polyop_cuda import nvcc, wmma


@polyop.kernel
def tile_f64(A: "f64[16, 16]", B: "f64[16, 16]", C: "f64[16, 16]"):
    for i in range(16):
        for j in range(16):
            for k in range(16):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def tile_16x16x8(A: "f32[16, 8]", B: "f32[8, 16]", C: "f32[16, 16]"):
    for i in range(16):
        for j in range(16):
            for k in range(8):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def tile_sub(A: "f32[16, 16]", B: "f32[16, 16]", C: "f32[16, 16]"):
    for i in range(16):
        for j in range(16):
            for k in range(16):
                C[i, j] -= A[i, k] * B[k, j]


@polyop.kernel
def gemm_f64(m: int, n: int, k: int, A: "f64[m, k]", B: "f64[k, n]", C: "f64[m, n]"):
    assert m % 16 == 0 and n % 16 == 0 and k % 16 == 0
    for i in range(m):
        for j in range(n):
            for kk in range(k):
                C[i, j] += A[i, kk] * B[kk, j]


@polyop.kernel
def gemm_b(m: int, n: int, k: int, A: "f32[m, k]", B: "f32[k, n]", C: "f32[m, n]"):
    assert m % 16 == 0 and n % 16 == 0 and k % 16 == 0
    for i in range(m):
        for j in range(n):
            for kk in range(k):
                C[i, j] += A[i, kk] * B[kk, j]


@pytest.mark.parametrize("contract, in_dtype, why", [
    (tile_f64, "f16", "must be f32 views"),
    (tile_16x16x8, "f16", "16 x 16 x 16"),
    (tile_sub, "bf16", "must compute C"),
    (wmma.wmma_16x16x16, "f32", "not one of f16, bf16"),
])
def test_contract_refuses_wrong_tiles(contract, in_dtype, why):
    with pytest.raises(IntrinsicError, match=why):
        wmma.WmmaIntrinsic(in_dtype, contract=contract)


def test_tensorize_refuses_mismatched_schedule_tiles():
    intr = wmma.wmma_intrinsic("f16")
    sch = polyop.Schedule(wmma.gemm_f32)  # 16 x 16 x 8 tiles
    i, j, k = sch.get_loops("S0")
    io, ii = sch.split(i, 16)
    jo, ji = sch.split(j, 16)
    ko, ki = sch.split(k, 8)
    sch.reorder(io, jo, ko, ii, ji, ki)
    with pytest.raises(ScheduleError, match="wmma_f16_16x16x16"):
        sch.tensorize(ii, intr, partial="error")
    with pytest.raises(ScheduleError, match="type f64 where the contract has f32"):
        wmma.gemm_tile_schedule(gemm_f64, tensorize="f16")


def test_wmma_kernel_is_one_warp_per_tile():
    sch = wmma.gemm_tile_schedule(wmma.gemm_f32, tensorize="bf16")
    lowered = polyop.lower(sch, target="cuda -arch=sm_80")
    (k,) = lowered.program.kernels
    from polyop_cuda.host import launch_sizes

    grid, block = launch_sizes(k, {"m": 64, "n": 48, "k": 32})
    assert grid == (3, 4, 1) and block == (32, 1, 1)
    assert "float * __restrict__ C" in lowered.text  # written through the call
    assert "__float2bfloat16_rn" in lowered.text and "nvcuda::wmma::mma_sync" in lowered.text
    with pytest.raises(TargetError, match="OpenCL"):
        polyop.lower(sch, target="opencl")
    with pytest.raises(IntrinsicError, match="cuda"):
        wmma.wmma_intrinsic("f16").link_ir()  # no CPU implementation


def test_cubins_for_sm80_and_sm90():
    sources = [str(polyop.lower(wmma.gemm_tile_schedule(kernel, tensorize=t),
                                target="cuda -arch=sm_80"))
               for kernel, t in ((wmma.gemm_f32, "f16"), (gemm_b, "bf16"))]
    if nvcc.nvcc_path() is None:
        pytest.skip("nvcc is not installed: the WMMA kernels cannot be compiled here")
    cubins = nvcc.compile_many(sources, ("sm_80", "sm_90"))
    # what the runtime compiles (NVRTC where cuda-python is installed, else nvcc)
    device = polyop.lower(wmma.gemm_tile_schedule(gemm_b, tensorize="f16"),
                          target="cuda -arch=sm_90").device_source
    assert nvcc.compile_cubin(device, "sm_90")[:4] == b"\x7fELF"
    for arch in ("sm_80", "sm_90"):
        assert cubins[arch][:4] == b"\x7fELF", arch
        assert b"gemm_f32_kernel0" in cubins[arch] and b"gemm_b_kernel0" in cubins[arch]


def test_same_tile_schedule_without_intrinsic_on_pocl():
    sch = wmma.gemm_tile_schedule(wmma.gemm_f32, tensorize=False)
    f = polyop.build(sch, target="opencl")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((48, 64), np.float32), rng.standard_normal((64, 32), np.float32)
    c = rng.standard_normal((48, 32), np.float32)
    want = c + a.astype(np.float64) @ b
    f(A=a, B=b, C=c)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-4)
    with pytest.raises(polyop.ArgumentError, match="assert"):  # whole tiles only
        f(A=a[:40], B=b, C=c[:40])
