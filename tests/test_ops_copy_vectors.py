"""The copy loops of ``polyop.ops.matmul`` and ``polyop.ops.conv2d`` (packing of
``A`` and of the weights, NCHW's input channels last) in explicit vectors,
with no gather or scatter (issue 12).

Cross-compiled for named CPUs (AVX2, two AVX-512, AArch64) whatever the host
is: the whole module of each operator has no gather or scatter instruction.
On the host, each reorganised copy is checked against numpy at sizes that
leave partial tiles and vectors, and in its loop IR every copy reads its
source in whole vectors (a gather there would be one scalar load per lane).
"""

import re
from dataclasses import replace

import numpy as np
import pytest

import polyop
from polyop.ops import ConvShape, ConvTiling, MatmulTiling

HASWELL = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell"
SKYLAKE_AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512"
ZEN4 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4"
NEOVERSE_V2 = "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2"
TARGETS = [HASWELL, SKYLAKE_AVX512, ZEN4, NEOVERSE_V2]

#: x86 gathers and scatters (AVX2 and AVX-512, floats and integers); AArch64
#: NEON has none, its SVE ones are ld1w/st1w with a vector of offsets
GATHER = re.compile(r"^\s+(v?p?gather\w*|v?p?scatter\w*|ld1w\s.*z\d+\.[sd], \w+\]"
                    r"|st1w\s.*z\d+\.[sd], \w+\])", re.M)
#: NEON loads into one lane (``ld1 {v0.s}[1], [x1]``): a gather by hand
LANE_LOAD = re.compile(r"^\s+ld1\s+\{\s*v\d+\.[sd]\s*\}\[\d+\]", re.M)
COPIES = ("Ap", "Wp", "xp")

rng = np.random.default_rng(12)


def gathers(asm: str) -> list[str]:
    return [m.group(0).strip() for m in GATHER.finditer(asm)]


def copy_lines(op) -> list[str]:
    """The lines of the loop nest that store into a copy, as ``polyop.lower``
    prints them (``x[i:i + 8]``: a vector access, ``gather(x[i])``: one
    scalar load per lane)."""
    text = str(polyop.lower(op.schedule))
    pattern = re.compile(rf"^\s*(scatter\()?({'|'.join(COPIES)})\[.*= .*$", re.M)
    return [m.group(0).strip() for m in pattern.finditer(text)]


def packing_matmul(target: str | None, M: int = 28, N: int = 64, K: int = 48, **kw):
    """``polyop.ops.matmul`` with ``A`` packed (``MatmulTiling.pack_a``)."""
    tiling = replace(MatmulTiling.default("float32", K, N, 1, target), pack_a=True)
    return polyop.ops.matmul(M, N, K, threads=kw.pop("threads", 1), tiling=tiling,
                             target=target, **kw)


LAYERS = [  # (C, H, F, R, stride, pad, layout): 3x3 and 1x1, weights packed per call
    (32, 7, 64, 3, 1, 1, "NCHW"),
    (32, 7, 64, 3, 1, 1, "NHWC"),
    (32, 8, 40, 1, 1, 0, "NCHW"),  # a GEMM: vectors along pixels
    (32, 8, 40, 1, 1, 0, "NHWC"),
    (16, 16, 32, 1, 2, 0, "NCHW"),  # strided: only the rows read are copied
]
# (Widths are ResNet's: 7, 8, 16. Where a row leaves a single element after
# its vectors of 16, 8, 4 and 2, as K = 53 does, LLVM's SLP vectorizer may pack
# the tile's rows of that element into a gather on AVX-512: 1 to 3 per module,
# as with 16 channels of 7 x 7 here; polyop.schedule.copies.)


@pytest.mark.parametrize("target", TARGETS)
def test_matmul_packing_a_has_no_gathers(target):
    mm = packing_matmul(target)
    assert "Ap" in mm.schedule.stmts
    assert gathers(mm.asm) == []
    if "aarch64" in target:
        assert not LANE_LOAD.search(mm.asm)


@pytest.mark.parametrize("layer", LAYERS,
                         ids=lambda t: f"{t[3]}x{t[3]} {t[0]}->{t[2]} s{t[4]} {t[6]}")
@pytest.mark.parametrize("target", TARGETS)
def test_conv2d_copies_have_no_gathers(target, layer):
    C, H, F, R, stride, pad, layout = layer
    shape = ConvShape(C, H, H, F, R, R, stride, pad, layout)
    conv = polyop.ops.conv2d(C, H, H, F, R, stride=stride, pad=pad, layout=layout, bn=True,
                             relu=True, threads=1, target=target,
                             tiling=ConvTiling.structure(shape, target=target))
    assert "Wp" in conv.schedule.stmts  # the weights packed per call
    assert gathers(conv.asm) == []
    if "aarch64" in target and layout == "NHWC":  # NCHW's epilogue stores transposed
        assert not LANE_LOAD.search(conv.asm)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("target", TARGETS)
