"""Tiles transposed in registers: ``lanes`` sibling ``vector`` loops, each
one vector of a row of the source stored down a column of the destination,
emitted as ``lanes`` vector loads, a transpose by shuffles and ``lanes``
vector stores.

``polyop.schedule.copies.transpose_by_blocks`` orders a transposing copy (NCHW
weights into panels of filters, an image channels last, ``A`` into row
panels) as tiles of ``lanes × lanes`` elements: the tile's rows unrolled,
each a vector loop of one vector, unit-stride in the source and ``F``
elements apart in the destination::

    for (m = 0; m < 16; m += 16)  // vector: wt[m][f0 + j] = w[f0 + j][m], j = 0
    ...
    for (m = 0; m < 16; m += 16)  // j = 15

One at a time, each is a vector load and a scatter of its 16 lanes; LLVM's
SLP vectorizer then joined the scattered elements into 4 × 4 transposes of
128-bit vectors, with single-element stores left over (on Zen 4, AVX-512, a
512 × 4608 transpose took 0.23 ns per element, and did not run faster on 2
cores). Recognised as a group here, the ``lanes`` loaded vectors (rows
``j``) are transposed in ``log2(lanes)`` rounds of two-vector shuffles, round
``k`` exchanging bit ``k`` of the row number with bit ``k`` of the lane
number, and lane ``i`` of every row is stored as one vector where lane ``i``
of row 0 was (rows ``j`` land ``j`` elements further on). The rounds go from
the lowest bit up: x86's shuffles then take one instruction each
(``vshufps``, ``vunpcklpd``, ``vinsertf128`` / ``vshuff64x2``; 42
instructions for 8 × 8 floats on AVX2, with the loads and stores) and NEON's
``trn1``/``trn2``/``zip``.

A group is ``lanes`` consecutive statements of a block, each a ``vector``
loop of exactly one vector of ``lanes`` (the same variable and bounds), whose
body is one store whose value reads nothing that varies with the loop but in
contiguous vectors, and never the stored array; store ``j`` is store 0 with
``j`` added to the last subscript, and the loop variable occurs in its other
subscripts only (every lane a different row of the destination). The
stores then write the same elements, with the same values, as the loops did,
each once: the order in which they are written does not matter.

Example::

    >>> from polyop.ir import Block, For, Function, Load, Param, Store, Var, Const
    >>> from polyop.types import f32
    >>> m = Var("m")
    >>> def row(j):  # B[m][j] = A[j][m], m = 0 .. 3
    ...     return For("m", Const(0), Const(4), 1,
    ...                 Store("B", (m, Const(j)), Load("A", (Const(j), m), f32)), "vector")
    >>> rows = [row(j) for j in range(4)]
    >>> from polyop.codegen.llvm import build_module
    >>> n = (Const(4), Const(4))
    >>> fn = Function("t", (Param("A", "array", f32, n), Param("B", "array", f32, n)), (),
    ...               Block(tuple(rows)))
    >>> "shufflevector <4 x float>" in str(build_module(fn, target=128)[0])
    True
"""

from __future__ import annotations

from llvmlite import ir

from ..ir import Block, For, Load, Store, walk
from ..kinds import LoopKind
from ..types import INDEX
from ..vector_plan import VectorPlan, constant_difference, mentions, plan_vector_loop
from .llvm_expr import alignment, ll_type
from .vector import _VectorBody

_I32 = ir.IntType(32)


