"""Preparing a schedule tree for isl's AST generator.

Two per-band AST options are set here, from the ``Schedule``'s loop records:

- loops marked by ``unroll`` get isl's ``unroll`` loop type, so the generated
  AST has one copy of the body per iteration;
- the inner loop of a ``split`` (or ``tile``) by ``f`` has full strips, where it
  runs exactly ``f`` iterations, and at most one partial strip per outer
  iteration at the end of the range. The full strips are *isolated* (isl's
  ``isolate`` option): isl generates them separately, with the constant bounds
  ``0 <= v < f``, so hot loops carry no ``min``/``max`` and unrolled or
  vectorised strips need no remainder code; only the partial strips keep the
  ``min`` bound.

Example::

    >>> tree = prepare_for_ast(sch.tree, sch._loops)      # doctest: +SKIP
"""

from __future__ import annotations

import islpy as isl

from .tree import find_mark


def prepare_for_ast(tree: isl.Schedule, loops: dict) -> isl.Schedule:
    """``tree`` with the unroll and isolate options of the loops in ``loops``
    (mark id → ``LoopInfo``)."""
    for ident, info in loops.items():
        if info.kind != "unroll" and not info.strip:
            continue
        mark = find_mark(tree.get_root(), ident)
        if mark is None:
            continue
        band = mark.child(0)
        if info.strip:
            band = _isolate_full_strips(band, info.strip)
        if info.kind == "unroll":
            band = band.band_member_set_ast_loop_type(0, isl.ast_loop_type.unroll)
            band = band.band_member_set_isolate_ast_loop_type(0, isl.ast_loop_type.unroll)
        tree = band.get_schedule()
    return tree


def _isolate_full_strips(band: isl.ScheduleNode, factor: int) -> isl.ScheduleNode:
    """Set the ``isolate`` option of a one-member ``band`` to the outer schedule
    points at which the band runs all of ``0 .. factor-1``."""
    domain = band.get_domain()
    outer = band.get_prefix_schedule_union_map().intersect_domain(domain)
    here = band.band_get_partial_schedule_union_map().intersect_domain(domain)
    runs = outer.reverse().apply_range(here)  # outer point -> values the band takes
    if runs.is_empty():
        return band
    runs = isl.Map.from_union_map(runs)
    values = isl.Set.universe(runs.get_space().range())
    values = values.lower_bound_val(isl.dim_type.set, 0, isl.Val(0))
    values = values.upper_bound_val(isl.dim_type.set, 0, isl.Val(factor - 1))
    every = isl.Map.from_domain_and_range(runs.domain(), values)
    full = runs.domain().subtract(every.subtract(runs).domain())
    if full.is_empty():
        return band
    isolate = runs.intersect_domain(full).wrap().set_tuple_name("isolate")
    return band.band_set_ast_build_options(isl.UnionSet.from_set(isolate))
