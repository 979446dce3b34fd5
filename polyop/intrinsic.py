"""Micro-kernels with a declared contract, for ``Schedule.tensorize``: the
implementation side.

An *intrinsic* is a hand-written micro-kernel (C source, or LLVM IR text) plus
its **contract**: what it computes, written as a small ``@polyop.kernel`` (or
tensor expression) over arrays of constant shape, and the calling convention
derived from that kernel's signature. The contract, its calling convention and
the matcher ``tensorize`` uses are ``polyop.schedule.intrinsic_contract``
(``IntrinsicContract``); this module adds what makes one callable and checks
it: ``Intrinsic`` subclasses the contract with compiling, caching, linking and
``verify``.

Why two modules: ``verify`` builds a ``Schedule`` and compiles it through the
pipeline, while the schedule's ``tensorize`` needs the contract. The schedule
imports only the contract, this module imports the schedule and the pipeline,
so each only imports downward (no import cycle, ``tests/test_import_layers.py``),
and ``polyop.intrinsic``, ``polyop.Intrinsic`` and ``polyop.IntrinsicError``
keep one home for users. (A registration hook installed at package import
would also break the cycle, but would hide a real dependence; a subclass states
it.)

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
import hashlib
import os
import shlex
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .pipeline import compile_program
from .schedule import Schedule
from .schedule.intrinsic_contract import Binding, IntrinsicContract, IntrinsicError, Operand
from .settings import cache_subdir

__all__ = ["Binding", "Intrinsic", "IntrinsicError", "Operand", "cache_dir", "intrinsic"]

#: flags always given to the C compiler (before the target's and ``cflags``)
C_FLAGS = ("-O3", "-shared", "-fPIC")
_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}  # by hash with the target: kept alive for the process


class Intrinsic(IntrinsicContract):
    """A micro-kernel and its contract (see the module docstring); build one
    with ``polyop.intrinsic``."""

    def __init__(self, contract, *, c_source: str | None = None, llvm_ir: str | None = None,
                 symbol: str | None = None, name: str | None = None,
                 cflags: Sequence[str] = ()):
        if (c_source is None) == (llvm_ir is None):
            raise IntrinsicError("intrinsic: give exactly one implementation, c_source= "
                                 "or llvm_ir=")
        super().__init__(contract, name=name, symbol=symbol)
        self.c_source, self.llvm_ir = c_source, llvm_ir
        self.cflags = tuple(cflags)
        if c_source is not None:
            self._key = _hash(_compiler(), C_FLAGS + self.cflags, c_source)
            self.symbol = f"{self.c_symbol}__polyop_{self._key[:12]}"
        else:
            _check_llvm_ir(llvm_ir, self.symbol, self.arg_types(), self.name)

    # -- the calling convention in LLVM ------------------------------------------------
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
        compile_program(sch)(**got)
        compile_program(self.program)(**want)
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


# -- implementations ---------------------------------------------------------------------------

def _compiler() -> str:
    return os.environ.get("CC", "cc")


def _hash(compiler: str, flags: tuple[str, ...], source: str) -> str:
    text = "\0".join([compiler, " ".join(flags), source])
    return hashlib.sha256(text.encode()).hexdigest()


def cache_dir() -> Path:
    """Where compiled C micro-kernels are kept: ``intrinsics`` in
    ``polyop.settings.cache_root()`` (``$POLYOP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/polyop`` or ``~/.cache/polyop``), created; a temporary
    directory where that cannot be written."""
    return cache_subdir("intrinsics")


def _compile_c(source: str, cflags: tuple[str, ...], key: str, name: str) -> Path:
    """The shared library of ``source`` (compiled now unless cached)."""
    directory = cache_dir()
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
