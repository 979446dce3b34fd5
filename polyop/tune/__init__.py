"""``polyop.tune``: search a schedule space for the fastest point, measured on
this machine or on a Dask cluster.

- spaces: knobs declared by a template (``polyop.tune.space``), the generic
  space of a kernel (``default_template``), the operators' tiling knobs
  (``matmul_task``, ``conv2d_task``);
- measurement in other processes, each under a timeout, every candidate's
  output checked against a reference (``measure``, ``runners``);
- strategies: random, grid, and a cost model over loop-IR features driving
  simulated annealing (``strategies``, ``model``);
- records in a JSON-lines log, resumed from, and ``apply_best``
  (``records``); the operators' database (``database``).

Example::

    >>> import polyop
    >>> @polyop.tune.template
    ... def tiles(cfg, k):
    ...     sch = polyop.Schedule(k)
    ...     i, j = sch.get_loops("S0")
    ...     polyop.tune.apply_split(sch, j, cfg.define_split("tj", 16, policy="power2"))
    ...     return sch
    >>> from polyop.tune.task import example_scale
    >>> space = polyop.tune.KernelTask(tiles, example_scale, {"n": 16}).space()
    >>> space
    ConfigSpace(5 points; tj: 5)
"""

from .records import Record, apply_best, best_record, read_log
from .runners import DaskRunner, LocalRunner, Runner
from .space import (
    Config,
    ConfigSpace,
    Template,
    TuneError,
    apply_reorder,
    apply_split,
    template,
)
from .strategies import make_strategy
from .task import KernelTask, Task, default_template
from .tuner import TuneResult, tune

__all__ = ["Config", "ConfigSpace", "DaskRunner", "KernelTask", "LocalRunner", "Record",
           "Runner", "Task", "Template", "TuneError", "TuneResult", "apply_best",
           "apply_reorder", "apply_split", "best_record", "default_template",
           "make_strategy", "read_log", "template", "tune"]
