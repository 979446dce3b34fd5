"""Compiled kernels as files, and kernels compiled for another machine.

``export(obj, path)`` writes any compiled kernel — a ``CompiledKernel``, a
tensor-expression function, a ``polyop.ops`` operator, a cross-compiled
kernel — as an object file (``.o``) or shared library (``.so``) with a C
header (``.h``): see ``polyop.codegen.objcode`` for the files and the C
calling convention. ``CrossCompiledKernel`` is what ``polyop.build(...,
target=...)`` returns for a CPU other than this one: its code (``.asm``,
``.llvm_ir``, ``.export``), not a callable.

Example::

    >>> import polyop, tempfile, os
    >>> @polyop.kernel
    ... def axpy(n: int, a: "f32", x: "f32[n]", y: "f32[n]"):
    ...     for i in range(n):
    ...         y[i] += a * x[i]
    >>> arm = polyop.build(axpy, target="cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2")
    >>> "fmul" in arm.asm or "fmla" in arm.asm
    True
    >>> d = tempfile.mkdtemp()
    >>> [os.path.basename(p) for p in export(arm, os.path.join(d, "axpy.o"))]
    ['axpy.o', 'axpy.h']
    >>> "void polyop_axpy(int64_t n, float a," in open(os.path.join(d, "axpy.h")).read()
    True
"""

from __future__ import annotations

import os

from .runtime import CompiledKernel

__all__ = ["CrossCompiledKernel", "export"]


class CrossCompiledKernel(CompiledKernel):
    """A kernel compiled for a CPU other than this one (``polyop.build(...,
    target=...)``): ``.llvm_ir``, ``.asm``, ``.target``, ``.export(path)``;
    calling it raises ``TargetError``."""

    def __call__(self, *args, **kwargs) -> None:
        self.native()  # raises TargetError naming the target

    def __repr__(self) -> str:
        return f"<polyop kernel {self.program.name} cross-compiled for {self.target}>"


def compiled_kernel(obj) -> CompiledKernel:
    """The ``CompiledKernel`` behind a kernel, TE function or operator."""
    seen = obj
    for _ in range(4):
        if isinstance(seen, CompiledKernel):
            return seen
        seen = getattr(seen, "kernel", None) or getattr(seen, "function", None)
    raise TypeError(f"expected a compiled polyop kernel, got {type(obj).__name__}")


def export(obj, path: str | os.PathLike) -> list[str]:
    """Write the compiled kernel ``obj`` to ``path`` (``.o`` or ``.so``) and
    its C header (``.h``); returns the paths written."""
    return compiled_kernel(obj).export(path)
