"""The facts of GPU targets: ``polyop.Target("cuda -arch=sm_90")``, ``Target("opencl")``.

``polyop.target`` parses the kind and hands the options here. A CUDA target's
facts come from a table per architecture (``CUDA_ARCHS``: the limits NVIDIA
documents for each compute capability, the SM count of the data-centre part
of that generation where one part defines it); an OpenCL target's from the
device itself when pyopencl finds one, else conservative defaults
(``OPENCL_DEFAULTS``). Options override single facts (to build for a smaller
part, or to test a limit)::

    cuda                                   sm_80 (the default architecture)
    cuda -arch=sm_90                       Hopper: 227 KiB of shared memory per block opt-in
    opencl                                 a GPU, else a CPU device whose compiler works here
    opencl -device=1                       the second device, counting over all platforms
    cuda -max-threads-per-block=256 -max-shared-memory-per-block=16384

Nothing here imports a GPU library at module import: pyopencl is imported
only when an ``opencl`` target is created.

Example::

    >>> f = cuda_facts("cuda", {"-arch": "sm_90"})
    >>> f.arch, f.max_threads_per_block, f.shared_memory_per_block, f.warp_size, f.sm_count
    ('sm_90', 1024, 49152, 32, 132)
    >>> f.shared_memory_per_block_optin
    232448
"""

from __future__ import annotations

import os
import re
import site
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import TargetError

#: the options of the GPU kinds (``-device`` is OpenCL's, ``-arch`` CUDA's)
GPU_OPTIONS = ("-arch", "-device", "-max-threads-per-block", "-max-shared-memory-per-block")


@dataclass(frozen=True)
class GpuFacts:
    """What code generation and launches read of a GPU.

    ``arch``: ``sm_XY`` (CUDA) or the OpenCL device's name; ``device``: the
    OpenCL device's index (``None`` for CUDA); ``max_threads_per_block``
    (work-group size in OpenCL); ``shared_memory_per_block`` (bytes of
    ``__shared__``/``__local`` memory a block may use without opting in) and
    ``shared_memory_per_block_optin`` (with ``cudaFuncSetAttribute``);
    ``warp_size`` (OpenCL: the preferred work-group size multiple);
    ``sm_count`` (compute units; ``None`` where not known);
    ``max_grid`` (blocks per grid along x, y, z); ``registers_per_block``;
    ``queried``: the facts were read from a device, not a table.
    """

    arch: str
    max_threads_per_block: int = 1024
    max_block: tuple[int, int, int] = (1024, 1024, 64)
    max_grid: tuple[int, int, int] = (2**31 - 1, 65535, 65535)
    shared_memory_per_block: int = 48 * 1024
    shared_memory_per_block_optin: int = 48 * 1024
    warp_size: int = 32
    sm_count: int | None = None
    registers_per_block: int = 65536
    device: int | None = None
    queried: bool = False


#: compute capability -> (opt-in shared memory per block in bytes, SM count of
#: the generation's data-centre part or None); every one of them: 1024 threads
#: per block, 48 KiB shared memory without opt-in, warps of 32, 64 K registers
CUDA_ARCHS: dict[str, tuple[int, int | None]] = {
    "sm_70": (96 * 1024, 80),       # V100
    "sm_75": (64 * 1024, 40),       # T4
    "sm_80": (163 * 1024, 108),     # A100
    "sm_86": (99 * 1024, None),     # GA10x: many parts
    "sm_87": (163 * 1024, None),    # Orin
    "sm_89": (99 * 1024, None),     # AD10x: many parts
    "sm_90": (227 * 1024, 132),     # H100 / H200 SXM
    "sm_100": (227 * 1024, 148),    # B200
    "sm_120": (99 * 1024, None),    # consumer Blackwell
}
DEFAULT_ARCH = "sm_80"

#: an OpenCL target's facts when no device answers (OpenCL 1.2's guaranteed
#: minimum of local memory; a work-group size every GPU accepts)
OPENCL_DEFAULTS = GpuFacts("opencl", max_threads_per_block=256, max_block=(256, 256, 64),
                           shared_memory_per_block=32 * 1024,
                           shared_memory_per_block_optin=32 * 1024, warp_size=1)


