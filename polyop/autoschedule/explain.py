"""The record of ``auto_schedule``'s decisions: ``Explanation``.

``auto_schedule`` attaches one to the schedule it returns
(``sch.explanation``); ``str()`` of it lists the target's facts the model
used, isl's schedule per statement, then every knob: the value chosen, why,
and for tile sizes the sympy formulas of footprint and traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .isl_sched import Member
from .knobs import Knob


@dataclass
class Explanation:
    """What ``auto_schedule`` decided and why (see the module docstring)."""

    kernel: str
    target: str
    facts: dict
    sizes: dict[str, int]
    isl: dict[str, list[Member]]
    knobs: list[Knob] = field(default_factory=list)

    def knob(self, name: str) -> Knob:
        """The knob called ``name`` (``KeyError`` if there is none)."""
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(name)

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.facts.items())
        sizes = ", ".join(f"{k}={v}" for k, v in sorted(self.sizes.items())) or "none"
        lines = [f"auto_schedule of {self.kernel} for {self.target!r}",
                 f"  target: {facts}",
                 f"  sizes assumed by the model: {sizes}",
                 "  isl's schedule (band members per statement; p = permutable band, "
                 "c = coincident):"]
        for s, members in self.isl.items():
            text = ", ".join(f"{m.text}[{'p' if m.permutable else ''}"
                             f"{'c' if m.coincident else ''}]" for m in members)
            lines.append(f"    {s}: {text or '(no loop)'}")
        lines.append("  decisions:")
        lines += [f"    {k}" for k in self.knobs] or ["    (none: no loop nest to transform)"]
        return "\n".join(lines)
