"""The contract of a micro-kernel, and the matcher ``Schedule.tensorize`` uses.

An *intrinsic* (``polyop.intrinsic``) is a hand-written micro-kernel plus its
**contract**: what it computes, written in polyop's own terms — a small
``@polyop.kernel`` (or tensor expression) over arrays of constant shape — and
the calling convention derived from that kernel's signature. This module holds
the contract side, all the schedule needs: ``IntrinsicContract`` (the contract
statement, its operands, the C prototype) and the structural matching of a
kernel statement against it. The implementation side (compiling C, the library
cache, linking, ``verify``, which builds and runs a schedule) is
``polyop.intrinsic``, above the pipeline: it subclasses ``IntrinsicContract``,
so the schedule never imports the code that compiles schedules.

Contract. One statement (for a tensor-expression reduction, its update
``C[i, j] = C[i, j] + ...``; the init stays outside) over a constant iteration
domain; its arrays are *views*: an operand ``A: "f64[4, 16]"`` stands for a
4 × 16 window of some larger array, whose rows may be any distance apart.
``Schedule.tensorize`` replaces a band whose tile (the instances of one
iteration of the loops around it) is a translate of the contract's domain, with
the same computation (body structure, operations, types) on arrays in the same
roles and accesses that move through the real arrays as the contract's move
through the views.

Calling convention (``c_prototype`` prints it). One argument per contract
argument, in signature order:

- an array operand of rank ``m``: a pointer to the view's element ``[0, ..., 0]``
  in the real array, then ``m - 1`` strides (``int64_t``, in elements) of the
  view's dimensions but the last; the view's last dimension is contiguous
  (unit stride) in the real array;
- a scalar: its value (``double``, ``float``, ``int32_t``, ``int64_t``).

Example (the contract of a ``polyop.intrinsic``, matched against a statement)::

    >>> import polyop
    >>> @polyop.kernel
    ... def axpy4(a: "f64", x: "f64[4]", y: "f64[4]"):
    ...     for i in range(4):
    ...         y[i] += a * x[i]
    >>> ax = polyop.intrinsic(axpy4, c_source="void axpy4(double a, const double *x, "
    ...                       "double *y) { for (int i = 0; i < 4; i++) y[i] += a * x[i]; }")
    >>> isinstance(ax, IntrinsicContract), [op.name for op in ax.operands]
    (True, ['a', 'x', 'y'])
    >>> @polyop.kernel
    ... def scaled(n: int, b: "f64[n]", c: "f64[n]"):
    ...     for k in range(n):
    ...         c[k] = c[k] + b[k] * 3.0
    >>> s = scaled.program.statements[0]
    >>> [(b.arrays, b.scalars) for b in ax.bindings(s.body, s.iterators)]
    [({'y': 'c', 'x': 'b'}, {'a': Const(value=3.0, dtype=f64)})]
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence

import islpy as isl

from .. import ir
from ..errors import PolyopError
from ..printer import expr_to_c, to_c
from ..program import Program, Statement, as_program
from ..types import DType

__all__ = ["Binding", "IntrinsicContract", "IntrinsicError", "Operand"]

_C_TYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}


class IntrinsicError(PolyopError):
    """A micro-kernel declaration that cannot work: a contract outside what
    ``tensorize`` supports, a C source that does not compile, LLVM IR that
    does not define the symbol with the contract's calling convention."""


@dataclasses.dataclass(frozen=True)
class Operand:
    """One contract argument: ``kind`` is ``array`` (a view of ``ndim``
    dimensions, ``written`` by the micro-kernel or only read) or ``scalar``."""

    name: str
    kind: str
    dtype: DType
    ndim: int = 0
    written: bool = False


@dataclasses.dataclass(frozen=True)
class Binding:
    """A structural match of a kernel statement's body with the contract's:
    contract array → kernel array, the paired accesses (contract, kernel) in
    body order (the write first), contract scalar → kernel expression."""

    arrays: dict[str, str]
    pairs: tuple[tuple[ir.Load | ir.Store, ir.Load | ir.Store], ...]
    scalars: dict[str, ir.Expr]