def _int_option(spec: str, opts: dict[str, str], name: str) -> int | None:
    value = opts.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise TargetError(f"target {spec!r}: {name}={value}: expected a positive integer")
    return int(value)


def _overrides(spec: str, facts: GpuFacts, opts: dict[str, str]) -> GpuFacts:
    threads = _int_option(spec, opts, "-max-threads-per-block")
    if threads is not None:
        facts = replace(facts, max_threads_per_block=threads,
                        max_block=tuple(min(threads, b) for b in facts.max_block))
    shared = _int_option(spec, opts, "-max-shared-memory-per-block")
    if shared is not None:
        facts = replace(facts, shared_memory_per_block=shared,
                        shared_memory_per_block_optin=shared)
    return facts


def cuda_facts(spec: str, opts: dict[str, str]) -> GpuFacts:
    """The facts of ``cuda [-arch=sm_XY] ...`` (a ``TargetError`` names an
    unknown architecture or an option of another kind)."""
    if "-device" in opts:
        raise TargetError(f"target {spec!r}: -device is an option of the opencl kind "
                          "(a CUDA target names an architecture: -arch=sm_90)")
    arch = opts.get("-arch", DEFAULT_ARCH)
    if not re.fullmatch(r"sm_\d+a?", arch) or arch.rstrip("a") not in CUDA_ARCHS:
        raise TargetError(f"target {spec!r}: unknown CUDA architecture -arch={arch} "
                          f"(known: {', '.join(CUDA_ARCHS)})")
    optin, sms = CUDA_ARCHS[arch.rstrip("a")]
    facts = GpuFacts(arch, shared_memory_per_block_optin=optin, sm_count=sms)
    return _overrides(spec, facts, opts)


def opencl_facts(spec: str, opts: dict[str, str]) -> GpuFacts:
    """The facts of ``opencl [-device=K] ...``: read from the device when
    pyopencl finds it, else ``OPENCL_DEFAULTS``."""
    if "-arch" in opts:
        raise TargetError(f"target {spec!r}: -arch is an option of the cuda kind "
                          "(an OpenCL target names a device: -device=0)")
    index = opts.get("-device")
    if index is not None and not index.isdigit():
        raise TargetError(f"target {spec!r}: -device={index}: expected a device index "
                          "(0, 1, ...)")
    device = opencl_device(int(index) if index is not None else None)
    if device is None:
        facts = replace(OPENCL_DEFAULTS, device=int(index) if index is not None else None)
    else:
        position, dev = device
        sizes = tuple(int(s) for s in dev.max_work_item_sizes)[:3]
        try:
            multiple = int(dev.preferred_work_group_size_multiple)
        except Exception:  # noqa: BLE001 - an optional query some drivers refuse
            multiple = 1
        facts = GpuFacts(dev.name.strip(), max_threads_per_block=int(dev.max_work_group_size),
                         max_block=(sizes + (1, 1, 1))[:3],
                         shared_memory_per_block=int(dev.local_mem_size),
                         shared_memory_per_block_optin=int(dev.local_mem_size),
                         warp_size=max(1, multiple), sm_count=int(dev.max_compute_units),
                         device=position, queried=True)
    return _overrides(spec, facts, opts)


#: a kernel every OpenCL C compiler builds: whether a device's compiler works here
_PROBE = "__kernel void polyop_probe(__global float *a) { a[get_global_id(0)] *= 2.0f; }"
_problems: dict[int, str | None] = {}
#: the name of PoCL's OpenCL platform
POCL_PLATFORM = "Portable Computing Language"
_vendors_done = False


