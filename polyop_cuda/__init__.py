"""polyop_cuda: the GPU back end of polyop (kernels, shared-memory and register
promotion proven race-free, tensor cores).

Loops bound to GPU axes with ``Schedule.bind`` become kernels; the rest of
the program runs on the host. ``polyop.lower(sch, target="cuda")`` returns
readable CUDA C (with the host launch code), ``target="opencl"`` OpenCL C;
``polyop.build`` compiles and runs them (OpenCL: pyopencl, e.g. on PoCL
without a GPU; CUDA: NVRTC or nvcc, then pycuda or cuda-python's driver
bindings). Modules, in pipeline order:

- ``kernel_ir``: the GPU kernel IR (host program, launches, kernels, barriers);
- ``extract``: loop IR with bound loops → kernel IR (checks, barriers, extents);
- ``promote``, ``registers``: shared-memory and register promotion, the GPU
  copiers of the generic mechanism in ``polyop.promotion`` (cooperative,
  coalesced copies, padding, ``promote_shared``'s choice, the budget);
- ``barriers``, ``proof``: barrier placement, and the isl proof that no two
  threads of a block race on a shared element and no access leaves its buffer;
- ``wmma``: tensor-core tiles for ``tensorize``;
- ``cprinter``: the CUDA C / OpenCL C printer;
- ``host``: launch sizes and limits, the host loop, argument checks (``GpuFunction``);
- ``lowering``: ``lower`` and ``build``, called by ``polyop.lower``/``polyop.build``;
- ``opencl``, ``cuda``: the runtimes; ``nvcc``: compiling CUDA C to cubins.

Importing this package imports no GPU library: those are imported when a
runtime is made, and their absence is a ``polyop.TargetUnavailableError``.
"""

from .kernel_ir import Barrier, BoundLoop, GpuProgram, Kernel, KernelParam, Launch
from .lowering import LoweredGpu, build, lower

__all__ = ["Barrier", "BoundLoop", "GpuProgram", "Kernel", "KernelParam", "Launch",
           "LoweredGpu", "build", "lower"]