class IntrinsicContract(abc.ABC):
    """What a micro-kernel computes and how it is called (see the module
    docstring): the contract's one statement and program, its ``operands``, the
    ``name`` of the intrinsic, ``c_symbol`` (the function the implementation
    defines) and ``symbol`` (the name calls link to). An implementation
    subclasses it and provides ``link_ir`` (``polyop.intrinsic.Intrinsic``)."""

    def __init__(self, contract, *, name: str | None = None, symbol: str | None = None):
        program = as_program(contract)
        self.name: str = name or program.name
        self.statement: Statement = _contract_statement(program, self.name)
        #: the contract as a one-statement program
        self.program: Program = dataclasses.replace(
            program, statements=(self.statement,), meta={},
            schedule=program.schedule.intersect_domain(
                isl.UnionSet.from_set(self.statement.domain)))
        self.operands: tuple[Operand, ...] = _operands(self.program, self.statement, self.name)
        self.c_symbol: str = symbol or self.name
        #: the symbol a call links to (an implementation may make it private to itself)
        self.symbol: str = self.c_symbol

    @property
    def c_prototype(self) -> str:
        """The C declaration the implementation must have."""
        parts = []
        for op in self.operands:
            t = _C_TYPES[op.dtype.name]
            if op.kind == "array":
                parts.append(f"{'' if op.written else 'const '}{t} *{op.name}")
                parts += [f"int64_t {op.name}_stride{d}" for d in range(op.ndim - 1)]
            else:
                parts.append(f"{t} {op.name}")
        return f"void {self.c_symbol}({', '.join(parts)})"

    @abc.abstractmethod
    def link_ir(self, target=None) -> str | None:
        """JIT hook (``ir.Extern.impl``): LLVM IR text defining ``symbol`` to
        link into a kernel's module compiled for ``target``, or ``None`` once
        ``symbol`` is otherwise available to the JIT."""

    # -- matching a kernel statement ------------------------------------------------------
    def bindings(self, body: ir.Store, iterators: Sequence[str]) -> Iterator[Binding]:
        """Every structural match of a kernel statement's ``body`` with the
        contract's (``+`` and ``*`` may have their operands swapped); scalars
        of the contract match expressions that read no array and no iterator
        among ``iterators``; two read-only operands may be one kernel array."""
        scalars = frozenset(op.name for op in self.operands if op.kind == "scalar")
        c_body = self.statement.body
        for arrays, pairs, binds in _match(c_body, body, ((), (), ()), scalars,
                                           frozenset(iterators), c_body.array):
            yield Binding(dict(arrays), pairs, dict(binds))

    def body_mismatch(self, body: ir.Store) -> str:
        """Why ``body`` does not match the contract's body (for error messages)."""
        c_body = self.statement.body
        diff = _first_difference(c_body, body)
        text = f"computes `{_text(body)}` where {self.name}'s contract computes `{_text(c_body)}`"
        if diff is None:
            return text + " (the arrays cannot be given consistent roles)"
        c, k, why = diff
        if c is c_body and k is body:
            return f"{text} ({why})"
        return f"{text}: `{_text(k)}` differs from `{_text(c)}` ({why})"


# -- the contract ----------------------------------------------------------------------------

def _contract_statement(program: Program, name: str) -> Statement:
    stmts = program.statements
    if len(stmts) == 2 and stmts[0].name == f"{stmts[1].name}_init":
        stmt = stmts[1]  # a tensor-expression reduction: its update
    elif len(stmts) == 1:
        stmt = stmts[0]
    else:
        raise IntrinsicError(f"intrinsic {name}: the contract must be one statement "
                             f"(has {', '.join(s.name for s in stmts) or 'none'})")
    if program.params:
        raise IntrinsicError(f"intrinsic {name}: the contract must have constant sizes, but "
                             f"{', '.join(program.params)} are size parameters")
    temps = [a.name for a in program.arrays.values() if a.temporary]
    if temps:
        raise IntrinsicError(f"intrinsic {name}: the contract uses local temporaries "
                             f"({', '.join(temps)}); write it on its arguments only")
    body = stmt.body
    if not isinstance(body, ir.Store) or body.atomic:
        raise IntrinsicError(f"intrinsic {name}: the contract's statement must be a store")
    used = [v.name for v in _values(body) if isinstance(v, ir.Var) and v.name in stmt.iterators]
    if used:
        raise IntrinsicError(f"intrinsic {name}: the contract uses its iterator {used[0]} "
                             "as a value; only array elements and scalars may be values")
    return stmt


def _operands(program: Program, stmt: Statement, name: str) -> tuple[Operand, ...]:
    used = {n.array for n in ir.walk(stmt.body) if isinstance(n, (ir.Load, ir.Store))}
    scalars = {n.name for n in ir.walk(stmt.body) if isinstance(n, ir.Var)}
    out = []
    for a in program.arguments:
        if a.kind == "array":
            arr = program.arrays[a.name]
            if a.name not in used:
                raise IntrinsicError(f"intrinsic {name}: contract argument {a.name} is not "
                                     "used by its statement")
            if not arr.ndim:
                raise IntrinsicError(f"intrinsic {name}: operand {a.name} is 0-d; declare "
                                     f"it as {a.name}: \"{a.dtype}[1]\"")
            out.append(Operand(a.name, "array", a.dtype, arr.ndim, a.name == stmt.body.array))
        elif a.kind == "scalar":
            if a.name not in scalars:
                raise IntrinsicError(f"intrinsic {name}: contract argument {a.name} is not "
                                     "used by its statement")
            out.append(Operand(a.name, "scalar", a.dtype))
        else:
            raise IntrinsicError(f"intrinsic {name}: size argument {a.name}: the contract "
                                 "must have constant sizes")
    return tuple(out)


