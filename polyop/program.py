"""The polyhedral model of a kernel: parameters, arrays and statements.

A ``Program`` is what every front-end produces and every later stage consumes.
Each ``Statement`` is exact: its iteration domain is an ``isl.Set`` and its
reads and writes are ``isl.Map`` access relations from statement instances to
array elements. ``Program.schedule`` is the original (textual) execution order
as an isl schedule tree.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def tri(n: int, A: "f64[n, n]"):
    ...     for i in range(n):
    ...         for j in range(i):
    ...             A[i, j] = A[j, i]
    >>> s = tri.program.statements[0]
    >>> print(s.domain)
    [n] -> { S0[i, j] : 0 <= i < n and 0 <= j < i }
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import islpy as isl

from . import ir
from .errors import BoundsError
from .isl_ir import index_relation
from .types import DType


@dataclass(frozen=True)
class Array:
    """An array: a kernel argument, or a ``temporary``: a local scalar (0-d) or a
    local array of constant shape (``acc = np.zeros((6, 16), np.float32)``).

    ``shape`` holds each extent as an isl affine expression over the size
    parameters (``"N + 1"``; integer literals for local arrays); ``extents``
    holds the same as loop-IR expressions.
    """

    name: str
    dtype: DType
    shape: tuple[str, ...]
    extents: tuple[ir.Expr, ...]
    temporary: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass(frozen=True, eq=False)
class Access:
    """One array access of a statement: its access relation and index expressions."""

    array: str
    relation: isl.Map
    index: tuple[ir.Expr, ...]
    text: str

    def __str__(self) -> str:
        return str(self.relation)


@dataclass(frozen=True, eq=False)
class Statement:
    """A statement ``S<k>``: domain, accesses, body and where it came from."""

    name: str
    iterators: tuple[str, ...]
    domain: isl.Set
    reads: tuple[Access, ...]
    writes: tuple[Access, ...]
    body: ir.Store
    line: int
    source: str

    def body_accesses(self, array: str, stores: bool = False) -> dict[tuple, isl.Map]:
        """The access relation of each distinct load (with ``stores``, also
        store) of ``array`` in the body, by its index: the recorded access's
        where its index is the node's (that relation holds only where a
        guard lets the node run), else the node's index over the domain
        (``polyop.isl_ir.index_relation``), for an access recorded without
        its index (``tensorize``'s footprints).
        Raises ``NotAnIndexError`` for an index isl cannot express."""
        kinds = (ir.Load, ir.Store) if stores else (ir.Load,)
        recorded = {a.index: a.relation for a in self.reads + (self.writes if stores else ())
                    if a.array == array}
        out: dict[tuple, isl.Map] = {}
        for n in ir.walk(self.body):
            if isinstance(n, kinds) and n.array == array and n.index not in out:
                rel = recorded.get(n.index)
                out[n.index] = rel if rel is not None else \
                    index_relation(self.domain, self.iterators, array, n.index)
        return out

    def __str__(self) -> str:
        lines = [f"{self.name} (line {self.line}): {self.source}",
                 f"  domain: {self.domain}"]
        lines += [f"  write:  {a}" for a in self.writes]
        lines += [f"  read:   {a}" for a in self.reads]
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class Precondition:
    """A condition on the size parameters under which one access stays inside
    its array, for an access that leaves it only for some (small) sizes, such as
    ``corr[m - 1, m - 1]`` with ``m = 0`` (``polyop.bounds.check_bounds`` finds
    them). It is checked at every call.

    ``condition`` is the exact set of parameter values (isl, within the
    program's context) where the access is in bounds; ``text`` the same,
    simplified for reading (``m > 0``); ``stmt``, ``line``, ``source``,
    ``kind`` (``reads``/``writes``) and ``access`` (``corr[m - 1, m - 1]``)
    name the access.
    """

    condition: isl.Set
    text: str
    stmt: str
    line: int
    source: str
    kind: str
    access: str

    def holds(self, sizes: dict[str, int]) -> bool:
        """Whether the size values ``sizes`` (every parameter) satisfy it.

        Example::

            >>> import islpy as isl
            >>> p = Precondition(isl.Set("[n] -> { : n > 0 }"), "n > 0", "S0", 3,
            ...                  "y[0] = 1.0", "writes", "y[0]")
            >>> p.holds({"n": 2}), p.holds({"n": 0})
            (True, False)
        """
        space = self.condition.get_space()
        point = isl.Set.universe(space)
        for k, name in enumerate(space.get_var_names(isl.dim_type.param)):
            point = point.fix_val(isl.dim_type.param, k, isl.Val(str(sizes[name])))
        return point.is_subset(self.condition)

    def __str__(self) -> str:
        return f"{self.text}  ({self.stmt}, line {self.line}: {self.kind} {self.access})"


@dataclass(frozen=True)
class Argument:
    """A kernel argument in signature order: ``kind`` is size, scalar or array."""

    name: str
    kind: str
    dtype: DType


@dataclass(frozen=True, eq=False)
class Program:
    """A kernel's polyhedral model (see the module docstring)."""

    name: str
    params: tuple[str, ...]
    arguments: tuple[Argument, ...]
    arrays: dict[str, Array]
    statements: tuple[Statement, ...]
    schedule: isl.Schedule
    context: isl.Set
    filename: str = "<unknown>"
    #: top-level ``assert`` conditions on the size parameters (Python source text)
    assumptions: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def domain(self) -> isl.UnionSet:
        """The union of all statement domains."""
        return union_all(isl.UnionSet.from_set(s.domain) for s in self.statements)

    def reads(self, array: str | None = None) -> isl.UnionMap:
        """All read access relations (of one array, if named)."""
        return _accesses(self, "reads", array)

    def writes(self, array: str | None = None) -> isl.UnionMap:
        """All write access relations (of one array, if named)."""
        return _accesses(self, "writes", array)

    def written_arrays(self) -> frozenset[str]:
        """The arrays some statement writes (the only ones a call can change)."""
        return frozenset(a.array for s in self.statements for a in s.writes)

    def statement(self, name: str) -> Statement:
        for s in self.statements:
            if s.name == name:
                return s
        raise KeyError(f"no statement {name!r} in {self.name} "
                       f"(statements: {', '.join(s.name for s in self.statements)})")

    def __str__(self) -> str:
        params = ", ".join(self.params)
        out = [f"program {self.name}  [params: {params}]"]
        out += [f"  assume {a}" for a in self.assumptions]
        out += [f"  requires {p}" for p in self._shown_preconditions()]
        for a in self.arrays.values():
            shape = ", ".join(a.shape)
            kind = "temporary" if a.temporary else "argument"
            out.append(f"  array {a.name}: {a.dtype}[{shape}]  ({kind})")
        out += [str(s) for s in self.statements]
        return "\n".join(out)

    def _shown_preconditions(self) -> tuple[Precondition, ...]:
        if not _bounds_proof:
            return ()
        try:
            return _bounds_proof[0](self)
        except BoundsError:  # reported when the program is compiled; printing still works
            return ()


#: the bounds proof whose preconditions ``str(program)`` lists: ``polyop.bounds``
#: installs ``check_bounds`` here when imported (``polyop`` imports it), so the
#: model, which the proof reads, imports nothing above it (``ir`` and its printer
#: work the same way)
_bounds_proof: list[Callable[[Program], tuple[Precondition, ...]]] = []


def set_bounds_proof(proof: Callable[[Program], tuple[Precondition, ...]]) -> None:
    """Make ``proof`` (``polyop.bounds.check_bounds``) what ``str(program)``
    asks for the preconditions it lists."""
    _bounds_proof[:] = [proof]


def balanced(items: list, combine):
    """``combine`` over ``items`` in order, as a balanced tree of calls: isl
    copies what it combines, so folding one at a time costs n**2 in the number
    of items (statements: 10,000 straight-line ones took minutes) where this
    costs n log n."""
    while len(items) > 1:
        items = [combine(items[k], items[k + 1]) if k + 1 < len(items) else items[k]
                 for k in range(0, len(items), 2)]
    return items[0]


def union_all(items, empty=None):
    """The union of isl union sets or maps (``empty`` when there are none),
    taken as a balanced tree (``balanced``)."""
    items = list(items)
    return balanced(items, lambda a, b: a.union(b)) if items else empty


def _accesses(prog: Program, kind: str, array: str | None) -> isl.UnionMap:
    return union_all((isl.UnionMap.from_map(a.relation) for s in prog.statements
                      for a in getattr(s, kind) if array is None or a.array == array),
                     isl.UnionMap.empty(prog.context.get_space()))


def as_program(obj) -> Program:
    """The ``Program`` of a kernel, a schedule, tensor expressions, or the
    program itself.

    An object that knows its program has a ``program`` attribute (a kernel, a
    ``Schedule``) or implements ``__polyop_program__()`` (a tensor of tensor
    expressions); a list or tuple is lowered together, by the
    ``__polyop_program__(items)`` of its first item that has one. This is how
    the model accepts front-ends it does not import.

    Example::

        >>> import polyop
        >>> n = polyop.var("n")
        >>> A = polyop.placeholder((n,), "float64", name="A")
        >>> B = polyop.compute((n,), lambda i: A[i] + 1.0, name="B")
        >>> [s.name for s in as_program(B).statements]
        ['B']
    """
    if isinstance(obj, Program):
        return obj
    program = getattr(obj, "program", None)  # a Kernel or a Schedule
    if isinstance(program, Program):
        return program
    make = getattr(obj, "__polyop_program__", None)
    if make is not None:
        return make()
    if isinstance(obj, (list, tuple)):
        make = next((x.__polyop_program__ for x in obj if hasattr(x, "__polyop_program__")), None)
        if make is not None:
            return make(obj)
    raise TypeError(f"expected a polyop kernel, Program or tensors, got {type(obj).__name__}")
