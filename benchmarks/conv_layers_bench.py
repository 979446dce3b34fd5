"""``polyop.ops.conv2d`` with its default schedule against PyTorch on every
distinct convolution of ResNet-50.

The 23 distinct convolutions of ResNet-50 (v1.5) at batch 1, fp32, "same"
padding, at stride 1 and 2, including the 7 × 7 stem (``tune_bench.py``'s
``RESNET_LAYERS``), in both layouts (NCHW; NHWC against PyTorch on
``channels_last`` tensors), at each thread count asked. polyop's operator is
built with no tiling given: what a user gets (``ConvTiling.default`` for the
host, or what ``polyop tune ops`` stored). Each polyop output is checked
against PyTorch's before anything is timed; polyop and PyTorch are then
timed in interleaved rounds (one timing of each per round, a timing being
the median of 3 repeats of at least 50 ms) and the medians over the rounds
compared. Each figure is also given as a percentage of the target's
measured FMA peak (``peak_fma.py``) times the thread count.

With ``--packed-too``, where the default reads NHWC weights in place
(``ConvTiling.weights_in_place``), the same loop structure with the weights
copied per call as before (``ConvTiling.structure``) is timed in the same
rounds (``polyop_packed``; its output checked too): the A/B of that choice.

Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/conv_layers_bench.py [--threads 1 2] [--rounds 7] [--packed-too]

Results: ``benchmarks/results/conv_layers.json``, with the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import hostinfo  # noqa: E402
import peak_fma  # noqa: E402
from tune_bench import RESNET_LAYERS, _interleaved  # noqa: E402

import polyop  # noqa: E402
from polyop.codegen.parallel import set_num_threads  # noqa: E402
from polyop.ops import ConvTiling  # noqa: E402


def _layer(name: str, C: int, H: int, F: int, R: int, stride: int, layout: str,
           threads: int, rounds: int, rng: np.random.Generator,
           packed_too: bool = False) -> dict:
    import torch

    conv = polyop.ops.conv2d(C, H, H, F, R, stride=stride, pad=R // 2, layout=layout,
                             threads=threads)
    ops = {"polyop": conv}
    if packed_too and conv.tiling.weights_in_place:
        ops["polyop_packed"] = polyop.ops.conv2d(
            C, H, H, F, R, stride=stride, pad=R // 2, layout=layout, threads=threads,
            tiling=ConvTiling.structure(conv.shape, threads=threads))
    dims = conv.shape.arrays()
    x = rng.uniform(-1, 1, dims["x"]).astype(np.float32)
    w = (rng.uniform(-1, 1, dims["w"]) / np.sqrt(C * R * R)).astype(np.float32)
    if layout == "NCHW":
        tx, tw = torch.from_numpy(x[None]), torch.from_numpy(w)
    else:  # channels_last views: no copy of x at call time
        tx = torch.from_numpy(x[None]).permute(0, 3, 1, 2)
        tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)

    def torch_conv():
        return torch.nn.functional.conv2d(tx, tw, stride=stride, padding=R // 2)

    want = torch_conv()[0]
    want = (want if layout == "NCHW" else want.permute(1, 2, 0)).numpy()
    fns = {}
    for key, op in ops.items():
        out = np.full(dims["out"], np.nan, np.float32)
        op(x, w, out)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
        fns[key] = lambda op=op, out=out: op(x, w, out)
    times = _interleaved({**fns, "torch": torch_conv}, rounds)
    gf = {k: conv.shape.flops / statistics.median(v) / 1e9 for k, v in times.items()}
    row = {"layer": name, "layout": layout, "threads": threads, "C": C, "H": H, "F": F,
           "R": R, "stride": stride, "tiling": repr(conv.tiling),
           "gflops": {k: round(v, 2) for k, v in gf.items()},
           "polyop_over_torch": round(gf["polyop"] / gf["torch"], 3),
           "seconds": {k: [round(t, 7) for t in v] for k, v in times.items()}}
    if "polyop_packed" in gf:
        row["in_place_over_packed"] = round(gf["polyop"] / gf["polyop_packed"], 3)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--layers", nargs="*", help="names from RESNET_LAYERS (default: all)")
    ap.add_argument("--layouts", nargs="+", default=["NCHW", "NHWC"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "conv_layers.json")
    ap.add_argument("--packed-too", action="store_true",
                    help="also time NHWC weights copied per call where the default reads "
                         "them in place")
    args = ap.parse_args(argv)
    import torch

    torch.set_grad_enabled(False)
    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    peak = peak_fma.peak("float32")
    print(f"CPU: {machine['cpu_model']} (LLVM {machine['llvm_cpu']}), torch {torch.__version__}; "
          f"measured fp32 FMA peak {peak:.1f} GFLOP/s per core", flush=True)
    rng = np.random.default_rng(0)
    rows, started = [], time.time()
    load = {"loadavg_start": hostinfo.loadavg()}
    for threads in args.threads:
        torch.set_num_threads(threads)
        set_num_threads(threads)
        for name, C, H, F, R, stride in RESNET_LAYERS:
            if args.layers and name not in args.layers:
                continue
            for layout in args.layouts:
                row = _layer(name, C, H, F, R, stride, layout, threads, args.rounds, rng,
                             args.packed_too)
                row["polyop_pct_peak"] = round(100 * row["gflops"]["polyop"] / (peak * threads), 1)
                rows.append(row)
                print(f"{threads}t {layout} {name:22s} polyop {row['gflops']['polyop']:6.1f} "
                      f"({row['polyop_pct_peak']:4.1f} % of peak)  torch "
                      f"{row['gflops']['torch']:6.1f}  ratio {row['polyop_over_torch']:.2f}"
                      + (f"  in place / packed {row['in_place_over_packed']:.3f}"
                         if "in_place_over_packed" in row else ""), flush=True)
    load["loadavg_end"] = hostinfo.loadavg()
    below = [f"{r['threads']}t {r['layout']} {r['layer']}" for r in rows
             if r["polyop_over_torch"] < 0.9]
    result = {
        "benchmark": "conv_layers_bench.py: polyop.ops.conv2d (default schedule) vs PyTorch "
                     "on ResNet-50's distinct convolutions",
        "machine": machine, "load": load, "torch": torch.__version__,
        "fma_peak_gflops_per_core": round(peak, 1), "rounds": args.rounds,
        "note": "batch 1, fp32; interleaved rounds, medians; OPENBLAS_CORETYPE and "
                "OPENBLAS_L2_SIZE unset; outputs checked against PyTorch",
        "layers_below_0.9": below, "min_ratio": min(r["polyop_over_torch"] for r in rows),
        "in_place_over_packed": {f"{r['threads']}t {r['layout']} {r['layer']}":
                                 r["in_place_over_packed"]
                                 for r in rows if "in_place_over_packed" in r},
        "wall_seconds": round(time.time() - started, 1), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(rows) - len(below)} of {len(rows)} at >= 0.9x PyTorch; below: "
          f"{below or 'none'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
