"""Static bounds proof: every access stays inside its array, or the sizes for
which it does are a precondition checked at each call.

For each access relation ``S[i] -> A[f(i)]`` restricted to the statement's
domain, isl computes the accessed elements that fall outside the array's box
``{ A[a] : 0 <= a_k < extent_k }`` under the program's context (parameter
values for which every extent is non-negative, and the kernel's ``assert``
assumptions). Projected onto the size parameters, that is the set ``B`` of
sizes for which the access leaves its array. Then:

- ``B`` empty: the access is proven in bounds for every size.
- ``B`` holds for every large enough size: a ``BoundsError`` at compile
  time, naming the statement, the array and a concrete instance with its
  parameter values, sampled by isl. This is a real bug (``A[i + 1]`` for
  ``i < n`` with ``A: f64[n]``), whatever sizes the caller has in mind.
- otherwise the access leaves its array only in boundary cases
  (``corr[m - 1, m - 1]`` or ``y[0]`` at size 0): the complement of ``B``
  in the context becomes a ``Precondition`` (``m > 0``), returned by
  ``check_bounds`` (computed once per program), shown by ``print(k.program)``
  and ``polyop.lower`` (``// requires: m > 0``) and checked at each call,
  where a violation is an ``ArgumentError`` naming the condition, the
  statement, the access and the size values.

The proof reads the model, so the model does not import it: callers ask
``check_bounds(program)``, and ``str(program)`` reaches it through
``polyop.program.set_bounds_proof``, called when this module is imported.

The rule for "every large enough size", precisely: let ``U`` be the
parameters the context leaves unbounded above (with no ``assert``, every
parameter). The access is an error when for every ``N`` some sizes with each
parameter of ``U`` at least ``N`` lie in ``B``. isl decides it exactly: the
set of such ``N`` (``B`` with ``p >= N`` for ``p`` in ``U``, the parameters
projected out) must be all the integers. Why this rule: the sizes a kernel is
written for are large; a condition that excludes a bounded slice of them (one
size at zero, or below some constant) is a degenerate case a caller can meet
(PolyBench's ``y[0] = -r[0]`` with ``n = 0``) and a call can check cheaply,
while an access that is wrong for all large sizes is wrong for the calls that
matter, and must not wait for a call to be found. With no unbounded
parameter (a kernel without sizes, or one whose asserts bound every size),
every size counts as large: any out-of-bounds size is an error.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def shift(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = A[i + 1]
    >>> check_bounds(shift.program)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyop.errors.BoundsError: S0 (line ...: A[i] = A[i + 1]) reads A[i + 1] out of bounds: ...
    >>> @polyop.kernel
    ... def last(n: int, A: "f64[n]"):
    ...     A[n - 1] = 1.0
    >>> [p.text for p in check_bounds(last.program)]
    ['n > 0']
"""

from __future__ import annotations

import ast
import weakref

import islpy as isl

from .errors import BoundsError
from .frontend.affine import AffineConverter
from .program import Array, Precondition, Program, Statement, set_bounds_proof

# each program's preconditions, by identity (a Program is immutable): the proof
# runs once per program however many stages and calls ask
_PROVEN: weakref.WeakKeyDictionary[Program, tuple[Precondition, ...]] = \
    weakref.WeakKeyDictionary()


def array_box(program: Program, array: Array) -> isl.Set:
    """``{ A[a0, ...] : 0 <= a_k < extent_k }`` over the program's parameters."""
    names = [f"_a{k}" for k in range(array.ndim)]
    space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=names,
                                        params=list(program.params))
    conv = AffineConverter(space, lambda n, m: AssertionError(m))
    box = isl.Set.universe(space)
    for k, extent in enumerate(array.shape):
        a = conv.affs[f"_a{k}"]
        box = box.intersect(a.ge_set(conv.affs[0]))
        box = box.intersect(a.lt_set(conv.pwaff(ast.parse(extent, mode="eval").body)))
    return box.set_tuple_name(array.name)


def check_bounds(program: Program) -> tuple[Precondition, ...]:
    """Raise ``BoundsError`` for the first access that leaves its array for every
    large enough size; return the preconditions of the others: the conditions
    on the sizes that a call must meet (computed once per program)."""
    found = _PROVEN.get(program)
    if found is None:
        found = _PROVEN[program] = _prove(program)
    return found


def _prove(program: Program) -> tuple[Precondition, ...]:
    """The bounds proof of the module docstring: a ``Precondition`` per access
    that leaves its array only for some sizes; ``BoundsError`` for the first
    that leaves it for every large enough size."""
    boxes = {name: array_box(program, a) for name, a in program.arrays.items()}
    context = program.context
    unbounded = [k for k in range(context.dim(isl.dim_type.param))
                 if _reaches_large(context, [k])]
    found = []
    for stmt in program.statements:
        for kind, accesses in (("writes", stmt.writes), ("reads", stmt.reads)):
            for acc in accesses:
                rel = acc.relation.intersect_params(context)
                bad = rel.subtract_range(boxes[acc.array])
                if bad.is_empty():
                    continue
                sizes = bad.params()
                if _reaches_large(sizes, unbounded):
                    raise _error(program, stmt, kind, acc, bad)
                found.append(Precondition(context.subtract(sizes).coalesce(),
                                          _negation_text(sizes, context), stmt.name,
                                          stmt.line, stmt.source, kind, acc.text))
    return tuple(found)


