"""A packed, register-blocked float32 matmul written in the kernel language.

``packed_sgemm(mr, nr, kc, mb)`` returns a ``@polyop.kernel`` computing
``C = A @ B`` with the loop structure of BLIS/GotoBLAS:

- ``kc`` loop: slices of ``kc`` values of ``k``; per slice, ``B[k-slice, :]`` is
  packed into column panels ``Bp[jp, k, 0:nr]`` (zero padded past ``N``);
- ``ic`` loop: blocks of ``mb`` row panels (``mb * mr`` rows); per block,
  ``A[rows, k-slice]`` is packed into row panels ``Ap[ip, k, 0:mr]``;
- ``jp`` × ``ip``: one ``mr × nr`` tile of ``C`` per pair, accumulated in a local
  array ``acc`` (registers, after LLVM's promotion) over the ``k`` slice: per
  ``k``, ``nr / 8`` vector loads of ``Bp``, ``mr`` broadcasts of ``Ap`` and
  ``mr * nr / 8`` FMAs; the tile of ``C`` is prefetched before the ``k`` loop and
  written back after it (``=`` for the first slice, ``+=`` after).

The packed buffers are arguments the caller allocates (``workspace``). Build
with ``fp_contract=True`` (the default here) for FMAs; without it the kernel
computes exactly what CPython computes running the same loops.

Example::

    >>> sgemm = packed_sgemm(4, 8, 16, 2)
    >>> M, N, K = 10, 20, 30
    >>> A = np.random.rand(M, K).astype(np.float32)
    >>> B = np.random.rand(K, N).astype(np.float32)
    >>> C = np.empty((M, N), np.float32)
    >>> sgemm(M, N, K, C, A, B, *workspace(sgemm, M, N, K))
    >>> np.allclose(C, A @ B, rtol=1e-5)
    True
"""

# no ``from __future__ import annotations``: the packed arrays' annotations are
# f-strings, evaluated when the kernel is defined
import numpy as np

import polyop


def packed_sgemm(mr: int = 6, nr: int = 16, kc: int = 512, mb: int = 16,
                 fp_contract: bool = True) -> polyop.Kernel:
    """The packed sgemm kernel for an ``mr × nr`` register tile, ``kc``-deep
    slices of ``k`` (a multiple of 8) and blocks of ``mb`` row panels.

    Example::

        >>> packed_sgemm(4, 8, 16, 2).tile
        (4, 8, 16, 2)
    """
    if kc % 8 or min(mr, nr, kc, mb) <= 0:
        raise ValueError("packed_sgemm: mr, nr, mb positive; kc a positive multiple of 8")
    MR, NR, KC, MB, MC, KC8 = mr, nr, kc, mb, mb * mr, kc // 8

    @polyop.kernel(fp_contract=fp_contract)
    def sgemm(M: int, N: int, K: int, C: "f32[M, N]", A: "f32[M, K]", B: "f32[K, N]",
              Ap: f"f32[(M + {mr - 1}) // {mr}, K, {mr}]",
              Bp: f"f32[(N + {nr - 1}) // {nr}, K, {nr}]"):
        for i in range(M):
            for j in range(N):
                if K == 0:
                    C[i, j] = 0.0
        for kc in range((K + KC - 1) // KC):
            # pack B[k-slice, :] into panels of NR columns, 8 rows of k at a time
            for k8 in range(KC8 * kc, min(KC8 * kc + KC8, (K + 7) // 8)):
                for jp in range(N // NR):
                    for k in range(8 * k8, min(8 * k8 + 8, K)):
                        for jj in range(NR):
                            Bp[jp, k, jj] = B[k, NR * jp + jj]
            for k in range(KC * kc, min(KC * kc + KC, K)):
                for jp in range(N // NR, (N + NR - 1) // NR):
                    for jj in range(NR):
                        if NR * jp + jj < N:
                            Bp[jp, k, jj] = B[k, NR * jp + jj]
                        else:
                            Bp[jp, k, jj] = 0.0
            for ic in range((M + MC - 1) // MC):
                # pack A[row block, k-slice] into panels of MR rows
                for ip in range(MB * ic, min(MB * ic + MB, M // MR)):
                    for k in range(KC * kc, min(KC * kc + KC, K)):
                        for ii in range(MR):
                            Ap[ip, k, ii] = A[MR * ip + ii, k]
                for ip in range(max(MB * ic, M // MR), min(MB * ic + MB, (M + MR - 1) // MR)):
                    for k in range(KC * kc, min(KC * kc + KC, K)):
                        for ii in range(MR):
                            if MR * ip + ii < M:
                                Ap[ip, k, ii] = A[MR * ip + ii, k]
                            else:
                                Ap[ip, k, ii] = 0.0
                # the micro-kernel: one MR x NR tile of C per (jp, ip)
                for jp in range((N + NR - 1) // NR):
                    for ip in range(MB * ic, min(MB * ic + MB, (M + MR - 1) // MR)):
                        acc = np.zeros((MR, NR), np.float32)
                        for ii in range(MR):
                            if MR * ip + ii < M:
                                polyop.prefetch(C[MR * ip + ii, NR * jp], write=True)
                                polyop.prefetch(C[MR * ip + ii, min(NR * jp + NR - 1, N - 1)],
                                                write=True)
                        for k in range(KC * kc, min(KC * kc + KC, K)):
                            for ii in range(MR):
                                for jj in range(NR):
                                    acc[ii, jj] += Ap[ip, k, ii] * Bp[jp, k, jj]
                        for ii in range(MR):
                            for jj in range(NR):
                                if MR * ip + ii < M and NR * jp + jj < N:
                                    if kc == 0:
                                        C[MR * ip + ii, NR * jp + jj] = acc[ii, jj]
                                    else:
                                        C[MR * ip + ii, NR * jp + jj] += acc[ii, jj]

    sgemm.tile = (mr, nr, kc, mb)
    return sgemm


def vectorized(kernel: polyop.Kernel, target=None) -> polyop.Schedule:
    """``kernel`` (from ``packed_sgemm``) with the micro-kernel's column loop
    (``jj`` of ``acc[ii, jj] += ...``) and the packing of ``B`` in vectors
    of the target: the tile in whole vector registers whatever LLVM's loop
    vectorizer would make of it (on AVX-512: gathers and scatters).

    Example::

        >>> sch = vectorized(packed_sgemm(4, 8, 16, 2))
        >>> [lp.name for lp in sch.get_loops("S10")], "// vector x" in str(polyop.lower(sch))
        (['kc', 'ic', 'jp', 'ip', 'k', 'ii', 'jj'], True)
    """
    sch = polyop.Schedule(kernel)
    for s in kernel.program.statements:
        writes = {a.array for a in s.writes}
        reads = {a.array for a in s.reads}
        if writes == {"acc"} and {"Ap", "Bp"} <= reads or writes == {"Bp"} and "B" in reads:
            sch.vectorize(sch.get_loops(s.name)[-1])
    return sch


def workspace(kernel: polyop.Kernel, M: int, N: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """The packed buffers ``(Ap, Bp)`` of ``kernel`` (from ``packed_sgemm``) for
    an ``M × K`` by ``K × N`` product.

    Example::

        >>> Ap, Bp = workspace(packed_sgemm(), 10, 20, 30)
        >>> Ap.shape, Bp.shape
        ((2, 30, 6), (2, 30, 16))
    """
    mr, nr = kernel.tile[:2]
    return (np.empty(((M + mr - 1) // mr, K, mr), np.float32),
            np.empty(((N + nr - 1) // nr, K, nr), np.float32))
