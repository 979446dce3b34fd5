"""Micro-kernels with a declared contract, for ``Schedule.tensorize``.

An *intrinsic* is a hand-written micro-kernel (C source, or LLVM IR text) plus
its **contract**: what it computes, written in polyop's own terms — a small
``@polyop.kernel`` (or tensor expression) over arrays of constant shape — and
the calling convention derived from that kernel's signature.

Contract. One statement (for a tensor-expression reduction, its update
``C[i, j] = C[i, j] + ...``; the init stays outside) over a constant iteration
domain; its arrays are *views*: an operand ``A: "f64[4, 16]"`` stands for a
4 × 16 window of some larger array, whose rows may be any distance apart.
``Schedule.tensorize`` replaces a band whose tile (the instances of one
iteration of the loops around it) is a translate of the contract's domain, with
the same computation (body structure, operations, types) on arrays in the same
roles and accesses that move through the real arrays as the contract's move
through the views.

Calling convention (``Intrinsic.c_prototype`` prints it). One argument per
contract argument, in signature order:

- an array operand of rank ``m``: a pointer to the view's element ``[0, ..., 0]``
  in the real array, then ``m - 1`` strides (``int64_t``, in elements) of the
  view's dimensions but the last; the view's last dimension is contiguous
  (unit stride) in the real array;
- a scalar: its value (``double``, ``float``, ``int32_t``, ``int64_t``).

Implementation. ``c_source=`` is compiled by the system compiler
(``$CC`` or ``cc``, ``-O3 -shared -fPIC``, the target's flags — ``-march=<cpu>``
or ``-mcpu=<cpu>`` and its feature edits, ``polyop.Target.c_flags`` — plus
``cflags``), cached by a hash of compiler, flags and source in
``$POLYOP_CACHE_DIR`` (default ``~/.cache/polyop``)/``intrinsics``, loaded with
ctypes and registered with ``llvm.add_symbol`` under a name private to that
source. For a kernel compiled for another CPU it is compiled when the kernel
is exported (``polyop.codegen.objcode``), not here. ``llvm_ir=`` is
checked against the convention when declared and linked into each kernel
module that calls it (internal linkage, so LLVM may inline it). The symbol is
``symbol=`` (default: the intrinsic's name, itself the contract's name).

``verify()`` checks the implementation against the contract: it tensorizes
the contract's own loop nest with the intrinsic and compares the result with
the compiled contract on random data.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def axpy8(a: "f64", x: "f64[8]", y: "f64[8]"):
    ...     for i in range(8):
    ...         y[i] += a * x[i]
    >>> src = '''#include <stdint.h>
    ... void axpy8(double a, const double *x, double *y) {
    ...     for (int i = 0; i < 8; i++) y[i] += a * x[i];
    ... }'''
    >>> ax = polyop.intrinsic(axpy8, c_source=src)
    >>> ax.c_prototype
    'void axpy8(double a, const double *x, double *y)'
    >>> ax.verify()
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import islpy as isl
import numpy as np

from . import ir
from .errors import PolyopError
from .printer import expr_to_c, to_c
from .program import Program, Statement, as_program
from .settings import cache_root
from .types import DType

__all__ = ["Intrinsic", "IntrinsicError", "Operand", "intrinsic"]

#: flags always given to the C compiler (before the target's and ``cflags``)
C_FLAGS = ("-O3", "-shared", "-fPIC")
_C_TYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}
_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}  # by hash with the target: kept alive for the process


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


class Intrinsic:
    """A micro-kernel and its contract (see the module docstring); build one
    with ``polyop.intrinsic``."""

    def __init__(self, contract, *, c_source: str | None = None, llvm_ir: str | None = None,
                 symbol: str | None = None, name: str | None = None,
                 cflags: Sequence[str] = ()):
        if (c_source is None) == (llvm_ir is None):
            raise IntrinsicError("intrinsic: give exactly one implementation, c_source= "
                                 "or llvm_ir=")
        program = as_program(contract)
        self.name: str = name or program.name
        self.statement: Statement = _contract_statement(program, self.name)
        #: the contract as a one-statement program
        self.program: Program = dataclasses.replace(
            program, statements=(self.statement,), meta={},
            schedule=program.schedule.intersect_domain(
                isl.UnionSet.from_set(self.statement.domain)))
        self.operands: tuple[Operand, ...] = _operands(self.program, self.statement, self.name)
        self.c_source, self.llvm_ir = c_source, llvm_ir
        self.cflags = tuple(cflags)
        self.c_symbol = symbol or self.name
        if c_source is not None:
            self._key = _hash(_compiler(), C_FLAGS + self.cflags, c_source)
            self.symbol = f"{self.c_symbol}__polyop_{self._key[:12]}"
        else:
            self.symbol = self.c_symbol
            _check_llvm_ir(llvm_ir, self.symbol, self.arg_types(), self.name)

    # -- the calling convention --------------------------------------------------------
    def arg_types(self) -> list[str]:
        """The LLVM types of the call's arguments (``ptr`` for array pointers)."""
        from .codegen.llvm_expr import ll_type

        out: list[str] = []
        for op in self.operands:
            if op.kind == "array":
                out += ["ptr"] + ["i64"] * (op.ndim - 1)
            else:
                out.append(str(ll_type(op.dtype)))
        return out

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

    def __repr__(self) -> str:
        kind = "C" if self.c_source is not None else "LLVM IR"
        return f"<polyop.intrinsic {self.name} ({kind}): {self.c_prototype}>"

    # -- implementation ----------------------------------------------------------------
    def compile(self, target=None) -> None:
        """Compile and load a C implementation for the host ``target``
        (default the host itself) now (done on first use otherwise)."""
        if self.c_source is not None:
            self.link_ir(target)

    def link_ir(self, target=None) -> str | None:
        """JIT hook (``ir.Extern.impl``): LLVM IR text to link into a kernel's
        module compiled for ``target`` (default the host), or ``None`` once
        the C implementation is compiled for it, loaded, and its symbol
        registered (for a host target; for another CPU the C source is
        compiled when the kernel is exported)."""
        if self.llvm_ir is not None:
            return self.llvm_ir
        from .target import as_target

        t = as_target(target)
        if not t.is_host:
            return None
        import llvmlite.binding as llvm

        with _LOCK:
            key = self._library_key(t)
            lib = _LOADED.get(key)
            if lib is None:
                lib = ctypes.CDLL(str(self.library(t)))
                _LOADED[key] = lib
            try:
                fn = getattr(lib, self.c_symbol)
            except AttributeError:
                raise IntrinsicError(f"intrinsic {self.name}: the C source defines no "
                                     f"function {self.c_symbol} (expected "
                                     f"{self.c_prototype})") from None
            # (again) for this target: the last registration is what MCJIT resolves
            llvm.add_symbol(self.symbol, ctypes.cast(fn, ctypes.c_void_p).value)
        return None

    def _library_key(self, target) -> str:
        flags = target.c_flags(_compiler())
        return _hash(_compiler(), C_FLAGS + flags + self.cflags, self.c_source)

    def library(self, target=None) -> Path:
        """The shared library of the C implementation for ``target`` (default
        the host), compiled now unless cached (see the module docstring)."""
        from .target import as_target

        if self.c_source is None:
            raise IntrinsicError(f"intrinsic {self.name}: implemented in LLVM IR, it has no "
                                 f"C library")
        t = as_target(target)
        return _compile_c(self.c_source, t.c_flags(_compiler()) + self.cflags,
                          self._library_key(t), self.name)

    def verify(self, seed: int = 0, rtol: float | None = None) -> None:
        """Check the implementation against the contract: tensorize the
        contract's own loop nest with this intrinsic, run it and the compiled
        contract on the same random data, and compare every array (relative
        tolerance ``rtol``, default 1e-4 for f32 and 1e-10 for f64: the
        micro-kernel may sum in another order). Raises ``IntrinsicError``."""
        from .pipeline import compile_program as build
        from .schedule import Schedule

        sch = Schedule(self.program)
        loops = sch.get_loops(self.statement.name)
        if not loops:
            raise IntrinsicError(f"verify: the contract of {self.name} has no loop")
        sch.tensorize(loops[0], self, partial="error")
        rng = np.random.default_rng(seed)
        args = {}
        for a in self.program.arguments:
            if a.kind == "array":
                shape = tuple(int(e.value) for e in self.program.arrays[a.name].extents)
                vals = rng.integers(-8, 8, shape) if not a.dtype.is_float \
                    else rng.standard_normal(shape)
                args[a.name] = vals.astype(a.dtype.numpy)
            else:
                args[a.name] = float(rng.standard_normal()) if a.dtype.is_float \
                    else int(rng.integers(-8, 8))
        got = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
        want = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
        build(sch)(**got)
        build(self.program)(**want)
        for k, v in got.items():
            if not isinstance(v, np.ndarray):
                continue
            tol = rtol if rtol is not None else 1e-4 if v.dtype == np.float32 else 1e-10
            if not np.allclose(v, want[k], rtol=tol, atol=tol):
                bad = np.argwhere(~np.isclose(v, want[k], rtol=tol, atol=tol))[0]
                at = ", ".join(map(str, bad))
                raise IntrinsicError(f"verify: {self.name} disagrees with its contract on "
                                     f"{k}[{at}]: {v[tuple(bad)]!r} instead of "
                                     f"{want[k][tuple(bad)]!r}")

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