# -- structural matching of bodies -------------------------------------------------------------

_COMMUTATIVE = ("add", "mul")  # exact in IEEE arithmetic: a + b == b + a


def _children(node) -> list:
    out = []
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, ir._NODE_TYPES):
            out.append(v)
        elif isinstance(v, tuple) and f.name != "index":
            out += [x for x in v if isinstance(x, ir._NODE_TYPES)]
    return out


def _values(node) -> Iterator:
    """The nodes of ``node`` outside subscripts (pre-order)."""
    yield node
    for child in _children(node):
        yield from _values(child)


def _match(c, k, st: tuple, scalars: frozenset, iters: frozenset,
           written: str) -> Iterator[tuple]:
    """Match contract node ``c`` with kernel node ``k``; ``st`` is (array roles,
    access pairs, scalar bindings) so far; yields each extended state.
    ``written`` is the contract's written array."""
    arrays, pairs, binds = st
    if isinstance(c, ir.Var) and c.name in scalars:
        invariant = not any(isinstance(n, ir.Load) or (isinstance(n, ir.Var) and n.name in iters)
                            for n in ir.walk(k))
        bound = dict(binds).get(c.name)
        if c.dtype == k.dtype and invariant and bound in (None, k):
            yield arrays, pairs, binds if bound is not None else binds + ((c.name, k),)
        return
    if type(c) is not type(k):
        return
    if isinstance(c, (ir.Load, ir.Store)):
        roles = dict(arrays)
        if roles.get(c.array, k.array) != k.array:
            return
        # operands may share a kernel array (``x * x``) unless one of them is written
        sharing = [a for a, b in arrays if b == k.array and a != c.array]
        if sharing and written in (c.array, *sharing):
            return
        if isinstance(c, ir.Load) and c.dtype != k.dtype:
            return
        st = (arrays if c.array in roles else arrays + ((c.array, k.array),),
              pairs + ((c, k),), binds)
        if isinstance(c, ir.Load):
            yield st
        elif c.atomic == k.atomic:
            yield from _match(c.value, k.value, st, scalars, iters, written)
        return
    if isinstance(c, (ir.Const, ir.Var)):
        if c == k:
            yield st
        return
    if c.dtype != k.dtype or getattr(c, "op", None) != getattr(k, "op", None) or \
            getattr(c, "fn", None) != getattr(k, "fn", None):
        return
    cs, ks = _children(c), _children(k)
    yield from _match_all(cs, ks, st, scalars, iters, written)
    if isinstance(c, ir.Bin) and c.op in _COMMUTATIVE:
        yield from _match_all(cs, ks[::-1], st, scalars, iters, written)


def _match_all(cs: list, ks: list, st: tuple, scalars, iters, written) -> Iterator[tuple]:
    if len(cs) != len(ks):
        return
    if not cs:
        yield st
        return
    for st2 in _match(cs[0], ks[0], st, scalars, iters, written):
        yield from _match_all(cs[1:], ks[1:], st2, scalars, iters, written)


def _first_difference(c, k) -> tuple[object, object, str] | None:
    """The first pair of nodes (in order, without swapping operands) where the
    kernel's body differs from the contract's, and how."""
    if isinstance(c, ir.Var) and isinstance(k, ir.Var | ir.Const):
        return None  # a scalar: judged with the bindings
    if type(c) is not type(k):
        return c, k, f"{type(k).__name__.lower()} where the contract has " \
                     f"{type(c).__name__.lower()}"
    if isinstance(c, ir.Load):
        return None if c.dtype == k.dtype else (c, k, f"type {k.dtype} vs {c.dtype}")
    if isinstance(c, ir.Store):
        if c.atomic != k.atomic:
            return c, k, "atomic update"
        return _first_difference(c.value, k.value)
    if isinstance(c, ir.Const):
        return None if c == k else (c, k, "a different constant")
    for attr in ("op", "fn"):
        a, b = getattr(c, attr, None), getattr(k, attr, None)
        if a != b:
            return c, k, f"{b} where the contract has {a}"
    if c.dtype != k.dtype:
        return c, k, f"type {k.dtype} where the contract has {c.dtype}"
    cs, ks = _children(c), _children(k)
    if len(cs) != len(ks):
        return c, k, "a different number of operands"
    for a, b in zip(cs, ks):
        d = _first_difference(a, b)
        if d is not None:
            return d
    return None


def _text(node) -> str:
    if isinstance(node, ir.Store):
        return to_c(node).rstrip(";")
    return expr_to_c(node)
