"""``polyop.Target``: parsing, the facts derived from LLVM, cross-compilation
(the micro-kernel's assembly on named CPUs, whatever the host is), operators
tiled for the target, and export of a kernel linked into a C program."""

import os
import pickle
import re
import shutil
import subprocess

import llvmlite.binding as llvm
import numpy as np
import pytest

import polyop
from polyop.codegen import compile_function
from polyop.export import compiled_kernel
from polyop.ops import ConvShape, ConvTiling, MatmulTiling
from polyop.target import CACHES, DEFAULT_CACHES, as_target, host

X86 = "cpu -mtriple=x86_64-linux-gnu -mcpu="
ARM = "cpu -mtriple=aarch64-linux-gnu -mcpu="
HASWELL, SKYLAKE_X, ZEN4, ZEN5 = (X86 + c for c in ("haswell", "skylake-avx512", "znver4",
                                                   "znver5"))
NEOVERSE_V2, APPLE_M1 = ARM + "neoverse-v2", ARM + "apple-m1"
#: a CPU that is certainly not this one
OTHER = NEOVERSE_V2 if llvm.get_process_triple().startswith("x86_64") else HASWELL


@polyop.kernel
def axpy(n: int, a: "f32", x: "f32[n]", y: "f32[n]"):
    for i in range(n):
        y[i] += a * x[i]


@polyop.kernel
def gemm(ni: int, nj: int, nk: int, alpha: "f64", beta: "f64",
         C: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]"):
    for i in range(ni):
        for j in range(nj):
            C[i, j] *= beta
        for k in range(nk):
            for j in range(nj):
                C[i, j] += alpha * A[i, k] * B[k, j]


# -- parsing -----------------------------------------------------------------------------


def test_host_is_the_default_everywhere():
    t = polyop.Target("cpu")
    assert t == host() == as_target(None) == as_target("cpu") == polyop.Target()
    assert t.is_host and t.kind == "cpu"
    assert t.triple == llvm.get_process_triple() and t.cpu == llvm.get_host_cpu_name()
    assert t.cores >= 1
    assert as_target(t) is t
    assert polyop.build(axpy).target == t


def test_named_cpu_string_round_trips():
    t = polyop.Target(X86 + "znver5 -mattr=-avx512f,+fma -num-cores=8")
    assert (t.triple, t.cpu, t.attrs, t.cores) == ("x86_64-unknown-linux-gnu", "znver5",
                                                   ("-avx512f", "+fma"), 8)
    assert str(t) == ("cpu -mtriple=x86_64-unknown-linux-gnu -mcpu=znver5 "
                      "-mattr=-avx512f,+fma -num-cores=8")
    assert polyop.Target(str(t)) == t and hash(polyop.Target(str(t))) == hash(t)
    assert pickle.loads(pickle.dumps(t)) == t
    assert polyop.Target("llvm -mtriple=x86_64-linux-gnu -mcpu=znver5 -mattr=-avx512f,+fma "
                         "-num-cores=8") == t  # TVM's kind name
    with pytest.raises(AttributeError, match="immutable"):
        t.cpu = "haswell"


def test_feature_edits_apply_to_the_host():
    t = polyop.Target("cpu -mattr=-avx2")
    assert t.is_host  # removing features still runs here
    assert "-avx2" in t.features.split(",") and "+avx2" not in t.features.split(",")
    assert t.triple == host().triple and t.cpu == host().cpu


def test_removing_avx512f_from_an_avx512_host_leaves_256_bit_vectors(monkeypatch):
    """On a Zen 4 host (LLVM's sorted feature list puts ``+avx512vl`` after
    ``avx512f``), ``-mattr=-avx512f`` must not be undone by the features
    that imply it: 256-bit vectors and 16 registers, as on AVX2."""
    import polyop.target as tm

    features = ("+avx,+avx2,+avx512bw,+avx512cd,+avx512dq,+avx512f,+avx512vl,+avx512vnni,"
                "+fma,+sse4.2")
    monkeypatch.setattr(tm, "_host_info", ("x86_64-unknown-linux-gnu", "znver4", features))
    assert polyop.Target("cpu").vector_bits == 512
    t = polyop.Target("cpu -mattr=-avx512f")
    assert (t.vector_bits, t.vector_registers, t.lanes("f32")) == (256, 16, 8)
    assert t.features.endswith("-avx512f")


