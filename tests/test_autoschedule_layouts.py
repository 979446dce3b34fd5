"""auto_schedule's transposed copies (``polyop.autoschedule.layouts``): a
read-only matrix read down its columns by the vector loop is copied
transposed ahead of the band."""

from __future__ import annotations

import pytest

import polyop
from tests.polybench import BENCHES

AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=1"


@polyop.kernel
def transposed(n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            B[i, j] = A[j, i] * 2.0  # each element read once: no copy pays


@polyop.kernel
def gram_in_place(n: int, m: int, A: "f64[n, m]", C: "f64[n, n]"):
    for i in range(n):
        for k in range(m):
            for j in range(n):
                C[i, j] += A[i, k] * A[j, k]
    for i in range(n):
        A[i, 0] = C[i, i]  # A is written: a copy could go stale


def test_syrk_reads_a_transposed_copy():
    syrk = BENCHES["syrk"]
    sch = polyop.auto_schedule(syrk.kernel, AVX512, sizes=syrk.sizes["MEDIUM"])
    knob = sch.explanation.knob("S1:transpose")
    assert knob.chosen == ("A",) and knob.applied and "(A: 240) >= 16" in knob.why
    assert "cache_read(A) -> A_t" in str(sch)
    # the copy: tiles of 8 x 8 doubles transposed in registers, no scalar strided loop
    assert "unroll(A_t_1_inner)" in str(sch) and "vectorize(A_t_0_inner)" in str(sch)
    text = str(polyop.lower(sch))
    assert "A_t[k][j]" in text and "A[j][k]" not in text.split("A_t[")[-1]
    assert sch.explanation.knob("S1:vectorize").chosen  # every access now contiguous
    off = polyop.auto_schedule(syrk.kernel, AVX512, sizes=syrk.sizes["MEDIUM"],
                               knobs={"S1:transpose": ()})
    assert "A_t" not in str(off) and not off.explanation.knob("S1:vectorize").chosen


def test_syr2k_transposes_both_operands():
    syr2k = BENCHES["syr2k"]
    sch = polyop.auto_schedule(syr2k.kernel, AVX512, sizes=syr2k.sizes["MEDIUM"])
    assert sch.explanation.knob("S1:transpose").chosen == ("A", "B")


def test_not_taken_without_reuse_or_for_a_written_array():
    sch = polyop.auto_schedule(transposed, AVX512, sizes={"n": 500})
    knob = sch.explanation.knob("S0:transpose")
    assert knob.chosen == () and "(A: 1) < 16" in knob.why
    assert "A_t" not in str(sch)
    sch = polyop.auto_schedule(gram_in_place, AVX512, sizes={"n": 200, "m": 200})
    assert "S0:transpose" not in [k.name for k in sch.explanation.knobs]
    assert "A_t" not in str(sch)


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("name", ["syrk", "syr2k"])
def test_transposed_copies_match_cpython(name, cores, threads):
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, f"cpu -num-cores={cores}",
                               sizes=bench.sizes["MEDIUM"])
    assert "_t" in str(sch)
    f = polyop.build(sch)
    threads(cores)
    for size in ("MINI", "SMALL"):
        bench.check(f, size)
