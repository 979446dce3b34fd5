"""JIT compilation of polyop loop IR for the host CPU.

``compile_function`` runs the whole CPU back end: loop IR → LLVM IR
(``polyop.codegen.llvm``) → datalayout and triple of the host target machine →
LLVM's O3 module pipeline with loop and SLP vectorisation → MCJIT → a
``CompiledFunction`` callable with Python numbers and numpy arrays.

The host ``TargetMachine`` (host triple, ``llvm.get_host_cpu_name()`` and all
host CPU features, codegen opt level 3) is created once per process.

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
import ctypes.util
import threading
import time

import llvmlite.binding as llvm

from ..ir import Function
from ..types import INDEX, DType
from .llvm import build_module

__all__ = ["CompiledFunction", "compile_function", "host_target_machine"]

_lock = threading.Lock()
_target_machine: llvm.TargetMachine | None = None
_host: tuple | None = None  # (Target, cpu name, feature string)

_CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double,
           "i32": ctypes.c_int32, "i64": ctypes.c_int64}


def _init_llvm() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    # make libm's tanh/fmod/... resolvable by MCJIT even if the process has
    # not loaded libm globally
    libm = ctypes.util.find_library("m")
    if libm:
        try:
            llvm.load_library_permanently(libm)
        except RuntimeError:
            pass


def host_target_machine() -> llvm.TargetMachine:
    """The process-wide target machine for the host CPU (created on first use).

    Example::

        >>> host_target_machine().triple == llvm.get_process_triple()
        True
    """
    global _target_machine
    if _target_machine is None:
        with _lock:
            if _target_machine is None:
                _init_llvm()
                _target_machine = _new_target_machine()
    return _target_machine


def _new_target_machine() -> llvm.TargetMachine:
    global _host
    if _host is None:
        _host = (llvm.Target.from_triple(llvm.get_process_triple()),
                 llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten())
    target, cpu, features = _host
    return target.create_target_machine(cpu=cpu, features=features, opt=3,
                                        reloc="default", codemodel="jitdefault", jit=True)


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine) -> None:
    """Run LLVM's O3 module pipeline (loop and SLP vectorisation on) in place."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pto.loop_interleaving = True
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(module, pb)


def _array_ptr(a) -> int:
    return a.__array_interface__["data"][0]


class CompiledFunction:
    """A JIT-compiled kernel. Call it with the arguments in ``fn.params``
    order: sizes as ``int``, scalars as numbers, arrays as C-contiguous numpy
    arrays of the right dtype (not checked here: the caller validates).

    Attributes: ``llvm_ir`` (optimised), ``llvm_ir_unoptimized``, ``asm``
    (host assembly, produced on first access), ``compile_seconds``,
    ``symbol`` (native function name), ``function`` (the IR).
    """

    def __init__(self, fn: Function, symbol: str, engine: llvm.ExecutionEngine,
                 llvm_ir_unoptimized: str, llvm_ir: str, compile_seconds: float):
        self.function = fn
        self.symbol = symbol
        self.llvm_ir_unoptimized = llvm_ir_unoptimized
        self.llvm_ir = llvm_ir
        self.compile_seconds = compile_seconds
        self._engine = engine  # owns the module and the machine code
        self._asm: str | None = None
        self.address = engine.get_function_address(symbol)
        argtypes = []
        convs = []
        for p in fn.params:
            if p.kind == "array":
                argtypes.append(ctypes.c_void_p)
                convs.append(_array_ptr)
            else:
                dt: DType = INDEX if p.kind == "size" else p.dtype
                argtypes.append(_CTYPES[dt.name])
                convs.append(float if dt.is_float else int)
        self._cfunc = ctypes.CFUNCTYPE(None, *argtypes)(self.address)
        self._convs = tuple(convs)
        self._nargs = len(convs)

    def __call__(self, *args) -> None:
        if len(args) != self._nargs:
            raise TypeError(f"{self.function.name}() takes {self._nargs} arguments, "
                            f"got {len(args)}")
        self._cfunc(*[c(a) for c, a in zip(self._convs, args)])

    @property
    def asm(self) -> str:
        """Host assembly of the optimised module (generated on first access)."""
        if self._asm is None:
            mod = llvm.parse_assembly(self.llvm_ir)
            self._asm = host_target_machine().emit_assembly(mod)
        return self._asm

    def __repr__(self) -> str:
        return f"<CompiledFunction {self.symbol} ({self.compile_seconds * 1e3:.1f} ms)>"


def compile_function(fn: Function) -> CompiledFunction:
    """Compile a loop-IR ``Function`` to native code for the host CPU.

    Raises ``NotImplementedError`` for ``parallel`` loops.

    Example::

        >>> from polyop.ir import Function, Block
        >>> cf = compile_function(Function("nop", (), (), Block(())))
        >>> cf()
        >>> "polyop_nop" in cf.llvm_ir
        True
    """
    t0 = time.perf_counter()
    tm = host_target_machine()
    module, symbol = build_module(fn)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    mod = llvm.parse_assembly(str(module))
    mod.verify()
    unoptimized = str(mod)
    optimize(mod, tm)
    optimized = str(mod)
    # MCJIT takes ownership of (and frees) its target machine: give each
    # engine its own, identical to the shared one (creating one costs ~0.2 ms)
    engine = llvm.create_mcjit_compiler(mod, _new_target_machine())
    engine.finalize_object()
    cf = CompiledFunction(fn, symbol, engine, unoptimized, optimized, 0.0)
    cf.compile_seconds = time.perf_counter() - t0
    return cf
