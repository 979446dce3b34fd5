"""Run polyop as if on another x86-64 host whose instructions this machine
has (an AVX2 CPU on an AVX-512 one): for checking that the test suite does
not depend on the host it runs on.

    POLYOP_TEST_HOST=znver3 PYTHONPATH=tests/hostemu python -m pytest -m "not slow" -n auto

Python imports this module at start-up when its folder is on ``PYTHONPATH``
(so the pytest workers and the command-line tests' subprocesses get it too).
With ``POLYOP_TEST_HOST`` set to an LLVM CPU name, LLVM's host CPU becomes
that CPU, the host's AVX-512 features are dropped when that CPU has no
512-bit vectors, and the host's caches are ``polyop.target.CACHES``' entry
for it. Without the variable it does nothing.
"""

import os

CPU = os.environ.get("POLYOP_TEST_HOST")

if CPU:
    import llvmlite.binding as llvm

    import polyop.target as target

    _bits = target.Target(f"cpu -mtriple={llvm.get_process_triple()} -mcpu={CPU}").vector_bits
    _real_features = llvm.get_host_cpu_features

    def _features():
        f = _real_features()
        if _bits < 512:
            for name in list(f):
                if name.startswith(("avx512", "avx10", "amx")) or name == "evex512":
                    f[name] = False
        return f

    llvm.get_host_cpu_name = lambda: CPU
    llvm.get_host_cpu_features = _features
    target.host_caches = lambda: target.CACHES.get(CPU, target.DEFAULT_CACHES)
    target._host_info = None  # taken again, through the functions above
