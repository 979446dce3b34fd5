"""The native thread pool behind ``parallel`` loops, written in LLVM IR.

``build_pool_module(triple)`` returns an llvmlite module (compiled once per
process by ``polyop.codegen.parallel``) that defines:

- ``void polyop_rt_parallel_for(void (*body)(i8* env, i64 lo, i64 hi), i8* env, i64 n,
  i64 work)``: runs ``body(env, lo, hi)`` over contiguous chunks that cover
  ``[0, n)``, up to ``CHUNKS_PER_THREAD`` per thread (dealt round-robin),
  and returns when all are done; the calling thread takes part. The team has
  ``k = min(num_threads, n, work // min_work)`` threads (``work``: the
  caller's estimate of the region's operations; ``min_work <= 0`` drops that
  term). With ``k <= 1``, or while another region is running (a nested
  region, or a second Python thread calling a kernel at the same time), the
  body runs inline on ``[0, n)``;
- ``polyop_rt_set_num_threads(i32)``, ``polyop_rt_set_min_work(i64)``: the
  team size rule of later regions; ``polyop_rt_set_spin(i64)``: how long an
  idle thread spins before it sleeps (below); ``i64 polyop_rt_ticks()``: the
  time-stamp counter (x86; 0 elsewhere); ``i32 polyop_rt_pool_size()``,
  ``i64 polyop_rt_team_regions()``, ``i64 polyop_rt_revoked()``: workers
  created, regions run by a team, workers revoked (see below) so far;
- ``i32 polyop_rt_shutdown()``: stops and joins every worker (1 on success,
  0 when a region stayed busy too long); later regions start a new pool;
  ``polyop_rt_after_fork()``: forgets the parent's workers in a child.
- ``polyop_rt_set_profile(i32)``, ``i64 polyop_rt_thread_stat(i32, i32)``:
  iterations and CPU time each thread spent in loop bodies.

The control functions (settings, counters, profiling, shutdown, fork) are
emitted by ``polyop.codegen.threadpool_control``'s mixin of the builder;
team regions (``polyop_rt_parallel_region``: a function run once by each of
a fixed team, with ``polyop_rt_barrier``) by ``polyop.codegen.threadpool_region``'s.
A worker that accepts reads the global ``mode``: 0, a loop's chunks; 1, a
member of a team region.

Design: a persistent pool of worker threads created lazily with
``pthread_create`` (the calling thread is worker 0). Every worker has its own
64-byte mailbox ``{go, sleeping, thread id, next}``. A region:

1. takes the global ``busy`` flag (compare-and-swap; a region that finds it
   taken runs inline, so nested regions and concurrent callers never wait);
2. writes the task (body, env, n, team size k, g chunks a thread), sets
   ``remaining = k - 1`` and each thread's ``next`` to its first chunk, then
   makes ``go`` of workers 1 .. k-1 odd (a seq_cst store: it publishes
   everything written before);
3. runs its own chunks, then every chunk still unclaimed (a chunk is claimed
   with ``fetch_add`` on its thread's ``next``: it runs exactly once);
4. *revokes* the region from every worker whose ``go`` is still odd: a
   compare-and-swap odd → even, decrementing ``remaining`` on its behalf;
5. waits until ``remaining == 0`` and releases ``busy``.

A worker waits for its ``go`` to become odd, then *accepts* the region with a
compare-and-swap odd → even; only then it reads the task, runs its chunks and
any unclaimed chunk, and decrements ``remaining``. Exactly one of accept and
revoke succeeds; a revoked worker has read nothing, so the caller does not
wait for a worker that is still waking up or not scheduled (another process
on its CPU). ``go`` is even whenever no region runs (publishing is a plain
store); a late accept can only take the current region's odd value.

Waiting: a thread waiting on ``go`` (worker) or ``remaining`` (caller) spins
for the spin time (the global ``spin``: ``polyop_rt_set_spin(i64)``, set by
``polyop.codegen.parallel.set_spin_time``; 20 ms by default), calling
``sched_yield`` in every round past its first 1/256, then sleeps with a
futex (``syscall(SYS_futex)``: no libc wrappers beyond ``syscall``).
Sleeping uses the flag/recheck pattern (set ``sleeping``, re-read the word,
``FUTEX_WAIT`` on the value read) against the waker's store/read of
``sleeping``, all seq_cst, so no wake-up is lost; a spurious or early
wake-up re-checks the word. Workers run with every signal blocked. Off
Linux, sleeping falls back to ``sched_yield``.

Why 20 ms: a region costs ~0.2 us more than running inline while the workers
spin. Waking a sleeping one costs ~10 us on an idle machine after a short
sleep, but on a virtual machine whose idle CPU the host takes away it can
cost more than a millisecond: on a 2-core Zen 4 VM, MEDIUM PolyBench kernels
called every 20 ms ran *slower* on 2 threads than on 1 with a 1 ms spin
(jacobi-2d 4.8 against 3.8 ms, every region of 3mm run without its late
worker) and 1.9x faster with a 30 ms one. Kernels called back to back, or
with a little Python between the calls, find the workers awake; the
yields give the CPU to any other thread that wants it, and LLVM's OpenMP
runtime spins ten times longer by default (``KMP_BLOCKTIME``, 200 ms).

Example::

    >>> m = build_pool_module("x86_64-unknown-linux-gnu")
    >>> "define void @\\"polyop_rt_parallel_for\\"" in str(m)
    True
"""