def intrinsic(contract, *, c_source: str | None = None, llvm_ir: str | None = None,
              symbol: str | None = None, name: str | None = None,
              cflags: Sequence[str] = ()) -> Intrinsic:
    """Declare a micro-kernel for ``Schedule.tensorize`` (see the module docstring).

    ``contract`` is a ``@polyop.kernel`` over constant-shape arrays (or tensor
    expressions, or a ``Program``) computing exactly what the micro-kernel
    computes; the implementation is ``c_source`` (compiled with the system
    compiler, cached) or ``llvm_ir`` (text defining ``symbol``).

    Example::

        >>> import numpy as np, polyop
        >>> @polyop.kernel
        ... def scale2(x: "f64[2]"):
        ...     for i in range(2):
        ...         x[i] *= 2.0
        >>> text = '''define void @scale2(ptr %x) {
        ...   %a = load double, ptr %x
        ...   %p = getelementptr double, ptr %x, i64 1
        ...   %b = load double, ptr %p
        ...   %a2 = fmul double %a, 2.0
        ...   %b2 = fmul double %b, 2.0
        ...   store double %a2, ptr %x
        ...   store double %b2, ptr %p
        ...   ret void
        ... }'''
        >>> twice = polyop.intrinsic(scale2, llvm_ir=text)
        >>> @polyop.kernel
        ... def double_all(n: int, x: "f64[n]"):
        ...     for i in range(n):
        ...         x[i] *= 2.0
        >>> sch = polyop.Schedule(double_all)
        >>> outer, inner = sch.split(sch.get_loops("S0")[0], 2)
        >>> sch.tensorize(inner, twice)
        'S0_scale2'
        >>> x = np.arange(5.0); polyop.build(sch)(5, x); x
        array([0., 2., 4., 6., 8.])
    """
    return Intrinsic(contract, c_source=c_source, llvm_ir=llvm_ir, symbol=symbol, name=name,
                     cflags=cflags)


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


