"""The native thread pool behind ``parallel`` loops, written in LLVM IR.

``build_pool_module(triple)`` returns an llvmlite module (compiled once per
process by ``polyop.codegen.parallel``) that defines:

- ``void polyop_rt_parallel_for(void (*body)(i8* env, i64 lo, i64 hi), i8* env, i64 n)``:
  runs ``body(env, lo, hi)`` over static contiguous chunks that cover
  ``[0, n)``, one chunk per thread, and returns when all are done. The
  calling thread runs chunk 0 itself. With one thread (or ``n < 2``), or
  while another region is running (a nested region, or a second Python
  thread calling a kernel at the same time), the body runs inline on
  ``[0, n)``;
- ``void polyop_rt_set_num_threads(i32)``: the team size of later regions;
- ``i32 polyop_rt_pool_size()``: worker threads created so far;
- ``i32 polyop_rt_shutdown()``: stops and joins every worker (1 on success,
  0 when a region stayed busy too long); later regions start a new pool;
- ``void polyop_rt_after_fork()``: forgets the parent's workers in a child.

Design: a persistent pool of worker threads created lazily with
``pthread_create`` (the calling thread is worker 0). Every worker has its own
64-byte mailbox ``{go, sleeping, thread id}``. A region takes the global
``busy`` flag (compare-and-swap), writes the task (body, env, n, chunk count),
sets ``remaining`` and bumps ``go`` of each worker it needs (seq_cst stores
publish the task). A worker spins on its ``go`` word for a while, then sleeps
on it with a futex (``syscall(SYS_futex)``: no libc wrappers beyond
``syscall``); it runs its chunk and decrements ``remaining``; the caller spins
and then sleeps on ``remaining`` the same way. Sleeping uses the flag/recheck
pattern (set ``sleeping``, re-read the word, ``FUTEX_WAIT`` on the old value)
against the waker's store/read of ``sleeping``, all seq_cst, so no wake-up is
lost. Workers run with every signal blocked. Off Linux, sleeping falls back
to ``sched_yield``.

Example::

    >>> m = build_pool_module("x86_64-unknown-linux-gnu")
    >>> "define void @\\"polyop_rt_parallel_for\\"" in str(m)
    True
"""

from __future__ import annotations

from llvmlite import ir

__all__ = ["BODY_TYPE", "ENTRY", "MAX_THREADS", "build_pool_module"]

#: most threads a team may have (the calling thread included)
MAX_THREADS = 1024
#: how long a waiting thread spins before it sleeps, in time-stamp-counter
#: ticks on x86 (2**21: ~1 ms at 2-3 GHz) or rounds of ``load; pause``
#: elsewhere; after the first 1/256 of it every round also calls ``sched_yield``
SPIN_CYCLES = 1 << 21
SPIN_ITERATIONS = 1 << 15
#: ``sched_yield`` rounds ``polyop_rt_shutdown`` waits for a busy region
SHUTDOWN_TRIES = 1 << 20

ENTRY = "polyop_rt_parallel_for"

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
I8P = I8.as_pointer()
VOID = ir.VoidType()
#: the outlined loop body: ``void body(i8* env, i64 lo, i64 hi)``
BODY_TYPE = ir.FunctionType(VOID, [I8P, I64, I64])

_SEQ = "seq_cst"
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98,
              "powerpc64le": 221, "powerpc64": 221, "ppc64le": 221, "s390x": 238}


def _c32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


