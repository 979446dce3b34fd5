"""Automatic scheduling: ``auto_schedule(kernel, target)`` → a ``polyop.Schedule``.

The pipeline (one module each):

- ``isl_sched``: isl's Pluto-style scheduler on the program's exact
  dependences: which loops form permutable (tileable) bands, which are
  coincident (parallel);
- ``model``: footprint and cache traffic of a band as sympy expressions of
  its tile sizes, minimised under the target's cache;
- ``heuristic``: fission, loop order, tiles, a transposed copy
  (``layouts``), a register tile (``registers``), vectorize, parallel,
  unroll per nest, each a named ``Knob`` applied through the
  legality-checked primitives;
- ``explain``: the record of every decision (``sch.explanation``).

The result is an ordinary schedule: ``print(sch)`` lists the primitives,
``sch.explanation`` why each was chosen, and it can be edited further.
``auto_knobs`` returns the decisions as knobs (candidates and chosen value),
so a tuner can call ``auto_schedule(k, target, knobs={name: value})``.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             for k in range(n):
    ...                 C[i, j] += A[i, k] * B[k, j]
    >>> sch = polyop.auto_schedule(mm, "cpu -mcpu=haswell -num-cores=2", sizes={"n": 300})
    >>> print(sch)
    schedule of mm:
      reorder(i, k, j)
      split(i, 30)
      split(k, 16)
      reorder(i_outer, k_outer, i_inner, k_inner, j)
      split(i_inner, 3)
      split(j, 12)
      reorder(i_inner_outer, j_outer, k_inner, i_inner_inner, j_inner)
      unroll(i_inner_inner)
      cache_write(C, scope='local', at=j_outer) -> C_local
      vectorize(j_inner)
      parallel(i_outer)
    >>> sch.explanation.knob("S0:order").chosen
    ('i', 'k', 'j')

(``i``'s tiles of 30, not the model's 32: ten even tiles for two cores; in
each, register tiles of 3 rows × 3 vectors of ``C``, which divide the tile.)
"""

from __future__ import annotations

from typing import Any

from ..errors import ScheduleError
from ..program import as_program
from ..schedule import Schedule
from ..target import Target, as_target
from .explain import Explanation
from .gpu import schedule_gpu
from .heuristic import schedule_nests
from .isl_sched import isl_schedule
from .knobs import Context, Knob

__all__ = ["Explanation", "Knob", "auto_knobs", "auto_schedule"]


def auto_schedule(kernel, target: Target | str = "cpu", knobs: dict[str, Any] | None = None,
                  sizes: dict[str, int] | None = None) -> Schedule:
    """A legality-checked schedule of ``kernel`` chosen for ``target``.

    ``sizes`` (size parameter → value) are what the cost model assumes when
    it compares loop orders and tile sizes (default: every parameter 512);
    the schedule itself works for all sizes. ``knobs`` overrides decisions by
    name (``auto_knobs`` lists them). The returned ``Schedule`` carries
    ``explanation``: every decision and why.
    """
    program = as_program(kernel)
    tgt = as_target(target)
    if sizes is not None:
        unknown = sorted(set(sizes) - set(program.params))
        if unknown:
            raise ScheduleError(f"auto_schedule({program.name}): unknown size parameter(s) "
                                f"{', '.join(unknown)} (parameters: "
                                f"{', '.join(program.params) or 'none'})")
    overrides = dict(knobs or {})
    sch = Schedule(kernel)
    info = isl_schedule(program)
    ctx = Context(sch, tgt, dict(sizes or {}), info, overrides)
    if tgt.is_gpu:  # blocks, threads and shared memory (polyop.autoschedule.gpu)
        schedule_gpu(ctx)
    else:
        schedule_nests(ctx)
    unused = sorted(set(overrides) - ctx.used)
    if unused:
        raise ScheduleError(f"auto_schedule({program.name}): no decision is called "
                            f"{', '.join(map(repr, unused))} (knobs: "
                            f"{', '.join(k.name for k in ctx.knobs) or 'none'})")
    if tgt.is_gpu:
        g = tgt.gpu
        facts = {"max_threads_per_block": g.max_threads_per_block, "warp_size": g.warp_size,
                 "shared_memory_per_block": g.shared_memory_per_block}
    else:
        facts = {"vector_bits": tgt.vector_bits, "vector_registers": tgt.vector_registers,
                 "L1d": tgt.l1d, "L2": tgt.l2, "L3": tgt.l3, "cores": tgt.cores}
    sch.explanation = Explanation(program.name, str(tgt), facts, dict(sizes or {}), info,
                                  ctx.knobs)
    return sch


def auto_knobs(kernel, target: Target | str = "cpu", sizes: dict[str, int] | None = None,
               knobs: dict[str, Any] | None = None) -> list[Knob]:
    """The decisions ``auto_schedule`` makes for ``kernel`` (with ``knobs``
    overridden), as knobs: name, candidate values, chosen value, why."""
    return auto_schedule(kernel, target, knobs, sizes).explanation.knobs
