"""The machine a benchmark ran on, for its JSON results.

``describe()`` returns the CPU model, family, count and caches (from
``lscpu``, whose whole output is kept too), the platform, the Python version
and numpy's BLAS; each benchmark adds the versions it cares about.

Example::

    >>> import hostinfo                                  # doctest: +SKIP
    >>> hostinfo.describe()["cpu_model"]                 # doctest: +SKIP
    'AMD EPYC 7B13'
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

import numpy as np


def describe() -> dict[str, Any]:
    """CPU (``lscpu``), platform, Python and numpy's BLAS."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    fields = {}
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")
        blas = " ".join(str(cfg["Build Dependencies"]["blas"].get(k, ""))
                        for k in ("name", "version"))
    except Exception:  # noqa: BLE001 - informative only
        pass
    import llvmlite.binding as llvm

    kernels = []
    try:  # which kernel OpenBLAS runs (OPENBLAS_CORETYPE may pin an older one)
        from threadpoolctl import threadpool_info

        kernels = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                   for i in threadpool_info() if i.get("internal_api") == "openblas"]
    except ImportError:
        pass
    return {
        "cpu_model": fields.get("Model name", platform.processor()),
        "llvm_cpu": llvm.get_host_cpu_name(),
        "openblas_kernels": kernels,
        "cpu_family": fields.get("CPU family", ""),
        "cpus": fields.get("CPU(s)", str(os.cpu_count())),
        "caches": {k: fields[k] for k in ("L1d cache", "L2 cache", "L3 cache") if k in fields},
        "lscpu": lscpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "blas": blas,
    }


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (``[]`` where ``/proc`` has none):
    what else ran on the machine around a measurement."""
    try:
        with open("/proc/loadavg") as fh:
            return [float(x) for x in fh.read().split()[:3]]
    except OSError:
        return []
