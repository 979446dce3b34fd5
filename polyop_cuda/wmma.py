"""Tensor cores: a 16 x 16 x 16 WMMA tile as a ``tensorize`` intrinsic for CUDA targets.

``wmma_intrinsic("f16")`` (or ``"bf16"``) is an intrinsic whose contract is
checked like the CPU micro-kernels' (``polyop.schedule.intrinsic_contract``):
the contract is the ``@polyop.kernel`` ``wmma_16x16x16`` below,
``C[i, j] += A[i, k] * B[k, j]`` over constant 16 x 16 views with an fp32
accumulator, and ``sch.tensorize(loop, wmma)`` replaces a band whose tile is
that computation by one call per tile — refusing (``ScheduleError``) a tile
of another shape, another computation or other types, exactly as for a CPU
micro-kernel.

The implementation is CUDA C with ``nvcuda::wmma`` fragments (sm_80 and
later for both input types): the warp rounds its A and B tiles to the input
type (``__float2half_rn`` / ``__float2bfloat16_rn``, into shared memory),
loads the fp32 accumulator tile of C, runs one ``mma_sync`` and stores C
back. So the call computes ``C += round(A) @ round(B)`` with products and
sums in fp32 (what "fp16 in, fp32 accumulate" means; the arrays themselves
are fp32, since polyop's kernels have no half type).

A WMMA operation belongs to a whole warp, not to one thread. ``warp_kernels``
(run by ``polyop_cuda.lowering.lower`` after kernel extraction) gives every
kernel holding such a call blocks of 32 threads that all make the call with
the same operands; it refuses (``ScheduleError``) a kernel that binds a
thread loop or holds any other statement (partial tiles: use
``partial="error"`` and sizes that are multiples of 16), and
(``TargetError``) a target that is not CUDA: PoCL cannot run WMMA, so the
same tile schedule without ``tensorize`` is what runs there.

Example (the CUDA C of a 16-tiled GEMM with the tile tensorized)::

    >>> import polyop
    >>> from polyop_cuda import wmma
    >>> sch = wmma.gemm_tile_schedule(wmma.gemm_f32, tensorize="f16")
    >>> text = str(polyop.lower(sch, target="cuda -arch=sm_90"))
    >>> "nvcuda::wmma::mma_sync" in text and "block((unsigned)(32)" in text
    True
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

import polyop
from polyop import ir
from polyop.errors import ScheduleError, TargetError
from polyop.schedule.intrinsic_contract import IntrinsicContract, IntrinsicError

from .kernel_ir import GpuProgram, Kernel, Launch

INPUT_TYPES = {"f16": ("__half", "__float2half_rn", "cuda_fp16.h"),
               "bf16": ("__nv_bfloat16", "__float2bfloat16_rn", "cuda_bf16.h")}
TILE = (16, 16, 16)
WARP = 32


@polyop.kernel
def wmma_16x16x16(A: "f32[16, 16]", B: "f32[16, 16]", C: "f32[16, 16]"):  # noqa: F821, UP037
    for i in range(16):
        for j in range(16):
            for k in range(16):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def gemm_f32(m: int, n: int, k: int,  # noqa: F821, UP037 - polyop array types
             A: "f32[m, k]", B: "f32[k, n]", C: "f32[m, n]"):  # noqa: F821, UP037
    assert m % 16 == 0 and n % 16 == 0 and k % 16 == 0  # whole WMMA tiles
    for i in range(m):
        for j in range(n):
            for kk in range(k):
                C[i, j] += A[i, kk] * B[kk, j]


class WmmaIntrinsic(IntrinsicContract):
    """The WMMA tile intrinsic (see the module docstring); ``in_dtype`` is
    ``"f16"`` or ``"bf16"``, the type the operands are rounded to."""

    #: ``polyop_cuda.extract`` lets calls of this intrinsic into GPU kernels
    runs_on_gpu = True

    def __init__(self, in_dtype: str = "f16", contract=wmma_16x16x16):
        if in_dtype not in INPUT_TYPES:
            raise IntrinsicError(f"WMMA tile: input type {in_dtype!r} is not one of "
                                 f"{', '.join(INPUT_TYPES)} (tensor cores take half-precision "
                                 "inputs and accumulate in fp32)")
        self.in_dtype = in_dtype
        super().__init__(contract, name=f"wmma_{in_dtype}_16x16x16",
                         symbol=f"polyop_wmma_{in_dtype}_16x16x16")
        self._check_contract()

    def _check_contract(self) -> None:
        """The contract must be the 16 x 16 x 16 fp32-accumulated product."""
        ref = wmma_16x16x16.program.statements[0]
        ops = {op.name: op for op in self.operands}
        bad = [f"{op.name}: {op.dtype}" for op in self.operands if op.dtype.name != "f32"]
        if bad:
            raise IntrinsicError(f"intrinsic {self.name}: operands must be f32 views (rounded "
                                 f"to {self.in_dtype} on the tensor core, accumulated in "
                                 f"fp32); got {', '.join(bad)}")
        if len(ops) != 3 or any(op.kind != "array" or op.ndim != 2 for op in ops.values()):
            raise IntrinsicError(f"intrinsic {self.name}: the contract must have three 2-D "
                                 f"array operands A, B, C (has {', '.join(ops)})")
        box = self.statement.domain
        sizes = [box.dim_max_val(d).to_python() - box.dim_min_val(d).to_python() + 1
                 for d in range(box.dim(isl.dim_type.set))]
        count = box.count_val().to_python()
        if tuple(sizes) != TILE or count != 16 ** 3:
            raise IntrinsicError(f"intrinsic {self.name}: the tile must be 16 x 16 x 16 "
                                 f"(m16n16k16); the contract's domain is "
                                 f"{' x '.join(map(str, sizes))}")
        if not any(True for _ in self.bindings(ref.body, ref.iterators)):
            raise IntrinsicError(f"intrinsic {self.name}: the contract must compute "
                                 f"C[i, j] += A[i, k] * B[k, j]; "
                                 f"{self.body_mismatch(ref.body)}")
        for op in self.operands:
            arr = self.program.arrays[op.name]
            if tuple(int(e.value) for e in arr.extents) != (16, 16):
                raise IntrinsicError(f"intrinsic {self.name}: operand {op.name} must be a "
                                     f"16 x 16 view, not {arr.shape}")

    def link_ir(self, target=None) -> str | None:
        raise IntrinsicError(f"intrinsic {self.name} runs on NVIDIA tensor cores: build for "
                             "target='cuda' (sm_80 or later)")

    def device_code(self, dialect: str, arch: str | None = None) -> str:
        """The CUDA C device function the calls link to (``dialect`` ``cuda``)."""
        if dialect != "cuda":
            raise TargetError(f"tensorize({self.name}): WMMA needs a CUDA target; on OpenCL "
                              "run the same tile schedule without tensorize")
        t, cvt, header = INPUT_TYPES[self.in_dtype]
        w = "nvcuda::wmma"
        return f"""#include <mma.h>
