"""``polyop.build`` and ``polyop.lower``: one entry point for every front-end.

A ``@polyop.kernel``, a ``Program`` or a ``Schedule`` goes to the pipeline
(``polyop.pipeline``); tensor expressions go to ``polyop.te``, which lowers
them through the same pipeline with the parameters in the order the user
names. The dispatch lives here, above both, so that the pipeline does not
import the front-ends that use it.

Example::

    >>> import numpy as np, polyop
    >>> @polyop.kernel
    ... def fill(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 1.0
    >>> a = np.zeros(3); build(fill)(3, a); a
    array([1., 1., 1.])
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from . import ir, te
from .errors import TargetError
from .pipeline import compile_program, lower_ir
from .target import as_target
from .viz import html as _html


def lower(obj, schedule: isl.Schedule | None = None, *, target=None,
          validate: bool = True) -> ir.Function:
    """Lower a kernel or a ``Schedule`` (or a kernel under a raw isl schedule
    tree) to loop IR. The result prints as C-like code: ``print(polyop.lower(k))``.

    ``target`` (a ``polyop.Target`` or its string, default the host) is what
    the loop IR is for: recorded as ``fn.meta["target"]``, it is what
    ``compile_function(fn)`` compiles for.

    ``validate=False`` skips the validation of the generated loop nest
    (``polyop.validate``).

    Tensor expressions: ``lower(sch, [A, B, C])`` (see ``polyop.te.build.lower``).

    ``target="cuda"`` or ``"opencl"`` (a GPU target) lowers the loops bound
    with ``Schedule.bind`` to kernels: the result prints as CUDA C or OpenCL C
    with the host side (``polyop_cuda.LoweredGpu``).
    """
    t = as_target(target)
    if t.is_gpu:
        if te.is_te(obj, schedule):
            return te.lower(obj, schedule, target=t, validate=validate)
        return _gpu().lower(obj, schedule, target=t, validate=validate)
    fn = te.lower(obj, schedule, validate=validate) if te.is_te(obj, schedule) else \
        lower_ir(obj, schedule, validate=validate)
    bound = sorted({f"{n.var} ({n.kind})" for n in ir.walk(fn.body)
                    if isinstance(n, ir.For) and n.kind.is_gpu})
    if bound:
        raise TargetError(f"loops bound to GPU axes: build for target='cuda' or 'opencl' "
                          f"(target {t}; bound: {', '.join(bound)})")
    return replace(fn, meta={**fn.meta, "target": t})


def _gpu():
    """The GPU back end (``polyop_cuda``), imported on first use."""
    import polyop_cuda

    return polyop_cuda


def build(obj, schedule: isl.Schedule | None = None, *, fp_contract: bool = False,
          target=None, validate: bool = True):
    """Lower and JIT-compile a kernel, program or ``Schedule``; returns a callable
    ``CompiledKernel`` with the kernel's argument checks.

    Example: ``f = polyop.build(sch); f(n, A, B)``.

    ``fp_contract=True`` allows floating-point contraction: LLVM may compute
    ``a * b + c`` (and ``a * b - c``, ``c - a * b``) with one fused multiply-add,
    rounded once instead of twice. Results then differ from CPython's in the
    last bits (usually closer to the exact value), and whether a given
    expression is fused depends on the optimiser. The default keeps every
    f32/f64 ``+ - * /`` bit-identical to CPython.

    ``validate=False`` skips the check that the generated loop nest runs
    every statement instance once, in dependence order (``polyop.validate``).

    ``target`` (a ``polyop.Target`` or its string, e.g. ``"cpu -mcpu=znver4"``;
    default the host): for a CPU other than this one the result is a
    ``polyop.export.CrossCompiledKernel`` (``.asm``, ``.llvm_ir``,
    ``.export(path)``), which cannot be called here.

    Tensor expressions: ``build(sch, [A, B, C])``, ``build(C, [A, B, C])`` or
    ``build([A, B, C])`` return a ``polyop.te.TEFunction`` called ``f(A, B, C)``.

    ``target="cuda"`` or ``"opencl"``: a ``polyop_cuda.host.GpuFunction`` that
    runs the kernels of the loops bound with ``Schedule.bind`` (OpenCL through
    pyopencl; CUDA through NVRTC or nvcc and pycuda or cuda-python); without
    the device or driver, ``polyop.TargetUnavailableError``.
    """
    t = as_target(target)
    if te.is_te(obj, schedule):  # on a GPU target too: polyop.te.build routes it
        return te.build(obj, schedule, fp_contract=fp_contract, target=target,
                        validate=validate)
    if t.is_gpu:
        return _gpu().build(obj, schedule, target=t, validate=validate,
                            fp_contract=fp_contract)
    return compile_program(obj, schedule, target=target, fp_contract=fp_contract,
                           validate=validate)


# the schedule sits below the pipeline, so its HTML view (polyop.viz.html) gets
# the generated code from here rather than importing the pipeline
_html.set_lowering(lower)
