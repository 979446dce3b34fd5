"""Python loop nest → ``Program``: statements with exact isl domains and accesses.

The parser walks the function body once, keeping the *context*: the loop
iterators in scope and an ``isl.Set`` over them that holds every loop bound
and ``if`` condition met on the way down. Each assignment becomes a statement
``S<k>`` whose iteration domain is that context; its subscripts become access
relations. The nesting (loops and statements in textual order) is kept as a
small tree from which ``schedule.textual_schedule`` builds the isl schedule tree.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, A: "f64[n]"):
    ...     for i in range(1, n, 2):
    ...         A[i] = A[i - 1]
    >>> print(k.program.statements[0].domain)
    [n] -> { S0[i] : (1 + i) mod 2 = 0 and 0 < i < n }
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import islpy as isl

from .. import ir
from ..errors import FrontendError
from ..program import Access, Array, Program, Statement
from ..types import INDEX, DType, parse_annotation
from .affine import AffineConverter
from .definite import check_assigned
from .exprs import ExprConverter, Guards
from .locals import is_local_declaration, is_prefetch, parse_local
from .signature import SignatureParser


@dataclass
class LoopNode:
    """A loop of the textual nest: iterator, depth and what it encloses."""

    var: str
    depth: int
    children: list = field(default_factory=list)
    #: a downward loop (negative step): its schedule runs over ``-var``
    downward: bool = False


_AUG = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}


class KernelParser(SignatureParser):
    """Parse one decorated function; ``parse()`` returns its ``Program``."""

    def __init__(self, fn: Callable, hints: dict[str, tuple[DType, bool]] | None = None):
        self.fn = fn
        #: local scalar -> (type, weak) learnt by an earlier pass (see ``parse_kernel``)
        self.hints = dict(hints or {})
        #: local scalars whose type this pass found to differ from its first guess
        self.retypes: dict[str, tuple[DType, bool]] = {}
        #: local scalars holding only Python numbers so far (weak, NumPy 2)
        self.weak_scalars: set[str] = set()
        #: the typed scalar arguments: f32 and i32 (f64 and i64 ones are what
        #: Python's floats and ints are, weak like iterators and sizes)
        self.scalar_args: set[str] = set()
        self.filename = inspect.getsourcefile(fn) or "<unknown>"
        try:
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError):
            raise FrontendError(f"the source of {fn.__name__} is not available: define "
                                "kernels in a file or a notebook cell",
                                self.filename) from None
        self.source = textwrap.dedent("".join(lines))
        # split once: ast.get_source_segment splits the whole source per call,
        # which made parsing quadratic in the number of statements
        self.lines = self.source.splitlines(keepends=True)
        self.line_offset = first - 1
        if fn.__name__ == "<lambda>":
            raise FrontendError("a lambda cannot be a kernel: define the kernel with def "
                                "(its loops and assignments are statements)",
                                self.filename, first)
        try:
            mod = ast.parse(self.source)
        except SyntaxError:
            mod = ast.Module([], [])
        self.tree = next((n for n in mod.body if isinstance(n, ast.FunctionDef)), None)
        if self.tree is None:
            raise FrontendError(f"{fn.__name__} is not a function defined with def at the top "
                                "of its source: define kernels with def", self.filename, first)
        self.globals = {**fn.__globals__, **inspect.getclosurevars(fn).nonlocals}
        self.arrays: dict[str, Array] = {}
        #: array name -> (dtype, ndim), kept with ``arrays`` for the expression converter
        self.kinds: dict[str, tuple[DType, int]] = {}
        self.values: dict[str, ir.Expr] = {}
        self.statements: list[Statement] = []
        #: statement name -> its AST node (for errors found on the whole model)
        self.nodes: dict[str, ast.AST] = {}
        self.assumptions: list[str] = []

    # -- errors and name resolution ----------------------------------------------------
    def error(self, node: ast.AST, msg: str) -> FrontendError:
        line = getattr(node, "lineno", 1) + self.line_offset
        return FrontendError(msg, self.filename, line, getattr(node, "col_offset", 0) + 1)

    def _segment(self, node: ast.AST) -> str:
        """The source text of ``node`` (its AST unparsed if it has no position)."""
        end = getattr(node, "end_lineno", None)
        if end is None or node.end_col_offset is None:
            return ast.unparse(node)
        # col offsets count UTF-8 bytes
        first = self.lines[node.lineno - 1].encode()
        if node.lineno == end:
            return first[node.col_offset:node.end_col_offset].decode()
        last = self.lines[end - 1].encode()[:node.end_col_offset].decode()
        return "".join([first[node.col_offset:].decode(), *self.lines[node.lineno:end - 1],
                        last])

    def resolve(self, node: ast.AST) -> object:
        """The Python object a function expression names (``math.sqrt``, ``min``)."""
        if isinstance(node, ast.Name):
            if node.id in self.values or node.id in self.arrays:
                return None
            if node.id in self.globals:
                return self.globals[node.id]
            return getattr(builtins, node.id, None)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return getattr(base, node.attr, None) if base is not None else None
        return None

    # -- body --------------------------------------------------------------------------------
    def parse(self) -> Program:
        from ..schedule.textual import textual_schedule

        params, args = self._signature()
        ctx = isl.Set.universe(self.param_space)
        self.assumed = ctx.params()
        body = list(self.tree.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # docstring
        if body and isinstance(body[-1], ast.Return) and body[-1].value is None:
            body = body[:-1]
        nest = self._block(body, ctx, ())
        context = self._context()
        schedule = textual_schedule(nest, self.param_space)
        prog = Program(self.tree.name, tuple(params), tuple(args), dict(self.arrays),
                       tuple(self.statements), schedule, context, self.filename,
                       assumptions=tuple(self.assumptions))
        if self.retypes:
            return prog  # provisional: parse_kernel parses again with the types learnt
        for stmt in self.statements:
            if stmt.domain.intersect_params(context).is_empty():
                raise self.error(self.nodes.get(stmt.name, self.tree),
                                 f"{stmt.name} ({stmt.source}) never runs: its loops and "
                                 "conditions leave it no instance for any sizes"
                                 + (" allowed by the asserts" if self.assumptions else "")
                                 + ". Remove it, or fix the loop bounds and conditions "
                                   "around it")
        check_assigned(prog, lambda s, msg: self.error(self.nodes.get(s.name, self.tree), msg))
        return prog

    def _context(self) -> isl.Set:
        """Parameter values for which every array extent is non-negative."""
        conv = self._affine(self.param_space, self.error)
        ctx = isl.Set.universe(self.param_space)
        for a in self.arrays.values():
            for s in a.shape:
                pa = conv.pwaff(ast.parse(s, mode="eval").body)
                ctx = ctx.intersect(pa.ge_set(conv.affs[0]))
        return ctx.params().intersect(self.assumed).coalesce()

    def _block(self, stmts: list[ast.stmt], ctx: isl.Set, iters: tuple[str, ...]) -> list:
        items: list = []
        for node in stmts:
            if isinstance(node, ast.For):
                items.append(self._for(node, ctx, iters))
            elif isinstance(node, ast.If):
                cond = self._affine(ctx.space, self._cond_error(node.test))
                c = cond.condition(node.test)
                items += self._block(node.body, ctx.intersect(c), iters)
                if node.orelse:
                    items += self._block(node.orelse, ctx.subtract(c), iters)
            elif isinstance(node, ast.Assign) and is_local_declaration(node.value,
                                                                       self.resolve):
                items.append(self._local_array(node, ctx, iters))
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                items.append(self._assign(node, ctx, iters))
            elif isinstance(node, ast.Expr) and is_prefetch(node.value, self.resolve):
                items.append(self._prefetch(node, ctx, iters))
            elif isinstance(node, ast.Pass):
                continue
            elif isinstance(node, ast.Assert) and not iters:
                ctx = ctx.intersect(self._assumption(node, ctx))
            else:
                raise self.error(node, f"{_stmt_kind(node)} is not supported in a kernel "
                                       "(only for-range loops, if/elif/else and assignments)")
        return items

    def _assumption(self, node: ast.Assert, ctx: isl.Set) -> isl.Set:
        """``assert n >= 1`` at the top level: an assumption on the size parameters,
        used by the bounds proof and checked at every call."""
        if any(isinstance(x, ast.Name) and x.id not in self.param_space.get_var_names(
                isl.dim_type.param) and x.id not in ("min", "max") for x in ast.walk(node.test)):
            raise self.error(node, "an assert may only state affine assumptions on size "
                                   f"parameters; '{ast.unparse(node.test)}' uses other names")
        conv = self._affine(ctx.space, self._cond_error(node.test))
        cond = conv.condition(node.test)
        self.assumptions.append(ast.unparse(node.test))
        self.assumed = self.assumed.intersect(cond.params())
        return cond

    def _cond_error(self, test: ast.AST):
        def make(node: ast.AST, msg: str) -> FrontendError:
            return self.error(node, f"condition '{ast.unparse(test)}' is not affine "
                                    f"('{ast.unparse(node)}': {msg}); only affine conditions "
                                    "on loop iterators and size parameters may guard "
                                    "statements (use 'a if cond else b' for data)")
        return make

    def _for(self, node: ast.For, ctx: isl.Set, iters: tuple[str, ...]) -> LoopNode:
        if node.orelse:
            raise self.error(node, "for-else is not supported")
        if not isinstance(node.target, ast.Name):
            raise self.error(node.target, "loop target must be a single name")
        v = node.target.id
        if v in iters or v in self.values or v in self.arrays:
            raise self.error(node.target, f"loop iterator {v!r} shadows an enclosing loop, "
                                          "argument or local scalar")
        it = node.iter
        if not (isinstance(it, ast.Call) and self.resolve(it.func) is builtins.range
                and 1 <= len(it.args) <= 3 and not it.keywords):
            raise self.error(it, f"loop over '{ast.unparse(it)}': only range(hi), "
                                 "range(lo, hi) and range(lo, hi, step) are supported")
        for sub in ast.walk(it):
            if isinstance(sub, ast.Name) and sub.id == v:
                raise self.error(sub, f"bound of loop {v} refers to {v} itself")
        lo = it.args[0] if len(it.args) > 1 else ast.Constant(0)
        hi = it.args[1] if len(it.args) > 1 else it.args[0]
        step = 1
        if len(it.args) == 3:
            step = self._step(it.args[2], v)
        n = len(iters)
        inner = ctx.add_dims(isl.dim_type.set, 1).set_dim_name(isl.dim_type.set, n, v)
        conv = self._affine(inner.space, self._bound_error(v))
        lo_pa, hi_pa = conv.pwaff(lo), conv.pwaff(hi)
        var = conv.affs[v]
        if step > 0:  # lo, lo + step, ... while < hi
            inner = inner.intersect(lo_pa.le_set(var)).intersect(var.lt_set(hi_pa))
        else:  # lo, lo + step, ... while > hi (range(n - 1, -1, -1))
            inner = inner.intersect(var.le_set(lo_pa)).intersect(hi_pa.lt_set(var))
        if abs(step) > 1:
            inner = inner.intersect((var - lo_pa).mod_val(isl.Val(abs(step)))
                                    .eq_set(conv.affs[0]))
        loop = LoopNode(v, n, downward=step < 0)
        self.values[v] = ir.Var(v)
        try:
            loop.children = self._block(node.body, inner.coalesce(), iters + (v,))
        finally:
            del self.values[v]
        return loop

    def _step(self, node: ast.AST, v: str) -> int:
        """The step of loop ``v``: a non-zero integer constant."""
        try:
            step = self._constant(node)
        except FrontendError:
            raise self.error(node, f"step '{ast.unparse(node)}' of loop {v} must be a "
                                   "non-zero integer constant (e.g. 2 or -1)") from None
        if step == 0:
            raise self.error(node, f"step of loop {v} is 0 (Python raises ValueError): "
                                   "use a non-zero integer constant")
        return step

    def _bound_error(self, v: str):
        def make(node: ast.AST, msg: str) -> FrontendError:
            return self.error(node, f"bound '{ast.unparse(node)}' of loop {v} is not affine "
                                    f"({msg})")
        return make

    # -- local arrays -------------------------------------------------------------------------
    def _local_array(self, node: ast.Assign, ctx: isl.Set, iters: tuple[str, ...]) -> LoopNode:
        """``acc = np.zeros((6, 16), np.float32)``: declare the temporary ``acc`` and
        return the loop nest of its zero fill (see ``polyop.frontend.locals``)."""
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise self.error(node, "a local array is assigned to one name: "
                                   "acc = np.zeros((6, 16), np.float32)")
        name = node.targets[0].id
        shape, dtype = parse_local(node.value, self.resolve, self._constant, self.error)
        old = self.arrays.get(name)
        if name in self.values or name in self.param_space.get_var_names(isl.dim_type.param):
            raise self.error(node, f"cannot declare local array {name!r}: the name is a loop "
                                   "iterator, a size parameter or a scalar argument")
        text = tuple(str(n) for n in shape)
        if old is not None and not (old.temporary and old.shape == text and old.dtype == dtype):
            what = "an array argument" if not old.temporary else \
                f"a local {old.dtype}[{', '.join(old.shape)}]" if old.ndim else "a local scalar"
            raise self.error(node, f"cannot declare local array {name!r}: {name} is already "
                                   f"{what}")
        self._add_array(Array(name, dtype, text, tuple(ir.Const(n) for n in shape),
                              temporary=True))
        taken = set(iters) | set(self.values) | set(self.arrays) | \
            set(self.param_space.get_var_names(isl.dim_type.param))
        names = []
        for k in range(len(shape)):
            v = f"{name}_{k}"
            while v in taken:
                v += "_"
            names.append(v)
        index = [ast.Name(v, ast.Load()) for v in names]
        fill: ast.stmt = ast.Assign(
            targets=[ast.Subscript(ast.Name(name, ast.Load()),
                                   ast.Tuple(index, ast.Load()) if len(index) > 1 else index[0],
                                   ast.Store())],
            value=ast.Constant(0.0 if dtype.is_float else 0))
        for v, n in reversed(list(zip(names, shape))):
            fill = ast.For(ast.Name(v, ast.Store()),
                           ast.Call(ast.Name("range", ast.Load()), [ast.Constant(n)], []),
                           [fill], [])
        for sub in ast.walk(fill):  # errors and statement text point at the declaration
            ast.copy_location(sub, node)
        return self._for(fill, ctx, iters)

    def _prefetch(self, node: ast.Expr, ctx: isl.Set, iters: tuple[str, ...]) -> Statement:
        """``polyop.prefetch(A[i, j])``: a statement that only reads ``A[i, j]``;
        its body ``A[i, j] = prefetch(A[i, j])`` is emitted as a prefetch."""
        call = node.value
        write = False
        for kw in call.keywords:
            value = kw.value.value if isinstance(kw.value, ast.Constant) else None
            if kw.arg != "write" or not isinstance(value, bool):
                raise self.error(call, "prefetch takes one array element and optionally "
                                       "write=True or write=False")
            write = value
        if len(call.args) != 1 or not isinstance(call.args[0], ast.Subscript):
            raise self.error(call, "prefetch takes one array element: polyop.prefetch(A[i, j])")
        conv = self._converter()
        load = conv.convert(call.args[0])
        assert isinstance(load, ir.Load)
        sname = f"S{len(self.statements)}"
        domain = ctx.set_tuple_name(sname).coalesce()
        acc = self._affine(ctx.space, lambda n, m: FrontendError(m))
        reads = tuple(self._access(acc, domain, n, idx, read_index, where, guards)
                      for n, idx, where, guards, read_index in conv.reads)
        hint = ir.Call("prefetch", (load, ir.Const(int(write))), load.dtype)
        text = self._segment(node)
        stmt = Statement(sname, iters, domain, reads, (), ir.Store(load.array, load.index, hint),
                         node.lineno + self.line_offset, " ".join(text.split()))
        self.statements.append(stmt)
        return stmt

    def _constant(self, node: ast.AST) -> int:
        """An integer constant expression (literals and named ``int`` constants)."""
        conv = self._affine(self.param_space, lambda n, m: self.error(n, m))
        pa = conv.pwaff(node)
        if pa.is_cst() and pa.n_piece() == 1:
            val = pa.as_aff().get_constant_val()
            if val.is_int():
                return val.to_python()
        raise self.error(node, f"'{ast.unparse(node)}' is not an integer constant")

    # -- statements ---------------------------------------------------------------------------
    def _assign(self, node, ctx: isl.Set, iters: tuple[str, ...]) -> Statement:
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise self.error(node, "chained assignment a = b = c is not supported")
            target, value = node.targets[0], node.value
        else:
            target, value = node.target, node.value
            if value is None:
                raise self.error(node, "declaration without a value is not supported")
        conv = self._converter()
        rhs = conv.convert(value)
        new_scalar = False
        if isinstance(target, ast.Subscript):
            name, index_nodes = conv.subscript(target)
            index = tuple(conv.convert(i) for i in index_nodes)
        elif isinstance(target, ast.Name):
            name, index_nodes, index = target.id, (), ()
            if name in self.values:
                raise self.error(target, f"cannot assign to {name!r}: it is a loop iterator "
                                         "or a scalar argument (read-only)")
            arr = self.arrays.get(name)
            if arr is not None and arr.ndim:
                raise self.error(target, f"assignment to array {name} needs a subscript")
            if arr is None:
                if isinstance(node, ast.AugAssign):
                    raise self.error(target, f"local scalar {name!r} is updated before it "
                                             "is assigned")
                self._new_scalar(node, name, rhs, conv.is_weak(rhs))
                new_scalar = True
        else:
            raise self.error(target, "assignment target must be A[i, ...] or a local scalar")
        dtype = self.arrays[name].dtype
        if isinstance(node, ast.AugAssign):
            op = _AUG.get(type(node.op))
            if op is None:
                raise self.error(node, f"augmented assignment {type(node.op).__name__} is "
                                       "not supported (only +=, -=, *=, /=)")
            old = conv.mark(ir.Load(name, index, dtype), name in self.weak_scalars)
            rhs = conv.arith(op, old, rhs, node)
            conv.reads.append((name, index_nodes, target, (), index))
        if name in self.weak_scalars and not new_scalar and self._retyped(name, rhs, conv):
            pass  # this pass's types are provisional: the next pass retypes the scalar
        elif rhs.dtype.is_float and not dtype.is_float:
            raise self.error(node, f"float value stored into integer array {name}: "
                                   "convert explicitly with int(...)")
        sname = f"S{len(self.statements)}"
        domain = ctx.set_tuple_name(sname).coalesce()
        acc = self._affine(ctx.space, lambda n, m: FrontendError(m))
        write = self._access(acc, domain, name, index_nodes, index, target)
        reads = tuple(self._access(acc, domain, n, idx, read_index, where, guards)
                      for n, idx, where, guards, read_index in conv.reads)
        text = self._segment(node)
        stmt = Statement(sname, iters, domain, reads, (write,),
                         ir.Store(name, index, rhs), node.lineno + self.line_offset,
                         " ".join(text.split()))
        self.statements.append(stmt)
        self.nodes[sname] = node
        return stmt

    def _new_scalar(self, node: ast.stmt, name: str, rhs: ir.Expr, weak: bool) -> None:
        """Declare local scalar ``name`` at its first assignment: of the annotated
        type, else the type an earlier pass learnt, else the value's type."""
        dtype = rhs.dtype
        if isinstance(node, ast.AnnAssign):
            dtype = parse_annotation(node.annotation.value) if isinstance(
                node.annotation, ast.Constant) else None
            if not isinstance(dtype, DType):
                raise self.error(node.annotation, "local scalar annotation must be "
                                                  "\"f32\", \"f64\", \"i32\" or \"i64\"")
            weak = False
        elif name in self.hints:
            dtype, weak = self.hints[name]
        if dtype == ir.BOOL:
            dtype = INDEX
        if weak:
            self.weak_scalars.add(name)
        self._add_array(Array(name, dtype, (), (), temporary=True))

    def _retyped(self, name: str, value: ir.Expr, conv: ExprConverter) -> bool:
        """Record that weak local scalar ``name`` changes type when it is
        assigned ``value``, as in NumPy 2: a typed value makes it typed (``s =
        0.0; s += A[i]`` accumulates in f32 for an f32 ``A``), a Python float
        makes an int one a float. True when this pass's types were wrong."""
        old = self.arrays[name].dtype
        dtype = INDEX if value.dtype == ir.BOOL else value.dtype
        if not conv.is_weak(value):
            new = (dtype, False)
        elif dtype.is_float and not old.is_float:
            new = (dtype, True)
        else:
            return False
        self.retypes.setdefault(name, new)  # the first typed value decides
        return True

    def _access(self, conv: AffineConverter, domain: isl.Set, array: str,
                index_nodes: tuple[ast.AST, ...], index, where: ast.AST,
                guards: Guards = ()) -> Access:
        """The access relation of ``array[index_nodes]`` from the instances of
        ``domain`` that evaluate it: those where its affine ``guards`` hold
        (``x[i - 1] if i >= 1 else 0.0`` reads ``x`` for ``i >= 1`` only);
        a guard that is not affine (on data) leaves the instances as they are."""
        text = ast.unparse(where)
        for test, holds in guards:
            cond = _guard_set(conv, test, holds)
            if cond is not None:
                domain = domain.intersect(cond.set_tuple_name(domain.get_tuple_name()))
        if not index_nodes:
            rng = isl.Set.universe(self.param_space).set_tuple_name(array)
            rel = isl.Map.from_domain_and_range(domain, rng)
        else:
            rel = None
            for n in index_nodes:
                try:
                    pa = conv.pwaff(n)
                except FrontendError as e:
                    names = ", ".join(conv.space.get_var_names(isl.dim_type.set)) \
                        or "no loop iterators"
                    raise self.error(where, f"subscript {text} is not affine in ({names}): "
                                            f"{e.reason}") from None
                m = isl.Map.from_pw_aff(pa)
                rel = m if rel is None else rel.flat_range_product(m)
            rel = rel.set_tuple_name(isl.dim_type.in_, domain.get_tuple_name())
            rel = rel.set_tuple_name(isl.dim_type.out, array).intersect_domain(domain)
        return Access(array, rel.coalesce(), index or (), text)


