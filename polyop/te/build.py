"""Scheduling, lowering and building tensor-expression graphs.

- ``create_schedule(C)`` (or ``[C, D]``): a ``polyop.Schedule`` over the lowered
  ``Program``; every primitive (split, reorder, parallel, ...) and its legality
  check works as for ``@polyop.kernel``. Statement names are the compute names
  (``"C"``, and ``"C_init"`` for a reduction's initialisation).
- ``build(sch, [A, B, C])``, ``build(C, [A, B, C])`` or ``build([A, B, C])``:
  compile; the result is called ``f(A, B, C)`` in the argument list's order.
  Size variables are inferred from the arrays' shapes (pass one as a keyword,
  ``f(A, B, C, n=8)``, if no argument's shape determines it, or list it in
  the argument list to make it positional).
- ``lower(sch, [A, B, C])``: the loop IR; ``print`` shows the loop nest.

Intermediate tensors not in the argument list are still arrays of the
program: the built function allocates them (``numpy.empty``, cached per size
and per thread) and passes them to the native code. Every placeholder and
every output of the schedule must be in the argument list.

Example::

    >>> import numpy as np, polyop
    >>> n = polyop.var("n")
    >>> A = polyop.placeholder((n,), "float64", name="A")
    >>> T = polyop.compute((n,), lambda i: A[i] * 2.0, name="T")
    >>> R = polyop.compute((n,), lambda i: polyop.maximum(T[i] - 1.0, 0.0), name="R")
    >>> f = polyop.build(R, [A, R])
    >>> a, r = np.arange(4.0), np.empty(4)
    >>> f(a, r); r
    array([0., 1., 3., 5.])
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl
import numpy as np

from .. import ir
from ..errors import ArgumentError, TargetError
from ..program import Program
from ..schedule import Schedule
from ..target import as_target
from .affine import pwaff
from .expr import Var
from .lowering import TEInfo, as_tensors, lower_program
from .tensor import Tensor


def create_schedule(outputs, name: str | None = None) -> Schedule:
    """A ``polyop.Schedule`` computing ``outputs`` (a tensor or a list of them)
    in the textual order of their stages; ``name`` names the program (default:
    the output names joined by ``_``).

    Example (a reduction has two statements, ``C_init`` and ``C``)::

        >>> import polyop
        >>> n = polyop.var("n")
        >>> A = polyop.placeholder((n, n), "float64", name="A")
        >>> B = polyop.placeholder((n, n), "float64", name="B")
        >>> k = polyop.reduce_axis((0, n), name="k")
        >>> C = polyop.compute((n, n), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k),
        ...                    name="C")
        >>> sch = polyop.create_schedule(C)
        >>> sch.stmts
        ['C_init', 'C']
        >>> i, j, k = sch.get_loops(C)
        >>> io, ii = sch.split(i, 32)
        >>> sch.parallel(io)
        >>> print(sch)
        schedule of C:
          split(i, 32)
          parallel(i_outer)
    """
    return Schedule(lower_program(outputs, name))


def is_te(obj, args=None) -> bool:
    """Whether ``build``/``lower`` arguments are tensor expressions."""
    if isinstance(obj, Tensor):
        return True
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, (Tensor, Var))
                                                      for x in obj):
        return True
    return _te_info(obj) is not None and (args is None or isinstance(args, (list, tuple)))


def _te_info(obj) -> TEInfo | None:
    program = getattr(obj, "program", None)
    if isinstance(program, Program):
        return program.meta.get("te")
    return None


def _resolve(obj, args, required: bool = True,
             name: str | None = None) -> tuple[Schedule, TEInfo, tuple]:
    """(schedule, graph info, argument list) from the accepted call forms."""
    if isinstance(obj, (list, tuple)) and args is None:
        args = obj
        obj = [x for x in obj if isinstance(x, Tensor) and x.op == "compute"]
        if not obj:
            raise TypeError("polyop.build: the argument list has no compute tensor to build")
    if isinstance(obj, Schedule):
        sch = obj
    elif isinstance(obj, (Tensor, list, tuple)):
        sch = create_schedule(as_tensors(obj, "build"), name)
    else:
        raise TypeError(f"polyop.build: expected a schedule or tensors, got "
                        f"{type(obj).__name__}")
    info = _te_info(sch)
    if info is None:
        raise TypeError("polyop.build(sch, args): sch is not the schedule of tensor "
                        "expressions (use polyop.create_schedule)")
    if args is None and not required:
        args = [t for t in info.tensors if t.op == "placeholder"] + list(info.roots)
    if args is None:
        raise TypeError("polyop.build(sch, args): give the argument list, e.g. "
                        "polyop.build(sch, [A, B, C]); it defines the function's signature")
    return sch, info, _check_args(sch.program, info, tuple(args))


def _check_args(program: Program, info: TEInfo, args: tuple) -> tuple:
    seen: set[tuple] = set()
    for a in args:
        if isinstance(a, Var):
            if a.name not in program.params:
                raise ArgumentError(f"size variable {a.name} in the argument list is not "
                                    "used by this schedule", a.name)
            key: tuple = ("var", a.name)
        elif isinstance(a, Tensor):
            if not info.contains(a):
                raise ArgumentError(f"tensor {a.name} in the argument list is not part of "
                                    "this schedule", a.name)
            if info.array(a) not in program.arrays:
                raise ArgumentError(f"tensor {a.name} was inlined by the schedule "
                                    "(compute_inline); it is no longer stored, so it "
                                    "cannot be an argument", a.name)
            key = ("tensor", a.id)
        else:
            raise TypeError(f"the argument list holds tensors and size variables, got "
                            f"{type(a).__name__}")
        if key in seen:
            raise ArgumentError(f"{a.name} appears twice in the argument list", a.name)
        seen.add(key)
    for t in info.tensors:
        if t.op == "placeholder" and ("tensor", t.id) not in seen:
            raise ArgumentError(f"placeholder {t.name} is read by the schedule but missing "
                                f"from the argument list", t.name)
    for t in info.roots:
        if ("tensor", t.id) not in seen:
            raise ArgumentError(f"output tensor {t.name} is missing from the argument list",
                                t.name)
    return args


def lower(obj, args=None, *, target=None, validate: bool = True):
    """The loop IR of a TE schedule; ``print`` it to see the loop nest, with
    the parameters in the order of ``args`` (then scratch arrays, then sizes).

    For a GPU ``target`` (``"cuda"``, ``"opencl"``; loops bound with
    ``Schedule.bind``) the result is the ``polyop_cuda.LoweredGpu``: CUDA C
    or OpenCL C with the host side, its parameters in the program's order.

    Example::

        >>> import polyop
        >>> n = polyop.var("n")
        >>> A = polyop.placeholder((n,), "float32", name="A")
        >>> B = polyop.compute((n,), lambda i: A[i] * 2.0, name="B")
        >>> print(polyop.lower(polyop.create_schedule(B), [B, A]))
        void B(float B[n], float A[n], int64_t n) {
          for (i = 0; i < n; i += 1)
            B[i] = A[i] * 2.0;
        }
    """
    from ..pipeline import lower_ir

    sch, info, args = _resolve(obj, args, required=False)
    if target is not None and as_target(target).is_gpu:
        import polyop_cuda

        return polyop_cuda.lower(sch, target=target, validate=validate)
    fn = lower_ir(sch, validate=validate)
    order = _param_order(sch.program, info, args)
    rank = {n: k for k, n in enumerate(order)}
    return replace(fn, params=tuple(sorted(fn.params, key=lambda p: rank[p.name])))


def _param_order(program: Program, info: TEInfo, args: tuple) -> list[str]:
    names = [info.array(a) if isinstance(a, Tensor) else a.name for a in args]
    names += [info.array(t) for t in info.tensors if info.array(t) not in names
              and info.array(t) in program.arrays]
    names += [a.name for a in program.arguments if a.kind == "array" and a.name not in names]
    return names + [p for p in program.params if p not in names]


def build(obj, args=None, name: str | None = None, *,
          fp_contract: bool = False, target=None, validate: bool = True) -> TEFunction:
    """Compile a TE schedule (or tensors, with the default schedule) into a
    function of ``args``; ``name`` names it in messages (and the program, when
    built from tensors); ``fp_contract`` as in ``polyop.build`` (fused
    multiply-adds allowed, results no longer bit-identical to CPython);
    ``target`` as in ``polyop.build`` (for another CPU the function is not
    callable here: ``.asm``, ``.llvm_ir``, ``.export(path)``). A GPU target
    (``"cuda"``, ``"opencl"``) runs the loops bound with ``Schedule.bind`` as
    kernels (``polyop_cuda``); the function is called the same way and its
    ``.source`` is the generated CUDA C or OpenCL C.

    Example::

        >>> import numpy as np, polyop
        >>> A = polyop.placeholder((64,), "float32", name="A")
        >>> B = polyop.compute((64,), lambda i: A[i] * 2.0, name="B")
        >>> sch = polyop.create_schedule(B)
        >>> io, ii = sch.split(sch.get_loops(B)[0], 16)
        >>> f = polyop.build(sch, [A, B])
        >>> a, b = np.arange(64, dtype=np.float32), np.empty(64, np.float32)
        >>> f(a, b)
        >>> np.array_equal(b, 2 * a)
        True
    """
    from ..pipeline import compile_program

    sch, info, args = _resolve(obj, args, name=name)
    if target is not None and as_target(target).is_gpu:
        return TEFunction(_build_gpu(sch, info, args, as_target(target), fp_contract,
                                     validate), info, args, name or sch.program.name)
    options = {"fp_contract": True} if fp_contract else {}
    compiled = compile_program(sch, target=target, validate=validate, **options)
    program = _with_scratch(compiled.program, info, args)
    compiled = type(compiled)(program, compiled.function, compiled.native)
    return TEFunction(compiled, info, args, name or sch.program.name)


def _with_scratch(program: Program, info: TEInfo, args: tuple) -> Program:
    """``program`` with the intermediate stages left out of the argument list
    recorded as scratch (allocated by the runtime, as caches are)."""
    listed = {info.array(a) for a in args if isinstance(a, Tensor)}
    present = {a.name for a in program.arguments}
    scratch = tuple(info.array(t) for t in info.tensors
                    if info.array(t) not in listed and info.array(t) in present)
    meta = {**program.meta, "scratch": tuple(program.meta.get("scratch", ())) + scratch}
    return replace(program, meta=meta)


def _build_gpu(sch: Schedule, info: TEInfo, args: tuple, target, fp_contract: bool,
               validate: bool):
    """The ``polyop_cuda.host.GpuFunction`` of a TE schedule for a GPU target;
    the GPU back end is imported here, on first use, as ``polyop.build`` does."""
    if fp_contract:
        raise TargetError("fp_contract=True: GPU code is generated without contraction; "
                          "it is a CPU option")
    from polyop_cuda.lowering import load
    from polyop_cuda.lowering import lower as gpu_lower

    lowered = gpu_lower(sch, target=target, validate=validate)
    return load(replace(lowered, model=_with_scratch(lowered.model, info, args)))


class TEFunction:
    """A built tensor-expression function: ``f(*args, **sizes)``.

    Arguments are numpy arrays in the order of the build's argument list
    (and ints for size variables listed there). ``ArgumentError`` names the
    argument on a wrong count, dtype, rank or shape. ``.kernel`` is the
    underlying ``CompiledKernel`` (``.llvm_ir``, ``.asm``, ``.function``).
    """

    def __init__(self, kernel, info: TEInfo, args: tuple, name: str):
        self.kernel, self.info, self.name = kernel, info, name
        self.program: Program = kernel.program
        self.arg_names = tuple(info.array(a) if isinstance(a, Tensor) else a.name
                               for a in args)
        self.params = self.program.params
        affs = self._affs = isl.affs_from_space(self.program.context.get_space())
        self._extents: dict[str, list[isl.PwAff]] = {}
        for t in info.tensors:
            self._extents[info.array(t)] = [pwaff(d, affs, lambda v: v.name)
                                            for d in t.shape]
        self._known: dict[tuple, dict[str, int]] = {}

    @property
    def scratch(self) -> tuple[str, ...]:
        """The arrays the runtime allocates: intermediates not in the argument
        list, and the schedule's caches."""
        return self.kernel.scratch

    @property
    def function(self) -> ir.Function:
        return self.kernel.function

    @property
    def source(self) -> str:
        """The generated CUDA C or OpenCL C (a function built for a GPU target)."""
        return self.kernel.source

    @property
    def llvm_ir(self) -> str:
        return self.kernel.llvm_ir

    @property
    def asm(self) -> str:
        return self.kernel.asm

    @property
    def target(self):
        """The ``polyop.Target`` the function was compiled for."""
        return self.kernel.target

    def export(self, path) -> list[str]:
        """Write the function as ``.o`` or ``.so`` with a C header (the
        kernel's native signature: ``polyop.codegen.objcode``)."""
        return self.kernel.export(path)

    def __repr__(self) -> str:
        return f"<polyop TE function {self.name}({', '.join(self.arg_names)})>"

    def __call__(self, *args, **sizes) -> None:
        # the first call sets up the compiled checks (polyop.fastcall), which then take
        # every call directly, handing the ones they refuse to _checked_call
        if "_fast" not in self.__dict__:
            from ..fastcall import dispatcher, install_call

            # a GPU function has no native entry point for the compiled checks
            self._fast = dispatcher(self.kernel, self._checked_call, self.arg_names) \
                if self.arg_names and self.kernel.function is not None else None
            if self._fast is not None:
                install_call(self, self._fast)
                return self._fast(*args, **sizes)
        self._checked_call(*args, **sizes)

    def _checked_call(self, *args, **sizes) -> None:
        """The Python path of ``__call__``: bind, infer the sizes with isl, call."""
        if not (self.kernel.target.is_host or self.kernel.target.is_gpu):
            self.kernel()  # raises TargetError: compiled for another machine
        if len(args) != len(self.arg_names):
            raise ArgumentError(f"{self.name}() takes {len(self.arg_names)} arguments "
                                f"({', '.join(self.arg_names)}) but {len(args)} were given",
                                "*")
        bound = dict(zip(self.arg_names, args))
        for k, v in sizes.items():
            if k not in self.params:
                raise ArgumentError(f"{self.name}() got an unexpected argument {k!r} "
                                    f"(size variables: {', '.join(self.params) or 'none'})",
                                    k)
            if k in bound:
                raise ArgumentError(f"{self.name}() got multiple values for {k!r}", k)
            bound[k] = v
        # the sizes follow from the shapes (and given sizes): infer once per shapes
        key = tuple(getattr(v, "shape", v) if isinstance(v, np.ndarray) or k in self.params
                    else None for k, v in bound.items())
        known = self._known.get(key)
        if known is None:
            known = self._infer_sizes(bound)
            if len(self._known) < 64:
                self._known[key] = known
        for p in self.params:
            if p not in bound:
                bound[p] = known[p]
        self.kernel(**bound)

    # -- sizes -------------------------------------------------------------------
    def _infer_sizes(self, bound: dict) -> dict[str, int]:
        """Size values fixed by the given sizes and the array arguments' shapes."""
        affs = self._affs
        known: dict[str, int] = {}
        sizes = self.program.context
        for p in self.params:
            v = bound.get(p)
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                sizes = sizes.intersect(affs[p].eq_set(affs[0] + int(v)))
        for name in self.arg_names:
            a = bound[name]
            ext = self._extents.get(name)
            if ext is None or not isinstance(a, np.ndarray) or a.ndim != len(ext):
                continue  # not an array argument, or the kernel's checks report it
            narrowed = sizes
            for pa, n in zip(ext, a.shape):
                narrowed = narrowed.intersect(pa.eq_set(affs[0] + int(n)))
            if narrowed.is_empty():
                raise ArgumentError(self._shape_message(name, a.shape, sizes), name)
            sizes = narrowed
        for k, p in enumerate(self.params):
            v = _fixed(sizes, k)
            if v is not None:
                known[p] = v
            elif p not in bound:
                raise ArgumentError(f"{self.name}(): size {p} is not determined by the "
                                    f"argument shapes; pass it as {p}=...", p)
        return known

    def _shape_message(self, name: str, shape: tuple, sizes: isl.Set) -> str:
        """Why ``shape`` fits no sizes allowed by ``sizes`` (the earlier arguments)."""
        spec = self.program.arrays[name]
        fixed = {p: _fixed(sizes, k) for k, p in enumerate(self.params)}
        fixed = {p: v for p, v in fixed.items() if v is not None}
        text = f"argument {name}: shape {shape} does not match [{', '.join(spec.shape)}]"
        if not fixed:
            return text
        from ..runtime import eval_index

        dims = []
        for e, src in zip(spec.extents, spec.shape):
            try:
                dims.append(str(eval_index(e, fixed)))
            except KeyError:
                dims.append(src)
        given = ", ".join(f"{p}={v}" for p, v in fixed.items())
        return f"{text} = ({', '.join(dims)}{',' if len(dims) == 1 else ''}) (with {given})"


def _fixed(sizes: isl.Set, k: int) -> int | None:
    """The value of parameter ``k`` if ``sizes`` allows exactly one."""
    n = sizes.dim(isl.dim_type.param)
    s = sizes.move_dims(isl.dim_type.set, 0, isl.dim_type.param, k, 1)
    s = s.project_out(isl.dim_type.param, 0, n - 1)
    if s.is_empty():
        return None
    lo = s.lexmin()
    if not lo.is_equal(s):
        return None
    return lo.sample_point().get_coordinate_val(isl.dim_type.set, 0).to_python()
