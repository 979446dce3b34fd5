"""The compilation pipeline, top to bottom, in one place.

    Python loop nest ──parse──► Program (isl domains, accesses, textual schedule)
        ──check_bounds──► (every access proven inside its array)
        ──build_ast──► isl AST ──ast_to_ir──► loop IR (``ir.Function``)
        ──compile_function──► LLVM IR ─O3─► native code (MCJIT) ──► CompiledKernel

Set ``POLYOP_DUMP`` to a comma-separated list of stages to print them as they
are produced: ``model``, ``ast``, ``ir``, ``llvm``, ``asm`` (or ``all``).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def fill(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 1.0
    >>> print(polyop.lower(fill))
    void fill(int64_t n, double A[n]) {
      for (i = 0; i < n; i += 1)
        A[i] = 1.0;
    }
"""

from __future__ import annotations

import os
import sys

import islpy as isl

from . import ir
from .astgen import ast_to_ir, build_ast
from .bounds import check_bounds
from .program import Program


def _dump(stage: str, text) -> None:
    wanted = {s.strip() for s in os.environ.get("POLYOP_DUMP", "").split(",")}
    if stage in wanted or "all" in wanted:
        print(f"// ---- polyop {stage} ----\n{text}", file=sys.stderr)


def as_program(obj) -> Program:
    """The ``Program`` of a kernel (or the program itself)."""
    if isinstance(obj, Program):
        return obj
    program = getattr(obj, "program", None)  # a Kernel or a Schedule
    if isinstance(program, Program):
        return program
    raise TypeError(f"expected a polyop kernel or Program, got {type(obj).__name__}")


def _schedule_tree(sched) -> tuple[isl.Schedule, dict]:
    """The tree of a ``Schedule`` ready for AST generation, and its loop names/kinds."""
    from .schedule.schedule import mark_unrolled

    loops = sched.loop_info()
    return mark_unrolled(sched.tree, loops), loops


def lower(obj, schedule: isl.Schedule | None = None) -> ir.Function:
    """Lower a kernel or a ``Schedule`` (or a kernel under a raw isl schedule
    tree) to loop IR. The result prints as C-like code: ``print(polyop.lower(k))``.
    """
    loops: dict = {}
    if hasattr(obj, "loop_info"):
        schedule, loops = _schedule_tree(obj)
    program = as_program(obj)
    _dump("model", program)
    check_bounds(program)
    ast = build_ast(program, schedule)
    _dump("ast", ast.to_C_str())
    body = ast_to_ir(ast, program, loops)
    params = []
    for a in program.arguments:
        shape = program.arrays[a.name].extents if a.kind == "array" else ()
        params.append(ir.Param(a.name, a.kind, a.dtype, shape))
    temps = tuple((a.name, a.dtype) for a in program.arrays.values() if a.temporary)
    fn = ir.Function(program.name, tuple(params), temps, body)
    _dump("ir", fn)
    return fn


def build(obj, schedule: isl.Schedule | None = None):
    """Lower and JIT-compile a kernel, program or ``Schedule``; returns a callable
    ``CompiledKernel`` with the kernel's argument checks.

    Example: ``f = polyop.build(sch); f(n, A, B)``.
    """
    return compile_program(obj, schedule)


def compile_program(obj, schedule: isl.Schedule | None = None):
    """Lower and JIT-compile; returns a callable ``CompiledKernel``."""
    from .codegen import compile_function
    from .runtime import CompiledKernel

    program = as_program(obj)
    fn = lower(obj, schedule)
    compiled = compile_function(fn)
    _dump("llvm", compiled.llvm_ir)
    _dump("asm", compiled.asm)
    return CompiledKernel(program, fn, compiled)