def test_conv2d_weights_packed_per_panel_have_no_gathers(target, layout):
    # the copy of one filter panel into a local buffer inside the panel loop
    # (ConvTiling.pack_in_nest, the default for weights that outgrow L2)
    shape = ConvShape(32, 7, 7, 64, layout=layout)
    tiling = replace(ConvTiling.default(shape, target=target), pixels_outer=False,
                     pack_in_nest=True, weights_in_place=False)
    conv = polyop.ops.conv2d(32, 7, 7, 64, 3, layout=layout, bn=True, relu=True, threads=1,
                             tiling=tiling, target=target)
    assert "float Wp[1]" in str(polyop.lower(conv.schedule))
    assert gathers(conv.asm) == []
    if "aarch64" in target and layout == "NHWC":
        assert not LANE_LOAD.search(conv.asm)


@pytest.mark.parametrize("layer", [lay for lay in LAYERS if lay[-1] == "NHWC"],
                         ids=lambda t: f"{t[3]}x{t[3]} {t[0]}->{t[2]} s{t[4]}")
@pytest.mark.parametrize("target", TARGETS)
def test_conv2d_weights_read_in_place_have_no_gathers(target, layer):
    # NHWC's default on AVX-512: no copy, each vector of filters loaded from
    # a row w[r, s, c, :] of the caller's weights
    C, H, F, R, stride, pad, layout = layer
    shape = ConvShape(C, H, H, F, R, R, stride, pad, layout)
    tiling = replace(ConvTiling.default(shape, target=target), weights_in_place=True,
                     pack_in_nest=False)
    conv = polyop.ops.conv2d(C, H, H, F, R, stride=stride, pad=pad, layout=layout, bn=True,
                             relu=True, threads=1, target=target, tiling=tiling)
    assert "Wp" not in conv.schedule.stmts
    assert gathers(conv.asm) == []


# -- results on this host ---------------------------------------------------------------


def conv_reference(conv, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The convolution in float64 numpy, in the operator's layout."""
    s = conv.shape
    if s.layout == "NHWC":
        x, w = x.transpose(2, 0, 1), w.transpose(3, 2, 0, 1)
    xp = np.pad(x.astype(np.float64), ((0, 0), (s.pad, s.pad), (s.pad, s.pad)))
    out = np.zeros((s.F, s.Ho, s.Wo))
    for r in range(s.R):
        for t in range(s.S):
            win = xp[:, r:r + s.stride * s.Ho:s.stride, t:t + s.stride * s.Wo:s.stride]
            out += np.einsum("fc,chw->fhw", w[:, :, r, t], win)
    return out if s.layout == "NCHW" else out.transpose(1, 2, 0)


@pytest.mark.parametrize("M,N,K,threads", [(37, 29, 53, 1), (61, 40, 19, 2)])
def test_matmul_with_packed_a_matches_numpy(M, N, K, threads):
    mm = packing_matmul(None, M, N, K, threads=threads)
    lines = copy_lines(mm)
    assert any(line.startswith("scatter(Ap[") for line in lines), lines  # vectors along k
    assert not any("gather(" in line for line in lines), lines
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    mm(a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C,H,F,R,kw,copies", [
    (13, 11, 19, 3, {}, ("xp", "Wp")),         # bordered, channels unblocked
    (24, 9, 21, 3, dict(pad=0, threads=2, tiling=ConvTiling(kc=8)),
     ("xp", "Wp")),                                  # no border, channel blocks, 2 threads
    (19, 7, 11, 1, dict(pad=0), ("Wp",)),            # a GEMM: Wp transposes
    (21, 9, 13, 1, dict(pad=0, stride=2), ("xp", "Wp")),  # 1x1, vectors along filters
])
def test_nchw_copies_match_numpy(C, H, F, R, kw, copies):
    conv = polyop.ops.conv2d(C, H, H, F, R, layout="NCHW", **kw)
    assert set(copies) <= set(conv.schedule.stmts)
    lines = copy_lines(conv)
    assert {line.split("[")[0].removeprefix("scatter(") for line in lines} == set(copies)
    assert not any("gather(" in line for line in lines), lines
    shapes = conv.shape.arrays()
    x = rng.standard_normal(shapes["x"]).astype(np.float32)
    w = rng.standard_normal(shapes["w"]).astype(np.float32)
    out = np.empty(shapes["out"], np.float32)
    conv(x, w, out)
    np.testing.assert_allclose(out, conv_reference(conv, x, w), rtol=1e-4, atol=1e-4)
