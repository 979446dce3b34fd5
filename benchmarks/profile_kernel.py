"""Where a polyop operator's time goes: ``perf`` samples of its JIT code, by loop.

Runs one operator (``polyop.ops.matmul`` or ``polyop.ops.conv2d``) in a loop
for a few seconds under ``perf record -e cpu-clock`` (a software clock: it
works in VMs without hardware counters), then attributes each sample to the
innermost loop of the machine code that contains it. Loops are found in the
disassembly (``objdump``) of the kernel's functions, whose addresses and sizes
polyop records as it compiles (``polyop.codegen.perfmap``): a backward branch
closes a loop. Each loop is described by what it executes: fused
multiply-adds, broadcasts, vector loads and stores, ``max`` (a ReLU); the
micro-kernel is the loop full of FMAs, a packing copy one of loads and
stores only. Samples outside the kernel (Python, numpy, the thread pool's
waiting) are listed by library.

Usage::

    python benchmarks/profile_kernel.py matmul 2048              # M = N = K
    python benchmarks/profile_kernel.py matmul 512 --fused --threads 2
    python benchmarks/profile_kernel.py conv 256,56,64 --fused --packed   # C,H,F (1x1 NCHW)
    python benchmarks/profile_kernel.py conv 64,56,64,3 --layout NHWC     # C,H,F,R

Requires Linux ``perf`` and ``objdump`` (binutils).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def build(opts: argparse.Namespace):
    """The operator and its arguments (random inputs); ``flops`` per call."""
    import polyop
    from polyop.codegen import set_num_threads

    set_num_threads(opts.threads)
    rng = np.random.default_rng(0)
    dims = [int(v) for v in opts.size.split(",")]
    fused = opts.fused
    if opts.op == "matmul":
        m, n, k = (dims * 3)[:3] if len(dims) == 1 else dims
        op = polyop.ops.matmul(m, n, k, bias=fused, relu=fused, packed_b=opts.packed,
                               threads=opts.threads)
        A = rng.standard_normal((m, k), np.float32)
        B = rng.standard_normal((k, n), np.float32)
        args = [A, op.pack_b(B) if opts.packed else B]
        args += [rng.standard_normal(n).astype(np.float32)] if fused else []
        return op, args + [np.empty((m, n), np.float32)], 2.0 * m * n * k
    C, H, F, R = (dims + [1])[:4]
    op = polyop.ops.conv2d(C, H, H, F, R, stride=opts.stride, pad=R // 2,
                           layout=opts.layout, bias=fused,
                           relu=fused, packed_weights=opts.packed, threads=opts.threads)
    shapes = op.shape.arrays()
    w = rng.standard_normal(shapes["w"], np.float32)
    args = [rng.standard_normal(shapes["x"], np.float32), op.pack_weights(w) if opts.packed
            else w]
    args += [rng.standard_normal(F).astype(np.float32)] if fused else []
    return op, args + [np.empty(shapes["out"], np.float32)], float(op.shape.flops)


def perf_control(fifo: str | None, command: str) -> None:
    """Send ``command`` to ``perf record --control`` and wait for its ack."""
    if fifo:
        with open(fifo, "w") as ctl:
            ctl.write(command + "\n")
        with open(fifo + ".ack") as ack:
            ack.readline()


def child(opts: argparse.Namespace) -> None:
    """Run the operator for ``opts.seconds``; dump its functions' machine code."""
    op, args, flops = build(opts)
    native = op.function.kernel.native
    out = Path(opts.child)
    table = []
    for k, (start, size, name) in enumerate(native.functions):
        (out / f"f{k}.bin").write_bytes(ctypes.string_at(start, size))
        table.append({"start": start, "size": size, "name": name, "file": f"f{k}.bin"})
    op(*args)
    perf_control(opts.ctl, "enable")  # after the compilation and the first call
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < opts.seconds:
        op(*args)
        calls += 1
    dt = (time.perf_counter() - t0) / calls
    perf_control(opts.ctl, "disable")  # not the interpreter's exit
    (out / "run.json").write_text(json.dumps({"functions": table, "seconds_per_call": dt,
                                              "gflops": flops / dt / 1e9, "calls": calls,
                                              "repr": repr(op)}))


def disassemble(path: Path, start: int) -> list[tuple[int, str]]:
    """``(address, instruction)`` of the raw x86-64 code in ``path`` loaded at ``start``."""
    text = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64",
                           f"--adjust-vma={start:#x}", "--no-show-raw-insn", str(path)],
                          capture_output=True, text=True, check=True).stdout
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if m and m.group(2).strip():
            out.append((int(m.group(1), 16), m.group(2).strip()))
    return out