class _PoolBuilder:
    def __init__(self, triple: str):
        self.m = m = ir.Module(name="polyop_rt")
        m.triple = triple
        arch = triple.split("-", 1)[0]
        self.x86 = arch in ("x86_64", "i386", "i686")
        self.sys_futex = _SYS_FUTEX.get(arch) if "linux" in triple else None
        self.sig_block = 1 if ("darwin" in triple or "apple" in triple) else 0

        self.body_ptr = BODY_TYPE.as_pointer()
        # mailbox of worker w: go, sleeping, pthread_t, claimed (chunk w is
        # taken), padding to one cache line
        self.mail_ty = ir.LiteralStructType([I32, I32, I64, I32, I32, ir.ArrayType(I64, 5)])
        self.task_ty = ir.LiteralStructType([self.body_ptr, I8P, I64, I64])
        self.nthreads = self._global("polyop_rt.nthreads", I32, 1)
        self.busy = self._global("polyop_rt.busy", I32)
        self.pool_size = self._global("polyop_rt.pool_size", I32)
        self.shutdown = self._global("polyop_rt.shutdown", I32)
        self.task = self._global("polyop_rt.task", self.task_ty)
        self.remaining = self._global("polyop_rt.remaining", I32)
        self.master_sleeping = self._global("polyop_rt.master_sleeping", I32)
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
        self.pause_fn = self.cycles = None
        if self.x86:
            self.pause_fn = ir.Function(m, ir.FunctionType(VOID, []), "llvm.x86.sse2.pause")
            self.cycles = ir.Function(m, ir.FunctionType(I64, []), "llvm.readcyclecounter")

        self.futex_wait = self._futex_wait()
        self.futex_wake = self._futex_wake()
        self.run_chunks = self._run_chunks()
        self.worker = self._worker()
        self._parallel_for()
        self._set_num_threads()
        self._pool_size_fn()
        self._shutdown_fn()
        self._after_fork()

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
        return b.load_atomic(ptr, order, 4)

    @staticmethod
    def _store(b: ir.IRBuilder, value, ptr, order: str = _SEQ) -> None:
        b.store_atomic(value, ptr, order, 4)

    def _mailbox(self, b: ir.IRBuilder, w: ir.Value, field: int) -> ir.Value:
        return b.gep(self.mail, [_c32(0), w, _c32(field)], inbounds=True)

    def _pause(self, b: ir.IRBuilder) -> None:
        if self.pause_fn is not None:
            b.call(self.pause_fn, [])

    def _chunk(self, b: ir.IRBuilder, c: ir.Value, n: ir.Value, k: ir.Value):
        """Bounds of chunk ``c`` of ``k`` over ``[0, n)``: sizes differ by at
        most one, the larger chunks first."""
        base = b.sdiv(n, k)
        rem = b.srem(n, k)
        small = b.icmp_signed("<", c, rem)
        lo = b.add(b.mul(c, base), b.select(small, c, rem))
        hi = b.add(b.add(lo, base), b.zext(small, I64))
        return lo, hi

    def _wait_until_changed(self, b: ir.IRBuilder, word, old: ir.Value, sleeping, name: str,
                            until_zero: bool = False) -> ir.Value:
        """Emit: spin, then sleep, until ``*word != old`` (or, with
        ``until_zero``, until ``*word == 0``); returns the new value.
        ``sleeping`` is set while asleep so that wakers know to call
        ``FUTEX_WAKE``. The spin lasts ``SPIN_CYCLES`` time-stamp-counter
        ticks on x86, ``SPIN_ITERATIONS`` rounds elsewhere."""
        f = b.function
        spin0_bb = f.append_basic_block(f"{name}.spin0")
        spin_bb = f.append_basic_block(f"{name}.spin")
        pause_bb = f.append_basic_block(f"{name}.pause")
        sleep_bb = f.append_basic_block(f"{name}.sleep")
        wait_bb = f.append_basic_block(f"{name}.futex")
        woke_bb = f.append_basic_block(f"{name}.woke")
        done_bb = f.append_basic_block(f"{name}.done")
        b.branch(spin0_bb)

        b.position_at_end(spin0_bb)
        t0 = b.call(self.cycles, []) if self.cycles is not None else _c64(0)
        b.branch(spin_bb)

        b.position_at_end(spin_bb)
        k = b.phi(I64)
        cur = self._load(b, word)
        if until_zero:
            ready = b.icmp_signed("==", cur, _c32(0))
        else:
            ready = b.icmp_signed("!=", cur, old)
        b.cbranch(ready, done_bb, pause_bb)

        # pause; past 1/256 of the budget also yield: a thread woken on this
        # CPU (the scheduler may put it there) then runs instead of waiting
        # for the end of our time slice
        b.position_at_end(pause_bb)
        self._pause(b)
        if self.cycles is not None:
            k1 = b.sub(b.call(self.cycles, []), t0)
            limit = SPIN_CYCLES
        else:
            k1 = b.add(k, _c64(1))
            limit = SPIN_ITERATIONS
        yield_bb = f.append_basic_block(f"{name}.yield")
        next_bb = f.append_basic_block(f"{name}.next")
        b.cbranch(b.icmp_unsigned("<", k1, _c64(limit // 256)), spin_bb, yield_bb)
        b.position_at_end(yield_bb)
        b.call(self.sched_yield, [])
        b.branch(next_bb)
        b.position_at_end(next_bb)
        b.cbranch(b.icmp_unsigned("<", k1, _c64(limit)), spin_bb, sleep_bb)
        k.add_incoming(_c64(0), spin0_bb)
        k.add_incoming(k1, pause_bb)
        k.add_incoming(k1, next_bb)

        b.position_at_end(sleep_bb)
        self._store(b, _c32(1), sleeping)
        again = self._load(b, word)
        still = b.icmp_signed("!=", again, _c32(0)) if until_zero else \
            b.icmp_signed("==", again, old)
        b.cbranch(still, wait_bb, woke_bb)

        b.position_at_end(wait_bb)
        b.call(self.futex_wait, [word, again])
        b.branch(woke_bb)

        b.position_at_end(woke_bb)
        self._store(b, _c32(0), sleeping)
        b.branch(spin0_bb)

        b.position_at_end(done_bb)
        return cur

    # -- futex -----------------------------------------------------------------

    def _futex_wait(self) -> ir.Function:
        """Sleep while ``*addr == val`` (may return early: callers re-check)."""
        f, b = self._function("polyop_rt.futex_wait", ir.FunctionType(VOID, [I32.as_pointer(),
                                                                             I32]))
        addr, val = f.args
        if self.sys_futex is None:
            b.call(self.sched_yield, [])
        else:
            null = ir.Constant(I8P, None)
            b.call(self.syscall, [_c64(self.sys_futex), b.bitcast(addr, I8P),
                                  _c64(_FUTEX_WAIT_PRIVATE), b.zext(val, I64), null, null,
                                  _c64(0)])
        b.ret_void()
        return f

    def _futex_wake(self) -> ir.Function:
        """Wake up to ``n`` threads sleeping on ``addr``."""
        f, b = self._function("polyop_rt.futex_wake", ir.FunctionType(VOID, [I32.as_pointer(),
                                                                             I32]))
        addr, n = f.args
        if self.sys_futex is not None:
            null = ir.Constant(I8P, None)
            b.call(self.syscall, [_c64(self.sys_futex), b.bitcast(addr, I8P),
                                  _c64(_FUTEX_WAKE_PRIVATE), b.zext(n, I64), null, null,
                                  _c64(0)])
        b.ret_void()
        return f

    # -- chunks --------------------------------------------------------------------

    def _run_chunks(self) -> ir.Function:
        """``run_chunks(first, body, env, n, k)``: run every chunk not yet
        claimed, own chunk ``first`` first, then the others in cyclic order
        (a thread that starts late, e.g. because the scheduler put it on a
        busy CPU, finds its chunk done by the others)."""
        f, b = self._function("polyop_rt.run_chunks", ir.FunctionType(
            VOID, [I64, self.body_ptr, I8P, I64, I64]))
        first, body, env, n, k = f.args
        entry = b.block
        loop = f.append_basic_block("loop")
        run = f.append_basic_block("run")
        nxt = f.append_basic_block("next")
        done = f.append_basic_block("done")
        b.branch(loop)

        b.position_at_end(loop)
        i = b.phi(I64)
        i.add_incoming(_c64(0), entry)
        c = b.add(first, i)
        c = b.select(b.icmp_signed("<", c, k), c, b.sub(c, k))
        old = b.atomic_rmw("xchg", self._mailbox(b, c, 3), _c32(1), _SEQ)
        b.cbranch(b.icmp_signed("==", old, _c32(0)), run, nxt)

        b.position_at_end(run)
        lo, hi = self._chunk(b, c, n, k)
        b.call(body, [env, lo, hi])
        b.branch(nxt)

        b.position_at_end(nxt)
        i1 = b.add(i, _c64(1))
        i.add_incoming(i1, nxt)
        b.cbranch(b.icmp_signed("<", i1, k), loop, done)

        b.position_at_end(done)
        b.ret_void()
        return f

    # -- worker thread -----------------------------------------------------------

    def _worker(self) -> ir.Function:
        """``i8* worker(i8* index)``: wait for ``go``, run the chunk, report."""
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
        b.branch(got)
        seen.add_incoming(_c32(0), entry)
        seen.add_incoming(g, back)

        b.position_at_end(got)
        stop = self._load(b, self.shutdown)
        b.cbranch(b.icmp_signed("!=", stop, _c32(0)), leave, run)

        b.position_at_end(run)
        zero = _c32(0)
        body = b.load(b.gep(self.task, [zero, _c32(0)], inbounds=True))
        env = b.load(b.gep(self.task, [zero, _c32(1)], inbounds=True))
        n = b.load(b.gep(self.task, [zero, _c32(2)], inbounds=True))
        k = b.load(b.gep(self.task, [zero, _c32(3)], inbounds=True))
        b.call(self.run_chunks, [w, body, env, n, k])
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
        f, b = self._function(ENTRY, ir.FunctionType(VOID, [self.body_ptr, I8P, I64]),
                              internal=False)
        body, env, n = f.args
        body.name, env.name, n.name = "body", "env", "n"
        blk = {name: f.append_basic_block(name) for name in (
            "check", "inline", "try", "team", "grow", "create", "created", "grown",
            "launch", "reset", "signal", "signal.wake", "signal.next", "run", "release_inline",
            "empty")}
        sigsets = b.alloca(ir.ArrayType(I8, 256), name="sigsets")  # two sigset_t
        sig_all = b.gep(sigsets, [_c32(0), _c32(0)])
        sig_old = b.gep(sigsets, [_c32(0), _c32(128)])
        b.cbranch(b.icmp_signed(">", n, _c64(0)), blk["check"], blk["empty"])

        b.position_at_end(blk["empty"])
        b.ret_void()

        b.position_at_end(blk["check"])
        nt = b.sext(self._load(b, self.nthreads, "monotonic"), I64)
        k = b.select(b.icmp_signed("<", nt, n), nt, n)
        b.cbranch(b.icmp_signed("<=", k, _c64(1)), blk["inline"], blk["try"])

        # no team: run everything here
        b.position_at_end(blk["inline"])
        b.call(body, [env, _c64(0), n])
        b.ret_void()

        b.position_at_end(blk["try"])
        res = b.cmpxchg(self.busy, _c32(0), _c32(1), _SEQ, _SEQ)
        b.cbranch(b.extract_value(res, 1), blk["team"], blk["inline"])

        # make sure workers 1 .. k-1 exist
        b.position_at_end(blk["team"])
        ps0 = self._load(b, self.pool_size, "monotonic")
        b.branch(blk["grow"])

        b.position_at_end(blk["grow"])
        ps = b.phi(I32, name="pool")
        ps.add_incoming(ps0, blk["team"])
        ps64 = b.sext(ps, I64)
        need = b.icmp_signed("<", b.add(ps64, _c64(1)), k)
        room = b.icmp_signed("<", ps, _c32(MAX_THREADS - 1))
        b.cbranch(b.and_(need, room), blk["create"], blk["grown"])

        b.position_at_end(blk["create"])
        w = b.add(ps, _c32(1))
        w64 = b.sext(w, I64)
        self._store(b, _c32(0), self._mailbox(b, w64, 0))
        self._store(b, _c32(0), self._mailbox(b, w64, 1))
        # the worker inherits a mask with every signal blocked
        b.call(self.sigfillset, [sig_all])
        b.call(self.sigmask, [_c32(self.sig_block), sig_all, sig_old])
        rc = b.call(self.pthread_create, [self._mailbox(b, w64, 2), ir.Constant(I8P, None),
                                          self.worker, b.inttoptr(w64, I8P)])
        b.call(self.sigmask, [_c32(2 if self.sig_block == 0 else 3), sig_old,
                              ir.Constant(I8P, None)])
        b.cbranch(b.icmp_signed("==", rc, _c32(0)), blk["created"], blk["grown"])

        b.position_at_end(blk["created"])
        self._store(b, w, self.pool_size, "monotonic")
        ps.add_incoming(w, blk["created"])
        b.branch(blk["grow"])

        b.position_at_end(blk["grown"])
        have = b.phi(I32)
        have.add_incoming(ps, blk["grow"])
        have.add_incoming(ps, blk["create"])
        team = b.add(b.sext(have, I64), _c64(1))
        k2 = b.select(b.icmp_signed("<", team, k), team, k)
        b.cbranch(b.icmp_signed("<=", k2, _c64(1)), blk["release_inline"], blk["launch"])

        b.position_at_end(blk["release_inline"])
        b.call(body, [env, _c64(0), n])
        self._store(b, _c32(0), self.busy)
        b.ret_void()

        # publish the task, then wake workers 1 .. k2-1
        b.position_at_end(blk["launch"])
        zero = _c32(0)
        b.store(body, b.gep(self.task, [zero, _c32(0)], inbounds=True))
        b.store(env, b.gep(self.task, [zero, _c32(1)], inbounds=True))
        b.store(n, b.gep(self.task, [zero, _c32(2)], inbounds=True))
        b.store(k2, b.gep(self.task, [zero, _c32(3)], inbounds=True))
        self._store(b, b.trunc(b.sub(k2, _c64(1)), I32), self.remaining)
        b.branch(blk["reset"])

        # every chunk unclaimed before any worker can look at the flags
        b.position_at_end(blk["reset"])
        c = b.phi(I64, name="c")
        c.add_incoming(_c64(0), blk["launch"])
        self._store(b, _c32(0), self._mailbox(b, c, 3), "monotonic")
        c1 = b.add(c, _c64(1))
        c.add_incoming(c1, blk["reset"])
        b.cbranch(b.icmp_signed("<", c1, k2), blk["reset"], blk["signal"])

        b.position_at_end(blk["signal"])
        wi = b.phi(I64, name="w")
        wi.add_incoming(_c64(1), blk["reset"])
        go = self._mailbox(b, wi, 0)
        g = self._load(b, go, "monotonic")
        self._store(b, b.add(g, _c32(1)), go)
        asleep = self._load(b, self._mailbox(b, wi, 1))
        b.cbranch(b.icmp_signed("!=", asleep, _c32(0)), blk["signal.wake"], blk["signal.next"])

        b.position_at_end(blk["signal.wake"])
        b.call(self.futex_wake, [go, _c32(1)])
        b.branch(blk["signal.next"])

        b.position_at_end(blk["signal.next"])
        wn = b.add(wi, _c64(1))
        wi.add_incoming(wn, blk["signal.next"])
        b.cbranch(b.icmp_signed("<", wn, k2), blk["signal"], blk["run"])

        # chunk 0 here, then wait for the others
        b.position_at_end(blk["run"])
        b.call(self.run_chunks, [_c64(0), body, env, n, k2])
        self._wait_until_changed(b, self.remaining, _c32(0), self.master_sleeping, "join",
                                 until_zero=True)
        self._store(b, _c32(0), self.busy)
        b.ret_void()

    # -- control -------------------------------------------------------------------

    def _set_num_threads(self) -> None:
        f, b = self._function("polyop_rt_set_num_threads", ir.FunctionType(VOID, [I32]),
                              internal=False)
        self._store(b, f.args[0], self.nthreads)
        b.ret_void()

    def _pool_size_fn(self) -> None:
        f, b = self._function("polyop_rt_pool_size", ir.FunctionType(I32, []), internal=False)
        b.ret(self._load(b, self.pool_size))

    def _shutdown_fn(self) -> None:
        f, b = self._function("polyop_rt_shutdown", ir.FunctionType(I32, []), internal=False)
        blk = {name: f.append_basic_block(name) for name in (
            "try", "yield", "fail", "have", "signal", "signal.body", "join", "join.body",
            "done")}
        entry = b.block
        b.branch(blk["try"])

        b.position_at_end(blk["try"])
        t = b.phi(I32)
        t.add_incoming(_c32(0), entry)
        res = b.cmpxchg(self.busy, _c32(0), _c32(1), _SEQ, _SEQ)
        b.cbranch(b.extract_value(res, 1), blk["have"], blk["yield"])

        b.position_at_end(blk["yield"])
        b.call(self.sched_yield, [])
        t1 = b.add(t, _c32(1))
        t.add_incoming(t1, blk["yield"])
        b.cbranch(b.icmp_signed("<", t1, _c32(SHUTDOWN_TRIES)), blk["try"], blk["fail"])

        b.position_at_end(blk["fail"])
        b.ret(_c32(0))

        b.position_at_end(blk["have"])
        self._store(b, _c32(1), self.shutdown)
        ps = b.sext(self._load(b, self.pool_size), I64)
        b.branch(blk["signal"])

        b.position_at_end(blk["signal"])
        w = b.phi(I64)
        w.add_incoming(_c64(1), blk["have"])
        b.cbranch(b.icmp_signed("<=", w, ps), blk["signal.body"], blk["join"])

        b.position_at_end(blk["signal.body"])
        go = self._mailbox(b, w, 0)
        self._store(b, b.add(self._load(b, go, "monotonic"), _c32(1)), go)
        b.call(self.futex_wake, [go, _c32(1)])
        w.add_incoming(b.add(w, _c64(1)), blk["signal.body"])
        b.branch(blk["signal"])

        b.position_at_end(blk["join"])
        j = b.phi(I64)
        j.add_incoming(_c64(1), blk["signal"])
        b.cbranch(b.icmp_signed("<=", j, ps), blk["join.body"], blk["done"])

        b.position_at_end(blk["join.body"])
        tid = b.load(self._mailbox(b, j, 2))
        b.call(self.pthread_join, [tid, ir.Constant(I8P.as_pointer(), None)])
        j.add_incoming(b.add(j, _c64(1)), blk["join.body"])
        b.branch(blk["join"])

        b.position_at_end(blk["done"])
        self._store(b, _c32(0), self.pool_size)
        self._store(b, _c32(0), self.shutdown)
        self._store(b, _c32(0), self.busy)
        b.ret(_c32(1))

    def _after_fork(self) -> None:
        f, b = self._function("polyop_rt_after_fork", ir.FunctionType(VOID, []), internal=False)
        for g in (self.pool_size, self.shutdown, self.remaining, self.master_sleeping, self.busy):
            self._store(b, _c32(0), g)
        b.ret_void()


def build_pool_module(triple: str) -> ir.Module:
    """The thread-pool runtime as an llvmlite module for target ``triple``."""
    return _PoolBuilder(triple).m
