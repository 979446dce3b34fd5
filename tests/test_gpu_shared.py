"""Shared-memory and register promotion on GPU targets, and the race/bounds proof.

Kernels run on PoCL (OpenCL on the CPU) against numpy, at sizes that are not
multiples of the tiles; their CUDA C is compiled by nvcc for sm_80 and sm_90
in one run. The proof is shown deliberately broken kernels.
"""

from dataclasses import replace

import numpy as np
import pytest

import polyop
from polyop.errors import TargetError
from polyop_cuda import nvcc, promote
from polyop_cuda.kernel_ir import Barrier
from polyop_cuda.proof import UnsafeKernelError, prove_kernel

pytest.importorskip("pyopencl")


@polyop.kernel
def mm(ni: int, nj: int, nk: int, A: "f64[ni, nk]", B: "f64[nk, nj]", C: "f64[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def jac(n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            B[i, j] = 0.2 * (A[i, j] + A[i - 1, j] + A[i + 1, j] + A[i, j - 1] + A[i, j + 1])


def gemm_schedule(promote="manual", tile=16):
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, ii = sch.split(i, tile)
    jo, ji = sch.split(j, tile)
    ko, ki = sch.split(k, tile)
    sch.reorder(io, jo, ko, ii, ji, ki)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    sch.bind(ii, "threadIdx.y")
    sch.bind(ji, "threadIdx.x")
    if promote == "manual":
        sch.cache_read("A", scope="shared", at=ko)
        sch.cache_read("B", scope="shared", at=ko)
    elif promote == "auto":
        sch.promote_shared(ko)
    return sch


def gemm_registers():
    """Blocks of 8 x 8 threads, each a 2 x 2 micro-tile of C kept in registers."""
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, ir = sch.split(i, 16)
    it, im = sch.split(ir, 2)
    jo, jr = sch.split(j, 16)
    jt, jm = sch.split(jr, 2)
    sch.reorder(io, jo, it, jt, k, im, jm)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    sch.bind(it, "threadIdx.y")
    sch.bind(jt, "threadIdx.x")
    sch.cache_write("C", scope="local", at=jt)
    return sch


def jacobi_schedule():
    sch = polyop.Schedule(jac)
    i, j = sch.get_loops("S0")
    io, ii = sch.split(i, 8)
    jo, ji = sch.split(j, 8)
    sch.reorder(io, jo, ii, ji)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    sch.bind(ii, "threadIdx.y")
    sch.bind(ji, "threadIdx.x")
    sch.cache_read("A", scope="shared", at=jo)
    return sch


def run_gemm(sch, sizes=((37, 45, 29), (16, 32, 48))):
    f = polyop.build(sch, target="opencl")
    rng = np.random.default_rng(0)
    for ni, nj, nk in sizes:
        A, B = rng.random((ni, nk)), rng.random((nk, nj))
        C = rng.random((ni, nj))
        want = C + A @ B
        f(ni, nj, nk, A, B, C)
        np.testing.assert_allclose(C, want, rtol=1e-12)
    return f


def test_gemm_shared_tiles_on_pocl():
    f = run_gemm(gemm_schedule())
    (k,) = f.lowered.program.kernels
    assert {(n, s) for n, _, s in k.shared} == {("A_shared", (16, 16)), ("B_shared", (16, 16))}
    # copy-in, one barrier, compute, the barrier ending each k tile: no more
    assert sum(isinstance(n, Barrier) for n in _walk(k.body)) == 2
    assert "__local double A_shared[16][16];" in f.source


def test_auto_promotion_picks_the_reused_arrays():
    f = run_gemm(gemm_schedule("auto"), sizes=((21, 19, 23),))
    (k,) = f.lowered.program.kernels
    assert sorted(n for n, _, _ in k.shared) == ["A_shared", "B_shared"]  # C: one thread each
    small = gemm_schedule(None)
    small.promote_shared(small.get_loops("S0")[2], budget=16 * 16 * 8)
    (k,) = polyop.lower(small, target="opencl").program.kernels
    assert len(k.shared) == 1


def test_register_promotion_is_refused_for_now():
    with pytest.raises(polyop.ScheduleError, match="registers.*not supported yet"):
        polyop.lower(gemm_registers(), target="opencl")


def _walk(node):
    from polyop_cuda.kernel_ir import walk
    return walk(node)


def _without_barrier(node, which):
    """``node`` without its ``which``-th barrier (pre-order)."""
    from polyop import ir
    count = [0]

    def go(n):
        if isinstance(n, Barrier):
            count[0] += 1
            return None if count[0] - 1 == which else n
        if isinstance(n, ir.Block):
            return ir.Block(tuple(x for x in (go(s) for s in n.stmts) if x is not None))
        if isinstance(n, ir.For):
            return replace(n, body=go(n.body))
        if isinstance(n, ir.If):
            return ir.If(n.cond, go(n.then), None if n.else_ is None else go(n.else_))
        return n

    return go(node)


def test_proof_refuses_a_removed_barrier():
    (k,) = polyop.lower(gemm_schedule(), target="opencl").program.kernels
    prove_kernel(k)
    with pytest.raises(UnsafeKernelError, match=r"race on shared [AB]_shared\[.*\]: `[AB]_shared"
                       r".*` writes it in thread .* and `C\[.*\]` reads it in thread"):
        prove_kernel(replace(k, body=_without_barrier(k.body, 0)))
    with pytest.raises(UnsafeKernelError, match=r"`C\[.*\]` reads it .*no barrier"):
        prove_kernel(replace(k, body=_without_barrier(k.body, 1)))  # next tile overwrites


def test_too_much_shared_memory_is_refused_before_launch():
    with pytest.raises(TargetError, match=r"A_shared.*exceed the target's limit of 1024 bytes"):
        polyop.lower(gemm_schedule(), target="cuda -arch=sm_80 -max-shared-memory-per-block=1024")


def test_bad_promotion_requests():
    sch = gemm_schedule(None)
    i = sch.get_loops("S0")[3]  # a thread loop
    sch.cache_read("A", scope="shared", at=i)
    with pytest.raises(polyop.ScheduleError, match="thread loop"):
        polyop.lower(sch, target="opencl")
    with pytest.raises(polyop.ScheduleError, match="unknown scope"):
        gemm_schedule(None).cache_read("A", scope="texture", at=i)


def test_stencil_halo_promotion_on_pocl():
    """The 8 x 8 tile reads a 10 x 10 box of A (a one-element halo) at one
    affine offset per tile, although the first tile's smallest subscript is
    clamped by the domain; sizes not multiples of 8, and the smallest ones."""
    f = polyop.build(jacobi_schedule(), target="opencl")
    (k,) = f.lowered.program.kernels
    assert [(n, s) for n, _, s in k.shared] == [("A_shared", (10, 10))]
    rng = np.random.default_rng(1)
    for n in (3, 4, 9, 21, 37):
        A, B = rng.random((n, n)), rng.random((n, n))
        want = B.copy()
        jac.py_func(n, A, want)
        f(n, A, B)
        np.testing.assert_allclose(B, want, rtol=1e-14, err_msg=f"n = {n}")


def _one_short(fp):
    """The box one element short in its last dimension."""
    return replace(fp, size=fp.size[:-1] + (fp.size[-1] - 1,))


def test_proof_refuses_a_footprint_one_element_short(monkeypatch):
    monkeypatch.setattr(promote, "footprint_hook", _one_short)
    with pytest.raises(UnsafeKernelError, match=r"`B\[.*` reads A_shared\[\d+, 9\], outside "
                       r"the buffer A_shared\[10, 9\]") as info:
        polyop.lower(jacobi_schedule(), target="opencl")
    assert "A_shared[i_inner + 1][j_inner + 2]" in str(info.value)  # the access at fault
    with pytest.raises(UnsafeKernelError, match=r"`C\[.*` reads [AB]_shared\[\d+, 15\], "
                       r"outside the buffer [AB]_shared\[16, 15\]"):
        polyop.lower(gemm_schedule(), target="opencl")


def test_cuda_sources_compile_for_sm80_and_sm90():
    """Every CUDA kernel of this file, in one nvcc run per architecture."""
    if not nvcc.available():
        pytest.skip("neither nvcc nor NVRTC is installed: CUDA C cannot be compiled here")
    lowered = [polyop.lower(s, target="cuda") for s in (gemm_schedule(), jacobi_schedule())]
    sources = [str(x) for x in lowered]
    assert all("__shared__" in s and "__syncthreads();" in s for s in sources)
    if nvcc.nvcc_path() is None:  # NVRTC: one program at a time
        found = {a: b"".join(nvcc.compile_cubin(x.device_source, a) for x in lowered)
                 for a in ("sm_80", "sm_90")}
    else:
        found = nvcc.compile_many(sources, ("sm_80", "sm_90"))
    for arch in ("sm_80", "sm_90"):
        assert found[arch][:4] == b"\x7fELF", arch
        for x in lowered:
            for k in x.program.kernels:
                assert k.name.encode() in found[arch], (k.name, arch)
