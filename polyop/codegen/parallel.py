"""``parallel`` loops: outlining into chunk functions, and the thread runtime.

Code generation (``emit_parallel_for``, called by ``polyop.codegen.llvm``)
turns ::

    for (i = start; i < stop; i += step) body        // kind "parallel"

into a call ``polyop_rt_parallel_for(wrapper, &env, n)`` with
``n = max(0, ceil((stop - start) / step))`` iterations, where:

- ``env`` is a stack struct (allocated once in the kernel's entry block,
  filled before each call) holding every value the body uses from outside:
  size parameters, scalars, enclosing loop variables, array base pointers
  and non-constant strides, ``start``, and the current values of the 0-d
  temporaries the body uses (constants are not captured: they stay
  constants in the outlined code);
- ``wrapper(i8* env, i64 lo, i64 hi)`` unpacks ``env`` and calls
  ``body_fn(values..., start, lo, hi)``, an internal ``noinline`` function
  whose array arguments are ``noalias`` (as in the kernel itself, so the
  chunk loop vectorises without alias checks between arrays) and which runs
  iterations ``t`` in ``[lo, hi)``, i.e. ``i = start + step*t``;
- every temporary the body uses gets its own stack slot in ``body_fn``,
  initialised from ``env`` (first-private): each worker has a private copy,
  and writes to it are not copied back.

The runtime itself is ``polyop.codegen.threadpool`` (a persistent pthread
pool written in LLVM IR), compiled once per process by ``ensure_runtime()``
and made visible to MCJIT under the symbol ``polyop_rt_parallel_for``.

Thread count: ``POLYOP_NUM_THREADS`` (default ``os.cpu_count()``, at most
``MAX_THREADS``) is read once, the first time the count is needed (first
``get_num_threads()``, ``set_num_threads()`` or compile of a kernel with a
parallel loop); ``set_num_threads(n)`` overrides it. The count is applied at
call time: each parallel region uses the count current when it starts, so a
compiled kernel follows later ``set_num_threads`` calls.

Example::

    >>> before = get_num_threads()
    >>> set_num_threads(2); get_num_threads()
    2
    >>> set_num_threads(before)
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import threading
import warnings

from llvmlite import ir

from ..ir import For, Load, Store, Var, walk
from ..types import INDEX
from .llvm_expr import ArrayRef, ll_type
from .threadpool import BODY_TYPE, ENTRY, MAX_THREADS, build_pool_module

__all__ = ["MAX_THREADS", "emit_parallel_for", "ensure_runtime", "get_num_threads",
           "set_num_threads", "shutdown_threads"]

_I64 = ir.IntType(64)
_I8P = ir.IntType(8).as_pointer()

# -- code generation ----------------------------------------------------------------


def _runtime_decl(module: ir.Module) -> ir.Function:
    fn = module.globals.get(ENTRY)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [BODY_TYPE.as_pointer(), _I8P,
                                                                 _I64]), ENTRY)
        fn.attributes.add("nounwind")
    return fn


def _free_names(fb, s: For) -> tuple[list[str], list[str]]:
    """Variables (bound outside ``s``) and arrays/temporaries used by the
    body of ``s``, in order of first use."""
    scalars: dict[str, None] = {}
    arrays: dict[str, None] = {}
    for node in walk(s.body):
        if isinstance(node, Var) and node.name in fb.values and node.name != s.var:
            scalars[node.name] = None
        elif isinstance(node, (Load, Store)) and node.array in fb.arrays:
            arrays[node.array] = None
    return list(scalars), list(arrays)


class _Env:
    """The captured values of one parallel loop: ``fields`` go into the env
    struct, each with a rebuild rule for the outlined function."""

    def __init__(self):
        self.fields: list[ir.Value] = []  # values in the kernel
        self.names: list[str] = []
        self.arg_attrs: list[tuple[str, ...]] = []
        self._index: dict[int, int] = {}

    def add(self, value: ir.Value, name: str, *attrs: str) -> int | ir.Constant:
        """Capture ``value`` (once, however often it is needed); returns its
        field number, or the constant itself."""
        if isinstance(value, ir.Constant):
            return value
        q = self._index.get(id(value))
        if q is None:
            q = self._index[id(value)] = len(self.fields)
            self.fields.append(value)
            self.names.append(name)
            self.arg_attrs.append(attrs)
        return q


def emit_parallel_for(fb, s: For) -> None:
    """Emit parallel loop ``s`` in function builder ``fb`` (a
    ``polyop.codegen.llvm._FunctionBuilder``): outline the body, fill the
    environment, call the runtime."""
    b = fb.builder
    module = fb.module
    start = fb.emit_as(s.start, INDEX, index=True)
    stop = fb.emit_as(s.stop, INDEX, index=True)
    span = b.sub(stop, start)
    if s.step == 1:
        count = span
    else:
        count = b.sdiv(b.add(span, ir.Constant(_I64, s.step - 1)), ir.Constant(_I64, s.step))
    count = b.select(b.icmp_signed(">", span, ir.Constant(_I64, 0)), count,
                     ir.Constant(_I64, 0), name=f"{s.var}.trips")

    scalar_names, array_names = _free_names(fb, s)
    env = _Env()
    # rebuild plans: name -> field index / constant
    scalar_plan = []
    for name in scalar_names:
        v, dt = fb.values[name]
        scalar_plan.append((name, dt, env.add(v, name)))
    array_plan, temp_plan = [], []
    for name in array_names:
        ref: ArrayRef = fb.arrays[name]
        if name in fb.temp_names:
            cur = b.load(ref.ptr, name=f"{name}.in")
            temp_plan.append((name, ref.dtype, env.add(cur, name + ".in")))
        else:
            ptr = env.add(ref.ptr, name, "noalias", "nonnull")
            strides = None if ref.strides is None else tuple(
                None if st is None else env.add(st, f"{name}.stride{d}")
                for d, st in enumerate(ref.strides))
            array_plan.append((name, ref.dtype, ptr, strides))
    start_field = env.add(start, f"{s.var}.start")

    # -- the chunk function: body_fn(fields..., lo, hi)
    base = module.get_unique_name(f"{fb.func.name}.{s.var}.par")
    field_types = [v.type for v in env.fields]
    body_fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [*field_types, _I64, _I64]),
                          base)
    body_fn.linkage = "internal"
    body_fn.attributes.add("nounwind")
    body_fn.attributes.add("noinline")
    for arg, name, attrs in zip(body_fn.args, env.names, env.arg_attrs, strict=False):
        arg.name = name
        for a in attrs:
            arg.add_attribute(a)
    *field_args, lo, hi = body_fn.args
    lo.name, hi.name = "lo", "hi"

    def get(x):
        return x if isinstance(x, ir.Constant) else field_args[x]

    ob = type(fb)(fb.fn, module, in_parallel=True)
    ob.func = body_fn
    ob.builder = ob_b = ir.IRBuilder(body_fn.append_basic_block("entry"))
    for name, dt, x in scalar_plan:
        ob.values[name] = (get(x), dt)
    for name, dt, ptr, strides in array_plan:
        st = None if strides is None else tuple(None if q is None else get(q) for q in strides)
        ob.arrays[name] = ArrayRef(get(ptr), dt, st)
    for name, dt, x in temp_plan:
        slot = ob_b.alloca(ll_type(dt), name=name)
        ob_b.store(get(x), slot)
        ob.arrays[name] = ArrayRef(slot, dt, None)
    first = get(start_field)
    step = ir.Constant(_I64, s.step)
    lo_iv = ob_b.add(first, ob_b.mul(lo, step, flags=["nsw"]), flags=["nsw"])
    hi_iv = ob_b.add(first, ob_b.mul(hi, step, flags=["nsw"]), flags=["nsw"])
    ob.emit_loop(s, lo_iv, hi_iv)
    ob.builder.ret_void()

    # -- the wrapper the runtime calls: wrapper(i8* env, i64 lo, i64 hi)
    env_ty = ir.LiteralStructType(field_types)
    wrapper = ir.Function(module, BODY_TYPE, base + ".wrap")
    wrapper.linkage = "internal"
    wrapper.attributes.add("nounwind")
    w_env, w_lo, w_hi = wrapper.args
    wb = ir.IRBuilder(wrapper.append_basic_block("entry"))
    envp = wb.bitcast(w_env, env_ty.as_pointer())
    loaded = [wb.load(wb.gep(envp, [ir.Constant(ir.IntType(32), 0),
                                    ir.Constant(ir.IntType(32), q)], inbounds=True))
              for q in range(len(field_types))]
    wb.call(body_fn, [*loaded, w_lo, w_hi])
    wb.ret_void()

    # -- the call site
    slot = fb.entry_alloca(env_ty, name=f"{s.var}.env")
    i32 = ir.IntType(32)
    for q, v in enumerate(env.fields):
        b.store(v, b.gep(slot, [ir.Constant(i32, 0), ir.Constant(i32, q)], inbounds=True))
    b.call(_runtime_decl(module), [wrapper, b.bitcast(slot, _I8P), count])


# -- the runtime -------------------------------------------------------------------------


class _Runtime:
    """The compiled thread pool of this process (never freed: workers may
    still be spinning in its code while the interpreter shuts down)."""

    def __init__(self):
        import llvmlite.binding as llvm

        from .jit import _compile_lock, _new_target_machine, host_target_machine, optimize

        tm = host_target_machine()
        for sym in ("pthread_create", "pthread_join", "syscall"):
            if not llvm.address_of_symbol(sym):
                for lib in ("c", "pthread"):
                    path = ctypes.util.find_library(lib)
                    if path:
                        try:
                            llvm.load_library_permanently(path)
                        except RuntimeError:
                            pass
                break
        module = build_pool_module(tm.triple)
        module.data_layout = str(tm.target_data)
        with _compile_lock:
            mod = llvm.parse_assembly(str(module))
            mod.verify()
            optimize(mod, tm)
            self.llvm_ir = str(mod)
            self.engine = llvm.create_mcjit_compiler(mod, _new_target_machine())
            self.engine.finalize_object()
        addr = self.engine.get_function_address
        self.entry = addr(ENTRY)
        llvm.add_symbol(ENTRY, self.entry)
        self.set_num_threads = ctypes.CFUNCTYPE(None, ctypes.c_int32)(
            addr("polyop_rt_set_num_threads"))
        self.pool_size = ctypes.CFUNCTYPE(ctypes.c_int32)(addr("polyop_rt_pool_size"))
        self.shutdown = ctypes.CFUNCTYPE(ctypes.c_int32)(addr("polyop_rt_shutdown"))
        self.after_fork = ctypes.CFUNCTYPE(None)(addr("polyop_rt_after_fork"))
        # keep the machine code alive until the process ends
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self.engine))
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self))


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()
_num_threads: int | None = None


def _default_threads() -> int:
    env = os.environ.get("POLYOP_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
            if n < 1:
                raise ValueError
            return min(n, MAX_THREADS)
        except ValueError:
            warnings.warn(f"ignoring POLYOP_NUM_THREADS={env!r}: expected a positive integer",
                          RuntimeWarning, stacklevel=3)
    return max(1, min(os.cpu_count() or 1, MAX_THREADS))


def get_num_threads() -> int:
    """The number of threads parallel loops use (the calling thread included).

    Example::

        >>> get_num_threads() >= 1
        True
    """
    global _num_threads
    if _num_threads is None:
        with _runtime_lock:
            if _num_threads is None:
                _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 ≤ n ≤ ``MAX_THREADS``) in the parallel regions
    that start from now on, in every compiled kernel; ``1`` runs parallel
    loops inline in the calling thread.

    Example::

        >>> before = get_num_threads()
        >>> set_num_threads(1); get_num_threads()
        1
        >>> set_num_threads(before)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"set_num_threads: expected an int in [1, {MAX_THREADS}], got {n!r}")
    with _runtime_lock:
        _num_threads = n
        if _runtime is not None:
            _runtime.set_num_threads(n)


def ensure_runtime() -> _Runtime:
    """Compile the thread pool runtime once per process and register its
    entry point with MCJIT (kernels with parallel loops link against it)."""
    global _runtime
    if _runtime is None:
        n = get_num_threads()
        with _runtime_lock:
            if _runtime is None:
                rt = _Runtime()
                rt.set_num_threads(_num_threads or n)
                atexit.register(shutdown_threads)
                if hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=rt.after_fork)
                _runtime = rt
    return _runtime


def pool_size() -> int:
    """Worker threads currently in the pool (0 before the first team).

    Example::

        >>> pool_size() >= 0
        True
    """
    return 0 if _runtime is None else int(_runtime.pool_size())


def shutdown_threads() -> bool:
    """Stop and join the pool's worker threads (registered with ``atexit``);
    a later parallel region starts a new pool. Returns False when a region
    running in another thread kept the pool busy for too long.

    Example::

        >>> shutdown_threads()
        True
    """
    if _runtime is None:
        return True
    return bool(_runtime.shutdown())
