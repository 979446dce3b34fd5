"""The native code of one kernel for one target: assembly and object files.

``NativeCode`` holds what every compiled kernel has, whichever machine it
is for: the loop IR (``function``), the optimised LLVM IR (``llvm_ir``, and
``llvm_ir_unoptimized``), the ``target``, the kernel's C ``symbol``, and on
demand the ``asm`` and an object file (``object_code()``). The JIT's
``CompiledFunction`` (``polyop.codegen.jit``) adds the callable for the
host; ``CrossCompiled``, for another CPU, refuses to be called.

An object file is self-contained: a kernel with ``parallel`` loops carries
the thread pool (``polyop.codegen.threadpool``, built for the same target)
with it; its ``polyop_rt_*`` functions are global so a C program can set the
thread count (default 1), and weak so that two kernels in one program share
one pool. Micro-kernels written in C (``polyop.intrinsic``) are not in
it: they are compiled by the C compiler (see ``polyop.export``).

Example::

    >>> from polyop.ir import Function, Block
    >>> from polyop.codegen.jit import compile_function
    >>> cc = compile_function(Function("nop", (), (), Block(())),
    ...                       target="cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2")
    >>> cc.target.arch, "ret" in cc.asm, cc.object_code()[:4]
    ('aarch64', True, b'\\x7fELF')
    >>> cc()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyop.errors.TargetError: nop was compiled for cpu -mtriple=aarch64-..., not for this ...
"""

from __future__ import annotations

import llvmlite.binding as llvm

from ..errors import TargetError
from ..ir import Extern, Function, walk
from ..target import LLVM_LOCK, Target, host, target_machine
from .threadpool import ENTRY, build_pool_module

__all__ = ["CrossCompiled", "NativeCode"]


class NativeCode:
    """Optimised LLVM IR of a kernel for ``target`` and what LLVM makes of it
    (see the module docstring)."""

    def __init__(self, fn: Function, symbol: str, target: Target, llvm_ir_unoptimized: str,
                 llvm_ir: str, compile_seconds: float):
        self.function = fn
        self.symbol = symbol
        self.target = target
        self.llvm_ir_unoptimized = llvm_ir_unoptimized
        self.llvm_ir = llvm_ir
        self.compile_seconds = compile_seconds
        self._asm: str | None = None

    @property
    def asm(self) -> str:
        """The target's assembly of the optimised module (made on first access)."""
        if self._asm is None:
            tm = target_machine(self.target)
            with LLVM_LOCK:
                self._asm = tm.emit_assembly(llvm.parse_assembly(self.llvm_ir))
        return self._asm

    @property
    def c_externs(self) -> list:
        """The C micro-kernels (``polyop.intrinsic``) the code calls: linked
        from elsewhere, not part of ``object_code()``."""
        found = {}
        for node in walk(self.function.body):
            if isinstance(node, Extern) and node.impl is not None \
                    and getattr(node.impl, "c_source", None) is not None:
                found.setdefault(node.symbol, node.impl)
        return list(found.values())

    def object_code(self) -> bytes:
        """A relocatable object file (position-independent) of the kernel for
        its target, with the thread pool if the kernel has ``parallel`` loops."""
        tm = target_machine(self.target)
        with LLVM_LOCK:
            mod = llvm.parse_assembly(self.llvm_ir)
            if ENTRY in {f.name for f in mod.functions}:
                pool = build_pool_module(self.target.triple)
                pool.data_layout = str(tm.target_data)
                pool_mod = llvm.parse_assembly(str(pool))
                # weak: two kernels linked into one program share one pool
                # (every copy is the same code; the state unifies too)
                for g in [*pool_mod.global_variables, *pool_mod.functions]:
                    if not g.is_declaration:
                        g.linkage = "weak"
                pool_mod.verify()
                mod.link_in(pool_mod)
            return tm.emit_object(mod)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.symbol} for {self.target} "
                f"({self.compile_seconds * 1e3:.1f} ms)>")


class CrossCompiled(NativeCode):
    """A kernel compiled for a CPU other than this one: ``asm``, ``llvm_ir``,
    ``object_code()``; calling it raises ``TargetError``."""

    def __call__(self, *args) -> None:
        raise TargetError(f"{self.function.name} was compiled for {self.target}, not for "
                          f"this machine ({host()}): export it (.export(path)) and link it "
                          f"there, or build it for the host (target='cpu')")
