"""``parallel`` loops: outlining into chunk functions, and the thread runtime.

Code generation (``emit_parallel_for``, called by ``polyop.codegen.llvm``)
turns ::

    for (i = start; i < stop; i += step) body        // kind "parallel"

into a call ``polyop_rt_parallel_for(wrapper, &env, n, work)`` with
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
  and writes to it are not copied back;
- ``work`` estimates the operations of the whole loop, computed just before
  the call: a store costs 1 plus 1 per load and operation of its value
  (``CALL_COST`` per math call), an ``if`` 1 plus its dearer branch, a loop
  its trip count times the cost of its body at its middle iteration (exact
  for rectangular nests, and for triangular ones whose inner extent is
  linear in the outer variable; a loop with bounds that read memory counts
  ``GUESS_TRIPS`` iterations), a ``vector`` loop its trip count over its
  lanes (gramschmidt's row update, ~24 000 iterations a ``k`` step, is ~3 us
  of 8-lane vector code on Zen 4: forked at each step it took 2.03 ms a
  call at 2 threads against 1.76 ms at one), but each strided or gathered
  load or store in it once per lane (conv2d's packing of 1 MB of weights,
  a row scattered per vector store, ran on one thread while the other
  waited: 2 threads, 256 -> 1024 at 14 x 14, 0.58 -> 0.53 ms a call).

Minimum work: a region runs on ``min(num_threads, n, work // min_work)``
threads, inline in the calling thread when that is 1 or less, where
``min_work`` is ``MIN_WORK`` = 2**15 operations (``POLYOP_MIN_WORK``,
``set_min_work``; 0 turns the rule off). An operation takes ~0.03 ns
(vectorised, in cache) to ~1 ns (scalar chains, math calls), so each thread
gets at least ~1-30 us of work, against a launch that costs ~0.2-1 us while
the workers spin and ~10-25 us when they sleep (``polyop.codegen.threadpool``).
Measured on jacobi-1d with 2 threads (AMD EPYC, workers awake): 0.9x at
14 000 operations a region, 1.3x at 35 000, 1.5x at 70 000; the rule puts
the switch at 65 536 (n ≈ 9400), so at n = 1000 (7000 operations, 0.45x on
2 threads before the rule) it runs serially.

Spinning: after a region, idle workers poll for new work for
``get_spin_time()`` seconds before they sleep (``POLYOP_SPIN_US``,
``set_spin_time``; 20 ms by default, ``polyop.codegen.threadpool`` says
why), so a kernel called soon after the last finds them awake.

The runtime itself is ``polyop.codegen.threadpool`` (a persistent pthread
pool written in LLVM IR), compiled once per process by ``ensure_runtime()``
and made visible to MCJIT under the symbol ``polyop_rt_parallel_for`` (and
``polyop_rt_parallel_region``, ``polyop_rt_barrier``: a serial loop around
parallel loops becomes one team region instead, ``polyop.codegen.region``).

Thread count: ``POLYOP_NUM_THREADS`` (default ``available_cpus()``: the CPUs
of the process's affinity mask, so ``taskset`` and container cpusets are
respected; at most ``MAX_THREADS``) is read once, the first time the count is needed (first
``get_num_threads()``, ``set_num_threads()`` or compile of a kernel with a
parallel loop); ``set_num_threads(n)`` overrides it. The count is applied at
call time: each parallel region uses the count current when it starts, so a
compiled kernel follows later ``set_num_threads`` calls. A value outside
``1..MAX_THREADS`` (``POLYOP_NUM_THREADS=0``, ``abc``, ``2.5``,
``set_num_threads(-1)``), or a negative ``POLYOP_MIN_WORK``, is a
``polyop.SettingError`` naming the variable (``polyop.settings``).

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

from llvmlite import ir

from ..errors import SettingError
from ..ir import Bin, Block, Call, Cast, Const, For, If, Load, Neg, Store, Var, map_children, walk
from ..kinds import LoopKind
from ..settings import check_int, env_int
from ..target import LLVM_LOCK, available_cpus, new_jit_machine, optimize, target_machine
from ..types import INDEX
from ..vector_plan import plan_vector_loop
from .outline import Env, declare
from .threadpool import BODY_TYPE, ENTRY, ENTRY_TYPE, MAX_THREADS, build_pool_module
from .threadpool_region import BARRIER, REGION_ENTRY

__all__ = ["MAX_THREADS", "MIN_WORK", "SPIN_US", "available_cpus", "emit_parallel_for",
           "ensure_runtime", "get_min_work", "get_num_threads", "get_spin_time", "late_workers",
           "pool_size", "set_min_work", "set_num_threads", "set_profiling", "set_spin_time",
           "shutdown_threads", "team_regions", "thread_stats"]

_I64 = ir.IntType(64)

#: default minimum estimated work (operations) per thread of a parallel region
MIN_WORK = 1 << 15
#: default time an idle thread of the pool spins before it sleeps, in
#: microseconds (why: ``polyop.codegen.threadpool``)
SPIN_US = 20_000
#: what one spin round (``sched_yield``) is taken to cost where the pool
#: has no time-stamp counter to measure the spin by
_ROUND_SECONDS = 0.6e-6

# -- code generation ----------------------------------------------------------------


def emit_parallel_for(fb, s: For) -> None:
    """Emit parallel loop ``s`` in function builder ``fb`` (a
    ``polyop.codegen.llvm._FunctionBuilder``): outline the body, fill the
    environment, call the runtime."""
    b = fb.builder
    module = fb.module
    start = fb.emit_as(s.start, INDEX, index=True)
    stop = fb.emit_as(s.stop, INDEX, index=True)
    count = _trip_count(b, start, stop, s.step, f"{s.var}.trips")
    work = _estimate_work(fb, s, start, count)

    env = Env()
    env.capture(fb, s.body, bound=s.var, private=True)
    start_field = env.add(start, f"{s.var}.start")

    # -- the chunk function: body_fn(fields..., lo, hi)
    base = module.get_unique_name(f"{fb.func.name}.{s.var}.par")
    body_fn = env.function(module, base, (("lo", _I64), ("hi", _I64)))
    *field_args, lo, hi = body_fn.args

    def get(x):
        return x if isinstance(x, ir.Constant) else field_args[x]

    ob = type(fb)(fb.fn, module, in_parallel=True)
    ob.func = body_fn
    ob.builder = ob_b = ir.IRBuilder(body_fn.append_basic_block("entry"))
    env.rebuild(ob, get)
    first = get(start_field)
    step = ir.Constant(_I64, s.step)
    lo_iv = ob_b.add(first, ob_b.mul(lo, step, flags=["nsw"]), flags=["nsw"])
    hi_iv = ob_b.add(first, ob_b.mul(hi, step, flags=["nsw"]), flags=["nsw"])
    ob.emit_loop(s, lo_iv, hi_iv)
    ob.builder.ret_void()

    # -- the wrapper the runtime calls: wrapper(i8* env, i64 lo, i64 hi)
    wrapper = ir.Function(module, BODY_TYPE, base + ".wrap")
    wrapper.linkage = "internal"
    wrapper.attributes.add("nounwind")
    w_env, w_lo, w_hi = wrapper.args
    wb = ir.IRBuilder(wrapper.append_basic_block("entry"))
    field = env.unpack(wb, w_env)
    wb.call(body_fn, [*(field(q) for q in range(len(env.fields))), w_lo, w_hi])
    wb.ret_void()

    # -- the call site
    b.call(declare(module, ENTRY, ENTRY_TYPE),
           [wrapper, env.pack(fb, f"{s.var}.env"), count, work])


def _trip_count(b: ir.IRBuilder, start: ir.Value, stop: ir.Value, step: int,
                name: str = "") -> ir.Value:
    """``max(0, ceil((stop - start) / step))`` (as ``(span - 1) // step + 1``:
    no ``span + step - 1`` to overflow)."""
    span = b.sub(stop, start)
    zero = ir.Constant(_I64, 0)
    count = span if step == 1 else \
        b.add(b.sdiv(b.sub(span, ir.Constant(_I64, 1)), ir.Constant(_I64, step)),
              ir.Constant(_I64, 1))
    return b.select(b.icmp_signed(">", span, zero), count, zero, name=name)


# -- the work estimate --------------------------------------------------------------------

#: cost of a math-library call (``exp``, ``sin``, ...) in the work estimate
CALL_COST = 8
#: trip count assumed for a loop whose bounds cannot be evaluated up front
GUESS_TRIPS = 16


def _store_cost(s: Store) -> int:
    """1 for the store, 1 per load and operation in its value, ``CALL_COST``
    per math call (subscript arithmetic is not counted)."""
    def cost(e) -> int:
        if isinstance(e, Load):
            return 1
        kids: list = []
        map_children(e, lambda x: kids.append(x) or x)
        own = CALL_COST if isinstance(e, Call) else 0 if isinstance(e, (Const, Var, Cast)) else 1
        return own + sum(map(cost, kids))

    return 1 + cost(s.value)


def _plain_bound(e) -> bool:
    """Whether ``e`` can be evaluated before the loop runs: no loads, calls,
    selects or divisions by non-constants (an affine bound always can)."""
    for node in walk(e):
        if isinstance(node, Bin):
            if node.op in ("fdiv", "mod") and isinstance(node.b, Const) and node.b.value > 0:
                continue
            if node.op not in ("add", "sub", "mul", "min", "max"):
                return False
        elif not isinstance(node, (Const, Var, Neg, Cast)):
            return False
    return True


class _Work:
    """Emits the work estimate of a loop body as an LLVM ``double`` (folding
    constants in Python): a loop counts its trip count times the cost of its
    body evaluated at its middle iteration, an ``if`` the dearer branch."""

    def __init__(self, fb):
        self.fb, self.b, self.ty = fb, fb.builder, ir.DoubleType()

    def _val(self, x):
        return ir.Constant(self.ty, x) if isinstance(x, float) else x

    def add(self, x, y):
        if isinstance(x, float) and isinstance(y, float):
            return x + y
        return self.b.fadd(self._val(x), self._val(y))

    def mul(self, x, y):
        if isinstance(x, float) and isinstance(y, float):
            return x * y
        return self.b.fmul(self._val(x), self._val(y))

    def max(self, x, y):
        if isinstance(x, float) and isinstance(y, float):
            return max(x, y)
        x, y = self._val(x), self._val(y)
        return self.b.select(self.b.fcmp_ordered(">", x, y), x, y)

    def cost(self, node):
        if isinstance(node, Store):
            return float(_store_cost(node))
        if isinstance(node, Block):
            total = 0.0
            for x in node.stmts:
                total = self.add(total, self.cost(x))
            return total
        if isinstance(node, If):
            other = 0.0 if node.else_ is None else self.cost(node.else_)
            return self.add(1.0, self.max(self.cost(node.then), other))
        if isinstance(node, For):
            fb, b = self.fb, self.b
            if _plain_bound(node.start) and _plain_bound(node.stop):
                lo, hi = fb.emit_as(node.start, INDEX), fb.emit_as(node.stop, INDEX)
                trips = _trip_count(b, lo, hi, node.step)
                mid = b.add(lo, b.mul(b.sdiv(trips, ir.Constant(_I64, 2)),
                                      ir.Constant(_I64, node.step)))
                trips = b.sitofp(trips, self.ty)
            else:
                mid, trips = ir.Constant(_I64, 0), float(GUESS_TRIPS)
            body = self.at(node.var, mid, node.body)
            plan = self._plan(node)
            if plan is not None:
                # explicit vector code: one operation per `lanes` iterations, but a
                # strided or gathered access once per lane (the module docstring)
                trips = self.mul(trips, 1.0 / plan.lanes)
                apart = sum(plan.access(x.index) in ("strided", "gather")
                            for x in walk(node.body) if isinstance(x, (Load, Store)))
                body = self.add(body, float((plan.lanes - 1) * apart))
            return self.mul(trips, body)
        return 1.0

    def _plan(self, node: For):
        """The plan ``polyop.codegen.vector`` runs a ``vector`` loop with
        (``None`` for other loops and for a vector loop that stays scalar)."""
        if node.kind is not LoopKind.VECTOR:
            return None
        fb = self.fb
        plan = plan_vector_loop(node, fb.isa, fb.temp_names,
                                {name: ref.dtype for name, ref in fb.arrays.items()})
        return plan if plan.vectorised and plan.lanes > 1 else None

    def at(self, var: str, value: ir.Value, node):
        """The cost of ``node`` with loop variable ``var`` bound to ``value``."""
        values = self.fb.values
        saved = values.get(var)
        values[var] = (value, INDEX)
        try:
            return self.cost(node)
        finally:
            if saved is None:
                del values[var]
            else:
                values[var] = saved


def _estimate_work(fb, s: For, start: ir.Value, count: ir.Value) -> ir.Value:
    """The estimated operations of parallel loop ``s`` (``count`` iterations
    from ``start``), as an ``i64`` capped at 2**62."""
    b = fb.builder
    w = _Work(fb)
    mid = b.add(start, b.mul(b.sdiv(count, ir.Constant(_I64, 2)), ir.Constant(_I64, s.step)))
    total = w._val(w.mul(b.sitofp(count, w.ty), w.at(s.var, mid, s.body)))
    cap = ir.Constant(w.ty, float(1 << 62))
    total = b.select(b.fcmp_ordered("<", total, cap), total, cap)  # NaN, inf: the cap
    return b.fptosi(total, _I64, name=f"{s.var}.work")


# -- the runtime -------------------------------------------------------------------------


class _Runtime:
    """The compiled thread pool of this process (never freed: workers may
    still be spinning in its code while the interpreter shuts down)."""

    def __init__(self):
        import llvmlite.binding as llvm

        tm = target_machine()  # the host's
        if not all(llvm.address_of_symbol(sym) for sym in ("pthread_create", "syscall")):
            for path in filter(None, map(ctypes.util.find_library, ("c", "pthread"))):
                try:
                    llvm.load_library_permanently(path)
                except RuntimeError:
                    pass
        module = build_pool_module(tm.triple)
        module.data_layout = str(tm.target_data)
        with LLVM_LOCK:
            mod = llvm.parse_assembly(str(module))
            mod.verify()
            optimize(mod, tm)
            self.llvm_ir = str(mod)
            self.engine = llvm.create_mcjit_compiler(mod, new_jit_machine())
            self.engine.finalize_object()
        addr = self.engine.get_function_address
        self.entry = addr(ENTRY)
        llvm.add_symbol(ENTRY, self.entry)
        for sym in (REGION_ENTRY, BARRIER):  # team regions (polyop.codegen.region)
            llvm.add_symbol(sym, addr(sym))
        self.set_num_threads = ctypes.CFUNCTYPE(None, ctypes.c_int32)(
            addr("polyop_rt_set_num_threads"))
        self.set_min_work = ctypes.CFUNCTYPE(None, ctypes.c_int64)(addr("polyop_rt_set_min_work"))
        self.set_spin = ctypes.CFUNCTYPE(None, ctypes.c_int64)(addr("polyop_rt_set_spin"))
        self.get_spin = ctypes.CFUNCTYPE(ctypes.c_int64)(addr("polyop_rt_get_spin"))
        self.ticks = ctypes.CFUNCTYPE(ctypes.c_int64)(addr("polyop_rt_ticks"))
        self._per_second: float | None = None
        self.pool_size = ctypes.CFUNCTYPE(ctypes.c_int32)(addr("polyop_rt_pool_size"))
        self.team_regions = ctypes.CFUNCTYPE(ctypes.c_int64)(addr("polyop_rt_team_regions"))
        self.revoked = ctypes.CFUNCTYPE(ctypes.c_int64)(addr("polyop_rt_revoked"))
        self.shutdown = ctypes.CFUNCTYPE(ctypes.c_int32)(addr("polyop_rt_shutdown"))
        self.after_fork = ctypes.CFUNCTYPE(None)(addr("polyop_rt_after_fork"))
        self.set_profile = ctypes.CFUNCTYPE(None, ctypes.c_int32)(addr("polyop_rt_set_profile"))
        self.thread_stat = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int32, ctypes.c_int32)(
            addr("polyop_rt_thread_stat"))
        # keep the machine code alive until the process ends
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self.engine))
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self))

    def spin_units(self, seconds: float) -> int:
        """``seconds`` in the unit of the pool's spin: time-stamp-counter
        ticks, their rate measured once against ``time.perf_counter`` over
        ~2 ms; rounds where there is no counter."""
        if self._per_second is None:
            import time

            c0, t0 = self.ticks(), time.perf_counter()
            while time.perf_counter() - t0 < 2e-3:
                pass
            c1, t1 = self.ticks(), time.perf_counter()
            self._per_second = (c1 - c0) / (t1 - t0) if c1 > c0 else 1 / _ROUND_SECONDS
        return round(seconds * self._per_second)


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()
_num_threads: int | None = None
_min_work: int | None = None
_spin_us: int | None = None


def _setting(name: str, env: str, low: int, high: int, default) -> int:
    """The module global ``name``, on first use taken from the environment
    variable ``env`` (an int in ``low..high``, else a ``SettingError``) or,
    unset, from ``default()``; then kept (the setters replace it)."""
    value = globals()[name]
    if value is None:
        with _runtime_lock:
            value = globals()[name]
            if value is None:
                n = env_int(env, low, high)
                value = globals()[name] = default() if n is None else n
    return value


def get_num_threads() -> int:
    """The number of threads parallel loops use (the calling thread included):
    ``set_num_threads``'s, else ``POLYOP_NUM_THREADS``, else
    ``available_cpus()`` (at most ``MAX_THREADS``).

    Example::

        >>> get_num_threads() >= 1
        True
    """
    return _setting("_num_threads", "POLYOP_NUM_THREADS", 1, MAX_THREADS,
                    lambda: min(available_cpus(), MAX_THREADS))


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
    check_int("set_num_threads", n, 1, MAX_THREADS)
    with _runtime_lock:
        _num_threads = n
        if _runtime is not None:
            _runtime.set_num_threads(n)


def get_min_work() -> int:
    """The minimum estimated work per thread (see the module docstring):
    ``set_min_work``'s, else ``POLYOP_MIN_WORK``, else ``MIN_WORK``.

    Example::

        >>> get_min_work() >= 0
        True
    """
    return _setting("_min_work", "POLYOP_MIN_WORK", 0, 2**62 - 1, lambda: MIN_WORK)


def set_min_work(ops: int) -> None:
    """Give each thread of a parallel region at least ``ops`` estimated
    operations (fewer threads, or none, for smaller loops); ``0`` uses
    every thread whenever the loop has enough iterations.

    Example::

        >>> before = get_min_work()
        >>> set_min_work(0); get_min_work()
        0
        >>> set_min_work(before)
    """
    global _min_work
    check_int("set_min_work", ops, 0, 2**62 - 1)
    with _runtime_lock:
        _min_work = ops
        if _runtime is not None:
            _runtime.set_min_work(ops)


def get_spin_time() -> float:
    """Seconds an idle thread of the pool spins before it sleeps:
    ``set_spin_time``'s, else ``POLYOP_SPIN_US`` (microseconds), else 20 ms
    (why so long: ``polyop.codegen.threadpool``).

    Example::

        >>> get_spin_time() >= 0
        True
    """
    return _setting("_spin_us", "POLYOP_SPIN_US", 0, 10**8, lambda: SPIN_US) / 1e6


def set_spin_time(seconds: float) -> None:
    """Let idle threads of the pool spin ``seconds`` (0 to 100) before they
    sleep, from their next wait on: longer keeps them ready for a kernel
    called soon after the last (a sleeping thread can take over a
    millisecond to wake on a virtual machine), shorter gives the CPU back
    sooner; ``0`` sleeps at once. Like OpenMP's ``KMP_BLOCKTIME``.

    Example::

        >>> before = get_spin_time()
        >>> set_spin_time(0.001); get_spin_time()
        0.001
        >>> set_spin_time(before)
    """
    global _spin_us
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not 0 <= seconds <= 100:
        raise SettingError(f"set_spin_time: expected seconds from 0 to 100, got {seconds!r}",
                           "set_spin_time")
    with _runtime_lock:
        _spin_us = round(seconds * 1e6)
        if _runtime is not None:
            _runtime.set_spin(_runtime.spin_units(seconds))


def ensure_runtime() -> _Runtime:
    """Compile the thread pool runtime once per process and register its
    entry point with MCJIT (kernels with parallel loops link against it)."""
    global _runtime
    if _runtime is None:
        n, w = get_num_threads(), get_min_work()
        get_spin_time()  # read POLYOP_SPIN_US now, outside the lock
        with _runtime_lock:
            if _runtime is None:
                rt = _Runtime()
                rt.set_num_threads(_num_threads or n)
                rt.set_min_work(w if _min_work is None else _min_work)
                rt.set_spin(rt.spin_units(_spin_us / 1e6))
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


def team_regions() -> int:
    """Parallel regions run by a team of threads so far in this process (the
    others ran inline: one thread, too little work, or the pool busy).

    Example::

        >>> team_regions() >= 0
        True
    """
    return 0 if _runtime is None else int(_runtime.team_regions())


def late_workers() -> int:
    """How often a worker was too late for a region (still waking up, or not
    scheduled): the calling thread had run its chunk by then, and went on
    without it (see ``polyop.codegen.threadpool``).

    Example::

        >>> late_workers() >= 0
        True
    """
    return 0 if _runtime is None else int(_runtime.revoked())


def set_profiling(on: bool) -> None:
    """Count, per thread, the iterations and the CPU time spent in parallel
    loops' bodies from now on (``on``; the counts start at zero), or stop
    counting; ``thread_stats`` reads them. Loops run inline by one thread
    count as thread 0's (the calling thread).

    Example::

        >>> set_profiling(True); thread_stats()[0]
        (0, 0.0)
        >>> set_profiling(False)
    """
    ensure_runtime().set_profile(1 if on else 0)


def thread_stats() -> list[tuple[int, float]]:
    """``(iterations, CPU seconds)`` each thread (0: the calling thread, then
    the pool's workers) spent in parallel loops' bodies since
    ``set_profiling(True)``. CPU time (Linux; 0 elsewhere) leaves out the
    time a thread waited for a CPU, so ``sum`` over threads compares the work
    done at 1 and at 2 threads even on a loaded machine: more CPU in total at
    2 threads is work slowed down by sharing (memory, caches), less even
    CPU between threads is imbalance.

    Example::

        >>> len(thread_stats()) == pool_size() + 1
        True
    """
    rt = ensure_runtime()
    return [(int(rt.thread_stat(w, 0)), rt.thread_stat(w, 1) * 1e-9)
            for w in range(pool_size() + 1)]


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
