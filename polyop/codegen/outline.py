"""Outlining: moving a piece of a kernel into a function of its own.

A parallel loop's chunks (``polyop.codegen.parallel``) and a team region's
member-0 statements and chunks (``polyop.codegen.region``) run in functions
of their own, called through the thread pool. Each such function needs the
values the piece reads from the kernel — scalars (sizes, outer loop
variables), array pointers and their strides, 0-d temporaries — *captured*:
passed as arguments, or packed into an environment struct that the pool
hands over as an ``i8*``. ``Env`` collects them (each value once, however
often it is used: a stride equal to a size stays the same value in the
outlined code, so LLVM still knows they are equal) and rebuilds them in the
outlined function's builder.

Example (a size captured once, though used twice, as a size and a stride;
a constant is not captured at all)::

    >>> from llvmlite import ir
    >>> f = ir.Function(ir.Module(), ir.FunctionType(ir.VoidType(), [ir.IntType(64)]), "f")
    >>> env = Env()
    >>> env.add(f.args[0], "n"), env.add(f.args[0], "x.stride0")
    (0, 0)
    >>> env.add(ir.Constant(ir.IntType(64), 4), "four"), env.names
    (<ir.Constant type='i64' value=4>, ['n'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

from ..ir import Load, Store, Var, walk
from .llvm_expr import ArrayRef, ll_type

__all__ = ["Env", "declare", "free_names"]

_I32 = ir.IntType(32)
_I8P = ir.IntType(8).as_pointer()


def declare(module: ir.Module, name: str, ty: ir.FunctionType) -> ir.Function:
    """The declaration of runtime function ``name`` in ``module`` (made once)."""
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ty, name)
        fn.attributes.add("nounwind")
    return fn


def free_names(fb, node, bound: str | None = None) -> tuple[list[str], list[str]]:
    """Scalars (bound in ``fb``, other than ``bound``) and arrays/temporaries
    that ``node`` uses, in order of first use."""
    scalars: dict[str, None] = {}
    arrays: dict[str, None] = {}
    for x in walk(node):
        if isinstance(x, Var) and x.name in fb.values and x.name != bound:
            scalars[x.name] = None
        elif isinstance(x, (Load, Store)) and x.array in fb.arrays:
            arrays[x.array] = None
    return list(scalars), list(arrays)


class Env:
    """The values one outlined function captures: ``fields`` (values in the
    kernel, with their argument names and attributes) and ``plan``, the rule
    that rebuilds each scalar, array and temporary from them."""

    def __init__(self):
        self.fields: list[ir.Value] = []
        self.names: list[str] = []
        self.arg_attrs: list[tuple[str, ...]] = []
        #: (kind, name, dtype, field | constant, strides): kind "value", "array"
        #: or "private" (a temporary's first-private copy)
        self.plan: list[tuple] = []
        self._index: dict[int, int] = {}

    def add(self, value: ir.Value, name: str, *attrs: str) -> int | ir.Constant:
        """Capture ``value`` (once, however often it is needed); returns its
        field number, or the constant itself."""
        if isinstance(value, ir.Constant):
            return value
        q = self._index.get(id(value))
        if q is None:
            q = self._index[id(value)] = len(self.fields)
            self.fields.append(value)
            self.names.append(name)
            self.arg_attrs.append(attrs)
        return q

    def capture(self, fb, node, bound: str | None = None, private: bool = False) -> None:
        """Capture what ``node`` reads from builder ``fb`` (``bound``: a
        variable the outlined code binds itself). Arrays are ``noalias``
        arguments; with ``private``, a 0-d temporary is passed by value and
        copied into a slot of the outlined function (first-private), else it
        is shared by pointer."""
        scalars, arrays = free_names(fb, node, bound)
        for name in scalars:
            v, dt = fb.values[name]
            self.plan.append(("value", name, dt, self.add(v, name), None))
        for name in arrays:
            ref: ArrayRef = fb.arrays[name]
            if private and name in fb.temp_names:
                cur = fb.builder.load(ref.ptr, name=f"{name}.in")
                self.plan.append(("private", name, ref.dtype, self.add(cur, name + ".in"), None))
                continue
            ptr = self.add(ref.ptr, name, "noalias", "nonnull")
            strides = None if ref.strides is None else tuple(
                None if st is None else self.add(st, f"{name}.stride{d}")
                for d, st in enumerate(ref.strides))
            self.plan.append(("array", name, ref.dtype, ptr, strides))

    def rebuild(self, ob, get: Callable[[int | ir.Constant], ir.Value]) -> None:
        """Bind the captured names in builder ``ob`` of the outlined code;
        ``get`` gives a field's value there."""
        for kind, name, dt, q, strides in self.plan:
            if kind == "value":
                ob.values[name] = (get(q), dt)
            elif kind == "private":
                slot = ob.builder.alloca(ll_type(dt), name=name)
                ob.builder.store(get(q), slot)
                ob.arrays[name] = ArrayRef(slot, dt, None)
            else:
                st = None if strides is None else tuple(None if x is None else get(x)
                                                        for x in strides)
                ob.arrays[name] = ArrayRef(get(q), dt, st)

    def function(self, module: ir.Module, name: str,
                 extra: Sequence[tuple[str, ir.Type]] = ()) -> ir.Function:
        """An internal, never-inlined function taking the fields (with their
        names and attributes), then the ``extra`` arguments."""
        ty = ir.FunctionType(ir.VoidType(), [v.type for v in self.fields] +
                             [t for _, t in extra])
        fn = ir.Function(module, ty, name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        for arg, n, attrs in zip(fn.args, [*self.names, *(n for n, _ in extra)],
                                 [*self.arg_attrs, *(() for _ in extra)], strict=True):
            arg.name = n
            for a in attrs:
                arg.add_attribute(a)
        return fn

    @property
    def struct(self) -> ir.LiteralStructType:
        """The environment struct of the fields."""
        return ir.LiteralStructType([v.type for v in self.fields])

    def pack(self, fb, name: str) -> ir.Value:
        """Store the fields into an environment struct on ``fb``'s stack;
        returns it as an ``i8*``."""
        b = fb.builder
        slot = fb.entry_alloca(self.struct, name=name)
        for q, v in enumerate(self.fields):
            b.store(v, b.gep(slot, [ir.Constant(_I32, 0), ir.Constant(_I32, q)], inbounds=True))
        return b.bitcast(slot, _I8P)

    def unpack(self, b: ir.IRBuilder, env: ir.Value) -> Callable[[int | ir.Constant], ir.Value]:
        """``get`` for code that receives the struct as ``env`` (an ``i8*``):
        each field loaded once, where first needed."""
        envp = b.bitcast(env, self.struct.as_pointer())
        loaded: dict[int, ir.Value] = {}

        def get(q):
            if isinstance(q, ir.Constant):
                return q
            if q not in loaded:
                loaded[q] = b.load(b.gep(envp, [ir.Constant(_I32, 0), ir.Constant(_I32, q)],
                                         inbounds=True))
            return loaded[q]

        return get
