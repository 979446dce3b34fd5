"""A brute-force dependence oracle, independent of isl.

polyop computes dependences symbolically: isl access relations, isl's textual
schedule and ``compute_flow`` (``polyop.deps``). This module gets the same
facts the slow, obvious way, to check them: it runs the kernel's plain Python
function (``kernel.py_func``) under CPython at concrete sizes, records every
array access together with the statement instance that performed it, and
enumerates every ordered pair of conflicting accesses. Nothing here uses isl
for the oracle side; the ``isl_*`` helpers turn polyop's symbolic results into
the same explicit form so that the two can be compared with ``==``.

How the recording works. The function's source is re-parsed and rewritten
(line numbers kept) so that

- every assignment (``Assign``, ``AugAssign``, ``AnnAssign``) is bracketed by
  calls that open and close an *event*: the statement's name and the current
  values of its enclosing loop iterators (outermost first);
- array arguments are replaced by recording proxies whose ``__getitem__`` and
  ``__setitem__`` log ``(array, index)`` into the open event;
- local scalars (names assigned without a subscript that are not arguments),
  and 0-d array arguments, are turned into 0-d recording cells: ``s`` becomes
  ``cell_s[()]`` for reads and writes alike, so a local scalar ``s`` shows up
  as the element ``("s", ())``, as in polyop's model (``s[]``).

Statements are named ``S0, S1, ...`` in textual order (a pre-order walk of the
body: a loop's body in order; an ``if``'s body, then its ``else``/``elif``),
which is how polyop's parser numbers them. When the kernel has a model
(``kernel.program``) the numbering is cross-checked against it: every
statement's source line and loop iterators must agree, else ``OracleError``.
Nothing else of the model is used by the oracle.

Semantics of a statement's reads. polyop models a statement as reading every
element its right-hand side names, but where an affine test rules it out:
``a if c else b`` reads ``a`` where ``c`` may hold and ``b`` where it may
not, ``and``/``or`` read an operand unless an affine one before it decides,
with "may" judged by the test's affine part (a test on data may go either
way); chained comparisons evaluate every operand. The recorder does the same
by default (``eager=True``): the arms and operands CPython would skip are
still evaluated unless an affine test (on loop iterators and ``int``
arguments) rules them out (an exception raised there is swallowed; the
result is CPython's). ``eager=False`` records exactly what CPython
evaluates. For ``A[i] += e`` the reads are ``A[i]`` and those of ``e``,
then the write; the order of accesses inside one instance never matters since
pairs of an instance with itself are not dependences. A read whose index is out
of the array's bounds (possible in an eagerly evaluated arm) is recorded as
written, with its raw index, and yields 0; an out-of-bounds write raises.

Dependence pairs (``oracle_dependences``), per array, for every element and
every ordered pair of distinct instances ``e1`` before ``e2`` in execution
order touching it: RAW when ``e1`` writes and ``e2`` reads it, WAR when ``e1``
reads and ``e2`` writes it, WAW when both write it. These are memory-based
dependences with no killing, which is what ``polyop.dependences`` promises.

Data types: an *instance* is ``(statement name, iterator values)``, e.g.
``("S1", (2, 0))``; a *pair* is ``(source instance, sink instance)``; a
dependence table is ``dict[(kind, array), set[pair]]`` holding only non-empty
entries (kind is ``"RAW"``, ``"WAR"`` or ``"WAW"``).

Example::

    import numpy as np
    import polyop
    from tests.oracle import oracle_dependences, isl_dependences_at, diff_dependences

    @polyop.kernel
    def prefix(n: int, A: "f64[n]"):
        for i in range(1, n):
            A[i] += A[i - 1]

    args = {"n": 4, "A": np.ones(4)}
    got = oracle_dependences(prefix, args)
    # {("RAW", "A"): {(("S0", (1,)), ("S0", (2,))), (("S0", (2,)), ("S0", (3,)))}}
    assert got == isl_dependences_at(prefix, {"n": 4})
    # or, with a readable report of missing/extra pairs on failure:
    assert not diff_dependences(got, isl_dependences_at(prefix, {"n": 4}))

Reuse for schedule legality: given a new schedule, every pair ``(src, dst)``
of ``oracle_dependences`` must keep ``src`` before ``dst``. ``run_recorded``
also gives the instances actually executed, in order (``Event.instance``).

The cost is one Python call per access plus, per element, one set insertion
per conflicting pair: fine for up to a few hundred thousand pairs. Keep sizes
small (a local scalar updated in a loop nest conflicts with itself in every
pair of instances, so its pairs grow with the square of the instance count).
"""

