"""GPU benchmark: polyop's CUDA kernels against cuBLAS, cuDNN and a hand-written kernel.

One run builds, checks and times everything (GPU time is scarce):

- **SGEMM** fp32 ``C += A @ B`` on a zeroed C (sizes 1024, 2048, 4096, 8192) against cuBLAS
  (``torch.matmul`` with TF32 off). polyop's schedules are tried best first
  (shared-memory tiles of A and B with a register micro-tile of C; shared
  tiles alone; 16 x 16 shared tiles; plain global-memory tiling): a schedule
  the GPU back end refuses is reported with the reason, every one that lowers
  is checked and timed, and the fastest is compared;
- **conv2d** fp32, NCHW, 3 x 3, stride 1, no padding (ResNet-like 64 -> 64
  channels) against cuDNN (``torch.nn.functional.conv2d``, TF32 off);
- **2-D stencil** (a 5-point Jacobi sweep, fp32) against a straightforward
  hand-written CUDA kernel (one thread per point, global loads), compiled
  by NVRTC through ``cupy.RawKernel`` with ``--fmad=false`` as polyop's;
- **fp16 GEMM** with tensor cores: polyop's 16 x 16 tile schedule with the
  WMMA intrinsic (``polyop_cuda.wmma``: one warp per tile of C, operands
  rounded to fp16 at the tile, fp32 accumulation; polyop's arrays are fp32,
  so it reads twice the bytes cuBLAS does) against cuBLAS on halves
  (``torch.matmul``); ``--opencl`` runs the same tile schedule without the
  intrinsic (PoCL has no tensor cores).

Method. Every polyop kernel is first run through ``polyop.build``'s call path
with device arrays (CuPy, zero-copy) and compared with the reference; the
timed runs then launch polyop's cubin directly (``cupy.RawModule``, grid and
block from the kernel's own launch-size expressions), so that the figures are
the kernels', without the Python argument checks of each call. polyop and the
reference run interleaved, ``--repeat`` rounds, each round timed with CUDA
events around ``--inner`` back-to-back launches; the table shows the median.
GFLOP/s use ``2 m n k`` (GEMM), ``2 n k c p q r s`` (conv2d) and 5 flops per
point (stencil; GB/s from 8 bytes per point are shown too).

Peak. The FP32 peak is computed from the device's attributes: SM count x
boost clock (``clockRate``) x FP32 lanes per SM x 2 (one FMA is two flops).
The lanes per SM follow the architecture: 64 for sm_60/70/75/80, 128 for
sm_86/89/90/100/120 (Ampere's GA10x, Ada, Hopper and Blackwell doubled the
FP32 units of an SM partition). An H100 SXM: 132 x 1.98 GHz x 128 x 2 = 67 TFLOP/s.

Results go to ``benchmarks/results/gpu_<device>.json`` (device name, driver,
CUDA runtime, sizes, every time, the figures and the refused schedules).

Usage (on a machine with an NVIDIA GPU, Python with cupy and torch; nothing
is installed by this script)::

    python benchmarks/gpu_bench.py             # all sizes
    python benchmarks/gpu_bench.py --quick     # 1024 and 4096, fewer rounds

Without a GPU, ``--opencl`` runs the same kernels at tiny sizes on an OpenCL
device (PoCL in CI) and checks them against numpy; nothing is timed::

    python benchmarks/gpu_bench.py --opencl --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polyop  # noqa: E402
from polyop.errors import PolyopError  # noqa: E402
from polyop_cuda.host import run_host  # noqa: E402
from polyop_cuda.lowering import load  # noqa: E402
from polyop_cuda.lowering import lower as gpu_lower  # noqa: E402


@polyop.kernel
def sgemm(m: int, n: int, k: int, A: "f32[m, k]", B: "f32[k, n]", C: "f32[m, n]"):
    for i in range(m):
        for j in range(n):
            for kk in range(k):
                C[i, j] += A[i, kk] * B[kk, j]


@polyop.kernel
def conv2d(nb: int, ko: int, ci: int, h: int, w: int, r: int, s: int,
           X: "f32[nb, ci, h, w]", W: "f32[ko, ci, r, s]",
           Y: "f32[nb, ko, h - r + 1, w - s + 1]"):
    for b in range(nb):
        for o in range(ko):
            for p in range(h - r + 1):
                for q in range(w - s + 1):
                    Y[b, o, p, q] = 0.0
                    for c in range(ci):
                        for u in range(r):
                            for v in range(s):
                                Y[b, o, p, q] += X[b, c, p + u, q + v] * W[o, c, u, v]


@polyop.kernel
def jacobi2d(n: int, A: "f32[n, n]", B: "f32[n, n]"):
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            B[i, j] = 0.2 * (A[i, j] + A[i - 1, j] + A[i + 1, j] + A[i, j - 1] + A[i, j + 1])


HAND_STENCIL = r"""
extern "C" __global__ void jacobi_hand(const float *A, float *B, long long n) {
  long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  long long i = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  if (i >= 1 && i < n - 1 && j >= 1 && j < n - 1)
    B[i * n + j] = 0.2f * (A[i * n + j] + A[(i - 1) * n + j] + A[(i + 1) * n + j]
                           + A[i * n + j - 1] + A[i * n + j + 1]);
}
"""


# -- schedules, best first ----------------------------------------------------------------
def _bind(sch, *pairs) -> None:
    for loop, axis in pairs:
        sch.bind(loop, axis)


def sgemm_tiled(block: int, micro: int, ktile: int, shared: bool, registers: bool):
    """Blocks of ``block x block`` elements of C, threads of ``micro x micro``
    elements; A and B tiles of depth ``ktile`` in shared memory; C's
    micro-tile in registers across the k tiles (promoted at the block loop,
    written back once)."""
    def make() -> polyop.Schedule:
        sch = polyop.Schedule(sgemm)
        i, j, k = sch.get_loops("S0")
        io, ir = sch.split(i, block)
        jo, jr = sch.split(j, block)
        loops = [io, jo]
        if micro > 1:
            it, im = sch.split(ir, micro)
            jt, jm = sch.split(jr, micro)
        else:
            it, jt, im, jm = ir, jr, None, None
        ko, ki = sch.split(k, ktile)
        loops += [ko, it, jt, ki] + ([im, jm] if micro > 1 else [])
        sch.reorder(*loops)
        _bind(sch, (io, "blockIdx.y"), (jo, "blockIdx.x"), (it, "threadIdx.y"),
              (jt, "threadIdx.x"))
        if shared:
            sch.cache_read("A", scope="shared", at=ko)
            sch.cache_read("B", scope="shared", at=ko)
        if registers:
            sch.cache_write("C", scope="local", at=jo)
        return sch
    return make


SGEMM_SCHEDULES = {
    "shared 64x64x16, 4x4 registers": sgemm_tiled(64, 4, 16, True, True),
    "shared 128x128x8, 8x8 registers": sgemm_tiled(128, 8, 8, True, True),
    "shared 64x64x16": sgemm_tiled(64, 4, 16, True, False),
    "shared 16x16x16": sgemm_tiled(16, 1, 16, True, False),
    "global 16x16": sgemm_tiled(16, 1, 16, False, False),
}


def conv_tiled(shared_weights: bool):
    """Blocks of 8 rows x 32 columns of one output channel, a thread per point;
    the channel's 3-D weights in shared memory."""
    def make() -> polyop.Schedule:
        sch = polyop.Schedule(conv2d)
        b, o, p, q = sch.get_loops("S1")[:4]
        po, pi = sch.split(p, 8)
        qo, qi = sch.split(q, 32)
        sch.reorder(b, o, po, qo, pi, qi)
        _bind(sch, (o, "blockIdx.z"), (po, "blockIdx.y"), (qo, "blockIdx.x"),
              (pi, "threadIdx.y"), (qi, "threadIdx.x"))
        if shared_weights:
            sch.cache_read("W", scope="shared", at=qo)
        return sch
    return make


