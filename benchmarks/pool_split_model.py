"""How evenly the thread pool's chunk dealing splits a loop, by simulation.

``polyop.codegen.threadpool`` deals a parallel loop of ``n`` iterations to
``k`` threads as ``k * g`` chunks (``g = clamp(n // k, 1, CHUNKS_PER_THREAD)``,
sizes differing by at most one, the larger first); each thread runs its own
chunks in order, then claims the others' unclaimed chunks (front first,
victims in cyclic order). This script replays that policy on loops whose
iterations cost the same (a rectangle), grow linearly (a triangle ``j <= i``:
syrk, syr2k) or shrink (``j >= i``: covariance, correlation), with every
thread running at the same speed and starting at once, and prints the
speed-up of ``k`` threads over one. It isolates the split: forks, wake-ups
and memory are left out (``autoschedule_bench.py`` profiles those).

Compared: 4 chunks a thread dealt contiguously (the pool before round-robin
dealing) and the pool's policy, ``g`` chunks a thread dealt round-robin
(thread ``v``'s ``j``-th chunk is chunk ``j * k + v``).

Usage::

    python benchmarks/pool_split_model.py            # 2 threads
    python benchmarks/pool_split_model.py --threads 4

Example::

    >>> round(speedup(shape_weights("rectangle", 200), 2, 8, True), 3)
    2.0
    >>> speedup(shape_weights("triangle up", 200), 2, 4, False) < 1.85
    True
"""

from __future__ import annotations

import argparse
import heapq
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAPES = ("rectangle", "triangle up", "triangle down")


def shape_weights(shape: str, n: int) -> list[float]:
    """Cost of each of ``n`` iterations (the inner trip count at its middle)."""
    if shape == "rectangle":
        return [1.0] * n
    up = [(i + 0.5) / n for i in range(n)]
    return up if shape == "triangle up" else up[::-1]


def chunk_bounds(c: int, n: int, chunks: int) -> tuple[int, int]:
    """The pool's ``_chunk``: sizes differ by at most one, larger first."""
    base, rem = divmod(n, chunks)
    lo = c * base + min(c, rem)
    return lo, lo + base + (c < rem)


def speedup(weights: list[float], k: int, per_thread: int, round_robin: bool) -> float:
    """Work over the finishing time of ``k`` equal threads under the pool's
    policy with ``per_thread`` chunks at most a thread."""
    n = len(weights)
    g = max(1, min(n // k, per_thread))
    chunks = k * g

    def cost(c: int) -> float:
        phys = (c % g) * k + c // g if round_robin else c
        lo, hi = chunk_bounds(phys, n, chunks)
        return sum(weights[lo:hi])

    nxt = [v * g for v in range(k)]
    events = [(0.0, v) for v in range(k)]
    finish = 0.0
    while events:
        now, v = heapq.heappop(events)
        for i in range(k):  # own chunks first, then the others' in cyclic order
            w = (v + i) % k
            if nxt[w] < (w + 1) * g:
                c = nxt[w]
                nxt[w] += 1
                heapq.heappush(events, (now + cost(c), v))
                break
        else:
            finish = max(finish, now)
    return sum(weights) / finish


def main(argv: list[str] | None = None) -> int:
    from polyop.codegen.threadpool import CHUNKS_PER_THREAD

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args(argv)
    k = opts.threads
    print(f"speed-up of {k} threads over 1 from the split alone")
    print(f"{'shape':14s} {'n':>5s} {'4 contiguous':>13s} "
          f"{f'{CHUNKS_PER_THREAD} round-robin':>15s}")
    for shape in SHAPES:
        for n in (8, 200, 240, 1000):
            w = shape_weights(shape, n)
            print(f"{shape:14s} {n:5d} {speedup(w, k, 4, False):13.3f} "
                  f"{speedup(w, k, CHUNKS_PER_THREAD, True):15.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