@pytest.mark.parametrize("spec, match", [
    ("gpu", r"unknown kind 'gpu' \(known: cpu, cuda, opencl\)"),
    ("", "empty target string"),
    ("cpu -mcpu=nonesuch", "LLVM knows no CPU 'nonesuch' for x86_64"),
    (X86 + "haswell -mattr=+nonesuch", "LLVM knows no feature 'nonesuch'"),
    ("cpu -mattr=avx2", "-mattr entry 'avx2': expected \\+feature or -feature"),
    ("cpu -march=haswell", "unknown option '-march=haswell'"),
    ("cpu -mcpu", r"option -mcpu needs a value"),
    ("cpu -mcpu=haswell -mcpu=znver4", "option -mcpu given twice"),
    ("cpu -mtriple=aarch64-linux-gnu", "name its CPU with -mcpu="),
    ("cpu -mtriple=riscv64-linux-gnu -mcpu=x", "supports x86_64 and aarch64"),
    (ARM + "haswell", "LLVM knows no CPU 'haswell' for aarch64"),
    ("cpu -num-cores=0", "-num-cores=0: expected a positive integer"),
])
def test_bad_targets_are_named(spec, match):
    if "-mcpu=nonesuch" in spec and not host().triple.startswith("x86_64"):
        spec = X86 + "nonesuch"
    with pytest.raises(polyop.TargetError, match=match):
        polyop.Target(spec)


def test_target_error_is_a_polyop_and_value_error():
    with pytest.raises(ValueError):
        as_target("cpu -mcpu=nonesuch -mtriple=x86_64-linux-gnu")
    with pytest.raises(polyop.PolyopError, match="expected a target"):
        as_target(42)


# -- facts read from LLVM ------------------------------------------------------------------


