"""Tiles transposed in registers (``polyop.codegen.transpose``): the rows of
a tile that ``transpose_by_blocks`` leaves as ``lanes`` one-vector loops are
emitted as vector loads, shuffles and vector stores, with no store of a
single element, on every named target; the results match numpy, and groups
that do not qualify (the stored array read back, subscripts that are not
shifted rows) are emitted one loop at a time, as before, still exact."""

import re

import numpy as np
import pytest

import polyop
from polyop.codegen import build_module, compile_function
from polyop.ir import Block, Const, For, Function, Load, Param, Store, Var
from polyop.schedule.copies import transpose_by_blocks
from polyop.types import f32

HASWELL = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell"
SKYLAKE_AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512"
ZEN4 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4"
NEOVERSE_V2 = "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2"

#: a store of one element: x86 ``vmovss``/``vextractps`` to memory, NEON ``st1 {v.s}[k]``
ELEMENT_STORE = re.compile(r"^\s+(vmovss\s+%xmm\d+, .*\)|vextractps\s.*\)"
                           r"|st1\s+\{\s*v\d+\.s\s*\}\[)", re.M)


def transpose_schedule(n: int, m: int, dtype: str, lanes: int):
    """``B = A.T`` for ``A`` of ``n × m``, ordered as tiles of ``lanes × lanes``."""
    A = polyop.placeholder((n, m), dtype, name="A")
    B = polyop.compute((m, n), lambda i, j: A[j, i], name="B")
    sch = polyop.create_schedule(B)
    transpose_by_blocks(sch, "B", "i", "j", lanes)
    return sch, A, B


@pytest.mark.parametrize("target", [HASWELL, SKYLAKE_AVX512, ZEN4, NEOVERSE_V2])
def test_tiles_are_shuffled_not_stored_element_by_element(target):
    lanes = polyop.Target(target).lanes("float32")
    sch, A, B = transpose_schedule(4 * lanes, 8 * lanes, "float32", lanes)
    mod = polyop.build(sch, [A, B], target=target)
    assert "shufflevector" in mod.llvm_ir
    assert ELEMENT_STORE.findall(mod.asm) == []


@pytest.mark.parametrize("n, m, dtype", [(64, 256, "float32"), (48, 40, "float32"),
                                         (17, 33, "float32"), (32, 24, "float64"),
                                         (5, 3, "float64"), (16, 16, "int32")])
def test_transposes_match_numpy(n, m, dtype):
    lanes = polyop.Target("cpu").lanes(dtype)
    sch, A, B = transpose_schedule(n, m, dtype, lanes)
    f = polyop.build(sch, [A, B])
    a = (np.random.default_rng(n).uniform(-9, 9, (n, m))).astype(dtype)
    b = np.zeros((m, n), dtype)
    f(a, b)
    np.testing.assert_array_equal(b, a.T)


N = polyop.Target("cpu").lanes("float32")  # the host's lanes: one vector per row


def _rows(source: str, shift) -> Function:
    """``N`` one-vector loops over ``v``: ``B[v][shift(j)] = source[j][v]``."""
    v, shape = Var("v"), (Const(N), Const(N))
    body = Block(tuple(
        For("v", Const(0), Const(N), 1,
            Store("B", (v, Const(shift(j))), Load(source, (Const(j), v), f32)), "vector")
        for j in range(N)))
    return Function("rows", (Param("A", "array", f32, shape), Param("B", "array", f32, shape)),
                    (), body)


@pytest.mark.parametrize("source, shift", [
    ("A", lambda j: j),          # a tile: transposed in registers
    ("B", lambda j: j),          # reads the array it stores: loop by loop
    ("A", lambda j: N - 1 - j),  # not shifted by j: loop by loop
    ("A", lambda j: 0),          # every row onto one column: the last one wins
])
def test_groups_keep_the_loops_results(source, shift):
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (N, N)).astype(np.float32)
    b = rng.uniform(-1, 1, (N, N)).astype(np.float32)
    want = b.copy()
    arrays = {"A": a, "B": want}
    for j in range(N):  # the loops in order, lane by lane (CPython)
        for v in range(N):
            want[v, shift(j)] = arrays[source][j, v]
    fn = _rows(source, shift)
    compile_function(fn)(a, b)
    np.testing.assert_array_equal(b, want)
    transposed = "shufflevector" in str(build_module(fn)[0])
    assert transposed == (source == "A" and shift(1) == 1)


@pytest.mark.parametrize("target", [HASWELL, ZEN4])
def test_nchw_weights_are_packed_by_tiles_transposed_in_registers(target):
    # the copies ahead of the micro-kernel: the per-call packing of NCHW 3x3
    # weights (Wp, a transpose of whole rows of w) and the input channels
    # last (rows of 14 + 2 border pixels: whole tiles) store no single element
    conv = polyop.ops.conv2d(64, 14, 14, 64, 3, layout="NCHW", target=target)
    copy = conv.asm.split("vfmadd")[0]  # the packing and the input's transpose come first
    assert "shufflevector" in conv.llvm_ir
    assert ELEMENT_STORE.findall(copy) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_nchw_conv_with_whole_tiles_matches_numpy(threads):
    # rows of 14 + 2 border pixels and 32 channels: on 8 and 16 lanes, the input's
    # transpose (loads masked at the border) and the weights' are whole tiles
    C, H, F = 32, 14, 48
    conv = polyop.ops.conv2d(C, H, H, F, 3, layout="NCHW", threads=threads)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (C, H, H)).astype(np.float32)
    w = rng.uniform(-1, 1, (F, C, 3, 3)).astype(np.float32)
    out = np.empty((F, H, H), np.float32)
    conv(x, w, out)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    want = sum(np.einsum("fc,chw->fhw", w[:, :, r, s], xp[:, r:r + H, s:s + H])
               for r in range(3) for s in range(3))
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
