"""Compiling CUDA C: NVRTC (cuda-python) when importable, else nvcc; cached on disk.

``compile_cubin(source, arch)`` returns the cubin of ``source`` for ``arch``
(``sm_80``…); ``compile_many(sources, archs)`` compiles several programs'
sources as one translation unit, one nvcc run per architecture (what the
tests do: nvcc costs 1.5–2 s per run, mostly start-up). Every compile uses ``--fmad=false``: no
contraction, as the CPU back end. Results are cached by the hash of source,
architecture and compiler under ``polyop.settings.cache_subdir("cuda")``.
Neither compiler present: ``polyop.TargetUnavailableError``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from polyop.errors import CodegenError, TargetUnavailableError

FLAGS = ("--fmad=false", "-std=c++17")


def nvcc_path() -> str | None:
    """The nvcc to use: ``$POLYOP_NVCC``, else ``nvcc`` on the PATH, else
    ``/usr/local/cuda/bin/nvcc``; ``None`` if there is none."""
    for candidate in (os.environ.get("POLYOP_NVCC"), shutil.which("nvcc"),
                      "/usr/local/cuda/bin/nvcc"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def nvrtc():
    """cuda-python's NVRTC bindings, or ``None``."""
    try:
        from cuda.bindings import nvrtc as module
    except ImportError:
        try:
            from cuda import nvrtc as module  # cuda-python before 12.6
        except ImportError:
            return None
    return module


def available() -> bool:
    """Whether CUDA C can be compiled here (NVRTC or nvcc)."""
    return nvrtc() is not None or nvcc_path() is not None


def _cache_dir() -> Path:
    from polyop.settings import cache_subdir

    return Path(cache_subdir("cuda"))


def _key(source: str, arch: str, tool: str) -> str:
    return hashlib.sha256(f"{tool}\0{arch}\0{FLAGS}\0{source}".encode()).hexdigest()[:32]


def compile_cubin(source: str, arch: str) -> bytes:
    """The cubin of the CUDA C ``source`` for ``arch`` (``CodegenError`` with
    the compiler's log if it refuses the code)."""
    rtc = nvrtc()
    tool = "nvrtc" if rtc is not None else nvcc_path()
    if tool is None:
        raise TargetUnavailableError("no CUDA compiler: install cuda-python and "
                                     "nvidia-cuda-nvrtc (NVRTC), or the CUDA toolkit (nvcc)")
    path = _cache_dir() / f"{_key(source, arch, tool)}.cubin"
    if path.exists():
        return path.read_bytes()
    cubin = _nvrtc(rtc, source, arch) if rtc is not None else \
        compile_many([source], (arch,))[arch]
    _store(path, cubin)
    return cubin


def _store(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: concurrent compiles never see half a file


def _toolkit_includes() -> list[str]:
    """A CUDA toolkit's include folder, when there is one: NVRTC from pip has
    no ``mma.h`` (the WMMA tiles of ``polyop_cuda.wmma`` include it)."""
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and os.path.isfile(os.path.join(root, "include", "mma.h")):
            return [os.path.join(root, "include")]
    return []


def _nvrtc(rtc, source: str, arch: str) -> bytes:
    def check(result, what):
        err = result[0]
        if int(err) != 0:
            raise CodegenError(f"NVRTC {what} failed: {err}", "", "", "compile")
        return result[1:]

    (prog,) = check(rtc.nvrtcCreateProgram(source.encode(), b"polyop.cu", 0, [], []), "create")
    opts = [f"--gpu-architecture={arch}".encode(), *(f.encode() for f in FLAGS),
            *(f"-I{d}".encode() for d in _toolkit_includes())]
    err = rtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
    if int(err) != 0:
        (size,) = check(rtc.nvrtcGetProgramLogSize(prog), "log size")
        log = b" " * size
        rtc.nvrtcGetProgramLog(prog, log)
        raise CodegenError(f"NVRTC refused the generated CUDA C:\n{log.decode(errors='replace')}",
                           "", "", "compile")
    (size,) = check(rtc.nvrtcGetCUBINSize(prog), "cubin size")
    cubin = b" " * size
    check(rtc.nvrtcGetCUBIN(prog, cubin), "cubin")
    rtc.nvrtcDestroyProgram(prog)
    return cubin


def compile_many(sources: list[str], archs: tuple[str, ...] = ("sm_80", "sm_90"),
                 timeout: float = 600) -> dict[str, bytes]:
    """``sources`` (whole CUDA C files of different programs: host code too)
    compiled together by nvcc, one translation unit in which each source is
    a namespace of its own (nvcc's cost is mostly per run and per file), to a
    cubin per architecture; the runs for the architectures go in parallel.
    Returns ``{arch: cubin}``; the kernels' names (``extern "C"``) must differ
    between sources. A refusal is a ``CodegenError`` with nvcc's messages."""
    nvcc = nvcc_path()
    if nvcc is None:
        raise TargetUnavailableError("nvcc not found (set POLYOP_NVCC or put nvcc on the PATH)")
    includes: list[str] = []
    parts = []
    for k, src in enumerate(sources):
        lines = src.splitlines()
        includes += [x for x in lines if x.startswith("#include") and x not in includes]
        body = "\n".join(x for x in lines if not x.startswith("#include"))
        parts.append(f"namespace polyop_source_{k} {{\n{body}\n}}")
    unit = "\n".join(includes + parts) + "\n"
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as d:
        Path(d, "all.cu").write_text(unit)
        runs = {}
        for arch in archs:
            path = _cache_dir() / f"{_key(unit, arch, 'nvcc')}.cubin"
            if path.exists():
                out[arch] = path.read_bytes()
                continue
            runs[arch] = subprocess.Popen(
                [nvcc, "-cubin", f"-arch={arch}", *FLAGS, "-o", f"{arch}.cubin", "all.cu"],
                cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for arch, run in runs.items():
            log, _ = run.communicate(timeout=timeout)
            if run.returncode != 0:
                raise CodegenError(f"nvcc refused generated CUDA C for {arch}:\n{_tidy(log)}",
                                   "", "", "compile")
            out[arch] = Path(d, f"{arch}.cubin").read_bytes()
            _store(_cache_dir() / f"{_key(unit, arch, 'nvcc')}.cubin", out[arch])
    return out


def _tidy(text: str) -> str:
    return re.sub(r"/tmp/[^ :]*/", "", text)[-4000:]