@pytest.mark.parametrize("spec, bits, registers, fma", [
    (HASWELL, 256, 16, True),
    (SKYLAKE_X, 512, 32, True),
    (ZEN4, 512, 32, True),
    (ZEN5, 512, 32, True),
    (ZEN5 + " -mattr=-avx512f", 256, 16, True),
    (X86 + "sandybridge", 256, 16, False),  # AVX without FMA
    (X86 + "x86-64", 128, 16, False),  # SSE2 only
    (NEOVERSE_V2, 128, 32, True),
    (APPLE_M1, 128, 32, True),
    ("cpu -mtriple=arm64-apple-darwin -mcpu=apple-m1", 128, 32, True),
])
def test_vector_facts(spec, bits, registers, fma):
    t = polyop.Target(spec)
    assert (t.vector_bits, t.vector_registers, t.has_fma) == (bits, registers, fma)
    assert [t.lanes(d) for d in ("f32", "f64", "i32", "i64")] == \
        [bits // 32, bits // 64, bits // 32, bits // 64]
    assert t.lanes(np.float32) == t.lanes(polyop.f32) == t.lanes("float32") == bits // 32
    assert not t.is_host or t.cpu == host().cpu


def test_lanes_of_an_unknown_type():
    with pytest.raises(polyop.TargetError, match="unknown element type 'f16'"):
        polyop.Target(HASWELL).lanes("f16")


def test_caches():
    assert polyop.Target(ZEN5).caches == CACHES["znver5"]
    assert polyop.Target(NEOVERSE_V2).l1d == 64 * 1024
    assert polyop.Target(X86 + "x86-64").caches == DEFAULT_CACHES  # not in the table
    l1, l2, l3 = host().caches  # the OS's
    assert 4096 <= l1 <= l2 and l2 > 0 and l3 > 0


def test_c_flags_follow_the_target():
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    assert polyop.Target(HASWELL + " -mattr=-fma").c_flags() == ("-march=haswell", "-mno-fma")
    assert "native" not in " ".join(polyop.Target(HASWELL).c_flags())
    with pytest.raises(polyop.TargetError, match="C compiler 'false' does not accept "
                                                  "-march=haswell"):
        polyop.Target(HASWELL).c_flags("false")


# -- cross-compiling -----------------------------------------------------------------------

#: a loop that is one basic block ending in a branch back to its label (x86, AArch64)
LOOP = re.compile(r"\n(\.LBB\d+_\d+):[^\n]*\n((?:\t[^\n]*\n)+?)\t(?:j\w+|b\.\w+|cbnz\t\w+,|b)"
                  r"\s+\1\n")
FMA = re.compile(r"\tvfmadd\d+ps\t|\tfmla\t")
#: a full-width FMA on registers only, per kind of vector unit
FULL = {"ymm": r"\tvfmadd\d+ps\t%ymm\d+, %ymm\d+, %ymm\d+\n",
        "zmm": r"\tvfmadd\d+ps\t%zmm\d+, %zmm\d+, %zmm\d+\n",
        "neon": r"\tfmla\tv\d+\.4s, v\d+\.4s, v\d+\.(?:4s|s\[\d\])\n"}
def hot_loop(asm: str) -> str:
    """The one-block loop with the most FMAs: the micro-kernel's k loop."""
    return max((body for _, body in LOOP.findall(asm)), key=lambda b: len(FMA.findall(b)))


@pytest.mark.parametrize("spec, unit", [
    (HASWELL, "ymm"),
    (SKYLAKE_X, "zmm"),
    (ZEN4, "zmm"),
    (NEOVERSE_V2, "neon"),
    (APPLE_M1, "neon"),
])
def test_matmul_micro_kernel_on_named_cpus(spec, unit):
    """Cross-compiled for ``spec``: the k loop of the register tile holds its
    ``mr · nr / lanes`` accumulators in registers — that many full-width FMAs
    on registers, no stack traffic — and nothing is gathered or scattered."""
    t = polyop.Target(spec)
    # M a multiple of the tile's rows: no partial row tile, whose k loop LLVM
    # may unroll further, competes for the hottest loop
    rows = polyop.ops.MatmulTiling.default("float32", 96, 96, 1, t).mr
    mm = polyop.ops.matmul(7 * rows, 96, 96, threads=1, target=t)
    assert mm.target == t  # compiled for the CPU named, whatever the host is
    tile = mm.tiling.mr * mm.tiling.nr // t.lanes("f32")
    assert tile == mm.tiling.mr * 2  # two registers wide
    asm = mm.asm
    assert not re.search(r"\tv(gather|scatter)", asm)
    body = hot_loop(asm)
    assert len(re.findall(FULL[unit], body)) == len(FMA.findall(body)) == tile
    assert not re.search(r"\(%rsp\)|\[sp", body)  # no spills


def test_cross_compiled_kernel_is_not_callable():
    f = polyop.build(axpy, target=OTHER)
    assert isinstance(f, polyop.export.CrossCompiledKernel)
    assert f.target == polyop.Target(OTHER) and not f.target.is_host
    assert "polyop_axpy" in f.llvm_ir and f.asm
    assert (f.target.arch == "aarch64") == ("fmul\tv" in f.asm or "fmla\tv" in f.asm)
    x, y = np.ones(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(polyop.TargetError, match=r"axpy was compiled for cpu -mtriple=.* not "
                                                  r"for this machine"):
        f(4, 2.0, x, y)
    assert not y.any()


def _vmulpd_widths(asm: str) -> set[str]:
    """The register widths (x, y, z) of the vector multiplies in ``asm``."""
    return {w for line in asm.splitlines() if re.match(r"\s+vmulpd\s", line)
            for w in re.findall(r"%([xyz])mm", line)}


@pytest.mark.parametrize("spec, plain, autovec", [(ZEN4, "ymm", 256), (ZEN5, "zmm", 512),
                                                  (HASWELL, "ymm", 256)])
def test_loops_left_to_llvm_take_the_targets_autovec_width(spec, plain, autovec):
    # Zen 4 runs 512-bit operations in two halves: LLVM's vectorizer is asked
    # for 256-bit vectors there; a vectorize loop keeps the full width, in
    # the same function as a loop left to LLVM
    t = polyop.Target(spec)
    assert t.autovec_bits == autovec
    f = polyop.build(gemm, target=spec)
    assert ('"prefer-vector-width"' in f.llvm_ir) == (autovec < t.vector_bits)
    widths = _vmulpd_widths(f.asm)
    assert plain[0] in widths and ("z" in widths) == (plain == "zmm")
    sch = polyop.Schedule(gemm)
    sch.vectorize(sch.get_loops("S1")[-1])  # C *= beta (S0) is left to LLVM
    f = polyop.build(sch, target=spec)
    split = autovec < t.vector_bits
    assert ('"prefer-vector-width"' in f.llvm_ir) == split
    assert (f'"min-legal-vector-width"="{t.vector_bits}"' in f.llvm_ir) == split
    widths = _vmulpd_widths(f.asm)
    # S0's product in LLVM's width, S1's in the target's
    assert plain[0] in widths and ("z" in widths) == (t.vector_bits == 512)


@polyop.kernel
def smooth(n: int, steps: int, a: "f64[n]", b: "f64[n]"):
    for t in range(steps):
        for i in range(1, n - 1):
            b[i] = 0.33333 * (a[i - 1] + a[i] + a[i + 1])
        for i in range(1, n - 1):
            a[i] = 0.33333 * (b[i - 1] + b[i] + b[i + 1])


@pytest.mark.parametrize("spec", [ZEN4, HASWELL, None])
def test_stencil_neighbours_are_loaded_not_carried_through_shuffles(spec):
    """LLVM's load PRE across iterations would forward a[i + 1] to the next
    iterations' a[i - 1]: a recurrence the vectoriser carries from vector to
    vector through shuffles (``vector.recur``), slower than loading it
    again; ``polyop.target.optimize`` turns it off for its own pipeline."""
    f = polyop.build(polyop.Schedule(smooth), target=spec)
    assert "vector.recur" not in f.llvm_ir and re.search(r"<\d+ x double>", f.llvm_ir)
    if spec is None:  # the host: CPython's result
        rng = np.random.default_rng(3)
        a, b = rng.random(37), np.zeros(37)
        want_a, want_b = a.copy(), b.copy()
        smooth.py_func(37, 3, want_a, want_b)
        f(37, 3, a, b)
        np.testing.assert_allclose(a, want_a, rtol=1e-15)
        np.testing.assert_allclose(b, want_b, rtol=1e-15)


def test_lower_records_the_target_and_compile_function_follows_it():
    fn = polyop.lower(axpy, target=OTHER)
    assert fn.meta["target"] == polyop.Target(OTHER)
    assert compile_function(fn).target == polyop.Target(OTHER)
    assert polyop.lower(axpy).meta["target"] == host()


def test_operators_for_another_cpu():
    mm = polyop.ops.matmul(32, 32, 32, threads=1, target=OTHER)
    conv = polyop.ops.conv2d(8, 6, 6, 16, threads=1, target=OTHER)
    for op in (mm, conv):
        assert op.target == polyop.Target(OTHER) and op.asm and op.llvm_ir
    with pytest.raises(polyop.TargetError, match="compiled for"):
        mm(*(np.zeros((32, 32), np.float32) for _ in range(3)))
    with pytest.raises(polyop.TargetError, match="compiled for"):
        conv(np.zeros((8, 6, 6), np.float32), np.zeros((16, 8, 3, 3), np.float32),
             np.zeros((16, 6, 6), np.float32))
    n = polyop.var("n")
    A = polyop.placeholder((n,), "float32", name="A")
    B = polyop.compute((n,), lambda i: A[i] * 2.0, name="B")
    te_fn = polyop.build(B, [A, B], target=OTHER)
    with pytest.raises(polyop.TargetError, match="B was compiled for"):
        te_fn(np.ones(3, np.float32), np.ones(3, np.float32))


# -- operators tiled for the target ---------------------------------------------------------


@pytest.mark.parametrize("spec, f32, f64", [
    (HASWELL, (6, 16), (6, 8)),  # as measured on AVX2: 12 + 2 + 1 of 16 registers
    (SKYLAKE_X, (14, 32), (14, 16)),  # 28 + 2 + 1 of 32 zmm
    (ZEN5, (14, 32), (14, 16)),
    (NEOVERSE_V2, (14, 8), (14, 4)),
])
def test_register_tiles_follow_the_registers(spec, f32, f64):
    t = polyop.Target(spec)
    for dtype, want in (("float32", f32), ("float64", f64)):
        tiling = MatmulTiling.default(dtype, 1000, 1000, 1, t)
        assert (tiling.mr, tiling.nr) == want
        lanes = t.lanes(dtype)
        used = tiling.mr * tiling.nr // lanes + tiling.nr // lanes + 1
        assert used <= t.vector_registers < used + tiling.nr // lanes  # no room for a row more


def test_avx2_tilings_are_the_measured_ones():
    t = polyop.Target(X86 + "znver3")  # an AVX2 CPU with the L2 they were measured with
    assert MatmulTiling.default("float32", 1000, 1000, 1, t) == MatmulTiling(
        mr=6, nr=16, kc=1024, mb=16, pack_a=False, columns_outer=False)
    assert MatmulTiling.default("float32", 2048, 2048, 2, t) == MatmulTiling(
        mr=4, nr=24, kc=2048, mb=16, pack_a=False, columns_outer=True)
    assert MatmulTiling.default("float32", 1024, 1024, 2, t) == MatmulTiling(
        mr=6, nr=16, kc=1024, mb=16, pack_a=True, columns_outer=False)
    assert MatmulTiling.default("float64", 1000, 1000, 1, t).kc == 512
    gemm_like = ConvShape(256, 56, 56, 64, 1, 1, 1, 0, "NCHW")
    assert ConvTiling.default(gemm_like, "float32", 1, t) == ConvTiling(
        mr=6, nr=16, vector="pixels", kc=256, blocks_outer=True, pixels_outer=True,
        pack_input=False)
    assert ConvTiling.default(ConvShape(64, 56, 56, 64, layout="NHWC"), "float32", 1, t) \
        == ConvTiling(mr=6, nr=16)
    # a smaller L2 (Haswell's 256 KiB) holds fewer row panels
    assert MatmulTiling.default("float32", 1000, 1000, 1, HASWELL).mb == 8


def test_conv_tiles_on_avx512():
    t = polyop.Target(SKYLAKE_X)
    tiling = ConvTiling.default(ConvShape(64, 56, 56, 64, layout="NHWC"), "float32", 1, t)
    assert (tiling.mr, tiling.nr) == (14, 32)
    small = ConvTiling.default(ConvShape(512, 14, 14, 128, 1, 1, 1, 0, "NCHW"), "float32", 1, t)
    assert (small.mr, small.nr, small.vector, small.pixels_outer) == (10, 32, "pixels", False)


def test_threads_default_to_the_runtime_count():
    from polyop.codegen.parallel import get_num_threads, set_num_threads

    before = get_num_threads()
    try:
        set_num_threads(2)
        par = polyop.ops.matmul(64, 64, 64)
        assert "polyop_rt_parallel_for" in par.llvm_ir
        assert "polyop_rt_parallel_for" not in polyop.ops.matmul(64, 64, 64, threads=1).llvm_ir
        set_num_threads(1)
        assert "polyop_rt_parallel_for" not in polyop.ops.matmul(64, 64, 64).llvm_ir
        with pytest.raises(polyop.PolyopError, match="threads"):
            polyop.ops.matmul(8, 8, 8, threads=0)
    finally:
        set_num_threads(before)


# -- export: object files, shared libraries, C headers ---------------------------------------


def c_driver(kernel, sizes: dict, scalars: dict, arrays: dict, threads: int) -> str:
    """A C program that reads each array from ``<name>.bin``, calls the
    kernel through its exported header, and writes each array back to
    ``<name>.out``; scratch arrays are allocated with the header's shape."""
    fn = compiled_kernel(kernel).function  # the loop IR: the native parameters
    c_type = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}
    lines = ["#include <stdio.h>", "#include <stdlib.h>", '#include "kernel.h"',
             "int main(void) {"]
    if threads > 1:
        lines.append(f"  polyop_rt_set_num_threads({threads});")
    args = []
    for p in fn.params:
        if p.kind == "size":
            args.append(f"{sizes[p.name]}LL")
        elif p.kind == "scalar":
            args.append(repr(float(scalars[p.name])))
        else:
            ty = c_type[p.dtype.name]
            count = int(np.prod(arrays[p.name].shape)) if p.name in arrays else \
                int(np.prod([int(e.value) for e in p.shape]))
            lines.append(f"  {ty} *{p.name} = malloc({max(count, 1)} * sizeof({ty}));")
            if p.name in arrays:
                lines.append(f'  {{ FILE *f = fopen("{p.name}.bin", "rb"); '
                             f'if (fread({p.name}, sizeof({ty}), {count}, f) != {count}) '
                             f'return 2; fclose(f); }}')
            args.append(p.name)
    lines.append(f"  polyop_{fn.name}({', '.join(args)});")
    for name, a in arrays.items():
        lines.append(f'  {{ FILE *f = fopen("{name}.out", "wb"); '
                     f'fwrite({name}, {a.itemsize}, {a.size}, f); fclose(f); }}')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def build_and_run(tmp_path, kernel, suffix, sizes, scalars, arrays, threads=1) -> dict:
    paths = kernel.export(tmp_path / f"kernel{suffix}")
    assert paths == [str(tmp_path / f"kernel{suffix}"), str(tmp_path / "kernel.h")]
    (tmp_path / "main.c").write_text(c_driver(kernel, sizes, scalars, arrays, threads))
    for name, a in arrays.items():
        a.tofile(tmp_path / f"{name}.bin")
    cmd = [os.environ.get("CC", "cc"), "-std=c99", "-Wall", "-Werror", "-o", "main", "main.c",
           f"./kernel{suffix}", "-lm", "-lpthread"]
    if suffix == ".so":
        cmd.append("-Wl,-rpath,$ORIGIN")
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True)
    subprocess.run(["./main"], cwd=tmp_path, check=True, timeout=60)
    return {name: np.fromfile(tmp_path / f"{name}.out", a.dtype).reshape(a.shape)
            for name, a in arrays.items()}


