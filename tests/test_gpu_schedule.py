"""GPU back end, without running kernels: ``Schedule.bind`` legality and
refusals, kernel extraction's refusals, the ``cuda``/``opencl`` targets and
their limits, CPU targets refusing bound loops, ``TargetUnavailableError``
without a CUDA driver, and the argument checks of a GPU function (numpy
arrays and device arrays exposing ``__cuda_array_interface__``)."""

import numpy as np
import pytest

import polyop
from polyop.errors import (
    ArgumentError,
    IllegalScheduleError,
    ScheduleError,
    TargetError,
    TargetUnavailableError,
)
from polyop.kinds import LoopKind
from polyop_cuda.host import GpuFunction, launch_sizes


@polyop.kernel
def gemm(ni: int, nj: int, nk: int, alpha: "f64", beta: "f64",
         C: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]"):
    for i in range(ni):
        for j in range(nj):
            C[i, j] *= beta
        for k in range(nk):
            for j in range(nj):
                C[i, j] += alpha * A[i, k] * B[k, j]


@polyop.kernel
def stencil(tsteps: int, n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.25 * (A[i - 1, j] + A[i + 1, j] + A[i, j - 1] + A[i, j + 1])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = B[i, j]


@polyop.kernel
def axpy(n: int, a: "f32", x: "f32[n]", y: "f32[n]"):
    for i in range(n):
        y[i] += a * x[i]


@polyop.kernel
def big(A: "f32[4096]"):
    for i in range(4096):
        A[i] = 1.0


def _axpy_schedule(factor=32):
    sch = polyop.Schedule(axpy)
    io, ii = sch.split(sch.get_loops("S0")[0], factor)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    return sch


# -- bind: legality --------------------------------------------------------------------------

def test_binding_gemms_k_is_refused_with_the_instance_pair():
    sch = polyop.Schedule(gemm)
    _, k, _ = sch.get_loops("S1")
    before = sch.state
    with pytest.raises(IllegalScheduleError) as e:
        sch.bind(k, "blockIdx.x")
    err = e.value
    assert err.loop == "k" and err.array == "C"
    assert err.source.startswith("S1[") and err.sink.startswith("S1[")
    src = dict(p.split("=") for p in err.source[3:-1].split(", "))
    dst = dict(p.split("=") for p in err.sink[3:-1].split(", "))
    assert src["i"] == dst["i"] and src["j"] == dst["j"] and int(src["k"]) < int(dst["k"])
    assert "bind(k" in str(err) and "carries" in str(err)
    assert sch.state is before  # a refused primitive leaves no trace


def test_binding_a_stencils_time_loop_is_refused():
    sch = polyop.Schedule(stencil)
    t = sch.get_loops("S0")[0]
    with pytest.raises(IllegalScheduleError) as e:
        sch.bind(t, "threadIdx.x")
    assert e.value.loop == "t"
    assert "different iterations of t" in str(e.value)


@polyop.kernel
def diagonal(n: int, X: "f64[n, n]"):
    for i in range(1, n):
        for k in range(1, n):
            X[i, k] = X[i - 1, k - 1] + 1.0


def test_a_bound_loop_is_rechecked_after_later_primitives():
    """Interchanging makes the bound loop k carry the dependence of distance
    (1, 1): refused, though the interchange alone is legal."""
    plain = polyop.Schedule(diagonal)
    plain.interchange(*plain.get_loops("S0"))
    sch = polyop.Schedule(diagonal)
    i, k = sch.get_loops("S0")
    sch.bind(k, "threadIdx.x")
    with pytest.raises(IllegalScheduleError) as e:
        sch.interchange(i, k)
    assert e.value.loop == "k" and "carries a RAW dependence on X" in str(e.value)


def test_bind_structure_refusals():
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S1")
    with pytest.raises(ScheduleError, match="unknown axis"):
        sch.bind(i, "blockIdx.w")
    sch.bind(i, "blockIdx.x")
    with pytest.raises(ScheduleError, match="already bound to blockIdx.x"):
        sch.bind(j, "blockIdx.x")
    sch2 = polyop.Schedule(gemm)
    i2, _, j2 = sch2.get_loops("S1")
    sch2.bind(i2, "threadIdx.x")
    with pytest.raises(ScheduleError, match="thread loop cannot enclose a block loop"):
        sch2.bind(j2, "blockIdx.x")
    sch3 = polyop.Schedule(gemm)
    i3, _, j3 = sch3.get_loops("S1")
    sch3.bind(j3, "blockIdx.y")
    with pytest.raises(ScheduleError, match="thread loop cannot enclose a block loop"):
        sch3.bind(i3, "threadIdx.y")
    sch3.parallel(i3)
    with pytest.raises(ScheduleError, match="already parallel"):
        sch3.bind(i3, "blockIdx.x")
    assert sch.lowering_plan().loops[i.id][1] is LoopKind.BLOCK_X


def test_extraction_refusals_name_the_loops():
    sch = polyop.Schedule(gemm)
    i, _, j = sch.get_loops("S1")
    sch.bind(i, "blockIdx.x")
    sch.bind(j, "threadIdx.x")  # S0's j loop is not bound: S0 would run in every thread
    with pytest.raises(ScheduleError, match="storing to C runs outside the loops bound to "
                                            "threadIdx.x"):
        polyop.lower(sch, target="cuda")
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S1")
    (j0,) = sch.get_loops("S0")[1:]
    sch.bind(i, "blockIdx.y")
    sch.bind(j0, "blockIdx.x")
    sch.bind(j, "blockIdx.x")  # k, sequential, runs between two block loops
    with pytest.raises(ScheduleError, match="block loop j runs inside sequential loop k"):
        polyop.lower(sch, target="opencl")


def test_bind_is_traced_and_replays():
    sch = _axpy_schedule()
    assert [ins.primitive for ins in sch.trace] == ["split", "bind", "bind"]
    assert "bind(i_outer, 'blockIdx.x')" in str(sch)
    from polyop.schedule.trace import trace_from_json

    again = polyop.Schedule.replay(trace_from_json(sch.trace_json()), axpy)
    assert str(polyop.lower(again, target="cuda")) == str(polyop.lower(sch, target="cuda"))
    sch.undo()
    assert [ins.primitive for ins in sch.trace] == ["split", "bind"]


# -- CPU targets refuse bound loops -------------------------------------------------------------

def test_cpu_targets_refuse_bound_loops():
    sch = _axpy_schedule()
    with pytest.raises(TargetError, match="loops bound to GPU axes: build for target='cuda' "
                                          "or 'opencl'"):
        polyop.lower(sch)
    with pytest.raises(TargetError, match="loops bound to GPU axes"):
        polyop.build(sch)


# -- targets --------------------------------------------------------------------------------------

def test_gpu_targets_and_their_facts():
    t = polyop.Target("cuda")
    assert str(t) == "cuda -arch=sm_80" and t.is_gpu and not t.is_host
    assert t.gpu.max_threads_per_block == 1024 and t.gpu.warp_size == 32
    assert t.gpu.shared_memory_per_block == 48 * 1024 and t.gpu.sm_count == 108
    h = polyop.Target("cuda -arch=sm_90")
    assert h.gpu.sm_count == 132 and h.gpu.shared_memory_per_block_optin == 227 * 1024
    assert h != t and h == polyop.Target("cuda -arch=sm_90")
    small = polyop.Target("cuda -arch=sm_90 -max-threads-per-block=256")
    assert small.gpu.max_threads_per_block == 256 and small != h
    assert not polyop.Target("cpu").is_gpu
    ocl = polyop.Target("opencl")
    from polyop.gputarget import opencl_device

    found = opencl_device()
    if found is not None:  # facts read from the device (PoCL in CI)
        assert ocl.gpu.queried
        assert ocl.gpu.max_threads_per_block == found[1].max_work_group_size
        assert ocl.gpu.shared_memory_per_block == found[1].local_mem_size
    for bad, msg in (("cuda -arch=sm_99", "unknown CUDA architecture"),
                     ("cuda -device=0", "option of the opencl kind"),
                     ("opencl -arch=sm_80", "option of the cuda kind"),
                     ("cuda -mcpu=haswell", "unknown option"),
                     ("cuda -max-threads-per-block=0", "positive integer")):
        with pytest.raises(TargetError, match=msg):
            polyop.Target(bad)
    with pytest.raises(TargetError, match="no LLVM CPU machine"):
        polyop.target.target_machine(t)


def test_too_many_threads_per_block_is_refused_before_launch():
    sch = polyop.Schedule(big)
    io, ii = sch.split(sch.get_loops("S0")[0], 2048)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    with pytest.raises(TargetError, match=r"2048 threads per block .* limit of 1024 .* "
                                          r"i_inner \(threadIdx.x\)"):
        polyop.lower(sch, target="cuda")
    # a block size that depends on the sizes is checked at the call, before the launch
    f = polyop.build(_axpy_schedule(128), target="opencl -max-threads-per-block=64")
    x, y = np.ones(100, "f4"), np.zeros(100, "f4")
    with pytest.raises(TargetError, match="100 threads per block .* limit of 64"):
        f(100, 2.0, x, y)
    assert not y.any()  # nothing ran
    f(50, 2.0, x[:50], y[:50])
    assert (y[:50] == 2.0).all() and not y[50:].any()


def test_cuda_without_a_driver_is_target_unavailable():
    from polyop_cuda.cuda import driver

    sch = _axpy_schedule()
    text = str(polyop.lower(sch, target="cuda"))  # lowering needs no driver
    assert "axpy_kernel0<<<grid, block>>>" in text and "__global__" in text
    try:
        driver(polyop.Target("cuda"))
    except TargetUnavailableError:
        with pytest.raises(TargetUnavailableError, match="no usable CUDA driver"):
            polyop.build(sch, target="cuda")
    else:  # a GPU machine: the kernel runs
        f = polyop.build(sch, target="cuda")
        x, y = np.arange(70, dtype="f4"), np.ones(70, "f4")
        f(70, 2.0, x, y)
        np.testing.assert_array_equal(y, 1.0 + 2.0 * np.arange(70, dtype="f4"))


def test_lowered_text_has_both_dialects():
    sch = _axpy_schedule()
    cuda = str(polyop.lower(sch, target="cuda"))
    ocl = str(polyop.lower(sch, target="opencl"))
    assert "blockIdx.x" in cuda and "threadIdx.x" in cuda and "get_group_id" not in cuda
    assert "__kernel void axpy_kernel0" in ocl and "get_group_id(0)" in ocl
    assert "get_local_id(0)" in ocl and "__global float * restrict y" in ocl
    assert "#pragma OPENCL FP_CONTRACT OFF" in ocl


# -- arguments -----------------------------------------------------------------------------------

class FakeDeviceArray:
    """What CuPy or torch expose of a device array: its interface only."""

    def __init__(self, shape, typestr="<f4", ptr=0x10000, readonly=False, strides=None):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr,
                                         "data": (ptr, readonly), "strides": strides,
                                         "version": 3}


