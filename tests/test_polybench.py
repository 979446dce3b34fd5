"""PolyBench/C 4.2.1: polyop's compiled kernels against the CPython reference.

Every kernel of ``tests.polybench.BENCHES`` runs at the MINI and SMALL
datasets twice from the same initial arguments: once as plain Python
(``kernel.py_func``, the reference) and once compiled by polyop; every array
the kernel writes must agree to ``rtol=1e-9, atol=1e-12``.

About the tolerance: a legal polyhedral schedule keeps each element's chain of
updates in program order, and without fast-math flags every operation rounds
as in CPython, so the results are expected to be bit-identical; the tolerance
only leaves room for libm-level differences (``exp``/``pow`` in deriche). No
kernel gets a looser one. Note that gramschmidt is chaotic on PolyBench's
input: its matrix is rank-deficient (n > m, and column j + m equals column j),
so trailing columns of Q are normalised rounding noise that then feeds every
later column. Any change in rounding there (FMA contraction, reassociated
reductions) changes Q and R completely, and no tolerance would help. A
gramschmidt failure with O(1) differences in the columns from rank(A) on means
rounding changed, not necessarily a wrong schedule.

CPython cost: about 10 s for all 60 references on a 2-core machine,
dominated by floyd-warshall SMALL (about 3 s).
"""

import copy
import inspect

import numpy as np
import pytest

from polyop.types import ArrayType, DType, SizeType, parse_annotation
from tests.polybench import BENCHES

SIZES = ("MINI", "SMALL")
RTOL, ATOL = 1e-9, 1e-12

_REFERENCE: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _reference(name: str, size: str, args: dict) -> dict[str, np.ndarray]:
    """The outputs of the CPython run from (a deep copy of) ``args``, cached
    per (kernel, dataset) for the session."""
    key = (name, size)
    if key not in _REFERENCE:
        bench = BENCHES[name]
        ref_args = copy.deepcopy(args)
        bench.kernel.py_func(**ref_args)
        outs = {o: ref_args[o] for o in bench.outputs}
        for a in outs.values():
            a.setflags(write=False)
        _REFERENCE[key] = outs
    return _REFERENCE[key]


@pytest.mark.parametrize(
    "name, size",
    [(name, size) for name in BENCHES for size in SIZES],
    ids=[f"{name}-{size}" for name in BENCHES for size in SIZES],
)
def test_compiled_matches_cpython(name, size):
    bench = BENCHES[name]
    args = bench.init(bench.sizes[size])
    ref = _reference(name, size, args)
    bench.kernel(**args)
    for o in bench.outputs:
        np.testing.assert_allclose(args[o], ref[o], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} ({size}): output {o!r}")


def _extent(expr: str, sizes: dict[str, int]) -> int:
    return int(eval(expr, {"__builtins__": {}}, dict(sizes)))


@pytest.mark.parametrize("name", list(BENCHES))
def test_registry_entry(name):
    """Sizes, init and outputs agree with the kernel's signature (no
    compilation involved)."""
    bench = BENCHES[name]
    assert bench.name == name
    assert set(bench.sizes) == {"MINI", "SMALL", "MEDIUM", "LARGE"}
    params = inspect.signature(bench.kernel.py_func).parameters
    anns = {p: parse_annotation(v.annotation) for p, v in params.items()}
    size_params = {p for p, a in anns.items() if isinstance(a, SizeType)}
    arrays = {p for p, a in anns.items() if isinstance(a, ArrayType)}
    for label, sizes in bench.sizes.items():
        assert set(sizes) == size_params, label
    sizes = bench.sizes["MINI"]
    args = bench.init(sizes)
    assert set(args) == set(params)
    for p, a in anns.items():
        v = args[p]
        if isinstance(a, SizeType):
            assert type(v) is int and v == sizes[p], p
        elif isinstance(a, DType):
            assert type(v) is float, p
        else:
            assert isinstance(a, ArrayType), p
            assert isinstance(v, np.ndarray) and v.flags.c_contiguous, p
            assert v.dtype == a.dtype.numpy, p
            assert v.shape == tuple(_extent(e, sizes) for e in a.shape), p
    assert bench.outputs and set(bench.outputs) <= arrays
    if bench.flops is not None:
        assert bench.flops(sizes) > 0
