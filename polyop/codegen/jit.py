"""Compilation of polyop loop IR for a CPU target, JIT-loaded for the host.

``compile_function`` runs the whole CPU back end: loop IR → LLVM IR
(``polyop.codegen.llvm``) → datalayout and triple of the target's machine →
LLVM's O3 module pipeline with loop and SLP vectorisation (``polyop.target``
owns the machines, LLVM's lock and the pipeline) → for the host, MCJIT and a
``CompiledFunction`` callable with Python numbers and numpy arrays; for
another CPU, a ``CrossCompiled`` module (``polyop.codegen.objcode``: assembly
and object code, not callable).

Micro-kernels called by tensorized bands (``ir.Extern``, ``polyop.intrinsic``)
are made available before optimisation: LLVM IR ones are linked into the
kernel's module (internal linkage, so LLVM may inline them), C ones are
compiled and loaded once and their address registered with ``llvm.add_symbol``.

Example::

    >>> import numpy as np
    >>> from polyop.ir import Function, Param, For, Store, Load, Bin, Var, Const
    >>> from polyop.types import f64, i64
    >>> i, n = Var("i"), Var("n")
    >>> fn = Function("double_it", (Param("n", "size", i64), Param("x", "array", f64, (n,))), (),
    ...               For("i", Const(0), n, 1,
    ...                   Store("x", (i,), Bin("mul", Load("x", (i,), f64), Const(2.0, f64), f64))))
    >>> cf = compile_function(fn)
    >>> x = np.arange(4.0); cf(4, x); x
    array([0., 2., 4., 6.])
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import time

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ..ir import Extern, For, Function, walk
from ..kinds import LoopKind
from ..target import LLVM_LOCK, Target, as_target, new_jit_machine, optimize, target_machine
from ..types import INDEX, DType
from . import perfmap
from .llvm import build_module
from .llvm_expr import CodegenError, ll_type
from .objcode import CrossCompiled, NativeCode
from .parallel import ensure_runtime
from .threadpool import ENTRY as _PARALLEL_ENTRY
from .threadpool_region import REGION_ENTRY as _REGION_ENTRY

__all__ = ["CompiledFunction", "compile_function", "host_target_machine", "optimize"]

_ndarray_offset: int | None = None

_CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double,
           "i32": ctypes.c_int32, "i64": ctypes.c_int64}


def host_target_machine() -> llvm.TargetMachine:
    """The LLVM target machine of the host (``polyop.target.target_machine()``).

    Example::

        >>> host_target_machine().triple == llvm.get_process_triple()
        True
    """
    return target_machine()


def _data_offset() -> int:
    global _ndarray_offset
    if _ndarray_offset is None:
        _ndarray_offset = _ndarray_data_offset()
    return _ndarray_offset


def link_externs(mod: llvm.ModuleRef, fn: Function, tm: llvm.TargetMachine,
                 target: Target | None = None) -> None:
    """Make every micro-kernel ``fn`` calls (``ir.Extern``) resolvable for
    ``target`` (default the host): link the LLVM IR of those that have it
    into ``mod`` with internal linkage (so that LLVM may inline them); the
    others register their symbol themselves (C ones, for a host target)."""
    texts: dict[str, str | None] = {}
    for node in walk(fn.body):
        if isinstance(node, Extern) and node.impl is not None:
            text = node.impl.link_ir(target)
            if texts.setdefault(node.symbol, text) != text:
                raise CodegenError(f"two different micro-kernels define @{node.symbol}")
    for symbol, text in texts.items():
        if text is None:
            continue
        other = llvm.parse_assembly(text)
        other.triple = tm.triple
        other.data_layout = str(tm.target_data)
        mod.link_in(other)
        mod.get_function(symbol).linkage = "internal"


def _ndarray_data_offset() -> int:
    """Byte offset of the ``data`` pointer inside a numpy array object
    (``PyArrayObject_fields.data``, right after the object header: 16 on
    64-bit CPython), found by probing two live arrays."""
    probes = [np.empty(3), np.empty((2, 2), np.float32)]
    for off in range(8, 64, 8):
        if all(ctypes.c_void_p.from_address(id(a) + off).value
               == a.__array_interface__["data"][0] for a in probes):
            return off
    raise RuntimeError("cannot locate the data pointer in numpy's array object")


def _python_entry(fn: Function, symbol: str, data_offset: int, tm) -> llvm.ModuleRef:
    """A module with ``<symbol>__py``: same arguments as the kernel except
    that arrays come as ``PyObject*`` (numpy arrays); it loads each array's
    data pointer and tail-calls the kernel. This lets ctypes pass arrays as
    ``py_object`` (~0.1 µs each) instead of a Python-side pointer lookup."""
    m = ir.Module(name=symbol + "__py")
    m.triple = tm.triple
    m.data_layout = str(tm.target_data)
    kernel_args, entry_args = [], []
    i8p = ir.IntType(8).as_pointer()
    for p in fn.params:
        if p.kind == "array":
            kernel_args.append(ll_type(p.dtype).as_pointer())
            entry_args.append(i8p)
        else:
            t = ll_type(INDEX if p.kind == "size" else p.dtype)
            kernel_args.append(t)
            entry_args.append(t)
    kernel = ir.Function(m, ir.FunctionType(ir.VoidType(), kernel_args), symbol)
    entry = ir.Function(m, ir.FunctionType(ir.VoidType(), entry_args), symbol + "__py")
    entry.attributes.add("nounwind")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    args = []
    for p, a, kt in zip(fn.params, entry.args, kernel_args, strict=True):
        if p.kind == "array":
            slot = b.bitcast(b.gep(a, [ir.Constant(ir.IntType(64), data_offset)]),
                             kt.as_pointer())
            a = b.load(slot, align=8)
        args.append(a)
    b.call(kernel, args, tail=True)
    b.ret_void()
    mod = llvm.parse_assembly(str(m))
    mod.verify()
    return mod


class CompiledFunction(NativeCode):
    """A JIT-compiled kernel for the host. Call it with the arguments in ``fn.params``
    order: sizes as ``int``, scalars as numbers, arrays as C-contiguous numpy
    arrays of the right dtype (not checked here: the caller validates; an
    array argument that is not a numpy array is undefined behaviour).

    Attributes (``NativeCode``'s, and): ``llvm_ir`` (optimised),
    ``llvm_ir_unoptimized``, ``asm`` (host assembly, produced on first
    access), ``compile_seconds``, ``target``, ``symbol`` (native function
    name), ``address`` (its address: a C
    function with one argument per parameter, arrays as data pointers),
    ``functions`` (``(start, size, name)`` of each function of its machine
    code, ``polyop.codegen.perfmap``), ``function`` (the IR).
    """

    def __init__(self, fn: Function, symbol: str, target: Target, engine: llvm.ExecutionEngine,
                 llvm_ir_unoptimized: str, llvm_ir: str, compile_seconds: float):
        super().__init__(fn, symbol, target, llvm_ir_unoptimized, llvm_ir, compile_seconds)
        self._engine = engine  # owns the modules and the machine code
        self.functions: list[tuple[int, int, str]] = []
        self.address = engine.get_function_address(symbol)
        argtypes = []
        for p in fn.params:
            if p.kind == "array":
                argtypes.append(ctypes.py_object)
            else:
                dt: DType = INDEX if p.kind == "size" else p.dtype
                argtypes.append(_CTYPES[dt.name])
        entry = engine.get_function_address(symbol + "__py")
        # CFUNCTYPE (not PYFUNCTYPE): the GIL is released while the kernel runs
        self._cfunc = ctypes.CFUNCTYPE(None, *argtypes)(entry)
        self._nargs = len(argtypes)

    def __call__(self, *args) -> None:
        if len(args) != self._nargs:
            raise TypeError(f"{self.function.name}() takes {self._nargs} arguments, "
                            f"got {len(args)}")
        self._cfunc(*args)

    def __repr__(self) -> str:
        return f"<CompiledFunction {self.symbol} ({self.compile_seconds * 1e3:.1f} ms)>"


def prefer_vector_width(text: str, bits: int, legal: int | None = None) -> str:
    """The module ``text`` (as llvmlite prints it) with every function
    defined in it asking LLVM's vectorizers for vectors of ``bits`` (the
    ``prefer-vector-width`` attribute). Vector code already written wider
    needs ``legal``, its width, as ``min-legal-vector-width``: without it
    x86's back end splits it into ``bits``-bit halves. Both together, the
    loops left to LLVM get ``bits``-bit vectors beside explicit vector loops
    of ``legal`` bits in the same function (covariance at MEDIUM on Zen 4,
    its column sums in explicit 512-bit strips: the rest had been vectorised
    at 512 bits too). llvmlite's function attributes take no string
    attribute, hence the text.

    Example::

        >>> prefer_vector_width('define void @"f"() nounwind\\n{', 256)
        'define void @"f"() nounwind "prefer-vector-width"="256"\\n{'
        >>> prefer_vector_width('define void @"f"()\\n{', 256, 512).split("()")[1]
        ' "prefer-vector-width"="256" "min-legal-vector-width"="512"\\n{'
    """
    text = _attribute(text, "prefer-vector-width", str(bits))
    return text if legal is None else _attribute(text, "min-legal-vector-width", str(legal))


def prefer_no_gather(text: str, features: str) -> str:
    """The module ``text`` with every function defined in it telling LLVM's
    vectorizers not to form gather instructions (the x86 tuning feature
    ``prefer-no-gather``, added to the target's ``features``: a function's
    ``target-features`` replace the machine's). For kernels whose schedule
    unrolls a loop: the SLP vectorizer would otherwise pack the unrolled
    copies' loads from different rows into gathers (an unroll-and-jam of
    row sums, ``polyop.autoschedule.jam``: atax at MEDIUM on Zen 4, 1
    thread, 0.089 ms with the gathers, 0.046 without; the kernel as written
    0.142).

    Example::

        >>> prefer_no_gather('define void @"f"() nounwind\\n{', "+avx2")
        'define void @"f"() nounwind "target-features"="+avx2,+prefer-no-gather"\\n{'
    """
    return _attribute(text, "target-features",
                      ",".join(filter(None, (features, "+prefer-no-gather"))))


def _attribute(text: str, key: str, value: str) -> str:
    """``key``=``value`` added to every function defined in the module ``text``."""
    return re.sub(r"^(define [^\n]*)\n\{", rf'\1 "{key}"="{value}"\n{{', text, flags=re.M)


def compile_function(fn: Function, *, fp_contract: bool = False,
                     target: Target | str | None = None) -> NativeCode:
    """Compile a loop-IR ``Function`` for ``target`` (default: the one
    ``polyop.lower`` recorded in ``fn.meta["target"]``, else the host).

    For the host (any target whose ``is_host`` is true) the result is a
    callable ``CompiledFunction``; for another CPU a ``CrossCompiled``
    module (``asm``, ``llvm_ir``, ``object_code()``). A kernel with
    ``parallel`` loops links against the thread runtime
    (``polyop.codegen.parallel``), compiled on first need. ``fp_contract``
    lets LLVM fuse float multiplies and adds into FMAs (the ``contract``
    flag, see ``polyop.build``); it is recorded as ``fn.meta["fp_contract"]``.

    Example::

        >>> from polyop.ir import Function, Block
        >>> cf = compile_function(Function("nop", (), (), Block(())))
        >>> cf()
        >>> "polyop_nop" in cf.llvm_ir
        True
    """
    t0 = time.perf_counter()
    target = as_target(target if target is not None else fn.meta.get("target"))
    if fp_contract:
        fn = dataclasses.replace(fn, meta={**fn.meta, "fp_contract": True})
    tm = target_machine(target)
    module, symbol = build_module(fn, target)
    parallel = _PARALLEL_ENTRY in module.globals or _REGION_ENTRY in module.globals
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    text = str(module)
    if target.autovec_bits < target.vector_bits:
        explicit = any(isinstance(s, For) and s.kind == LoopKind.VECTOR for s in walk(fn.body))
        text = prefer_vector_width(text, target.autovec_bits,
                                   target.vector_bits if explicit else None)
    if fn.meta.get("unrolled") and target.triple.startswith(("x86_64", "i386", "i686")):
        text = prefer_no_gather(text, target.features)
    with LLVM_LOCK:  # LLVM's global context and the shared machine
        mod = llvm.parse_assembly(text)
        link_externs(mod, fn, tm, target)
        mod.verify()
        unoptimized = str(mod)
        optimize(mod, tm)
        optimized = str(mod)
    if not target.is_host:
        return CrossCompiled(fn, symbol, target, unoptimized, optimized,
                             time.perf_counter() - t0)
    if parallel:
        ensure_runtime()  # defines the symbol before MCJIT resolves it
    with LLVM_LOCK:
        # MCJIT takes ownership of (and frees) its target machine: give each
        # engine its own, identical to the shared one (creating one costs ~0.2 ms)
        engine = llvm.create_mcjit_compiler(mod, new_jit_machine(target))
        entry = _python_entry(fn, symbol, _data_offset(), tm)
        engine.add_module(entry)
        engine.finalize_object()
        functions = perfmap.register(engine, [mod, entry])
    cf = CompiledFunction(fn, symbol, target, engine, unoptimized, optimized, 0.0)
    cf.functions = functions
    cf.compile_seconds = time.perf_counter() - t0
    return cf