CONV_SCHEDULES = {"shared weights, 8x32 threads": conv_tiled(True),
                  "global, 8x32 threads": conv_tiled(False)}


def stencil_tiled(shared: bool):
    """Blocks of 8 x 32 threads, a point each; A's tile and halo in shared memory."""
    def make() -> polyop.Schedule:
        sch = polyop.Schedule(jacobi2d)
        i, j = sch.get_loops("S0")
        io, ii = sch.split(i, 8)
        jo, ji = sch.split(j, 32)
        sch.reorder(io, jo, ii, ji)
        _bind(sch, (io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
              (ji, "threadIdx.x"))
        if shared:
            sch.cache_read("A", scope="shared", at=jo)
        return sch
    return make


STENCIL_SCHEDULES = {"shared halo, 8x32 threads": stencil_tiled(True),
                     "global, 8x32 threads": stencil_tiled(False)}


# -- cases --------------------------------------------------------------------------------
@dataclass
class Case:
    """One benchmark: its schedules, problem sizes and how to make data."""

    name: str
    schedules: dict
    sizes: list
    args: object          # size -> dict of numpy inputs/outputs and size scalars
    reference: object     # (args as numpy) -> {output name: expected}
    flops: object         # size -> flops of one run
    output: str
    notes: list = field(default_factory=list)


def _gemm_args(n: int, rng) -> dict:
    return {"m": n, "n": n, "k": n, "A": rng.standard_normal((n, n), np.float32),
            "B": rng.standard_normal((n, n), np.float32), "C": np.zeros((n, n), np.float32)}


def _conv_shape(size: int) -> dict:
    """``size``: the image side; batch 8 (1 when the image is tiny), 64 -> 64 channels."""
    tiny = size < 32
    return {"nb": 1 if tiny else 8, "ko": 4 if tiny else 64, "ci": 3 if tiny else 64,
            "h": size, "w": size, "r": 3, "s": 3}


def _conv_flops(size: int) -> float:
    d = _conv_shape(size)
    return 2.0 * d["nb"] * d["ko"] * d["ci"] * (d["h"] - 2) * (d["w"] - 2) * 9


def _conv_args(size: int, rng) -> dict:
    d = _conv_shape(size)
    p, q = d["h"] - 2, d["w"] - 2
    return {**d, "X": rng.standard_normal((d["nb"], d["ci"], d["h"], d["w"]), np.float32),
            "W": rng.standard_normal((d["ko"], d["ci"], 3, 3), np.float32),
            "Y": np.zeros((d["nb"], d["ko"], p, q), np.float32)}


def _conv_ref(a: dict) -> np.ndarray:
    x, w = a["X"].astype(np.float64), a["W"].astype(np.float64)
    p, q = x.shape[2] - 2, x.shape[3] - 2
    out = np.zeros((x.shape[0], w.shape[0], p, q))
    for u in range(3):
        for v in range(3):
            out += np.einsum("bcpq,oc->bopq", x[:, :, u:u + p, v:v + q], w[:, :, u, v])
    return out


def _stencil_args(n: int, rng) -> dict:
    return {"n": n, "A": rng.standard_normal((n, n), np.float32),
            "B": np.zeros((n, n), np.float32)}


def _stencil_ref(a: dict) -> np.ndarray:
    A, B = a["A"], np.zeros_like(a["A"])
    B[1:-1, 1:-1] = np.float32(0.2) * (A[1:-1, 1:-1] + A[:-2, 1:-1] + A[2:, 1:-1]
                                       + A[1:-1, :-2] + A[1:-1, 2:])
    return B


def cases(opencl: bool, quick: bool) -> list[Case]:
    gemm = [37, 70] if opencl else ([1024, 4096] if quick else [1024, 2048, 4096, 8192])
    conv = [13] if opencl else ([56] if quick else [56, 112])
    sten = [45] if opencl else ([4096] if quick else [4096, 8192])
    return [
        Case("sgemm fp32", SGEMM_SCHEDULES, gemm, _gemm_args,
             lambda a: a["A"].astype(np.float64) @ a["B"], lambda n: 2.0 * n ** 3, "C"),
        Case("conv2d fp32 3x3", CONV_SCHEDULES, conv, _conv_args, _conv_ref,
             _conv_flops, "Y"),
        Case("stencil 2-D 5-point", STENCIL_SCHEDULES, sten, _stencil_args, _stencil_ref,
             lambda n: 5.0 * (n - 2) ** 2, "B"),
    ]


def check(case: Case, got: np.ndarray, args: dict, want: np.ndarray | None = None) -> float:
    """The largest error relative to the reference's largest entry (``want``,
    else computed from ``args``); raises when it exceeds the fp32 tolerance."""
    if want is None:
        want = np.asarray(case.reference(args), dtype=np.float64)
    err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
    if not err <= 1e-4:
        raise AssertionError(f"{case.name}: wrong result (relative error {err:.2e})")
    return err


def lower_candidates(case: Case, target: str, first_only: bool) -> tuple[list, dict]:
    """The schedules of ``case`` that lower for ``target`` (name, LoweredGpu),
    and the refused ones with the reason."""
    ok, refused = [], {}
    for name, make in case.schedules.items():
        try:
            ok.append((name, gpu_lower(make(), target=target)))
        except PolyopError as e:
            refused[name] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            continue
        if first_only:
            break
    return ok, refused


# -- OpenCL: tiny sizes, results only -------------------------------------------------------
def run_opencl(quick: bool) -> int:
    rng = np.random.default_rng(0)
    rows = []
    for case in cases(opencl=True, quick=quick):
        t0 = time.perf_counter()
        ok, refused = lower_candidates(case, "opencl", first_only=quick)
        for name, why in refused.items():
            rows.append((case.name, name, "-", "refused", why[:70]))
        if not ok:
            raise SystemExit(f"{case.name}: no schedule lowers for OpenCL: {refused}")
        for name, lowered in ok:
            fn = load(lowered)
            for size in case.sizes:
                args = case.args(size, rng)
                fn(**args)
                err = check(case, args[case.output], args)
                rows.append((case.name, name, str(size), "ok", f"rel. err {err:.1e}"))
        rows.append((case.name, "(lower + build + run)", "", "",
                     f"{time.perf_counter() - t0:.1f} s"))
    rows.append(("fp16 GEMM (WMMA)", *fp16_opencl(rng)))
    table(("case", "schedule", "size", "result", "detail"), rows)
    return 0


# -- CUDA: check, then time --------------------------------------------------------------------
def peak_fp32(props: dict, cc: tuple[int, int]) -> tuple[float, str]:
    """FP32 peak (FLOP/s) from the device's attributes, and how it was computed."""
    lanes = 64 if cc in ((6, 0), (7, 0), (7, 5), (8, 0)) else 128
    clock = props["clockRate"] * 1e3  # kHz
    peak = props["multiProcessorCount"] * clock * lanes * 2.0
    return peak, (f"{props['multiProcessorCount']} SMs x {clock / 1e9:.3f} GHz x "
                  f"{lanes} FP32 lanes x 2 = {peak / 1e12:.1f} TFLOP/s")


class DirectLauncher:
    """polyop's kernels of one program from its cubin through CuPy: the host
    tree walked as polyop's runtime walks it, launches on the current stream
    without synchronisation (for timing)."""

    def __init__(self, cp, lowered, arch: str):
        from polyop_cuda.nvcc import compile_cubin

        self.cp, self.lowered = cp, lowered
        path = Path(tempfile.mkdtemp()) / "polyop.cubin"
        path.write_bytes(compile_cubin(lowered.device_source, arch))
        module = cp.RawModule(path=str(path))
        self.functions = {k.name: module.get_function(k.name) for k in lowered.program.kernels}

    def __call__(self, arrays: dict, sizes: dict) -> None:
        def launch(k, grid, block, env):
            args = [arrays[p.name] if p.kind == "array" else np.dtype(p.dtype.numpy).type(
                env[p.name]) for p in k.params]
            self.functions[k.name](tuple(grid), tuple(block), tuple(args))

        run_host(self.lowered.program, dict(sizes), self.lowered.target, launch)


def time_pair(cp, fa, fb, repeat: int, inner: int) -> tuple[list, list]:
    """Seconds per run of ``fa`` and ``fb``, interleaved rounds timed with CUDA events."""
    out = ([], [])
    for f in (fa, fb):  # warm-up
        f()
    cp.cuda.Device().synchronize()
    for r in range(repeat):
        order = ((0, fa), (1, fb)) if r % 2 == 0 else ((1, fb), (0, fa))
        for slot, f in order:
            start, stop = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            for _ in range(inner):
                f()
            stop.record()
            stop.synchronize()
            out[slot].append(cp.cuda.get_elapsed_time(start, stop) / 1e3 / inner)
    return out


def run_cuda(quick: bool, repeat: int, inner: int, out_path: Path | None) -> int:
    try:
        import cupy as cp
        import torch
    except ImportError as e:
        raise SystemExit(f"gpu_bench needs cupy and torch on the GPU machine ({e}); "
                         "without a GPU run it with --opencl") from e
    if not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device; without a GPU run with --opencl")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 for cuBLAS and cuDNN
    torch.backends.cudnn.allow_tf32 = False
    props = cp.cuda.runtime.getDeviceProperties(0)
    device = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    cc = (props["major"], props["minor"])
    arch = f"sm_{cc[0]}{cc[1]}"
    target = f"cuda -arch={arch}"
    peak, peak_text = peak_fp32(props, cc)
    print(f"{device} ({arch}), driver {cp.cuda.runtime.driverGetVersion()}; "
          f"FP32 peak {peak_text}")
    rng = np.random.default_rng(0)
    results = {"device": device, "arch": arch,
               "driver": cp.cuda.runtime.driverGetVersion(),
               "runtime": cp.cuda.runtime.runtimeGetVersion(), "torch": torch.__version__,
               "cupy": cp.__version__, "peak_fp32_flops": peak, "peak_fp32": peak_text,
               "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
               "repeat": repeat, "inner": inner, "cases": []}
    rows = []
    hand = cp.RawKernel(HAND_STENCIL, "jacobi_hand", options=("--fmad=false",))
    for case in cases(opencl=False, quick=quick):
        ok, refused = lower_candidates(case, target, first_only=False)
        entry = {"case": case.name, "refused": refused, "runs": []}
        results["cases"].append(entry)
        for name, why in refused.items():
            rows.append((case.name, name, "-", "refused", why[:60], ""))
        for size in case.sizes:
            args = case.args(size, rng)
            dev = {k: cp.asarray(v) if isinstance(v, np.ndarray) else v
                   for k, v in args.items()}
            sizes = {k: v for k, v in args.items() if not isinstance(v, np.ndarray)}
            ref = _reference_fn(case, dev, torch, cp, hand)
            want = np.asarray(case.reference(args), dtype=np.float64)  # once per size
            best = None
            for name, lowered in ok:
                fn = load(lowered)
                dev[case.output].fill(0)
                fn(**dev)  # polyop's own call path, device arrays in place
                err = check(case, cp.asnumpy(dev[case.output]), args, want)
                dev[case.output].fill(0)
                direct = DirectLauncher(cp, lowered, arch)
                direct(dev, sizes)
                err = max(err, check(case, cp.asnumpy(dev[case.output]), args, want))
                tp, tr = time_pair(cp, lambda d=direct, v=dev, z=sizes: d(v, z), ref, repeat, inner)
                mp, mr = statistics.median(tp), statistics.median(tr)
                flops = case.flops(size)
                run = {"schedule": name, "size": size, "polyop_s": tp, "reference_s": tr,
                       "polyop_gflops": flops / mp / 1e9, "reference_gflops": flops / mr / 1e9,
                       "ratio": mr / mp, "polyop_peak_fraction": flops / mp / peak,
                       "max_rel_error": err}
                entry["runs"].append(run)
                if best is None or run["ratio"] > best["ratio"]:
                    best = run
                rows.append((case.name, name, str(size), f"{run['polyop_gflops']:.0f}",
                             f"{run['reference_gflops']:.0f}",
                             f"{run['ratio']:.2f}x  {100 * run['polyop_peak_fraction']:.0f}%"))
            if best is not None:  # the figure the targets are read against
                entry.setdefault("best", {})[str(size)] = {
                    k: best[k] for k in ("schedule", "polyop_gflops", "ratio")}
    entry = fp16_cuda(cp, torch, rng, arch, quick, repeat, inner, rows)
    results["cases"].append(entry)
    table(("case", "schedule", "size", "polyop GFLOP/s", "reference GFLOP/s",
           "ratio, % FP32 peak"), rows)
    path = out_path or ROOT / "benchmarks" / "results" / \
        f"gpu_{re.sub(r'[^A-Za-z0-9]+', '_', device).strip('_').lower()}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {path}")
    return 0


