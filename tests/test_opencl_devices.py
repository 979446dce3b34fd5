"""Which OpenCL device ``target="opencl"`` runs on, and the error when a
device's compiler cannot build for this machine (PoCL's pip build on CPUs
newer than its LLVM 14, e.g. Zen 5)."""

from __future__ import annotations

import numpy as np
import pytest

import polyop
from polyop import gputarget
from polyop.errors import TargetUnavailableError

cl = pytest.importorskip("pyopencl")


@polyop.kernel
def scale(n: int, a: "f32[n]", b: "f32[n]"):
    for i in range(n):
        b[i] = 2 * a[i]


def bound():
    sch = polyop.Schedule(scale)
    io, ii = sch.split(sch.get_loops("S0")[0], 32)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    return sch


def test_the_default_device_compiles_here_and_runs():
    found = gputarget.opencl_device()
    if found is None:
        pytest.skip("no OpenCL platform on this machine")
    _, device = found
    assert gputarget.compiler_problem(device) is None
    a = np.arange(70, dtype="f4")
    b = np.zeros(70, "f4")
    polyop.build(bound(), target="opencl")(a=a, b=b)
    np.testing.assert_array_equal(b, 2 * a)


def test_a_device_whose_compiler_fails_everywhere_is_named(monkeypatch):
    """A build failure on a device that cannot build even a trivial kernel is
    the machine's, not the printer's: a ``TargetUnavailableError`` naming the
    device, the compiler's message and what to install."""
    if gputarget.opencl_device() is None:
        pytest.skip("no OpenCL platform on this machine")
    message = "error: unknown target CPU 'generic'"

    def refuse(self, *args, **kwargs):
        raise cl.RuntimeError(message)

    monkeypatch.setattr(cl.Program, "build", refuse)
    monkeypatch.setattr(gputarget, "_problems", {})
    with pytest.raises(TargetUnavailableError) as err:
        polyop.build(bound(), target="opencl")
    text = str(err.value)
    assert "cannot compile for this machine" in text and "unknown target CPU" in text
    if "Portable Computing Language" in text:
        assert "pip install intel-opencl-rt" in text


def test_compiler_problem_is_asked_once_per_device(monkeypatch):
    found = gputarget.opencl_device()
    if found is None:
        pytest.skip("no OpenCL platform on this machine")
    _, device = found
    calls = []
    real = cl.Program.build

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(gputarget, "_problems", {})
    monkeypatch.setattr(cl.Program, "build", counted)
    assert gputarget.compiler_problem(device) is None
    assert gputarget.compiler_problem(device) is None
    assert len(calls) == 1
