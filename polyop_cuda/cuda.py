"""The CUDA runtime: cubins from ``polyop_cuda.nvcc``, launched with pycuda or cuda-python.

The driver is looked for first (a build on a machine without a GPU fails
fast, before compiling): pycuda (``pycuda.driver``) when importable, else
cuda-python's driver bindings (``cuda.bindings.driver``). Neither importable,
no ``libcuda``, or no device: ``polyop.TargetUnavailableError``, at build or
call time, never at import.

Arrays: numpy arrays are copied to the device and the written ones back;
device arrays (``__cuda_array_interface__``: CuPy, torch, numba) are passed
by pointer, without copies. Launches go to the default stream in order.
"""

from __future__ import annotations

import ctypes

import numpy as np

from polyop.errors import TargetUnavailableError

from .host import cuda_array_interface, run_host, scratch_arrays
from .kernel_ir import GpuProgram, Kernel
from .nvcc import compile_cubin

_CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double, "i32": ctypes.c_int32,
           "i64": ctypes.c_int64}


def driver(target) -> tuple[str, object]:
    """``("pycuda", pycuda.driver)`` or ``("cuda-python", cuda.bindings.driver)``,
    initialised with a device present; else ``TargetUnavailableError``."""
    why = []
    try:
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() < 1:
            raise RuntimeError("no CUDA device")
        return "pycuda", drv
    except Exception as e:  # noqa: BLE001 - not installed, no libcuda, no device
        why.append(f"pycuda: {e}")
    try:
        try:
            from cuda.bindings import driver as cu
        except ImportError:
            from cuda import cuda as cu  # cuda-python before 12.6
        (err,) = cu.cuInit(0)
        if int(err) != 0:
            raise RuntimeError(f"cuInit: {err}")
        err, count = cu.cuDeviceGetCount()
        if int(err) != 0 or count < 1:
            raise RuntimeError("no CUDA device")
        return "cuda-python", cu
    except Exception as e:  # noqa: BLE001
        why.append(f"cuda-python: {e}")
    raise TargetUnavailableError(f"target {target}: no usable CUDA driver ({'; '.join(why)}); "
                                 "polyop.lower(..., target='cuda') still shows the code, "
                                 "and target='opencl' runs it on an OpenCL device")


def _check(result, what: str):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA driver: {what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class CudaRuntime:
    """Loads a lowered program's kernels on the first CUDA device and runs them."""

    def __init__(self, lowered):
        self.kind, self.drv = driver(lowered.target)
        self.target = lowered.target
        cubin = compile_cubin(lowered.device_source, lowered.target.gpu.arch.rstrip("a"))
        names = [k.name for k in lowered.program.kernels]
        if self.kind == "pycuda":
            import pycuda.autoinit  # noqa: F401 - a context on device 0

            self.module = self.drv.module_from_buffer(cubin)
            self.functions = {n: self.module.get_function(n) for n in names}
        else:
            cu = self.drv
            device = _check(cu.cuDeviceGet(0), "cuDeviceGet")
            self.context = _check(cu.cuDevicePrimaryCtxRetain(device), "cuDevicePrimaryCtxRetain")
            _check(cu.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")
            self.module = _check(cu.cuModuleLoadData(cubin), "cuModuleLoadData")
            self.functions = {n: _check(cu.cuModuleGetFunction(self.module, n.encode()),
                                        "cuModuleGetFunction") for n in names}

    # -- memory ----------------------------------------------------------------------------
    def _alloc(self, a: np.ndarray):
        if self.kind == "pycuda":
            buf = self.drv.mem_alloc(max(1, a.nbytes))
            if a.nbytes:
                self.drv.memcpy_htod(buf, a)
            return buf, int(buf)
        cu = self.drv
        ptr = _check(cu.cuMemAlloc(max(1, a.nbytes)), "cuMemAlloc")
        if a.nbytes:
            _check(cu.cuMemcpyHtoD(ptr, a.ctypes.data, a.nbytes), "cuMemcpyHtoD")
        return ptr, int(ptr)

    def _copy_back(self, a: np.ndarray, handle) -> None:
        if not a.nbytes:
            return
        if self.kind == "pycuda":
            self.drv.memcpy_dtoh(a, handle)
        else:
            _check(self.drv.cuMemcpyDtoH(a.ctypes.data, handle, a.nbytes), "cuMemcpyDtoH")

    def _free(self, handle) -> None:
        if self.kind == "pycuda":
            handle.free()
        else:
            _check(self.drv.cuMemFree(handle), "cuMemFree")

    # -- a call ------------------------------------------------------------------------------
    def run(self, prog: GpuProgram, values: dict, written: set[str]) -> None:
        """Run ``prog`` with the checked arguments ``values`` (by name)."""
        pointers, owned = {}, {}
        try:
            arrays = {p.name: values[p.name] for p in prog.params if p.kind == "array"}
            arrays.update(scratch_arrays(prog))
            for name, a in arrays.items():
                cai = cuda_array_interface(a)
                if cai is not None:  # already on the device: used in place
                    pointers[name] = int(cai["data"][0])
                else:
                    owned[name], pointers[name] = self._alloc(a)
            env = {p.name: values[p.name] for p in prog.params if p.kind != "array"}
            run_host(prog, env, self.target,
                     lambda k, grid, block, env: self._launch(k, grid, block, env, pointers))
            self._synchronize()
            for name, handle in owned.items():
                if name in written:
                    self._copy_back(values[name], handle)
        finally:
            for handle in owned.values():
                self._free(handle)

    def _synchronize(self) -> None:
        if self.kind == "pycuda":
            self.drv.Context.synchronize()
        else:
            _check(self.drv.cuCtxSynchronize(), "cuCtxSynchronize")

    def _launch(self, k: Kernel, grid: tuple, block: tuple, env: dict, pointers: dict) -> None:
        values, types = [], []
        for p in k.params:
            if p.kind == "array":
                values.append(pointers[p.name])
                types.append(ctypes.c_void_p)
            else:
                values.append(env[p.name])
                types.append(_CTYPES[p.dtype.name])
        if self.kind == "pycuda":
            args = [np.uintp(v) if t is ctypes.c_void_p else
                    np.dtype(p.dtype.numpy).type(v) for v, t, p in zip(values, types, k.params)]
            self.functions[k.name](*args, grid=tuple(grid), block=tuple(block))
            return
        _check(self.drv.cuLaunchKernel(self.functions[k.name], *grid, *block, 0, 0,
                                       (tuple(values), tuple(types)), 0), "cuLaunchKernel")
