"""What code is generated for: ``polyop.Target``, and the LLVM machine of each.

A ``Target`` names a machine (a CPU, or a GPU: the kinds ``"cuda"`` and
``"opencl"``, whose facts ``polyop.gputarget`` describes) and the facts about it that
schedules and code generation read: vector width per element type, number of
vector registers, fused multiply-add, cache sizes, cores. Nothing else in
polyop knows which machine it runs on: the host is one target among others,
the default (``"cpu"``).

Written in TVM's style, a kind followed by options::

    cpu                                        the host: its triple, CPU and features
    cpu -mcpu=skylake-avx512                   a named CPU (the host's triple)
    cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2
    cpu -mattr=-avx512f                        the host without AVX-512
    cpu -mcpu=znver5 -mattr=-avx512f,+fma -num-cores=8

``-mattr`` edits (``+feature``/``-feature``, LLVM's names) apply on top of the
CPU's own features (the host's, or those LLVM gives the named CPU);
``-num-cores`` sets ``cores`` (default: the CPUs this process may use on the
host, 1 for another CPU). ``llvm`` is accepted as another name of ``cpu``.

The facts of a named CPU come from LLVM itself, not from a table of ours: a
small probe module (a 16 × f32 add, an f32 fused multiply-add, an 8 × i32 add)
is compiled for the target machine and its assembly read — which registers
the add uses (zmm / ymm / xmm on x86, ``v.4s`` on AArch64), whether the FMA
became one instruction. Only cache sizes, which LLVM does not model, come
from elsewhere (``polyop.hostinfo``): from the OS for the host, from a table
(``CACHES``) for named CPUs, ``DEFAULT_CACHES`` else; and the C compiler's
flags for the target (``Target.c_flags``) from the compiler itself.

This module also owns the LLVM side of a target — one place, so that no
code generator keeps its own: ``target_machine(target)`` (one per target,
created on first use; an unknown CPU or feature is refused before LLVM
sees it, since LLVM aborts the process on some), ``new_jit_machine``,
``LLVM_LOCK`` (LLVM's global context is not thread-safe) and
``optimize`` (the O3 pipeline). It lives here rather than in
``polyop.codegen`` because the target's facts are themselves read from LLVM
and every stage (schedules, operators, code generators) imports this module:
under ``polyop.codegen`` the package's own imports would lead back here.

Example::

    >>> import polyop
    >>> t = polyop.Target("cpu -mtriple=x86_64-linux-gnu -mcpu=haswell")
    >>> t.vector_bits, t.lanes("f32"), t.vector_registers, t.has_fma
    (256, 8, 16, True)
    >>> polyop.Target("cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2").lanes("f64")
    2
    >>> t = polyop.Target("cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -mattr=-avx512f")
    >>> str(t), t.vector_bits
    ('cpu -mtriple=x86_64-unknown-linux-gnu -mcpu=skylake-avx512 -mattr=-avx512f', 256)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .errors import TargetError
from .gputarget import GPU_OPTIONS, cuda_facts, opencl_facts
from .hostinfo import CACHES, DEFAULT_CACHES, available_cpus, c_flags, host_caches

__all__ = ["CACHES", "DEFAULT_CACHES", "LLVM_LOCK", "Target", "as_target", "available_cpus", "host",
           "new_jit_machine", "optimize", "target_machine"]

GPU_KINDS = ("cuda", "opencl")
KINDS = ("cpu", *GPU_KINDS)
_ALIASES = {"llvm": "cpu"}
_OPTIONS = ("-mtriple", "-mcpu", "-mattr", "-num-cores")

_SIZES = {"f32": 4, "f64": 8, "i32": 4, "i64": 8}


@dataclass(frozen=True)
class _Facts:
    vector_bits: int
    has_fma: bool
    avx512: bool  # x86: 32 vector registers (zmm0-31)


class Target:
    """A machine code is generated for; see the module docstring for the
    syntax. Immutable and hashable; equal targets compare equal whatever
    their spelling. Attributes: ``kind``, ``triple``, ``cpu``, ``features``
    (the LLVM feature string: the host's features with the edits applied,
    or only the edits for a named CPU), ``attrs`` (the ``-mattr`` edits),
    ``is_host`` (code for it runs here), ``cores``; derived facts below.

    Example::

        >>> t = Target("cpu -mtriple=x86_64-linux-gnu -mcpu=znver4")
        >>> t.vector_bits, t.vector_registers, t.lanes("f64")
        (512, 32, 8)
        >>> Target("gpu")
        Traceback (most recent call last):
        ...
        polyop.errors.TargetError: target 'gpu': unknown kind 'gpu' (known: cpu, cuda, opencl)
        >>> t = Target("cuda -arch=sm_90")
        >>> t.is_gpu, t.gpu.max_threads_per_block, t.gpu.warp_size, str(Target("cuda"))
        (True, 1024, 32, 'cuda -arch=sm_80')
    """

    __slots__ = ("kind", "triple", "cpu", "attrs", "features", "cores", "is_host", "_text",
                 "__dict__")

    def __init__(self, spec: str = "cpu"):
        if not isinstance(spec, str):
            raise TargetError(f"Target: expected a string such as 'cpu -mcpu=haswell', "
                              f"got {type(spec).__name__}")
        words = spec.split()
        if not words:
            raise TargetError("Target: empty target string (try 'cpu')")
        kind = _ALIASES.get(words[0], words[0])
        if kind not in KINDS:
            raise TargetError(f"target {spec!r}: unknown kind {words[0]!r} "
                              f"(known: {', '.join(KINDS)})")
        if kind in GPU_KINDS:
            self._init_gpu(spec, kind, _parse_options(spec, words[1:], GPU_OPTIONS))
            return
        opts = _parse_options(spec, words[1:])
        host_triple, host_cpu, host_features = _host_llvm()
        triple = _normalise_triple(spec, opts.get("-mtriple", host_triple))
        cpu = opts.get("-mcpu", host_cpu if triple == host_triple else "")
        if not cpu:
            raise TargetError(f"target {spec!r}: -mtriple={triple} is not the host's: "
                              f"name its CPU with -mcpu=")
        attrs = _parse_attrs(spec, opts.get("-mattr", ""))
        named = "-mcpu" in opts or triple != host_triple
        if not named:  # the host's features with the edits applied
            features = _apply_attrs(host_features, attrs)
        else:
            features = ",".join(attrs)
        # runs here: the host's triple and CPU, and no feature the host lacks
        have = set(host_features.split(","))
        is_host = (triple == host_triple and cpu == host_cpu
                   and all(f in have for f in features.split(",") if f.startswith("+")))
        cores = opts.get("-num-cores")
        if cores is None:
            n = available_cpus() if is_host else 1
        else:
            if not cores.isdigit() or int(cores) < 1:
                raise TargetError(f"target {spec!r}: -num-cores={cores}: expected a "
                                  f"positive integer")
            n = int(cores)
        text = f"{kind} -mtriple={triple} -mcpu={cpu}"
        if attrs:
            text += " -mattr=" + ",".join(attrs)
        if cores is not None:
            text += f" -num-cores={n}"
        for name, value in (("kind", kind), ("triple", triple), ("cpu", cpu),
                            ("attrs", tuple(attrs)), ("features", features), ("cores", n),
                            ("is_host", is_host), ("_text", text)):
            object.__setattr__(self, name, value)
        target_machine(self)  # refuses an unknown CPU or feature now

    def _init_gpu(self, spec: str, kind: str, opts: dict[str, str]) -> None:
        """A ``cuda`` or ``opencl`` target: its facts (``gpu``) from
        ``polyop.gputarget``; no LLVM machine (``triple`` is NVPTX's for CUDA)."""
        facts = cuda_facts(spec, opts) if kind == "cuda" else opencl_facts(spec, opts)
        text = " ".join([kind] + [f"{k}={opts[k]}" for k in GPU_OPTIONS if k in opts])
        if kind == "cuda" and "-arch" not in opts:
            text = f"cuda -arch={facts.arch}" + text[4:]
        triple = "nvptx64-nvidia-cuda" if kind == "cuda" else ""
        for name, value in (("kind", kind), ("triple", triple), ("cpu", facts.arch),
                            ("attrs", ()), ("features", ""), ("cores", facts.sm_count or 1),
                            ("is_host", False), ("_text", text), ("gpu", facts)):
            object.__setattr__(self, name, value)

    @property
    def is_gpu(self) -> bool:
        """A ``cuda`` or ``opencl`` target (its facts: ``self.gpu``, a
        ``polyop.gputarget.GpuFacts``)."""
        return self.kind in GPU_KINDS

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Target is immutable (cannot set {name})")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Target({self._text!r})"

    def _key(self) -> tuple:
        return (self.kind, self.triple, self.cpu, self.features, self.cores,
                self.__dict__.get("gpu"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self):
        return (as_target, (self._text,))

    # -- derived facts ---------------------------------------------------------------------
    @property
    def arch(self) -> str:
        """``x86_64`` or ``aarch64``."""
        return _arch(self.triple)

    @cached_property
    def _facts(self) -> _Facts:
        return _probe(self)

    @property
    def vector_bits(self) -> int:
        """Width of the widest SIMD register the code may use: 512 with
        AVX-512F, 256 with AVX, 128 with SSE or NEON (0 without SIMD)."""
        return self._facts.vector_bits

    @property
    def autovec_bits(self) -> int:
        """The vector width LLVM's own vectorizers are asked to prefer in a
        kernel polyop leaves to them (one with no ``vectorize`` loop):
        ``vector_bits``, but 256 on a CPU that runs a 512-bit operation as
        two 256-bit halves (``SPLIT_512``), where 512-bit vectors only double
        the iterations a short loop leaves to its scalar remainder. On Zen 4,
        PolyBench MEDIUM with no schedule: heat-3d 7.2 → 6.0 ms, jacobi-2d
        4.0 → 3.6, gemm 1.34 → 1.27 (AVX2 code 6.1, 3.6, 0.89), adi keeps
        AVX-512's 55 ms (64 as AVX2 code).

        Example::

            >>> Target("cpu -mtriple=x86_64-linux-gnu -mcpu=znver4").autovec_bits
            256
            >>> Target("cpu -mtriple=x86_64-linux-gnu -mcpu=znver5").autovec_bits
            512
        """
        if self.vector_bits > 256 and self.cpu in SPLIT_512:
            return 256
        return self.vector_bits

    @property
    def vector_registers(self) -> int:
        """Architectural vector registers: 32 on AArch64 and with AVX-512
        (zmm0-31), 16 otherwise (xmm/ymm0-15)."""
        return 32 if self.arch == "aarch64" or self._facts.avx512 else 16

    @property
    def has_fma(self) -> bool:
        """A fused multiply-add instruction for vectors of floats."""
        return self._facts.has_fma

    def lanes(self, dtype) -> int:
        """Elements of ``dtype`` (``'f32'``, ``'f64'``, ``'i32'``, ``'i64'``, a
        polyop or numpy dtype) in one vector register (1 without SIMD).

        Example::

            >>> Target("cpu -mtriple=x86_64-linux-gnu -mcpu=haswell").lanes("f64")
            4
        """
        return max(1, self.vector_bits // (8 * _size(dtype)))

    @cached_property
    def caches(self) -> tuple[int, int, int]:
        """(L1 data, L2, L3) cache bytes: the OS's for the host, ``CACHES``
        for a named CPU it lists, ``DEFAULT_CACHES`` else."""
        if self.is_host:
            found = host_caches()
            if found is not None:
                return found
        return CACHES.get(self.cpu, DEFAULT_CACHES)

    @property
    def l1d(self) -> int:
        """L1 data cache bytes (of one core)."""
        return self.caches[0]

    @property
    def l2(self) -> int:
        """L2 cache bytes (of one core, or of its cluster where shared)."""
        return self.caches[1]

    @property
    def l3(self) -> int:
        """L3 (last-level) cache bytes shared by the core's complex or die."""
        return self.caches[2]

    def c_flags(self, compiler: str = "cc") -> tuple[str, ...]:
        """Flags that make the C compiler ``compiler`` generate code for this
        target: ``-march=<cpu>`` (x86) or ``-mcpu=<cpu>`` (AArch64) with the
        ``-mattr`` edits (``-mno-avx512f``; ``+nosve`` on AArch64). For the
        host, a compiler that does not know LLVM's name of its CPU gets
        ``-march=native`` (``-mcpu=native``) instead; for another CPU that is a
        ``TargetError``. Checked by running the compiler once (remembered)."""
        key = (self._key(), compiler)
        if key not in _cflags:
            _cflags[key] = c_flags(self, compiler)
        return _cflags[key]

    @property
    def llvm_machine(self):
        """This target's LLVM ``TargetMachine`` (``target_machine(self)``)."""
        return target_machine(self)


def as_target(target: Target | str | None = None) -> Target:
    """``target`` as a ``Target``: ``None`` is the host, a string is parsed
    (once: parsed strings are remembered), a ``Target`` is returned as is.

    Example::

        >>> as_target() == as_target("cpu") == host()
        True
        >>> as_target("cpu -mcpu=neoverse-v2 -mtriple=aarch64-linux-gnu") is \\
        ...     as_target("cpu -mcpu=neoverse-v2 -mtriple=aarch64-linux-gnu")
        True
    """
    if target is None:
        target = "cpu"
    if isinstance(target, Target):
        return target
    if not isinstance(target, str):
        raise TargetError(f"expected a target (a polyop.Target or a string such as "
                          f"'cpu -mcpu=haswell'), got {type(target).__name__}")
    found = _parsed.get(target)
    if found is None:
        found = _parsed.setdefault(target, Target(target))
    return found


def host() -> Target:
    """The machine this process runs on (``Target("cpu")``)."""
    return as_target("cpu")


_parsed: dict[str, Target] = {}
_cflags: dict[tuple, tuple[str, ...]] = {}
#: CPUs (LLVM's names) whose 512-bit vector operations run as two 256-bit
#: halves: AMD Zen 4 (Zen 5 has whole 512-bit data paths)
SPLIT_512 = frozenset({"znver4"})


# -- parsing ---------------------------------------------------------------------------------

def _parse_options(spec: str, words: list[str],
                   known: tuple[str, ...] = _OPTIONS) -> dict[str, str]:
    opts: dict[str, str] = {}
    for w in words:
        name, eq, value = w.partition("=")
        if name not in known:
            raise TargetError(f"target {spec!r}: unknown option {w!r} "
                              f"(known: {', '.join(o + '=' for o in known)})")
        if not eq or not value:
            raise TargetError(f"target {spec!r}: option {name} needs a value ({name}=...)")
        if name in opts:
            raise TargetError(f"target {spec!r}: option {name} given twice")
        opts[name] = value
    return opts


def _parse_attrs(spec: str, text: str) -> list[str]:
    attrs = []
    for a in filter(None, text.split(",")):
        if a[0] not in "+-" or not re.fullmatch(r"[+-][A-Za-z0-9_.-]+", a):
            raise TargetError(f"target {spec!r}: -mattr entry {a!r}: expected +feature "
                              f"or -feature (LLVM's names, e.g. -avx512f)")
        attrs.append(a)
    return attrs


def _apply_attrs(features: str, attrs: list[str]) -> str:
    """The host's ``features`` with the edits ``attrs`` last: LLVM applies a
    feature string in order, and a feature left on after ``-avx512f`` (the
    host's ``+avx512vl``) would turn back on the ``avx512f`` it implies.

    >>> _apply_attrs("+avx512bw,+avx512f,+avx512vl,+fma", ["-avx512f"])
    '+avx512bw,+avx512vl,+fma,-avx512f'
    """
    edit = {a[1:]: a[0] for a in attrs}
    kept = [f for f in filter(None, features.split(",")) if f[1:] not in edit]
    return ",".join(kept + [sign + name for name, sign in edit.items()])


def _arch(triple: str) -> str:
    head = triple.split("-", 1)[0]
    return {"arm64": "aarch64"}.get(head, head)


def _normalise_triple(spec: str, triple: str) -> str:
    arch = _arch(triple)
    if arch not in ("x86_64", "aarch64"):
        raise TargetError(f"target {spec!r}: -mtriple={triple}: the cpu kind supports "
                          f"x86_64 and aarch64 triples")
    parts = triple.split("-")
    if len(parts) < 2:
        raise TargetError(f"target {spec!r}: -mtriple={triple}: expected "
                          f"arch-vendor-os[-env], e.g. aarch64-unknown-linux-gnu")
    if len(parts) == 3 and parts[1] == "linux":  # aarch64-linux-gnu
        parts.insert(1, "unknown")
    return "-".join([arch, *parts[1:]])


def _size(dtype) -> int:
    name = getattr(dtype, "name", dtype)  # a polyop DType, a numpy dtype
    if not isinstance(name, str):  # a numpy scalar type
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    name = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64"}.get(name, name)
    if name not in _SIZES:
        raise TargetError(f"lanes: unknown element type {dtype!r} (expected f32, f64, "
                          f"i32 or i64)")
    return _SIZES[name]


# -- the host --------------------------------------------------------------------------------

_host_info: tuple[str, str, str] | None = None


def _host_llvm() -> tuple[str, str, str]:
    """(triple, CPU name, feature string) of the host, as LLVM sees it."""
    global _host_info
    if _host_info is None:
        llvm = _llvm()
        _host_info = (llvm.get_process_triple(), llvm.get_host_cpu_name(),
                      llvm.get_host_cpu_features().flatten())
    return _host_info


# -- LLVM: machines, lock, pipeline ----------------------------------------------------------

#: held around every use of LLVM's global context and of shared target machines
LLVM_LOCK = threading.RLock()
_machines: dict[tuple, Any] = {}
_ready = False


def _llvm():
    """llvmlite's binding layer, with every target initialised (for cross-compiling)."""
    global _ready
    import llvmlite.binding as llvm

    if not _ready:
        with LLVM_LOCK:
            if not _ready:
                llvm.initialize_all_targets()
                llvm.initialize_all_asmprinters()
                llvm.initialize_native_asmparser()
                # libm's tanh/fmod/...: resolvable by MCJIT even if the process
                # has not loaded libm globally
                libm = ctypes.util.find_library("m")
                if libm:
                    try:
                        llvm.load_library_permanently(libm)
                    except RuntimeError:
                        pass
                _ready = True
    return llvm


def _create(target: Target, **kw):
    """A new LLVM target machine; LLVM's complaints about the CPU or a
    feature (printed on stderr, then ignored — and an ignored CPU can abort
    the process later) become a ``TargetError``."""
    llvm = _llvm()
    try:
        llvm_target = llvm.Target.from_triple(target.triple)
    except RuntimeError as e:
        raise TargetError(f"target {str(target)!r}: LLVM does not know -mtriple={target.triple}: "
                          f"{e}") from None
    with LLVM_LOCK, tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        try:
            os.dup2(err.fileno(), 2)
            tm = llvm_target.create_target_machine(cpu=target.cpu, features=target.features,
                                                   opt=3, **kw)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        complaints = err.read().decode(errors="replace")
    cpu = re.search(r"'([^']*)' is not a recognized processor", complaints)
    if cpu:
        raise TargetError(f"target {str(target)!r}: LLVM knows no CPU {cpu.group(1)!r} for "
                          f"{_arch(target.triple)} (-mcpu=)")
    feature = re.search(r"'([^']*)' is not a recognized feature", complaints)
    if feature:
        raise TargetError(f"target {str(target)!r}: LLVM knows no feature "
                          f"{feature.group(1)[1:]!r} for {_arch(target.triple)} (-mattr=)")
    return tm


def target_machine(target: Target | str | None = None):
    """The shared LLVM ``TargetMachine`` of ``target`` (created on first use,
    kept for the process; use it under ``LLVM_LOCK``).

    Example::

        >>> target_machine("cpu -mtriple=x86_64-linux-gnu -mcpu=haswell").triple
        'x86_64-unknown-linux-gnu'
    """
    t = as_target(target)
    if t.is_gpu:
        raise TargetError(f"target {t}: a GPU target has no LLVM CPU machine (its code "
                          "is CUDA C or OpenCL C: polyop_cuda)")
    tm = _machines.get(t._key())
    if tm is None:
        with LLVM_LOCK:
            tm = _machines.get(t._key())
            if tm is None:
                tm = _machines[t._key()] = _create(t, reloc="pic", codemodel="default")
    return tm


def new_jit_machine(target: Target | str | None = None):
    """A fresh target machine of the host ``target`` for one MCJIT engine (an
    engine takes ownership of its machine and frees it)."""
    t = as_target(target)
    if not t.is_host:
        raise TargetError(f"target {t}: code for it cannot run on this machine "
                          f"({host()})")
    target_machine(t)  # validates (once) before the JIT sees it
    return _create(t, reloc="default", codemodel="jitdefault", jit=True)


def optimize(module, tm) -> None:
    """Run LLVM's O3 module pipeline (loop and SLP vectorisation on) on
    ``module`` in place, for the target machine ``tm``, without GVN's load
    PRE across loop iterations: it turns a stencil's loads of ``A[k - 1]``
    and ``A[k + 1]`` into a recurrence that the loop vectoriser then carries
    from vector to vector through shuffles, one more chain per iteration
    (heat-3d's 2-core schedule at MEDIUM on Zen 4, two runs: 1.02-1.07x
    faster on one thread, 1.10-1.13x on two; jacobi-1d 1.02-1.06x; of the
    60 PolyBench schedules at MEDIUM only those and cholesky, lu, adi
    compile differently: cholesky and lu 0.99x, adi level; matmul level).
    The option is LLVM's, global to the process: set for this pipeline
    only, under ``LLVM_LOCK``.

    Example::

        >>> llvm = _llvm()
        >>> mod = llvm.parse_assembly("define i32 @f() { ret i32 add (i32 1, i32 2) }")
        >>> optimize(mod, target_machine())
        >>> "ret i32 3" in str(mod)
        True
    """
    llvm = _llvm()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pto.loop_interleaving = True
    with LLVM_LOCK:
        llvm.set_option("", "--enable-load-in-loop-pre=false")
        try:
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(module, pb)
        finally:
            llvm.set_option("", "--enable-load-in-loop-pre=true")  # LLVM's default


# -- facts read from LLVM --------------------------------------------------------------------

_PROBE = """
define <16 x float> @probe_width(<16 x float> %a, <16 x float> %b) {
  %c = fadd <16 x float> %a, %b
  ret <16 x float> %c
}
declare <4 x float> @llvm.fma.v4f32(<4 x float>, <4 x float>, <4 x float>)
define <4 x float> @probe_fma(<4 x float> %a, <4 x float> %b, <4 x float> %c) {
  %d = call <4 x float> @llvm.fma.v4f32(<4 x float> %a, <4 x float> %b, <4 x float> %c)
  ret <4 x float> %d
}
"""


def _probe(target: Target) -> _Facts:
    """Compile ``_PROBE`` for ``target`` and read its facts from the assembly."""
    llvm = _llvm()
    tm = target_machine(target)
    with LLVM_LOCK:
        mod = llvm.parse_assembly(_PROBE)
        mod.triple = target.triple
        asm = tm.emit_assembly(mod)

    # each function's text runs from its label ("_probe_fma:" on Darwin) to the next one
    parts = re.split(r"^_?(probe_\w+):", asm, flags=re.M)
    bodies = dict(zip(parts[1::2], parts[2::2], strict=True))
    width, fma = bodies["probe_width"], bodies["probe_fma"]
    if target.arch == "x86_64":
        bits = 512 if "zmm" in width else 256 if "ymm" in width else 128
        return _Facts(bits, bool(re.search(r"\bvfn?madd", fma)), bits == 512)
    # "fadd v0.4s, ..." (or Apple's "fadd.4s v0, ..."): 128-bit NEON
    return _Facts(128 if re.search(r"\.4s\b", width) else 0,
                  bool(re.search(r"\bfml[as]\b", fma)), False)
