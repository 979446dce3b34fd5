"""Calling compiled kernels: argument binding and validation.

Before native code runs, every argument is checked against the kernel's
signature, and any mismatch raises ``ArgumentError`` naming the argument:

- size parameters are integers (a size left out is inferred from an array
  whose extent is exactly that parameter);
- scalars are real numbers (integers for integer scalars);
- arrays are numpy arrays of the exact dtype and rank, C-contiguous, with the
  shape the size parameters imply; arrays the kernel writes are writeable; no
  array the kernel writes overlaps another array argument in memory (the
  generated code assumes no aliasing; arrays only read may share memory);
- the sizes satisfy the kernel's ``assert`` assumptions and its bounds
  preconditions (``polyop.bounds``).

The checks run in C (``polyop.fastcall``, a fraction of a microsecond) when
its extension can be built; every call they refuse comes to the Python path
here (``CompiledKernel._checked_call``), which raises the error.

Example::

    >>> import numpy as np, polyop
    >>> @polyop.kernel
    ... def scale(n: int, x: "f64[n]"):
    ...     for i in range(n):
    ...         x[i] *= 2.0
    >>> scale(3, np.ones(4))
    Traceback (most recent call last):
    ...
    polyop.errors.ArgumentError: argument x: shape (4,) does not match [n] = (3,)
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

from . import ir
from .bounds import check_bounds
from .errors import ArgumentError
from .program import Program

_I64 = (-(2**63), 2**63 - 1)


#: the alignment of ``aligned`` arrays: a cache line, and an AVX-512 vector
CACHE_LINE = 64


def aligned(a, alignment: int = CACHE_LINE) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data starts at a multiple of
    ``alignment`` bytes (a power of two).

    numpy's arrays start wherever ``malloc`` puts them, 16-byte aligned: an
    array's first element sits at 0, 16, 32 or 48 bytes into a cache line,
    by chance. A vector loop over it then splits one load in every few
    across two lines, or none, and the same kernel's speed depends on the
    allocation (a tiled fp64 GEMM at 300: 21.7 GFLOP/s on Zen 4 with its
    arrays 8 bytes into a line, 25.0 with them on a line's start). Inputs
    made with ``aligned``
    take that chance out of a measurement: ``polyop.tune`` times every
    candidate on them, and the benchmarks give them to every peer.

    Example::

        >>> import numpy as np
        >>> x = aligned(np.arange(6.0).reshape(2, 3))
        >>> x.ctypes.data % 64, x.tolist(), x.flags.c_contiguous
        (0, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], True)
    """
    a = np.asarray(a)
    out = empty_aligned(a.shape, a.dtype, alignment)
    out[...] = a
    return out


