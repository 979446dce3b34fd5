"""isl's scheduler (Pluto-style) run on a program's exact dependences.

``isl_schedule(program)`` hands isl the program's iteration domain with every
dependence (RAW, WAR and WAW, memory-based: ``polyop.deps``) as validity,
proximity and coincidence constraints, under Pluto-like options (outer
coincidence: parallel loops go outermost where possible; maximal band depth:
permutable bands as deep as the dependences allow, skewing where needed). It
returns, per statement, the members of the bands on the statement's path
through isl's schedule tree as affine functions of the statement's own
iterators (``Member``). ``auto_schedule`` reads them to learn which loops of a
nest are *permutable* (tiling is legal), which are *coincident* (parallel),
and whether a nest needs a skew first; the loop order itself is decided by
the cost model and every transformation goes through the legality-checked
``polyop.Schedule`` primitives, so isl's advice cannot make a schedule wrong.

isl's options live on the shared default context: they are set for the one
call and restored afterwards, so no other part of polyop sees them.

Example (gemm's update nest is one permutable band; ``i`` and ``j`` are
coincident, ``k`` carries the reduction)::

    >>> import polyop
    >>> @polyop.kernel
    ... def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    ...     for i in range(n):
    ...         for k in range(n):
    ...             for j in range(n):
    ...                 C[i, j] += A[i, k] * B[k, j]
    >>> info = isl_schedule(mm.program)
    >>> [(m.text, m.permutable, m.coincident) for m in info["S0"]]
    [('i', True, True), ('j', True, True), ('k', True, False)]
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from ..deps import dependences
from ..program import Program

_T = isl.schedule_node_type

#: isl options set for the call (name -> value), in the spirit of Pluto
OPTIONS = {
    "outer_coincidence": 1,      # prefer a coincident (parallel) outer member
    "maximize_band_depth": 1,    # permutable bands as deep as legal: tileable
    "serialize_sccs": 0,         # let isl fuse strongly connected components
    "whole_component": 0,        # isl's incremental (Pluto-like) algorithm
}


@dataclass(frozen=True)
class Member:
    """One band member on a statement's path in isl's schedule: the affine
    function ``sum(coeffs[k] * iterator_k) + const`` of the statement's
    iterators, the band it belongs to (``band``: its position on the path),
    and the band's flags."""

    coeffs: tuple[int, ...]
    const: int
    band: int
    permutable: bool
    coincident: bool
    text: str

    def iterator(self) -> int | None:
        """The index of the single iterator this member is (``±i + c``), else None."""
        nz = [k for k, c in enumerate(self.coeffs) if c]
        return nz[0] if len(nz) == 1 and abs(self.coeffs[nz[0]]) == 1 else None


#: the options for time tiling: without outer coincidence isl skews a stencil's
#: loops into one permutable band (``t, t + i, 2t + i + j`` for seidel-2d)
TILING_OPTIONS = {**OPTIONS, "outer_coincidence": 0}


def isl_schedule(program: Program, options: dict[str, int] | None = None
                 ) -> dict[str, list[Member]]:
    """isl's schedule of ``program`` (see the module docstring) under
    ``options`` (default ``OPTIONS``): statement name → its band members,
    outermost first."""
    deps = dependences(program).all
    ctx = isl.DEFAULT_CONTEXT
    options = OPTIONS if options is None else options
    saved = {k: getattr(ctx, f"get_schedule_{k}")() for k in options}
    try:
        for k, v in options.items():
            getattr(ctx, f"set_schedule_{k}")(v)
        sc = isl.ScheduleConstraints.on_domain(program.domain)
        sc = sc.set_context(program.context) if program.context is not None else sc
        sc = sc.set_validity(deps).set_proximity(deps).set_coincidence(deps)
        tree = sc.compute_schedule()
    finally:
        for k, v in saved.items():
            getattr(ctx, f"set_schedule_{k}")(v)
    iters = {s.name: s.iterators for s in program.statements}
    out: dict[str, list[Member]] = {s: [] for s in iters}
    _walk(tree.get_root(), {}, iters, out, 0)
    return out


def _walk(node: isl.ScheduleNode, path: dict[str, list[Member]], iters: dict,
          out: dict[str, list[Member]], bands: int) -> None:
    kind = node.get_type()
    if kind == _T.leaf:
        dom = node.get_domain()
        for s in iters:
            if _has(dom, s):
                out[s] = path.get(s, [])
        return
    if kind == _T.band:
        path = {k: list(v) for k, v in path.items()}
        part = node.band_get_partial_schedule()
        perm = bool(node.band_get_permutable())
        dom = node.get_domain()
        for m in range(node.band_n_member()):
            upa = part.get_union_pw_aff(m)
            coinc = bool(node.band_member_get_coincident(m))
            for s, names in iters.items():
                if not _has(dom, s):
                    continue
                coeffs, const = _affine(upa, s, len(names))
                text = _text(coeffs, const, names)
                path.setdefault(s, []).append(Member(coeffs, const, bands, perm, coinc, text))
        bands += 1
    for k in range(node.n_children()):
        _walk(node.child(k), path, iters, out, bands)


def _has(dom: isl.UnionSet, stmt: str) -> bool:
    found = []
    dom.foreach_set(lambda s: found.append(s.get_tuple_name() == stmt and not s.is_empty()))
    return any(found)


def _affine(upa: isl.UnionPwAff, stmt: str, n: int) -> tuple[tuple[int, ...], int]:
    """The coefficients and constant of ``upa`` on statement ``stmt`` (its
    first piece: isl's scheduler gives one affine function per statement)."""
    pieces: list[isl.Aff] = []

    def on_pa(pa: isl.PwAff) -> None:
        if pa.get_domain_space().get_tuple_name(isl.dim_type.set) == stmt:
            pa.foreach_piece(lambda _s, aff: pieces.append(aff))

    upa.foreach_pw_aff(on_pa)
    if not pieces:
        return (0,) * n, 0
    aff = pieces[0]
    coeffs = tuple(aff.get_coefficient_val(isl.dim_type.in_, k).to_python() for k in range(n))
    return coeffs, aff.get_constant_val().to_python()


def _text(coeffs: tuple[int, ...], const: int, names: tuple[str, ...]) -> str:
    terms = [(f"{c}*{v}" if abs(c) != 1 else ("-" if c < 0 else "") + v)
             for c, v in zip(coeffs, names) if c]
    text = " + ".join(terms).replace("+ -", "- ") or "0"
    return text if not const else f"{text} {'+' if const > 0 else '-'} {abs(const)}"