def _guard_set(conv: AffineConverter, test: ast.AST, holds: bool) -> isl.Set | None:
    """The instances where ``test`` is ``holds`` (``conv``'s space), or a
    superset of them: an affine test exactly; an ``and`` that holds (an
    ``or`` that fails) by its affine operands, each of which must then hold
    (fail); ``None`` when nothing affine is known (a test on data)."""
    try:
        cond = conv.condition(test)
        return cond if holds else isl.Set.universe(cond.space).subtract(cond)
    except FrontendError:
        pass
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) == holds:
        parts = [p for v in test.values if (p := _guard_set(conv, v, holds)) is not None]
        if parts:
            return functools.reduce(isl.Set.intersect, parts)
    return None


def _stmt_kind(node: ast.stmt) -> str:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return f"call statement '{ast.unparse(node.value)}'"
    names = {ast.While: "while loop", ast.Return: "return with a value",
             ast.FunctionDef: "nested function", ast.Expr: "expression statement",
             ast.With: "with statement", ast.Try: "try statement",
             ast.Break: "break", ast.Continue: "continue", ast.Import: "import",
             ast.ImportFrom: "import", ast.Global: "global", ast.Nonlocal: "nonlocal",
             ast.Delete: "del", ast.Raise: "raise", ast.Assert: "assert"}
    for cls, desc in names.items():
        if isinstance(node, cls):
            return desc
    return type(node).__name__


def parse_kernel(fn: Callable) -> Program:
    """Build the ``Program`` of a Python loop nest (see ``KernelParser``).

    A local scalar's type is known only once all its assignments are seen
    (``s = 0.0`` is a Python float until ``s += A[i]`` makes it A's type), so
    a pass that finds a local scalar's type changed parses again with the
    types learnt; each pass only moves scalars from weak int to weak float to
    typed, so this ends (in one extra pass for the usual kernels).
    """
    hints: dict[str, tuple[DType, bool]] = {}
    while True:
        parser = KernelParser(fn, hints)
        program = parser.parse()
        if not parser.retypes:
            return program
        hints.update(parser.retypes)
