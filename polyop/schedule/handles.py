"""Loop handles of a ``Schedule``, the record kept per loop, and the checks of
the integers primitives take (factors, offsets)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ScheduleError
from ..kinds import LoopKind

if TYPE_CHECKING:
    from .schedule import Schedule


@dataclass(frozen=True)
class LoopInfo:
    """What a ``Schedule`` records per loop (keyed by its mark id); a value:
    a change is a new record (``dataclasses.replace``) in a new state."""

    name: str
    kind: LoopKind = LoopKind.SERIAL
    reduction: str | None = None  # "atomic": reductions may run across iterations
    strip: int | None = None  # runs 0 .. strip-1: a split's inner loop, a cache panel
    coalesced: bool = False  # two nested loops run as one (fuse with a symbolic extent)


class Loop:
    """A handle on one loop (band member) of a ``Schedule``: the loop's id
    (``L<k>``, deterministic) and the schedule it came from. A schedule accepts
    the handles of the schedules it was forked from or forked into."""

    def __init__(self, schedule: Schedule, ident: str):
        self._schedule, self.id = schedule, ident

    @property
    def name(self) -> str:
        return self._schedule._loops[self.id].name

    @property
    def depth(self) -> int:
        return self._schedule._depth(self)

    def __repr__(self) -> str:
        sch = self._schedule
        if self.id not in sch._loops or self.id in sch._gone:
            why = sch._gone.get(self.id, "removed")
            return f"Loop({sch._loops[self.id].name if self.id in sch._loops else self.id}, " \
                f"stale: {why})"
        try:
            return f"Loop({self.name}, depth={self.depth})"
        except ScheduleError:  # no longer in the tree (e.g. after inline)
            return f"Loop({self.name}, not in the schedule)"

    def __eq__(self, other) -> bool:
        return isinstance(other, Loop) and other.id == self.id and \
            other._schedule._lineage is self._schedule._lineage

    def __hash__(self) -> int:
        return hash(self.id)


#: the largest factor or offset a primitive takes: loop bounds and subscripts
#: are 64-bit integers, and a factor past 2**31 only means "no split"
_LIMIT = 2**31


def _integer(v, what: str) -> int:
    """``v`` as a Python ``int`` (numpy integers accepted; ``bool``, floats and
    values past ``2**31`` refused with a ``ScheduleError`` naming ``what``)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ScheduleError(f"{what} must be an integer, got {v!r} ({type(v).__name__})")
    if abs(int(v)) > _LIMIT:
        raise ScheduleError(f"{what} {int(v)} is out of range (at most 2**31 in magnitude)")
    return int(v)


def _positive(v, what: str) -> int:
    v = _integer(v, what)
    if v <= 0:
        raise ScheduleError(f"{what} must be a positive integer, got {v}")
    return v