# -- implementations ---------------------------------------------------------------------------

def _compiler() -> str:
    return os.environ.get("CC", "cc")


def _hash(compiler: str, flags: tuple[str, ...], source: str) -> str:
    text = "\0".join([compiler, " ".join(flags), source])
    return hashlib.sha256(text.encode()).hexdigest()


def cache_dir() -> Path:
    """Where compiled C micro-kernels are kept: ``intrinsics`` in
    ``polyop.settings.cache_root()`` (``$POLYOP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/polyop`` or ``~/.cache/polyop``)."""
    return cache_root() / "intrinsics"


def _compile_c(source: str, cflags: tuple[str, ...], key: str, name: str) -> Path:
    """The shared library of ``source`` (compiled now unless cached)."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir()) / "polyop-intrinsics"
        directory.mkdir(parents=True, exist_ok=True)
    lib = directory / f"{key[:32]}.so"
    if lib.exists():
        return lib
    src = directory / f"{key[:32]}.c"
    src.write_text(source)
    tmp = directory / f"{key[:32]}.{os.getpid()}.tmp.so"
    cmd = [*shlex.split(_compiler()), *C_FLAGS, *cflags, "-o", str(tmp), str(src)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise IntrinsicError(f"intrinsic {name}: cannot run the C compiler "
                             f"({' '.join(cmd)}): {e}") from None
    if done.returncode != 0:
        raise IntrinsicError(f"intrinsic {name}: the C source does not compile "
                             f"({' '.join(cmd)}):\n{done.stderr.strip()}")
    os.replace(tmp, lib)  # atomic: a concurrent process sees all or nothing
    return lib


def _check_llvm_ir(text: str, symbol: str, types: list[str], name: str) -> None:
    """Parse ``text`` and check that it defines ``void symbol(types...)``."""
    import llvmlite.binding as llvm

    from .target import target_machine

    target_machine()  # initialises LLVM
    try:
        mod = llvm.parse_assembly(text)
        mod.verify()
    except RuntimeError as e:
        raise IntrinsicError(f"intrinsic {name}: invalid LLVM IR: {e}") from None
    try:
        fn = mod.get_function(symbol)
    except NameError:
        raise IntrinsicError(f"intrinsic {name}: the LLVM IR defines no function "
                             f"@{symbol}") from None
    got = [str(a.type) for a in fn.arguments]
    ret = str(fn.global_value_type).split(" ", 1)[0]
    if fn.is_declaration or ret != "void" or got != types:
        raise IntrinsicError(f"intrinsic {name}: @{symbol} must be defined as "
                             f"void ({', '.join(types)}) by the contract's calling convention, "
                             f"got {fn.global_value_type}"
                             + (" (a declaration)" if fn.is_declaration else ""))
