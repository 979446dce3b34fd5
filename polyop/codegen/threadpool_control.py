"""The thread pool's control surface, written in LLVM IR: settings, counters,
per-thread profiling, shutdown and the fork handler.

``polyop.codegen.threadpool`` builds the pool itself (mailboxes, the region
entry, workers, chunks); this module is the part of its builder that the
host program talks to, as a mixin of that builder (it reads the builder's
globals: ``busy``, ``shutdown``, ``pool_size``, the mailboxes ``mail``):

- ``polyop_rt_set_num_threads(i32)``, ``polyop_rt_set_min_work(i64)``,
  ``polyop_rt_set_spin(i64)`` / ``polyop_rt_get_spin()``, ``polyop_rt_ticks()`` and the
  counters ``polyop_rt_pool_size``, ``polyop_rt_team_regions``,
  ``polyop_rt_revoked``;
- profiling: ``polyop_rt_set_profile(i32 on)`` (turning it on zeroes every
  thread's counters) and ``i64 polyop_rt_thread_stat(i32 thread, i32 what)``:
  the iterations (``what = 0``) and the nanoseconds of the thread's own CPU
  time (``what = 1``; ``CLOCK_THREAD_CPUTIME_ID``, Linux only: 0 elsewhere)
  that thread spent in loop bodies since. Thread 0 is the calling thread.
  Each thread writes only its own counters, in its mailbox's padding, so
  counting costs no shared cache line; off, it costs a load and a branch a
  chunk. CPU time, not wall time: a thread the scheduler took off its CPU
  (another process on a loaded machine) does not count as busy, so the sum
  over threads compares the work of 1 and 2 threads on any machine;
- ``i32 polyop_rt_shutdown()`` and ``polyop_rt_after_fork()`` (see
  ``polyop.codegen.threadpool``).

Example::

    >>> from polyop.codegen.threadpool import build_pool_module
    >>> "polyop_rt_thread_stat" in str(build_pool_module("x86_64-unknown-linux-gnu"))
    True
"""

from __future__ import annotations

from llvmlite import ir

__all__ = ["I8", "I8P", "I32", "I64", "SEQ", "SHUTDOWN_TRIES", "VOID", "PoolControl", "c32",
           "c64"]

I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
I8P = I8.as_pointer()
VOID = ir.VoidType()
SEQ = "seq_cst"
#: ``sched_yield`` rounds ``polyop_rt_shutdown`` waits for a busy region
SHUTDOWN_TRIES = 1 << 20
#: most threads a team may have (the calling thread included)
MAX_THREADS = 1024
#: Linux's ``CLOCK_THREAD_CPUTIME_ID``
_CLOCK_THREAD_CPUTIME = 3
#: profiling counters in a mailbox's padding (field 5): iterations, CPU ns
_ITERS, _CPU_NS, _PAD = 0, 1, 5


def c32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


