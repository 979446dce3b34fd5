"""The compilation pipeline, top to bottom, in one place.

    Python loop nest ──parse──► Program (isl domains, accesses, textual schedule)
        ──check_bounds──► (every access proven inside its array)
        ──Schedule.lowering_plan──► LoweringPlan (tree, loop kinds, atomic statements)
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
import warnings

import islpy as isl

from . import ir
from .astgen import ast_to_ir, build_ast
from .bounds import check_bounds
from .budget import (
    AST_OPERATIONS,
    VALIDATION_OPERATIONS,
    BudgetExceeded,
    ast_operations,
    isl_budget,
    scaled,
)
from .coalesce import coalesce_loops
from .errors import CodegenError
from .program import as_program
from .promotion import promote_function, requests_from_schedule
from .schedule import Schedule
from .schedule.plan import VARIANTS, LoweringPlan
from .validate import validate_within

#: the stages ``POLYOP_DUMP`` can name (and ``all``)
DUMP_STAGES = ("model", "ast", "ir", "llvm", "asm")
_dump_warned: set[str] = set()


def _dump(stage: str, text) -> None:
    """Print ``text`` (or ``text()``: made only when wanted) if ``stage`` is dumped;
    warn once about a name in ``POLYOP_DUMP`` that is no stage (a typo would
    otherwise dump nothing without a word)."""
    wanted = {s.strip() for s in os.environ.get("POLYOP_DUMP", "").split(",")} - {""}
    unknown = wanted - set(DUMP_STAGES) - {"all"} - _dump_warned
    if unknown:
        _dump_warned.update(unknown)
        warnings.warn(f"POLYOP_DUMP: unknown stage(s) {', '.join(sorted(unknown))} "
                      f"(stages: {', '.join(DUMP_STAGES)}, all)", RuntimeWarning, stacklevel=3)
    if stage in wanted or "all" in wanted:
        print(f"// ---- polyop {stage} ----\n{text() if callable(text) else text}",
              file=sys.stderr)


def lower_ir(obj, schedule: isl.Schedule | None = None, *, validate: bool = True,
             isolate: bool = True, promote: bool = True) -> ir.Function:
    """The pipeline behind ``polyop.lower`` (``polyop.api``): model → bounds → isl AST → validated
    AST → loop IR. ``validate=False`` skips the validation of the AST; ``isolate=False``
    generates split loops without isolating full strips (GPU kernels guard partial ones);
    ``promote=False`` leaves the schedule's promotions (``cache_read(..., scope=, at=)``) to
    the caller (GPU lowering applies them to its kernels)."""
    plan = lowering_plan(obj, schedule)
    program = plan.program
    _dump("model", program)
    requires = tuple(dict.fromkeys(p.text for p in check_bounds(program)))
    ast = _checked_ast(plan, isolate, validate)
    _dump("ast", ast.to_C_str)
    body = ast_to_ir(ast, program, plan.loops, plan.atomic, plan.strips)
    body = coalesce_loops(body, {v.name for v in plan.loop_records.values() if v.coalesced})
    params = []
    for a in program.arguments:
        shape = program.arrays[a.name].extents if a.kind == "array" else ()
        params.append(ir.Param(a.name, a.kind, a.dtype, shape))
    temps = tuple((a.name, a.dtype) for a in program.arrays.values() if a.temporary)
    # local arrays (constant shapes); 0-d temporaries are local scalars
    shapes = {a.name: tuple(int(e.value) for e in a.extents)
              for a in program.arrays.values() if a.temporary and a.ndim}
    fn = ir.Function(program.name, tuple(params), temps, body,
                     {"temp_shapes": shapes, "requires": requires,
                      "unrolled": bool(plan.unrolled())})
    if promote:  # per-iteration buffers: exact by construction, after validation
        fn = promote_function(fn, requests_from_schedule(obj), program.context)
    _dump("ir", fn)
    return fn


def lowering_plan(obj, schedule: isl.Schedule | None = None) -> LoweringPlan:
    """A ``Schedule``'s own plan, or that of a kernel, program or tensors under
    the raw isl tree ``schedule`` (``None``: the program's own order)."""
    if isinstance(obj, Schedule):
        return obj.lowering_plan()
    return LoweringPlan(as_program(obj), schedule)


def _checked_ast(plan: LoweringPlan, isolate: bool, validate: bool) -> isl.AstNode:
    """isl's AST for the plan, asked for in the ways of ``_attempts`` in turn
    until isl generates one and (``validate``) it validates (``polyop.validate``:
    every instance once, in dependence order); a warning when the way that
    worked drops a hint of the schedule. When no way does, the first
    ``CodegenError``, or isl's first failure as one."""
    program = plan.program
    budget = scaled(VALIDATION_OPERATIONS, len(program.statements))
    first: CodegenError | None = None
    failed: isl.Error | None = None
    for iso, unroll, variant in _attempts(plan, isolate):
        try:
            ast = _generate_ast(plan, iso, variant, unroll)
            if validate:
                validate_within(ast, program, plan.deps, budget)
        except BudgetExceeded:  # (validation's: _generate_ast raises CodegenError)
            if first is None:  # (after a wrong AST, only a validated one will do)
                warnings.warn(f"validating the generated code of {program.name} took isl "
                              f"more than {budget} operations, for all sizes and at sampled "
                              "sizes: it was not validated (validate=False skips the attempt)",
                              stacklevel=5)
                return ast
            continue
        except CodegenError as e:  # lost or repeated instances: ask isl another way
            if e.problem == "budget":  # (AST generation past its budget: no way will do)
                raise
            first = first or e
            continue
        except isl.Error as e:  # isl gave up on this way of asking (seen: "cannot
            failed = failed or e  # handle void expression" with isolated tiles)
            continue
        problem = f"{first.problem} {first.instance}" if first is not None else \
            f"isl failed: {failed}" if failed is not None else None
        if problem is not None and (iso, unroll) != (isolate, True):
            dropped = "isolating full tiles" + \
                ("" if unroll else f" or unrolling {', '.join(plan.unrolled())}")
            warnings.warn(f"isl's code for {program.name} was wrong or missing in every "
                          f"variant ({problem}); generated without {dropped}", stacklevel=5)
        return ast
    if first is not None:
        raise first
    raise CodegenError(f"isl could not generate code for {program.name} in any way: "
                       f"{failed}", "", "", "isl") from failed


def _attempts(plan: LoweringPlan, isolate: bool) -> list[tuple[bool, bool, int]]:
    """``(isolate, unroll, variant)``: the ways to ask isl for a plan's code, in
    order. The variants of the tree first (``polyop.schedule.plan.ast_ready``);
    then, as isl has lost instances where unrolled loops meet isolated full
    tiles (the schedule fuzzer: ``strided_band``'s stride-2 loop split by 3
    twice, both inner loops unrolled, missed ``S0[20, 19]`` at ``n = 21`` in
    every variant), without isolation (polyop's own choice), and last without
    unrolling (a hint of the schedule's)."""
    variants = range(VARIANTS) if plan.ast_options else range(1)
    ways = [(isolate, True)]
    if plan.ast_options and isolate:
        ways.append((False, True))
    if plan.ast_options and plan.unrolled():
        ways.append((False, False))
    return [(iso, unroll, v) for iso, unroll in ways for v in variants]


def _generate_ast(plan: LoweringPlan, isolate: bool = True, variant: int = 0,
                  unroll: bool = True) -> isl.AstNode:
    """isl's AST for a plan (a ``Schedule``'s tree with AST options, a raw
    tree, or the program's own order), in a bounded number of isl operations.

    AST options are hints: where isl cannot unroll a loop, or isolating full
    tiles costs more than the budget, the AST is generated without them, with
    a warning. Past the budget without options: ``CodegenError``.
    """
    program = plan.program
    options: dict[str, bool] = {} if isolate else {"isolate": False}
    if not unroll:
        options["unroll"] = False
    budget = scaled(ast_operations(AST_OPERATIONS), len(program.statements))
    while True:
        try:
            with isl_budget(budget):
                return build_ast(program, plan.tree(**options, variant=variant))
        except BudgetExceeded as e:
            if not plan.ast_options or options.get("isolate") is False:
                raise CodegenError(f"isl's AST generation for {program.name} did not finish in "
                                   f"{budget} operations ({e}); a simpler schedule (fewer loops "
                                   "fused over tiles) helps, or POLYOP_AST_OPERATIONS allows more",
                                   "", "", "budget") from e
            warnings.warn(f"isolating full tiles of {program.name} took isl more than "
                          f"{budget} operations; generated without isolation (loop "
                          "bounds of partial tiles are tested inside the loops)", stacklevel=4)
            options["isolate"] = False
        except isl.Error as e:
            unrolled = plan.unrolled()
            if not unrolled or options.get("unroll") is False:
                raise
            # isl unrolls only loops with bounds it can find at their position; a later
            # skew or interchange may have taken them away. Unrolling is a hint: drop it.
            warnings.warn(f"isl cannot unroll loop(s) {', '.join(unrolled)} where the schedule "
                          f"now puts them ({e}); generated without unrolling. Apply unroll "
                          "after the loop structure is final.", stacklevel=4)
            options["unroll"] = False


def compile_program(obj, schedule: isl.Schedule | None = None, *, fp_contract: bool = False,
                    target=None,
                    validate: bool = True):
    """Lower and JIT-compile a kernel, program or ``Schedule``; returns a
    callable ``CompiledKernel`` with the kernel's argument checks, or for
    another CPU than this one a ``polyop.export.CrossCompiledKernel``
    (options as in ``polyop.build``, which is ``polyop.api.build``)."""
    from .codegen import compile_function
    from .export import CrossCompiledKernel
    from .runtime import CompiledKernel

    program = as_program(obj)
    fn = lower_ir(obj, schedule, validate=validate)
    compiled = compile_function(fn, fp_contract=fp_contract, target=target)
    _dump("llvm", lambda: compiled.llvm_ir)
    _dump("asm", lambda: compiled.asm)  # assembly is made on demand: it costs
    kind = CompiledKernel if compiled.target.is_host else CrossCompiledKernel
    return kind(program, fn, compiled)
