"""polyop.ops.conv2d: both layouts, 3x3 and 1x1, strides, fused epilogues, against numpy."""

import re
from dataclasses import replace

import numpy as np
import pytest

import polyop
from polyop.errors import ArgumentError
from polyop.ops import ConvShape, ConvTiling
from polyop.ops.matmul import register_rows
from polyop.target import host

#: code checked instruction by instruction is compiled for a named CPU
HASWELL = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell"
AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512"

rng = np.random.default_rng(11)


def reference(x, w, layout, stride, pad, bias=None, scale=None, shift=None, relu=False):
    """The convolution in float64 with numpy: one matrix product per filter tap."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    if layout == "NHWC":  # to [C, H, W] and [F, C, R, S]
        x, w = x.transpose(2, 0, 1), w.transpose(3, 2, 0, 1)
    C, H, W = x.shape
    F, _, R, S = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    out = np.zeros((F, Ho, Wo))
    for r in range(R):
        for s in range(S):
            window = xp[:, r:r + stride * (Ho - 1) + 1:stride, s:s + stride * (Wo - 1) + 1:stride]
            out += np.einsum("fc,chw->fhw", w[:, :, r, s], window)
    if bias is not None:
        out += bias[:, None, None]
    if scale is not None:
        out = out * scale[:, None, None] + shift[:, None, None]
    if relu:
        out = np.maximum(out, 0)
    return out.transpose(1, 2, 0) if layout == "NHWC" else out


def run(conv, dtype=np.float32, **flags):
    """Call ``conv`` on random arrays; return (result, reference)."""
    shape = conv.shape
    dims = shape.arrays()
    x = rng.standard_normal(dims["x"]).astype(dtype)
    w = rng.standard_normal(dims["w"]).astype(dtype)
    extra = {k: rng.standard_normal(shape.F).astype(dtype) for k in ("bias", "scale", "shift")}
    out = np.full(dims["out"], np.nan, dtype)
    args = [x, w]
    if flags.get("bias"):
        args.append(extra["bias"])
    if flags.get("bn"):
        args += [extra["scale"], extra["shift"]]
    conv(*args, out)
    ref = reference(x, w, shape.layout, shape.stride, shape.pad,
                    extra["bias"] if flags.get("bias") else None,
                    extra["scale"] if flags.get("bn") else None,
                    extra["shift"] if flags.get("bn") else None, flags.get("relu", False))
    return out, ref


SMALL = ConvTiling(mr=3, nr=8, kc=2)  # partial tiles and channel blocks at small sizes
PANELS = ConvTiling(mr=3, nr=8, kc=2, pixels_outer=False, pack_in_nest=True)
BLOCKS = ConvTiling(mr=3, nr=8, kc=2, pixels_outer=False, blocks_outer=True, pack_in_nest=True)
IN_PLACE = ConvTiling(mr=3, nr=8, kc=2, weights_in_place=True)  # NHWC: no copy of w
CASES = [
    # layout, (C, H, W, F), (R, S), stride, pad, tiling, epilogue
    ("NHWC", (5, 7, 9, 19), (3, 3), 1, 1, SMALL, dict(bias=True, relu=True)),
    ("NCHW", (5, 7, 9, 19), (3, 3), 1, 1, SMALL, dict(bn=True, relu=True)),
    ("NHWC", (6, 9, 8, 10), (3, 3), 2, 1, SMALL, dict(bn=True)),
    ("NCHW", (6, 9, 8, 10), (3, 3), 2, 1, ConvTiling(3, 8, kc=2, blocks_outer=True),
     dict(bias=True)),
    ("NCHW", (3, 6, 6, 7), (3, 3), 1, 0, SMALL, dict(relu=True)),
    ("NCHW", (4, 6, 7, 5), (1, 3), 1, 1, SMALL, {}),
    ("NHWC", (8, 5, 6, 13), (1, 1), 1, 0, ConvTiling(3, 8, kc=2, blocks_outer=True), {}),
    ("NHWC", (4, 6, 7, 5), (1, 1), 2, 0, SMALL, dict(bias=True, bn=True, relu=True)),
    ("NCHW", (8, 5, 6, 12), (1, 1), 1, 0,
     ConvTiling(4, 8, vector="pixels", kc=2, blocks_outer=True), dict(relu=True)),
    ("NCHW", (8, 5, 6, 10), (1, 1), 1, 0,
     ConvTiling(4, 8, vector="pixels", kc=4, pixels_outer=False, pack_input=True), {}),
    ("NCHW", (7, 5, 6, 13), (1, 1), 1, 0, None, dict(bias=True, bn=True, relu=True)),
    ("NCHW", (12, 5, 6, 7), (1, 1), 1, 0, None, dict(bn=True)),
    ("NCHW", (4, 6, 7, 5), (1, 1), 2, 0, SMALL, {}),
    # weights packed per call one filter panel at a time, in a local buffer
    # (partial last panel: 19 = 2 x 8 + 3; channel blocks; a stride)
    ("NCHW", (6, 7, 9, 19), (3, 3), 1, 1, PANELS, dict(bn=True, relu=True)),
    ("NHWC", (6, 7, 9, 19), (3, 3), 1, 1, PANELS, dict(bias=True, relu=True)),
    ("NHWC", (5, 9, 8, 10), (3, 3), 2, 1, PANELS, dict(bn=True)),
    ("NCHW", (5, 6, 7, 9), (1, 3), 1, 1, PANELS, {}),
    ("NHWC", (6, 7, 9, 19), (3, 3), 1, 1, BLOCKS, dict(bn=True, relu=True)),
    ("NHWC", (4, 9, 8, 10), (3, 3), 2, 1, BLOCKS, dict(bias=True)),
    ("NHWC", (8, 5, 6, 13), (1, 1), 1, 0, BLOCKS, dict(bn=True, relu=True)),
    # the weights read in place: a partial last panel, channel blocks inside
    # and outside the tiles, filter panels outermost, strides
    ("NHWC", (6, 7, 9, 19), (3, 3), 1, 1, IN_PLACE, dict(bias=True, relu=True)),
    ("NHWC", (4, 9, 8, 10), (3, 3), 2, 1, replace(IN_PLACE, pixels_outer=False), dict(bn=True)),
    ("NHWC", (8, 5, 6, 13), (1, 1), 1, 0, replace(IN_PLACE, blocks_outer=True), {}),
    ("NHWC", (4, 6, 7, 5), (1, 1), 2, 0, IN_PLACE, dict(bias=True, bn=True, relu=True)),
]


@pytest.mark.parametrize("layout,size,window,stride,pad,tiling,flags", CASES)
def test_conv2d_matches_numpy(layout, size, window, stride, pad, tiling, flags):
    C, H, W, F = size
    conv = polyop.ops.conv2d(C, H, W, F, *window, stride=stride, pad=pad, layout=layout,
                             tiling=tiling, **flags)
    out, ref = run(conv, **flags)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_default_tiling_float32_float64_and_threads():
    # the default 6 x 16 tile with partial pixel tiles, two channel blocks of 64
    # (one thread: on several, weights of more than half a small L2 are
    # packed per filter panel, ConvTiling.structure)
    conv = polyop.ops.conv2d(128, 9, 10, 32, layout="NHWC", bn=True, relu=True, threads=1)
    nr = 2 * host().lanes("f32")  # rows of 2 cache lines or more read in place
    assert conv.tiling == ConvTiling(mr=register_rows(None, 2), nr=nr,
                                     weights_in_place=nr * 4 >= 128)
    out, ref = run(conv, bn=True, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)
    conv = polyop.ops.conv2d(6, 7, 5, 8, layout="NCHW", dtype="float64", threads=2)
    assert conv.tiling.nr == 2 * host().lanes("f64")  # two vectors of float64
    out, ref = run(conv, np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_weights_read_in_place_give_the_packed_results_bit_for_bit(threads):
    # the same sums in the same order, only where the weights are loaded from
    C, H, F = 16, 9, 40  # 40 filters: a partial panel of 8 after two of 16
    packed = ConvTiling(mr=5, nr=16, kc=8)
    outs = []
    for tiling in (packed, replace(packed, weights_in_place=True)):
        conv = polyop.ops.conv2d(C, H, H, F, layout="NHWC", bn=True, relu=True,
                                 tiling=tiling, threads=threads)
        assert ("Wp" in conv.schedule.stmts) != tiling.weights_in_place
        same = np.random.default_rng(5)  # the same arrays for both
        x, w, scale, shift = (same.standard_normal(n).astype(np.float32)
                              for n in ((H, H, C), (3, 3, C, F), F, F))
        out = np.full(conv.shape.arrays()["out"], np.nan, np.float32)
        conv(x, w, scale, shift, out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    ref = reference(x, w, "NHWC", 1, 1, scale=scale, shift=shift, relu=True)
    np.testing.assert_allclose(outs[1], ref, rtol=1e-4, atol=1e-4)


def test_nhwc_weights_are_read_in_place_where_a_tile_reads_two_lines_of_a_row():
    def default(C, H, F, R=3, target=AVX512, dtype="float32", **kw):
        return ConvTiling.default(ConvShape(C, H, H, F, R, R, 1, R // 2, "NHWC"), dtype,
                                  target=target, **kw)

    # (the L2 of skylake-avx512: 1 MiB)
    assert default(128, 28, 128).weights_in_place  # 32 floats: 128 bytes of a row
    t = default(128, 28, 128, threads=2)  # 590 KB, once packed per filter panel
    assert t.weights_in_place and not t.pack_in_nest and t.pixels_outer
    assert not ConvTiling.structure(ConvShape(128, 28, 28, 128, layout="NHWC"),
                                    threads=2, target=AVX512).pixels_outer
    assert default(64, 56, 64, dtype="float64").nr == 16  # 128 bytes of doubles
    assert default(64, 56, 64, dtype="float64").weights_in_place
    assert default(1024, 14, 256, R=1).weights_in_place  # 1 MiB: just fits
    assert not default(256, 14, 256, threads=2).weights_in_place  # 2.4 MB: packed
    assert not default(128, 28, 128, target=HASWELL).weights_in_place  # 64 bytes
    assert not default(128, 28, 128, packed_weights=True).weights_in_place
    assert not ConvTiling.default(ConvShape(128, 28, 28, 128), target=AVX512).weights_in_place


def test_default_tilings_follow_the_measured_choices():
    # (on AVX2, where they were measured; tests/test_target.py checks other CPUs)
    def gemm(C, H, F, threads=1):
        return ConvTiling.default(ConvShape(C, H, H, F, 1, 1, 1, 0, "NCHW"), threads=threads,
                                  target=HASWELL)

    small = gemm(1024, 14, 256)  # <= 1024 pixels: one block, pixel panels outside
    assert (small.vector, small.mr, small.nr, small.kc) == ("pixels", 4, 24, 1024)
    assert small.pixels_outer and small.pack_input
    # 2 threads: 13 panels of 16 pixels (7 on the busiest thread: 112 pixels)
    # rather than 9 of 24 (5: 120 pixels)
    two = gemm(1024, 14, 256, threads=2)
    assert (two.mr, two.nr, two.kc, two.pixels_outer, two.pack_input) == (6, 16, 1024, True, True)
    assert gemm(512, 28, 128, threads=2) == gemm(512, 28, 128)  # 17 x 24 vs 25 x 16 pixels
    assert gemm(40, 7, 13, threads=2).nr == 16  # 49 pixels: 2 x 16 rather than 2 x 24
    # 7 x 7 with many filters: 3 pixel panels for 2 threads, 512 filter panels to share
    wide = gemm(512, 7, 2048, threads=2)
    assert (wide.mr, wide.nr, wide.pixels_outer, wide.pack_input) == (4, 24, False, True)
    assert gemm(512, 7, 2048) == ConvTiling(mr=4, nr=24, vector="pixels", kc=512,
                                            pack_input=True)  # one thread: pixels outside
    shape = ConvShape(256, 14, 14, 1024, 1, 1, 1, 0, "NCHW")  # 5 panels of 48 on AVX-512
    assert not ConvTiling.default(shape, threads=2, target=AVX512).pixels_outer
    assert gemm(256, 14, 1024, threads=2).pixels_outer  # 9 panels of 24 on AVX2
    many = gemm(256, 56, 128)  # 22 filter panels for one thread: filter panels outside
    assert (many.mr, many.nr, many.kc, many.blocks_outer) == (6, 16, 256, True)
    assert many.pack_input and not many.pixels_outer
    assert gemm(64, 56, 256, threads=2) == gemm(64, 56, 256)  # 43 filter panels: enough
    few = gemm(256, 56, 128, threads=2)  # 11 per thread: pixel panels outside, input in place
    assert (few.mr, few.nr, few.kc) == (6, 16, 256)
    assert few.pixels_outer and not few.pack_input
    conv = polyop.ops.conv2d(3, 4, 5, 8, 1, pad=0, tiling=ConvTiling(
        mr=4, nr=24, vector="pixels", kc=3, pack_input=True))
    assert conv.schedule.stmts == ["out_init", "Wp", "Xp", "out"]
    # AVX-512 (measured there): 10 x 2 vectors, filter panels outside, input in place
    for threads in (1, 2):
        for C, H, F in ((1024, 14, 256), (512, 28, 128), (512, 7, 2048), (40, 7, 13)):
            t = ConvTiling.default(ConvShape(C, H, H, F, 1, 1, 1, 0, "NCHW"), threads=threads,
                                   target=AVX512)
            assert t == ConvTiling(mr=10, nr=32, vector="pixels", kc=128, pixels_outer=False)
    for layout in ("NCHW", "NHWC"):
        t = ConvTiling.default(ConvShape(64, 56, 56, 64, layout=layout), target=HASWELL)
        assert (t.vector, t.mr, t.nr, t.kc, t.blocks_outer) == ("filters", 6, 16, 64, False)


@pytest.mark.parametrize("threads", [1, 2])
def test_avx512_gemm_shaped_tiling_matches_numpy_on_any_host(threads):
    """The tiling ``ConvTiling.default`` picks on AVX-512 for NCHW 1 x 1 with
    few pixels, at the host's width: two blocks of channels, partial pixel
    and filter panels, a fused epilogue."""
    lanes = host().lanes("f32")
    tiling = ConvTiling(mr=10, nr=2 * lanes, vector="pixels", kc=128, pixels_outer=False)
    conv = polyop.ops.conv2d(256, 9, 9, 23, 1, pad=0, threads=threads, tiling=tiling,
                             bias=True, relu=True)
    out, ref = run(conv, bias=True, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("C,H,F,threads,flags", [
    (40, 9, 10, 1, dict(bias=True, relu=True)),  # <= 1024 pixels, a partial pixel panel
    (40, 9, 10, 2, dict(bn=True)),                # the same, pixel panels in parallel
    (40, 7, 13, 2, dict(relu=True)),  # 2 threads: 2-vector tiles, 4 panels (3 x 24: 2, 48 px)
    (64, 7, 80, 2, dict(bn=True)),    # 2 threads, few pixel panels: filter panels shared
    (512, 33, 13, 1, dict(bn=True, relu=True)),  # two blocks of 256, input in place
    (24, 33, 200, 2, {}),                        # filter panels outside (34), input packed
    (520, 33, 100, 1, dict(relu=True)),          # 520 channels: one block, input packed
])
def test_default_gemm_shaped_tilings_match_numpy(C, H, F, threads, flags):
    conv = polyop.ops.conv2d(C, H, H, F, 1, pad=0, threads=threads, **flags)
    t = conv.tiling
    assert t == ConvTiling.default(conv.shape, threads=threads)
    if t.pack_input:  # packed per pixel panel, inside its loop, or ahead of the whole nest
        outer = [lp.name for lp in conv.schedule.get_loops("Xp")][0]
        assert (outer == "q_outer") == t.pixels_outer
    out, ref = run(conv, **flags)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


def test_strided_projections_and_first_layers_get_three_vector_tiles():
    def default(C, F, R, stride, layout, target=HASWELL):
        return ConvTiling.default(ConvShape(C, 28, 28, F, R, R, stride, R // 2, layout),
                                  target=target)

    for layout in ("NCHW", "NHWC"):  # 1 x 1, stride 2: one block, per filter panel
        t = default(512, 1024, 1, 2, layout)
        assert (t.mr, t.nr, t.kc, t.pixels_outer, t.pack_in_nest) == (4, 24, 512, False, True)
        assert default(512, 1024, 1, 2, layout, AVX512).nr == 48  # 3 vectors of 16
        assert default(512, 256, 1, 1, layout) != t  # not at stride 1, fewer filters
        assert default(512, 512, 3, 2, layout).nr == 16  # nor for 3 x 3 windows
    stem = default(3, 64, 7, 2, "NCHW")  # fewer channels than lanes, NCHW only
    assert (stem.mr, stem.nr, stem.kc, stem.pixels_outer) == (4, 24, 3, True)
    assert default(3, 64, 7, 2, "NHWC").nr == 16
    # NHWC 1 x 1 with more filters than pixels (14 x 14, 7 x 7): the same, at stride 1
    for C, H, F in ((1024, 14, 256), (512, 7, 2048)):
        t = ConvTiling.default(ConvShape(C, H, H, F, 1, 1, 1, 0, "NHWC"), target=HASWELL)
        assert (t.mr, t.nr, t.kc, t.pixels_outer, t.pack_in_nest) == (4, 24, C, False, True)
    assert ConvTiling.default(ConvShape(1024, 14, 14, 256, 1, 1, 1, 0, "NHWC"),
                              target=AVX512).nr == 48
    assert ConvTiling.default(ConvShape(512, 28, 28, 256, 1, 1, 1, 0, "NHWC"),
                              target=HASWELL).nr == 16  # 784 pixels: 2 vectors
    # on AVX-512, 3-vector panels would pad 64 filters to 96: two vectors
    assert default(3, 64, 7, 2, "NCHW", AVX512).nr == 32
    assert default(512, 64, 1, 2, "NCHW", AVX512).nr == 32
    # NCHW, more output pixels than filters, 16 lanes: 2-vector tiles (longer
    # runs of a filter's pixels in the transposed store); AVX2 and NHWC keep 3
    def projection(layout, target):
        return ConvTiling.default(ConvShape(256, 56, 56, 512, 1, 1, 2, 0, layout),
                                  target=target)

    wide = projection("NCHW", AVX512)
    assert (wide.mr, wide.nr, wide.kc, wide.vector) == (14, 32, 256, "filters")
    assert projection("NHWC", AVX512).nr == 48 and projection("NCHW", HASWELL).nr == 24
    assert default(512, 1024, 1, 2, "NCHW", AVX512).nr == 48  # 196 pixels, 1024 filters


def test_strided_windows_onto_small_outputs_get_tiles_of_whole_rows():
    def default(C, H, F, stride, layout="NCHW", target=AVX512, threads=1):
        return ConvTiling.default(ConvShape(C, H, H, F, 3, 3, stride, 1, layout),
                                  threads=threads, target=target)

    for layout in ("NCHW", "NHWC"):
        for threads in (1, 2):  # 7 x 7 pixels: tiles of 7, not 14 (the last one half empty)
            assert default(512, 14, 512, 2, layout, threads=threads).mr == 7
        assert default(512, 7, 512, 1, layout).mr == 14  # stride 1: measured no gain
        assert default(128, 56, 128, 2, layout).mr == 14  # 784 pixels: whole tiles of 14
        assert default(512, 14, 512, 2, layout, HASWELL).mr == 6  # rows of 7 > 6 rows


def test_filter_panels_outermost_on_several_threads_only_where_the_input_stays_in_l2():
    """Weights filling most of a 1 MiB L2 (3 x 3, 128 -> 128: 590 KB), 2
    threads: each thread packs its own filter panels and reads the input once
    per panel, so only where the input fits the L2 (28 x 28: 400 KB), not
    where a stride-2 window reads 1.6 MB (56 x 56)."""
    def default(H, stride, layout, threads=2):  # the loop structure, weights packed
        return ConvTiling.structure(ConvShape(128, H, H, 128, 3, 3, stride, 1, layout),
                                    threads=threads, target=AVX512)

    for layout in ("NCHW", "NHWC"):
        assert not default(28, 1, layout).pixels_outer and default(28, 1, layout).pack_in_nest
        assert default(56, 2, layout).pixels_outer and not default(56, 2, layout).pack_in_nest
        assert default(28, 1, layout, threads=1).pixels_outer  # one thread: weights in L2


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_tiles_of_whole_output_rows_match_numpy(layout):
    """Tiles of one output row of 5 pixels (a 3 x 3 / 2 window onto 9 x 9),
    at 1 and 2 threads, with a partial filter panel."""
    lanes = host().lanes("f32")
    for threads in (1, 2):
        conv = polyop.ops.conv2d(24, 9, 9, lanes + 5, 3, stride=2, layout=layout,
                                 threads=threads, tiling=ConvTiling(mr=5, nr=lanes, kc=8),
                                 bias=True, relu=True)
        out, ref = run(conv, bias=True, relu=True)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_two_vector_strided_projection_matches_numpy(threads):
    """The NCHW stride-2 1 x 1 tiling chosen on AVX-512 at 56 x 56 (rows of
    the input picked, transposed; the output stored transposed), at a size
    with partial pixel tiles and filter panels, on the host."""
    lanes = host().lanes("f32")
    tiling = ConvTiling(mr=register_rows(host(), 2), nr=2 * lanes, kc=24)
    conv = polyop.ops.conv2d(24, 15, 15, 2 * lanes + 3, 1, stride=2, pad=0, layout="NCHW",
                             threads=threads, tiling=tiling, bn=True, relu=True)
    out, ref = run(conv, bn=True, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("C,H,F,R,stride,layout", [
    # 130 filters: 3-vector panels pad them by less than an eighth with 4, 8 or 16
    # lanes, and leave a partial panel
    (24, 13, 130, 1, 2, "NCHW"), (24, 13, 130, 1, 2, "NHWC"), (40, 9, 130, 1, 3, "NHWC"),
    (3, 19, 130, 7, 2, "NCHW"), (64, 5, 130, 1, 1, "NHWC")])
@pytest.mark.parametrize("threads", [1, 2])
def test_three_vector_default_tilings_match_numpy(C, H, F, R, stride, layout, threads):
    conv = polyop.ops.conv2d(C, H, H, F, R, stride=stride, layout=layout, threads=threads,
                             bn=True, relu=True)
    assert conv.tiling.nr == 3 * host().lanes("f32")  # partial filter panels: F % nr != 0
    out, ref = run(conv, bn=True, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


def test_weights_outgrowing_l2_are_packed_inside_the_nest():
    # (the L2 of each named CPU: 256 KiB on haswell, 1 MiB on skylake-avx512)
    def default(C, H, F, layout="NCHW", target=HASWELL, **kw):
        return ConvTiling.default(ConvShape(C, H, H, F, layout=layout), target=target, **kw)

    t = default(256, 14, 256)  # NCHW: 2.4 MB of weights, a panel of 16 filters 147 KB
    assert t.pack_in_nest and not t.pixels_outer and not t.blocks_outer
    assert not default(256, 14, 256, packed_weights=True).pack_in_nest  # no copy to place
    assert not default(64, 56, 64).pack_in_nest    # 147 KB of weights: in L2 already
    assert not default(512, 7, 512).pack_in_nest   # a panel (295 KB) outgrows 256 KiB
    assert default(512, 7, 512, target=AVX512).pack_in_nest  # 590 KB panels, 1 MiB L2
    def one(C, H, F, **kw):
        return ConvTiling.default(ConvShape(C, H, H, F, 1, 1, 1, 0, "NHWC"), **kw)

    # 1 x 1 NHWC with more pixels than filters, on one thread: blocks of channels
    # whose weights fill half the L2
    assert (one(1024, 28, 256, target=HASWELL).kc, one(2048, 28, 512, target=AVX512).kc) \
        == (128, 256)
    assert not one(1024, 28, 256, target=AVX512).pack_in_nest  # 1 MB: fits a 1 MiB L2
    assert one(1024, 28, 256, target=HASWELL).pack_in_nest
    assert not one(512, 28, 128, target=HASWELL).pack_in_nest  # 256 KB: fits L2
    # on several threads: per filter panel, each packed by the thread running its tiles
    t = one(1024, 28, 256, target=HASWELL, threads=2)
    assert t.pack_in_nest and not t.pixels_outer and not t.blocks_outer
    assert not one(1024, 28, 256, target=HASWELL, threads=2, packed_weights=True).pack_in_nest
    # NHWC on one thread: blocks of channels outside the tiles, a block of
    # weights at most twice the L2
    t = default(512, 7, 512, "NHWC")
    assert t.pack_in_nest and t.blocks_outer and t.kc * 512 * 9 * 4 <= 2 * 256 * 1024
    assert default(512, 7, 512, "NHWC", target=AVX512).kc == 64  # 1.2 MB <= 2 MiB
    t = default(256, 14, 256, "NHWC", threads=2)  # several threads: per filter panel
    assert t.pack_in_nest and not t.blocks_outer and not t.pixels_outer
    # the copy inside the filter-panel loop (into a buffer of one panel), or
    # inside the loop over channel blocks (a buffer of one block, the rows of
    # w read whole), on 1 and 2 threads, against numpy
    panels = ConvTiling(mr=3, nr=8, kc=4, pixels_outer=False, pack_in_nest=True)
    blocks = ConvTiling(mr=3, nr=8, kc=4, pixels_outer=False, blocks_outer=True,
                        pack_in_nest=True)
    for layout, tiling, threads, buffer in [("NCHW", panels, 2, "Wp[1][2][36][8]"),
                                            ("NHWC", panels, 2, "Wp[1][2][3][3][4][8]"),
                                            ("NHWC", blocks, 1, "Wp[4][1][3][3][4][8]"),
                                            ("NHWC", blocks, 2, "Wp[4][1][3][3][4][8]")]:
        conv = polyop.ops.conv2d(8, 5, 6, 27, layout=layout, bn=True, relu=True,
                                 tiling=tiling, threads=threads)
        text = str(polyop.lower(conv.schedule))
        assert f"float {buffer};" in text, text
        outer = "for (c_outer" if tiling.blocks_outer else "for (f_outer"
        copy = re.search(r"\n\s*(scatter\()?Wp\[.* = ", text)
        assert copy and text.index(outer) < copy.start() < text.index("for (p_outer"), text
        out, ref = run(conv, bn=True, relu=True)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_weights_filling_most_of_l2_on_several_threads_are_packed_by_their_thread():
    # 3 x 3 128 -> 128: 590 KB of weights, more than half of a 1 MiB L2
    def default(C, F, threads, **kw):
        return ConvTiling.default(ConvShape(C, 28, 28, F), threads=threads, target=AVX512,
                                  **kw)

    t = default(128, 128, 2)  # 4 panels of 32 filters, 2 a thread
    assert t.pack_in_nest and not t.pixels_outer
    assert not default(128, 128, 1).pack_in_nest  # one thread: packed ahead, as before
    assert not default(128, 128, 3).pack_in_nest  # 4 panels do not split in 3
    assert not default(128, 128, 2, packed_weights=True).pack_in_nest
    assert not default(64, 64, 2).pack_in_nest  # 147 KB: a small part of the L2
    conv = polyop.ops.conv2d(16, 7, 7, 64, threads=2, bn=True, relu=True,
                             tiling=ConvTiling(mr=3, nr=16, pixels_outer=False,
                                               pack_in_nest=True))
    out, ref = run(conv, bn=True, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_packed_weights_outgrowing_l2_run_filter_panels_outermost():
    # weights packed at set-up of more than twice the L2, a panel of them in
    # L2: filter panels outermost, so the weights are read from memory once
    def default(C, H, F, layout="NCHW", target=HASWELL, **kw):
        return ConvTiling.default(ConvShape(C, H, H, F, layout=layout), target=target,
                                  packed_weights=True, **kw)

    for layout in ("NCHW", "NHWC"):
        t = default(256, 14, 256, layout)  # 2.4 MB of weights, 147 KB per panel of 16
        assert not t.pixels_outer and not t.pack_in_nest and not t.blocks_outer
        assert not default(256, 14, 256, layout, threads=2).pixels_outer
        assert not default(512, 7, 512, layout, target=AVX512).pixels_outer  # 590 KB panels
    assert default(512, 7, 512).pixels_outer  # a panel (295 KB) outgrows Haswell's 256 KiB
    assert default(64, 56, 64).pixels_outer   # 147 KB of weights: in L2 already
    assert default(512, 7, 512, target=AVX512).nr == 32
    # odd sizes (a partial filter panel, partial pixel tiles, channel blocks),
    # 1 and 2 threads, against numpy
    tiling = ConvTiling(mr=3, nr=8, kc=4, pixels_outer=False)
    for layout, threads in [("NCHW", 1), ("NHWC", 2), ("NCHW", 2)]:
        conv = polyop.ops.conv2d(8, 5, 7, 19, layout=layout, bias=True, relu=True,
                                 packed_weights=True, tiling=tiling, threads=threads)
        names = [lp.name for lp in conv.schedule.get_loops("conv")]
        assert names.index("f_outer") < names.index("p_outer"), names
        dims = conv.shape.arrays()
        x = rng.standard_normal(dims["x"]).astype(np.float32)
        w = rng.standard_normal(dims["w"]).astype(np.float32)
        scale, shift = (rng.standard_normal(19).astype(np.float32) for _ in range(2))
        out = np.full(dims["out"], np.nan, np.float32)
        conv(x, conv.pack_weights(w, scale), shift, out)
        ref = reference(x, w, layout, 1, 1, scale=scale, shift=shift, relu=True)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_nhwc_1x1_weights_packed_per_filter_panel_on_several_threads():
    # the tiling ConvTiling.default picks for NHWC 1 x 1 weights outgrowing
    # L2 on several threads, at odd sizes (13 filters: a partial panel), on
    # 1 and 2 threads, against numpy
    tiling = ConvTiling(mr=3, nr=8, kc=4, pixels_outer=False, pack_in_nest=True)
    for threads in (1, 2):
        conv = polyop.ops.conv2d(8, 5, 7, 13, 1, pad=0, layout="NHWC", bn=True, relu=True,
                                 tiling=tiling, threads=threads)
        text = str(polyop.lower(conv.schedule))
        assert "float Wp[1][2][1][1][4][8];" in text, text  # one panel, two blocks
        out, ref = run(conv, bn=True, relu=True)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_fused_epilogue_runs_per_tile_and_the_kernel_uses_fma():
    conv = polyop.ops.conv2d(16, 8, 8, 32, layout="NHWC", bias=True, relu=True,
                             tiling=ConvTiling(mr=6, nr=16))
    sch = conv.schedule
    assert sch.stmts == ["xp", "conv_init", "Wp", "conv", "out"]
    names = [lp.name for lp in sch.get_loops("out")]
    assert names[:2] == ["p_outer", "f_outer"]  # inside the tile: one pass over the output
    assert [lp.name for lp in sch.get_loops("conv")][:2] == names[:2]
    haswell = polyop.ops.conv2d(16, 8, 8, 32, layout="NHWC", bias=True, relu=True,
                                target=HASWELL)
    assert re.search(r"vfmadd231ps\t%ymm", haswell.asm)
    assert conv.arg_names == ("x", "w", "bias", "out")


def test_argument_errors():
    conv = polyop.ops.conv2d(3, 6, 6, 4, layout="NCHW", bias=True)
    x = np.ones((3, 6, 6), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    b = np.ones(4, np.float32)
    out = np.empty((4, 6, 6), np.float32)
    conv(x, w, b, out)
    assert out[0, 2, 3] == 28.0 and out[0, 0, 0] == 13.0  # 3 channels x 9 taps + 1, or x 4 + 1
    with pytest.raises(ArgumentError, match="takes 4 arrays"):
        conv(x, w, out)
    with pytest.raises(ArgumentError, match=r"argument w: shape \(3, 4, 3, 3\)"):
        conv(x, np.ones((3, 4, 3, 3), np.float32), b, out)
    with pytest.raises(ArgumentError, match="argument x: dtype float64"):
        conv(x.astype(np.float64), w, b, out)
    with pytest.raises(ArgumentError, match="argument bias: expected a numpy array"):
        conv(x, w, [1.0] * 4, out)
    with pytest.raises(ArgumentError, match="C-contiguous"):
        conv(np.ones((6, 6, 3), np.float32).transpose(2, 0, 1), w, b, out)
    with pytest.raises(ArgumentError, match="read-only"):
        frozen = out.copy()
        frozen.flags.writeable = False
        conv(x, w, b, frozen)
    with pytest.raises(ArgumentError, match="overlap"):
        conv(out.reshape(-1)[:108].reshape(3, 6, 6), w, b, out)  # x inside out


@pytest.mark.parametrize("kwargs,message", [
    (dict(C=0), "C must be a positive int"),
    (dict(pad=-1), "pad must be a non-negative int"),
    (dict(layout="NCWH"), "layout must be one of"),
    (dict(H=2, W=2, pad=0), "does not fit"),
    (dict(dtype="int32"), "float32 or float64"),
    (dict(tiling=ConvTiling(vector="pixels")), "along 'pixels' for an NCHW 1x1"),
    (dict(R=1, pad=0, tiling=ConvTiling(pack_input=True)), "pack_input needs"),
    (dict(tiling=ConvTiling(pack_in_nest=True)), "pack_in_nest needs"),
    # blocks outermost, but kc = C leaves one block: nothing to pack per block
    (dict(C=8, tiling=ConvTiling(kc=8, blocks_outer=True, pack_in_nest=True)),
     "pack_in_nest needs"),
    (dict(R=1, pad=0, tiling=ConvTiling(vector="pixels", pixels_outer=False, pack_in_nest=True)),
     "pack_in_nest needs"),
    (dict(tiling=ConvTiling(weights_in_place=True)), "weights_in_place needs layout='NHWC'"),
    (dict(layout="NHWC", tiling=ConvTiling(pixels_outer=False, pack_in_nest=True,
                                           weights_in_place=True)), "no pack_in_nest"),
])
def test_bad_parameters_are_refused(kwargs, message):
    args = dict(C=3, H=6, W=6, F=4) | kwargs
    with pytest.raises(ValueError, match=message):
        polyop.ops.conv2d(**args)


PACKED = [  # layout, (C, H, W, F), (R, S), stride, pad, tiling
    ("NHWC", (5, 7, 9, 19), (3, 3), 1, 1, SMALL),
    ("NCHW", (6, 9, 8, 10), (3, 3), 2, 1, ConvTiling(3, 8, kc=2, blocks_outer=True)),
    ("NCHW", (128, 5, 6, 20), (3, 3), 1, 1, None),  # two channel blocks, a partial panel
    ("NHWC", (8, 5, 6, 13), (1, 1), 1, 0, ConvTiling(3, 8, kc=2, blocks_outer=True)),
    ("NCHW", (8, 5, 6, 10), (1, 1), 1, 0,
     ConvTiling(4, 8, vector="pixels", kc=4, pixels_outer=False, pack_input=True)),
    ("NCHW", (12, 5, 6, 7), (1, 1), 1, 0, None),  # vectors along pixels: panels of mr filters
]


@pytest.mark.parametrize("layout,size,window,stride,pad,tiling", PACKED)
def test_packed_weights_with_the_batch_norm_scale_folded(layout, size, window, stride, pad,
                                                         tiling):
    C, H, W, F = size
    kw = dict(stride=stride, pad=pad, layout=layout, tiling=tiling)
    conv = polyop.ops.conv2d(C, H, W, F, *window, bias=True, relu=True, packed_weights=True,
                             **kw)
    assert "Wp" not in conv.schedule.stmts  # nothing copied per call
    dims = conv.shape.arrays()
    x = rng.standard_normal(dims["x"]).astype(np.float32)
    w = rng.standard_normal(dims["w"]).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, F).astype(np.float32)
    shift = rng.standard_normal(F).astype(np.float32)
    out = np.full(dims["out"], np.nan, np.float32)
    conv(x, conv.pack_weights(w, scale), shift, out)
    ref = reference(x, w, layout, stride, pad, scale=scale, shift=shift, relu=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    # the same packing as the copy the unpacked operator makes on every call
    plain = polyop.ops.conv2d(C, H, W, F, *window, **kw)
    out2 = np.full(dims["out"], np.nan, np.float32)
    plain(x, w, out2)
    packed = polyop.ops.conv2d(C, H, W, F, *window, packed_weights=True, **kw)
    packed(x, packed.pack_weights(w), out)
    np.testing.assert_array_equal(out, out2)


def test_packed_weights_errors():
    # 20 filters in panels of 2 vectors (16 on AVX2, 32 on AVX-512): the last padded
    conv = polyop.ops.conv2d(5, 6, 6, 20, layout="NHWC", packed_weights=True)
    nr = conv.tiling.nr
    panels = -(-20 // nr)
    w = np.ones((3, 3, 5, 20), np.float32)
    wp = conv.pack_weights(w)
    assert wp.shape == (panels, 3, 3, 5, nr)
    assert wp[-1, :, :, :, 20 - (panels - 1) * nr:].max() == 0  # the padding
    x, out = np.ones((6, 6, 5), np.float32), np.empty((6, 6, 20), np.float32)
    with pytest.raises(ArgumentError, match=rf"argument w: shape \(3, 3, 5, 20\) does not "
                                            rf"match \({panels}, 3, 3, 5, {nr}\)"):
        conv(x, w, out)  # unpacked weights
    with pytest.raises(ArgumentError, match=r"pack_weights: w has shape \(20, 5, 3, 3\), "
                                            r"expected \(3, 3, 5, 20\)"):
        conv.pack_weights(np.ones((20, 5, 3, 3), np.float32))
    with pytest.raises(ArgumentError, match=r"scale has shape \(5,\), expected \(20,\)"):
        conv.pack_weights(w, np.ones(5, np.float32))
