"""The thread pool's team regions and barrier, written in LLVM IR.

A mixin of ``polyop.codegen.threadpool``'s builder (it uses the builder's
globals, mailboxes, waits and futexes) that emits:

- ``void polyop_rt_parallel_region(void (*region)(i8* env, i64 member, i64 team),
  i8* env, i64 work)``: runs ``region(env, m, team)`` once on each of
  ``team`` threads, ``m = 0 .. team-1`` (the calling thread is member 0),
  and returns when all have returned. The region itself splits its loops
  among the members and synchronises them with the barrier. The team is
  asked for ``k = min(num_threads, work // min_work)`` threads (``min_work
  <= 0`` drops the second term); with ``k <= 1``, or while another region
  (of either kind) runs, ``region(env, 0, 1)`` runs inline;
- ``void polyop_rt_barrier(i64 member, i64 team)``: returns on each member
  once every member of the team has called it (``team <= 1``: at once);
- ``i64 polyop_rt.grow(i64 k)`` (internal, shared with
  ``polyop_rt_parallel_for``): makes workers ``1 .. k-1`` exist and returns
  how many threads a team can have, ``min(k, workers + 1)``.

Fixing the team. ``polyop_rt_parallel_for``'s protocol lets the caller
revoke a worker that has not accepted by the time the caller has run every
chunk. A barrier cannot wait for a worker that may never come, so a region
fixes its team before any member starts: the caller publishes the region
(mode 1, ``team = 0``) and raises ``go`` of workers ``1 .. k-1``, as for a
loop; it waits a bounded time (``ACCEPT_TICKS``, at most a quarter of the
estimated work at ~1 tick an operation: no 0.7 ms wait for a region of 1 us)
until every one has accepted; it revokes the others (the same compare-and-
swap as for a loop, so exactly one of accept and revoke succeeds); it gives
each accepted worker, in order, its member number (mailbox field 4), and
only then stores ``team`` (seq_cst: it publishes the numbers). An accepted
worker waits for ``team != 0``, then runs its member. No member ever waits
for a revoked worker: the barrier counts the published team only.

Barrier: a counter and a generation (the sense-reversing barrier with the
sense as a counter, so that a member that leaves one barrier and arrives at
the next cannot be confused with the last one): a member reads the
generation, decrements the counter; the last one to arrive resets the
counter to ``team`` and then bumps the generation; the others wait until
the generation changes, spinning then sleeping exactly as the pool's other
waits (``_wait_until_changed``: 1/256 of the spin time of ``pause``, then
``sched_yield`` each round up to the spin time, 20 ms by default, then a
futex: on a 2-core machine shared with other processes a pure spin would
hold a CPU another member needs). Sleepers are
counted (``bar_sleepers``), not flagged, since several wait on one word; the
last arrival wakes them all when the count is not zero. All of it seq_cst,
so everything a member wrote before the barrier is visible to every member
after it.

Example::

    >>> from polyop.codegen.threadpool import build_pool_module
    >>> text = str(build_pool_module("x86_64-unknown-linux-gnu"))
    >>> "polyop_rt_parallel_region" in text and "polyop_rt_barrier" in text
    True
"""

from __future__ import annotations

from llvmlite import ir

from .threadpool_control import I8, I8P, I32, I64, MAX_THREADS, SEQ, VOID, c32, c64

__all__ = ["ACCEPT_TICKS", "BARRIER", "BARRIER_TYPE", "REGION_ENTRY", "REGION_ENTRY_TYPE",
           "REGION_TYPE", "PoolRegion"]

REGION_ENTRY = "polyop_rt_parallel_region"
BARRIER = "polyop_rt_barrier"
#: a region: ``void region(i8* env, i64 member, i64 team)``
REGION_TYPE = ir.FunctionType(VOID, [I8P, I64, I64])
#: ``void polyop_rt_parallel_region(region, env, i64 work)``
REGION_ENTRY_TYPE = ir.FunctionType(VOID, [REGION_TYPE.as_pointer(), I8P, I64])
#: ``void polyop_rt_barrier(i64 member, i64 team)``
BARRIER_TYPE = ir.FunctionType(VOID, [I64, I64])
#: longest wait for workers to accept a region, in time-stamp-counter ticks
#: on x86 (2**21: ~0.6-0.8 ms at 2.5-3.7 GHz; the wait is also at most a
#: quarter of the region's work, so only regions of milliseconds wait that
#: long), in rounds (each with a ``sched_yield``) elsewhere. On a 2-core
#: VM (Zen 4) a sleeping worker sometimes took longer than 2**18 ticks to
#: wake: fdtd-2d's whole-call region then ran on one thread (3.5 ms instead
#: of 2.1), in 2 of 25 calls after idle; none of 100 at 2**21
ACCEPT_TICKS = 1 << 21
ACCEPT_ROUNDS = 1 << 8
#: the first ticks of that wait only ``pause``; later rounds yield the CPU
_ACCEPT_SPIN = 1 << 12
_WAKE_ALL = (1 << 31) - 1


