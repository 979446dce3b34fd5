"""``polyop.lower`` and ``polyop.build`` for the GPU kinds of ``polyop.Target``.

    Schedule (loops bound with ``bind``) ──lower_ir (full strips not isolated)──►
    loop IR ──extract──► GpuProgram (kernel IR) ──cprinter──► CUDA C / OpenCL C
    ──runtime (opencl: pyopencl; cuda: NVRTC or nvcc, then pycuda or cuda-python)──►
    GpuFunction (argument checks, host loops and launches in Python)

``polyop.api`` calls ``lower``/``build`` here when the target is ``cuda`` or
``opencl``; nothing of a GPU library is imported before a runtime is made.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def add(n: int, x: "f32[n]", y: "f32[n]"):
    ...     for i in range(n):
    ...         y[i] += x[i]
    >>> sch = polyop.Schedule(add)
    >>> io, ii = sch.split(sch.get_loops("S0")[0], 128)
    >>> sch.bind(io, "blockIdx.x"); sch.bind(ii, "threadIdx.x")
    >>> text = str(polyop.lower(sch, target="cuda"))
    >>> print(text[text.index('extern "C"'):text.index("// host side")].strip())
    extern "C" __global__ void add_kernel0(
        long long n,
        const float * __restrict__ x,
        float * __restrict__ y) {
      {  // blockIdx.x
        long long i_outer = (long long)blockIdx.x;
        if (i_outer < polyop_floordiv_i64(n - 1, 128) + 1) {
          {  // threadIdx.x
            long long i_inner = (long long)threadIdx.x;
            if (i_inner < polyop_min_i64(127, n - 128 * i_outer - 1) + 1) {
              y[128 * i_outer + i_inner] = y[128 * i_outer + i_inner] + x[128 * i_outer + i_inner];
            }
          }
        }
      }
    }
"""

from __future__ import annotations

from dataclasses import dataclass

from polyop.errors import TargetError
from polyop.pipeline import lower_ir
from polyop.program import Program, as_program
from polyop.schedule import Schedule
from polyop.target import Target, as_target

from .cprinter import DIALECTS, Dialect, device_source, program_text
from .extract import extract
from .host import GpuFunction, check_static
from .kernel_ir import GpuProgram
from .promote import promote_program, requests_from_schedule
from .proof import prove_program
from .wmma import warp_kernels


@dataclass(frozen=True)
class LoweredGpu:
    """A program lowered for a GPU target: ``model`` (the polyop
    ``Program``), ``program`` (the kernel IR), ``target``. ``str()`` is the
    CUDA C or OpenCL C text with the host side (``text``); ``device_source``
    is the part that is compiled."""

    model: Program
    program: GpuProgram
    target: Target

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.target.kind]

    @property
    def text(self) -> str:
        return program_text(self.program, self.dialect)

    @property
    def device_source(self) -> str:
        return device_source(self.program, self.dialect)

    def __str__(self) -> str:
        return self.text


def lower(obj, schedule=None, *, target, validate: bool = True) -> LoweredGpu:
    """Lower a kernel or ``Schedule`` for the GPU ``target`` (see the module
    docstring); refusals name the loops at fault (``ScheduleError``) or the
    target's limit (``TargetError``)."""
    t = as_target(target)
    if not t.is_gpu:
        raise TargetError(f"polyop_cuda.lower: target {t} is not a GPU target "
                          "(cuda or opencl)")
    fn = lower_ir(obj, schedule, validate=validate, isolate=False, promote=False)
    model = obj.program if isinstance(obj, Schedule) else as_program(obj)
    prog = warp_kernels(extract(fn, model), t)  # WMMA tiles run on whole warps
    sch = schedule if schedule is not None else obj
    prog = promote_program(prog, requests_from_schedule(sch), t, model.context)
    prove_program(prog)  # every kernel: no race, no access outside a buffer
    check_static(prog, t)
    return LoweredGpu(model, prog, t)


def build(obj, schedule=None, *, target, validate: bool = True,
          fp_contract: bool = False) -> GpuFunction:
    """Lower, compile and load for the GPU ``target``; a missing device,
    driver or compiler is a ``polyop.TargetUnavailableError``."""
    if fp_contract:
        raise TargetError("fp_contract=True: GPU code is generated without contraction "
                          "(bit-exact + - * /); contraction is a CPU option for now")
    return load(lower(obj, schedule, target=target, validate=validate))


def load(lowered: LoweredGpu) -> GpuFunction:
    """Compile and load a ``LoweredGpu`` with its target's runtime (the last
    step of ``build``; tensor expressions, ``polyop.te.build``, call it with
    their scratch arrays recorded in the model)."""
    if lowered.target.kind == "opencl":
        from .opencl import OpenCLRuntime

        return GpuFunction(lowered, OpenCLRuntime(lowered), device_arrays=False)
    from .cuda import CudaRuntime

    return GpuFunction(lowered, CudaRuntime(lowered), device_arrays=True)