from __future__ import annotations

import ast
import copy
import inspect
import operator
import re
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import islpy as isl
import numpy as np

KINDS = ("RAW", "WAR", "WAW")

Instance = tuple[str, tuple[int, ...]]
Element = tuple[str, tuple[int, ...]]
Pair = tuple[Instance, Instance]
DepTable = dict[tuple[str, str], set[Pair]]

_REC = "_oracle_rec_"          # hidden parameter of the rewritten function
_CELL = "_oracle_cell_"        # prefix of the 0-d cells standing for local scalars


class OracleError(Exception):
    """The kernel cannot be recorded, or its numbering disagrees with the model."""


# -- events --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One executed assignment: which instance, what it read and wrote.

    ``reads`` and ``writes`` are sets of elements ``(array, index tuple)``; a
    local scalar ``s`` is the element ``("s", ())``.
    """

    stmt: str
    iters: tuple[int, ...]
    reads: frozenset[Element]
    writes: frozenset[Element]

    @property
    def instance(self) -> Instance:
        return (self.stmt, self.iters)


class _Recorder:
    """Collects events; the rewritten function calls ``begin``/``end`` around
    each assignment, the proxies call ``read``/``write`` in between."""

    def __init__(self):
        self.events: list[Event] = []
        self._open: tuple[str, tuple[int, ...], set, set] | None = None

    def begin(self, stmt: str, iters: tuple) -> None:
        if self._open is not None:
            raise OracleError(f"statement {stmt} starts inside {self._open[0]}")
        self._open = (stmt, tuple(operator.index(v) for v in iters), set(), set())

    def end(self) -> None:
        stmt, iters, reads, writes = self._open
        self.events.append(Event(stmt, iters, frozenset(reads), frozenset(writes)))
        self._open = None

    def cell(self, name: str) -> _Cell:
        """A fresh 0-d cell for the local scalar ``name``."""
        return _Cell(name, self)

    def _log(self, which: int, array: str, key: tuple[int, ...]) -> None:
        if self._open is None:
            raise OracleError(f"access to {array}{list(key)} outside any assignment "
                              "(in a loop bound or an if condition?)")
        self._open[which].add((array, key))

    def read(self, array: str, key: tuple[int, ...]) -> None:
        self._log(2, array, key)

    def write(self, array: str, key: tuple[int, ...]) -> None:
        self._log(3, array, key)

    # eager evaluation helpers (see the module docstring) ---------------------------
    @staticmethod
    def select(cond, then: Callable, other: Callable, then_ok=None, other_ok=None):
        """``then() if cond else other()``, the other arm evaluated too unless
        its ``*_ok()`` (the affine part of the test) rules it out."""
        taken, skipped, ok = (then, other, other_ok) if cond else (other, then, then_ok)
        value = taken()
        if ok is None or ok():
            try:
                skipped()
            except Exception:  # noqa: BLE001 - CPython would not evaluate it at all
                pass
        return value

    @staticmethod
    def boolop(is_and: bool, oks: tuple, *operands: Callable):
        """``and``/``or`` evaluating every operand, but for those after one
        whose affine part ``oks[k]()`` decides."""
        result, decided = None, False
        for f, ok in zip(operands, oks, strict=True):
            if decided:
                try:
                    f()
                except Exception:  # noqa: BLE001 - short-circuited in CPython
                    pass
            else:
                result = f()
                if bool(result) != is_and:   # 'and' stops at a falsy, 'or' at a truthy value
                    decided = True
            if ok is not None and not ok():
                break
        return result

    @staticmethod
    def compare(ops: tuple[Callable, ...], *operands: Callable):
        left = operands[0]()
        result, decided = True, False
        for op, f in zip(ops, operands[1:]):
            if decided:
                try:
                    f()
                except Exception:  # noqa: BLE001 - short-circuited in CPython
                    pass
                continue
            right = f()
            result = op(left, right)
            if not result:
                decided = True
            left = right
        return result


def _key(index) -> tuple[int, ...]:
    index = index if isinstance(index, tuple) else (index,)
    return tuple(operator.index(v) for v in index)


class _RecordingArray:
    """Stands for a numpy array argument; logs every element access."""

    __slots__ = ("_name", "_data", "_rec")

    def __init__(self, name: str, data: np.ndarray, rec: _Recorder):
        self._name, self._data, self._rec = name, data, rec

    def _inside(self, key: tuple[int, ...]) -> bool:
        shape = self._data.shape
        return len(key) == len(shape) and all(0 <= k < s for k, s in zip(key, shape))

    def __getitem__(self, index):
        key = _key(index)
        self._rec.read(self._name, key)
        if not self._inside(key):
            if len(key) != self._data.ndim:
                raise OracleError(f"{self._name}{list(key)}: {self._data.ndim} subscripts "
                                  "expected")
            return self._data.dtype.type(0)
        return self._data[key]

    def __setitem__(self, index, value) -> None:
        key = _key(index)
        self._rec.write(self._name, key)
        if not self._inside(key):
            raise OracleError(f"write to {self._name}{list(key)} out of bounds "
                              f"(shape {self._data.shape})")
        self._data[key] = value


class _Cell:
    """A local scalar (or a 0-d array argument) as a 0-d recorded element."""

    __slots__ = ("_name", "_value", "_rec")
    _UNSET = object()

    def __init__(self, name: str, rec: _Recorder, value=_UNSET):
        self._name, self._rec, self._value = name, rec, value

    def __getitem__(self, index):
        self._rec.read(self._name, ())
        if self._value is _Cell._UNSET:
            raise OracleError(f"local scalar {self._name!r} read before it is assigned")
        return self._value

    def __setitem__(self, index, value) -> None:
        self._rec.write(self._name, ())
        self._value = value


class _ArrayCell(_Cell):
    """A 0-d numpy array argument: reads and writes go to the array."""

    __slots__ = ("_array",)

    def __init__(self, name: str, rec: _Recorder, array: np.ndarray):
        super().__init__(name, rec)
        self._array = array

    def __getitem__(self, index):
        self._rec.read(self._name, ())
        return self._array[()]

    def __setitem__(self, index, value) -> None:
        self._rec.write(self._name, ())
        self._array[()] = value


# -- the rewrite ----------------------------------------------------------------------------
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
        ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
        ast.Is: operator.is_, ast.IsNot: operator.is_not,
        ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}


@dataclass(frozen=True)
class StatementInfo:
    """Where the oracle found a statement: its name, line and loop iterators."""

    name: str
    line: int
    iterators: tuple[str, ...]


def _rec_attr(attr: str) -> ast.expr:
    return ast.Attribute(ast.Name(_REC, ast.Load()), attr, ast.Load())


def _thunk(expr: ast.expr) -> ast.expr:
    return ast.Lambda(ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                    kw_defaults=[], kwarg=None, defaults=[]), expr)


def _affine_like(node: ast.AST, names: set[str]) -> bool:
    """A test on loop iterators and integer size arguments only (``i > 0``,
    ``j % 2 == 0``, ``i < n and j >= 1``): no subscript, no other name, no
    call but ``min``/``max``, no float, no product of two names."""
    for x in ast.walk(node):
        if isinstance(x, ast.Subscript | ast.Attribute | ast.Lambda | ast.IfExp):
            return False
        if isinstance(x, ast.Name) and x.id not in names | {"min", "max"}:
            return False
        if isinstance(x, ast.Call) and not (isinstance(x.func, ast.Name)
                                            and x.func.id in ("min", "max")):
            return False
        if isinstance(x, ast.Constant) and not isinstance(x.value, int):
            return False
        if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult | ast.Pow) and not (
                isinstance(x.left, ast.Constant) or isinstance(x.right, ast.Constant)):
            return False
    return True


def _possible(test: ast.expr, holds: bool, names: set[str]) -> ast.expr | None:
    """An expression that is false only where ``test`` certainly is not
    ``holds`` by its affine part (polyop's guards of a read), or ``None``."""
    if _affine_like(test, names):
        t = copy.deepcopy(test)
        return t if holds else ast.UnaryOp(ast.Not(), t)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) == holds:
        parts = [p for v in test.values if (p := _possible(v, holds, names)) is not None]
        if parts:
            return parts[0] if len(parts) == 1 else ast.BoolOp(ast.And(), parts)
    return None