class PoolRegion:
    """Mixin of the pool builder: team regions, the barrier, pool growth."""

    def _region_globals(self) -> None:
        """The region's globals and the worker's side of a region (called
        before the worker is built; ``_grow_fn`` after it)."""
        g = self._global
        self.mode = g("polyop_rt.mode", I32)  # 0: chunks of a loop, 1: a region
        self.region_fn = g("polyop_rt.region_fn", REGION_TYPE.as_pointer())
        self.region_env = g("polyop_rt.region_env", I8P)
        self.team = g("polyop_rt.team", I32)  # 0 until the team is fixed
        self.team_sleepers = g("polyop_rt.team_sleepers", I32)
        self.bar_count = g("polyop_rt.bar_count", I32)
        self.bar_gen = g("polyop_rt.bar_gen", I32)
        self.bar_sleepers = g("polyop_rt.bar_sleepers", I32)
        self.member = self._member_fn()

    # -- pool growth -------------------------------------------------------------

    def _grow_fn(self) -> ir.Function:
        """``i64 grow(i64 k)``: create workers up to ``k - 1`` (each inherits
        a mask with every signal blocked); ``min(k, workers + 1)``."""
        f, b = self._function("polyop_rt.grow", ir.FunctionType(I64, [I64]))
        (k,) = f.args
        blk = {x: f.append_basic_block(x) for x in ("grow", "create", "created", "grown")}
        sigsets = b.alloca(ir.ArrayType(I8, 256), name="sigsets")  # two sigset_t
        sig_all = b.gep(sigsets, [c32(0), c32(0)])
        sig_old = b.gep(sigsets, [c32(0), c32(128)])
        ps0 = self._load(b, self.pool_size, "monotonic")
        entry = b.block
        b.branch(blk["grow"])

        b.position_at_end(blk["grow"])
        ps = b.phi(I32, name="pool")
        ps.add_incoming(ps0, entry)
        need = b.icmp_signed("<", b.add(b.sext(ps, I64), c64(1)), k)
        room = b.icmp_signed("<", ps, c32(MAX_THREADS - 1))
        b.cbranch(b.and_(need, room), blk["create"], blk["grown"])

        b.position_at_end(blk["create"])
        w = b.add(ps, c32(1))
        w64 = b.sext(w, I64)
        self._store(b, c32(0), self._mailbox(b, w64, 0))
        self._store(b, c32(0), self._mailbox(b, w64, 1))
        b.call(self.sigfillset, [sig_all])
        b.call(self.sigmask, [c32(self.sig_block), sig_all, sig_old])
        rc = b.call(self.pthread_create, [self._mailbox(b, w64, 2), ir.Constant(I8P, None),
                                          self.worker, b.inttoptr(w64, I8P)])
        b.call(self.sigmask, [c32(2 if self.sig_block == 0 else 3), sig_old,
                              ir.Constant(I8P, None)])
        b.cbranch(b.icmp_signed("==", rc, c32(0)), blk["created"], blk["grown"])

        b.position_at_end(blk["created"])
        self._store(b, w, self.pool_size, "monotonic")
        ps.add_incoming(w, blk["created"])
        b.branch(blk["grow"])

        b.position_at_end(blk["grown"])  # from grow, or create when it failed: ps workers
        b.ret(self._min(b, b.add(b.sext(ps, I64), c64(1)), k))
        return f

    # -- the worker's side ---------------------------------------------------------

    def _member_fn(self) -> ir.Function:
        """``member(i64 w)``: worker ``w``, having accepted a region, waits for
        the team to be fixed, then runs its member."""
        f, b = self._function("polyop_rt.member", ir.FunctionType(VOID, [I64]))
        (w,) = f.args
        team = self._wait_until_changed(b, self.team, c32(0), self.team_sleepers, "team",
                                        counted=True)
        m = b.sext(self._load(b, self._mailbox(b, w, 4), "monotonic"), I64)
        fn = b.load(self.region_fn)
        env = b.load(self.region_env)
        self._call_body(b, w, fn, env, m, b.sext(team, I64), iters=c64(0))
        b.ret_void()
        return f

    # -- the region entry ----------------------------------------------------------

    def _region(self) -> None:
        f, b = self._function(REGION_ENTRY, REGION_ENTRY_TYPE, internal=False)
        fn, env, work = f.args
        fn.name, env.name, work.name = "region", "env", "work"
        blk = {name: f.append_basic_block(name) for name in (
            "inline", "try", "team", "alone", "launch", "signal", "await", "await.w",
            "await.next", "await.more", "await.pause", "await.yield", "fix", "fix.try",
            "fix.revoked", "fix.member", "fix.next", "fixed", "wake", "run")}
        zero, one = c64(0), c64(1)

        k = self._team_size(b, work)  # min(num_threads, work // min_work)
        b.cbranch(b.icmp_signed("<=", k, one), blk["inline"], blk["try"])

        b.position_at_end(blk["inline"])
        idle = b.icmp_signed("==", self._load(b, self.busy, "monotonic"), c32(0))
        self._call_body(b, zero, fn, env, zero, one, count=idle, iters=zero)
        b.ret_void()

        b.position_at_end(blk["try"])
        res = b.cmpxchg(self.busy, c32(0), c32(1), SEQ, SEQ)
        b.cbranch(b.extract_value(res, 1), blk["team"], blk["inline"])

        b.position_at_end(blk["team"])
        k2 = b.call(self.grow, [k])
        b.cbranch(b.icmp_signed("<=", k2, one), blk["alone"], blk["launch"])

        b.position_at_end(blk["alone"])
        self._call_body(b, zero, fn, env, zero, one, iters=zero)
        self._store(b, c32(0), self.busy)
        b.ret_void()

        # publish the region, then raise go of workers 1 .. k2-1
        b.position_at_end(blk["launch"])
        b.store(fn, self.region_fn)
        b.store(env, self.region_env)
        self._store(b, c32(1), self.mode, "monotonic")
        self._store(b, c32(0), self.team, "monotonic")
        self._store(b, b.trunc(b.sub(k2, one), I32), self.remaining)
        b.atomic_rmw("add", self.regions, one, "monotonic")
        b.branch(blk["signal"])

        b.position_at_end(blk["signal"])
        self._signal(b, k2, blk["await"])

        # wait (bounded) until every signalled worker has accepted: go even
        b.position_at_end(blk["await"])
        limit = self._accept_limit(b, work)
        t0 = b.call(self.cycles, []) if self.cycles is not None else None
        b.branch(blk["await.w"])

        b.position_at_end(blk["await.w"])
        rounds = b.phi(I64, name="rounds")
        rounds.add_incoming(zero, blk["await"])
        aw = b.phi(I64, name="w")
        aw.add_incoming(one, blk["await"])
        aw.add_incoming(one, blk["await.pause"])
        aw.add_incoming(one, blk["await.yield"])
        g = self._load(b, self._mailbox(b, aw, 0), "monotonic")
        odd = b.trunc(g, ir.IntType(1))
        b.cbranch(odd, blk["await.more"], blk["await.next"])
        b.position_at_end(blk["await.next"])
        an = b.add(aw, one)
        aw.add_incoming(an, blk["await.next"])
        rounds.add_incoming(rounds, blk["await.next"])
        b.cbranch(b.icmp_signed("<", an, k2), blk["await.w"], blk["fix"])

        b.position_at_end(blk["await.more"])  # worker aw has not accepted yet
        r1 = b.add(rounds, one)
        spent = b.sub(b.call(self.cycles, []), t0) if t0 is not None else r1
        early = c64(_ACCEPT_SPIN) if t0 is not None else c64(1)
        b.cbranch(b.icmp_unsigned(">=", spent, limit), blk["fix"],
                  blk["await.pause"])
        b.position_at_end(blk["await.pause"])
        self._pause(b)
        rounds.add_incoming(r1, blk["await.pause"])
        rounds.add_incoming(r1, blk["await.yield"])
        b.cbranch(b.icmp_unsigned("<", spent, early), blk["await.w"], blk["await.yield"])
        b.position_at_end(blk["await.yield"])
        b.call(self.sched_yield, [])
        b.branch(blk["await.w"])

        # revoke the region from each worker still odd; number the others
        b.position_at_end(blk["fix"])
        fw = b.phi(I64, name="w")
        nxt = b.phi(I32, name="member")
        fw.add_incoming(one, blk["await.more"])
        fw.add_incoming(one, blk["await.next"])
        nxt.add_incoming(c32(1), blk["await.more"])
        nxt.add_incoming(c32(1), blk["await.next"])
        go = self._mailbox(b, fw, 0)
        g = self._load(b, go, "monotonic")
        b.cbranch(b.trunc(g, ir.IntType(1)), blk["fix.try"], blk["fix.member"])
        b.position_at_end(blk["fix.try"])
        res = b.cmpxchg(go, g, b.sub(g, c32(1)), SEQ, SEQ)
        b.cbranch(b.extract_value(res, 1), blk["fix.revoked"], blk["fix.member"])
        b.position_at_end(blk["fix.revoked"])
        b.atomic_rmw("sub", self.remaining, c32(1), SEQ)
        b.atomic_rmw("add", self.revoked, one, "monotonic")
        b.branch(blk["fix.next"])
        b.position_at_end(blk["fix.member"])
        self._store(b, nxt, self._mailbox(b, fw, 4), "monotonic")
        numbered = b.add(nxt, c32(1))
        b.branch(blk["fix.next"])
        b.position_at_end(blk["fix.next"])
        after = b.phi(I32)
        after.add_incoming(nxt, blk["fix.revoked"])
        after.add_incoming(numbered, blk["fix.member"])
        fn1 = b.add(fw, one)
        fw.add_incoming(fn1, blk["fix.next"])
        nxt.add_incoming(after, blk["fix.next"])
        b.cbranch(b.icmp_signed("<", fn1, k2), blk["fix"], blk["fixed"])

        # the team is fixed: publish its size (and so the members' numbers)
        b.position_at_end(blk["fixed"])
        self._store(b, after, self.bar_count)
        self._store(b, after, self.team)
        sleepers = self._load(b, self.team_sleepers)
        b.cbranch(b.icmp_signed("!=", sleepers, c32(0)), blk["wake"], blk["run"])
        b.position_at_end(blk["wake"])
        b.call(self.futex_wake, [self.team, c32(_WAKE_ALL)])
        b.branch(blk["run"])

        b.position_at_end(blk["run"])
        self._call_body(b, zero, fn, env, zero, b.sext(after, I64), iters=zero)
        self._wait_until_changed(b, self.remaining, c32(0), self.master_sleeping, "join",
                                 until_zero=True)
        self._store(b, c32(0), self.mode, "monotonic")
        self._store(b, c32(0), self.busy)
        b.ret_void()

    def _accept_limit(self, b: ir.IRBuilder, work: ir.Value) -> ir.Value:
        """How long the caller waits for acceptances: ``ACCEPT_TICKS`` (x86)
        or ``ACCEPT_ROUNDS``, at most a quarter of the estimated work at one
        tick (or 2**10 operations a round) an operation."""
        if self.cycles is not None:
            cap, share = ACCEPT_TICKS, b.ashr(work, c64(2))
        else:
            cap, share = ACCEPT_ROUNDS, b.ashr(work, c64(12))
        return self._min(b, share, c64(cap))

    # -- the barrier -----------------------------------------------------------------

    def _barrier(self) -> None:
        f, b = self._function(BARRIER, BARRIER_TYPE, internal=False)
        member, team = f.args
        member.name, team.name = "member", "team"
        blk = {x: f.append_basic_block(x) for x in ("arrive", "last", "wake", "wait", "done")}
        b.cbranch(b.icmp_signed("<=", team, c64(1)), blk["done"], blk["arrive"])

        b.position_at_end(blk["arrive"])
        gen = self._load(b, self.bar_gen)
        old = b.atomic_rmw("sub", self.bar_count, c32(1), SEQ)
        b.cbranch(b.icmp_signed("==", old, c32(1)), blk["last"], blk["wait"])

        b.position_at_end(blk["last"])
        self._store(b, b.trunc(team, I32), self.bar_count)
        self._store(b, b.add(gen, c32(1)), self.bar_gen)
        sleepers = self._load(b, self.bar_sleepers)
        b.cbranch(b.icmp_signed("!=", sleepers, c32(0)), blk["wake"], blk["done"])
        b.position_at_end(blk["wake"])
        b.call(self.futex_wake, [self.bar_gen, c32(_WAKE_ALL)])
        b.branch(blk["done"])

        b.position_at_end(blk["wait"])
        self._wait_until_changed(b, self.bar_gen, gen, self.bar_sleepers, "bar", counted=True)
        b.branch(blk["done"])

        b.position_at_end(blk["done"])
        b.ret_void()
