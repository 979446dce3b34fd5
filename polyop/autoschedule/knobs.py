"""The record of ``auto_schedule``'s decisions: a ``Knob`` per decision
(its candidates, the value chosen and why), and the ``Context`` the
heuristic works in (the schedule, the target, the sizes the cost model
assumes, isl's advice, the caller's overrides and the knobs so far).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def scale(n: int, x: "f64[n]"):
    ...     for i in range(n):
    ...         x[i] = 2.0 * x[i]
    >>> sch = polyop.auto_schedule(scale, "cpu -mcpu=znver4 -num-cores=1")
    >>> knob = sch.explanation.knob("S0:vectorize")
    >>> knob.candidates, isinstance(knob, Knob)
    ([False, True], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ScheduleError
from ..target import Target
from .isl_sched import Member


@dataclass
class Knob:
    """One decision: ``candidates`` a tuner may try, the ``chosen`` value
    (the model's, or an override), and ``why`` in words."""

    name: str
    candidates: list
    chosen: Any
    why: str = ""
    applied: bool = True
    formula: str = ""

    def refuse(self, exc: Exception) -> None:
        """Record that a primitive refused this decision (the schedule keeps
        what it had), with the first line of the reason."""
        self.applied = False
        self.why += f" (refused: {str(exc).splitlines()[0]})"

    def __str__(self) -> str:
        state = "" if self.applied else "  [refused by the legality check: kept as it was]"
        text = f"{self.name} = {self.chosen!r}{state}\n      why: {self.why}"
        if self.formula:
            text += f"\n      model: {self.formula}"
        return text


@dataclass
class Context:
    """What the heuristic works with: the schedule, the target, the sizes the
    model assumes, isl's advice, the overrides and the knobs so far."""

    sch: Any
    target: Target
    sizes: dict[str, int]
    isl: dict[str, list[Member]]
    overrides: dict[str, Any]
    knobs: list[Knob] = field(default_factory=list)
    used: set = field(default_factory=set)
    tiling_isl: dict[str, list[Member]] | None = None
    #: statements whose band the caller kept serial (``"<stmt>:parallel": None``)
    serial: set = field(default_factory=set)
    #: statements moved into another band's tiles (scheduled with it)
    placed: set = field(default_factory=set)
    #: statement -> its row loop that a chain's temporaries, expanded, no longer
    #: tie (``expansion.keep_if_rows_freed``)
    rows_freed: dict = field(default_factory=dict)

    def decide(self, name: str, candidates: list, default, why: str, formula: str = "",
               accepts=None) -> Knob:
        """The knob ``name``: the override if there is one (a candidate, or any
        value ``accepts`` takes), else ``default``."""
        if name in self.overrides:
            value = self.overrides[name]
            if value not in candidates and not (accepts is not None and accepts(value)):
                raise ScheduleError(f"auto_schedule: knob {name!r} got {value!r}; its "
                                    f"candidates are {candidates!r}")
            knob = Knob(name, candidates, value, "set by the caller", formula=formula)
            self.used.add(name)
        else:
            knob = Knob(name, candidates, default, why, formula=formula)
        self.knobs.append(knob)
        return knob