def _reference_fn(case: Case, dev: dict, torch, cp, hand):
    """The reference computation of ``case`` on the device arrays ``dev``."""
    t = {k: torch.as_tensor(v, device="cuda") for k, v in dev.items()
         if isinstance(v, cp.ndarray)}
    if case.name.startswith("sgemm"):
        out = torch.empty_like(t["C"])
        return lambda: torch.matmul(t["A"], t["B"], out=out)
    if case.name.startswith("conv2d"):
        return lambda: torch.nn.functional.conv2d(t["X"], t["W"])
    n = dev["n"]
    out = cp.zeros_like(dev["B"])
    grid, block = ((n + 31) // 32, (n + 7) // 8), (32, 8)
    return lambda: hand(grid, block, (dev["A"], out, np.int64(n)))


# -- fp16 GEMM with tensor cores ---------------------------------------------------------------
def fp16_opencl(rng) -> tuple:
    """The WMMA GEMM's tile schedule without the intrinsic, on OpenCL (PoCL
    cannot run WMMA), checked against numpy."""
    try:
        from polyop_cuda import wmma
    except ImportError as e:
        return ("-", "-", "skipped", f"polyop_cuda.wmma unavailable: {e}")
    sch = wmma.gemm_tile_schedule(wmma.gemm_f32, tensorize=False)
    fn = polyop.build(sch, target="opencl")
    a = {"m": 48, "n": 32, "k": 64, "A": rng.standard_normal((48, 64), np.float32),
         "B": rng.standard_normal((64, 32), np.float32), "C": np.zeros((48, 32), np.float32)}
    fn(**a)
    err = float(np.max(np.abs(a["C"] - a["A"].astype(np.float64) @ a["B"])))
    if err > 1e-3:
        raise AssertionError(f"WMMA tile schedule on OpenCL: wrong result ({err:.2e})")
    return ("16x16x16 tiles, no intrinsic", "48x32x64", "ok", f"abs err {err:.1e}")


def fp16_cuda(cp, torch, rng, arch, quick, repeat, inner, rows) -> dict:
    """polyop's WMMA GEMM (16 x 16 tiles, one warp per tile, operands rounded
    to fp16 at the tile, fp32 arrays and accumulation) against cuBLAS on halves."""
    entry = {"case": "fp16 GEMM (WMMA)", "refused": {}, "runs": []}
    try:
        from polyop_cuda import wmma

        lowered = gpu_lower(wmma.gemm_tile_schedule(wmma.gemm_f32, tensorize="f16"),
                            target=f"cuda -arch={arch}")
        fn = load(lowered)
    except (ImportError, PolyopError) as e:
        entry["refused"]["wmma"] = f"{type(e).__name__}: {e}"
        rows.append(("fp16 GEMM (WMMA)", "wmma", "-", "unavailable", str(e)[:60], ""))
        return entry
    direct = DirectLauncher(cp, lowered, arch)
    for n in ([4096] if quick else [1024, 2048, 4096, 8192]):
        a16 = rng.standard_normal((n, n), np.float32).astype(np.float16)
        b16 = rng.standard_normal((n, n), np.float32).astype(np.float16)
        arrays = {"A": cp.asarray(a16.astype(np.float32)), "B": cp.asarray(b16.astype(np.float32)),
                  "C": cp.zeros((n, n), np.float32)}
        sizes = {"m": n, "n": n, "k": n}
        ta, tb = torch.as_tensor(cp.asarray(a16), device="cuda"), \
            torch.as_tensor(cp.asarray(b16), device="cuda")
        fn(**arrays, **sizes)  # polyop's call path, then the check
        want = cp.asarray(torch.matmul(ta.float(), tb.float()))
        err = float(cp.max(cp.abs(arrays["C"] - want)) / cp.max(cp.abs(want)))
        if not err <= 1e-3:  # fp32 sums in another order than cuBLAS's
            raise AssertionError(f"fp16 GEMM {n}: wrong result (relative error {err:.2e})")
        tp, tr = time_pair(cp, lambda d=direct, v=arrays, z=sizes: d(v, z),
                           lambda a=ta, b=tb: torch.matmul(a, b), repeat, inner)
        mp, mr = statistics.median(tp), statistics.median(tr)
        run = {"schedule": "wmma 16x16x16, a warp per tile", "size": n, "polyop_s": tp,
               "reference_s": tr, "polyop_gflops": 2 * n ** 3 / mp / 1e9,
               "reference_gflops": 2 * n ** 3 / mr / 1e9, "ratio": mr / mp,
               "max_rel_error": err}
        entry["runs"].append(run)
        rows.append(("fp16 GEMM (WMMA)", "wmma 16x16x16", str(n),
                     f"{run['polyop_gflops']:.0f}", f"{run['reference_gflops']:.0f}",
                     f"{run['ratio']:.2f}x"))
    return entry


def table(header: tuple, rows: list) -> None:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opencl", action="store_true",
                    help="no GPU: run the kernels at tiny sizes on OpenCL, check only")
    ap.add_argument("--quick", action="store_true", help="fewer sizes, schedules and rounds")
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds (default 15, 5 quick)")
    ap.add_argument("--inner", type=int, default=3, help="launches per timed round")
    ap.add_argument("--out", type=Path, default=None, help="JSON results file")
    opts = ap.parse_args(argv)
    if opts.opencl:
        return run_opencl(opts.quick)
    repeat = opts.repeat or (5 if opts.quick else 15)
    return run_cuda(opts.quick, repeat, opts.inner, opts.out)


if __name__ == "__main__":
    sys.exit(main())
