"""Pictures of polyhedral models and schedules (matplotlib), and their HTML.

- ``domain(kernel, sizes)``: iteration domains as points, dependences as arrows;
- ``order(schedule, sizes)``: the execution order of a schedule, its tiles
  and the iterations that run together on parallel loops;
- ``compare(before, after, sizes)``: two schedules side by side;
- ``violation(error, schedule)``: a refused primitive, the broken dependence
  pair highlighted.

Each returns a ``matplotlib.figure.Figure`` built without pyplot (no display
needed: ``fig.savefig("x.png")``, or shown by Jupyter). The HTML that Jupyter
shows for kernels, schedules, refusals and compiled kernels is made by
``polyop.viz.html``. matplotlib is imported on the first drawing only, so
``import polyop`` does not need it (``pip install polyop[viz]``).
"""

from __future__ import annotations

__all__ = ["compare", "domain", "order", "violation"]


def __getattr__(name: str):
    # the drawing modules import matplotlib: load them when a picture is asked for
    if name == "domain":
        from .domains import domain

        return domain
    if name in ("order", "compare", "violation"):
        from . import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'polyop.viz' has no attribute {name!r}")
