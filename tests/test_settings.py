"""Settings outside their accepted values are refused by name
(``polyop.settings``), and an unknown ``POLYOP_DUMP`` stage is warned about."""

import warnings

import pytest

import polyop
from polyop.codegen import parallel
from polyop.codegen.threadpool import MAX_THREADS


@pytest.fixture
def fresh_settings(monkeypatch):
    """get_num_threads/get_min_work read the environment again (restored after)."""
    monkeypatch.setattr(parallel, "_num_threads", None)
    monkeypatch.setattr(parallel, "_min_work", None)
    return monkeypatch


@pytest.mark.parametrize("text", ["0", "-3", "abc", "2.5", str(MAX_THREADS + 1), "0x4"])
def test_bad_num_threads_in_the_environment_is_refused(fresh_settings, text):
    fresh_settings.setenv("POLYOP_NUM_THREADS", text)
    with pytest.raises(polyop.SettingError) as info:
        parallel.get_num_threads()
    assert str(info.value) == (f"POLYOP_NUM_THREADS={text!r}: expected an integer "
                               f"from 1 to {MAX_THREADS}")
    assert info.value.setting == "POLYOP_NUM_THREADS"
    assert parallel._num_threads is None  # nothing was taken in its place


@pytest.mark.parametrize("text, expected", [("3", 3), (" 2 ", 2), ("", None)])
def test_good_num_threads_in_the_environment(fresh_settings, text, expected):
    fresh_settings.setenv("POLYOP_NUM_THREADS", text)
    n = parallel.get_num_threads()
    assert n == (expected if expected is not None
                 else min(parallel.available_cpus(), MAX_THREADS))


@pytest.mark.parametrize("text", ["-1", "many", "1e3"])
def test_bad_min_work_in_the_environment_is_refused(fresh_settings, text):
    fresh_settings.setenv("POLYOP_MIN_WORK", text)
    with pytest.raises(polyop.SettingError, match=f"POLYOP_MIN_WORK={text!r}: expected"):
        parallel.get_min_work()


@pytest.mark.parametrize("bad", [0, -1, MAX_THREADS + 1, 2.0, True, "2"])
def test_set_num_threads_refuses_bad_counts(bad):
    before = parallel.get_num_threads()
    with pytest.raises(polyop.SettingError, match=rf"set_num_threads: expected an int from 1 "
                                                  rf"to {MAX_THREADS}, got {bad!r}"):
        parallel.set_num_threads(bad)
    assert parallel.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5])
def test_ops_refuse_bad_thread_counts(threads):
    with pytest.raises(polyop.SettingError, match="matmul: threads: expected an int from 1"):
        polyop.ops.matmul(8, 8, 8, threads=threads)
    with pytest.raises(polyop.SettingError, match="conv2d: threads: expected an int from 1"):
        polyop.ops.conv2d(4, 6, 6, 4, threads=threads)


def test_setting_error_is_a_value_error():
    with pytest.raises(ValueError):
        parallel.set_min_work(-5)


@polyop.kernel
def _fill(n: int, A: "f64[n]"):
    for i in range(n):
        A[i] = 2.0


def test_unknown_dump_stage_is_warned_about_once(monkeypatch, capsys):
    from polyop import pipeline

    monkeypatch.setattr(pipeline, "_dump_warned", set())
    monkeypatch.setenv("POLYOP_DUMP", "ast,bogus")
    with pytest.warns(RuntimeWarning, match=r"POLYOP_DUMP: unknown stage\(s\) bogus "
                                            r"\(stages: model, ast, ir, llvm, asm, all\)"):
        polyop.lower(_fill)
    assert "// ---- polyop ast ----" in capsys.readouterr().err  # the known stage still dumps
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        polyop.lower(_fill)  # warned once per name
    monkeypatch.setenv("POLYOP_DUMP", "ir")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        polyop.lower(_fill)
    assert "// ---- polyop ir ----" in capsys.readouterr().err