def empty_aligned(shape, dtype, alignment: int = CACHE_LINE) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts at a multiple of
    ``alignment`` bytes (``aligned``): the scratch arrays of compiled kernels
    (packed panels, caches) and the operators' packed weights are made so.

    Example::

        >>> empty_aligned((3, 5), np.float32).ctypes.data % 64
        0
    """
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise ArgumentError(f"aligned: alignment must be a power of two, got {alignment!r}",
                            "alignment")
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    skip = -raw.ctypes.data % alignment
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


def eval_index(e: ir.Expr, env: dict[str, int]):
    """The value of an integer or boolean expression over sizes (array extents,
    GPU launch sizes and host conditions), computed as the generated code
    does: Python's floor ``//`` and ``%`` (by zero: 0), comparisons, ``and``,
    ``or``, ``not`` and ``?:``.

    Example::

        >>> from polyop import ir
        >>> eval_index(ir.Bin("fdiv", ir.Bin("add", ir.Var("n"), ir.Const(31), ir.INDEX),
        ...                   ir.Const(32), ir.INDEX), {"n": 100})
        4
    """
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Var):
        return env[e.name]
    if isinstance(e, ir.Neg):
        return -eval_index(e.a, env)
    if isinstance(e, ir.Not):
        return not eval_index(e.a, env)
    if isinstance(e, ir.Select):
        return eval_index(e.a, env) if eval_index(e.cond, env) else eval_index(e.b, env)
    if isinstance(e, ir.Logic):
        a = eval_index(e.a, env)
        return (a and eval_index(e.b, env)) if e.op == "and" else (a or eval_index(e.b, env))
    if not isinstance(e, (ir.Cmp, ir.Bin)):
        raise AssertionError(f"expression {e!r} is not an integer or boolean expression")
    a, b = eval_index(e.a, env), eval_index(e.b, env)
    if isinstance(e, ir.Cmp):
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b,
                "ne": a != b}[e.op]
    if e.op in ("fdiv", "mod"):
        if b == 0:
            return 0
        return a // b if e.op == "fdiv" else a % b
    ops = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
           "min": lambda: b if b < a else a, "max": lambda: b if b > a else a}
    if e.op not in ops:
        raise AssertionError(f"expression {e!r} is not an integer or boolean expression")
    return ops[e.op]()


class CompiledKernel:
    """A kernel compiled for the host CPU: call it like the Python function.

    ``.function`` is the loop IR; ``.llvm_ir``, ``.llvm_ir_unoptimized`` and
    ``.asm`` are the generated code; ``.compile_seconds`` the time spent in LLVM.
    """

    def __init__(self, program: Program, function: ir.Function, compiled):
        self.program, self.function, self.native = program, function, compiled
        self._init_signature(program)
        # the compiled checks (polyop.fastcall) when available, else the Python path
        from .fastcall import dispatcher, install_call

        self._fast = dispatcher(self, self._checked_call)
        self._call = self._fast if self._fast is not None else self._checked_call
        if self._fast is not None:
            install_call(self, self._fast)  # self(...) runs it, with no Python frame

    def _init_signature(self, program: Program) -> None:
        """What ``bind`` and ``validate`` read of the signature (GPU kernels,
        ``polyop_cuda``, reuse the checks through it)."""
        # scratch arrays (caches made by the schedule) are allocated here, not passed
        self.scratch = tuple(program.meta.get("scratch", ()))
        self.names = tuple(a.name for a in program.arguments if a.name not in self.scratch)
        self.kinds = {a.name: a for a in program.arguments}
        self.written = {n for n in program.arrays if not program.writes(n).is_empty()}
        self.arrays = [a.name for a in program.arguments
                       if a.kind == "array" and a.name not in self.scratch]
        self._local = threading.local()
        self.assumptions = [(t, compile(t, f"<assert {t}>", "eval"))
                            for t in program.assumptions]
        # sizes for which an access would leave its array (polyop.bounds)
        self.preconditions = check_bounds(program)
        # a size left out of a call is read from the first array dimension equal to it
        self.inferable: dict[str, tuple[str, int]] = {}
        for name in self.arrays:
            for d, ext in enumerate(program.arrays[name].extents):
                if isinstance(ext, ir.Var):
                    self.inferable.setdefault(ext.name, (name, d))

    @property
    def llvm_ir(self) -> str:
        return self.native.llvm_ir

    @property
    def llvm_ir_unoptimized(self) -> str:
        return self.native.llvm_ir_unoptimized

    @property
    def asm(self) -> str:
        return self.native.asm

    @property
    def compile_seconds(self) -> float:
        return self.native.compile_seconds

    def _repr_html_(self) -> str:
        """Jupyter's view: loop nest, LLVM IR and assembly (``polyop.viz.html``)."""
        from .viz.html import compiled_html

        return compiled_html(self)

    # -- the generated code as files (polyop.export) --------------------------------------
    @property
    def target(self):
        """The ``polyop.Target`` the kernel was compiled for."""
        return self.native.target

    def export(self, path) -> list[str]:
        """Write the kernel as an object file (``.o``) or shared library
        (``.so``) with a C header (``.h``); see ``polyop.codegen.objcode``."""
        return self.native.export(path, scratch=self.scratch)

    def bind(self, args: tuple, kwargs: dict) -> dict:
        """Match positional and keyword arguments to the signature's names."""
        if len(args) > len(self.names):
            raise ArgumentError(f"{self.program.name}() takes {len(self.names)} arguments "
                                f"but {len(args)} were given", "*")
        bound = dict(zip(self.names, args))
        for k, v in kwargs.items():
            if k not in self.kinds:
                raise ArgumentError(f"{self.program.name}() got an unexpected argument {k!r}", k)
            if k in bound:
                raise ArgumentError(f"{self.program.name}() got multiple values for "
                                    f"argument {k!r}", k)
            bound[k] = v
        for name in self.names:
            if name in bound:
                continue
            if name in self.inferable and self.inferable[name][0] in bound:
                arr, d = self.inferable[name]
                shape = getattr(bound[arr], "shape", None)
                if shape is not None and len(shape) > d:
                    bound[name] = shape[d]
                    continue
            raise ArgumentError(f"{self.program.name}() missing argument {name!r}", name)
        return bound

    def validate(self, bound: dict) -> list:
        """Check every argument; return them in native-call order."""
        sizes: dict[str, int] = {}
        values = {}
        for name in self.names:
            arg, v = self.kinds[name], bound[name]
            if arg.kind == "size":
                if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                    raise ArgumentError(f"argument {name}: size parameter must be an int, "
                                        f"got {type(v).__name__}", name)
                v = int(v)
                if not _I64[0] <= v <= _I64[1]:
                    raise ArgumentError(f"argument {name}: {v} does not fit in int64", name)
                sizes[name] = v
            elif arg.kind == "scalar":
                v = self._scalar(name, arg.dtype, v)
            values[name] = v
        for text, test in self.assumptions:
            if not eval(test, {"min": min, "max": max}, sizes):  # noqa: S307 - kernel's own assert
                raise ArgumentError(f"sizes {sizes} violate the kernel's assumption "
                                    f"'assert {text}'", text)
        for name in self.arrays:
            self._array(name, bound[name], sizes)
        self._preconditions(sizes)
        self._no_aliasing(bound)
        values.update(self.scratch_arrays(sizes))
        return [values[a.name] for a in self.program.arguments]

    def scratch_arrays(self, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """The scratch arrays for these sizes (kept per thread between calls)."""
        if not self.scratch:
            return {}
        key = tuple(sorted(sizes.items()))
        cache = getattr(self._local, "scratch", None)
        if cache is None or cache[0] != key:
            arrays = {}
            for name in self.scratch:
                spec = self.program.arrays[name]
                shape = tuple(max(0, eval_index(e, sizes)) for e in spec.extents)
                # on a cache line: a vector load of a packed panel never splits
                arrays[name] = empty_aligned(shape, spec.dtype.numpy)
            cache = self._local.scratch = (key, arrays)
        return cache[1]

    def _scalar(self, name: str, dtype, v):
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v[()]
        if dtype.is_float:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ArgumentError(f"argument {name}: expected a real number ({dtype}), "
                                    f"got {type(v).__name__}", name)
            return float(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ArgumentError(f"argument {name}: expected an integer ({dtype}), "
                                f"got {type(v).__name__}", name)
        return int(v)

    def _array(self, name: str, a, sizes: dict[str, int]) -> None:
        spec = self.program.arrays[name]
        if not isinstance(a, np.ndarray):
            raise ArgumentError(f"argument {name}: expected a numpy array "
                                f"({spec.dtype}[{', '.join(spec.shape)}]), got "
                                f"{type(a).__name__}", name)
        if a.dtype != spec.dtype.numpy:
            raise ArgumentError(f"argument {name}: dtype {a.dtype} does not match "
                                f"{spec.dtype} ({spec.dtype.numpy})", name)
        if a.ndim != spec.ndim:
            raise ArgumentError(f"argument {name}: expected {spec.ndim} dimensions "
                                f"({spec.dtype}[{', '.join(spec.shape)}]), got {a.ndim}", name)
        expected = tuple(eval_index(e, sizes) for e in spec.extents)
        if a.shape != expected:
            raise ArgumentError(f"argument {name}: shape {a.shape} does not match "
                                f"[{', '.join(spec.shape)}] = {expected}", name)
        if not a.flags.c_contiguous:
            raise ArgumentError(f"argument {name}: array must be C-contiguous "
                                "(use np.ascontiguousarray)", name)
        if name in self.written and not a.flags.writeable:
            raise ArgumentError(f"argument {name}: the kernel writes {name} but the array "
                                "is read-only", name)

    def _preconditions(self, sizes: dict[str, int]) -> None:
        for pre in self.preconditions:
            if not pre.holds(sizes):
                values = ", ".join(f"{k}={v}" for k, v in sizes.items())
                raise ArgumentError(
                    f"{self.program.name}(): sizes {values} violate the precondition "
                    f"'{pre.text}' of {pre.stmt} (line {pre.line}: {pre.source}), which "
                    f"{pre.kind} {pre.access}: out of bounds for these sizes", pre.text)

    def _no_aliasing(self, bound: dict) -> None:
        # only overlaps with a written array matter: two read-only arguments may share memory
        arrays = [(n, bound[n]) for n in self.arrays]
        for i, (na, a) in enumerate(arrays):
            for nb, b in arrays[i + 1:]:
                if (na in self.written or nb in self.written) and a.size and b.size \
                        and np.may_share_memory(a, b):
                    raise ArgumentError(f"arguments {na} and {nb} overlap in memory; "
                                        "array arguments must not alias", nb)

    def __call__(self, *args, **kwargs) -> None:
        return self._call(*args, **kwargs)

    def _checked_call(self, *args, **kwargs) -> None:
        """The Python path: bind, check every argument, call through ctypes. The
        compiled checks (``polyop.fastcall``) hand it every call they refuse."""
        values = self.validate(self.bind(args, kwargs))
        self.native(*values)

    def _scratch_by_sizes(self, names: tuple[str, ...],
                          values: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """The scratch arrays for the sizes ``names`` = ``values`` (the compiled
        checks' callback)."""
        arrays = self.scratch_arrays(dict(zip(names, values)))
        return tuple(arrays[n] for n in self.scratch)
