"""Cheap kernel calls: the argument checks of ``CompiledKernel`` in C.

A call through ctypes after checks in Python costs ~8-20 us; numba's
dispatch costs ~0.3 us. ``dispatcher(kernel)`` returns a C callable
(``polyop_fastcall.Dispatcher``, source in ``polyop.fastcall_c``) that does
the checks of ``CompiledKernel.validate`` on the argument objects directly -
dtype, rank, shape against the sizes, contiguity, writeability of written
arrays, the sizes' conditions (``assert`` assumptions, bounds preconditions),
no overlap of a written array with another, sizes inferred from shapes - and
calls the kernel with the GIL released, in well under a microsecond. It
decides only "valid": any argument it does not accept goes to the kernel's
Python path, which raises the precise ``ArgumentError`` (or makes an unusual
but valid call, such as a size given as ``np.int64``), so errors and their
messages are the Python path's, and no signature is cached: every call checks
its arguments afresh.

The extension is compiled on first use with the system C compiler (``$CC``,
else ``cc``) against this Python's and this numpy's headers, and cached in
``$POLYOP_CACHE_DIR`` (see ``polyop.settings.cache_root``). Where it cannot
be built (no compiler, no headers) or with ``POLYOP_FASTCALL=0``, calls take
the Python path; ``status()`` says which and why.

The kernel is called through a trampoline ``void t(void *fn, const uint64_t
*slots)``, generated with LLVM once per signature (the parameters' kinds and
types): it loads each parameter from its 8-byte slot (sizes and integers as
i64, floats as double, f32 rounded from it as ctypes does, arrays as data
pointers) and calls ``fn``.

Example::

    >>> import numpy as np, polyop
    >>> @polyop.kernel
    ... def scale(n: int, x: "f64[n]"):
    ...     for i in range(n):
    ...         x[i] *= 2.0
    >>> f = scale.compile()
    >>> x = np.ones(3); f(x=x); x                # n inferred from x's shape
    array([2., 2., 2.])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import shlex
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import islpy as isl
import numpy as np

from . import ir
from .settings import cache_subdir, env_int
from .types import INDEX

__all__ = ["describe", "dispatcher", "install_call", "status"]

_lock = threading.Lock()
_module = None
_reason: str | None = None  # why there is no extension, once tried
_trampolines: dict[tuple, tuple] = {}  # signature -> (engine, address)

_K_SIZE, _K_INT, _K_FLOAT, _K_ARRAY = range(4)
(_OP_CONST, _OP_SIZE, _OP_ADD, _OP_SUB, _OP_MUL, _OP_NEG, _OP_MIN, _OP_MAX, _OP_FDIV,
 _OP_MOD) = range(10)
_BINARY = {"add": _OP_ADD, "sub": _OP_SUB, "mul": _OP_MUL, "min": _OP_MIN, "max": _OP_MAX,
           "fdiv": _OP_FDIV, "mod": _OP_MOD}
_MAX_ARGS = 64


class Unsupported(Exception):
    """A kernel the C path does not describe (it then takes the Python path)."""


def status() -> tuple[bool, str]:
    """Whether calls use the compiled checks, and why not if they do not.

    Example::

        >>> ok, why = status()
        >>> isinstance(why, str)
        True
    """
    _extension()
    return (_module is not None, _reason or "compiled checks in use")


def dispatcher(kernel, fallback, positional_only: tuple[str, ...] = ()):
    """A C callable making ``kernel``'s checked calls (a ``CompiledKernel``),
    ``fallback`` taking every call it does not accept; ``None`` when the
    extension is unavailable or the kernel cannot be described.

    By default every argument may come by position (in the kernel's order) or
    by keyword. With ``positional_only`` (a tensor-expression function's
    arguments), exactly those come by position, and the size parameters not
    among them only by keyword (or inferred from shapes)."""
    module = _extension()
    address = getattr(kernel.native, "address", None)
    params = [p.name for p in kernel.function.params]
    if module is None or not address or params != [a.name for a in kernel.program.arguments]:
        return None
    names = tuple(positional_only) or tuple(kernel.names)
    names += tuple(p for p in kernel.program.params if p not in names)
    if sorted(names) != sorted(kernel.names):
        return None
    try:
        (names, args, code, prog, cond), scratch_slots, sizes = describe(
            kernel.program, names, kernel.scratch, kernel.written, kernel.inferable,
            kernel.preconditions)
    except Unsupported:
        return None
    scratch = functools.partial(kernel._scratch_by_sizes, sizes)
    return module.Dispatcher(fallback, _trampoline(kernel.function), address, names,
                             len(positional_only), args, code, prog, cond, scratch,
                             scratch_slots)


def install_call(obj, call) -> None:
    """Make ``obj(...)`` run ``call`` (a ``Dispatcher``) with no Python frame
    in between: ``obj``'s class becomes a subclass of the same name whose
    ``__call__`` is ``call`` (a static method, so CPython calls it directly).
    Each object gets its own subclass, as each has its own dispatcher."""
    cls = type(obj)
    obj.__class__ = type(cls.__name__, (cls,), {
        "__call__": staticmethod(call), "__slots__": (), "__module__": cls.__module__,
        "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})


def describe(program, names: tuple[str, ...], scratch: tuple[str, ...], written: set[str],
             inferable: dict[str, tuple[str, int]], preconditions=()):
    """The flat description ``Dispatcher`` takes: ``(names, args, code, prog,
    cond)``, the scratch arrays' slots and the size parameters in the order the
    scratch callable receives them (see the C source); ``preconditions`` are the
    program's (``polyop.bounds.check_bounds``), checked with its context. Raises
    ``Unsupported`` for a kernel outside it."""
    slot = {a.name: k for k, a in enumerate(program.arguments)}
    if len(slot) > _MAX_ARGS:
        raise Unsupported("too many arguments")
    position = {n: k for k, n in enumerate(names)}
    sizes = [n for n in names if _kind(program, n) == "size"]
    if set(sizes) != set(program.params):
        raise Unsupported("a size parameter that is not an argument")
    size_index = {n: k for k, n in enumerate(sizes)}
    code: list[int] = []
    prog: list[int] = [0]

    def add(ops: list[int]) -> int:
        code.extend(ops)
        prog.append(len(code))
        return len(prog) - 2

    args = []
    for n in names:
        arg = next(a for a in program.arguments if a.name == n)
        if arg.kind == "size":
            arr, dim = inferable.get(n, (None, -1))
            args.append((_K_SIZE, slot[n], size_index[n],
                         position[arr] if arr in position else -1, dim))
        elif arg.kind == "scalar":
            args.append((_K_FLOAT if arg.dtype.is_float else _K_INT, slot[n]))
        else:
            spec = program.arrays[n]
            extents = [add(_postfix(e, size_index)) for e in spec.extents]
            args.append((_K_ARRAY, slot[n], np.dtype(spec.dtype.numpy).num, int(n in written),
                         spec.ndim, *extents))
    conditions = [program.context] + [p.condition for p in preconditions]
    cond = [len(conditions)]
    for c in conditions:
        cond += _union(c, size_index, add)
    scratch_slots = [slot[n] for n in scratch]
    return (tuple(names), args, code, prog, cond), scratch_slots, tuple(sizes)


def _kind(program, name: str) -> str:
    return next(a.kind for a in program.arguments if a.name == name)


def _postfix(e: ir.Expr, size_index: dict[str, int]) -> list[int]:
    """An integer extent as a postfix program over the sizes."""
    if isinstance(e, ir.Const):
        return [_OP_CONST, int(e.value)]
    if isinstance(e, ir.Var):
        if e.name not in size_index:
            raise Unsupported(f"extent over {e.name}")
        return [_OP_SIZE, size_index[e.name]]
    if isinstance(e, ir.Neg):
        return [*_postfix(e.a, size_index), _OP_NEG]
    if isinstance(e, ir.Bin) and e.op in _BINARY:
        return [*_postfix(e.a, size_index), *_postfix(e.b, size_index), _BINARY[e.op]]
    raise Unsupported(f"extent {e!r}")


def _union(s: isl.Set, size_index: dict[str, int], add) -> list[int]:
    """A parameter set as ``[ndisj, (ncons, (is_eq, prog)...)...]``."""
    names = s.get_space().get_var_names(isl.dim_type.param)
    out = [0]
    for b in s.coalesce().get_basic_sets():
        if b.dim(isl.dim_type.div):
            raise Unsupported("a condition with existential variables")
        cons = b.get_constraints()
        out.append(len(cons))
        for c in cons:
            ops = [_OP_CONST, c.get_constant_val().to_python()]
            for k, p in enumerate(names):
                v = c.get_coefficient_val(isl.dim_type.param, k).to_python()
                if v:
                    if p not in size_index:
                        raise Unsupported(f"condition over {p}")
                    ops += [_OP_CONST, v, _OP_SIZE, size_index[p], _OP_MUL, _OP_ADD]
            if any(abs(x) >= 2**62 for x in ops):
                raise Unsupported("a huge coefficient")
            out += [int(c.is_equality()), add(ops)]
        out[0] += 1
    return out


# -- the trampoline ---------------------------------------------------------------------------

def _trampoline(fn: ir.Function) -> int:
    """The address of ``void t(void *fn, const uint64_t *slots)`` for ``fn``'s
    parameter types (compiled once per signature)."""
    key = tuple((p.kind, INDEX.name if p.kind == "size" else p.dtype.name) for p in fn.params)
    with _lock:
        if key not in _trampolines:
            _trampolines[key] = _compile_trampoline(fn.params)
        return _trampolines[key][1]


def _compile_trampoline(params) -> tuple:
    import llvmlite.binding as llvm
    from llvmlite import ir as ll

    from .codegen.llvm_expr import ll_type
    from .target import LLVM_LOCK, new_jit_machine, target_machine

    tm = target_machine()
    i8p, i64 = ll.IntType(8).as_pointer(), ll.IntType(64)
    types = [ll_type(p.dtype).as_pointer() if p.kind == "array"
             else ll_type(INDEX if p.kind == "size" else p.dtype) for p in params]
    m = ll.Module(name="polyop_trampoline")
    m.triple = tm.triple
    m.data_layout = str(tm.target_data)
    t = ll.Function(m, ll.FunctionType(ll.VoidType(), [i8p, i64.as_pointer()]), "trampoline")
    t.attributes.add("nounwind")
    b = ll.IRBuilder(t.append_basic_block("entry"))
    values = []
    for k, ty in enumerate(types):
        word = b.load(b.gep(t.args[1], [ll.Constant(i64, k)]), align=8)
        if isinstance(ty, ll.PointerType):
            values.append(b.inttoptr(word, ty))
        elif isinstance(ty, ll.IntType):
            values.append(word if ty.width == 64 else b.trunc(word, ty))
        else:
            d = b.bitcast(word, ll.DoubleType())
            values.append(d if isinstance(ty, ll.DoubleType) else b.fptrunc(d, ty))
    callee = b.bitcast(t.args[0], ll.FunctionType(ll.VoidType(), types).as_pointer())
    b.call(callee, values)
    b.ret_void()
    with LLVM_LOCK:
        mod = llvm.parse_assembly(str(m))
        mod.verify()
        engine = llvm.create_mcjit_compiler(mod, new_jit_machine())
        engine.finalize_object()
        return engine, engine.get_function_address("trampoline")


# -- the extension ----------------------------------------------------------------------------

def _extension():
    """The ``polyop_fastcall`` module (built and loaded on first use), or None."""
    global _module, _reason
    if _module is not None or _reason is not None:
        return _module
    with _lock:
        if _module is None and _reason is None:
            if env_int("POLYOP_FASTCALL", 0, 1) == 0:
                _reason = "POLYOP_FASTCALL=0: checks in Python"
            else:
                try:
                    _module = _load(_build())
                except (OSError, ImportError, subprocess.SubprocessError, RuntimeError) as e:
                    _reason = f"compiled checks unavailable, checks in Python: {e}"
    return _module


def _build() -> Path:
    from .fastcall_c import SOURCE

    cc = os.environ.get("CC", "cc")
    includes = [sysconfig.get_paths()["include"], np.get_include()]
    flags = ["-O2", "-shared", "-fPIC", "-w", *(f"-I{d}" for d in includes)]
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    key = hashlib.sha256("\0".join([SOURCE, cc, *flags, sys.version, np.__version__,
                                    suffix]).encode()).hexdigest()[:24]
    directory = cache_subdir("fastcall")
    lib = directory / f"polyop_fastcall_{key}{suffix}"
    if lib.exists():
        return lib
    src = directory / f"polyop_fastcall_{key}.{os.getpid()}.c"
    tmp = directory / f"polyop_fastcall_{key}.{os.getpid()}.tmp"
    src.write_text(SOURCE)
    try:
        done = subprocess.run([*shlex.split(cc), *flags, "-o", str(tmp), str(src)],
                              capture_output=True, text=True, timeout=120)
    finally:
        src.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cc} failed: {done.stderr.strip()[:500]}")
    os.replace(tmp, lib)  # atomic: a concurrent process sees all or nothing
    return lib


def _load(path: Path):
    loader = importlib.machinery.ExtensionFileLoader("polyop_fastcall", str(path))
    spec = importlib.util.spec_from_file_location("polyop_fastcall", str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module

