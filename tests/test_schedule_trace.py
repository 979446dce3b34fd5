"""The schedule as an immutable state with a replayable trace: ``trace``,
``Schedule.replay``, JSON, ``fork``, ``undo``, and refusals that leave the
state object untouched.

A replayed schedule must give the same isl tree (``is_equal`` of the
schedule maps and ``plain_is_equal`` of the trees), the same loop records and
text, the same generated code, and the same results as CPython running the
kernel.
"""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyop
from polyop.errors import IllegalScheduleError, ScheduleError
from polyop.schedule.trace import (
    Instruction,
    Layout,
    LoopRef,
    trace_from_json,
    trace_to_json,
)
from tests.kernels import compare, matmul_ikj


@polyop.kernel
def pc(n: int, A: "f64[n]", T: "f64[n]", B: "f64[n]"):
    for i in range(n):
        T[i] = A[i] * 2.0
    for i in range(n):
        B[i] = T[i] + 1.0


@polyop.kernel
def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
    s = 0.0
    for k in range(n):
        s += x[k] * y[k]
    out[0] = s


@polyop.kernel
def stencil(n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n):
            B[i, j] = A[i - 1, j] + A[i, j - 1]


@polyop.kernel
def tmp(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        t = A[i] * 2.0
        B[i] = t + 1.0


@polyop.kernel
def mv(n: int, A: "f64[n, n]", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] = 0.0
        for j in range(n):
            y[i] += A[i, j] * x[j]


@polyop.kernel
def axpy8(a: "f64", x: "f64[8]", y: "f64[8]"):
    for i in range(8):
        y[i] += a * x[i]


@polyop.kernel
def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] += a * x[i]


AXPY8_C = r"""
void axpy8_c(double a, const double *x, double *y) {
    for (int i = 0; i < 8; i++) y[i] += a * x[i];
}
"""


def mm_args(n=13):
    rng = np.random.default_rng(0)
    return dict(ni=n, nj=n - 2, nk=n + 3, C=rng.random((n, n - 2)), A=rng.random((n, n + 3)),
                B=rng.random((n + 3, n - 2)))


def vec_args(n=21):
    rng = np.random.default_rng(1)
    return dict(n=n, A=rng.random(n), T=np.zeros(n), B=np.zeros(n))


# -- one scenario per primitive: (kernel, args, build the schedule) -----------------------------

def _split_tile(sch):
    i, k, j = sch.get_loops("S0")
    io, ii = sch.split(i, 4)
    sch.tile(k, j, 4, 8)


def _reorder_interchange(sch):
    i, k, j = sch.get_loops("S0")
    sch.reorder(j, k)
    sch.interchange(i, j)


def _kinds(sch):
    i, k, j = sch.get_loops("S0")
    sch.parallel(i)
    jo, ji = sch.split(j, 4)
    sch.vectorize(ji)
    sch.unroll(k, 2)


def _atomic(sch):
    i, k, j = sch.get_loops("S0")
    sch.parallel(k, reduction="atomic")


def _skew_reverse(sch):
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 1)
    sch.reverse(i)


def _fuse_nested(sch):
    i, k, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 4)
    sch.fuse(jo, ji)  # a constant extent: linearized
    sch.fuse(i, k)  # a symbolic extent: coalesced


def _fuse_fission(sch):
    (i,) = sch.get_loops("S0")
    (j,) = sch.get_loops("S1")
    fused = sch.fuse(i, j)
    sch.fission(fused)


def _compute_at(sch):
    io, ii = sch.split(sch.get_loops("S1")[0], 4)
    sch.compute_at("S0", io)


def _reverse_compute_at(sch):
    io, ii = sch.split(sch.get_loops("S0")[0], 4)
    sch.reverse_compute_at("S1", io)
    sch.shift("S0", sch.get_loops("S1")[0], 0)


def _inline(sch):
    sch.inline("S0")


