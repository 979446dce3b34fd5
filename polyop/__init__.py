"""polyop: polyhedral loop optimization in Python.

Write a loop nest once as plain Python, get an exact polyhedral model of it
(isl iteration domains and access relations), and compile it through isl's AST
generator and LLVM to fast CPU code.

Example::

    import numpy as np
    import polyop

    @polyop.kernel
    def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
        for i in range(n):
            y[i] += a * x[i]

    x, y = np.ones(8), np.zeros(8)
    axpy(8, 2.0, x, y)          # y == 2.0 everywhere
    print(axpy.program)         # domains and access relations in isl notation
    print(polyop.lower(axpy))   # the generated loop nest, C-like

Glossary (isl's vocabulary, used throughout):

- *iteration domain*: the set of integer points (statement instances) a
  statement executes, e.g. ``[N] -> { S0[i, j] : 0 <= i < N and 0 <= j < i }``;
- *access relation*: a map from statement instances to the array elements they
  read or write, e.g. ``{ S0[i, j] -> A[i, j + 1] }``;
- *dependence*: a pair of instances touching the same element, at least one
  writing: RAW (flow), WAR (anti), WAW (output);
- *schedule tree*: isl's tree of domain, band (loops), sequence and filter nodes
  giving the execution order; a *band* member is *coincident* when it carries
  no dependence.
"""

from . import ops, tune
from . import printer as _printer  # noqa: F401  (str() of loop IR: ir.set_printer)
from .api import build, lower
from .autoschedule import auto_schedule as auto_schedule
from .deps import Dependences, dependences
from .errors import (
                     ArgumentError,
                     BoundsError,
                     CodegenError,
                     FrontendError,
                     IllegalScheduleError,
                     PolyopError,
                     ScheduleError,
                     SettingError,
                     TargetError,
                     TargetUnavailableError,
)
from .intrinsic import Intrinsic, IntrinsicError, intrinsic
from .kernel import Kernel, kernel, local, prefetch
from .program import Program, Statement
from .runtime import aligned
from .schedule import Loop, Schedule, Violation
from .target import Target
from .te import (
                     IterVar,
                     Tensor,
                     compute,
                     const,
                     cos,
                     create_schedule,
                     exp,
                     if_then_else,
                     log,
                     logical_and,
                     logical_not,
                     logical_or,
                     maximum,
                     minimum,
                     placeholder,
                     reduce_axis,
                     sin,
                     sqrt,
                     tanh,
                     var,
)

# TVM-style reductions and abs: attributes of the polyop module (polyop.sum, polyop.max, ...);
# they shadow the builtins only here, and this module uses none of them
from .te import absolute as abs
from .te import reduce_max as max
from .te import reduce_min as min
from .te import reduce_sum as sum
from .types import f32, f64, i32, i64

__all__ = [
    "ArgumentError", "BoundsError", "CodegenError", "FrontendError", "IllegalScheduleError",
    "PolyopError", "ScheduleError", "SettingError", "TargetError", "TargetUnavailableError",
    "Dependences", "dependences",
    "Kernel", "kernel", "local", "prefetch", "build", "lower", "ops", "tune", "Target",
    "aligned",
    "Loop", "Program", "Schedule", "Statement", "Violation",
    "Intrinsic", "IntrinsicError", "intrinsic",
    "f32", "f64", "i32", "i64",
    # tensor expressions (polyop.te)
    "IterVar", "Tensor", "abs", "compute", "const", "cos", "create_schedule", "exp",
    "if_then_else", "log", "logical_and", "logical_not", "logical_or", "max", "maximum", "min",
    "minimum", "placeholder", "reduce_axis", "sin", "sqrt", "sum", "tanh", "var",
]
__version__ = "0.1.0"
