"""Tensor expressions on GPU targets: ``polyop.create_schedule`` schedules bound
with ``Schedule.bind`` and built with ``target="opencl"`` (PoCL's CPU device
in CI) or lowered to CUDA C (compiled to cubins for sm_80 and sm_90).

Cases, each checked against numpy at sizes that are not multiples of the
blocks: a matmul on a 2-D grid of 2-D blocks, a two-stage elementwise
pipeline whose intermediate stage is not an argument (scratch on the
device), and a row reduction with one thread per row.
"""

import numpy as np
import pytest

import polyop
from polyop.errors import ArgumentError, IllegalScheduleError, TargetError
from polyop_cuda import LoweredGpu, nvcc

RNG = np.random.default_rng(7)


def _matmul():
    M, N, K = polyop.var("M"), polyop.var("N"), polyop.var("K")
    A = polyop.placeholder((M, K), "float32", name="A")
    B = polyop.placeholder((K, N), "float32", name="B")
    k = polyop.reduce_axis((0, K), name="k")
    C = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="C")
    sch = polyop.create_schedule(C)
    i, j, _ = sch.get_loops(C)
    io, ii = sch.split(i, 8)
    jo, ji = sch.split(j, 16)
    sch.reorder(io, jo, ii, ji)
    for loop, axis in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                       (ji, "threadIdx.x")):
        sch.bind(loop, axis)
    return sch, [A, B, C]


def _elementwise():
    n, m = polyop.var("n"), polyop.var("m")
    X = polyop.placeholder((n, m), "float32", name="X")
    Y = polyop.placeholder((n, m), "float32", name="Y")
    T = polyop.compute((n, m), lambda i, j: X[i, j] * 2.0 - Y[i, j], name="T")
    R = polyop.compute((n, m), lambda i, j: polyop.maximum(T[i, j], 0.25) + polyop.sqrt(
        polyop.te.absolute(Y[i, j])), name="R")
    sch = polyop.create_schedule(R)
    for stage in (T, R):
        i, j = sch.get_loops(stage)
        jo, ji = sch.split(j, 32)
        sch.bind(i, "blockIdx.y")
        sch.bind(jo, "blockIdx.x")
        sch.bind(ji, "threadIdx.x")
    return sch, [X, Y, R]  # T is no argument: a device buffer of the call


def _rowsum():
    n, m = polyop.var("n"), polyop.var("m")
    A = polyop.placeholder((n, m), "float64", name="A")
    k = polyop.reduce_axis((0, m), name="k")
    S = polyop.compute((n,), lambda i: polyop.sum(A[i, k] * A[i, k], axis=k), name="S")
    sch = polyop.create_schedule(S)
    i, _ = sch.get_loops(S)
    io, ii = sch.split(i, 32)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    return sch, [A, S]


@pytest.fixture(scope="module")
def built():
    out = {}
    for name, make in (("matmul", _matmul), ("elementwise", _elementwise),
                       ("rowsum", _rowsum)):
        sch, args = make()
        out[name] = (sch, args, polyop.build(sch, args, target="opencl"))
    return out


def test_matmul_on_opencl(built):
    _, _, f = built["matmul"]
    a, b = RNG.random((37, 29), "f4"), RNG.random((29, 45), "f4")
    c = np.full((37, 45), np.nan, "f4")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    assert "__kernel void C_kernel0" in f.source and "get_group_id(1)" in f.source


def test_elementwise_with_intermediate_stage_on_opencl(built):
    _, _, f = built["elementwise"]
    x, y = RNG.standard_normal((19, 70), "f4"), RNG.standard_normal((19, 70), "f4")
    r = np.zeros((19, 70), "f4")
    f(x, y, r)
    expected = np.maximum(x * np.float32(2) - y, np.float32(0.25)) + np.sqrt(np.abs(y))
    np.testing.assert_allclose(r, expected, rtol=1e-6)
    assert f.kernel.scratch == ("T",)  # allocated per call, not passed
    assert len(f.kernel.lowered.program.kernels) == 2


def test_row_reduction_on_opencl(built):
    _, _, f = built["rowsum"]
    a = RNG.standard_normal((45, 13))
    s = np.zeros(45)
    f(a, s)
    np.testing.assert_allclose(s, (a * a).sum(axis=1), rtol=1e-12)


def test_reduction_axis_cannot_be_bound():
    n, m = polyop.var("n"), polyop.var("m")
    A = polyop.placeholder((n, m), "float64", name="A")
    k = polyop.reduce_axis((0, m), name="k")
    S = polyop.compute((n,), lambda i: polyop.sum(A[i, k], axis=k), name="S")
    sch = polyop.create_schedule(S)
    _, kk = sch.get_loops(S)
    with pytest.raises(IllegalScheduleError):
        sch.bind(kk, "threadIdx.x")


def test_cuda_text_compiles_for_sm80_and_sm90(built):
    sources = []
    for name, (sch, args, _) in built.items():
        lowered = polyop.lower(sch, args, target="cuda")
        assert isinstance(lowered, LoweredGpu)
        assert "__global__ void" in lowered.text and "<<<" in lowered.text, name
        sources.append(lowered.text)
    if not nvcc.available():
        pytest.skip("neither nvcc nor NVRTC is installed: CUDA C cannot be compiled here")
    if nvcc.nvcc_path() is None:  # NVRTC: the device part, one program at a time
        for sch, args, _ in built.values():
            src = polyop.lower(sch, args, target="cuda").device_source
            for arch in ("sm_80", "sm_90"):
                assert nvcc.compile_cubin(src, arch)[:4] == b"\x7fELF"
        return
    cubins = nvcc.compile_many(sources, ("sm_80", "sm_90"))
    for arch, cubin in cubins.items():
        assert cubin[:4] == b"\x7fELF", arch
        for kernel in (b"C_kernel0", b"R_kernel0", b"R_kernel1", b"S_kernel0"):
            assert kernel in cubin, (arch, kernel)


def test_gpu_checks_and_refusals(built):
    sch, args, f = built["matmul"]
    with pytest.raises(ArgumentError, match="B"):
        f(np.zeros((4, 3), "f4"), np.zeros((5, 6), "f4"), np.zeros((4, 6), "f4"))
    with pytest.raises(ArgumentError, match="A"):
        f(np.zeros((4, 3), "f8"), np.zeros((3, 6), "f4"), np.zeros((4, 6), "f4"))
    with pytest.raises(TargetError, match="fp_contract"):
        polyop.build(sch, args, target="opencl", fp_contract=True)
    with pytest.raises(TargetError, match="bound"):  # a CPU target refuses bound loops
        polyop.lower(sch, args)