#include <{header}>
// {self.name}: one warp computes C += {self.in_dtype}(A) @ {self.in_dtype}(B) on tensor cores,
// fp32 accumulation; all 32 lanes call it with the same operands
static __device__ void {self.symbol}(const float *A, long long A_stride0,
    const float *B, long long B_stride0, float *C, long long C_stride0) {{
  __shared__ {t} a_tile[256], b_tile[256];
  for (unsigned e = threadIdx.x % 32; e < 256; e += 32) {{
    a_tile[e] = {cvt}(A[(e / 16) * A_stride0 + e % 16]);
    b_tile[e] = {cvt}(B[(e / 16) * B_stride0 + e % 16]);
  }}
  __syncwarp();
  {w}::fragment<{w}::matrix_a, 16, 16, 16, {t}, {w}::row_major> a;
  {w}::fragment<{w}::matrix_b, 16, 16, 16, {t}, {w}::row_major> b;
  {w}::fragment<{w}::accumulator, 16, 16, 16, float> c;
  {w}::load_matrix_sync(a, a_tile, 16);
  {w}::load_matrix_sync(b, b_tile, 16);
  {w}::load_matrix_sync(c, C, (unsigned)C_stride0, {w}::mem_row_major);
  {w}::mma_sync(c, a, b, c);
  {w}::store_matrix_sync(C, c, (unsigned)C_stride0, {w}::mem_row_major);
  __syncwarp();  // the tiles are reused by the next call
}}"""


def wmma_intrinsic(in_dtype: str = "f16") -> WmmaIntrinsic:
    """The 16 x 16 x 16 WMMA tile for inputs rounded to ``in_dtype`` (f16, bf16)."""
    return WmmaIntrinsic(in_dtype)


def gemm_tile_schedule(kernel=gemm_f32, tensorize: str | bool = "f16",
                       statement: str = "S0") -> polyop.Schedule:
    """``C += A @ B`` in 16 x 16 tiles: a block per tile of C, the k loop in
    steps of 16 inside, and the 16 x 16 x 16 tile tensorized with the WMMA
    intrinsic of input type ``tensorize`` (``False``: the tile stays loops,
    run by one thread per block, as on OpenCL)."""
    sch = polyop.Schedule(kernel)
    i, j, k = sch.get_loops(statement)
    io, ii = sch.split(i, 16)
    jo, ji = sch.split(j, 16)
    ko, ki = sch.split(k, 16)
    sch.reorder(io, jo, ko, ii, ji, ki)
    sch.bind(io, "blockIdx.y")
    sch.bind(jo, "blockIdx.x")
    if tensorize:
        sch.tensorize(ii, wmma_intrinsic(str(tensorize)), partial="error")
    return sch


def _wmma_calls(node) -> list[ir.Extern]:
    return [n for n in ir.walk(node) if isinstance(n, ir.Extern)
            and isinstance(n.impl, WmmaIntrinsic)]


def _written_array(call: ir.Extern) -> str:
    """The array a WMMA call writes (C's view): the arguments follow the
    contract's operands, each array as its element then its strides."""
    pos = 0
    for op in call.impl.operands:
        if op.written:
            return call.args[pos].array
        pos += op.ndim if op.kind == "array" else 1
    raise AssertionError(f"{call.name}: the contract writes no operand")


def warp_kernels(prog: GpuProgram, target) -> GpuProgram:
    """``prog`` with every kernel that calls a WMMA tile run by blocks of one
    warp (see the module docstring); other kernels unchanged."""
    changed: dict[str, Kernel] = {}
    for k in prog.kernels:
        calls = _wmma_calls(k.body)
        if not calls:
            continue
        if target.kind != "cuda":
            calls[0].impl.device_code(target.kind)  # raises: WMMA needs CUDA
        threads = [b.name or b.var for b in k.loops if b.kind.is_thread]
        if threads:
            raise ScheduleError(f"kernel {k.name}: the WMMA tile {calls[0].name} runs on a "
                                f"whole warp; bind no thread loop around it (bound: "
                                f"{', '.join(threads)})")
        stores = [n.array for n in ir.walk(k.body) if isinstance(n, ir.Store)]
        if stores:
            raise ScheduleError(f"kernel {k.name}: besides the WMMA tile {calls[0].name} it "
                                f"stores to {', '.join(sorted(set(stores)))}, which each of "
                                "the warp's 32 threads would do; tensorize with "
                                "partial='error' (sizes multiples of 16) and keep other "
                                "statements in other kernels")
        arch = target.gpu.arch
        if int(arch.removeprefix("sm_").rstrip("a")) < 80:
            raise TargetError(f"kernel {k.name}: the WMMA tile needs sm_80 or later "
                              f"(target {target})")
        written = {_written_array(c) for c in calls}
        params = tuple(replace(p, written=True) if p.name in written else p for p in k.params)
        changed[k.name] = replace(k, params=params, block=(
            ir.Const(WARP, ir.INDEX), ir.Const(1, ir.INDEX), ir.Const(1, ir.INDEX)))
    if not changed:
        return prog

    def relaunch(node):
        if isinstance(node, Launch):
            return Launch(changed.get(node.kernel.name, node.kernel))
        if isinstance(node, ir.Block):
            return ir.Block(tuple(relaunch(s) for s in node.stmts))
        if isinstance(node, ir.If):
            return ir.If(node.cond, relaunch(node.then),
                         None if node.else_ is None else relaunch(node.else_))
        if isinstance(node, ir.For):
            return replace(node, body=relaunch(node.body))
        return node

    return replace(prog, kernels=tuple(changed.get(k.name, k) for k in prog.kernels),
                   body=relaunch(prog.body))


def device_functions(prog: GpuProgram, dialect: str) -> list[str]:
    """The device code of the WMMA tiles ``prog``'s kernels call, once each."""
    seen: dict[str, str] = {}
    for k in prog.kernels:
        for call in _wmma_calls(k.body):
            seen.setdefault(call.symbol, call.impl.device_code(dialect))
    return list(seen.values())
