"""The native code of one kernel for one target: assembly, object files,
shared libraries and C headers.

``NativeCode`` holds what every compiled kernel has, whichever machine it
is for: the loop IR (``function``), the optimised LLVM IR (``llvm_ir``, and
``llvm_ir_unoptimized``), the ``target``, the kernel's C ``symbol``, and on
demand the ``asm``, an object file (``object_code()``) and ``export(path)``.
The JIT's ``CompiledFunction`` (``polyop.codegen.jit``) adds the callable
for the host; ``CrossCompiled``, for another CPU, refuses to be called.

``export(path)`` writes what a C program needs to call the kernel without
Python — ahead-of-time use, here or on the machine it was compiled for:

- ``path.o``: a relocatable object file for the target. A kernel with
  ``parallel`` loops carries the thread pool (``polyop.codegen.threadpool``,
  built for the same target); its ``polyop_rt_*`` functions are global, so a
  C program can set the thread count (default 1), and weak, so two kernels
  in one program share one pool. C micro-kernels (``polyop.intrinsic``) are
  compiled by ``$CC`` and combined with it (``cc -r``);
- ``path.so``: a shared library, linked by the system C compiler (``$CC`` or
  ``cc``; for another architecture ``$CC`` must be a compiler for it);
- with either, the C header ``path.h`` (same name, suffix ``.h``).

The C signature (``c_declaration``) is the kernel's native one, the same
function a Python call runs: one argument per parameter of the loop IR, in
order — a size as ``int64_t``, a scalar as ``float``/``double``/``int32_t``/
``int64_t``, an array as a pointer to its first element (C order,
contiguous, of the shape the sizes give: the header lists it). Arrays must
not overlap (``restrict``) nor be NULL, even when empty. A schedule's
scratch arrays (caches, intermediate tensors) are parameters too: the caller
allocates them with the shape the header gives (their contents are not read).

Example::

    >>> from polyop.ir import Function, Block
    >>> from polyop.codegen.jit import compile_function
    >>> cc = compile_function(Function("nop", (), (), Block(())),
    ...                       target="cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2")
    >>> cc.target.arch, "ret" in cc.asm, cc.object_code()[:4]
    ('aarch64', True, b'\\x7fELF')
    >>> cc()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyop.errors.TargetError: nop was compiled for cpu -mtriple=aarch64-..., not for this ...
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import llvmlite.binding as llvm

from ..errors import TargetError
from ..ir import Extern, Function, Store, walk
from ..printer import expr_to_c
from ..target import LLVM_LOCK, Target, host, target_machine
from .llvm import symbol_name
from .threadpool import ENTRY, build_pool_module
from .threadpool_region import REGION_ENTRY

__all__ = ["CrossCompiled", "NativeCode", "c_declaration", "c_header"]

_C_TYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}


class NativeCode:
    """Optimised LLVM IR of a kernel for ``target`` and what LLVM makes of it
    (see the module docstring)."""

    def __init__(self, fn: Function, symbol: str, target: Target, llvm_ir_unoptimized: str,
                 llvm_ir: str, compile_seconds: float):
        self.function = fn
        self.symbol = symbol
        self.target = target
        self.llvm_ir_unoptimized = llvm_ir_unoptimized
        self.llvm_ir = llvm_ir
        self.compile_seconds = compile_seconds
        self._asm: str | None = None

    @property
    def asm(self) -> str:
        """The target's assembly of the optimised module (made on first access)."""
        if self._asm is None:
            tm = target_machine(self.target)
            with LLVM_LOCK:
                self._asm = tm.emit_assembly(llvm.parse_assembly(self.llvm_ir))
        return self._asm

    @property
    def c_externs(self) -> list:
        """The C micro-kernels (``polyop.intrinsic``) the code calls: linked
        from elsewhere, not part of ``object_code()``."""
        found = {}
        for node in walk(self.function.body):
            if isinstance(node, Extern) and node.impl is not None \
                    and getattr(node.impl, "c_source", None) is not None:
                found.setdefault(node.symbol, node.impl)
        return list(found.values())

    def object_code(self) -> bytes:
        """A relocatable object file (position-independent) of the kernel for
        its target, with the thread pool if the kernel has ``parallel`` loops."""
        tm = target_machine(self.target)
        with LLVM_LOCK:
            mod = llvm.parse_assembly(self.llvm_ir)
            if {ENTRY, REGION_ENTRY} & {f.name for f in mod.functions}:
                pool = build_pool_module(self.target.triple)
                pool.data_layout = str(tm.target_data)
                pool_mod = llvm.parse_assembly(str(pool))
                # weak: two kernels linked into one program share one pool
                # (every copy is the same code; the state unifies too)
                for g in [*pool_mod.global_variables, *pool_mod.functions]:
                    if not g.is_declaration:
                        g.linkage = "weak_any"
                pool_mod.verify()
                mod.link_in(pool_mod)
            return tm.emit_object(mod)

    @property
    def parallel(self) -> bool:
        """Whether the code calls the thread pool (has ``parallel`` loops)."""
        return ENTRY in self.llvm_ir or REGION_ENTRY in self.llvm_ir

    def export(self, path: str | os.PathLike, scratch: tuple[str, ...] = ()) -> list[str]:
        """Write the kernel to ``path`` — an object file (``.o``) or a shared
        library (``.so``) — and its C header (``.h`` beside it); ``scratch``
        names the parameters the caller allocates (see the module docstring).
        Returns the paths written. Raises ``TargetError`` for another suffix,
        or when the C compiler cannot compile or link for the target."""
        path = Path(path)
        if path.suffix not in (".o", ".so"):
            raise TargetError(f"export: {str(path)!r}: expected a path ending in .o (object "
                              f"file) or .so (shared library)")
        code = self.object_code()
        compiler = os.environ.get("CC", "cc")
        with tempfile.TemporaryDirectory(prefix="polyop-export-") as tmp:
            main = Path(tmp) / "kernel.o"
            main.write_bytes(code)
            parts = [main] + [self._compile_c(impl, compiler, Path(tmp))
                              for impl in self.c_externs]
            if path.suffix == ".o" and len(parts) == 1:
                path.write_bytes(code)
            elif path.suffix == ".o":
                self._run([*shlex.split(compiler), "-r", "-nostdlib", "-o", str(path),
                           *map(str, parts)], "combine the object files")
            else:
                libs = ["-lpthread"] if self.parallel else []
                self._run([*shlex.split(compiler), "-shared", "-o", str(path),
                           *map(str, parts), *libs, "-lm"], "link the shared library")
        header = path.with_suffix(".h")
        header.write_text(c_header(self.function, self.target, scratch, self.parallel))
        return [str(path), str(header)]

    def _compile_c(self, impl, compiler: str, directory: Path) -> Path:
        """An object file of a C micro-kernel for the target, its function
        renamed to the symbol the kernel calls."""
        src = directory / f"{impl.symbol}.c"
        src.write_text(impl.c_source)
        out = src.with_suffix(".o")
        self._run([*shlex.split(compiler), "-O3", "-fPIC", *self.target.c_flags(compiler),
                   *impl.cflags, f"-D{impl.c_symbol}={impl.symbol}", "-c", "-o", str(out),
                   str(src)], f"compile the C micro-kernel {impl.name}")
        return out

    def _run(self, cmd: list[str], what: str) -> None:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TargetError(f"export: cannot {what} ({' '.join(cmd)}): {e}") from None
        if done.returncode != 0:
            raise TargetError(f"export: cannot {what} for {self.target} ({' '.join(cmd)}; "
                              f"$CC must be a C compiler for that target):\n"
                              f"{done.stderr.strip()}")

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.symbol} for {self.target} "
                f"({self.compile_seconds * 1e3:.1f} ms)>")


