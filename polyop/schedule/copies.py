"""The loop order of copy stages (packing and transposes), a recipe of
schedule primitives.

``polyop.ops.matmul`` and ``polyop.ops.conv2d`` copy operands into the layout
their micro-kernels read: panels of ``B``, ``A`` and the weights, the
zero-bordered, channels-last input of a convolution; ``polyop.auto_schedule``
copies, transposed, matrices that a vector loop would read down their
columns (``polyop.autoschedule.layouts``). Where a copy keeps the
innermost dimension (a panel of ``B``), its innermost loop is unit-stride on
both sides and any vectorizer makes it whole vector loads and stores. Where
it transposes (``A`` into row panels, NCHW weights into panels of filters,
an NCHW image into channels last), no loop order is unit-stride on both
sides; left to LLVM's loop vectorizer, the destination-contiguous loop
became gathers on AVX-512 (``vgatherdps``, ``vgatherqps``; on AVX2, chains
of ``vinsertps``) and the source-contiguous one scatters (``vscatterqps``).

``transpose_by_blocks`` orders such a copy as a transpose of tiles of
``lanes × lanes`` elements (``lanes``: the target's, for the element type):
the loop that is unit-stride in the destination is split into rows of
``lanes`` and unrolled, the loop unit-stride in the source split into
vectors of ``lanes``, innermost, and vectorised by polyop (explicit vector
code, ``polyop.codegen.vector``). The code generator recognises the
tile's rows (``polyop.codegen.transpose``): ``lanes`` vector loads of the
source, a transpose by shuffles in registers, ``lanes`` vector stores of the
destination, with no gather or scatter on any target. (Left to LLVM's SLP
vectorizer, the scattered elements of the rows became 4 × 4 transposes of
128-bit vectors and single-element stores: on Zen 4, AVX-512, 3 × 3 512 →
512 at 7 × 7, NCHW, weights transposed per call, 73 → 91 GFLOP/s on one
core, 133 → 162 on two. On AVX2, a 64 × 1152 float32 transpose in L2 took
0.20 ns per element that way, against 0.24 for LLVM's gathers by hand and
0.34 for vector loads with the stores left one by one.) Where a tile is
partial (a source row leaving pieces of 8, 4, 2 lanes after its vectors),
its rows are emitted one by one, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .handles import Loop
    from .schedule import Schedule


def transpose_by_blocks(sch: Schedule, copy: str, source_loop: str, dest_loop: str,
                        lanes: int, rows: int | None = None) -> Loop:
    """Order the loops of the copy statement ``copy`` as a transpose of tiles
    (module docstring): ``source_loop``, unit-stride in the source, is split
    by ``lanes``, ``dest_loop``, unit-stride in the destination, by ``rows``
    (default ``lanes``; 0: not split, for a loop with a small constant trip
    count); the outer loops keep their places, the tile's rows go inside
    them, unrolled, and its vector loop innermost, vectorised. Returns the
    vector loop.

    Example::

        >>> import polyop
        >>> A = polyop.placeholder((64, 256), "float32", name="A")
        >>> B = polyop.compute((256, 64), lambda i, j: A[j, i], name="B")
        >>> sch = polyop.create_schedule(B)
        >>> _ = sch.cache_read(A, B, layout=lambda i, k: (i // 6, k, i % 6), name="Ap")
        >>> [lp.name for lp in sch.get_loops("Ap")]
        ['Ap_0', 'Ap_1', 'Ap_2']
        >>> transpose_by_blocks(sch, "Ap", "Ap_1", "Ap_2", lanes=8, rows=0).name
        'Ap_1_inner'
        >>> [lp.name for lp in sch.get_loops("Ap")]
        ['Ap_0', 'Ap_1_outer', 'Ap_2', 'Ap_1_inner']
    """
    loops = {lp.name: lp for lp in sch.get_loops(copy)}
    order = list(loops.values())
    src_outer, src_inner = sch.split(loops[source_loop], lanes)
    order[order.index(loops[source_loop])] = src_outer
    if rows == 0:
        row = loops[dest_loop]
        order.remove(row)
    else:
        dst_outer, row = sch.split(loops[dest_loop], rows or lanes)
        order[order.index(loops[dest_loop])] = dst_outer
    sch.reorder(*order, row, src_inner)
    sch.unroll(row)
    sch.vectorize(src_inner)
    return src_inner