class Recorder:
    def __init__(self):
        self.calls = []

    def run(self, prog, values, written):
        self.calls.append((values, written))


def _fake_cuda_function():
    lowered = polyop_cuda_lower(_axpy_schedule(), "cuda")
    rec = Recorder()
    return GpuFunction(lowered, rec, device_arrays=True), rec


def polyop_cuda_lower(sch, target):
    import polyop_cuda

    return polyop_cuda.lower(sch, target=target)


def test_device_arrays_are_passed_without_copies():
    f, rec = _fake_cuda_function()
    x, y = FakeDeviceArray((10,), ptr=0x1000), FakeDeviceArray((10,), ptr=0x2000)
    f(10, 2.0, x, y)
    values, written = rec.calls[-1]
    assert values["x"] is x and values["y"] is y and written == {"y"}
    f(a=3.0, x=x, y=y, n=10)  # keywords; a numpy array and a device array mix
    host = np.zeros(10, "f4")
    f(10, 1.0, host, y)
    assert rec.calls[-1][0]["x"] is host


@pytest.mark.parametrize("x, y, msg", [
    (FakeDeviceArray((10,), "<f8"), FakeDeviceArray((10,), ptr=0x9000), "dtype <f8"),
    (FakeDeviceArray((11,)), FakeDeviceArray((10,), ptr=0x9000), r"shape \(11,\)"),
    (FakeDeviceArray((10, 1)), FakeDeviceArray((10,), ptr=0x9000), "1 dimensions"),
    (FakeDeviceArray((10,), strides=(8,)), FakeDeviceArray((10,), ptr=0x9000), "C-contiguous"),
    (FakeDeviceArray((10,)), FakeDeviceArray((10,), ptr=0x9000, readonly=True), "read-only"),
    (FakeDeviceArray((10,), ptr=0x9000), FakeDeviceArray((10,), ptr=0x9010), "overlap"),
    (np.zeros(10, "f8"), FakeDeviceArray((10,), ptr=0x9000), "dtype float64"),
])
def test_bad_arguments_are_refused_naming_them(x, y, msg):
    f, rec = _fake_cuda_function()
    with pytest.raises(ArgumentError, match=msg):
        f(10, 2.0, x, y)
    assert not rec.calls


def test_opencl_refuses_device_arrays_and_checks_like_the_cpu():
    f = polyop.build(_axpy_schedule(), target="opencl")
    with pytest.raises(ArgumentError, match="argument x: a device array"):
        f(10, 2.0, FakeDeviceArray((10,)), np.zeros(10, "f4"))
    with pytest.raises(ArgumentError, match=r"argument y: shape \(9,\) does not match"):
        f(10, 2.0, np.zeros(10, "f4"), np.zeros(9, "f4"))
    with pytest.raises(ArgumentError, match="overlap"):
        a = np.zeros(20, "f4")
        f(10, 2.0, a[:10], a[5:15])
    x, y = np.arange(37, dtype="f4"), np.ones(37, "f4")
    f(a=2.5, x=x, y=y)  # n inferred from the arrays
    np.testing.assert_array_equal(y, 1.0 + 2.5 * np.arange(37, dtype="f4"))
    f(0, 2.5, x[:0], y[:0])  # an empty grid launches nothing
    grid, block = launch_sizes(f.lowered.program.kernels[0], {"n": 37})
    assert grid == (2, 1, 1) and block == (32, 1, 1)