def loops(code: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """``(first, last)`` addresses of each loop: a branch back to ``first``."""
    out = []
    for addr, insn in code:
        m = re.match(r"^j\w+\s+(0x)?([0-9a-f]+)", insn)
        if m:
            target = int(m.group(2), 16)
            if target <= addr and target >= code[0][0]:
                out.append((target, addr))
    return out


def describe(code: list[tuple[int, str]], loop: tuple[int, int],
             nested: list[tuple[int, int]]) -> str:
    """What a loop's own body (its instructions outside the ``nested`` loops)
    executes, counted by kind of instruction."""
    c = Counter()
    first, last = loop
    for addr, insn in code:
        if not first <= addr <= last or any(lo <= addr <= hi for lo, hi in nested):
            continue
        op = insn.split()[0]
        if op.startswith(("vfmadd", "vfnmadd")):
            c["fma"] += 1
        elif op.startswith("vbroadcast"):
            c["broadcast"] += 1
        elif op.startswith("vmax"):
            c["max"] += 1
        elif op.startswith("vmov") and "(" in insn:
            # AT&T order: a store writes its last (memory) operand
            c["store" if insn.rstrip().endswith(")") else "load"] += 1
        elif op.startswith(("vadd", "vmul")):
            c["add/mul"] += 1
        c["instructions"] += 1
    if c["fma"] >= 4:
        kind = "micro-kernel"
    elif c["max"]:
        kind = "epilogue"
    elif nested:
        kind = "around inner loops"
    elif c["load"] and c["store"] and not c["add/mul"]:
        kind = "copy"
    else:
        kind = "other"
    parts = ", ".join(f"{v} {k}" for k, v in c.items() if k != "instructions")
    return f"{kind}: {c['instructions']} instructions ({parts})"


def report(work: Path, perf_data: Path) -> str:
    run = json.loads((work / "run.json").read_text())
    funcs = run["functions"]
    code = {f["name"]: disassemble(work / f["file"], f["start"]) for f in funcs}
    spans = {f["name"]: (f["start"], f["start"] + f["size"]) for f in funcs}
    script = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "ip,dso"],
                            capture_output=True, text=True).stdout
    by_loop, outside, total = Counter(), Counter(), 0
    all_loops = {name: loops(c) for name, c in code.items()}
    for line in script.splitlines():
        parts = line.split()
        if not parts:
            continue
        total += 1
        ip = int(parts[0], 16)
        name = next((n for n, (lo, hi) in spans.items() if lo <= ip < hi), None)
        if name is None:
            dso = parts[1].strip("()") if len(parts) > 1 else "?"
            outside[os.path.basename(dso)] += 1
            continue
        inner = [lp for lp in all_loops[name] if lp[0] <= ip <= lp[1]]
        key = (name, min(inner, key=lambda lp: lp[1] - lp[0]) if inner else None)
        by_loop[key] += 1
    if total == 0:
        raise RuntimeError("perf recorded no samples: is it allowed to sample this process? "
                           "(see /proc/sys/kernel/perf_event_paranoid)")
    lines = [f"{run['repr']}: {run['gflops']:.1f} GFLOP/s, {1e3 * run['seconds_per_call']:.3f} "
             f"ms per call, {run['calls']} calls; {total} samples", "",
             "| share | function | loop at (bytes) | what its own body executes |",
             "|---|---|---|---|"]
    for (name, lp), n in by_loop.most_common():
        if lp is None:
            what, where = "straight-line code, outside every loop", "-"
        else:
            inner = [q for q in all_loops[name] if q != lp and lp[0] <= q[0] and q[1] <= lp[1]]
            what = describe(code[name], lp, inner)
            where = f"+{lp[0] - spans[name][0]:#x} ({lp[1] - lp[0]})"
        lines.append(f"| {100 * n / total:5.1f}% | {name} | {where} | {what} |")
    for dso, n in outside.most_common(6):
        lines.append(f"| {100 * n / total:5.1f}% | {dso} | - | outside the kernel |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("op", choices=("matmul", "conv"))
    ap.add_argument("size", help="matmul: N or M,N,K; conv: C,H,F[,R] (H = W)")
    ap.add_argument("--fused", action="store_true", help="bias + ReLU epilogue")
    ap.add_argument("--packed", action="store_true", help="constant operand packed at set-up")
    ap.add_argument("--layout", default="NCHW")
    ap.add_argument("--stride", type=int, default=1, help="conv: the window's stride")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ctl", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.child:
        child(opts)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, ctl = work / "perf.data", work / "ctl"
        os.mkfifo(ctl)
        os.mkfifo(f"{ctl}.ack")
        cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
               "--child", tmp, "--ctl", str(ctl)]
        env = {**os.environ, "POLYOP_PERF_MAP": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-D", "-1",
                        f"--control=fifo:{ctl},{ctl}.ack", "-o", str(data), "--", *cmd],
                       env=env, check=True)
        print(report(work, data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