class PoolControl:
    """Mixin of the pool builder: the exported control functions."""

    def _control(self) -> None:
        """Emit every control function (called last by the builder)."""
        self._setter("polyop_rt_set_num_threads", self.nthreads)
        self._setter("polyop_rt_set_min_work", self.min_work)
        self._setter("polyop_rt_set_spin", self.spin)
        self._getter("polyop_rt_get_spin", self.spin)
        self._ticks_fn()
        self._getter("polyop_rt_pool_size", self.pool_size)
        self._getter("polyop_rt_team_regions", self.regions)
        self._getter("polyop_rt_revoked", self.revoked)
        self._profile_fns()
        self._shutdown_fn()
        self._after_fork()

    def _setter(self, name: str, g: ir.GlobalVariable) -> None:
        f, b = self._function(name, ir.FunctionType(VOID, [g.value_type]), internal=False)
        self._store(b, f.args[0], g)
        b.ret_void()

    def _getter(self, name: str, g: ir.GlobalVariable) -> None:
        f, b = self._function(name, ir.FunctionType(g.value_type, []), internal=False)
        b.ret(self._load(b, g))

    def _ticks_fn(self) -> None:
        """``i64 polyop_rt_ticks()``: the counter the spin is measured in
        (the time-stamp counter on x86; 0 elsewhere, where it counts rounds),
        so that the host can convert seconds into it."""
        f, b = self._function("polyop_rt_ticks", ir.FunctionType(I64, []), internal=False)
        b.ret(b.call(self.cycles, []) if self.cycles is not None else c64(0))

    # -- profiling ---------------------------------------------------------------

    def _stat(self, b: ir.IRBuilder, w: ir.Value, what: int) -> ir.Value:
        return b.gep(self.mail, [c32(0), w, c32(_PAD), c32(what)], inbounds=True)

    def _cpu_ns(self, b: ir.IRBuilder, ts: ir.Value) -> ir.Value:
        if self.clock_gettime is None:
            return c64(0)
        b.call(self.clock_gettime, [c32(_CLOCK_THREAD_CPUTIME), ts])
        sec = b.load(b.gep(ts, [c32(0), c32(0)], inbounds=True))
        nsec = b.load(b.gep(ts, [c32(0), c32(1)], inbounds=True))
        return b.add(b.mul(sec, c64(1_000_000_000)), nsec)

    def _call_body(self, b: ir.IRBuilder, w: ir.Value, body, env, lo, hi,
                   count: ir.Value | None = None, iters: ir.Value | None = None) -> None:
        """Emit ``body(env, lo, hi)`` run by thread ``w``; while profiling
        (and ``count``, when given, is true) also add its iterations
        (``hi - lo``, or ``iters``: a team region's member counts none) and
        CPU time to ``w``'s counters."""
        f = b.function
        on = b.icmp_signed("!=", self._load(b, self.profile, "monotonic"), c32(0))
        if count is not None:
            on = b.and_(on, count)
        timed, plain, done = (f.append_basic_block(f"body.{x}") for x in
                              ("timed", "plain", "done"))
        b.cbranch(on, timed, plain)

        b.position_at_end(timed)
        with b.goto_entry_block():
            ts = b.alloca(ir.LiteralStructType([I64, I64]), name="ts")
        t0 = self._cpu_ns(b, ts)
        b.call(body, [env, lo, hi])
        spent = b.sub(self._cpu_ns(b, ts), t0)
        for what, add in ((_ITERS, b.sub(hi, lo) if iters is None else iters),
                          (_CPU_NS, spent)):
            p = self._stat(b, w, what)
            self._store(b, b.add(self._load(b, p, "monotonic"), add), p, "monotonic")
        b.branch(done)

        b.position_at_end(plain)
        b.call(body, [env, lo, hi])
        b.branch(done)
        b.position_at_end(done)

    def _profile_fns(self) -> None:
        f, b = self._function("polyop_rt_set_profile", ir.FunctionType(VOID, [I32]),
                              internal=False)
        entry, loop, done = b.block, f.append_basic_block("zero"), f.append_basic_block("done")
        # turning it on starts the counts at zero; off keeps them to be read
        b.cbranch(b.icmp_signed("!=", f.args[0], c32(0)), loop, done)
        b.position_at_end(loop)
        w = b.phi(I64)
        w.add_incoming(c64(0), entry)
        for what in (_ITERS, _CPU_NS):
            self._store(b, c64(0), self._stat(b, w, what), "monotonic")
        w1 = b.add(w, c64(1))
        w.add_incoming(w1, loop)
        b.cbranch(b.icmp_signed("<", w1, c64(self.mail.value_type.count)), loop, done)
        b.position_at_end(done)
        self._store(b, f.args[0], self.profile)
        b.ret_void()

        f, b = self._function("polyop_rt_thread_stat", ir.FunctionType(I64, [I32, I32]),
                              internal=False)
        w, what = f.args
        iters = self._load(b, self._stat(b, b.sext(w, I64), _ITERS), "monotonic")
        cpu = self._load(b, self._stat(b, b.sext(w, I64), _CPU_NS), "monotonic")
        b.ret(b.select(b.icmp_signed("==", what, c32(_ITERS)), iters, cpu))

    # -- shutdown and fork ---------------------------------------------------------

    def _shutdown_fn(self) -> None:
        f, b = self._function("polyop_rt_shutdown", ir.FunctionType(I32, []), internal=False)
        blk = {name: f.append_basic_block(name) for name in (
            "try", "yield", "fail", "have", "stop", "stop.one", "done")}
        entry = b.block
        b.branch(blk["try"])

        b.position_at_end(blk["try"])
        t = b.phi(I32)
        t.add_incoming(c32(0), entry)
        res = b.cmpxchg(self.busy, c32(0), c32(1), SEQ, SEQ)
        b.cbranch(b.extract_value(res, 1), blk["have"], blk["yield"])

        b.position_at_end(blk["yield"])
        b.call(self.sched_yield, [])
        t1 = b.add(t, c32(1))
        t.add_incoming(t1, blk["yield"])
        b.cbranch(b.icmp_signed("<", t1, c32(SHUTDOWN_TRIES)), blk["try"], blk["fail"])

        b.position_at_end(blk["fail"])
        b.ret(c32(0))

        # no region runs, so every go is even: make it odd (the worker accepts,
        # sees ``shutdown`` and returns), then join the worker
        b.position_at_end(blk["have"])
        self._store(b, c32(1), self.shutdown)
        ps = b.sext(self._load(b, self.pool_size), I64)
        b.branch(blk["stop"])

        b.position_at_end(blk["stop"])
        w = b.phi(I64)
        w.add_incoming(c64(1), blk["have"])
        b.cbranch(b.icmp_signed("<=", w, ps), blk["stop.one"], blk["done"])

        b.position_at_end(blk["stop.one"])
        go = self._mailbox(b, w, 0)
        self._store(b, b.add(self._load(b, go, "monotonic"), c32(1)), go)
        b.call(self.futex_wake, [go, c32(1)])
        b.call(self.pthread_join, [b.load(self._mailbox(b, w, 2)),
                                   ir.Constant(I8P.as_pointer(), None)])
        w.add_incoming(b.add(w, c64(1)), blk["stop.one"])
        b.branch(blk["stop"])

        b.position_at_end(blk["done"])
        self._store(b, c32(0), self.pool_size)
        self._store(b, c32(0), self.shutdown)
        self._store(b, c32(0), self.busy)
        b.ret(c32(1))

    def _after_fork(self) -> None:
        f, b = self._function("polyop_rt_after_fork", ir.FunctionType(VOID, []), internal=False)
        for g in (self.pool_size, self.shutdown, self.remaining, self.master_sleeping,
                  self.mode, self.team_sleepers, self.bar_sleepers, self.busy):
            self._store(b, c32(0), g)
        b.ret_void()
