"""GPU kernels (``polyop_cuda``): every case runs on OpenCL (PoCL's CPU device in
CI) against its CPython or numpy reference, and its CUDA C (host side
included) is compiled by nvcc to cubins for sm_80 and sm_90.

Cases: a naive GEMM on a 2-D grid of 2-D blocks, a 2-D Jacobi stencil (time
loop on the host), a reduction into a private scalar over a bound row loop,
fused elementwise ops (f32 math, integer ``//`` and ``%`` with zero and -1
divisors, ``min``/``max``, casts), and PolyBench kernels with their
outermost parallel loops split by 16 and bound (``bind_outer``), at sizes
that are not multiples of 16. All CUDA sources are compiled in one nvcc run
per architecture (``polyop_cuda.nvcc.compile_many``, cached on disk).
"""

import copy
import dataclasses
import math

import numpy as np
import pytest

import polyop
from polyop.errors import ScheduleError
from polyop.target import as_target
from polyop_cuda import nvcc
from tests.polybench import BENCHES

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # CPython's x // 0


@polyop.kernel
def matmul(ni: int, nj: int, nk: int, A: "f32[ni, nk]", B: "f32[nk, nj]", C: "f32[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            C[i, j] = 0.0
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def jacobi(tsteps: int, n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, j + 1] + A[i + 1, j] + A[i - 1, j])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = 0.2 * (B[i, j] + B[i, j - 1] + B[i, j + 1] + B[i + 1, j] + B[i - 1, j])


@polyop.kernel
def rownorm(n: int, m: int, A: "f64[n, m]", out: "f64[n]"):
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += A[i, j] * A[i, j]
        out[i] = math.sqrt(s)


@polyop.kernel
def fused(n: int, m: int, x: "f32[n, m]", y: "f32[n, m]", a: "i64[n, m]", b: "i64[n, m]",
          out: "f32[n, m]", q: "i64[n, m]", r: "i64[n, m]", c: "i32[n, m]"):
    for i in range(n):
        for j in range(m):
            t = x[i, j] * 2.0 - y[i, j]
            out[i, j] = max(t, 0.5) + np.sqrt(abs(y[i, j])) + min(x[i, j], y[i, j]) / 3.0
            q[i, j] = a[i, j] // b[i, j]
            r[i, j] = a[i, j] % b[i, j] + (i * m + j) % 7 - j // 3
            c[i, j] = int(x[i, j] * 10.0) + 1


def _matmul():
    sch = polyop.Schedule(matmul)
    i, j, _ = sch.get_loops("S1")
    io, ii = sch.split(i, 8)
    jo, ji = sch.split(j, 8)
    sch.reorder(io, jo, ii, ji)
    for loop, axis in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                       (ji, "threadIdx.x")):
        sch.bind(loop, axis)
    rng = np.random.default_rng(0)
    ni, nj, nk = 37, 45, 29
    args = dict(ni=ni, nj=nj, nk=nk, A=rng.random((ni, nk), "f4"), B=rng.random((nk, nj), "f4"),
                C=np.zeros((ni, nj), "f4"))
    return sch, args, lambda a: {"C": a["A"].astype("f8") @ a["B"].astype("f8")}, 1e-5


def _jacobi():
    sch = polyop.Schedule(jacobi)
    for stmt in ("S0", "S1"):
        _, i, j = sch.get_loops(stmt)
        io, ii = sch.split(i, 4)
        jo, ji = sch.split(j, 8)
        sch.reorder(io, jo, ii, ji)
        for loop, axis in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                           (ji, "threadIdx.x")):
            sch.bind(loop, axis)
    n = 23
    rng = np.random.default_rng(1)
    args = dict(tsteps=5, n=n, A=rng.random((n, n)), B=np.zeros((n, n)))
    return sch, args, jacobi, 0.0


def _rownorm():
    sch = polyop.Schedule(rownorm)
    io, ii = sch.split(sch.get_loops("S2")[0], 16)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    rng = np.random.default_rng(2)
    args = dict(n=50, m=33, A=rng.random((50, 33)), out=np.zeros(50))
    return sch, args, rownorm, 0.0


def _fused():
    sch = polyop.Schedule(fused)
    i, j = sch.get_loops("S1")
    sch.bind(i, "blockIdx.x")
    sch.bind(j, "threadIdx.x")
    rng = np.random.default_rng(3)
    n, m = 9, 21
    args = dict(n=n, m=m, x=rng.standard_normal((n, m)).astype("f4"),
                y=rng.standard_normal((n, m)).astype("f4"),
                a=rng.integers(-50, 50, (n, m)), b=rng.integers(-3, 4, (n, m)),
                out=np.zeros((n, m), "f4"), q=np.zeros((n, m), "i8"),
                r=np.zeros((n, m), "i8"), c=np.zeros((n, m), "i4"))
    args["a"][0, :3] = np.iinfo(np.int64).min
    args["b"][0, :3] = (-1, 0, 7)
    return sch, args, fused, 2e-6


def bind_outer(sch: polyop.Schedule, factor: int = 16) -> int:
    """Split the outermost loop of each statement that can be bound by
    ``factor``, bind the strips to blockIdx.x and the iterations in a strip to
    threadIdx.x; loops that carry a dependence stay on the host. Returns the
    number of loops bound."""
    count = 0
    for stmt in sch.stmts:
        kinds = sch.lowering_plan().loops
        loops = sch.get_loops(stmt)
        if any(kinds[lp.id][1].is_gpu for lp in loops):
            continue  # under a loop bound for an earlier statement
        for loop in loops:
            done = 0
            try:
                outer, inner = sch.split(loop, factor)
                done = 1
                sch.bind(outer, "blockIdx.x")
                done = 2
                sch.bind(inner, "threadIdx.x")
                count += 1
                break
            except ScheduleError:
                sch.undo(done)
    return count


