"""``auto_schedule`` for GPU targets (``polyop.autoschedule.gpu``).

PolyBench kernels auto-scheduled for ``opencl`` run on PoCL's CPU device
against their own Python bodies run by CPython, at MINI sizes (20 to 40:
not multiples of the 32 x 8 blocks) and at sizes scaled off them; the same
schedules' CUDA C compiles with nvcc for sm_80, all programs in one nvcc run.
Then GEMM's mapping (blocks, threads, shared memory), knob overrides, the
explanation, a target with few threads per block and a kernel with no
parallel loop.
"""

import copy

import numpy as np
import pytest

import polyop
from polyop.autoschedule import auto_knobs
from polyop.errors import ScheduleError
from polyop_cuda import nvcc
from tests.polybench import BENCHES

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: kernels with a parallel band, in the default suite (about 1 s each)
POLYBENCH = ("gemm", "gesummv", "syrk", "syr2k", "trmm", "atax", "bicg", "mvt", "doitgen",
             "jacobi-1d", "jacobi-2d", "fdtd-2d")
POLYBENCH_SLOW = ("symm", "2mm", "3mm", "gemver", "covariance", "correlation", "gramschmidt", "lu",
                  "durbin", "ludcmp", "deriche", "adi", "heat-3d")


@polyop.kernel
def mm(ni: int, nj: int, nk: int, A: "f32[ni, nk]", B: "f32[nk, nj]", C: "f32[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def prefix(n: int, x: "f64[n]"):
    for i in range(1, n):
        x[i] = x[i] + x[i - 1]


@polyop.kernel
def scale3(n: int, A: "f64[n, n, n]", B: "f64[n, n, n]"):
    for i in range(n):
        for j in range(n):
            for k in range(n):
                B[i, j, k] = 2.0 * A[i, j, k] + A[i, j, 0]


def _odd_sizes(sizes: dict) -> dict:
    """MINI sizes made odd and a little larger (``+ 7``, rounded to odd): not
    multiples of any block or tile."""
    return {k: (v + 7) | 1 if isinstance(v, int) and v > 4 else v for k, v in sizes.items()}


def _run(sch, bench, sizes) -> None:
    args = bench.init(sizes)
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    polyop.build(sch, target="opencl")(**args)
    for name in bench.outputs:
        np.testing.assert_allclose(args[name], ref[name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{bench.name}: {name} at {sizes}")


@pytest.fixture(scope="module")
def schedules():
    return {n: polyop.auto_schedule(BENCHES[n].kernel, "opencl") for n in POLYBENCH}


def _bound(sch) -> list[str]:
    return [str(i) for i in sch.trace if "bind(" in str(i)]


@pytest.mark.parametrize("name", POLYBENCH)
def test_polybench_on_pocl_matches_cpython(schedules, name):
    sch, bench = schedules[name], BENCHES[name]
    assert any("threadIdx" in b for b in _bound(sch)), f"{name}: no thread loop bound"
    _run(sch, bench, bench.sizes["MINI"])
    if name in ("gemm", "atax", "jacobi-2d"):
        _run(sch, bench, _odd_sizes(bench.sizes["MINI"]))


@pytest.mark.slow
@pytest.mark.parametrize("name", POLYBENCH_SLOW)
def test_more_polybench_on_pocl(name):
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, "opencl")
    assert _bound(sch), f"{name}: nothing bound"
    _run(sch, bench, bench.sizes["MINI"])


def test_cuda_sources_compile_for_sm80(schedules):
    if nvcc.nvcc_path() is None:
        pytest.skip("nvcc is not installed: the CUDA C cannot be compiled here")
    lowered = [polyop.lower(s, target="cuda") for s in schedules.values()]
    cubin = nvcc.compile_many([str(f) for f in lowered], ("sm_80",))["sm_80"]
    assert cubin[:4] == b"\x7fELF"
    for f in lowered:
        for k in f.program.kernels:
            assert k.name.encode() in cubin, f"kernel {k.name} missing from the cubin"


def test_gemm_gets_blocks_threads_and_shared_memory():
    sch = polyop.auto_schedule(mm, "opencl")
    text = "\n".join(str(i) for i in sch.trace)
    for axis in ("blockIdx.x", "blockIdx.y", "threadIdx.x", "threadIdx.y"):
        assert axis in text
    assert "promote_shared(k_outer" in text
    # threadIdx.x on j: B[k, j] and C[i, j] are unit-stride along it (coalesced)
    assert "bind(j_inner, 'threadIdx.x')" in text
    (k,) = polyop.lower(sch, target="opencl").program.kernels
    assert sorted(n for n, _, _ in k.shared) == ["A_shared", "B_shared"]
    assert sch.explanation.knob("S0:promote").chosen is True
    assert sch.explanation.knob("S0:reduction_tile").chosen == 16
    assert "cache_write(C, scope='local', at=j_outer)" in text  # C in a register per thread
    rng = np.random.default_rng(1)
    A, B = rng.random((37, 23), "f4"), rng.random((23, 45), "f4")
    C = rng.random((37, 45), "f4")
    want = C + A @ B
    polyop.build(sch, target="opencl")(A=A, B=B, C=C)
    np.testing.assert_allclose(C, want, rtol=1e-5)
    cuda = str(polyop.lower(polyop.auto_schedule(mm, "cuda"), target="cuda"))
    assert "__shared__ float A_shared[8][16];" in cuda
    assert "__shared__ float B_shared[16][32];" in cuda
    assert "float C_local[1][1];" in cuda


def test_knobs_override_and_are_listed():
    names = {k.name for k in auto_knobs(mm, "cuda")}
    assert {"S0:bind", "S0:block", "S0:reduction_tile", "S0:promote", "S0:registers"} <= names
    sch = polyop.auto_schedule(mm, "cuda", knobs={"S0:block": (4, 16), "S0:promote": False})
    text = "\n".join(str(i) for i in sch.trace)
    assert "split(i, 4)" in text and "split(j, 16)" in text
    assert "promote_shared" not in text
    one = polyop.auto_schedule(mm, "cuda", knobs={"S0:bind": ("j",)})
    text = "\n".join(str(i) for i in one.trace)
    assert "bind(j_outer, 'blockIdx.x')" in text and "blockIdx.y" not in text
    with pytest.raises(ScheduleError, match="S0:bind"):
        polyop.auto_schedule(mm, "cuda", knobs={"S0:bind": ("k",)})  # k carries the sum
    with pytest.raises(ScheduleError, match="S0:block"):
        polyop.auto_schedule(mm, "cuda", knobs={"S0:block": (64, 64)})  # 4096 > 1024


def test_explanation_lists_the_decisions():
    text = str(polyop.auto_schedule(mm, "cuda").explanation)
    assert "shared_memory_per_block=49152" in text and "warp_size=32" in text
    for knob in ("S0:bind = ('i', 'j')", "S0:block = (8, 32)", "S0:reduction_tile = 16",
                 "S0:promote = True", "S0:registers = True"):
        assert knob in text
    assert "A read by 32 threads of a block, B read by 8 threads" in text


def test_few_threads_per_block_give_smaller_blocks():
    off = {"S0:promote": False}  # the blocks are decided before promotion
    small = polyop.auto_schedule(mm, "cuda -max-threads-per-block=64", knobs=off)
    block = small.explanation.knob("S0:block").chosen
    assert int(np.prod(block)) <= 64 and block[1] == 32
    assert "split(i, 2)" in "\n".join(str(i) for i in small.trace)
    assert int(np.prod(polyop.auto_schedule(mm, "cuda", knobs=off).explanation
                       .knob("S0:block").chosen)) == 256


def test_no_parallel_loop_runs_in_one_thread():
    sch = polyop.auto_schedule(prefix, "opencl")
    assert not _bound(sch)
    knob = sch.explanation.knob("S0:bind")
    assert knob.chosen == () and "kernel of one thread" in knob.why
    x = np.random.default_rng(2).random(29)
    want = np.cumsum(x)
    polyop.build(sch, target="opencl")(x=x)
    np.testing.assert_allclose(x, want, rtol=1e-12)


def test_cpu_targets_keep_their_decisions():
    sch = polyop.auto_schedule(mm, "cpu -mcpu=haswell -num-cores=2")
    assert not _bound(sch) and "S0:order" in {k.name for k in sch.explanation.knobs}


def test_refused_decisions_are_recorded_and_host_loops_launch(schedules):
    """jacobi-2d: distributing t over the two sweeps is illegal (recorded,
    undone); t stays on the host, two launches per step."""
    sch = schedules["jacobi-2d"]
    knob = sch.explanation.knob("S0:fission")
    assert not knob.applied and "RAW dependence on A" in knob.why
    assert "t above stays on the host" in sch.explanation.knob("S0:bind").why
    assert not sch.check()
    text = str(polyop.lower(sch, target="cuda"))
    assert "for (long long t = 0; t < tsteps; t += 1)" in text and text.count("<<<") == 2


def test_statements_of_one_nest_are_separated_when_none_is_parallel(schedules):
    """bicg's body sums s[j] along i and q[i] along j: no loop is parallel for
    both, so the nest is distributed and each sum gets its own parallel loop."""
    ex = schedules["bicg"].explanation
    assert ex.knob("S2:separate").applied
    assert ex.knob("S2:bind").chosen == ("j",) and ex.knob("S3:bind").chosen == ("i",)


def test_register_cache_in_one_of_several_kernels_with_the_same_loop_names(schedules):
    """gesummv: the nest is distributed and each copy of ``i`` split, so two
    kernels have a loop ``i_outer``; the register cache of ``y`` goes to the
    one that accesses ``y`` (it ran on PoCL above)."""
    sch = schedules["gesummv"]
    assert sch.explanation.knob("S2:registers").applied
    text = "\n".join(str(i) for i in sch.trace)
    assert "cache_write(y, scope='local', at=i_outer)" in text
    assert "y_local" in str(polyop.lower(sch, target="opencl"))


def test_sizes_shape_the_blocks():
    """A short i loop (4 rows at the sizes assumed) leaves its threads to j:
    4 x 64 with CUDA's warps of 32; an OpenCL device's own warp (PoCL 8,
    Intel's CPU runtime 128) gives j at least as many."""
    sizes = {"ni": 4, "nj": 1000, "nk": 64}
    assert polyop.auto_schedule(mm, "cuda", sizes=sizes).explanation.knob(
        "S0:block").chosen == (4, 64)
    sch = polyop.auto_schedule(mm, "opencl", sizes=sizes)
    rows, cols = sch.explanation.knob("S0:block").chosen
    assert rows <= 4 and cols >= 64
    rng = np.random.default_rng(3)
    A, B = rng.random((5, 9), "f4"), rng.random((9, 70), "f4")
    C = np.zeros((5, 70), "f4")
    polyop.build(sch, target="opencl")(A=A, B=B, C=C)
    np.testing.assert_allclose(C, A @ B, rtol=1e-5)


def test_chosen_knobs_replay_the_same_schedule(schedules):
    """What a tuner does: every knob set to its chosen value gives the same
    schedule (PolyBench gemm: fission, two nests, promotion, registers)."""
    sch = schedules["gemm"]
    knobs = {k.name: k.chosen for k in sch.explanation.knobs}
    again = polyop.auto_schedule(BENCHES["gemm"].kernel, "opencl", knobs=knobs)
    assert [str(i) for i in again.trace] == [str(i) for i in sch.trace]


def test_a_refused_promotion_is_recorded_and_undone(schedules):
    """syrk's triangular j loop gives no constant box: nothing is promoted,
    the knob says so, and the schedule (run on PoCL above) keeps its mapping."""
    sch = schedules["syrk"]
    knob = sch.explanation.knob("S1:promote")
    assert knob.chosen and not knob.applied and "refused" in knob.why
    assert not any("promote_shared" in str(i) or "split(k" in str(i) for i in sch.trace)


def test_three_parallel_loops_get_a_3d_grid_only_when_two_are_too_few():
    """At the default sizes two loops give threads enough: i and k (threadIdx.x
    on k, the unit-stride loop), j inside each thread; at n = 10 all three."""
    two = polyop.auto_schedule(scale3, "opencl").explanation
    assert two.knob("S0:bind").chosen == ("i", "k")
    sch = polyop.auto_schedule(scale3, "opencl", sizes={"n": 10})
    assert sch.explanation.knob("S0:bind").chosen == ("i", "j", "k")
    assert "a 3-D grid" in sch.explanation.knob("S0:bind").why
    text = "\n".join(str(i) for i in sch.trace)
    assert "bind(k_inner, 'threadIdx.x')" in text and "bind(i_inner, 'threadIdx.z')" in text
    rng = np.random.default_rng(4)
    A, B = rng.random((11, 11, 11)), np.zeros((11, 11, 11))
    want = B.copy()
    scale3.py_func(11, A, want)
    polyop.build(sch, target="opencl")(A=A, B=B)
    np.testing.assert_array_equal(B, want)
