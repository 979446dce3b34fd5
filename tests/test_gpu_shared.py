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


# the same product under other names: kernels compiled in one nvcc run need names of their own
@polyop.kernel
def mm_regs(ni: int, nj: int, nk: int, A: "f64[ni, nk]", B: "f64[nk, nj]", C: "f64[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def sgemm(ni: int, nj: int, nk: int, A: "f64[ni, nk]", B: "f64[nk, nj]", C: "f64[ni, nj]"):
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
    sch = polyop.Schedule(mm_regs)
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


def sgemm_schedule(block=16, micro=4, ktile=8):
    """The classic SGEMM: blocks of ``block`` x ``block`` elements of C,
    threads of ``micro`` x ``micro`` elements kept in registers across the
    ``k`` tiles, A and B tiles of depth ``ktile`` in shared memory."""
    sch = polyop.Schedule(sgemm)
    i, j, k = sch.get_loops("S0")
    io, ir = sch.split(i, block)
    jo, jr = sch.split(j, block)
    it, im = sch.split(ir, micro)
    jt, jm = sch.split(jr, micro)
    ko, ki = sch.split(k, ktile)
    sch.reorder(io, jo, ko, it, jt, ki, im, jm)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    sch.bind(it, "threadIdx.y")
    sch.bind(jt, "threadIdx.x")
    sch.cache_read("A", scope="shared", at=ko)
    sch.cache_read("B", scope="shared", at=ko)
    sch.cache_write("C", scope="local", at=jo)
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


def _micro_tile_loops(k, buffer):
    """The loops whose variables index ``buffer`` in the compute (not the copies)."""
    from polyop import ir
    used = {v.name for n in _walk(k.body) if isinstance(n, (ir.Load, ir.Store))
            and n.array == buffer for x in n.index for v in ir.walk(x) if isinstance(v, ir.Var)}
    return [n for n in _walk(k.body) if isinstance(n, ir.For) and n.var in used
            and not n.var.startswith(buffer)]


def _global_accesses(k, array):
    from polyop import ir
    return [n for n in _walk(k.body) if isinstance(n, (ir.Load, ir.Store)) and n.array == array]


def test_register_micro_tile_inside_the_threads_on_pocl():
    """2 x 2 elements of C per thread, in registers from the thread loop down."""
    f = run_gemm(gemm_registers(), sizes=((37, 45, 29), (16, 32, 48), (1, 3, 2)))
    (k,) = f.lowered.program.kernels
    assert ("C_local", (2, 2)) in {(n, s) for n, _, s in k.temps}
    assert "double C_local[2][2];" in f.source
    for loop in _micro_tile_loops(k, "C_local"):  # constant subscripts once unrolled
        assert loop.kind.value == "unroll" and loop.stop == polyop.ir.Const(2), loop.var


def test_sgemm_shared_tiles_and_register_micro_tile_on_pocl():
    """Shared A and B tiles per k tile, C's 4 x 4 micro-tile in registers across
    the k tiles: C read once and written once per element, at sizes that are
    not multiples of the tiles."""
    f = run_gemm(sgemm_schedule(), sizes=((37, 45, 29), (16, 32, 8), (5, 3, 1), (4, 4, 0)))
    (k,) = f.lowered.program.kernels
    assert {(n, s) for n, _, s in k.shared} == {("A_shared", (16, 8)), ("B_shared", (8, 16))}
    assert [(n, s) for n, _, s in k.temps] == [("C_local", (4, 4))]
    assert [type(n).__name__ for n in _global_accesses(k, "C")] == ["Load", "Store"]
    assert sorted(lp.var for lp in _micro_tile_loops(k, "C_local")) == \
        ["i_inner_inner", "j_inner_inner"]
    assert all(lp.kind.value == "unroll" for lp in _micro_tile_loops(k, "C_local"))
    # after the copy-in of a k tile and at its end; OpenCL closes the block's loop with one
    assert sum(isinstance(n, Barrier) for n in _walk(k.body)) == 3


@polyop.kernel
def pairs(n: int, m: int, A: "f64[n, 2 * m + 1]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            B[i, j] = A[i, 2 * j] + A[i, 2 * j + 1] * A[i, 2 * j + 2]


def test_register_read_cache_on_pocl():
    """``cache_read(scope="local")``: each thread copies the three elements of A
    it reads into registers (a 1 x 3 box), and writes nothing back."""
    sch = polyop.Schedule(pairs)
    i, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 8)
    sch.bind(i, "blockIdx.x")
    sch.bind(ji, "threadIdx.x")
    sch.cache_read("A", scope="local", at=ji)
    f = polyop.build(sch, target="opencl")
    (k,) = f.lowered.program.kernels
    assert [(n, s) for n, _, s in k.temps] == [("A_local", (1, 3))]
    assert [type(n).__name__ for n in _global_accesses(k, "A")] == ["Load"]  # the copy-in
    rng = np.random.default_rng(3)
    for n, m in ((3, 13), (1, 8), (2, 1)):
        A, B = rng.random((n, 2 * m + 1)), np.zeros((n, m))
        want = B.copy()
        pairs.py_func(n, m, A, want)
        f(n, m, A, B)
        np.testing.assert_array_equal(B, want)


def test_bad_register_requests():
    sch = sgemm_schedule()
    io = sch.get_loops("S0")[0]  # outside the block loop bound to blockIdx.x
    sch.cache_write("C", scope="local", at=io)
    with pytest.raises(polyop.ScheduleError, match=r"registers.*outside block loop\(s\) j_outer"):
        polyop.lower(sch, target="opencl")


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


def test_unchecked_schedule_with_a_race_is_refused_naming_both_accesses():
    """``check=False`` lets a reduction loop be bound to threads: the threads
    of a block then update one element of C's shared tile at once."""
    sch = polyop.Schedule(mm, check=False)
    i, j, k = sch.get_loops("S0")
    io, ii = sch.split(i, 8)
    jo, ji = sch.split(j, 8)
    ko, ki = sch.split(k, 4)
    sch.reorder(io, jo, ko, ii, ki, ji)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    sch.bind(ii, "threadIdx.y")
    sch.bind(ki, "threadIdx.x")  # illegal: k carries the sum
    sch.cache_write("C", scope="shared", at=jo)
    update = r"`C_shared\[i_inner\]\[j_inner\] = C_shared\[i_inner\]\[j_inner\] \+ A\[.*\]`"
    with pytest.raises(UnsafeKernelError, match=rf"race on shared C_shared\[\d+, \d+\]: "
                       rf"{update} writes it in thread \((\d+), (\d+), 0\) and {update} "
                       r"(reads|writes) it in thread \(\d+, \2, 0\) of block"):
        polyop.lower(sch, target="opencl")


@polyop.kernel
def scale_rows(m: int, n: int, W: "f64[m]", A: "f64[m, n]", B: "f64[m, n]"):
    for r in range(m):
        for i in range(n):
            B[r, i] = A[r, i] * W[r]


@polyop.kernel
def scale_short_rows(m: int, n: int, W: "f64[m]", A: "f64[m, n]", B: "f64[m, n]"):
    assert n <= 48
    for r in range(m):
        for i in range(n):
            B[r, i] = A[r, i] * W[r]


def _rows_schedule(kernel, check=True):
    sch = polyop.Schedule(kernel, check=check)
    r, i = sch.get_loops("S0")
    sch.bind(r, "blockIdx.x")
    sch.bind(i, "threadIdx.x")  # as many threads as n: bounded only by an assert
    sch.cache_read("W", scope="shared", at=r)
    return sch


def test_block_size_bounded_by_the_sizes_assumptions_or_refused():
    """A thread loop over all of ``n`` has a block size only where an assert
    bounds ``n``; elsewhere a clear refusal naming the loop (isl's maximum is
    asked of bounded sets only: an unbounded one once raised isl's own
    'unbounded optimum')."""
    with pytest.raises(polyop.ScheduleError, match=r"thread loop i \(threadIdx.x\) has no "
                       "constant bound"):
        polyop.lower(_rows_schedule(scale_rows, check=False), target="opencl")
    f = polyop.build(_rows_schedule(scale_short_rows), target="opencl")
    assert f.lowered.program.kernels[0].block[0] == polyop.ir.Const(48)
    rng = np.random.default_rng(2)
    for m, n in ((5, 37), (3, 48), (1, 1)):
        W, A, B = rng.random(m), rng.random((m, n)), np.zeros((m, n))
        f(m, n, W, A, B)
        np.testing.assert_array_equal(B, A * W[:, None])


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
    with pytest.raises(UnsafeKernelError, match=r"C_local\[\d+, 3\], outside the buffer "
                       r"C_local\[4, 3\]"):  # local buffers are proven in bounds too
        polyop.lower(sgemm_schedule(), target="opencl")


def test_cuda_sources_compile_for_sm80_and_sm90():
    """Every CUDA kernel of this file, in one nvcc run per architecture."""
    if not nvcc.available():
        pytest.skip("neither nvcc nor NVRTC is installed: CUDA C cannot be compiled here")
    lowered = [polyop.lower(s, target="cuda") for s in (gemm_schedule(), jacobi_schedule(),
                                                         sgemm_schedule(), gemm_registers())]
    sources = [str(x) for x in lowered]
    assert all("__shared__" in s and "__syncthreads();" in s for s in sources[:3])
    assert "double C_local[4][4];" in sources[2] and "#pragma unroll" in sources[2]
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