def _polybench(name: str):
    def make():
        bench = BENCHES[name]
        sch = polyop.Schedule(bench.kernel)
        assert bind_outer(sch) >= 1, f"{name}: no parallel loop bound"
        return sch, bench.init(bench.sizes["MINI"]), bench.kernel, 1e-9
    return make


#: the PolyBench kernels of the default suite (all have a parallel band);
#: the rest run with ``-m slow``
POLYBENCH = ("gemm", "gesummv", "syrk", "syr2k", "trmm", "2mm", "atax", "bicg", "mvt",
             "covariance", "jacobi-1d", "jacobi-2d")
POLYBENCH_SLOW = ("3mm", "symm", "gemver", "doitgen", "fdtd-2d", "heat-3d", "correlation", "lu",
                  "gramschmidt", "durbin", "ludcmp", "deriche", "adi")

CASES = {"matmul": _matmul, "jacobi": _jacobi, "rownorm": _rownorm, "fused": _fused,
         **{f"polybench-{n}": _polybench(n) for n in POLYBENCH}}
SLOW_CASES = {f"polybench-{n}": _polybench(n) for n in POLYBENCH_SLOW}


class Built:
    """A case built for OpenCL, and its CUDA C."""

    def __init__(self, make):
        self.sch, self.args, self.reference, self.rtol = make()
        self.fn = polyop.build(self.sch, target="opencl")
        self.cuda_lowered = dataclasses.replace(self.fn.lowered, target=as_target("cuda"))
        self.cuda = str(self.cuda_lowered)

    def check(self) -> None:
        args = copy.deepcopy(self.args)
        if isinstance(self.reference, polyop.Kernel):  # its own body run by CPython
            ref = copy.deepcopy(self.args)
            self.reference.py_func(**ref)
            expected = {k: v for k, v in ref.items() if isinstance(v, np.ndarray)}
        else:
            expected = self.reference(args)
        self.fn(**args)
        for name, want in expected.items():
            np.testing.assert_allclose(args[name], want, rtol=self.rtol, atol=self.rtol * 1e-3,
                                       err_msg=f"{self.sch.program.name}: {name}")


@pytest.fixture(scope="module")
def built():
    return {name: Built(make) for name, make in CASES.items()}


@pytest.fixture(scope="module")
def cubins(built):
    if not nvcc.available():
        pytest.skip("neither nvcc nor NVRTC is installed: CUDA C cannot be compiled here")
    if nvcc.nvcc_path() is None:  # NVRTC only: one program at a time
        return {n: {a: nvcc.compile_cubin(b.cuda_lowered.device_source, a)
                    for a in ("sm_80", "sm_90")} for n, b in built.items()}
    found = nvcc.compile_many([b.cuda for b in built.values()], ("sm_80", "sm_90"))
    return {n: found for n in built}


@pytest.mark.parametrize("name", list(CASES))
def test_runs_on_opencl(built, name):
    built[name].check()


@pytest.mark.parametrize("name", list(CASES))
def test_cuda_compiles_for_sm80_and_sm90(built, cubins, name):
    kernels = built[name].fn.lowered.program.kernels
    assert kernels
    for arch in ("sm_80", "sm_90"):
        cubin = cubins[name][arch]
        assert cubin[:4] == b"\x7fELF", f"{name}: {arch} output is no cubin"
        for k in kernels:
            assert k.name.encode() in cubin, f"{name}: kernel {k.name} missing for {arch}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_CASES))
def test_more_polybench_on_opencl(name):
    Built(SLOW_CASES[name]).check()


def test_kernels_bind_and_launch_as_scheduled(built):
    """The matmul is one kernel on a 2-D grid of 8 x 8 blocks; the stencil
    launches two kernels per time step from a host loop; a reduction's local
    scalar stays private to each thread."""
    mm = built["matmul"].fn.lowered.program
    (k,) = mm.kernels
    from polyop_cuda.host import launch_sizes

    grid, block = launch_sizes(k, {"ni": 37, "nj": 45, "nk": 29})
    assert grid == (6, 5, 1) and block == (8, 8, 1)
    jac = built["jacobi"].fn.lowered
    assert len(jac.program.kernels) == 2
    text = built["jacobi"].cuda
    assert "for (long long t = 0; t < tsteps; t += 1)" in text and text.count("<<<") == 2
    rn = built["rownorm"].fn.lowered
    assert ("s", polyop.f64, ()) in rn.program.kernels[0].temps
    assert "  double s;" in rn.text


def test_runtime_compiles_device_source_alone(built):
    """What ``polyop.build(..., target="cuda")`` compiles: the kernels without
    the host side (NVRTC accepts no host code), with NVRTC where cuda-python
    is installed, else nvcc."""
    if not nvcc.available():
        pytest.skip("neither nvcc nor NVRTC is installed: CUDA C cannot be compiled here")
    lowered = built["fused"].cuda_lowered
    assert "<<<" not in lowered.device_source and "<<<" in lowered.text
    for arch in ("sm_80", "sm_90"):
        cubin = nvcc.compile_cubin(lowered.device_source, arch)
        assert cubin[:4] == b"\x7fELF" and b"fused_kernel0" in cubin
