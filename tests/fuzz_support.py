"""Support for the property-based schedule fuzzer (``tests/test_schedule_fuzz.py``).

A fuzz example takes one kernel (a ``Case``: hand-written kernels below and a
selection of PolyBench kernels at tiny sizes), draws a short random sequence of
schedule primitives on ``polyop.Schedule(kernel)`` and checks polyop's core
guarantee on every step:

- an *accepted* sequence computes what CPython computes, bit for bit, and
  respects every dependence the brute-force oracle (``tests.oracle``) finds at
  the run sizes: each source instance runs strictly before its sink under the
  final schedule, and no parallel/vector loop separates the two instances of a
  dependence on an argument array;
- a *refused* primitive (``ScheduleError``) leaves the schedule as it was; an
  *illegal* one (``IllegalScheduleError``) also names, in every violation, a
  pair of instances that the oracle confirms as a dependence of that kind on
  that array (at the violation's sizes), and which the attempted schedule
  really breaks: replaying the sequence and the primitive with ``check=False``
  runs the sink no later than the source, or, for a parallel/vector loop,
  gives the two instances the same outer schedule but different values of the
  loop.

Primitives are recorded as ``Op`` (statement, positions of loops in
``get_loops(statement)``, arguments) so that a sequence can be replayed on a
fresh schedule and printed as Python code (``Op.code``) for a reproducer.

Run-time evaluation of schedules uses isl only to enumerate the points of the
schedule map at fixed sizes; which pairs must stay ordered comes from the
oracle alone.
"""

# ruff: noqa: F821

from __future__ import annotations

import faulthandler
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import islpy as isl
import numpy as np
from hypothesis import note
from hypothesis import strategies as st

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.kernels import recurrence
from tests.oracle import oracle_dependences
from tests.polybench import BENCHES

# -- hand-written kernels ------------------------------------------------------------------