class _ExprRewriter(ast.NodeTransformer):
    """Local scalars → cells; optionally eager ``if``-expressions and boolean ops
    (but for the arms and operands an affine test rules out)."""

    def __init__(self, cells: set[str], iterators: tuple[str, ...], eager: bool,
                 int_args: frozenset[str] = frozenset()):
        self.cells = cells - set(iterators)
        self.eager = eager
        self.names = (set(iterators) | set(int_args)) - self.cells

    def _ok(self, test: ast.expr, holds: bool) -> ast.expr:
        p = _possible(test, holds, self.names)
        return ast.Constant(None) if p is None else _thunk(p)

    def visit_Name(self, node: ast.Name):
        if node.id not in self.cells:
            return node
        ctx = ast.Store() if isinstance(node.ctx, ast.Store) else ast.Load()
        return ast.Subscript(ast.Name(_CELL + node.id, ast.Load()),
                             ast.Tuple([], ast.Load()), ctx)

    def visit_IfExp(self, node: ast.IfExp):
        oks = [self._ok(node.test, True), self._ok(node.test, False)]
        self.generic_visit(node)
        if not self.eager:
            return node
        return ast.Call(_rec_attr("select"),
                        [node.test, _thunk(node.body), _thunk(node.orelse), *oks], [])

    def visit_BoolOp(self, node: ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        oks = ast.Tuple([self._ok(v, is_and) for v in node.values], ast.Load())
        self.generic_visit(node)
        if not self.eager:
            return node
        return ast.Call(_rec_attr("boolop"),
                        [ast.Constant(is_and), oks, *map(_thunk, node.values)], [])

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        if not self.eager or len(node.ops) < 2:
            return node
        ops = [self._cmp_fn(op) for op in node.ops]
        return ast.Call(_rec_attr("compare"),
                        [ast.Tuple(ops, ast.Load()),
                         *map(_thunk, [node.left, *node.comparators])], [])

    @staticmethod
    def _cmp_fn(op: ast.cmpop) -> ast.expr:
        name = type(op).__name__
        return ast.Subscript(ast.Name("_oracle_cmp_", ast.Load()), ast.Constant(name),
                             ast.Load())


class _Rewriter:
    """Rewrites a kernel's body (see the module docstring); fills ``statements``."""

    def __init__(self, cells: set[str], eager: bool, int_args: frozenset[str] = frozenset()):
        self.cells, self.eager, self.int_args = cells, eager, int_args
        self.statements: list[StatementInfo] = []

    def block(self, body: list[ast.stmt], iters: tuple[str, ...]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for node in body:
            if isinstance(node, ast.For):
                if node.orelse or not isinstance(node.target, ast.Name):
                    raise OracleError(f"line {node.lineno}: unsupported for loop")
                var = node.target.id
                node.body = self.block(node.body, iters + (var,)) or [ast.Pass()]
                out.append(node)
            elif isinstance(node, ast.If):
                node.body = self.block(node.body, iters) or [ast.Pass()]
                node.orelse = self.block(node.orelse, iters)
                out.append(node)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                out += self.assignment(node, iters)
            elif isinstance(node, ast.Pass):
                continue
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # docstring
            elif isinstance(node, ast.Return) and node.value is None:
                out.append(node)
            elif isinstance(node, ast.Assert):
                out.append(node)  # an assumption on the sizes: checked, no accesses
            else:
                raise OracleError(f"line {node.lineno}: unsupported statement "
                                  f"{type(node).__name__}")
        return out

    def assignment(self, node: ast.stmt, iters: tuple[str, ...]) -> list[ast.stmt]:
        name = f"S{len(self.statements)}"
        self.statements.append(StatementInfo(name, node.lineno, iters))
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                raise OracleError(f"line {node.lineno}: declaration without a value")
            node = ast.copy_location(ast.Assign([node.target], node.value), node)
        node = _ExprRewriter(self.cells, iters, self.eager, self.int_args).visit(node)
        it = ast.Tuple([ast.Name(v, ast.Load()) for v in iters], ast.Load())
        begin = ast.Expr(ast.Call(_rec_attr("begin"), [ast.Constant(name), it], []))
        end = ast.Expr(ast.Call(_rec_attr("end"), [], []))
        for n in (begin, end):
            ast.copy_location(n, node)
            ast.fix_missing_locations(n)
        return [begin, node, end]


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for node in ast.walk(ast.Module(body, [])):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            continue
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@dataclass
class Rewritten:
    """The recording version of a kernel function (see ``rewrite``)."""

    fn: Callable
    arg_names: tuple[str, ...]
    locals: tuple[str, ...]
    statements: tuple[StatementInfo, ...]


def rewrite(fn: Callable, cell_args: Iterable[str] = (), eager: bool = True) -> Rewritten:
    """Compile the recording version of the plain function ``fn``.

    ``cell_args`` names the 0-d array arguments (accessed without subscript).
    The result's ``fn`` takes the original arguments plus the recorder.
    """
    fn = inspect.unwrap(fn)
    lines, first = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    fdef = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    ast.increment_lineno(tree, first - 1)
    args = fdef.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise OracleError("kernel arguments must be plain positional arguments")
    arg_names = tuple(a.arg for a in args.args)
    local_names = tuple(sorted(_assigned_names(fdef.body) - set(arg_names)))
    cells = set(local_names) | set(cell_args)
    int_args = frozenset(a.arg for a in args.args
                         if isinstance(a.annotation, ast.Name) and a.annotation.id == "int")
    rw = _Rewriter(cells, eager, int_args)
    body = rw.block(fdef.body, ())
    prologue = [ast.parse(f"{_CELL}{v} = {_REC}.cell({v!r})").body[0] for v in local_names]
    prologue += [ast.parse(f"{_CELL}{v} = {v}").body[0] for v in sorted(cell_args)]
    for n in prologue:
        ast.copy_location(n, fdef)
        for sub in ast.walk(n):
            ast.copy_location(sub, fdef)
    fdef.body = prologue + body or [ast.Pass()]
    fdef.decorator_list = []
    fdef.returns = None
    for a in args.args:
        a.annotation = None
    args.args.append(ast.arg(_REC))
    ast.fix_missing_locations(tree)
    module = ast.Module([fdef], type_ignores=[])
    code = compile(module, inspect.getsourcefile(fn) or "<kernel>", "exec")
    namespace = dict(fn.__globals__)
    namespace.update(inspect.getclosurevars(fn).nonlocals)
    namespace["_oracle_cmp_"] = {k.__name__: v for k, v in _CMP.items()}
    exec(code, namespace)  # noqa: S102 - the kernel's own source, rewritten
    return Rewritten(namespace[fdef.name], arg_names, local_names, tuple(rw.statements))


def check_numbering(kernel, statements: Iterable[StatementInfo]) -> None:
    """Raise ``OracleError`` unless the oracle's statements are the model's:
    same names, source lines and loop iterators (``kernel.program``)."""
    program = getattr(kernel, "program", kernel)
    mine = [(s.name, s.line, s.iterators) for s in statements]
    theirs = [(s.name, s.line, tuple(s.iterators)) for s in program.statements]
    if mine != theirs:
        raise OracleError("statement numbering differs from the model:\n"
                          f"  oracle: {mine}\n  model:  {theirs}")


def run_recorded(kernel, args: Mapping[str, object], *, eager: bool = True,
                 check: bool = True, copy_args: bool = True) -> list[Event]:
    """Run ``kernel``'s Python function on ``args`` and return its events.

    ``kernel`` is a ``polyop.Kernel`` (or a plain function); ``args`` maps
    every argument name to its value (sizes as ints, arrays as numpy arrays).
    The arrays are copied first and ``args`` is left untouched, unless
    ``copy_args`` is false: then the run updates them in place, exactly as
    ``kernel.py_func(**args)`` would. Events come in
    execution order, one per executed assignment. With ``check`` (and a
    kernel that has ``.program``) the statement numbering is verified
    against the model first. Raises ``OracleError`` if an instance executes
    twice (it would not be a well-defined statement instance).
    """
    fn = getattr(kernel, "py_func", kernel)
    cell_args = {k for k, v in args.items() if isinstance(v, np.ndarray) and v.ndim == 0}
    rw = rewrite(fn, cell_args, eager)
    if check and hasattr(kernel, "program"):
        check_numbering(kernel, rw.statements)
    missing = set(rw.arg_names) - set(args)
    if missing:
        raise OracleError(f"missing arguments: {', '.join(sorted(missing))}")
    rec = _Recorder()
    call = {}
    for name in rw.arg_names:
        v = args[name]
        if isinstance(v, np.ndarray):
            data = v.copy() if copy_args else v
            call[name] = (_ArrayCell(name, rec, data) if data.ndim == 0
                          else _RecordingArray(name, data, rec))
        else:
            call[name] = copy.deepcopy(v) if copy_args else v
    with np.errstate(all="ignore"):
        rw.fn(**call, **{_REC: rec})
    seen: set[Instance] = set()
    for e in rec.events:
        if e.instance in seen:
            raise OracleError(f"instance {e.instance} executed twice")
        seen.add(e.instance)
    return rec.events


# -- brute-force dependences ---------------------------------------------------------------
def dependences_of_events(events: Iterable[Event]) -> DepTable:
    """Every RAW/WAR/WAW pair of distinct instances in ``events`` (in order)."""
    writers: dict[Element, list[Instance]] = defaultdict(list)
    readers: dict[Element, list[Instance]] = defaultdict(list)
    out: DepTable = defaultdict(set)
    for e in events:
        me = e.instance
        for elem in e.reads:
            prev = writers.get(elem)
            if prev:
                out[("RAW", elem[0])].update((w, me) for w in prev if w != me)
        for elem in e.writes:
            prev = readers.get(elem)
            if prev:
                out[("WAR", elem[0])].update((r, me) for r in prev if r != me)
            prev = writers.get(elem)
            if prev:
                out[("WAW", elem[0])].update((w, me) for w in prev if w != me)
        for elem in e.reads:
            readers[elem].append(me)
        for elem in e.writes:
            writers[elem].append(me)
    return {k: v for k, v in out.items() if v}


def oracle_dependences(kernel, args: Mapping[str, object], *, eager: bool = True) -> DepTable:
    """Brute-force dependences of ``kernel`` run on ``args`` (see the module
    docstring): ``{(kind, array): {(src instance, dst instance), ...}}``."""
    return dependences_of_events(run_recorded(kernel, args, eager=eager))


def nearest_dependences(events: Iterable[Event]) -> DepTable:
    """Per sink, per element it accesses and per kind, only the pair from the
    latest earlier instance that accessed that element as the kind's source
    (the last writer before a read or a write, the last reader before a
    write), run in the order of ``events``."""
    last_writer: dict[Element, Instance] = {}
    last_reader: dict[Element, Instance] = {}
    out: DepTable = defaultdict(set)
    for e in events:
        me = e.instance
        for elem in e.reads:
            if elem in last_writer:
                out[("RAW", elem[0])].add((last_writer[elem], me))
        for elem in e.writes:
            if elem in last_reader:
                out[("WAR", elem[0])].add((last_reader[elem], me))
            if elem in last_writer:
                out[("WAW", elem[0])].add((last_writer[elem], me))
        # after the checks: an instance is never its own source
        last_reader.update((elem, me) for elem in e.reads)
        last_writer.update((elem, me) for elem in e.writes)
    return dict(out)


def oracle_instances(events: Iterable[Event]) -> set[Instance]:
    """The executed statement instances."""
    return {e.instance for e in events}


def oracle_accesses(events: Iterable[Event]) -> dict[str, set[tuple[Instance, Element]]]:
    """``{"reads": {(instance, element)}, "writes": ...}`` of the events."""
    out: dict[str, set] = {"reads": set(), "writes": set()}
    for e in events:
        out["reads"].update((e.instance, x) for x in e.reads)
        out["writes"].update((e.instance, x) for x in e.writes)
    return out


# -- polyop's (isl's) side, made explicit ----------------------------------------------------
def _program(kernel):
    return getattr(kernel, "program", kernel)


def _params_set(program, param_values: Mapping[str, int]) -> isl.Set:
    names = list(program.params)
    missing = set(names) - set(param_values)
    if missing:
        raise OracleError(f"missing size parameters: {', '.join(sorted(missing))}")
    cond = " and ".join(f"{p} = {int(param_values[p])}" for p in names)
    return isl.Set(f"[{', '.join(names)}] -> {{ : {cond} }}" if names else "{ : }")


_INT = re.compile(r"-?\d+")


def _tuple_points(obj: isl.Set | isl.Map) -> list:
    """The points of a set, or the pairs of a map, whose parameters are fixed:
    ``(name, coords)`` per set point, ``((name, coords), (name, coords))`` per
    map pair. Raises ``OracleError`` if it is not bounded."""
    obj = obj.project_out(isl.dim_type.param, 0, obj.dim(isl.dim_type.param))
    if isinstance(obj, isl.Map):
        n_in = obj.dim(isl.dim_type.in_)
        src, dst = obj.get_tuple_name(isl.dim_type.in_), obj.get_tuple_name(isl.dim_type.out)
        s = obj.reset_tuple_id(isl.dim_type.in_).reset_tuple_id(isl.dim_type.out).wrap()
    else:
        n_in, src, dst = None, obj.get_tuple_name(), None
        s = obj.reset_tuple_id()
    if not s.is_bounded():
        raise OracleError(f"unbounded at these parameters: {obj}")
    # printing a point and reading its integers back is about twice as fast as
    # asking isl for each coordinate (no tuple names or parameters are left)
    text: list[str] = []
    s.foreach_point(lambda p: text.append(str(p)))
    coords = [tuple(map(int, _INT.findall(t))) for t in text]
    if n_in is None:
        return [(src, c) for c in coords]
    return [((src, c[:n_in]), (dst, c[n_in:])) for c in coords]


def _maps(umap: isl.UnionMap) -> list[isl.Map]:
    maps: list[isl.Map] = []
    umap.foreach_map(maps.append)
    return maps


def isl_dependences_at(kernel, param_values: Mapping[str, int]) -> DepTable:
    """``polyop.dependences(kernel)`` at concrete size parameters, as explicit
    pairs in the oracle's format (``param_values`` maps every size parameter
    of the kernel to an int; extra keys are ignored)."""
    import polyop

    program = _program(kernel)
    params = _params_set(program, param_values)
    deps = polyop.dependences(program)
    out: DepTable = {}
    for kind, array, rel in deps.items():
        pairs = set()
        for m in _maps(rel.intersect_params(params)):
            pairs.update(_tuple_points(m))
        if pairs:
            out[(kind, array)] = pairs
    return out


def isl_instances_at(kernel, param_values: Mapping[str, int]) -> set[Instance]:
    """The instances of every statement domain at concrete size parameters."""
    program = _program(kernel)
    params = _params_set(program, param_values)
    out: set[Instance] = set()
    for s in program.statements:
        out.update(_tuple_points(s.domain.intersect_params(params)))
    return out


def isl_accesses_at(kernel, param_values: Mapping[str, int]
                    ) -> dict[str, set[tuple[Instance, Element]]]:
    """The access relations at concrete size parameters, in the format of
    ``oracle_accesses``."""
    program = _program(kernel)
    params = _params_set(program, param_values)
    out: dict[str, set] = {"reads": set(), "writes": set()}
    for s in program.statements:
        for kind in ("reads", "writes"):
            for a in getattr(s, kind):
                out[kind].update(_tuple_points(a.relation.intersect_params(params)))
    return out


# -- comparison ------------------------------------------------------------------------------
def _fmt_instance(inst: Instance) -> str:
    return f"{inst[0]}[{', '.join(map(str, inst[1]))}]"


def _fmt(item) -> str:
    a, b = item
    if isinstance(b, tuple) and len(b) == 2 and isinstance(b[0], str) and isinstance(a, tuple) \
            and len(a) == 2 and isinstance(a[0], str):
        return f"{_fmt_instance(a)} -> {_fmt_instance(b)}"
    return str(item)


def diff_sets(expected: set, actual: set, what: str, limit: int = 5) -> str:
    """'' when equal; else a report with up to ``limit`` missing and extra items
    (``expected`` is the oracle, ``actual`` is polyop)."""
    if expected == actual:
        return ""
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    lines = [f"{what}: oracle has {len(expected)}, polyop has {len(actual)}"]
    if missing:
        lines.append(f"  missing in polyop ({len(missing)}): "
                     + "; ".join(_fmt(x) for x in missing[:limit]))
    if extra:
        lines.append(f"  extra in polyop ({len(extra)}): "
                     + "; ".join(_fmt(x) for x in extra[:limit]))
    return "\n".join(lines)


def diff_dependences(expected: DepTable, actual: DepTable, limit: int = 5) -> str:
    """'' when the two dependence tables are equal; else a readable report, per
    (kind, array), of pairs the oracle (``expected``) has and polyop
    (``actual``) lacks, and the other way round."""
    parts = []
    for key in sorted(set(expected) | set(actual)):
        d = diff_sets(expected.get(key, set()), actual.get(key, set()),
                      f"{key[0]} on {key[1]}", limit)
        if d:
            parts.append(d)
    return "\n".join(parts)
