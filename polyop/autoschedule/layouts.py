"""Transposed copies: read-only matrices read down their columns by the
vector loop (the knob ``<stmt>:transpose``).

syrk's ``C[i, j] += alpha * A[i, k] * A[j, k]`` (``j <= i``) is best run
in the order ``i, k, j``: ``C[i, j]`` is then contiguous along the
innermost loop ``j``, and ``k`` outside it reuses the row of ``C``. But
``A[j, k]`` runs down a column of ``A`` in ``j``, a stride of a whole row:
no vector loads, so the band was left scalar (PolyBench MEDIUM, Zen 4: 2.06
ms, numba 2.77). A copy of ``A`` transposed ahead of the band
(``cache_read(A, layout=(k, j))``) makes every access of the vector loop
contiguous or invariant. The copy is a transpose of tiles in vector
registers (``polyop.schedule.copies``: syr2k 1.09 -> 1.00 ms against a
scalar strided copy) and reads each element once; it is taken when
the band reads the matrix at least ``REUSE`` times per element (syrk: 240,
counting its triangle as the square the model sees; a matrix-vector product
reads each element once and keeps its order).

Taken for a band of one statement whose innermost loop carries no
dependence, when every access that moves with that loop is contiguous
except reads of two-dimensional arrays that nothing writes, read only along
their first subscript there (coefficient 1; the second does not move).
"""

from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..runtime import eval_index
from ..schedule.copies import transpose_by_blocks
from .model import DEFAULT_SIZE, access_affine

#: band instances per element of a matrix for its transposed copy to pay
REUSE = 16


def transpose_operands(ctx, lead: str, var: str, work: int, lanes: int) -> bool:
    """Decide the knob ``<lead>:transpose`` for the band's vector loop over
    ``var`` (``work``: the band's instances, as the model counts them) and
    apply it, each copy a transpose of ``lanes`` × ``lanes`` tiles in
    registers (``polyop.schedule.copies``). True when, afterwards, every
    access moving with ``var`` is contiguous."""
    sch = ctx.sch
    found = transposable(ctx, lead, var, work)
    if found is None:
        return False
    arrays, pays, reuse = found
    knob = ctx.decide(
        f"{lead}:transpose", [(), tuple(arrays)], tuple(arrays) if pays else (),
        f"{', '.join(arrays)} read down {'their columns' if len(arrays) > 1 else 'a column'} "
        f"by the vector loop {var}: a transposed copy makes the reads contiguous; "
        f"instances per element ({reuse}) {'>=' if pays else '<'} {REUSE}")
    if not knob.chosen:
        return False
    start = len(sch.trace)
    try:
        for name in knob.chosen:
            copy = sch.cache_read(name, lead, layout=lambda r, c: (c, r), name=f"{name}_t")
            rows, cols = (lp.name for lp in sch.get_loops(copy))  # A_t[rows, cols]
            transpose_by_blocks(sch, copy, rows, cols, lanes)  # the source runs along rows
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - start)
        knob.refuse(exc)
        return False
    return True


def transposable(ctx, lead: str, var: str, work: int) -> tuple[list[str], bool, str] | None:
    """The read-only matrices a transposed copy would make contiguous in the
    vector loop over ``var`` (every other access moving with it already is),
    whether the copies pay (``REUSE``) and the reuse in words; None when no
    copy helps. Nothing is applied (the order model asks too)."""
    sch = ctx.sch
    program = sch.program
    stmt = program.statement(lead)
    if var not in stmt.iterators:
        return None
    k = stmt.iterators.index(var)

    def along(access) -> list[int]:  # each subscript's coefficient of var
        rows, _ = access_affine(access.relation, len(stmt.iterators))
        return [row[k] for row in rows]

    written = program.written_arrays()
    accesses = [(a, along(a)) for a in (*stmt.reads, *stmt.writes)
                if program.arrays[a.array].ndim > 0]
    arrays: list[str] = []
    for access, coeffs in accesses:
        if all(c == 0 for c in coeffs) or coeffs[-1] == 1 and not any(coeffs[:-1]):
            continue  # invariant or contiguous
        if access.array in written or coeffs != [1, 0]:
            return None  # a stride no transposed copy removes
        if access.array not in arrays:
            arrays.append(access.array)
    if not arrays:
        return None
    # every access of those arrays must come out contiguous or invariant
    if any(a.array in arrays and c not in ([0, 0], [1, 0]) for a, c in accesses):
        return None
    env = {p: int(ctx.sizes.get(p, DEFAULT_SIZE)) for p in program.params}
    elements = {a: int(np.prod([eval_index(e, env) for e in program.arrays[a].extents]))
                for a in arrays}
    pays = all(work >= REUSE * max(n, 1) for n in elements.values())
    reuse = ", ".join(f"{a}: {work / max(n, 1):.3g}" for a, n in elements.items())
    return arrays, pays, reuse
