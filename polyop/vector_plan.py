"""What a ``vector`` loop of the loop IR becomes: its lanes, the kind of each
memory access, or why it stays a scalar loop.

Code generation (``polyop.codegen.vector``) and the printer (``polyop.lower``)
both read this plan, so the printed loop nest shows what the machine runs.

A loop ``for (v = start; v < stop; v += s)`` marked ``vector`` runs ``lanes``
iterations at once: lane ``l`` of a vector iteration at ``v`` is the scalar
iteration ``v + l * s``. ``lanes`` is the vector width of the target divided by
the narrowest element type the loop reads or writes per lane (a 256-bit
target: 8 lanes for ``f32``, 4 for ``f64``). Each access ``A[f]`` is

- ``uniform``: no subscript depends on ``v``: one scalar access, broadcast;
- ``contiguous``: only the last subscript depends on ``v``, as ``c * v + ...``
  with ``c * s == 1``: one vector load or store;
- ``strided``: likewise with ``c * s`` from 2 to ``MAX_STRIDE``: a load is
  that many vector loads, none past the last element the lanes read, picked
  apart by shuffles; a store, the lanes shuffled into place and stored under
  constant masks (the elements between are not touched);
- ``gather``: anything else (a larger stride, ``v`` in an outer dimension, ``v // 2``):
  one scalar access per lane, the last resort.

A body that cannot run lane-wise with exactly the scalar loop's results stays
scalar (``VectorPlan.reason`` says why): a nested loop, an ``if`` whose
condition depends on ``v``, a store to a location the same for every ``v`` (a
reduction), an atomic update, a micro-kernel call, a math call or operator
with no exact vector form (integer ``//`` and ``%`` have one: they never
trap, ``polyop.codegen.llvm_expr``), a
conditional (``a if c else b``, ``and``/``or``) with a side that must not be
evaluated and cannot be masked (``maskable``: a side that only reads memory
is computed with its loads masked to the lanes that take it, so that a
padded border, ``x[i - 1] if i >= 1 else 0``, reads nothing outside ``x``),
a local scalar read before it is written. The schedule has already proven the
loop carries no dependence, so running the lanes of one statement before the
next statement is the same computation as the scalar loop, element by element.

Example::

    >>> from polyop.ir import For, Store, Load, Var, Const, Bin
    >>> from polyop.types import f32
    >>> j = Var("j")
    >>> body = Store("y", (j,), Bin("mul", Load("x", (j,), f32), Load("a", (Const(0),), f32), f32))
    >>> plan = plan_vector_loop(For("j", Const(0), Var("n"), 1, body, "vector"), 256)
    >>> plan.lanes, plan.reason, plan.access((j,)), plan.access((Const(0),))
    (8, None, 'contiguous', 'uniform')
"""

from __future__ import annotations

from dataclasses import dataclass

from .exprtext import expr_to_c
from .ir import (
    Bin,
    Block,
    Call,
    Cast,
    Const,
    Expr,
    Extern,
    For,
    If,
    Load,
    Logic,
    Neg,
    Select,
    Store,
    Var,
    speculatable,
    walk,
)
from .types import DType

#: math calls with an exact vector form (correctly rounded, lane by lane)
VECTOR_CALLS = ("sqrt", "abs")
#: a vector loop with a constant trip count of at most this many vectors is
#: emitted straight-line (no loop), so a register tile's accesses have
#: constant offsets whatever LLVM's unroller decides
MAX_STRAIGHT_VECTORS = 8

#: the largest stride (in elements) of a ``strided`` load: read as that many
#: vectors and picked apart in registers; larger strides are gathered
MAX_STRIDE = 4
#: ``VectorPlan.pieces``' count of a tail vector: one vector of that width,
#: run when at least that many iterations remain, else none
IF_ROOM = -1


