"""``polyop.ops.matmul``: a GEMM built from a polyop schedule (no library call).

The operator is the tensor expression ``C[i, j] = sum_k A[i, k] * B[k, j]``
(optionally followed by ``+ bias[j]`` and ``max(·, 0)``), scheduled by
``schedule_matmul`` in the loop structure of GotoBLAS/BLIS, with every step a
legality-checked primitive:

1. ``cache_read`` packs ``B`` into column panels ``Bp[j // nr, k, j % nr]``
   (the micro-kernel's contiguous operand) and, with ``MatmulTiling.pack_a``,
   ``A`` into row panels ``Ap[i // mr, k, i % mr]``;
2. the update is split into ``k_outer`` slices of ``kc`` (the panels of
   one slice stay in L1/L2), row blocks of ``mb`` panels (``mb · mr`` rows of
   ``A``, in L2), column panels ``j_outer`` and row panels ``i_outer``; the
   slices and row blocks run outside the column panels, or with
   ``columns_outer`` inside them;
3. the ``mr × nr`` tile (``i_inner``, ``j_inner``) is innermost, with constant
   trip counts on full tiles; ``j_inner`` is vectorised (``nr / lanes``
   explicit vectors of the target, straight-line) and LLVM unrolls the rows,
   keeping the tile of ``C`` in ``mr · nr / lanes`` vector registers across
   the ``k`` loop (one broadcast of ``A`` per row, one vector load of ``Bp``
   per vector, fused multiply-adds): the BLIS micro-kernel. (Left to LLVM's
   loop vectorizer, the tile became gathers and scatters on AVX-512;
   unrolling the rows in the schedule gives the same code, in twice the
   compile time.)
4. the initialisation ``C = 0`` runs per tile, just ahead of the first slice;
   the epilogue (bias, ReLU) per tile right after the last
   (``reverse_compute_at``), so the fused operator makes one pass over ``C``;
   with one slice of ``k``, ``C`` itself becomes a tile-sized local array
   (``set_scope``) that LLVM keeps in registers: the fused operator writes
   only its output. Without an epilogue, the product is then named ``acc``
   and a copy into ``C`` takes the epilogue's place, so that each tile of
   ``C`` is stored once, never zeroed or read back in memory (1 thread,
   1024³: 92.5 → 93.6 GFLOP/s, 512³ to 2048³ 0.5–2 % faster);
5. with ``threads > 1`` the column panels run in parallel, and so do the
   panels of the packing loops.

The tile sizes follow the target (``MatmulTiling.default``, ``polyop.Target``):
``nr`` is 2 vector registers (3 where ``A``'s rows alias in L1) and ``mr`` the
most rows whose accumulators, the ``nr`` operands of ``Bp`` and one broadcast
fit the vector registers (``register_rows``). On AVX2 (16 registers) that is
a 6 × 16 float32 tile (6 × 8 for float64: 12 accumulators, 2 operands, 1
broadcast) or 4 × 24 (12 accumulators, 3 operands); on AVX-512 (32 zmm)
14 × 32 or 9 × 48; on NEON (32 × 128 bits) 14 × 8 or 9 × 12.

Example::

    >>> import numpy as np, polyop
    >>> mm = polyop.ops.matmul(64, 48, 32)
    >>> a = np.ones((64, 32), np.float32); b = np.ones((32, 48), np.float32)
    >>> c = np.empty((64, 48), np.float32)
    >>> mm(a, b, c); float(c[0, 0])
    32.0
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import te
from ..codegen.parallel import get_num_threads
from ..codegen.threadpool import MAX_THREADS
from ..errors import ArgumentError, ScheduleError
from ..runtime import empty_aligned
from ..schedule import Loop, Schedule
from ..schedule.copies import transpose_by_blocks
from ..settings import check_int
from ..target import Target, as_target

#: bytes of a slice of ``k`` (``kc`` elements): 4 KiB, 8 KiB where ``A``'s rows
#: alias in L1 — measured on AVX2 (``MatmulTiling.default``); a tuning knob
SLICE_BYTES, ALIASED_SLICE_BYTES = 4096, 8192
#: the row block (``mb`` panels of ``mr`` rows × ``kc``) fills at most this
#: share of L2, and at most ``MAX_ROW_BLOCK`` panels (the measured 16: larger
#: blocks, on larger L2s, are unmeasured — a tuning knob)
L2_SHARE, MAX_ROW_BLOCK = 0.75, 16


def register_rows(target: Target | str | None, vectors: int) -> int:
    """The rows ``mr`` of a register tile ``vectors`` registers wide: the most
    with ``mr · vectors`` accumulators, ``vectors`` operands and one broadcast
    in the target's vector registers.

    Example::

        >>> register_rows("cpu -mtriple=x86_64-linux-gnu -mcpu=haswell", 2)
        6
        >>> register_rows("cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512", 2)
        14
    """
    return max(1, (as_target(target).vector_registers - 1 - vectors) // vectors)


def default_threads(what: str, threads: int | None) -> int:
    """``threads`` (checked: 1 to ``MAX_THREADS``), or the runtime's thread
    count (``POLYOP_NUM_THREADS``, ``set_num_threads``) when None."""
    if threads is None:
        return get_num_threads()
    return check_int(f"{what}: threads", threads, 1, MAX_THREADS)


@dataclass(frozen=True)
class MatmulTiling:
    """Tile sizes of ``schedule_matmul``: an ``mr × nr`` register tile, ``kc``-deep
    slices of ``k``, row blocks of ``mb`` panels; ``pack_a``: whether ``A`` is
    packed into row panels or read in place; ``columns_outer``: the column
    panels outermost, each running over all row blocks (its panel of ``B``
    stays in L2 while ``A`` streams, Halide's order), rather than the row
    blocks outermost (a block of ``A`` in L2 while ``B``'s panels stream,
    BLIS's order)."""

    mr: int = 6
    nr: int = 16
    kc: int = 1024
    mb: int = 16
    pack_a: bool = True
    columns_outer: bool = False

    @classmethod
    def default(cls, dtype: str, K: int | None = None, N: int | None = None,
                threads: int = 1, target: Target | str | None = None) -> MatmulTiling:
        """The tiling for ``target`` (default the host), derived from its
        vector registers, lanes and L2 (module docstring).

        Measured best on AVX2 (``benchmarks/peers_bench.py``): 6 × (2
        registers) tiles, 4 KiB-deep slices of ``k``, row blocks outermost,
        ``A`` read in place (packing it cost more than it saved: 512³ 89.8
        against 93.3 GFLOP/s, 768³ 93.5 against 96.2, 1000³ and 1536³ tie).

        When ``A``'s rows (``K`` elements) are a multiple of 4 KiB long, the
        rows a tile reads fall in one L1 set. Then, with at least 32 column
        panels per thread, 4 × (3 registers) tiles, column panels outermost
        and 8 KiB-deep slices (1 thread, 2048³: 90.8 against 89.1 for 6 × 16
        tiles with ``A`` packed, 81 with ``A`` in place; 1024³: 93.1 against
        91.3; 2 threads, 2048³: 176 against 171); otherwise 6 × 16 tiles
        with ``A`` packed (2 threads, 1024³, 21 panels each: 176 against
        168 with the column panels outermost).

        Other targets take the same structure with the register rule of
        ``register_rows`` (AVX-512: 14 × 32 and 9 × 48 float32) and row blocks
        of at most ``L2_SHARE`` of their L2 in BLIS's order (16 panels on a
        512 KiB L2; 8 on Haswell's 256 KiB). Only
        measurement can settle — the knobs a tuner searches: the tile's width
        in registers (2 or 3) and its rows (fewer rows leave fewer partial
        tiles), the slice depth (``SLICE_BYTES``), the row block (``mb``),
        packing ``A``, the loop order (``columns_outer``) and the aliasing
        rule, all measured on AVX2 only.

        Example::

            >>> t = MatmulTiling.default("float32", 1000, 1000, 1,
            ...                          "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4")
            >>> t.mr, t.nr, t.kc
            (14, 32, 1024)
        """
        t = as_target(target)
        size = np.dtype(dtype).itemsize
        lanes = t.lanes(np.dtype(dtype).name)

        def tiling(vectors: int, slice_bytes: int, columns_outer: bool = False,
                   **kw) -> MatmulTiling:
            mr, kc = register_rows(t, vectors), slice_bytes // size
            # a row block stays in L2 while B's panels stream (BLIS's order);
            # with the column panels outermost, A streams: no cache block
            mb = MAX_ROW_BLOCK if columns_outer else int(L2_SHARE * t.l2) // (mr * kc * size)
            return cls(mr=mr, nr=vectors * lanes, kc=kc, mb=max(1, min(MAX_ROW_BLOCK, mb)),
                       columns_outer=columns_outer, **kw)

        if K is not None and (K * size) % 4096 == 0:  # rows a multiple of the page size
            if N is None or -(-N // (3 * lanes)) >= 32 * threads:
                return tiling(3, ALIASED_SLICE_BYTES, pack_a=False, columns_outer=True)
            return tiling(2, SLICE_BYTES, pack_a=True)
        return tiling(2, SLICE_BYTES, pack_a=False)


def tuned_tiling(cls, target: Target, op: str, *key):
    """The tiling ``polyop tune ops`` stored for this operator and shape on
    ``target`` (``polyop.tune.database``), as a ``cls``; None when there is
    none (the target heuristic decides)."""
    from ..tune.database import conv2d_key, lookup, matmul_key

    found = lookup(str(target), (matmul_key if op == "matmul" else conv2d_key)(*key))
    try:
        return cls(**found) if found else None
    except TypeError:  # written by another version of the operator
        return None


class CompiledOperator:
    """What every operator exposes of its compiled ``function`` (a TE function):
    compile time, LLVM IR, assembly, target and ``export``."""

    function: te.TEFunction

    @property
    def compile_seconds(self) -> float:
        return self.function.kernel.compile_seconds

    @property
    def llvm_ir(self) -> str:
        return self.function.llvm_ir

    @property
    def asm(self) -> str:
        return self.function.asm

    @property
    def target(self) -> Target:
        return self.function.target

    def export(self, path) -> list[str]:
        """Write the operator as ``.o`` or ``.so`` with a C header (its native
        signature, scratch arrays included: ``polyop.codegen.objcode``)."""
        return self.function.export(path)


class Matmul(CompiledOperator):
    """A compiled ``polyop.ops.matmul``: ``f(A, B, C)`` (``f(A, B, bias, C)``
    with a bias). ``.schedule`` is the polyop schedule it was built from,
    ``.function`` the built ``TEFunction``; ``.llvm_ir``, ``.asm``,
    ``.target`` and ``.export(path)`` are its code. Built with
    ``packed_b=True``, it takes ``B`` already packed, as ``pack_b`` returns
    it. Built for another CPU (``target=``), it cannot be called here."""

    def __init__(self, function, schedule: Schedule, shape: tuple[int, int, int],
                 tiling: MatmulTiling, packed_b: bool = False):
        self.function, self.schedule, self.shape, self.tiling = (function, schedule,
                                                                  shape, tiling)
        self.packed_b = packed_b

    def __call__(self, *arrays: np.ndarray) -> None:
        self.function(*arrays)

    def pack_b(self, B: np.ndarray) -> np.ndarray:
        """``B`` (``K × N``) in column panels of ``nr``, ``Bp[j // nr, k, j % nr]``,
        zero-padded to whole panels: the operand this operator reads with
        ``packed_b=True`` (constant weights, packed once at set-up).

        Example::

            >>> import polyop
            >>> mm = polyop.ops.matmul(64, 40, 32, packed_b=True,  # nr: the target's, unless set
            ...                        tiling=polyop.ops.MatmulTiling(nr=16))
            >>> mm.pack_b(np.ones((32, 40), np.float32)).shape
            (3, 32, 16)
        """
        _, N, K = self.shape
        B = np.asarray(B)
        if B.shape != (K, N):
            raise ArgumentError(f"pack_b: B has shape {B.shape}, expected {(K, N)}", "B")
        nr = self.tiling.nr
        Bp = empty_aligned((-(-N // nr), K, nr),
                           self.function.kernel.program.arrays["B"].dtype.numpy)
        Bp[...] = 0
        Bp[_panels(nr)(*np.indices(B.shape, dtype=np.intp))] = B
        return Bp

    def __repr__(self) -> str:
        m, n, k = self.shape
        return f"<polyop.ops.matmul {m}x{n}x{k} {self.function.name}>"


def matmul(M: int, N: int, K: int, dtype: str = "float32", *, bias: bool = False,
           relu: bool = False, threads: int | None = None, tiling: MatmulTiling | None = None,
           packed_b: bool = False, fp_contract: bool = True,
           target: Target | str | None = None) -> Matmul:
    """Compile ``C = A @ B`` for ``A: M × K``, ``B: K × N`` (with ``bias``:
    ``C = A @ B + bias``, ``bias`` of length ``N``; with ``relu``: ``max(·, 0)``).

    ``threads`` (default: the runtime's thread count, ``POLYOP_NUM_THREADS``
    or ``set_num_threads``) above 1 runs column panels in parallel, on the
    runtime's threads at call time; ``threads=1`` compiles a serial operator.
    ``target`` (default the host) picks the tiling and the machine code: for
    another CPU the operator is not callable here (``.asm``, ``.export``).
    Without a ``tiling``, the one ``polyop tune ops`` stored for this shape
    and target is used, else ``MatmulTiling.default``.
    ``fp_contract`` allows fused
    multiply-adds (the default; results then differ from a CPython loop in the
    last bits, as BLAS results do). ``packed_b`` makes ``B`` an argument in
    the packed layout (``Matmul.pack_b``), for a constant ``B`` (a layer's
    weights): packed once rather than on every call.

    Example::

        >>> import numpy as np, polyop
        >>> mm = polyop.ops.matmul(64, 48, 32, bias=True, relu=True)
        >>> a, b = np.ones((64, 32), np.float32), np.ones((32, 48), np.float32)
        >>> bias = np.arange(-40.0, 8.0, dtype=np.float32)         # 32 + bias: -8 .. 39
        >>> c = np.empty((64, 48), np.float32)
        >>> mm(a, b, bias, c); float(c[0, 0]), float(c[0, 47])
        (0.0, 39.0)
    """
    for name, v in (("M", M), ("N", N), ("K", K)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"matmul: {name} must be a positive int, got {v!r}")
    threads = default_threads("matmul", threads)
    target = as_target(target)
    tiling = tiling or tuned_tiling(MatmulTiling, target, "matmul", M, N, K, dtype, threads) \
        or MatmulTiling.default(dtype, K, N, threads, target)
    slices = -(-K // tiling.kc)  # equal slices of k: no short last slice to compile
    tiling = replace(tiling, kc=-(-K // slices))
    A = te.placeholder((M, K), dtype, name="A")
    nr = tiling.nr
    B = te.placeholder((-(-N // nr), K, nr) if packed_b else (K, N), dtype, name="B")
    k = te.reduce_axis((0, K), name="k")

    def b_at(k, j):
        return B[_panels(nr)(k, j)] if packed_b else B[k, j]

    fused = bias or relu
    copy = not fused and slices == 1  # a copy as the epilogue (module docstring, 4.)
    C = te.compute((M, N), lambda i, j: te.reduce_sum(A[i, k] * b_at(k, j), axis=k),
                   name="acc" if copy else "C")
    out, args = C, [A, B]
    b = te.placeholder((N,), dtype, name="bias") if bias else None
    if fused or copy:
        out = te.compute((M, N), lambda i, j: _epilogue(C, b, i, j, relu),
                         name="D" if fused else "C")
        args += [b] if bias else []
    sch = te.create_schedule(out, name="matmul")
    schedule_matmul(sch, A, None if packed_b else B, C, tiling,
                    epilogue=out if out is not C else None, parallel=threads > 1,
                    target=target)
    name = "matmul" + "".join(f"_{k}" for k, on in (("packed", packed_b), ("bias", bias),
                                                      ("relu", relu)) if on)
    f = te.build(sch, args + [out], name=name, fp_contract=fp_contract, target=target)
    return Matmul(f, sch, (M, N, K), tiling, packed_b)


def copy_panels_per_pass(sch: Schedule, copy: str, panels: int = 4) -> Loop:
    """Order the loops ``(panel, row, column)`` of a packing copy into panels
    (``Bp[j // nr, k, j % nr]``) so that each pass down the source rows fills
    ``panels`` panels: each row is read ``panels · nr`` elements at a time,
    not ``nr`` (B of matmul at 1024²: 0.58 → 0.19 ms; a pass per panel
    touches a new page per element group). Returns the loop over groups of
    panels, the outermost.

    Example::

        >>> import polyop
        >>> A = polyop.placeholder((64, 32), "float32", name="A")
        >>> B = polyop.placeholder((32, 256), "float32", name="B")
        >>> k = polyop.reduce_axis((0, 32), name="k")
        >>> C = polyop.compute((64, 256), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k),
        ...                    name="C")
        >>> sch = polyop.create_schedule(C)
        >>> _ = sch.cache_read(B, C, layout=_panels(16), name="Bp")
        >>> [lp.name for lp in sch.get_loops("Bp")]
        ['Bp_0', 'Bp_1', 'Bp_2']
        >>> copy_panels_per_pass(sch, "Bp").name, [lp.name for lp in sch.get_loops("Bp")]
        ('Bp_0_outer', ['Bp_0_outer', 'Bp_1', 'Bp_0_inner', 'Bp_2'])
    """
    panel, row, _ = sch.get_loops(copy)
    outer, panel = sch.split(panel, panels)
    sch.reorder(outer, row, panel)
    return outer


def _panels(nr: int):
    """The layout of ``B`` in column panels of ``nr``: ``(k, j) -> (j // nr, k, j % nr)``."""
    return lambda k, j: (j // nr, k, j % nr)


def _epilogue(C, b, i, j, relu: bool):
    """``C[i, j]`` (``+ b[j]`` with a bias ``b``), then ``max(·, 0)`` with ``relu``."""
    v = C[i, j] if b is None else C[i, j] + b[j]
    return te.maximum(v, te.const(0, C.dtype.numpy.name)) if relu else v


def schedule_matmul(sch: Schedule, A, B, C, tiling: MatmulTiling = MatmulTiling(),
                    epilogue=None, parallel: bool = False,
                    target: Target | str | None = None) -> dict[str, Loop]:
    """Apply the packed, register-blocked GEMM schedule (module docstring) to
    the reduction ``C`` of ``A`` and ``B`` in ``sch`` (``B=None``: ``C`` reads
    ``B`` already packed); ``epilogue`` is an elementwise stage reading ``C``,
    run per tile; ``target`` (default the host) sets the vectors of the
    packing of ``A``. Returns the loops by name.

    Example::

        >>> import polyop
        >>> A = polyop.placeholder((64, 32), "float32", name="A")
        >>> B = polyop.placeholder((32, 48), "float32", name="B")
        >>> k = polyop.reduce_axis((0, 32), name="k")
        >>> C = polyop.compute((64, 48), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k),
        ...                    name="C")
        >>> sch = polyop.create_schedule(C)
        >>> loops = schedule_matmul(sch, A, B, C, MatmulTiling(mr=4, nr=16, kc=32, mb=2))
        >>> [lp.name for lp in sch.get_loops("C")]
        ['k_outer', 'i_outer_outer', 'j_outer', 'i_outer_inner', 'k_inner', 'i_inner', 'j_inner']
        >>> sch.stmts
        ['C_init', 'Ap', 'Bp', 'C']
    """
    t = tiling
    packing = []
    if t.pack_a:
        sch.cache_read(A, C, layout=lambda i, k: (i // t.mr, k, i % t.mr), name="Ap")
        # a transpose: tiles of mr rows of A (unrolled) x one vector along k
        lanes = as_target(target).lanes(A.dtype.numpy.name)
        _, k, i = sch.get_loops("Ap")
        transpose_by_blocks(sch, "Ap", k.name, i.name, lanes, rows=0 if t.mr <= lanes else lanes)
        packing.append(sch.get_loops("Ap")[0])
    if B is not None:
        sch.cache_read(B, C, layout=_panels(t.nr), name="Bp")
        packing.append(copy_panels_per_pass(sch, "Bp"))
    i, _, _ = sch.get_loops(C)
    sch.fission(i)  # the init's nest apart, so the k slices can go outside i and j
    i, j, k = sch.get_loops(C)
    ko, ki = sch.split(k, t.kc)
    io, ii = sch.split(i, t.mr)
    jo, ji = sch.split(j, t.nr)
    ic, ip = sch.split(io, t.mb)
    if t.columns_outer:
        sch.reorder(jo, ko, ic, ip, ki, ii, ji)
    else:
        sch.reorder(ko, ic, jo, ip, ki, ii, ji)
    # the tile's columns in whole vectors of the target (explicit vector code:
    # LLVM's loop vectorizer makes gathers and scatters of the tile on
    # AVX-512); LLVM unrolls its rows (unrolling them in the schedule gives
    # the same code, in twice the compile time)
    sch.vectorize(ji)
    sch.compute_at(f"{C.name}_init", ip)
    if epilogue is not None:
        sch.reverse_compute_at(epilogue, ip)
        try:  # one k slice: each tile of C lives in one iteration, in registers
            sch.set_scope(C, "local", ip)
        except ScheduleError:  # several slices: C's tiles live across them
            pass
    if parallel:
        sch.parallel(jo)
        for loop in packing:
            sch.parallel(loop)
    return {"k_outer": ko, "i_block": ic, "j_outer": jo, "i_outer": ip, "k_inner": ki,
            "i_inner": ii, "j_inner": ji}
