"""The host side of a GPU program, run in Python: launch sizes, limits, argument checks.

``run_host`` walks a ``GpuProgram``'s host tree (loops, conditions,
launches) with the sizes and scalars of a call, evaluates each launch's grid
and block sizes, checks them against the target (``check_launch``: too many
threads per block is an error *before* the launch, naming the limit and the
loops), and hands each launch to the runtime's ``launch`` function.

``GpuFunction`` is what ``polyop.build(..., target="cuda" | "opencl")``
returns: it binds and checks arguments exactly as a CPU kernel does
(``polyop.runtime.CompiledKernel``: sizes, dtypes, shapes, contiguity,
aliasing, assumptions, bounds preconditions), and also accepts device arrays
(objects with ``__cuda_array_interface__``, e.g. CuPy or torch tensors) where
the runtime can use them in place (CUDA).

Host expressions (launch sizes, conditions around launches) are evaluated
by ``polyop.runtime.eval_index``, as the generated code computes them.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from polyop import ir
from polyop.errors import ArgumentError, TargetError
from polyop.runtime import CompiledKernel, eval_index

from .kernel_ir import AXES, GpuProgram, Kernel, Launch


def launch_sizes(k: Kernel, env: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Grid and block sizes (x, y, z) of ``k`` at the values ``env``."""
    return (tuple(max(0, int(eval_index(g, env))) for g in k.grid),
            tuple(max(0, int(eval_index(b, env))) for b in k.block))


def check_launch(k: Kernel, block: tuple[int, ...], grid: tuple[int, ...], target) -> None:
    """Refuse a launch the target cannot run (``TargetError`` naming the limit
    and the loops bound to the axes at fault)."""
    facts = target.gpu
    threads = block[0] * block[1] * block[2]
    bound = [f"{b.name or b.var} ({b.kind.value})" for b in k.loops if b.kind.is_thread]
    if threads > facts.max_threads_per_block:
        raise TargetError(f"kernel {k.name}: {threads} threads per block "
                          f"({' x '.join(map(str, block))}) exceed the target's limit of "
                          f"{facts.max_threads_per_block} ({target}); the thread loops "
                          f"{', '.join(bound)} are too long: split them and bind the "
                          "inner loops")
    for axis, n, limit in zip(AXES, block, facts.max_block):
        if n > limit:
            loops = [b.name or b.var for b in k.loops if b.kind.value == f"threadIdx.{axis}"]
            raise TargetError(f"kernel {k.name}: {n} threads along {axis} exceed the "
                              f"target's limit of {limit} (loop {', '.join(loops)})")
    for axis, n, limit in zip(AXES, grid, facts.max_grid):
        if n > limit:
            loops = [b.name or b.var for b in k.loops if b.kind.value == f"blockIdx.{axis}"]
            raise TargetError(f"kernel {k.name}: {n} blocks along {axis} exceed the "
                              f"target's limit of {limit} (loop {', '.join(loops)})")


def check_static(prog: GpuProgram, target) -> None:
    """``check_launch`` for the kernels whose block size is a constant: at
    build time, before any call."""
    for k in prog.kernels:
        if all(isinstance(b, ir.Const) for b in k.block):
            check_launch(k, tuple(int(b.value) for b in k.block), (1, 1, 1), target)


def run_host(prog: GpuProgram, env: dict, target,
             launch: Callable[[Kernel, tuple, tuple, dict], None]) -> None:
    """Run ``prog``'s host tree at the sizes and scalars ``env``: each launch
    with a non-empty grid goes to ``launch(kernel, grid, block, env)``, in
    program order, after ``check_launch``."""
    def run(node, env: dict) -> None:
        if isinstance(node, Launch):
            grid, block = launch_sizes(node.kernel, env)
            if 0 in grid or 0 in block:
                return  # every bound loop is empty here
            check_launch(node.kernel, block, grid, target)
            launch(node.kernel, grid, block, env)
        elif isinstance(node, ir.Block):
            for s in node.stmts:
                run(s, env)
        elif isinstance(node, ir.If):
            if eval_index(node.cond, env):
                run(node.then, env)
            elif node.else_ is not None:
                run(node.else_, env)
        else:
            assert isinstance(node, ir.For), node
            stop = eval_index(node.stop, env)
            for v in range(eval_index(node.start, env), stop, node.step):
                run(node.body, {**env, node.var: v})

    run(prog.body, env)


