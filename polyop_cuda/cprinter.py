"""The C-family printer of the GPU kernel IR, in two dialects: CUDA C and OpenCL C.

``device_source(prog, dialect)`` is what the compilers get (kernels and the
helpers they call); ``program_text(prog, dialect)`` adds the host side for
readers (CUDA: a host function with ``<<<grid, block>>>`` launches, valid
CUDA C++; OpenCL: the same function with the enqueues as comments).

Semantics kept from the CPU back end (``polyop.codegen``): ``//`` and ``%``
floor like Python (helpers ``polyop_floordiv_*``/``polyop_mod_*``; integer
division by 0 gives 0 and ``MIN // -1`` wraps), ``min``/``max`` return the
first argument unless the second compares smaller/larger, ``int ** int`` as
CPython for a wrapping integer. Floating-point contraction is off
(``#pragma OPENCL FP_CONTRACT OFF``; ``--fmad=false`` for CUDA), so ``+ - *
/`` round as in CPython. Arrays are flat pointers indexed row-major.

Dialects differ in spelling only (``Dialect``): qualifiers, the integer type
of 64 bits, block/thread indices and the barrier.

Example::

    >>> from polyop import ir
    >>> from polyop.types import f32
    >>> e = ir.Bin("fdiv", ir.Var("i"), ir.Const(4), ir.INDEX)
    >>> CUDA.expr(e), OPENCL.expr(ir.Cast(e, f32))
    ('polyop_floordiv_i64(i, 4)', '(float)polyop_floordiv_i64(i, 4)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from polyop import ir
from polyop.exprtext import operator_to_c
from polyop.kinds import LoopKind
from polyop.types import DType

from .kernel_ir import AXES, Barrier, GpuProgram, Kernel, Launch

_INFIX = {"add": ("+", 4), "sub": ("-", 4), "mul": ("*", 5), "div": ("/", 5)}
_SUFFIX = {"f32": "f32", "f64": "f64", "i32": "i32", "i64": "i64"}


@dataclass(frozen=True)
class Dialect:
    """How one C dialect spells what the kernel IR needs."""

    name: str
    types: dict
    qualifier: str  # the qualifier of a kernel
    global_ptr: str  # the qualifier of an array parameter
    helper: str  # the qualifier of a helper function
    block_index: str  # format with the axis number and letter
    thread_index: str
    barrier: str
    prelude: str
    shared_qualifier: str = "__shared__ "

    def ctype(self, dtype: DType) -> str:
        return self.types[dtype.name]

    # -- expressions -----------------------------------------------------------------------
    def expr(self, e: ir.Expr, prec: int = 0, shapes: dict | None = None) -> str:
        """C text of a loop-IR expression; ``shapes`` maps arrays to their
        extents (flattened row-major) or, for local arrays, to ``None``."""
        def sub(x: ir.Expr, p: int = 0) -> str:
            return self.expr(x, p, shapes)

        if isinstance(e, ir.Const):
            return self.const(e.value, e.dtype)
        if isinstance(e, ir.Var):
            return e.name
        if isinstance(e, ir.Load):
            return self.access(e.array, e.index, shapes)
        if isinstance(e, ir.Bin):
            t = _SUFFIX.get(e.dtype.name, "i64")
            if e.op in _INFIX and not (e.op == "div" and not e.dtype.is_float):
                sym, p = _INFIX[e.op]
                s = f"{sub(e.a, p)} {sym} {sub(e.b, p + 1)}"
                return f"({s})" if p < prec else s
            if e.op == "pow":
                if e.dtype.is_float:
                    return f"pow({sub(e.a)}, {sub(e.b)})"
                return f"polyop_ipow_{t}({sub(e.a)}, {sub(e.b)})"
            name = {"fdiv": "floordiv", "mod": "mod", "min": "min", "max": "max",
                    "div": "floordiv"}[e.op]
            return f"polyop_{name}_{t}({sub(e.a)}, {sub(e.b)})"
        if isinstance(e, ir.Call):
            args = ", ".join(sub(a) for a in e.args)
            if e.fn == "abs":
                return f"fabs({args})" if e.dtype.is_float else f"polyop_abs_{e.dtype.name}({args})"
            return f"{e.fn}({args})"
        if isinstance(e, ir.Cast):
            return f"({self.ctype(e.dtype)}){sub(e.a, 9)}"
        text = operator_to_c(e, prec, sub)
        if text is None:
            raise AssertionError(f"unknown expression {e!r}")
        return text

    def const(self, v, dtype: DType) -> str:
        if dtype.is_float or isinstance(v, float):
            v = float(v)
            f = "f" if dtype.name == "f32" else ""
            if math.isnan(v):
                return f"(0.0{f} / 0.0{f})"
            if math.isinf(v):
                return f"({'-' if v < 0 else ''}1.0{f} / 0.0{f})"
            s = repr(v)
            s = s if any(c in s for c in ".e") else s + ".0"
            return f"{s}{f}"
        if isinstance(v, bool):
            return "1" if v else "0"
        if not -(2**31) <= v < 2**31:
            return f"({self.types['i64']}){v}{'LL' if self.name == 'cuda' else 'L'}"
        return str(v)

    def access(self, array: str, index: tuple, shapes: dict | None) -> str:
        if not index:
            return array
        shape = (shapes or {}).get(array)
        if shape is None:  # a local array: C's own multi-dimensional indexing
            return array + "".join(f"[{self.expr(x, 0, shapes)}]" for x in index)
        flat = self.expr(index[0], 5 if len(index) > 1 else 0, shapes)  # row-major
        for k, (x, extent) in enumerate(zip(index[1:], shape[1:])):
            flat = f"{flat if k == 0 else f'({flat})'} * {self.expr(extent, 6)} + " \
                   f"{self.expr(x, 4, shapes)}"
        return f"{array}[{flat}]"

    # -- statements ------------------------------------------------------------------------
    def stmt(self, node, indent: int, shapes: dict) -> list[str]:
        pad = "  " * indent
        if isinstance(node, Barrier):
            return [f"{pad}{self.barrier};"]
        if isinstance(node, ir.Block):
            return [line for s in node.stmts for line in self.stmt(s, indent, shapes)]
        if isinstance(node, ir.Store):
            return [f"{pad}{self.access(node.array, node.index, shapes)} = "
                    f"{self.expr(node.value, 0, shapes)};"]
        if isinstance(node, ir.Extern):  # a device function (polyop_cuda.wmma)
            args = [f"&{self.access(a.array, a.index, shapes)}" if ref else
                    self.expr(a, 0, shapes) for a, ref in zip(node.args, node.byref)]
            return [f"{pad}{node.symbol}({', '.join(args)});"]
        if isinstance(node, ir.If):
            out = [f"{pad}if ({self.expr(node.cond, 0, shapes)}) {{",
                   *self.stmt(node.then, indent + 1, shapes), f"{pad}}}"]
            if node.else_ is not None:
                out[-1] += " else {"
                out += [*self.stmt(node.else_, indent + 1, shapes), f"{pad}}}"]
            return out
        assert isinstance(node, ir.For), node
        i64, v = self.types["i64"], node.var
        start, stop = self.expr(node.start, 0, shapes), self.expr(node.stop, 3, shapes)
        body = self.stmt(node.body, indent + 1, shapes)
        if not node.kind.is_gpu:
            head = [f"{pad}for ({i64} {v} = {start}; {v} < {stop}; {v} += {node.step}) {{"]
            if node.kind is LoopKind.UNROLL:  # a line of its own: callers indent by line
                head.insert(0, f"{pad}#pragma unroll")
            return [*head, *body, f"{pad}}}"]
        axis = AXES.index(node.kind.axis)
        index = (self.thread_index if node.kind.is_thread else self.block_index).format(
            axis, node.kind.axis)
        value = f"({i64}){index}" if node.step == 1 else f"{node.step} * ({i64}){index}"
        if not (isinstance(node.start, ir.Const) and node.start.value == 0):
            value = f"{self.expr(node.start, 4, shapes)} + {value}"
        return [f"{pad}{{  // {node.kind.value}",
                f"{pad}  {i64} {v} = {value};",
                f"{pad}  if ({v} < {stop}) {{", *("  " + line for line in body),
                f"{pad}  }}", f"{pad}}}"]

    # -- kernels -----------------------------------------------------------------------------
    def kernel(self, k: Kernel) -> str:
        params = []
        for p in k.params:
            t = self.ctype(p.dtype)
            if p.kind == "array":
                const = "" if p.written else "const "
                params.append(f"{self.global_ptr}{const}{t} *{self.restrict} {p.name}")
            else:
                params.append(f"{t} {p.name}")
        shapes = {p.name: p.shape for p in k.params if p.kind == "array"}
        head = f"{self.qualifier}void {k.name}({', '.join(params)}) {{"
        if len(head) > 100:  # one parameter a line
            head = f"{self.qualifier}void {k.name}(\n    " + ",\n    ".join(params) + ") {"
        lines = [head]
        for name, dtype, shape in k.temps:
            lines.append(f"  {self.ctype(dtype)} {name}" + "".join(f"[{n}]" for n in shape)
                         + ";")
        for name, dtype, shape in k.shared:  # promoted buffers (polyop_cuda.promote)
            lines.append(f"  {self.shared_qualifier}{self.ctype(dtype)} {name}"
                         + "".join(f"[{n}]" for n in shape) + ";")
        lines += self.stmt(k.body, 1, shapes)
        lines.append("}")
        return "\n".join(lines)

    @property
    def restrict(self) -> str:
        return " __restrict__" if self.name == "cuda" else " restrict"


def _helpers(dialect: str, qualifier: str) -> str:
    """The arithmetic helpers of the prelude, for each element type."""
    out = []
    i64 = "long long" if dialect == "cuda" else "long"
    for t, ct in (("i32", "int"), ("i64", i64)):
        out.append(f"""{qualifier}{ct} polyop_floordiv_{t}({ct} a, {ct} b) {{
  if (b == 0) return 0;
  if (b == -1) return ({ct})(0u - (unsigned {ct})a);  /* MIN // -1 wraps */
  {ct} q = a / b, r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}}
{qualifier}{ct} polyop_mod_{t}({ct} a, {ct} b) {{
  if (b == 0 || b == -1) return 0;
  {ct} r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}}
{qualifier}{ct} polyop_abs_{t}({ct} a) {{ return a < 0 ? ({ct})(0u - (unsigned {ct})a) : a; }}
{qualifier}{ct} polyop_ipow_{t}({ct} base, {ct} e) {{
  if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
  unsigned {ct} r = 1, b = (unsigned {ct})base;
  while (e) {{ if (e & 1) r *= b; b *= b; e >>= 1; }}
  return ({ct})r;
}}""")
    for t, ct in (("f32", "float"), ("f64", "double")):
        out.append(f"""{qualifier}{ct} polyop_mod_{t}({ct} a, {ct} b) {{  /* CPython's float % */
  {ct} m = fmod(a, b);
  if (m != 0) {{ if ((b < 0) != (m < 0)) m += b; }} else m = copysign(({ct})0, b);
  return m;
}}
{qualifier}{ct} polyop_floordiv_{t}({ct} a, {ct} b) {{  /* CPython's float // */
  if (b == 0) return a / b;
  {ct} m = fmod(a, b), d = (a - m) / b;
  if (m != 0 && ((b < 0) != (m < 0))) d -= 1;
  if (d == 0) return copysign(({ct})0, a / b);
  {ct} f = floor(d);
  return d - f > ({ct})0.5 ? f + 1 : f;
}}""")
    for t, ct in (("i32", "int"), ("i64", i64), ("f32", "float"), ("f64", "double")):
        out.append(f"{qualifier}{ct} polyop_min_{t}({ct} a, {ct} b) {{ return b < a ? b : a; }}\n"
                   f"{qualifier}{ct} polyop_max_{t}({ct} a, {ct} b) {{ return b > a ? b : a; }}")
    return "\n".join(out)


CUDA = Dialect(
    "cuda", {"f32": "float", "f64": "double", "i32": "int", "i64": "long long", "bool": "bool"},
    qualifier='extern "C" __global__ ', global_ptr="", helper="static __host__ __device__ inline ",
    block_index="blockIdx.{1}", thread_index="threadIdx.{1}", barrier="__syncthreads()",
    prelude="// generated by polyop (CUDA C); compile with --fmad=false\n"
            + _helpers("cuda", "static __host__ __device__ inline "))

OPENCL = Dialect(
    "opencl", {"f32": "float", "f64": "double", "i32": "int", "i64": "long", "bool": "bool"},
    qualifier="__kernel ", global_ptr="__global ", helper="static inline ",
    block_index="get_group_id({0})", thread_index="get_local_id({0})",
    barrier="barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)",
    prelude="// generated by polyop (OpenCL C)\n#pragma OPENCL FP_CONTRACT OFF\n"
            "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
            + _helpers("opencl", "static inline "), shared_qualifier="__local ")

DIALECTS = {"cuda": CUDA, "opencl": OPENCL}


def device_source(prog: GpuProgram, dialect: Dialect) -> str:
    """The kernels of ``prog`` with the helpers they use: what is compiled."""
    from .wmma import device_functions

    return "\n\n".join([dialect.prelude, *device_functions(prog, dialect.name)]
                       + [dialect.kernel(k) for k in prog.kernels]) + "\n"


def host_text(prog: GpuProgram, dialect: Dialect) -> str:
    """The host side of ``prog``: its loops and launches, as C (CUDA: valid
    CUDA C++ taking device pointers; OpenCL: the enqueues as comments)."""
    params = []
    for p in prog.params:
        t = dialect.ctype(p.dtype)
        params.append(f"{t} *{p.name}" if p.kind == "array" else f"{t} {p.name}")
    lines = ["// host side: sizes and scalars by value, arrays in device memory",
             f"void {prog.name}({', '.join(params)}) {{"]
    for name, dtype, shape in prog.scratch:  # temporaries passed between kernels
        n = 1
        for e in shape:
            n *= e
        t = dialect.ctype(dtype)
        lines.append(f"  {t} *{name};" if dialect.name != "cuda" else
                     f"  {t} *{name};  cudaMalloc((void **)&{name}, {n} * sizeof({t}));")
    lines += _host(prog.body, 1, dialect)
    if dialect.name == "cuda":
        lines += [f"  cudaFree({name});" for name, _, _ in prog.scratch]
    lines.append("}")
    return "\n".join(lines)


def _host(node, indent: int, d: Dialect) -> list[str]:
    pad = "  " * indent
    if isinstance(node, Launch):
        k = node.kernel
        grid = ", ".join(f"(unsigned)({d.expr(e)})" for e in k.grid)
        block = ", ".join(f"(unsigned)({d.expr(e)})" for e in k.block)
        args = ", ".join(p.name for p in k.params)
        if d.name == "cuda":
            return [f"{pad}{{",
                    f"{pad}  dim3 grid({grid}), block({block});",
                    f"{pad}  if (grid.x && grid.y && grid.z && block.x && block.y && block.z)",
                    f"{pad}    {k.name}<<<grid, block>>>({args});",
                    f"{pad}}}"]
        sizes = ", ".join(f"({d.expr(g, 5)}) * ({d.expr(b, 5)})" for g, b in zip(k.grid, k.block))
        local = ", ".join(d.expr(b) for b in k.block)
        return [f"{pad}// enqueue {k.name}({args}):",
                f"{pad}//   global size ({sizes}), local size ({local})"]
    if isinstance(node, ir.Block):
        return [line for s in node.stmts for line in _host(s, indent, d)]
    if isinstance(node, ir.If):
        out = [f"{pad}if ({d.expr(node.cond)}) {{", *_host(node.then, indent + 1, d), f"{pad}}}"]
        if node.else_ is not None:
            out[-1] += " else {"
            out += [*_host(node.else_, indent + 1, d), f"{pad}}}"]
        return out
    assert isinstance(node, ir.For), node
    v = node.var
    return [f"{pad}for ({d.types['i64']} {v} = {d.expr(node.start)}; {v} < "
            f"{d.expr(node.stop, 3)}; {v} += {node.step}) {{",
            *_host(node.body, indent + 1, d), f"{pad}}}"]


def program_text(prog: GpuProgram, dialect: Dialect) -> str:
    """Device source then host side: what ``polyop.lower(..., target=...)`` prints."""
    return device_source(prog, dialect) + "\n" + host_text(prog, dialect) + "\n"