class CrossCompiled(NativeCode):
    """A kernel compiled for a CPU other than this one: ``asm``, ``llvm_ir``,
    ``object_code()``; calling it raises ``TargetError``."""

    def __call__(self, *args) -> None:
        raise TargetError(f"{self.function.name} was compiled for {self.target}, not for "
                          f"this machine ({host()}): export it (.export(path)) and link it "
                          f"there, or build it for the host (target='cpu')")


def _written(fn: Function) -> set[str]:
    """Arrays the kernel may write: stored to, or passed to a micro-kernel by address."""
    out = set()
    for node in walk(fn.body):
        if isinstance(node, Store):
            out.add(node.array)
        elif isinstance(node, Extern):
            out |= {a.array for a, byref in zip(node.args, node.byref, strict=True) if byref}
    return out


def c_declaration(fn: Function) -> str:
    """The C prototype of the native kernel compiled from ``fn`` (see the
    module docstring).

    Example::

        >>> from polyop.ir import Function, Param, For, Store, Load, Var, Const
        >>> from polyop.types import f32, i64
        >>> n = Var("n")
        >>> fn = Function("copy", (Param("n", "size", i64), Param("x", "array", f32, (n,)),
        ...                        Param("y", "array", f32, (n,))), (),
        ...               For("i", Const(0), n, 1, Store("y", (Var("i"),),
        ...                                              Load("x", (Var("i"),), f32))))
        >>> c_declaration(fn)
        'void polyop_copy(int64_t n, const float *restrict x, float *restrict y)'
    """
    written = _written(fn)
    parts = []
    for p in fn.params:
        if p.kind == "size":
            parts.append(f"int64_t {p.name}")
        elif p.kind == "scalar":
            parts.append(f"{_C_TYPES[p.dtype.name]} {p.name}")
        else:
            const = "" if p.name in written else "const "
            parts.append(f"{const}{_C_TYPES[p.dtype.name]} *restrict {p.name}")
    return f"void {symbol_name(fn.name)}({', '.join(parts) or 'void'})"


def c_header(fn: Function, target, scratch: tuple[str, ...] = (),
             parallel: bool = False) -> str:
    """A C header declaring the kernel compiled from ``fn`` for ``target``:
    its prototype, each array's shape, which arrays are scratch, and the
    thread pool's functions when ``parallel``."""
    guard = symbol_name(fn.name).upper() + "_H"
    lines = [f"/* {fn.name}: generated by polyop for {target}.",
             " *",
             " * Arrays: C order, contiguous, not overlapping, never NULL:"]
    for p in fn.params:
        if p.kind != "array":
            continue
        dims = "".join(f"[{expr_to_c(e)}]" for e in p.shape) or "[1]"
        role = " (scratch: allocated by the caller, contents ignored)" \
            if p.name in scratch else ""
        lines.append(f" *   {p.name}: {_C_TYPES[p.dtype.name]}{dims}{role}")
    lines += [" */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
              "#ifdef __cplusplus", 'extern "C" {', "#define POLYOP_RESTRICT __restrict",
              "#else", "#define POLYOP_RESTRICT restrict", "#endif", "",
              c_declaration(fn).replace("*restrict ", "*POLYOP_RESTRICT ") + ";"]
    if parallel:
        lines += ["", "/* the thread pool of the parallel loops (default: 1 thread) */",
                  "void polyop_rt_set_num_threads(int32_t n);",
                  "void polyop_rt_set_min_work(int64_t ops);",
                  "int32_t polyop_rt_shutdown(void);"]
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(lines)
