"""The loop order of the operators' copy stages (packing and transposes).

``polyop.ops.matmul`` and ``polyop.ops.conv2d`` copy operands into the layout
their micro-kernels read: panels of ``B``, ``A`` and the weights, the
zero-bordered, channels-last input of a convolution. Where a copy keeps the
innermost dimension (a panel of ``B``), its innermost loop is unit-stride on
both sides and any vectorizer makes it whole vector loads and stores. Where
it transposes (``A`` into row panels, NCHW weights into panels of filters,
an NCHW image into channels last), no loop order is unit-stride on both
sides; left to LLVM's loop vectorizer, the destination-contiguous loop
became gathers on AVX-512 (``vgatherdps``, ``vgatherqps``; on AVX2, chains
of ``vinsertps``) and the source-contiguous one scatters (``vscatterqps``).

``transpose_by_blocks`` orders such a copy as a blocked transpose instead:
the loop that is unit-stride in the source is split into blocks of
``BLOCK_VECTORS`` vectors of the target, the block loop takes its place and
the loop inside the block goes innermost, vectorised by polyop (explicit
vector code, ``polyop.codegen.vector``): each source row of the block is
read in whole vectors, its elements stored one by one into the destination
block, which stays in L1 while the block's rows are read.
"""

from __future__ import annotations

from ..schedule import Loop, Schedule

#: vectors of the source row a block of a transposing copy reads: the
#: destination block (``BLOCK_VECTORS · lanes`` elements × the other loops of
#: the copy inside the block) stays in L1
BLOCK_VECTORS = 4


def transpose_by_blocks(sch: Schedule, copy: str, source_loop: str, lanes: int) -> Loop:
    """Order the loops of the copy statement ``copy`` as a blocked transpose
    (module docstring): ``source_loop``, the loop unit-stride in the source,
    is split by ``BLOCK_VECTORS · lanes`` (``lanes``: the target's lanes for
    the element type); the block loop takes its place, the loop inside the
    block goes innermost and is vectorised. Returns that innermost loop.

    Example::

        >>> import polyop
        >>> A = polyop.placeholder((64, 256), "float32", name="A")
        >>> B = polyop.compute((256, 64), lambda i, j: A[j, i], name="B")
        >>> sch = polyop.create_schedule(B)
        >>> _ = sch.cache_read(A, B, layout=lambda i, k: (i // 6, k, i % 6), name="Ap")
        >>> [lp.name for lp in sch.get_loops("Ap")]
        ['Ap_0', 'Ap_1', 'Ap_2']
        >>> transpose_by_blocks(sch, "Ap", "Ap_1", lanes=8).name
        'Ap_1_inner'
        >>> [lp.name for lp in sch.get_loops("Ap")]
        ['Ap_0', 'Ap_1_outer', 'Ap_2', 'Ap_1_inner']
    """
    loops = sch.get_loops(copy)
    names = [lp.name for lp in loops]
    at = names.index(source_loop)
    outer, inner = sch.split(loops[at], BLOCK_VECTORS * lanes)
    sch.reorder(*loops[:at], outer, *loops[at + 1:], inner)
    sch.vectorize(inner)
    return inner
