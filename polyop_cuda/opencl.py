"""The OpenCL runtime: a ``GpuProgram``'s OpenCL C run through pyopencl.

Without a GPU this runs on PoCL's CPU device (``pip install pyopencl
pocl-binary-distribution``), which is how the GPU back end is tested in CI;
on CPUs newer than PoCL's LLVM, on Intel's CPU runtime (``intel-opencl-rt``,
see ``polyop.gputarget.default_device``).
Per call: each array argument is copied to a device buffer, the host tree
runs (``polyop_cuda.host.run_host``) enqueuing each launch in order on one
in-order queue (a launch starts after the previous one has finished), then
the arrays the program writes are copied back.

Kernels are compiled once per build, with single-precision division and
square root correctly rounded (as on the CPU).
"""

from __future__ import annotations

import warnings

import numpy as np

from polyop.errors import CodegenError, TargetUnavailableError
from polyop.gputarget import POCL_PLATFORM, compiler_problem, opencl_device

from .kernel_ir import GpuProgram, Kernel

_contexts: dict[int, tuple] = {}


def _context(target):
    """(pyopencl, context, queue, device) of the target's device, made once."""
    try:
        import pyopencl as cl
    except ImportError as e:
        raise TargetUnavailableError(f"target {target}: pyopencl is not installed "
                                     "(pip install pyopencl pocl-binary-distribution)") from e
    found = opencl_device(target.gpu.device)
    if found is None:
        raise TargetUnavailableError(f"target {target}: no OpenCL device found (install a "
                                     "GPU driver's ICD, or pocl-binary-distribution for the CPU)")
    index, device = found
    if index not in _contexts:
        ctx = cl.Context([device])
        _contexts[index] = (cl, ctx, cl.CommandQueue(ctx), device)
    return _contexts[index]


class OpenCLRuntime:
    """Compiles a lowered program's OpenCL C for the target's device and runs it."""

    def __init__(self, lowered):
        self.cl, self.ctx, self.queue, self.device = _context(lowered.target)
        self.target = lowered.target
        source = lowered.device_source
        options = ["-cl-fp32-correctly-rounded-divide-sqrt"]
        try:
            with warnings.catch_warnings():  # Intel's compiler logs every successful build
                warnings.simplefilter("ignore", self.cl.CompilerWarning)
                self.binary = self.cl.Program(self.ctx, source).build(options=options)
        except self.cl.Error as e:
            problem = compiler_problem(self.device)
            if problem is not None:  # the device's compiler fails on any kernel here
                platform = self.device.platform.name
                hint = (" (PoCL's pip build carries LLVM 14, which does not know CPUs newer "
                        "than it: pip install intel-opencl-rt, or a PoCL built with a newer "
                        "LLVM)" if POCL_PLATFORM in platform else "")
                raise TargetUnavailableError(
                    f"target {self.target}: the OpenCL device {self.device.name.strip()!r} "
                    f"({platform}) cannot compile for this machine: {problem}{hint}") from e
            # otherwise a bug of the printer, never of the user's kernel
            raise CodegenError(f"the OpenCL compiler refused the generated code of "
                               f"{lowered.program.name}: {e}", "", "", "compile") from e
        self.kernels = {k.name: getattr(self.binary, k.name) for k in lowered.program.kernels}

    def run(self, prog: GpuProgram, values: dict, written: set[str]) -> None:
        """Run ``prog`` with the checked arguments ``values`` (by name);
        arrays in ``written`` are copied back."""
        cl = self.cl
        from .host import run_host, scratch_arrays

        flags = cl.mem_flags
        buffers = {}
        arrays = {p.name: values[p.name] for p in prog.params if p.kind == "array"}
        arrays.update(scratch_arrays(prog))
        for name, a in arrays.items():
            if a.nbytes:
                buffers[name] = cl.Buffer(self.ctx, flags.READ_WRITE | flags.COPY_HOST_PTR,
                                          hostbuf=a)
            else:  # OpenCL has no empty buffers; nothing reads this one
                buffers[name] = cl.Buffer(self.ctx, flags.READ_WRITE, 1)
        env = {p.name: values[p.name] for p in prog.params if p.kind != "array"}

        def launch(k: Kernel, grid: tuple, block: tuple, env: dict) -> None:
            args = []
            for p in k.params:
                if p.kind == "array":
                    args.append(buffers[p.name])
                else:
                    args.append(np.dtype(p.dtype.numpy).type(env[p.name]))
            size = tuple(g * b for g, b in zip(grid, block))
            self.kernels[k.name](self.queue, size, block, *args)

        run_host(prog, env, self.target, launch)
        for p in prog.params:
            if p.kind == "array" and p.name in written and values[p.name].nbytes:
                cl.enqueue_copy(self.queue, values[p.name], buffers[p.name])
        self.queue.finish()