from __future__ import annotations

from llvmlite import ir

from .threadpool_control import I8P, I32, I64, MAX_THREADS, SEQ, VOID, PoolControl, c32, c64
from .threadpool_region import PoolRegion

__all__ = ["BODY_TYPE", "ENTRY", "ENTRY_TYPE", "MAX_THREADS", "build_pool_module"]

#: how long a waiting thread spins before it sleeps, until the host sets it
#: (``polyop.codegen.parallel.set_spin_time``, which measures the tick rate):
#: time-stamp-counter ticks on x86 (2**26: ~25 ms at 2.5 GHz), rounds
#: elsewhere (past the first 1/256, each calls ``sched_yield``, ~0.3-1 us:
#: 2**15 rounds are ~20 ms)
SPIN_CYCLES = 1 << 26
SPIN_ROUNDS = 1 << 15
#: chunks a thread is dealt (fewer when the loop has fewer iterations): its
#: leftovers, when it is late or its chunks are dearer, go to the others.
#: Dealt round-robin (thread v's j-th chunk is chunk j * k + v of the loop),
#: so that every thread gets some of each part of a triangular loop; modelled
#: 2 threads finish a triangle's work 1.88x (up) / 1.98x (down) faster than
#: one, against 1.83x / 1.78x with 4 contiguous chunks a thread (a stealer
#: cannot split the last, dearest chunk), and rectangles stay even
CHUNKS_PER_THREAD = 8

ENTRY = "polyop_rt_parallel_for"

#: the outlined loop body: ``void body(i8* env, i64 lo, i64 hi)``
BODY_TYPE = ir.FunctionType(VOID, [I8P, I64, I64])
#: the region entry: ``void polyop_rt_parallel_for(body, env, i64 n, i64 work)``
ENTRY_TYPE = ir.FunctionType(VOID, [BODY_TYPE.as_pointer(), I8P, I64, I64])

_SEQ = SEQ
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98,
              "powerpc64le": 221, "powerpc64": 221, "ppc64le": 221, "s390x": 238}


I1 = ir.IntType(1)
_c32, _c64 = c32, c64


