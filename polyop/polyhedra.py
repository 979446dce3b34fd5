"""Loop IR ↔ isl: instance sets of the accesses under a loop nest.

Loop IR is affine where it matters (loop bounds, guards and subscripts built
by isl's AST generator); this module turns the loops and guards around a
node into isl constraints, so that promotion (``polyop.promotion``:
footprints, on CPU and GPU) and the GPU's safety proof (``polyop_cuda.proof``:
races, bounds) can ask isl exact questions about the instances of an access.
Conditions that are not quasi-affine (data-dependent guards) are dropped: the
instance set then over-approximates, which keeps a footprint large enough and
a proof sound.

Variables keep their loop IR names inside isl only after renaming (``Names``),
since names such as ``min`` or ``and`` are isl keywords.

Example::

    >>> from polyop import ir
    >>> loop = ir.For("i", ir.Const(0), ir.Var("n"), 2, ir.Block(()))
    >>> names = Names(["n"], ["i"])
    >>> print(" and ".join(loop_constraints(loop, names)))
    0 <= v0 and v0 < p0 and (v0 - 0) mod 2 = 0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import islpy as isl

from polyop import ir
from polyop.isl_ir import (
    NotAnIndexError,
    constant_bound,
    isl_text,
    params_set_to_ir,
    pw_aff_to_ir,
)
from polyop.types import INDEX

#: an expression outside isl's quasi-affine language (``polyop.isl_ir``'s error)
NotAffine = NotAnIndexError


class Names:
    """isl names for loop IR variables: parameters ``p<k>``, variables ``v<k>``."""

    def __init__(self, params: Sequence[str], variables: Sequence[str] = ()):
        self.params = {p: f"p{k}" for k, p in enumerate(params)}
        self.vars = {v: f"v{k}" for k, v in enumerate(variables)}
        self.all = {**self.params, **self.vars}

    def add(self, variables: Iterable[str]) -> Names:
        """These names with more variables."""
        return Names(list(self.params), list(self.vars) + [v for v in variables
                                                           if v not in self.all])

    def text(self, e: ir.Expr) -> str:
        """``e`` in isl syntax (``NotAffine`` if it is not quasi-affine)."""
        return isl_text(e, self.all)

    @property
    def param_list(self) -> str:
        return ", ".join(self.params.values())

    def back(self, e: ir.Expr) -> ir.Expr:
        """An expression printed by isl over these names, in loop IR names."""
        rev = {v: ir.Var(k, INDEX) for k, v in self.all.items()}
        return ir.substitute(e, rev)


def loop_constraints(loop: ir.For, names: Names) -> list[str]:
    """The values ``loop.var`` takes (every loop kind: a bound loop's thread
    runs ``start + step * idx`` when it is below ``stop``)."""
    v = names.all[loop.var]
    start, stop = names.text(loop.start), names.text(loop.stop)
    out = [f"{start} <= {v}", f"{v} < {stop}"]
    if loop.step != 1:
        out.append(f"({v} - {start}) mod {loop.step} = 0")
    return out


def path_constraints(loops: Iterable[ir.For], conds: Iterable[ir.Expr], names: Names) -> list[str]:
    """Constraints of enclosing ``loops`` and guards ``conds``; a guard that is
    not quasi-affine is left out (the set grows: see the module docstring)."""
    out = [c for lp in loops for c in loop_constraints(lp, names)]
    for c in conds:
        try:
            text = names.text(c)
            isl.Set(f"[{names.param_list}] -> {{ [{', '.join(names.vars.values())}] : {text} }}")
        except (NotAffine, isl.Error):  # outside isl's language: leave it out
            continue
        out.append(text)
    return out


def exists(variables: Sequence[str], cons: Sequence[str]) -> str:
    """``cons`` with ``variables`` existentially quantified, in isl syntax."""
    body = " and ".join(cons) or "true"
    return f"exists ({', '.join(variables)} : {body})" if variables else body


def largest(s: isl.Set) -> int | None:
    """The largest value of the one dimension of ``s`` (a set without
    parameters), ``None`` when ``s`` is empty or unbounded above (isl's
    ``dim_max`` raises on an unbounded set: asked only of bounded ones).

    >>> bounded, unbounded = "{ [t] : exists (n : 0 <= t < n <= 8) }", "{ [t] : t >= 0 }"
    >>> largest(isl.Set(bounded)), largest(isl.Set(unbounded))
    (7, None)
    """
    if s.is_empty() or not s.is_bounded():
        return None
    best = constant_bound(s.dim_max(0), "max")
    return int(best.to_python()) if best is not None and best.is_int() else None


def pw_to_ir(pa: isl.PwAff, names: Names) -> ir.Expr:
    """A piecewise quasi-affine function of the parameters ``names.params`` as
    one index expression (``polyop.isl_ir.pw_aff_to_ir``) in the original names."""
    return names.back(pw_aff_to_ir(pa))


def set_to_ir(s: isl.Set, names: Names) -> ir.Expr:
    """A parameter-only set as a loop IR condition in the original names.

    Through ``polyop.isl_ir.params_set_to_ir`` rather than its ``set_to_ir``:
    the sets here (a footprint's written elements) may have existentially
    quantified variables (a strided access).
    """
    return names.back(params_set_to_ir(s))