pytestmark_cc = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None,
                                   reason="no C compiler")


@pytestmark_cc
def test_exported_kernel_runs_in_a_c_program(tmp_path):
    """A scheduled GEMM (sizes, scalars, arrays; a parallel loop) exported as
    an object file, linked into a C program, run: numpy's result."""
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S1")
    sch.parallel(i)
    f = polyop.build(sch)
    ni, nj, nk = 37, 29, 23
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((ni, nk)), rng.standard_normal((nk, nj))
    C = rng.standard_normal((ni, nj))
    out = build_and_run(tmp_path, f, ".o", dict(ni=ni, nj=nj, nk=nk),
                        dict(alpha=1.5, beta=-0.5), dict(C=C, A=A, B=B), threads=2)
    np.testing.assert_allclose(out["C"], -0.5 * C + 1.5 * A @ B, rtol=1e-12, atol=1e-12)
    header = (tmp_path / "kernel.h").read_text()
    assert "polyop_rt_set_num_threads" in header and "C: double[ni][nj]" in header


@pytestmark_cc
def test_exported_operator_with_scratch_arrays_as_a_shared_library(tmp_path):
    mm = polyop.ops.matmul(50, 40, 30, threads=1)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((50, 30)).astype(np.float32)
    b = rng.standard_normal((30, 40)).astype(np.float32)
    c = np.zeros((50, 40), np.float32)
    out = build_and_run(tmp_path, mm, ".so", {}, {}, dict(A=a, B=b, C=c))
    np.testing.assert_allclose(out["C"], a @ b, rtol=1e-4, atol=1e-4)
    assert "(scratch: allocated by the caller" in (tmp_path / "kernel.h").read_text()


def test_cross_compiled_object_file(tmp_path):
    f = polyop.build(axpy, target=NEOVERSE_V2)
    paths = f.export(tmp_path / "axpy.o")
    elf = (tmp_path / "axpy.o").read_bytes()
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64
    assert "void polyop_axpy(int64_t n, float a, const float *POLYOP_RESTRICT x, " \
        "float *POLYOP_RESTRICT y);" in open(paths[1]).read()
    with pytest.raises(polyop.TargetError, match="expected a path ending in .o"):
        f.export(tmp_path / "axpy.dll")
