"""The operators' database: the tilings tuning found, per target and shape.

One JSON file, ``ops.json`` under polyop's cache directory
(``polyop.settings.cache_subdir("tune")``, or ``$POLYOP_TUNE_DB`` when set),
maps a target (its full string, CPU and features included) and an operator
key (``"matmul float32 512x512x512 t1"``) to the best tiling found, its time
and when. ``polyop.ops.matmul`` and ``conv2d`` look their shape up here
before falling back to the target heuristic; ``polyop tune ops`` fills it.
This module imports nothing of the tuner, so the operators can consult it.

Example::

    >>> import os, tempfile
    >>> os.environ["POLYOP_TUNE_DB"] = os.path.join(tempfile.mkdtemp(), "ops.json")
    >>> store("cpu -mcpu=x", "matmul float32 8x8x8 t1", {"mr": 4}, 1e-6)
    >>> lookup("cpu -mcpu=x", "matmul float32 8x8x8 t1")["mr"]
    4
    >>> lookup("cpu -mcpu=y", "matmul float32 8x8x8 t1") is None
    True
    >>> del os.environ["POLYOP_TUNE_DB"]
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path

__all__ = ["conv2d_key", "db_path", "lookup", "matmul_key", "store"]


def db_path() -> Path:
    """Where the database lives (module docstring)."""
    override = os.environ.get("POLYOP_TUNE_DB")
    if override:
        return Path(override)
    from ..settings import cache_subdir

    return cache_subdir("tune") / "ops.json"


def matmul_key(M: int, N: int, K: int, dtype: str, threads: int) -> str:
    return f"matmul {dtype} {M}x{N}x{K} t{threads}"


def conv2d_key(shape, dtype: str, threads: int) -> str:
    s = shape
    return (f"conv2d {dtype} {s.layout} C{s.C} {s.H}x{s.W} F{s.F} {s.R}x{s.S} "
            f"stride{s.stride} pad{s.pad} t{threads}")


def _load(path: Path) -> dict:
    try:
        with path.open() as fh:
            data = json.load(fh)
    except (OSError, ValueError):  # none yet, or unreadable: the heuristic decides
        return {}
    return data if isinstance(data, dict) else {}


def lookup(target: str, key: str) -> dict | None:
    """The tiling (a dict of the operator's tiling fields) tuned for ``key`` on
    ``target``, or None."""
    entry = _load(db_path()).get("targets", {}).get(str(target), {}).get(key)
    return dict(entry["tiling"]) if isinstance(entry, dict) and "tiling" in entry else None


def store(target: str, key: str, tiling: dict, seconds: float, **extra) -> None:
    """Record ``tiling`` as the best for ``key`` on ``target`` (written atomically)."""
    path = db_path()
    data = _load(path)
    data.setdefault("version", 1)
    entry = {"tiling": tiling, "seconds": seconds,
             "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             **extra}
    data.setdefault("targets", {}).setdefault(str(target), {})[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ops-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)
