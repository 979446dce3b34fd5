"""The small IR shared by statement bodies and generated loop nests.

Expressions (all carry a ``dtype``):

- ``Const``: a numeric literal;
- ``Var``: a loop iterator, a size parameter or a scalar argument;
- ``Load``: an array element read, ``A[i, j]`` (0-d temporaries have ``index=()``);
- ``Bin``: arithmetic ``add sub mul div fdiv mod min max pow`` (``div`` is true
  division, ``fdiv``/``mod`` floor like Python's ``//`` and ``%``);
- ``Cmp`` / ``Logic`` / ``Not``: comparisons and boolean connectives (dtype ``bool``);
- ``Neg``, ``Call`` (``sqrt exp log sin cos tanh abs``), ``Select`` (``a if c else b``),
  ``Cast``.

Loop-nest statements:

- ``Store``: ``A[index] = value``;
- ``For``: ``for (var = start; var < stop; var += step)``; ``kind`` is a
  ``polyop.kinds.LoopKind`` (``serial``, ``parallel``, ``vector`` or ``unroll``;
  a string is turned into the member);
- ``If``, ``Block``;
- ``Extern``: a call of an external micro-kernel for its effect on memory
  (``polyop.Schedule.tensorize``), arrays passed by address.

A ``Function`` is a whole lowered kernel: its parameters, its 0-d temporaries
and the body. All nodes are immutable; passes build new trees (``walk``,
``map_children``; ``find_loop`` and ``map_loop`` find and replace a loop of a
nest by its name or its schedule loop's id).

Example::

    >>> from polyop.ir import Var, Const, Bin, Load, Store
    >>> from polyop.types import f64, i64
    >>> i = Var("i", i64)
    >>> Store("A", (i,), Bin("add", Load("A", (i,), f64), Const(1.0, f64), f64))
    Store(array='A', index=(Var(name='i', dtype=i64),), value=...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from .kinds import LoopKind
from .types import INDEX, DType

BOOL = DType("bool")

ARITH_OPS = ("add", "sub", "mul", "div", "fdiv", "mod", "min", "max", "pow")
CMP_OPS = ("lt", "le", "gt", "ge", "eq", "ne")
MATH_FUNCS = ("sqrt", "exp", "log", "sin", "cos", "tanh", "abs")


@dataclass(frozen=True)
class Const:
    value: int | float
    dtype: DType = INDEX


@dataclass(frozen=True)
class Var:
    name: str
    dtype: DType = INDEX


@dataclass(frozen=True)
class Load:
    array: str
    index: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True)
class Bin:
    op: str
    a: Expr
    b: Expr
    dtype: DType


@dataclass(frozen=True)
class Cmp:
    op: str
    a: Expr
    b: Expr
    dtype: DType = BOOL


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    a: Expr
    b: Expr
    dtype: DType = BOOL


@dataclass(frozen=True)
class Not:
    a: Expr
    dtype: DType = BOOL


@dataclass(frozen=True)
class Neg:
    a: Expr
    dtype: DType


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True)
class Select:
    cond: Expr
    a: Expr
    b: Expr
    dtype: DType


@dataclass(frozen=True)
class Cast:
    a: Expr
    dtype: DType


Expr = Const | Var | Load | Bin | Cmp | Logic | Not | Neg | Call | Select | Cast


#: the C-like printers of statements and functions; ``polyop.printer`` installs
#: them when imported (``polyop`` imports it), so the IR needs no import of its printer
_printers: dict[str, Callable] = {}


def set_printer(statement: Callable[[Stmt], str], function: Callable[[Function], str]) -> None:
    """Make ``statement`` the text of ``str(stmt)`` and ``function`` that of
    ``str(fn)`` (``polyop.printer.to_c`` and ``function_to_c``)."""
    _printers.update(statement=statement, function=function)


class _PrintableStmt:
    def __str__(self) -> str:
        show = _printers.get("statement")
        return show(self) if show is not None else repr(self)


@dataclass(frozen=True)
class Store(_PrintableStmt):
    """``array[index] = value``; with ``atomic`` ("add" or "sub") the store is an
    atomic read-modify-write ``array[index] op= value`` (a parallel reduction)."""

    array: str
    index: tuple[Expr, ...]
    value: Expr
    atomic: str | None = None


@dataclass(frozen=True)
class For(_PrintableStmt):
    var: str
    start: Expr
    stop: Expr
    step: int
    body: Stmt
    kind: LoopKind = LoopKind.SERIAL
    #: the schedule loop (its handle's id) this loop was generated for, if any:
    #: a loop's name may be shared by loops of other nests, its id is not
    loop_id: str | None = field(default=None, compare=False, repr=False)
    #: at most this many iterations, when the schedule knows it (a strip of a
    #: split): vector code then emits no vector wider than that
    max_trip: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, LoopKind):  # text written by hand: "parallel"
            try:
                object.__setattr__(self, "kind", LoopKind(self.kind))
            except ValueError:
                raise ValueError(f"loop {self.var}: unknown kind {self.kind!r} (kinds: "
                                 f"{', '.join(k.value for k in LoopKind)})") from None


@dataclass(frozen=True)
class If(_PrintableStmt):
    cond: Expr
    then: Stmt
    else_: Stmt | None = None


@dataclass(frozen=True)
class Block(_PrintableStmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True)
class Extern(_PrintableStmt):
    """``name(args...)``: a call of the external micro-kernel ``symbol`` for its
    effect on memory (see ``polyop.intrinsic``).

    An argument with ``byref[k]`` true is a ``Load`` passed by address: a
    pointer to that element (``&A[i][j]``); the others are passed by value
    (row strides as ``i64``, scalars in their type). ``impl`` is the object
    that makes ``symbol`` available to the JIT: its ``link_ir()`` returns LLVM
    IR text to link into the kernel's module, or registers the symbol's address
    itself and returns ``None``.
    """

    name: str
    symbol: str
    args: tuple[Expr, ...]
    byref: tuple[bool, ...]
    impl: object = field(default=None, compare=False, hash=False, repr=False)


Stmt = Store | For | If | Block | Extern


@dataclass(frozen=True)
class Param:
    """A kernel parameter: ``kind`` is ``size``, ``scalar`` or ``array``.

    For arrays, ``shape`` holds one expression per dimension over the size
    parameters; element ``A[i, j]`` lives at ``i * shape[1] + j`` (row major).
    """

    name: str
    kind: str
    dtype: DType
    shape: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    temps: tuple[tuple[str, DType], ...]
    body: Stmt
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        show = _printers.get("function")
        return show(self) if show is not None else repr(self)


# -- generic traversal --------------------------------------------------------

_NODE_TYPES = (Const, Var, Load, Bin, Cmp, Logic, Not, Neg, Call, Select, Cast,
               Store, For, If, Block, Extern)


def map_children(node, fn: Callable):
    """Return ``node`` with ``fn`` applied to each direct child node (identity
    preserved when nothing changed, so unchanged subtrees stay shared)."""
    changes = {}
    for f in fields(node):
        v = getattr(node, f.name)
        if isinstance(v, _NODE_TYPES):
            nv = fn(v)
        elif isinstance(v, tuple) and v and isinstance(v[0], _NODE_TYPES):
            nv = tuple(fn(x) for x in v)
            if all(a is b for a, b in zip(nv, v)):
                nv = v
        else:
            continue
        if nv is not v:
            changes[f.name] = nv
    return replace(node, **changes) if changes else node


def substitute(node, env: dict[str, Expr]):
    """Replace every ``Var`` whose name is in ``env`` by its expression."""

    def go(n):
        if isinstance(n, Var):
            return env.get(n.name, n)
        return map_children(n, go)

    return go(node)


def walk(node):
    """Yield ``node`` and every node below it (pre-order)."""
    yield node
    for f in fields(node):
        v = getattr(node, f.name)
        if isinstance(v, _NODE_TYPES):
            yield from walk(v)
        elif isinstance(v, tuple):
            for x in v:
                if isinstance(x, _NODE_TYPES):
                    yield from walk(x)


def reduction_update(store: Store) -> tuple[str, Expr] | None:
    """``("add", e)`` when ``store`` is ``X[f] = X[f] + e`` (or ``e + X[f]``, or
    ``X[f] - e`` as ``"sub"``) with ``e`` not reading ``X`` and computed in
    ``X``'s type, so that it can become an atomic update; else ``None`` (also
    for a statement that is not a ``Store``, such as an ``Extern`` call)."""
    if not isinstance(store, Store):
        return None
    v = store.value
    if not isinstance(v, Bin) or v.op not in ("add", "sub"):
        return None

    def is_target(e: Expr) -> bool:
        return isinstance(e, Load) and e.array == store.array and e.index == store.index

    if is_target(v.a):
        operand = v.b
    elif v.op == "add" and is_target(v.b):
        operand = v.a
    else:
        return None
    if v.dtype != v.a.dtype or any(isinstance(x, Load) and x.array == store.array
                                   for x in walk(operand)):
        return None
    return v.op, operand


def speculatable(e) -> bool:
    """True when evaluating ``e`` can neither trap nor read memory out of
    bounds, so it may be computed even when Python would not evaluate it.

    Example::

        >>> speculatable(Bin("add", Var("i"), Const(1), INDEX))
        True
        >>> speculatable(Load("A", (Var("i"),), INDEX))
        False
    """
    for n in walk(e):
        if isinstance(n, Load) and n.index:
            return False
        if isinstance(n, Bin) and n.op in ("div", "fdiv", "mod") and not n.dtype.is_float:
            return False
    return True


# -- finding and replacing a loop -----------------------------------------------------------

def is_loop(node: For, name: str, ident: str | None = None) -> bool:
    """Whether ``node`` is the loop asked for: the schedule loop ``ident``
    where the loop IR knows which one it is (``For.loop_id``; loops of
    other nests may share a name), else the loop named ``name``."""
    if ident is not None and node.loop_id is not None:
        return node.loop_id == ident
    return node.var == name


def find_loop(node, name, loops=(), conds=(), ident: str | None = None):
    """(the first loop ``name``, the loops and guards around it) or ``None``
    (``ident``: see ``is_loop``)."""
    if isinstance(node, For):
        if is_loop(node, name, ident):
            return node, loops, conds
        return find_loop(node.body, name, loops + (node,), conds, ident)
    if isinstance(node, If):
        return find_loop(node.then, name, loops, conds + (node.cond,), ident) or (
            None if node.else_ is None else find_loop(node.else_, name, loops,
                                                      conds + (Not(node.cond),), ident))
    if isinstance(node, Block):
        for s in node.stmts:
            hit = find_loop(s, name, loops, conds, ident)
            if hit is not None:
                return hit
    return None


def map_loop(node, name: str, fn, loops=(), conds=(), ident: str | None = None):
    """``node`` with every loop ``name`` replaced by ``fn(loop, loops, conds)``
    (the loops and guards around it): isl may generate a loop more than once
    (a full tile and a partial one). ``ident``: see ``is_loop``."""
    if isinstance(node, For):
        if is_loop(node, name, ident):
            return fn(node, loops, conds)
        return replace(node, body=map_loop(node.body, name, fn, loops + (node,), conds, ident))
    if isinstance(node, If):
        return If(node.cond, map_loop(node.then, name, fn, loops, conds + (node.cond,), ident),
                     None if node.else_ is None else
                     map_loop(node.else_, name, fn, loops, conds + (Not(node.cond),), ident))
    if isinstance(node, Block):
        return Block(tuple(map_loop(s, name, fn, loops, conds, ident) for s in node.stmts))
    return node


def replace_loop(node, name: str, new, ident: str | None = None):
    """``node`` with the loop ``name`` (``ident``: see ``is_loop``) replaced by ``new``."""
    return map_loop(node, name, lambda *_: new, ident=ident)