def _platforms(cl) -> list:
    """pyopencl's platforms, with the Intel CPU runtime of ``pip install
    intel-opencl-rt`` among them where it is installed.

    That wheel puts ``libintelocl.so`` under ``lib`` of the environment (or
    of the user's base) but its ICD file names a path of the machine it was
    built on, so the OpenCL loader cannot find it: the first call lists it
    in a vendors directory of its own
    (``OCL_ICD_VENDORS``, unless the user set that) for as long as the loader
    reads it. PoCL's pip build (LLVM 14) fails on CPUs newer than its LLVM
    (Zen 5: ``unknown target CPU 'generic'``); Intel's runtime still runs there.
    """
    global _vendors_done
    # the environment's prefix, or the user's (pip install --user)
    lib = next((p for p in (Path(base, "lib", "libintelocl.so")
                            for base in (sys.prefix, site.getuserbase())) if p.exists()), None)
    if _vendors_done or "OCL_ICD_VENDORS" in os.environ or lib is None:
        return cl.get_platforms()
    _vendors_done = True
    with tempfile.TemporaryDirectory() as vendors:
        Path(vendors, "intel-cpu.icd").write_text(f"{lib}\n")
        os.environ["OCL_ICD_VENDORS"] = vendors
        try:
            return cl.get_platforms()  # the loader reads the vendors once, here
        finally:
            del os.environ["OCL_ICD_VENDORS"]  # children register for themselves


def compiler_problem(device) -> str | None:
    """Why ``device``'s OpenCL compiler cannot build a trivial kernel on this
    machine (its message), or ``None`` when it can; asked once per device."""
    key = device.int_ptr
    if key not in _problems:
        import pyopencl as cl

        try:
            with warnings.catch_warnings():  # a compiler's log of a successful build
                warnings.simplefilter("ignore", cl.CompilerWarning)
                cl.Program(cl.Context([device]), _PROBE).build()
            _problems[key] = None
        except cl.Error as e:
            _problems[key] = " ".join(str(e).split())
    return _problems[key]


def default_device(devices: list, problem=compiler_problem) -> int:
    """The position of the device ``opencl`` means: the first GPU, else the
    first CPU device whose compiler works here (``problem`` is ``None``),
    PoCL's before others (the runtime polyop's GPU tests are written for),
    else the first device (building for it then says why it fails).

    >>> from types import SimpleNamespace as NS
    >>> def dev(platform, kind=2):  # CL_DEVICE_TYPE_CPU 2, _GPU 4
    ...     return NS(platform=NS(name=platform), type=kind)
    >>> intel, pocl = dev("Intel(R) OpenCL"), dev("Portable Computing Language")
    >>> default_device([intel, pocl], problem=lambda d: None)
    1
    >>> default_device([intel, pocl], problem=lambda d: "unknown CPU" if d is pocl else None)
    0
    >>> default_device([intel, pocl, dev("NVIDIA CUDA", kind=4)], problem=lambda d: None)
    2
    """
    gpus = [k for k, d in enumerate(devices) if d.type & 4]  # CL_DEVICE_TYPE_GPU
    if gpus:
        return gpus[0]
    pocl_first = sorted(range(len(devices)),
                        key=lambda k: POCL_PLATFORM not in devices[k].platform.name)
    return next((k for k in pocl_first if problem(devices[k]) is None), 0)


def opencl_devices() -> list:
    """Every OpenCL device over all platforms, in the order ``-device=K``
    counts them, Intel's pip-installed CPU runtime among them (``_platforms``:
    list devices through this rather than ``pyopencl.get_platforms()``, which,
    called first, fixes the loader's list without it); empty without pyopencl
    or a platform."""
    try:
        import pyopencl as cl

        return [d for p in _platforms(cl) for d in p.get_devices()]
    except Exception:  # noqa: BLE001 - no pyopencl, no ICD, no platform: no device
        return []


def opencl_device(index: int | None = None):
    """``(position, pyopencl.Device)``: device ``index`` of ``opencl_devices()``,
    or (``None``) the ``default_device``; ``None`` when there is none."""
    devices = opencl_devices()
    if not devices:
        return None
    if index is not None:
        return (index, devices[index]) if index < len(devices) else None
    k = default_device(devices)
    return k, devices[k]