@dataclass(frozen=True)
class VectorISA:
    """The vector unit code is generated for: register width in bits and
    whether it has fused multiply-add (what code generation needs of a
    ``polyop.Target``).

    Example::

        >>> VectorISA(256).lanes(DType("f64"))
        4
    """

    bits: int
    fma: bool = True

    def lanes(self, dtype: DType) -> int:
        """Elements of ``dtype`` per vector register."""
        return max(1, self.bits // dtype.bits)


def isa_of(spec=None) -> VectorISA:
    """The ``VectorISA`` of ``spec``: ``None`` (the host), a ``VectorISA``, a
    width in bits (with FMA), a ``polyop.Target`` or its string.

    Example::

        >>> isa_of(512)
        VectorISA(bits=512, fma=True)
        >>> isa_of("cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2")
        VectorISA(bits=128, fma=True)
    """
    if isinstance(spec, VectorISA):
        return spec
    if isinstance(spec, int):
        return VectorISA(spec, True)
    from .target import as_target

    target = as_target(spec)
    return VectorISA(target.vector_bits, target.has_fma)


def isa_of_meta(meta: dict) -> VectorISA:
    """The ``VectorISA`` a lowered function is generated for: its
    ``meta["vector_isa"]`` or ``meta["target"]``, else the host's."""
    return isa_of(meta.get("vector_isa") or meta.get("target"))


def coefficient(e: Expr, var: str) -> int | None:
    """The constant ``c`` with ``e == c * var + (terms without var)``, or
    ``None`` when ``e`` is not of that form (``var // 2``, ``var * n``).

    Example::

        >>> coefficient(Bin("add", Bin("mul", Const(3), Var("j"), Var("j").dtype), Var("i"),
        ...                 Var("i").dtype), "j")
        3
    """
    if not mentions(e, var):
        return 0
    if isinstance(e, Var):
        return 1
    if isinstance(e, Neg):
        c = coefficient(e.a, var)
        return None if c is None else -c
    if isinstance(e, Cast) and not e.dtype.is_float and not e.a.dtype.is_float:
        return coefficient(e.a, var)
    if isinstance(e, Bin) and e.op in ("add", "sub"):
        a, b = coefficient(e.a, var), coefficient(e.b, var)
        if a is None or b is None:
            return None
        return a + b if e.op == "add" else a - b
    if isinstance(e, Bin) and e.op == "mul":
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if isinstance(x, Const) and not isinstance(x.value, float):
                c = coefficient(y, var)
                return None if c is None else int(x.value) * c
    return None


def mentions(e, var: str) -> bool:
    """True when ``var`` occurs in ``e``."""
    return any(isinstance(x, Var) and x.name == var for x in walk(e))


def linear(e: Expr, opaque: bool = False) -> dict[str, int] | None:
    """``e`` as ``{name: coefficient, "": constant}`` when affine, else ``None``;
    with ``opaque``, a non-affine integer term (``(p % 4)``, ``n // 4``) counts
    as a variable of its own, keyed by its text: equal terms cancel.

    Example::

        >>> i = Var("i")
        >>> linear(Bin("sub", Bin("mul", Const(16), i, i.dtype), Const(3), i.dtype))
        {'i': 16, '': -3}
    """
    if isinstance(e, Const):
        return None if isinstance(e.value, float) else {"": int(e.value)}
    if isinstance(e, Var):
        return {e.name: 1}
    if isinstance(e, Neg):
        a = linear(e.a, opaque)
        return None if a is None else {k: -v for k, v in a.items()}
    if isinstance(e, Bin) and e.op in ("add", "sub"):
        a, b = linear(e.a, opaque), linear(e.b, opaque)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "add" else -1
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + sign * v
        return out
    if isinstance(e, Bin) and e.op == "mul":
        a, b = linear(e.a, opaque), linear(e.b, opaque)
        for x, y in ((a, b), (b, a)):
            if x is not None and y is not None and set(x) <= {""}:
                return {k: v * x.get("", 0) for k, v in y.items()}
    dtype = getattr(e, "dtype", None)
    if opaque and dtype is not None and dtype.name.startswith("i"):
        return {f"@{e!r}": 1}
    return None


def constant_trip_count(loop: For) -> int | None:
    """The trip count of ``loop`` when it is the same at every execution
    (``stop - start`` constant, as in ``for (j = 16 * jo; j < 16 * jo + 16; ...)``).

    Example::

        >>> i = Var("i")
        >>> constant_trip_count(For("j", i, Bin("add", i, Const(10), i.dtype), 4, Block(())))
        3
        >>> r = Bin("mul", Const(14), Bin("mod", Var("p"), Const(4), i.dtype), i.dtype)
        >>> constant_trip_count(For("w", r, Bin("add", r, Const(14), i.dtype), 1, Block(())))
        14
    """
    # the bounds are evaluated once per execution of the loop: a term that
    # occurs in both has one value there, whatever it is
    span = constant_difference(loop.start, loop.stop, opaque=True)
    return None if span is None else max(0, -(-span // loop.step))


def constant_difference(a: Expr, b: Expr, opaque: bool = False) -> int | None:
    """``b - a`` when both are affine (``linear``, with ``opaque`` as there)
    and it is a constant, else ``None``.

    Example::

        >>> i = Var("i")
        >>> constant_difference(i, Bin("add", i, Const(3), i.dtype))
        3
        >>> constant_difference(i, Const(3)) is None
        True
    """
    la, lb = linear(a, opaque), linear(b, opaque)
    if la is None or lb is None:
        return None
    diff = dict(lb)
    for k, v in la.items():
        diff[k] = diff.get(k, 0) - v
    return None if any(v for k, v in diff.items() if k) else diff.get("", 0)


@dataclass(frozen=True)
class VectorPlan:
    """How one ``vector`` loop is emitted (module docstring). ``reason`` is
    ``None`` when it is vectorised, else why it stays scalar; ``private``: the
    local scalars (0-d temporaries) each lane keeps in a register; ``trip``:
    the constant trip count, if any; ``bound``: at most that many iterations
    (``For.max_trip``: a strip), if known."""

    var: str
    step: int
    lanes: int
    reason: str | None = None
    private: frozenset[str] = frozenset()
    trip: int | None = None
    bound: int | None = None

    @property
    def vectorised(self) -> bool:
        return self.reason is None

    def pieces(self) -> list[tuple[int, int | None]]:
        """What the loop is emitted as, in order: ``(width, count)`` is
        ``count`` vector iterations of ``width`` lanes (``None``: as many as
        fit, a loop; ``IF_ROOM``: one vector if that many iterations remain),
        width 1 being the scalar epilogue. What is left after whole vectors
        runs in halving widths (16, then 8, 4, 2) before any scalar
        iteration: decided here for a constant trip count, at run time
        otherwise, so that at most one iteration is scalar. That matters for
        short rows on wide vectors: heat-3d's rows of 38 doubles are 4
        vectors of 8 and 6 scalar iterations without the tail vectors, and
        4 + 1 + 1 vectors (of 8, 4 and 2) with them. A loop of at most
        ``bound`` iterations (the partial strip of a split by 8, on 16 lanes)
        gets no vector wider than that, and no loop of vectors where one
        vector of each width is all it can run.

        Example::

            >>> VectorPlan("j", 1, 16, trip=29).pieces()
            [(16, 1), (8, 1), (4, 1), (1, 1)]
            >>> VectorPlan("j", 1, 8).pieces()
            [(8, None), (4, -1), (2, -1), (1, None)]
            >>> VectorPlan("j", 1, 16, bound=8).pieces()
            [(8, -1), (4, -1), (2, -1), (1, None)]
        """
        if self.trip is None:
            widths, width = [], self.lanes
            while width >= 2:
                if self.bound is None or width <= self.bound:
                    widths.append(width)
                width //= 2
            if not widths:
                return [(1, None)]
            once = self.bound is not None and self.bound < 2 * widths[0]
            return [(widths[0], IF_ROOM if once else None),
                    *((w, IF_ROOM) for w in widths[1:]), (1, None)]
        out: list[tuple[int, int | None]] = []
        if self.trip >= self.lanes:
            out.append((self.lanes, self.trip // self.lanes))
        rest, width = self.trip % self.lanes, self.lanes // 2
        while width >= 2:
            if rest >= width:
                out.append((width, 1))
                rest -= width
            width //= 2
        if rest:
            out.append((1, rest))
        return out

    def varying(self, e) -> bool:
        """True when ``e`` may differ between the lanes."""
        return any((isinstance(x, Var) and x.name == self.var)
                   or (isinstance(x, Load) and not x.index and x.array in self.private)
                   for x in walk(e))

    def access(self, index: tuple) -> str:
        """``uniform``, ``contiguous``, ``strided`` or ``gather`` for an access
        ``A[index]`` (a 0-d temporary, ``index == ()``, is uniform unless
        private)."""
        if not any(mentions(x, self.var) for x in index):
            return "uniform"
        stride = self.stride(index)
        if stride == 1:
            return "contiguous"
        return "strided" if stride is not None and 2 <= stride <= MAX_STRIDE else "gather"

    def stride(self, index: tuple) -> int | None:
        """Elements between the accesses of two neighbouring lanes, when only
        the last subscript varies, by a constant; else ``None``."""
        if any(mentions(x, self.var) for x in index[:-1]):
            return None
        c = coefficient(index[-1], self.var)
        return c * self.step if c is not None else None


def plan_vector_loop(loop: For, isa=None, temps: frozenset[str] = frozenset(),
                     dtypes: dict[str, DType] | None = None) -> VectorPlan:
    """The ``VectorPlan`` of ``loop`` (a ``For`` of kind ``vector``) for vector
    unit ``isa`` (anything ``isa_of`` takes); ``temps`` names the 0-d
    temporaries, ``dtypes`` gives the element type of the arrays (default: the
    type of the values loaded and stored).

    Example::

        >>> from polyop.ir import For, Store, Load, Var, Const, Bin
        >>> from polyop.types import f64
        >>> j = Var("j")
        >>> red = Store("s", (Const(0),), Bin("add", Load("s", (Const(0),), f64),
        ...                                   Load("x", (j,), f64), f64))
        >>> plan_vector_loop(For("j", Const(0), Var("n"), 1, red, "vector"), 256).reason
        'the store to s[0] is the same element in every iteration of j (a reduction)'
    """
    isa = isa_of(isa)
    checker = _Checker(loop.var, temps, dtypes or {})
    reason = checker.check_top(loop.body)
    bits = [dt.bits for dt in checker.dtypes] or [64]
    lanes = isa.bits // min(bits)
    if reason is None and lanes < 2:
        reason = f"a {isa.bits}-bit vector holds one element"
    return VectorPlan(loop.var, loop.step, lanes, reason, frozenset(checker.private),
                      constant_trip_count(loop), loop.max_trip)


class _Checker:
    """Walks a vector loop's body: collects the element types accessed per
    lane and the private 0-d temporaries; returns the first reason to stay
    scalar."""

    def __init__(self, var: str, temps: frozenset[str], dtypes: dict[str, DType]):
        self.var = var
        self.temps = temps
        self.arrays = dtypes
        self.private: set[str] = set()
        self.written: set[str] = set()
        self.stored: set[str] = set()
        self.dtypes: set[DType] = set()

    def varying(self, e) -> bool:
        return any((isinstance(x, Var) and x.name == self.var)
                   or (isinstance(x, Load) and not x.index and x.array in self.private)
                   for x in walk(e))

    def check_top(self, body) -> str | None:
        stmts = body.stmts if isinstance(body, Block) else (body,)
        self.stored = {s.array for s in walk(body) if isinstance(s, Store) and not s.index}
        # a local scalar is private (one value per lane) when a top-level
        # store gives it a value that varies; that can depend on other ones
        while True:
            before = set(self.private)
            for s in stmts:
                if isinstance(s, Store) and not s.index and self.varying(s.value):
                    self.private.add(s.array)
            if self.private == before:
                break
        for s in stmts:
            why = self.stmt(s, top=True)
            if why:
                return why
        return None

    def stmt(self, s, top: bool = False) -> str | None:
        v = self.var
        if isinstance(s, Block):
            return next((w for w in (self.stmt(x) for x in s.stmts) if w), None)
        if isinstance(s, For):
            return f"loop {s.var} is nested in it"
        if isinstance(s, Extern):
            return f"it calls the micro-kernel {s.name}"
        if isinstance(s, If):
            if self.varying(s.cond):
                return f"the condition of an if depends on {v}"
            return self.expr(s.cond) or self.stmt(s.then) or \
                (self.stmt(s.else_) if s.else_ is not None else None)
        assert isinstance(s, Store), s
        if s.atomic:
            return f"the update of {s.array} is atomic"
        if _is_prefetch(s):
            return f"it prefetches {s.array} at an address that depends on {v}" \
                if self.varying(s.value) else None
        why = self.expr(s.value)
        if why:
            return why
        if not s.index:  # a 0-d temporary
            if s.array not in self.temps:
                return f"it stores to the scalar {s.array}"
            if not top:
                return f"the local scalar {s.array} is written under an if"
            self.written.add(s.array)
            if s.array in self.private:
                self.dtypes.add(self.arrays.get(s.array, s.value.dtype))
            return None
        if not any(mentions(x, v) for x in s.index):
            index = "".join(f"[{expr_to_c(x)}]" for x in s.index)
            return (f"the store to {s.array}{index} is the same element in every "
                    f"iteration of {v} (a reduction)")
        self.dtypes.add(self.arrays.get(s.array, s.value.dtype))
        return next((w for w in (self.expr(x) for x in s.index) if w), None)

    def expr(self, e) -> str | None:
        for x in walk(e):
            if isinstance(x, Load):
                if not x.index and x.array in self.stored and x.array not in self.written:
                    return f"the local scalar {x.array} is read before it is written"
                if x.index and self.varying(x):
                    self.dtypes.add(self.arrays.get(x.array, x.dtype))
            elif not self.varying(x):
                continue
            elif isinstance(x, Bin) and (x.op == "pow" or (x.op in ("fdiv", "mod")
                                                           and x.dtype.is_float)):
                return f"{x.dtype} {_OPS[x.op]} has no vector form here"
            elif isinstance(x, Call) and x.fn not in VECTOR_CALLS:
                return f"{x.fn}() has no vector form"
            elif isinstance(x, Select | Logic) and not all(
                    maskable(y) for y in ((x.a, x.b) if isinstance(x, Select) else (x.b,))):
                return "a conditional expression must not evaluate one of its sides"
        return None


_OPS = {"fdiv": "//", "mod": "%", "pow": "**"}


def maskable(e) -> bool:
    """True when ``e`` can be computed in the lanes of a conditional that take
    it with its loads masked (``polyop.codegen.vector``): no integer
    division, which traps in any lane, and no load whose subscripts load.

    Example::

        >>> from polyop.ir import Load, Var
        >>> from polyop.types import INDEX, f32
        >>> i = Var("i")
        >>> maskable(Load("x", (i,), f32)), maskable(Load("x", (Load("p", (i,), INDEX),), f32))
        (True, False)
    """
    for n in walk(e):
        if isinstance(n, Load) and not all(speculatable(x) for x in n.index):
            return False
        if isinstance(n, Bin) and n.op in ("div", "fdiv", "mod") and not n.dtype.is_float:
            return False
    return True


def _is_prefetch(s: Store) -> bool:
    v = s.value
    return isinstance(v, Call) and v.fn == "prefetch"