@polyop.kernel
def seidel1d(tsteps: int, n: int, A: "f64[n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            A[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0


@polyop.kernel
def anti1d(tsteps: int, n: int, A: "f64[n]"):
    # WAR-only dependences inside a time step (A[i + 1] is read before it is written)
    for t in range(tsteps):
        for i in range(n - 1):
            A[i] = A[i] * 0.5 + A[i + 1]


@polyop.kernel
def jacobi2d_copy(tsteps: int, n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.25 * (A[i - 1, j] + A[i + 1, j] + A[i, j - 1] + A[i, j + 1])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = B[i, j]


@polyop.kernel
def seidel2d_5pt(tsteps: int, n: int, A: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = (A[i - 1, j] + A[i, j - 1] + A[i, j] + A[i + 1, j]
                           + A[i, j + 1]) * 0.2


@polyop.kernel
def forward_subst(n: int, L: "f64[n, n]", b: "f64[n]", x: "f64[n]"):
    for i in range(n):
        x[i] = b[i]
        for j in range(i):
            x[i] -= L[i, j] * x[j]
        x[i] = x[i] / L[i, i]


@polyop.kernel
def tri3(n: int, A: "f64[n, n]"):
    for i in range(n):
        for j in range(i):
            for k in range(j):
                A[i, j] += A[i, k] * A[j, k]


@polyop.kernel
def scalar_reduction(n: int, m: int, A: "f64[n, m]", x: "f64[m]", y: "f64[n]",
                     out: "f64[1]"):
    s = 0.0
    for i in range(n):
        t = 0.0
        for j in range(m):
            t += A[i, j] * x[j]
        y[i] = t
        s += t
    out[0] = s


@polyop.kernel
def column_sums(n: int, m: int, A: "f64[n, m]", c: "f64[m]", r: "f64[n]"):
    for i in range(n):
        for j in range(m):
            c[j] += A[i, j]
            r[i] += A[i, j] * c[j]


@polyop.kernel
def temp_chain(n: int, m: int, A: "f64[n, m]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(1, m):
            t = A[i, j - 1] * 0.5
            B[i, j] = t + B[i, j]
            A[i, j] = B[i, j] - t


@polyop.kernel
def imperfect(n: int, m: int, A: "f64[n, m]", B: "f64[m]", C: "f64[n]"):
    assert m >= 1  # A[i, m - 1] needs it
    for i in range(n):
        A[i, 0] = B[0] + C[i]
        for j in range(1, m):
            A[i, j] = A[i, j - 1] * 0.5 + B[j]
        C[i] = A[i, m - 1] + C[i] * 0.25


@polyop.kernel
def strided_band(n: int, A: "f64[n, n]"):
    for i in range(0, n, 2):
        for j in range(max(0, i - 2), min(n, i + 3)):
            if i != j:
                A[i, j] += A[j, i] * 0.5
            else:
                A[i, j] = A[i, j] - 1.0


@polyop.kernel
def int_scan(n: int, m: int, A: "i64[n, m]", C: "i64[n, m]"):
    for i in range(1, n):
        for j in range(1, m):
            C[i, j] = (C[i - 1, j] * 3 + C[i, j - 1] + A[i, j]) % 1009


@polyop.kernel
def gemm_beta(ni: int, nj: int, nk: int, beta: "f64", C: "f64[ni, nj]",
              A: "f64[ni, nk]", B: "f64[nk, nj]"):
    for i in range(ni):
        for j in range(nj):
            C[i, j] *= beta
        for k in range(nk):
            for j in range(nj):
                C[i, j] += A[i, k] * B[k, j]


# guards that isl represents as unions of (overlapping) pieces: ``or``, ``%``,
# ``elif`` (a union of complements), and a strided loop under them


@polyop.kernel
def cross(n: int, A: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            if i == j or i + j == n - 1 or (i < 2 and j > n - 3):
                A[i, j] = A[i, j] + A[j, i] * 0.5


@polyop.kernel
def checker(n: int, m: int, A: "f64[n, m]", B: "f64[n, m]"):
    for i in range(1, n):
        for j in range(m):
            if (i + j) % 2 == 0 or j % 3 == 1:
                A[i, j] = A[i - 1, j] * 0.5 + B[i, j]
            elif i % 3 != 2:
                B[i, j] = A[i, j] + B[i - 1, j]


@polyop.kernel
def strided_or(n: int, A: "f64[n, n]", x: "f64[n]"):
    for i in range(n):
        for j in range(0, n, 2):
            if j < i - 1 or j > i + 2 or (i % 4 == 1 and j % 4 == 0):
                x[i] = x[i] * 0.75 + A[i, j]


@polyop.kernel
def fixed_rows(A: "f64[8, 8]", B: "f64[8, 8]", c: "f64[8]"):
    # constant sizes, every element of A read: a cache of A computed at a loop
    # can be made local to it (set_scope) with constant extents
    for i in range(8):
        for j in range(7):
            B[i, j] = A[i, j] * c[j] + A[i, j + 1] * 0.5
    for j in range(8):
        c[j] = c[j] + B[4, j] * B[j, 3]


@polyop.kernel
def skew_clash(n: int, A: "f64[n, n]", c1: "f64[n]"):
    # not fuzzed: the reproducer of a bug the fuzzer found in deriche (see the tests)
    for i in range(n):
        for j in range(n):
            A[i, j] = A[i, j] + c1[j]


@polyop.kernel
def floyd(n: int, P: "f64[n, n]"):
    # not fuzzed: floyd-warshall, for the reproducer of a bug the fuzzer found
    for k in range(n):
        for i in range(n):
            for j in range(n):
                P[i, j] = min(P[i, j], P[i, k] + P[k, j])


@polyop.kernel
def scale(n: int, A: "f64[n]"):
    # not fuzzed: for the reproducer of a bug the fuzzer found in gesummv
    for i in range(n):
        A[i] = A[i] * 2.0


# -- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A kernel to fuzz: ``sizes`` for the runs, ``make_args(sizes, seed)`` for
    every argument at any sizes, ``examples`` as a share of the budget."""

    name: str
    kernel: polyop.Kernel
    sizes: dict[str, int]
    make_args: Callable[[dict[str, int], int], dict[str, object]]
    examples: int = 6


def _random_args(kernel: polyop.Kernel, scalars: dict[str, float] | None = None):
    """``make_args`` for a hand kernel: uniform [0.5, 1.5) floats, small ints."""
    program = kernel.program

    def make(sizes: dict[str, int], seed: int) -> dict[str, object]:
        rng = np.random.default_rng(seed)
        out: dict[str, object] = {}
        for a in program.arguments:
            if a.kind == "size":
                out[a.name] = int(sizes[a.name])
            elif a.kind == "array":
                shape = tuple(int(eval(e, {"__builtins__": {}}, dict(sizes)))  # noqa: S307
                              for e in program.arrays[a.name].shape)
                if a.dtype.name.startswith("i"):
                    out[a.name] = rng.integers(0, 1000, size=shape).astype(a.dtype.numpy)
                else:
                    out[a.name] = (rng.random(shape) + 0.5).astype(a.dtype.numpy)
            else:
                out[a.name] = (scalars or {}).get(a.name, float(rng.random() + 0.5))
        return out

    return make


def _bench_args(name: str):
    bench = BENCHES[name]

    def make(sizes: dict[str, int], seed: int) -> dict[str, object]:
        with np.errstate(all="ignore"):  # e.g. "% nk" at nk=0 in a violation's sizes
            return bench.init(dict(sizes))

    return make


_HAND = [
    (recurrence, dict(n=6), 10),
    (seidel1d, dict(tsteps=3, n=7), 10),
    (anti1d, dict(tsteps=2, n=6), 8),
    (jacobi2d_copy, dict(tsteps=2, n=5), 10),
    (seidel2d_5pt, dict(tsteps=2, n=5), 10),
    (forward_subst, dict(n=6), 10),
    (tri3, dict(n=6), 10),
    (scalar_reduction, dict(n=4, m=3), 10),
    (column_sums, dict(n=4, m=5), 10),
    (temp_chain, dict(n=4, m=5), 10),
    (imperfect, dict(n=4, m=5), 10),
    (strided_band, dict(n=7), 8),
    (int_scan, dict(n=4, m=5), 8),
    (gemm_beta, dict(ni=3, nj=4, nk=5), 10),
    (cross, dict(n=7), 10),
    (checker, dict(n=5, m=7), 10),
    (strided_or, dict(n=9), 8),
    (fixed_rows, {}, 8),
]

#: PolyBench kernels at tiny sizes (a few per dimension), with example shares
_POLYBENCH = {
    "correlation": (dict(m=4, n=5), 4),
    "covariance": (dict(m=4, n=5), 4),
    "gemm": (dict(ni=3, nj=4, nk=5), 4),
    "gemver": (dict(n=5), 4),
    "gesummv": (dict(n=5), 4),
    "symm": (dict(m=4, n=5), 4),
    "syr2k": (dict(m=4, n=5), 3),
    "syrk": (dict(m=4, n=5), 3),
    "trmm": (dict(m=4, n=5), 4),
    "2mm": (dict(ni=3, nj=4, nk=5, nl=3), 4),
    "3mm": (dict(ni=3, nj=4, nk=3, nl=4, nm=3), 3),
    "atax": (dict(m=4, n=5), 3),
    "bicg": (dict(m=4, n=5), 3),
    "doitgen": (dict(nq=3, nr=4, np=5), 4),
    "mvt": (dict(n=5), 3),
    "cholesky": (dict(n=5), 4),
    "durbin": (dict(n=5), 4),
    "gramschmidt": (dict(m=5, n=4), 4),
    "lu": (dict(n=5), 4),
    "ludcmp": (dict(n=5), 4),
    "trisolv": (dict(n=5), 3),
    "deriche": (dict(w=4, h=5), 2),
    "floyd-warshall": (dict(n=5), 4),
    "nussinov": (dict(n=6), 4),
    "adi": (dict(tsteps=2, n=5), 2),
    "fdtd-2d": (dict(tmax=2, nx=4, ny=5), 4),
    "heat-3d": (dict(tsteps=2, n=5), 3),
    "jacobi-1d": (dict(tsteps=3, n=7), 4),
    "jacobi-2d": (dict(tsteps=2, n=5), 4),
    "seidel-2d": (dict(tsteps=2, n=5), 4),
}

CASES: dict[str, Case] = {}
for _k, _s, _n in _HAND:
    CASES[_k.program.name] = Case(_k.program.name, _k, _s, _random_args(_k), _n)
for _name, (_s, _n) in _POLYBENCH.items():
    CASES[f"pb-{_name}"] = Case(f"pb-{_name}", BENCHES[_name].kernel, _s, _bench_args(_name),
                                _n)


# -- recorded primitives ----------------------------------------------------------------------

PRIMITIVES = ("split", "tile", "reorder", "interchange", "skew", "reverse", "shift",
              "unroll", "vectorize", "parallel", "fuse", "fission", "compute_at",
              "reverse_compute_at", "expand", "rfactor", "inline")


@dataclass(frozen=True)
class Op:
    """One primitive call: ``loops`` are positions in ``get_loops(stmt)``."""

    name: str
    stmt: str
    loops: tuple[int, ...]
    args: tuple = ()
    #: a loop of another statement (sibling fuse, compute_at): (statement, position)
    other: tuple[str, int] | None = None

    def apply(self, sch: polyop.Schedule):
        ls = sch.get_loops(self.stmt)
        handles = [ls[k] for k in self.loops]
        if self.other is not None:
            handles.append(sch.get_loops(self.other[0])[self.other[1]])
        method = getattr(sch, self.name)
        if self.name == "expand":  # expand(array, *loops)
            return method(self.args[0], *handles)
        if self.name in ("shift", "compute_at", "reverse_compute_at", "rfactor", "inline"):
            return method(self.stmt, *handles, *self.args)
        return method(*handles, *self.args)

    def code(self) -> str:
        """The call as Python, with ``L = sch.get_loops(stmt)`` first."""
        hs = [f"L[{k}]" for k in self.loops]
        if self.other is not None:
            hs.append(f"sch.get_loops({self.other[0]!r})[{self.other[1]}]")
        if self.name == "expand":
            call_args = [repr(self.args[0]), *hs]
        elif self.name in ("shift", "compute_at", "reverse_compute_at", "rfactor", "inline"):
            call_args = [repr(self.stmt), *hs, *map(repr, self.args)]
        else:
            call_args = [*hs, *map(repr, self.args)]
        return f"L = sch.get_loops({self.stmt!r}); sch.{self.name}({', '.join(call_args)})"


def draw_op(data, sch: polyop.Schedule, names: tuple[str, ...] = PRIMITIVES) -> Op | None:
    """Draw a primitive (one of ``names``) with arguments over the current
    loops of ``sch`` (``None`` when no statement has a loop)."""
    with_loops = [s for s in sch.stmts if sch.get_loops(s)]
    if not with_loops:
        return None
    stmt = data.draw(st.sampled_from(with_loops), label="stmt")
    n = len(sch.get_loops(stmt))
    name = data.draw(st.sampled_from(names), label="primitive")
    idx = st.integers(0, n - 1)
    if name == "split":
        return Op(name, stmt, (data.draw(idx),), (data.draw(st.integers(1, 5)),))
    if name == "tile":
        if n < 2:
            return None
        a, b = sorted(data.draw(st.lists(idx, min_size=2, max_size=2, unique=True)))
        if data.draw(st.booleans()):  # often adjacent: the usual perfect pair
            b = a + 1
        fa, fb = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        return Op(name, stmt, (a, b), (fa, fb))
    if name == "reorder":
        if n < 2:
            return None
        chosen = data.draw(st.lists(idx, min_size=2, max_size=n, unique=True))
        return Op(name, stmt, tuple(data.draw(st.permutations(sorted(chosen)))))
    if name == "interchange":
        if n < 2:
            return None
        a, b = data.draw(st.lists(idx, min_size=2, max_size=2, unique=True))
        return Op(name, stmt, (a, b))
    if name == "skew":
        if n < 2:
            return None
        a, b = sorted(data.draw(st.lists(idx, min_size=2, max_size=2, unique=True)))
        return Op(name, stmt, (a, b), (data.draw(st.integers(-2, 2)),))
    if name == "shift":
        return Op(name, stmt, (data.draw(idx),), (data.draw(st.integers(-2, 2)),))
    if name == "unroll":
        factor = data.draw(st.sampled_from([None, 2, 3, 4]))
        return Op(name, stmt, (data.draw(idx),), () if factor is None else (factor,))
    others = [s for s in with_loops if s != stmt]
    if name == "fuse":
        if others and data.draw(st.booleans()):  # siblings (often refused: not adjacent)
            o = data.draw(st.sampled_from(others))
            k = data.draw(st.integers(0, len(sch.get_loops(o)) - 1))
            return Op(name, stmt, (data.draw(idx),), (), (o, k))
        if n < 2:
            return None
        a = data.draw(st.integers(0, n - 2))
        return Op(name, stmt, (a, a + 1))  # nested (refused unless the range is constant)
    if name in ("compute_at", "reverse_compute_at"):
        if not others:
            return None
        o = data.draw(st.sampled_from(others))
        k = data.draw(st.integers(0, len(sch.get_loops(o)) - 1))
        return Op(name, stmt, (), (), (o, k))
    if name == "expand":  # a temporary the statement accesses, over one or two of its loops
        program = sch.program
        temps = sorted({a.array for a in (lambda t: t.reads + t.writes)(program.statement(stmt))
                        if a.array in program.arrays and program.arrays[a.array].temporary})
        if not temps:
            return None
        loops = data.draw(st.lists(idx, min_size=1, max_size=min(2, n), unique=True))
        return Op(name, stmt, tuple(loops), (data.draw(st.sampled_from(temps)),))
    if name == "rfactor":  # usually refused: not a reduction, or not around this loop
        return Op(name, stmt, (data.draw(idx),))
    if name == "inline":  # refused unless stmt computes a temporary read elsewhere
        return Op(name, stmt, ())
    if name == "vectorize":  # usually the innermost loop, sometimes not (refused)
        k = n - 1 if data.draw(st.integers(0, 3)) else data.draw(idx)
        return Op(name, stmt, (k,))
    return Op(name, stmt, (data.draw(idx),))  # reverse, parallel


# -- evaluating schedules and violations -----------------------------------------------------

_INSTANCE = re.compile(r"^(\w+)\[(.*)\]$")
_INT = re.compile(r"-?\d+")
_T = isl.schedule_node_type


def parse_instance(text: str) -> tuple[str, tuple[int, ...]]:
    """``"S0[i=2, j=1]"`` → ``("S0", (2, 1))``."""
    m = _INSTANCE.match(text.strip())
    assert m, f"unreadable instance {text!r}"
    body = m.group(2).strip()
    vals = tuple(int(part.split("=")[1]) for part in body.split(",")) if body else ()
    return m.group(1), vals


def parse_sizes(text: str) -> dict[str, int]:
    """``"n=3, m=4"`` → ``{"n": 3, "m": 4}``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, v = part.split("=")
        out[k.strip()] = int(v)
    return out


def schedule_times(tree: isl.Schedule, program, sizes: dict[str, int]
                   ) -> dict[tuple[str, tuple[int, ...]], tuple[int, ...]]:
    """Every statement instance at ``sizes`` → its flattened schedule time vector."""
    smap = tree.get_map().intersect_domain(program.domain)
    smap = smap.intersect_params(_params_at(program, sizes))
    out: dict = {}
    maps: list[isl.Map] = []
    smap.foreach_map(maps.append)
    for m in maps:
        stmt = m.get_tuple_name(isl.dim_type.in_)
        n_in = m.dim(isl.dim_type.in_)
        m = m.project_out(isl.dim_type.param, 0, m.dim(isl.dim_type.param))
        w = m.reset_tuple_id(isl.dim_type.in_).wrap()
        assert w.is_bounded(), f"unbounded schedule of {stmt} at {sizes}"
        pts: list[isl.Point] = []
        w.foreach_point(pts.append)
        for pt in pts:
            c = tuple(map(int, _INT.findall(str(pt))))
            inst = (stmt, c[:n_in])
            assert inst not in out, f"{inst} has two schedule times"
            out[inst] = c[n_in:]
    return out


def _params_at(program, sizes: dict[str, int]) -> isl.Set:
    names = list(program.params)
    cond = " and ".join(f"{p} = {int(sizes[p])}" for p in names)
    return isl.Set(f"[{', '.join(names)}] -> {{ : {cond} }}" if names else "{ : }")


def _instances(uset: isl.UnionSet, params: isl.Set) -> set[tuple[str, tuple[int, ...]]]:
    sets: list[isl.Set] = []
    uset.intersect_params(params).foreach_set(sets.append)
    out = set()
    for x in sets:
        name = x.get_tuple_name()
        x = x.project_out(isl.dim_type.param, 0, x.dim(isl.dim_type.param)).reset_tuple_id()
        pts: list[isl.Point] = []
        x.foreach_point(pts.append)
        out.update((name, tuple(map(int, _INT.findall(str(pt))))) for pt in pts)
    return out


def loop_bands(tree: isl.Schedule, program, sizes: dict[str, int], idents
               ) -> dict[str, tuple[int, int, set]]:
    """Mark id → (flattened schedule dimension of its loop, how many dimensions
    it spans (2 for a loop fused by division), the statement instances at
    ``sizes`` that run under it), for the marks ``idents`` still in
    the tree. The dimension counts, like ``isl_schedule_get_map`` flattens the
    tree, one per band member and one per sequence/set node above the band.
    Per instance, not per statement: a statement can sit under several
    subtrees (e.g. guarded copies after compute_at, ``m > 0`` and ``m <= 0``)."""
    wanted, found = set(idents), {}

    def visit(node: isl.ScheduleNode) -> None:
        if node.get_type() == _T.mark and node.mark_get_id().get_name() in wanted:
            found[node.mark_get_id().get_name()] = node.child(0)
        for k in range(node.n_children()):
            visit(node.child(k))

    visit(tree.get_root())
    params = _params_at(program, sizes)
    out = {}
    for ident, band in found.items():
        dim, node = 0, band
        while node.has_parent():
            node = node.parent()
            t = node.get_type()
            if t == _T.band:
                dim += node.band_n_member()
            elif t in (_T.sequence, _T.set):
                dim += 1
        out[ident] = (dim, band.band_n_member(), _instances(band.get_domain(), params))
    return out


# -- oracle, cached per (kernel, sizes) ------------------------------------------------------

_ORACLE: dict[tuple[str, tuple], dict] = {}


def oracle_at(case: Case, sizes: dict[str, int]) -> dict:
    key = (case.name, tuple(sorted(sizes.items())))
    if key not in _ORACLE:
        _ORACLE[key] = oracle_dependences(case.kernel, case.make_args(sizes, 0))
    return _ORACLE[key]


def full_sizes(case: Case, partial: dict[str, int]) -> dict[str, int]:
    """Every size parameter: ``partial`` where given, else the case's run size."""
    return {p: partial.get(p, case.sizes[p]) for p in case.kernel.program.params}


# -- the checks --------------------------------------------------------------------------------


def _state(sch: polyop.Schedule):
    return sch.tree, str(sch), sch.loop_info(), {s: sch.get_loops(s) for s in sch.stmts}


def check_unchanged(sch: polyop.Schedule, before, what: str) -> None:
    tree, text, info, loops = before
    assert sch.tree is tree, f"{what}: the schedule tree changed after a refusal"
    assert str(sch) == text, f"{what}: the trace changed after a refusal:\n{sch}"
    now = sch.loop_info()
    for ident, v in info.items():
        assert now.get(ident) == v, f"{what}: loop {ident} changed from {v} to {now.get(ident)}"
    assert {s: sch.get_loops(s) for s in sch.stmts} == loops, f"{what}: loops changed"


def check_violation(case: Case, accepted: list[Op], op: Op, v) -> None:
    """One violation of a refused primitive: oracle-confirmed, and really broken
    by the attempted schedule (replayed with ``check=False``)."""
    assert v.kind in ("RAW", "WAR", "WAW"), v
    if rewritten([*accepted, op]):
        return  # statements and arrays the oracle of the kernel as written has not
    src, dst = parse_instance(v.source), parse_instance(v.sink)
    sizes = full_sizes(case, parse_sizes(v.sizes))
    assert all(x >= 0 for x in sizes.values()), f"negative size in violation {v}"
    table = oracle_at(case, sizes)
    # an expanded temporary X_x (by an accepted expand, or by the refused one
    # itself): its pairs are among the oracle's on X (which also has those of
    # different iterations of the loops it was expanded over)
    array = next((o.args[0] for o in (*accepted, op) if o.name == "expand"
                  and v.array.startswith(f"{o.args[0]}_x")), v.array)
    pairs = table.get((v.kind, array), set())
    assert (src, dst) in pairs, (
        f"{op.code()}: violation {v.kind} on {v.array} {v.source} -> {v.sink} at {sizes} "
        f"is not a dependence the oracle finds ({len(pairs)} oracle pairs of that kind)")

    replay = polyop.Schedule(case.kernel, check=False)
    for done in accepted:
        done.apply(replay)
    op.apply(replay)
    assert replay.check(), f"{op.code()}: replay with check=False reports no violation"
    times = schedule_times(replay.tree, case.kernel.program, sizes)
    ts, td = times[src], times[dst]
    info = replay.loop_info()
    cands = [ident for ident, (name, kind) in info.items()
             if name == v.loop and kind in ("parallel", "vector")]
    if v.escapes:  # a privatised temporary read after the parallel loop
        # by loop, not by name: after fission both nests have a loop of that name
        bands = loop_bands(replay.tree, case.kernel.program, sizes, cands).values()
        assert any(src in under and dst not in under for _, _, under in bands), (
            f"{op.code()}: escaping temporary {v}: the sink runs under the source's "
            f"parallel loop {v.loop}")
        return
    if not v.carried:
        assert td <= ts, (f"{op.code()}: violation {v} is not reversed by the schedule: "
                          f"source at {ts}, sink at {td}")
        return
    ok = [src in under and dst in under and ts[:d] == td[:d] and ts[d:d + w] != td[d:d + w]
          for d, w, under in loop_bands(replay.tree, case.kernel.program, sizes,
                                     cands).values()]
    assert any(ok), (f"{op.code()}: carried violation {v} is not carried by a "
                     f"parallel/vector loop {v.loop}: source at {ts}, sink at {td}")


def rewritten(accepted: list[Op]) -> bool:
    """Whether an accepted primitive rewrote statements (``rfactor``: the
    reduction writes a new array, new statements combine it; ``inline``: a
    statement is gone, its expression evaluated by its consumers), so that
    the oracle of the kernel as written no longer applies: the schedule's own
    check and the run against CPython (to rounding: sums are re-associated,
    products may be contracted differently) still do."""
    return any(o.name in ("rfactor", "inline") for o in accepted)


def check_accepted_order(case: Case, sch: polyop.Schedule) -> None:
    """Every oracle dependence at the run sizes stays ordered under ``sch``, and
    none on an argument array is carried by a parallel/vector loop."""
    program = case.kernel.program
    table = oracle_at(case, case.sizes)
    times = schedule_times(sch.tree, program, case.sizes)
    par = loop_bands(sch.tree, program, case.sizes,
                     [ident for ident, (_, kind) in sch.loop_info().items()
                      if kind in ("parallel", "vector")])
    uses = {s.name: {a.array for a in (*s.reads, *s.writes)} for s in sch.program.statements}
    for (kind, array), pairs in table.items():
        if array not in sch.program.arrays and array in program.arrays:
            continue  # expanded: run_and_compare checks the values it carries
        temporary = program.arrays[array].temporary if array in program.arrays else False
        for src, dst in pairs:
            if array not in uses.get(src[0], ()) or array not in uses.get(dst[0], ()):
                continue  # an access redirected (expanded in one nest): the values are checked
            ts, td = times[src], times[dst]
            assert ts < td, (f"accepted schedule runs {kind} on {array} "
                             f"{src} -> {dst} out of order: {ts} vs {td}\n{sch}")
            if temporary or not par:
                continue
            for ident, (d, w, under) in par.items():
                if src in under and dst in under and ts[:d] == td[:d]:
                    assert ts[d:d + w] == td[d:d + w], (
                        f"accepted parallel/vector loop {ident} carries {kind} on {array} "
                        f"{src} -> {dst}: {ts} vs {td}\n{sch}")


def run_and_compare(case: Case, sch: polyop.Schedule, seed: int, exact: bool = True) -> None:
    f = polyop.build(sch)
    args = case.make_args(case.sizes, seed)
    mine = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    ref = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    f(**mine)
    with np.errstate(all="ignore"):
        case.kernel.py_func(**ref)
    for k, v in mine.items():
        if isinstance(v, np.ndarray) and (exact or v.dtype.kind != "f"):
            np.testing.assert_array_equal(
                v, ref[k], err_msg=f"{case.name}: output {k} differs under\n{sch}")
        elif isinstance(v, np.ndarray):
            np.testing.assert_allclose(
                v, ref[k], rtol=1e-9, atol=1e-12,
                err_msg=f"{case.name}: output {k} differs under\n{sch}")


@dataclass
class Stats:
    """Counts over a test session (printed by the fuzz tests)."""

    examples: int = 0
    accepted: int = 0
    illegal: int = 0
    refused: int = 0
    builds: int = 0
    violations_checked: int = 0
    by_primitive: dict = field(default_factory=dict)


STATS = Stats()


def draw_sizes(data, case: Case) -> dict[str, int]:
    """The case's run sizes, or (one time in three) each moved by -2..+1, at least 1."""
    if data.draw(st.integers(0, 2), label="vary sizes"):
        return dict(case.sizes)
    return {p: data.draw(st.integers(max(1, v - 2), v + 1), label=p)
            for p, v in case.sizes.items()}


#: seconds one example may take (they take 0.1-3 s): past it the test process
#: ends with every thread's traceback, so a hang fails the run instead of
#: stalling it (isl's C code holds the GIL: only faulthandler's watchdog runs)
EXAMPLE_SECONDS = 120


def fuzz_example(case: Case, data, max_ops: int = 4, first: str | None = None) -> None:
    """One hypothesis example: draw up to ``max_ops`` primitives (the first
    one ``first`` when given), check each, in at most ``EXAMPLE_SECONDS``."""
    faulthandler.dump_traceback_later(EXAMPLE_SECONDS, exit=True)
    try:
        _fuzz_example(case, data, max_ops, first)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _fuzz_example(case: Case, data, max_ops: int, first: str | None = None) -> None:
    STATS.examples += 1
    case = replace(case, sizes=draw_sizes(data, case))
    sch = polyop.Schedule(case.kernel)
    n_ops = data.draw(st.integers(1, max_ops), label="n_ops")
    accepted: list[Op] = []
    note(f"sch = polyop.Schedule({case.name})  # run sizes {case.sizes}")
    for k in range(n_ops):
        op = draw_op(data, sch, (first,) if first and not k else PRIMITIVES)
        if op is None:
            continue
        before = _state(sch)
        try:
            op.apply(sch)
        except IllegalScheduleError as e:
            note(f"{op.code()}  # illegal: {e}")
            STATS.illegal += 1
            check_unchanged(sch, before, op.code())
            assert e.violations and e.violations[0].kind == e.kind
            assert (e.array, e.source, e.sink) == (e.violations[0].array,
                                                   e.violations[0].source,
                                                   e.violations[0].sink)
            for v in e.violations:
                STATS.violations_checked += 1
                check_violation(case, accepted, op, v)
            continue
        except ScheduleError as e:
            note(f"{op.code()}  # refused: {e}")
            STATS.refused += 1
            check_unchanged(sch, before, op.code())
            continue
        note(op.code())
        STATS.accepted += 1
        STATS.by_primitive[op.name] = STATS.by_primitive.get(op.name, 0) + 1
        accepted.append(op)
    if not accepted:
        return
    assert sch.check() == [], f"accepted schedule reports violations:\n{sch}"
    if not rewritten(accepted):
        check_accepted_order(case, sch)
    STATS.builds += 1
    run_and_compare(case, sch, data.draw(st.integers(0, 2**16), label="seed"),
                    exact=not rewritten(accepted))


def replay(case_or_kernel, ops: list[Op], check: bool = True) -> polyop.Schedule:
    """A schedule with ``ops`` applied in order (for reproducers)."""
    kernel = getattr(case_or_kernel, "kernel", case_or_kernel)
    sch = polyop.Schedule(kernel, check=check)
    for op in ops:
        op.apply(sch)
    return sch


__all__ = ["CASES", "Case", "Op", "STATS", "check_violation", "draw_op", "fuzz_example",
           "loop_bands", "floyd", "parse_instance", "parse_sizes", "replay", "rewritten",
           "scale", "schedule_times", "skew_clash", "strided_band"]