class _PoolBuilder(PoolControl, PoolRegion):
    def __init__(self, triple: str):
        self.m = m = ir.Module(name="polyop_rt")
        m.triple = triple
        arch = triple.split("-", 1)[0]
        self.x86 = arch in ("x86_64", "i386", "i686")
        self.sys_futex = _SYS_FUTEX.get(arch) if "linux" in triple else None
        self.sig_block = 1 if ("darwin" in triple or "apple" in triple) else 0

        self.body_ptr = BODY_TYPE.as_pointer()
        # mailbox of worker w: go, sleeping, pthread_t, next (its next chunk,
        # taken), padding to one cache line
        self.mail_ty = ir.LiteralStructType([I32, I32, I64, I32, I32, ir.ArrayType(I64, 5)])
        self.task_ty = ir.LiteralStructType([self.body_ptr, I8P, I64, I64, I64])
        self.nthreads = self._global("polyop_rt.nthreads", I32, 1)
        self.min_work = self._global("polyop_rt.min_work", I64)
        self.spin = self._global("polyop_rt.spin", I64,
                                 SPIN_CYCLES if self.x86 else SPIN_ROUNDS)
        self.regions = self._global("polyop_rt.regions", I64)
        self.revoked = self._global("polyop_rt.revoked", I64)
        self.busy = self._global("polyop_rt.busy", I32)
        self.pool_size = self._global("polyop_rt.pool_size", I32)
        self.shutdown = self._global("polyop_rt.shutdown", I32)
        self.task = self._global("polyop_rt.task", self.task_ty)
        self.remaining = self._global("polyop_rt.remaining", I32)
        self.master_sleeping = self._global("polyop_rt.master_sleeping", I32)
        self.profile = self._global("polyop_rt.profile", I32)
        self.mail = self._global("polyop_rt.mail", ir.ArrayType(self.mail_ty, MAX_THREADS))

        self.syscall = self._declare("syscall", ir.FunctionType(I64, [I64], var_arg=True))
        self.sched_yield = self._declare("sched_yield", ir.FunctionType(I32, []))
        self.sigfillset = self._declare("sigfillset", ir.FunctionType(I32, [I8P]))
        self.sigmask = self._declare("pthread_sigmask", ir.FunctionType(I32, [I32, I8P, I8P]))
        start_ty = ir.FunctionType(I8P, [I8P])
        self.pthread_create = self._declare(
            "pthread_create", ir.FunctionType(I32, [I64.as_pointer(), I8P,
                                                    start_ty.as_pointer(), I8P]))
        self.pthread_join = self._declare("pthread_join",
                                          ir.FunctionType(I32, [I64, I8P.as_pointer()]))
        self.clock_gettime = self._declare("clock_gettime", ir.FunctionType(
            I32, [I32, ir.LiteralStructType([I64, I64]).as_pointer()])) \
            if "linux" in triple else None
        self.pause_fn = self.cycles = None
        if self.x86:
            self.pause_fn = ir.Function(m, ir.FunctionType(VOID, []), "llvm.x86.sse2.pause")
            self.cycles = ir.Function(m, ir.FunctionType(I64, []), "llvm.readcyclecounter")

        self.futex_wait = self._futex("polyop_rt.futex_wait", _FUTEX_WAIT_PRIVATE)
        self.futex_wake = self._futex("polyop_rt.futex_wake", _FUTEX_WAKE_PRIVATE)
        self.run_chunks = self._run_chunks()
        self._region_globals()
        self.worker = self._worker()
        self.grow = self._grow_fn()
        self._parallel_for()
        self._region()
        self._barrier()
        self._control()

    # -- helpers ---------------------------------------------------------------

    def _global(self, name: str, ty: ir.Type, init: int | None = None) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.m, ty, name)
        g.linkage = "internal"
        g.initializer = ir.Constant(ty, init)
        g.align = 64  # one cache line each
        return g

    def _declare(self, name: str, fnty: ir.FunctionType) -> ir.Function:
        f = ir.Function(self.m, fnty, name)
        f.attributes.add("nounwind")
        return f

    def _function(self, name: str, fnty: ir.FunctionType, internal: bool = True):
        f = ir.Function(self.m, fnty, name)
        f.attributes.add("nounwind")
        if internal:
            f.linkage = "internal"
        return f, ir.IRBuilder(f.append_basic_block("entry"))

    @staticmethod
    def _load(b: ir.IRBuilder, ptr, order: str = _SEQ) -> ir.Value:
        return b.load_atomic(ptr, order, ptr.type.pointee.width // 8)

    @staticmethod
    def _store(b: ir.IRBuilder, value, ptr, order: str = _SEQ) -> None:
        b.store_atomic(value, ptr, order, ptr.type.pointee.width // 8)

    def _mailbox(self, b: ir.IRBuilder, w: ir.Value, field: int) -> ir.Value:
        return b.gep(self.mail, [_c32(0), w, _c32(field)], inbounds=True)

    def _pause(self, b: ir.IRBuilder) -> None:
        if self.pause_fn is not None:
            b.call(self.pause_fn, [])

    @staticmethod
    def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        return b.select(b.icmp_signed("<", x, y), x, y)

    def _chunk(self, b: ir.IRBuilder, c: ir.Value, n: ir.Value, k: ir.Value):
        """Bounds of chunk ``c`` of ``k`` over ``[0, n)``: sizes differ by at
        most one, the larger chunks first."""
        base = b.sdiv(n, k)
        rem = b.srem(n, k)
        small = b.icmp_signed("<", c, rem)
        lo = b.add(b.mul(c, base), b.select(small, c, rem))
        hi = b.add(b.add(lo, base), b.zext(small, I64))
        return lo, hi

    def _team_size(self, b: ir.IRBuilder, work: ir.Value, n: ir.Value | None = None) -> ir.Value:
        """Emit the team a region asks for: ``min(num_threads, n, work //
        min_work)`` (no ``n``: no such term; ``min_work <= 0`` drops the last)."""
        k = b.sext(self._load(b, self.nthreads, "monotonic"), I64)
        if n is not None:
            k = self._min(b, k, n)
        mw = self._load(b, self.min_work, "monotonic")
        use_mw = b.icmp_signed(">", mw, _c64(0))
        by_work = b.sdiv(work, b.select(use_mw, mw, _c64(1)))
        return b.select(use_mw, self._min(b, k, by_work), k)

    def _signal(self, b: ir.IRBuilder, k: ir.Value, done: ir.Block) -> None:
        """Emit: make ``go`` of workers ``1 .. k-1`` odd (the task, published
        before, is theirs to accept), waking those asleep; then go to ``done``."""
        f, entry = b.function, b.block
        loop, wake, nxt = (f.append_basic_block(f"signal.{x}") for x in ("w", "wake", "next"))
        b.branch(loop)
        b.position_at_end(loop)
        w = b.phi(I64, name="w")
        w.add_incoming(_c64(1), entry)
        go = self._mailbox(b, w, 0)
        self._store(b, b.add(self._load(b, go, "monotonic"), _c32(1)), go)
        asleep = self._load(b, self._mailbox(b, w, 1))
        b.cbranch(b.icmp_signed("!=", asleep, _c32(0)), wake, nxt)
        b.position_at_end(wake)
        b.call(self.futex_wake, [go, _c32(1)])
        b.branch(nxt)
        b.position_at_end(nxt)
        w1 = b.add(w, _c64(1))
        w.add_incoming(w1, nxt)
        b.cbranch(b.icmp_signed("<", w1, k), loop, done)

    def _wait_until_changed(self, b: ir.IRBuilder, word, old: ir.Value, sleeping, name: str,
                            until_zero: bool = False, counted: bool = False) -> ir.Value:
        """Emit: spin, then sleep, until ``*word != old`` (or, with
        ``until_zero``, until ``*word == 0``); returns the new value.
        ``sleeping`` is set while asleep so that wakers know to call
        ``FUTEX_WAKE``. The spin lasts ``spin`` (a global: time-stamp-counter
        ticks on x86, rounds elsewhere; 0 sleeps at once); past 1/256 of it
        every round also calls ``sched_yield``, so that a thread waiting
        for this CPU (another process, or one of our threads when there
        are more threads than CPUs) runs instead of us. With ``counted``,
        ``sleeping`` counts the sleepers (several threads wait on ``word``):
        incremented, then decremented, instead of set and cleared."""
        f = b.function
        bb = {k: f.append_basic_block(f"{name}.{k}") for k in (
            "start", "poll", "pause", "yield", "sleep", "futex", "woke", "done")}
        b.branch(bb["start"])

        b.position_at_end(bb["start"])
        t0 = b.call(self.cycles, []) if self.cycles is not None else None
        limit = self._load(b, self.spin, "monotonic")
        b.branch(bb["poll"])

        b.position_at_end(bb["poll"])
        rounds = None if t0 is not None else b.phi(I64)
        cur = self._load(b, word)
        ready = b.icmp_signed("==", cur, _c32(0)) if until_zero else \
            b.icmp_signed("!=", cur, old)
        b.cbranch(ready, bb["done"], bb["pause"])

        b.position_at_end(bb["pause"])
        self._pause(b)
        if t0 is not None:
            spent = b.sub(b.call(self.cycles, []), t0)
        else:
            spent = b.add(rounds, _c64(1))
            rounds.add_incoming(_c64(0), bb["start"])
            rounds.add_incoming(spent, bb["pause"])
            rounds.add_incoming(spent, bb["yield"])
        b.cbranch(b.icmp_unsigned("<", spent, b.lshr(limit, _c64(8))), bb["poll"], bb["yield"])

        b.position_at_end(bb["yield"])
        b.call(self.sched_yield, [])
        b.cbranch(b.icmp_unsigned("<", spent, limit), bb["poll"], bb["sleep"])

        # flag, then re-check, then FUTEX_WAIT on the value seen: a waker
        # that changes the word after our re-check sees the flag (all seq_cst)
        b.position_at_end(bb["sleep"])
        if counted:
            b.atomic_rmw("add", sleeping, _c32(1), _SEQ)
        else:
            self._store(b, _c32(1), sleeping)
        again = self._load(b, word)
        still = b.icmp_signed("!=", again, _c32(0)) if until_zero else \
            b.icmp_signed("==", again, old)
        b.cbranch(still, bb["futex"], bb["woke"])

        b.position_at_end(bb["futex"])
        b.call(self.futex_wait, [word, again])
        b.branch(bb["woke"])

        b.position_at_end(bb["woke"])
        if counted:
            b.atomic_rmw("sub", sleeping, _c32(1), _SEQ)
        else:
            self._store(b, _c32(0), sleeping)
        b.branch(bb["start"])

        b.position_at_end(bb["done"])
        return cur

    # -- futex -----------------------------------------------------------------

    def _futex(self, name: str, op: int) -> ir.Function:
        """``name(addr, val)``: ``FUTEX_WAIT`` (sleep while ``*addr == val``;
        may return early: callers re-check) or ``FUTEX_WAKE`` (wake up to
        ``val`` sleepers); without futexes, ``sched_yield`` or nothing."""
        f, b = self._function(name, ir.FunctionType(VOID, [I32.as_pointer(), I32]))
        addr, val = f.args
        if self.sys_futex is not None:
            null = ir.Constant(I8P, None)
            b.call(self.syscall, [_c64(self.sys_futex), b.bitcast(addr, I8P), _c64(op),
                                  b.zext(val, I64), null, null, _c64(0)])
        elif op == _FUTEX_WAIT_PRIVATE:
            b.call(self.sched_yield, [])
        b.ret_void()
        return f

    # -- chunks --------------------------------------------------------------------

    def _run_chunks(self) -> ir.Function:
        """``run_chunks(first, body, env, n, k, g)``: the ``k * g`` chunks of
        ``[0, n)`` are dealt ``g`` to a thread, each thread's ``next`` counter
        pointing at its first unclaimed one (``fetch_add`` claims it). Run
        thread ``first``'s chunks in order, then take the others' leftovers,
        in cyclic order of thread: a thread that starts late (the scheduler
        put it on a busy CPU) or whose chunks are dearer (a triangular loop)
        gets help, a chunk at a time."""
        f, b = self._function("polyop_rt.run_chunks", ir.FunctionType(
            VOID, [I64, self.body_ptr, I8P, I64, I64, I64]))
        first, body, env, n, k, g = f.args
        entry = b.block
        bb = {x: f.append_basic_block(x) for x in ("thread", "claim", "take", "next", "done")}
        b.branch(bb["thread"])

        b.position_at_end(bb["thread"])  # thread v = first + i (mod k)
        i = b.phi(I64)
        i.add_incoming(_c64(0), entry)
        v = b.add(first, i)
        v = b.select(b.icmp_signed("<", v, k), v, b.sub(v, k))
        counter = self._mailbox(b, v, 3)
        end = b.mul(b.add(v, _c64(1)), g)
        b.branch(bb["claim"])

        # a plain look first: an exhausted counter is only read, not taken over
        b.position_at_end(bb["claim"])
        seen = b.sext(self._load(b, counter, "monotonic"), I64)
        b.cbranch(b.icmp_signed("<", seen, end), bb["take"], bb["next"])

        b.position_at_end(bb["take"])
        c = b.sext(b.atomic_rmw("add", counter, _c32(1), "monotonic"), I64)
        run = f.append_basic_block("run")
        b.cbranch(b.icmp_signed("<", c, end), run, bb["next"])
        b.position_at_end(run)
        # thread v's j-th chunk (c = v * g + j) is chunk j * k + v of the loop
        dealt = b.add(b.mul(b.srem(c, g), k), b.sdiv(c, g))
        lo, hi = self._chunk(b, dealt, n, b.mul(k, g))
        self._call_body(b, first, body, env, lo, hi)
        b.branch(bb["claim"])

        b.position_at_end(bb["next"])
        i1 = b.add(i, _c64(1))
        i.add_incoming(i1, bb["next"])
        b.cbranch(b.icmp_signed("<", i1, k), bb["thread"], bb["done"])

        b.position_at_end(bb["done"])
        b.ret_void()
        return f

    # -- worker thread -----------------------------------------------------------

    def _worker(self) -> ir.Function:
        """``i8* worker(i8* index)``: wait for ``go`` to turn odd, accept the
        region (``go`` odd → even, unless the caller revoked it first), run
        chunks, report."""
        f, b = self._function("polyop_rt.worker", ir.FunctionType(I8P, [I8P]))
        w = b.ptrtoint(f.args[0], I64)
        go = self._mailbox(b, w, 0)
        sleeping = self._mailbox(b, w, 1)
        entry = b.block
        top = f.append_basic_block("top")
        got = f.append_basic_block("got")
        run = f.append_basic_block("run")
        last = f.append_basic_block("last")
        wake = f.append_basic_block("wake")
        back = f.append_basic_block("back")
        leave = f.append_basic_block("leave")
        b.branch(top)

        b.position_at_end(top)
        seen = b.phi(I32, name="seen")
        g = self._wait_until_changed(b, go, seen, sleeping, "go")
        accepted = b.add(g, _c32(1))
        res = b.cmpxchg(go, g, accepted, _SEQ, _SEQ)
        b.cbranch(b.extract_value(res, 1), got, top)
        seen.add_incoming(_c32(0), entry)
        seen.add_incoming(seen, b.block)  # revoked: go is back to seen
        seen.add_incoming(accepted, back)

        b.position_at_end(got)
        stop = self._load(b, self.shutdown)
        b.cbranch(b.icmp_signed("!=", stop, _c32(0)), leave, run)

        # a loop's chunks (mode 0) or a member of a team region (mode 1)
        b.position_at_end(run)
        chunks, member, ran = (f.append_basic_block(x) for x in ("chunks", "member", "ran"))
        mode = self._load(b, self.mode, "monotonic")
        b.cbranch(b.icmp_signed("!=", mode, _c32(0)), member, chunks)

        b.position_at_end(member)
        b.call(self.member, [w])
        b.branch(ran)

        b.position_at_end(chunks)
        zero = _c32(0)
        body = b.load(b.gep(self.task, [zero, _c32(0)], inbounds=True))
        env = b.load(b.gep(self.task, [zero, _c32(1)], inbounds=True))
        n = b.load(b.gep(self.task, [zero, _c32(2)], inbounds=True))
        k = b.load(b.gep(self.task, [zero, _c32(3)], inbounds=True))
        g = b.load(b.gep(self.task, [zero, _c32(4)], inbounds=True))
        b.call(self.run_chunks, [w, body, env, n, k, g])
        b.branch(ran)

        b.position_at_end(ran)
        old = b.atomic_rmw("sub", self.remaining, _c32(1), _SEQ)
        b.cbranch(b.icmp_signed("==", old, _c32(1)), last, back)

        b.position_at_end(last)
        ms = self._load(b, self.master_sleeping)
        b.cbranch(b.icmp_signed("!=", ms, _c32(0)), wake, back)

        b.position_at_end(wake)
        b.call(self.futex_wake, [self.remaining, _c32(1)])
        b.branch(back)

        b.position_at_end(back)
        b.branch(top)

        b.position_at_end(leave)
        b.ret(ir.Constant(I8P, None))
        return f

    # -- the region entry ----------------------------------------------------------

    def _parallel_for(self) -> None:
        f, b = self._function(ENTRY, ENTRY_TYPE, internal=False)
        body, env, n, work = f.args
        body.name, env.name, n.name, work.name = "body", "env", "n", "work"
        blk = {name: f.append_basic_block(name) for name in (
            "check", "inline", "try", "team", "launch", "reset", "signal", "run", "revoke",
            "revoke.try", "revoke.done", "revoke.next", "join", "release_inline")}
        b.branch(blk["check"])

        # team size k = min(num_threads, n, work // min_work); n <= 0: inline
        b.position_at_end(blk["check"])
        k = self._team_size(b, work, n)
        b.cbranch(b.icmp_signed("<=", k, _c64(1)), blk["inline"], blk["try"])

        # no team: run everything here
        # (profiled only outside any region: a nested one is inside a chunk)
        b.position_at_end(blk["inline"])
        idle = b.icmp_signed("==", self._load(b, self.busy, "monotonic"), _c32(0))
        self._call_body(b, _c64(0), body, env, _c64(0), n, count=idle)
        b.ret_void()

        b.position_at_end(blk["try"])
        res = b.cmpxchg(self.busy, _c32(0), _c32(1), _SEQ, _SEQ)
        b.cbranch(b.extract_value(res, 1), blk["team"], blk["inline"])

        # make sure workers 1 .. k-1 exist (as many as can be created)
        b.position_at_end(blk["team"])
        k2 = b.call(self.grow, [k])
        b.cbranch(b.icmp_signed("<=", k2, _c64(1)), blk["release_inline"], blk["launch"])

        b.position_at_end(blk["release_inline"])
        self._call_body(b, _c64(0), body, env, _c64(0), n)
        self._store(b, _c32(0), self.busy)
        b.ret_void()

        # publish the task, then wake workers 1 .. k2-1
        b.position_at_end(blk["launch"])
        zero = _c32(0)
        b.store(body, b.gep(self.task, [zero, _c32(0)], inbounds=True))
        b.store(env, b.gep(self.task, [zero, _c32(1)], inbounds=True))
        b.store(n, b.gep(self.task, [zero, _c32(2)], inbounds=True))
        b.store(k2, b.gep(self.task, [zero, _c32(3)], inbounds=True))
        # g = clamp(n // k2, 1, CHUNKS_PER_THREAD) chunks a thread
        per = self._min(b, b.sdiv(n, k2), _c64(CHUNKS_PER_THREAD))
        per = b.select(b.icmp_signed("<", per, _c64(1)), _c64(1), per)
        b.store(per, b.gep(self.task, [zero, _c32(4)], inbounds=True))
        self._store(b, b.trunc(b.sub(k2, _c64(1)), I32), self.remaining)
        b.atomic_rmw("add", self.regions, _c64(1), "monotonic")
        b.branch(blk["reset"])

        # thread c's next chunk is its first, c * g, before any worker can look
        b.position_at_end(blk["reset"])
        c = b.phi(I64, name="c")
        c.add_incoming(_c64(0), blk["launch"])
        self._store(b, b.trunc(b.mul(c, per), I32), self._mailbox(b, c, 3), "monotonic")
        c1 = b.add(c, _c64(1))
        c.add_incoming(c1, blk["reset"])
        b.cbranch(b.icmp_signed("<", c1, k2), blk["reset"], blk["signal"])

        b.position_at_end(blk["signal"])
        self._signal(b, k2, blk["run"])

        # chunk 0 here, and every chunk nobody else took
        b.position_at_end(blk["run"])
        b.call(self.run_chunks, [_c64(0), body, env, n, k2, per])
        b.branch(blk["revoke"])

        # every chunk is taken: revoke the region from each worker that has
        # not accepted it yet (go still odd), on its behalf decrementing
        # ``remaining``; then wait for the workers that did accept
        b.position_at_end(blk["revoke"])
        rw = b.phi(I64, name="w")
        rw.add_incoming(_c64(1), blk["run"])
        go = self._mailbox(b, rw, 0)
        g = self._load(b, go, "monotonic")
        odd = b.trunc(g, I1)
        b.cbranch(odd, blk["revoke.try"], blk["revoke.next"])

        b.position_at_end(blk["revoke.try"])
        res = b.cmpxchg(go, g, b.sub(g, _c32(1)), _SEQ, _SEQ)
        b.cbranch(b.extract_value(res, 1), blk["revoke.done"], blk["revoke.next"])

        b.position_at_end(blk["revoke.done"])
        b.atomic_rmw("sub", self.remaining, _c32(1), _SEQ)
        b.atomic_rmw("add", self.revoked, _c64(1), "monotonic")
        b.branch(blk["revoke.next"])

        b.position_at_end(blk["revoke.next"])
        rn = b.add(rw, _c64(1))
        rw.add_incoming(rn, blk["revoke.next"])
        b.cbranch(b.icmp_signed("<", rn, k2), blk["revoke"], blk["join"])

        b.position_at_end(blk["join"])
        self._wait_until_changed(b, self.remaining, _c32(0), self.master_sleeping, "join",
                                 until_zero=True)
        self._store(b, _c32(0), self.busy)
        b.ret_void()


def build_pool_module(triple: str) -> ir.Module:
    """The thread-pool runtime as an llvmlite module for target ``triple``."""
    return _PoolBuilder(triple).m