def _cache_read(sch):
    sch.cache_read("B", layout=lambda k, j: (j // 4, k, j % 4), pad=0.0, name="P")
    i, k, j = sch.get_loops("S0")
    sch.compute_at("P", i)


def _cache_write(sch):
    sch.cache_write("y")
    io, ii = sch.split(sch.get_loops("S0")[0], 4)
    sch.reverse_compute_at("y_cache_back", io)


def _rfactor(sch):
    ko, ki = sch.split(sch.get_loops("S1")[0], 8)
    sch.rfactor("S1", ko)
    sch.parallel(ko)


SCENARIOS = {
    "split+tile": (matmul_ikj, mm_args, _split_tile),
    "reorder+interchange": (matmul_ikj, mm_args, _reorder_interchange),
    "parallel+vectorize+unroll": (matmul_ikj, mm_args, _kinds),
    "parallel atomic": (matmul_ikj, mm_args, _atomic),
    "skew+reverse": (stencil, lambda: dict(n=9, A=np.random.rand(9, 9), B=np.zeros((9, 9))),
                     _skew_reverse),
    "fuse nested+coalesce": (matmul_ikj, mm_args, _fuse_nested),
    "fuse siblings+fission": (pc, vec_args, _fuse_fission),
    "compute_at": (pc, vec_args, _compute_at),
    "reverse_compute_at+shift": (pc, vec_args, _reverse_compute_at),
    "inline": (tmp, lambda: dict(n=7, A=np.random.rand(7), B=np.zeros(7)), _inline),
    "cache_read+compute_at": (matmul_ikj, mm_args, _cache_read),
    "cache_write+reverse_compute_at": (mv, lambda: dict(n=10, A=np.random.rand(10, 10),
                                                        x=np.random.rand(10), y=np.zeros(10)),
                                       _cache_write),
    "rfactor": (dot, lambda: dict(n=37, x=np.random.rand(37), y=np.random.rand(37),
                                  out=np.zeros(1)), _rfactor),
}


def assert_same(a: polyop.Schedule, b: polyop.Schedule) -> None:
    """Two schedules are the same: tree, loops, text, program, generated code."""
    assert a.tree.plain_is_equal(b.tree)
    assert a.tree.get_map().is_equal(b.tree.get_map())
    assert a.tree.get_domain().is_equal(b.tree.get_domain())
    assert dict(a.state.loops) == dict(b.state.loops)
    assert dict(a.state.gone) == dict(b.state.gone)
    assert a.trace == b.trace
    assert str(a) == str(b)
    assert_same_program(a.program, b.program)
    assert polyop.lower(a) == polyop.lower(b)


def assert_same_program(p, q) -> None:
    """The same statements, domains and accesses (isl equality: isl may print
    one set in two ways), arrays and arguments."""
    assert p.arrays == q.arrays and p.arguments == q.arguments
    assert [s.name for s in p.statements] == [s.name for s in q.statements]
    for s, t in zip(p.statements, q.statements):
        assert s.domain.is_equal(t.domain) and s.body == t.body
        for x, y in zip(s.reads + s.writes, t.reads + t.writes, strict=True):
            assert x.array == y.array and x.relation.is_equal(y.relation)


@pytest.mark.parametrize("name", SCENARIOS)
def test_replay_reproduces_every_primitive(name):
    kernel, args, build = SCENARIOS[name]
    sch = polyop.Schedule(kernel)
    build(sch)
    assert sch.trace and all(isinstance(ins, Instruction) for ins in sch.trace)
    again = polyop.Schedule.replay(sch.trace, kernel)
    assert_same(sch, again)
    from_text = polyop.Schedule.from_json(sch.trace_json(), kernel)
    assert_same(sch, from_text)
    compare(polyop.build(from_text), kernel, args(), exact=name not in ("rfactor",
                                                                         "parallel atomic"))


def test_set_scope_and_tensors_replay():
    A = polyop.placeholder((64,), "float64", name="A")
    T = polyop.compute((64,), lambda i: A[i] * 2.0, name="T")
    R = polyop.compute((64,), lambda i: T[i] + 1.0, name="R")
    sch = polyop.create_schedule(R)
    io, ii = sch.split(sch.get_loops(R)[0], 4)
    sch.compute_at(T, io)
    sch.set_scope(T, "local", io)
    assert [ins.primitive for ins in sch.trace] == ["split", "compute_at", "set_scope"]
    again = polyop.Schedule.from_json(sch.trace_json(), R)
    assert str(again).splitlines()[1:] == str(sch).splitlines()[1:]
    assert again.tree.plain_is_equal(sch.tree)
    assert polyop.lower(again, [A, R]) == polyop.lower(sch, [A, R])
    a = np.random.rand(64)
    out = np.zeros(64)
    polyop.build(again, [A, R])(a, out)
    assert np.array_equal(out, a * 2.0 + 1.0)


def test_tensorize_replays_with_the_intrinsic_by_name():
    ax = polyop.intrinsic(axpy8, c_source=AXPY8_C, symbol="axpy8_c", name="axpy8_c")
    sch = polyop.Schedule(axpy)
    io, ii = sch.split(sch.get_loops("S0")[0], 8)
    sch.tensorize(ii, ax)
    text = sch.trace_json()
    with pytest.raises(ScheduleError, match="intrinsic 'axpy8_c' is not given"):
        trace_from_json(text)
    again = polyop.Schedule.from_json(text, axpy, intrinsics={"axpy8_c": ax})
    assert_same(sch, again)
    x, y = np.random.rand(21), np.random.rand(21)
    compare(polyop.build(again), axpy, dict(n=21, a=0.5, x=x, y=y))


# -- the trace and its JSON --------------------------------------------------------------------

def test_instructions_record_handles_values_and_outputs():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    io, ii = sch.split(i, np.int64(4))  # a numpy integer is recorded as an int
    sch.cache_read("B", layout=lambda a, b: (b // 4, a, b % 4), name="P")
    split, cache = sch.trace
    assert split == Instruction("split", (LoopRef(i.id), 4), (), (io.id, ii.id),
                                ("split(i, 4)",))
    assert type(split.args[1]) is int
    assert cache.primitive == "cache_read" and cache.args == ("B",)
    assert dict(cache.kwargs) == {"layout": Layout("lambda i0, i1: ((i1 // 4), i0, (i1 % 4), )"),
                                  "name": "P"}
    assert cache.outputs == tuple(lp.id for lp in sch.get_loops("P"))
    assert cache.labels == ("cache_read(B) -> P",)


def test_json_round_trip_is_exact_and_versioned():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    sch.cache_read("B", layout=lambda a, b: (b // 4, a, b % 4), pad=0.5, name="P")
    sch.parallel(i, reduction="atomic")
    sch.unroll(j, 2)
    text = sch.trace_json()
    data = json.loads(text)
    assert data["version"] == 1
    assert [d["primitive"] for d in data["instructions"]] == ["cache_read", "parallel",
                                                               "unroll"]
    back = trace_from_json(text)
    assert back == sch.trace
    assert trace_to_json(back) == text
    assert type(dict(back[0].kwargs)["pad"]) is float
    for ins in sch.trace:  # one instruction at a time, as a tuning log stores them
        assert Instruction.from_json(json.loads(json.dumps(ins.to_json()))) == ins


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected an object"),
    ('{"version": 99, "instructions": []}', "version 99 is not supported"),
    ('{"version": 1, "instructions": {}}', "must be a list"),
    ('{"version": 1, "instructions": [{"primitive": "explode"}]}',
     "unknown primitive 'explode'"),
    ('{"version": 1, "instructions": [{"args": []}]}', "expected an object with 'primitive'"),
    ('{"version": 1, "instructions": [3]}', "expected an object with 'primitive'"),
    ('{"version": 1, "instructions": [{"primitive": "split", "outputs": "L1"}]}',
     "malformed"),
    ('{"version": 1, "instructions": [{"primitive": "split", "args": [{"bad": 1}]}]}',
     "cannot read argument"),
    ('{"version": 1, "instructions": [{"primitive": "cache_read", "args": ["B"], '
     '"kwargs": {"layout": {"layout": "__import__(\'os\')"}}}]}', "not a lambda"),
    ('{"version": 1, "instructions": [{"primitive": "cache_read", "args": ["B"], '
     '"kwargs": {"layout": {"layout": "lambda i: (i.real, )"}}}]}', "not index arithmetic"),
])
def test_bad_json_is_a_schedule_error(text, match):
    with pytest.raises(ScheduleError, match=match):
        trace_from_json(text)
        polyop.Schedule.from_json(text, matmul_ikj)  # the layout is only run here


def test_replay_of_a_trace_that_does_not_fit():
    sch = polyop.Schedule(matmul_ikj)
    sch.split(sch.get_loops("S0")[0], 4)
    with pytest.raises(ScheduleError, match="L7 is not a loop of this schedule"):
        bad = [Instruction("split", (LoopRef("L7"), 4), (), ("L8", "L9"))]
        polyop.Schedule.replay(bad, matmul_ikj)
    with pytest.raises(ScheduleError, match="not a primitive"):
        polyop.Schedule.replay([Instruction("get_loops", ("S0",))], matmul_ikj)
    illegal = [Instruction("parallel", (LoopRef(sch.get_loops("S0")[2].id),))]
    with pytest.raises(IllegalScheduleError):  # the k loop carries the reduction
        polyop.Schedule.replay(illegal, matmul_ikj)


# -- fork, undo, refusals ---------------------------------------------------------------------

def test_fork_is_independent():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    sch.split(i, 4)
    before, text = sch.state, str(sch)
    other = sch.fork()
    assert other.state is sch.state  # shared, not copied
    other.parallel(sch.get_loops("S0")[0])  # a handle of the original, accepted
    other.cache_read("A")
    other.undo()
    other.tile(k, j, 2, 2)
    assert sch.state is before and str(sch) == text
    assert [ins.primitive for ins in other.trace] == ["split", "parallel", "tile"]
    sch.reorder(j, k)  # the original goes its own way; the fork is unchanged
    assert [ins.primitive for ins in other.trace] == ["split", "parallel", "tile"]
    lo = other.get_loops("S0")[-1]
    with pytest.raises(ScheduleError, match="not a loop of this schedule"):
        sch.vectorize(lo)
    compare(polyop.build(other), matmul_ikj, mm_args())


def test_undo_restores_exactly():
    sch = polyop.Schedule(dot)
    states = [sch.state]
    ko, ki = sch.split(sch.get_loops("S1")[0], 8)
    states.append(sch.state)
    program = sch.program
    sch.rfactor("S1", ko)
    assert sch.program is not program and "s_rf" in sch.program.arrays
    states.append(sch.state)
    sch.cache_read("x")
    sch.parallel(ko)
    sch.undo(2)
    assert sch.state is states[2]
    sch.undo()
    assert sch.state is states[1] and sch.program is program
    assert [ins.primitive for ins in sch.trace] == ["split"]
    assert str(sch) == "schedule of dot:\n  split(k, 8)"
    sch.undo()
    assert sch.state is states[0] and str(sch).endswith("(original order)")
    with pytest.raises(ScheduleError, match="undo\\(1\\): there are 0"):
        sch.undo()
    ko, ki = sch.split(sch.get_loops("S1")[0], 8)  # the same ids again: deterministic
    assert sch.trace == [states[1].trace[0]]


@pytest.mark.parametrize("attempt", [
    lambda s, lp: s.parallel(lp[2]),  # illegal: k carries the reduction
    lambda s, lp: s.split(lp[0], -1),
    lambda s, lp: s.tile(lp[0], lp[0], 2, 2),  # the second split of i: a stale handle
    lambda s, lp: s.unroll(lp[0]),  # no constant trip count
    lambda s, lp: s.cache_read("B", layout=lambda a, b: (a // 2, b)),  # not injective
    lambda s, lp: s.rfactor("S0", lp[0]),  # i is not a reduction loop of S0
    lambda s, lp: s.compute_at("S0", lp[1]),
    lambda s, lp: s.vectorize(lp[0]),
])
def test_a_refused_primitive_leaves_the_state_object(attempt):
    sch = polyop.Schedule(matmul_ikj)
    lp = sch.get_loops("S0")
    sch.split(lp[1], 4)
    lp = sch.get_loops("S0")
    before, history = sch.state, list(sch._history)
    with pytest.raises(ScheduleError):
        attempt(sch, [lp[0], lp[2], lp[1]])
    assert sch.state is before and sch._history == history


def test_state_is_immutable():
    sch = polyop.Schedule(matmul_ikj)
    state = sch.state
    info = state.loops["L0"]
    with pytest.raises(AttributeError):
        state.tree = None
    with pytest.raises(TypeError):
        state.loops["L0"] = info
    with pytest.raises(AttributeError):
        info.kind = polyop.kinds.LoopKind.PARALLEL
    sch.parallel(sch.get_loops("S0")[0])
    assert state.loops["L0"].kind == polyop.kinds.LoopKind.SERIAL  # the old state as it was


# -- random primitive sequences: replay equals the schedule --------------------------------------

_OPS = ["split", "tile", "reorder", "parallel", "vectorize", "unroll", "reverse", "fuse",
        "fission", "compute_at", "cache_read", "undo"]


def _apply(sch: polyop.Schedule, op: str, pick: int, factor: int) -> None:
    stmts = sch.stmts
    loops = sch.get_loops(stmts[pick % len(stmts)])
    if not loops:
        return
    a, b = loops[pick % len(loops)], loops[(pick + 1) % len(loops)]
    calls = {
        "split": lambda: sch.split(a, factor),
        "tile": lambda: sch.tile(a, b, factor, 2),
        "reorder": lambda: sch.reorder(b, a),
        "parallel": lambda: sch.parallel(a),
        "vectorize": lambda: sch.vectorize(a),
        "unroll": lambda: sch.unroll(a, factor),
        "reverse": lambda: sch.reverse(a),
        "fuse": lambda: sch.fuse(a, b),
        "fission": lambda: sch.fission(a),
        "compute_at": lambda: sch.compute_at(stmts[0], b),
        "cache_read": lambda: sch.cache_read("A", layout=lambda x: (x // factor, x % factor)),
        "undo": lambda: sch.undo(min(1, len(sch.trace))),
    }
    try:
        calls[op]()
    except ScheduleError:
        pass


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 5), st.integers(2, 5)),
                max_size=6))
def test_random_sequences_replay_to_the_same_schedule(steps):
    sch = polyop.Schedule(pc)
    for op, pick, factor in steps:
        _apply(sch, op, pick, factor)
    again = polyop.Schedule.from_json(sch.trace_json(), pc)
    assert_same(sch, again)
