"""What the OS and the system C compiler say about this machine.

Facts ``polyop.Target`` takes from outside LLVM: the CPUs this process may
use (``available_cpus``), the cache sizes of the host (``host_caches``,
from sysfs or ``sysconf``) and of named CPUs (``CACHES``: LLVM does not
model caches), and the flags that make the C compiler generate code for a
target (``c_flags``, for C micro-kernels and exported libraries).

Example::

    >>> available_cpus() >= 1
    True
    >>> CACHES["haswell"]
    (32768, 262144, 8388608)
"""

from __future__ import annotations

import os
import shlex
import subprocess

from .errors import TargetError

__all__ = ["CACHES", "DEFAULT_CACHES", "available_cpus", "c_flags", "host_caches"]

#: (L1 data, L2, L3) bytes of named CPUs: one typical part of each (L2 per core,
#: L3 shared by the core complex or die the core sits in)
KIB, MIB = 1 << 10, 1 << 20
CACHES: dict[str, tuple[int, int, int]] = {
    "haswell": (32 * KIB, 256 * KIB, 8 * MIB),
    "broadwell": (32 * KIB, 256 * KIB, 8 * MIB),
    "skylake": (32 * KIB, 256 * KIB, 8 * MIB),
    "skylake-avx512": (32 * KIB, 1 * MIB, 27 * MIB + 512 * KIB),
    "cascadelake": (32 * KIB, 1 * MIB, 27 * MIB + 512 * KIB),
    "icelake-server": (48 * KIB, 1280 * KIB, 48 * MIB),
    "sapphirerapids": (48 * KIB, 2 * MIB, 60 * MIB),
    "znver1": (32 * KIB, 512 * KIB, 8 * MIB),
    "znver2": (32 * KIB, 512 * KIB, 16 * MIB),
    "znver3": (32 * KIB, 512 * KIB, 32 * MIB),
    "znver4": (32 * KIB, 1 * MIB, 32 * MIB),
    "znver5": (48 * KIB, 1 * MIB, 32 * MIB),
    "neoverse-n1": (64 * KIB, 1 * MIB, 32 * MIB),
    "neoverse-v1": (64 * KIB, 1 * MIB, 32 * MIB),
    "neoverse-v2": (64 * KIB, 2 * MIB, 36 * MIB),
    "apple-m1": (128 * KIB, 12 * MIB, 8 * MIB),
    "apple-m2": (128 * KIB, 16 * MIB, 8 * MIB),
}
#: caches assumed for a CPU neither the OS nor ``CACHES`` describes
DEFAULT_CACHES = (32 * KIB, 512 * KIB, 8 * MIB)


def available_cpus(cgroup: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask where the OS has one
    (``taskset``, cpusets), else ``os.cpu_count()``; fewer when a CPU quota
    (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``: ``docker --cpus``)
    allows less (rounded up).

    Example::

        >>> available_cpus() >= 1
        True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    for name, split in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            with open(os.path.join(cgroup, name)) as fh:
                quota, *rest = fh.read().split()
            if split is not None:
                with open(os.path.join(cgroup, split)) as fh:
                    rest = fh.read().split()
            if quota not in ("max", "-1") and rest:
                n = min(n, -(-int(quota) // int(rest[0])))
                break
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return max(1, n)


def host_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> tuple | None:
    """(L1d, L2, L3) bytes of CPU 0 from sysfs, else ``sysconf``; None if
    neither knows."""
    sizes: dict[int, int] = {}
    try:
        for entry in sorted(os.listdir(root)):
            if not entry.startswith("index"):
                continue
            with open(os.path.join(root, entry, "type")) as fh:
                kind = fh.read().strip()
            with open(os.path.join(root, entry, "level")) as fh:
                level = int(fh.read())
            with open(os.path.join(root, entry, "size")) as fh:
                text = fh.read().strip()
            if kind in ("Data", "Unified") and text:
                scale = {"K": KIB, "M": MIB, "G": 1 << 30}.get(text[-1], 1)
                sizes[level] = int(text.rstrip("KMG")) * scale
    except (OSError, ValueError):
        sizes = {}
    if not sizes:
        for level, name in ((1, "SC_LEVEL1_DCACHE_SIZE"), (2, "SC_LEVEL2_CACHE_SIZE"),
                            (3, "SC_LEVEL3_CACHE_SIZE")):
            try:
                value = os.sysconf(name)
            except (ValueError, OSError):
                continue
            if value > 0:
                sizes[level] = value
    if 1 not in sizes:
        return None
    return tuple(sizes.get(level, d) for level, d in zip((1, 2, 3), DEFAULT_CACHES))


def c_flags(target, compiler: str) -> tuple[str, ...]:
    """Flags that make the C compiler ``compiler`` generate code for ``target``
    (a ``polyop.Target``): see ``Target.c_flags``."""
    def flags(cpu: str) -> list[str]:
        if target.arch == "aarch64":
            return ["-mcpu=" + cpu + "".join("+" + ("" if a[0] == "+" else "no") + a[1:]
                                             for a in target.attrs)]
        return ["-march=" + cpu] + ["-m" + ("" if a[0] == "+" else "no-") + a[1:]
                                    for a in target.attrs]

    def accepted(fl: list[str]) -> str | None:
        cmd = [*shlex.split(compiler), *fl, "-E", "-x", "c", os.devnull, "-o", os.devnull]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        return None if done.returncode == 0 else done.stderr.strip()

    why = accepted(flags(target.cpu))
    if why is None:
        return tuple(flags(target.cpu))
    if target.is_host and accepted(flags("native")) is None:
        return tuple(flags("native"))
    raise TargetError(f"target {str(target)!r}: the C compiler {compiler!r} does not accept "
                      f"{' '.join(flags(target.cpu))} ({_first_error(why)}); "
                      f"set $CC to one that knows this CPU")


def _first_error(text: str | None) -> str:
    lines = (text or "").splitlines()
    return next((x for x in lines if "error" in x), lines[-1] if lines else "")