def _reaches_large(sizes: isl.Set, params: list[int]) -> bool:
    """Whether for every ``N`` the parameter set ``sizes`` has a point with each
    parameter of ``params`` (positions) at least ``N`` (all of ``sizes``
    counts when ``params`` is empty: it is then whether ``sizes`` is non-empty)."""
    n = sizes.dim(isl.dim_type.param)
    s = sizes.move_dims(isl.dim_type.set, 0, isl.dim_type.param, 0, n)
    s = s.insert_dims(isl.dim_type.set, n, 1)  # [p_0, ..., p_n-1, N]
    ls = isl.LocalSpace.from_space(s.get_space())
    for k in params:
        c = isl.Constraint.inequality_alloc(ls).set_coefficient_val(
            isl.dim_type.set, k, 1).set_coefficient_val(isl.dim_type.set, n, -1)
        s = s.add_constraint(c)
    large = s.project_out(isl.dim_type.set, 0, n)
    return large.is_equal(isl.Set.universe(large.get_space()))


def _negation_text(bad: isl.Set, context: isl.Set) -> str:
    """Readable text of ``context`` minus ``bad`` (parameter sets): each
    conjunction of ``bad`` negated constraint by constraint, each negation
    simplified within the context (``nx = 0`` becomes ``nx > 0`` when
    ``nx >= 0``), so ``ey[0, j]`` gives ``nx > 0 or ny <= 0 or tmax <= 0``
    rather than isl's disjoint pieces of the complement."""
    universe = isl.Set.universe(bad.get_space())
    parts = []
    for b in bad.gist(context).coalesce().get_basic_sets():
        negated = [_condition_text(universe.subtract(isl.BasicSet.from_constraint(c))
                                   .gist(context).coalesce())
                   for c in b.get_constraints()]
        parts.append(" or ".join(negated) if negated else "false")
    if len(parts) == 1:
        return parts[0]
    return " and ".join(f"({p})" if " or " in p else p for p in parts)


def _condition_text(s: isl.Set) -> str:
    """The constraints of a parameter set as isl writes them (``m > 0``)."""
    if s.is_empty():
        return "false"
    text = str(s)
    body = text[text.index("{") + 1:text.rindex("}")].strip()
    body = body[1:].strip() if body.startswith(":") else body
    return body or "true"


def _error(program: Program, stmt: Statement, kind: str, acc, bad: isl.Map) -> BoundsError:
    negative = _below_zero(program, acc.array, bad)
    point = (negative if negative is not None else bad).wrap().sample_point()
    params = {p: _coord(point, isl.dim_type.param, k) for k, p in enumerate(program.params)}
    n_in = len(stmt.iterators)
    inst = ", ".join(f"{it}={_coord(point, isl.dim_type.set, k)}"
                     for k, it in enumerate(stmt.iterators))
    arr = program.arrays[acc.array]
    elem = ", ".join(str(_coord(point, isl.dim_type.set, n_in + k)) for k in range(arr.ndim))
    sizes = ", ".join(f"{p}={v}" for p, v in params.items())
    shape = ", ".join(arr.shape)
    instance = f"{stmt.name}[{inst}]"
    msg = (f"{stmt.name} (line {stmt.line}: {stmt.source}) {kind} {acc.text} out of bounds: "
           f"instance {instance} accesses {acc.array}[{elem}] but {acc.array} has shape "
           f"[{shape}]" + (f" (with {sizes})" if sizes else ""))
    if negative is not None:  # Python's A[-1] is the last element; here it is outside
        k = next(k for k in range(arr.ndim) if _coord(point, isl.dim_type.set, n_in + k) < 0)
        last = f"{acc.array}[{arr.shape[0]} - 1], not {acc.array}[-1]" if arr.ndim == 1 \
            else f"{arr.shape[k]} - 1, not -1, in dimension {k} of {acc.array}"
        msg += (f"; negative indices do not count from the end in a kernel: write {last}, "
                "for the last element")
    return BoundsError(msg, stmt.name, acc.array, instance)


def _below_zero(program: Program, array: str, bad: isl.Map) -> isl.Map | None:
    """The part of ``bad`` that accesses a negative index, if any."""
    ndim = program.arrays[array].ndim
    names = [f"a{k}" for k in range(ndim)]
    params = ", ".join(program.params)
    neg = isl.Set(f"[{params}] -> {{ {array}[{', '.join(names)}] : "
                  + " or ".join(f"{v} < 0" for v in names) + " }")
    part = bad.intersect_range(neg)
    return None if part.is_empty() else part


def _coord(point: isl.Point, kind: isl.dim_type, pos: int) -> int:
    return point.get_coordinate_val(kind, pos).to_python()


set_bounds_proof(check_bounds)  # str(program) lists the preconditions