def scratch_arrays(prog: GpuProgram) -> dict[str, np.ndarray]:
    """Zeroed host copies of ``prog``'s scratch buffers, for one call."""
    return {name: np.zeros(shape, np.dtype(dtype.numpy)) for name, dtype, shape in prog.scratch}


def cuda_array_interface(a) -> dict | None:
    """``a.__cuda_array_interface__`` (a device array), or ``None``."""
    return getattr(a, "__cuda_array_interface__", None)


class GpuFunction(CompiledKernel):
    """A program built for a GPU target: call it like the Python function
    (see the module docstring). ``.lowered`` is the ``LoweredGpu`` (its text:
    ``.source``), ``.runtime`` the backend that runs it."""

    def __init__(self, lowered, runtime, device_arrays: bool):
        self.program, self.lowered, self.runtime = lowered.model, lowered, runtime
        self.function, self.native = None, None
        self.device_arrays = device_arrays
        self._init_signature(self.program)
        self._call = self._checked_call

    @property
    def source(self) -> str:
        """The generated CUDA C or OpenCL C, host side included."""
        return self.lowered.text

    @property
    def target(self):
        return self.lowered.target

    @property
    def llvm_ir(self) -> str:
        raise AttributeError("a GPU kernel has no LLVM IR: see .source")

    asm = llvm_ir_unoptimized = compile_seconds = llvm_ir

    def export(self, path) -> list[str]:
        raise TargetError("export writes CPU object files; a GPU kernel's code is .source")

    def _array(self, name: str, a, sizes: dict[str, int]) -> None:
        cai = cuda_array_interface(a)
        if cai is None:
            return super()._array(name, a, sizes)
        spec = self.program.arrays[name]
        if not self.device_arrays:
            raise ArgumentError(f"argument {name}: a device array (__cuda_array_interface__) "
                                f"cannot be used by target {self.target}; pass a numpy array",
                                name)
        want = np.dtype(spec.dtype.numpy)
        if np.dtype(cai.get("typestr", "")) != want:
            raise ArgumentError(f"argument {name}: device array of dtype {cai.get('typestr')} "
                                f"does not match {spec.dtype} ({want})", name)
        shape = tuple(cai.get("shape", ()))
        expected = tuple(_extent(e, sizes) for e in spec.extents)
        if len(shape) != spec.ndim:
            raise ArgumentError(f"argument {name}: expected {spec.ndim} dimensions, the device "
                                f"array has {len(shape)}", name)
        if shape != expected:
            raise ArgumentError(f"argument {name}: shape {shape} does not match "
                                f"[{', '.join(spec.shape)}] = {expected}", name)
        strides = cai.get("strides")
        if strides is not None and tuple(strides) != _c_strides(shape, want.itemsize):
            raise ArgumentError(f"argument {name}: device array must be C-contiguous "
                                f"(strides {tuple(strides)})", name)
        if name in self.written and cai["data"][1]:
            raise ArgumentError(f"argument {name}: the kernel writes {name} but the device "
                                "array is read-only", name)

    def _no_aliasing(self, bound: dict) -> None:
        # host arrays as on the CPU; device arrays by their address ranges (a host
        # and a device array never overlap)
        spans = []
        for n in self.arrays:
            a, cai = bound[n], cuda_array_interface(bound[n])
            if cai is None:
                spans.append((n, a, None, a.nbytes))
            else:
                size = int(np.prod(cai["shape"], dtype=np.int64)) * \
                    np.dtype(cai["typestr"]).itemsize
                spans.append((n, None, int(cai["data"][0]), size))
        for i, (na, a, pa, sa) in enumerate(spans):
            for nb, b, pb, sb in spans[i + 1:]:
                if (na not in self.written and nb not in self.written) or not (sa and sb):
                    continue
                if a is not None and b is not None:
                    overlap = np.may_share_memory(a, b)
                else:
                    overlap = pa is not None and pb is not None and pa < pb + sb and pb < pa + sa
                if overlap:
                    raise ArgumentError(f"arguments {na} and {nb} overlap in memory; "
                                        "array arguments must not alias", nb)

    def _checked_call(self, *args, **kwargs) -> None:
        values = self.validate(self.bind(args, kwargs))
        named = dict(zip((a.name for a in self.program.arguments), values))
        self.runtime.run(self.lowered.program, named, self.written)


def _extent(e: ir.Expr, sizes: dict[str, int]) -> int:
    value = eval_index(e, sizes)
    if not isinstance(value, numbers.Integral):
        raise AssertionError(f"extent {e!r} is not an integer")
    return int(value)


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    out, step = [], itemsize
    for n in reversed(shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))