def emit_tile_transpose(fb, stmts: tuple, start: int) -> int:
    """Emit ``stmts[start:start + lanes]`` as one transposed tile (module
    docstring) in function builder ``fb`` when they form one, and return how
    many statements that was (0: not a tile; nothing emitted)."""
    group = _match(fb, stmts, start)
    if group is None:
        return 0
    loops, plan, stores = group
    lanes, var, b = plan.lanes, plan.var, fb.builder
    dt = fb.arrays[stores[0].array].dtype
    base = fb.emit_as(loops[0].start, INDEX, index=True)
    fb.values[var] = (base, INDEX)
    rows = [_VectorBody(fb, lp, plan, lanes, fb.isa.fma).vec(st.value, dt)
            for lp, st in zip(loops, stores, strict=True)]
    columns = transpose(b, rows)
    vty = ir.VectorType(ll_type(dt), lanes)
    for i, column in enumerate(columns):
        lane = base if i == 0 else b.add(base, ir.Constant(base.type, i * plan.step),
                                          flags=["nsw"])
        fb.values[var] = (lane, INDEX)
        ptr, _ = fb.address(stores[0].array, stores[0].index, stores[0])
        b.store(column, b.bitcast(ptr, vty.as_pointer()), align=alignment(dt))
    del fb.values[var]
    return lanes


def transpose(b: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The ``n × n`` matrix whose rows are the ``n`` vectors ``rows`` (``n`` a
    power of two), transposed: ``out[i]`` holds lane ``i`` of every row.
    Round ``k`` swaps bit ``k`` of the row number with bit ``k`` of the lane
    number, one shuffle of two rows per row."""
    n = len(rows)
    rows = list(rows)
    bit = 1
    while bit < n:
        mty = ir.VectorType(_I32, n)
        low = ir.Constant(mty, [i if not i & bit else n + (i & ~bit) for i in range(n)])
        high = ir.Constant(mty, [i | bit if not i & bit else n + i for i in range(n)])
        for j in range(n):
            if not j & bit:
                a, c = rows[j], rows[j | bit]
                rows[j], rows[j | bit] = b.shuffle_vector(a, c, low), b.shuffle_vector(a, c, high)
        bit *= 2
    return rows


def _match(fb, stmts: tuple, start: int) -> tuple[list[For], VectorPlan, list[Store]] | None:
    """The loops, their common plan and their stores when ``stmts[start:]``
    opens a transposed tile, else ``None``."""
    first = stmts[start]
    if not (isinstance(first, For) and first.kind is LoopKind.VECTOR
            and isinstance(first.step, int) and first.step > 0
            and first.var not in fb.values and first.var not in fb.arrays):
        return None
    dtypes = {name: ref.dtype for name, ref in fb.arrays.items()}
    plan = plan_vector_loop(first, fb.isa, fb.temp_names, dtypes)
    lanes, var = plan.lanes, first.var
    if not plan.vectorised or plan.private or plan.trip != lanes \
            or len(stmts) - start < lanes:
        return None
    loops = list(stmts[start:start + lanes])
    stores = []
    for lp in loops:
        if not (isinstance(lp, For) and (lp.var, lp.start, lp.stop, lp.step, lp.kind)
                == (var, first.start, first.stop, first.step, first.kind)):
            return None
        body = lp.body.stmts[0] if isinstance(lp.body, Block) and len(lp.body.stmts) == 1 \
            else lp.body
        if not isinstance(body, Store) or body.atomic or not body.index or (
                lp is not first and plan_vector_loop(lp, fb.isa, fb.temp_names, dtypes)
                != plan):  # each loop vectorised alike
            return None
        stores.append(body)
    target = stores[0].array
    if mentions(stores[0].index[-1], var) or not any(mentions(x, var) for x in stores[0].index):
        return None
    for j, st in enumerate(stores):
        if st.array != target or not _shifted(stores[0].index, st.index, j) \
                or not _reads_rows(st.value, plan, target):
            return None
    return loops, plan, stores


def _shifted(first: tuple, index: tuple, j: int) -> bool:
    """``index`` is ``first`` with ``j`` added to its last subscript."""
    last = len(first) - 1
    return len(first) == len(index) and all(
        constant_difference(a, c) == (j if k == last else 0)
        for k, (a, c) in enumerate(zip(first, index)))


def _reads_rows(value, plan: VectorPlan, target: str) -> bool:
    """``value`` reads contiguous vectors or uniform elements only, never
    ``target``."""
    return not any(isinstance(x, Load) and (x.array == target or plan.access(x.index)
                                            not in ("contiguous", "uniform"))
                   for x in walk(value))
