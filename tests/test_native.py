"""rcpb.accel.native: building a C file once per machine, the cache, and the fallbacks."""

import shutil
import warnings

import pytest

from rcpb.accel import native

SOURCE = "int rcpb_test_add(int a, int b) { return a + b; }\n"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache directory and no library loaded yet in this process."""
    monkeypatch.setenv("RCPB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RCPB_NATIVE", raising=False)
    monkeypatch.setattr(native, "_loaded", {})
    source = tmp_path / "add.c"
    source.write_text(SOURCE)
    return source


def test_builds_once_and_reuses_the_cached_library(fresh, monkeypatch):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.delenv("CC", raising=False)
    lib = native.load(fresh)
    assert lib is not None and lib.rcpb_test_add(2, 3) == 5
    built = list((fresh.parent / "cache").glob("add-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns

    monkeypatch.setattr(native, "_loaded", {})            # a new process: no rebuild
    assert native.load(fresh).rcpb_test_add(40, 2) == 42
    assert built[0].stat().st_mtime_ns == stamp

    fresh.write_text(SOURCE.replace("a + b", "a - b"))   # changed source: a second build
    monkeypatch.setattr(native, "_loaded", {})
    assert native.load(fresh).rcpb_test_add(2, 3) == -1
    assert len(list((fresh.parent / "cache").glob("add-*.so"))) == 2
    assert not list((fresh.parent / "cache").glob("tmp*"))  # no temporary file left


def test_unwritable_cache_falls_back(fresh, monkeypatch, tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.delenv("CC", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("RCPB_CACHE_DIR", str(blocker / "cache"))   # under a file: not creatable
    with pytest.warns(RuntimeWarning, match="cc failed"):
        assert native.load(fresh) is None


def test_disabled_by_environment(fresh, monkeypatch):
    monkeypatch.setenv("RCPB_NATIVE", "0")
    assert native.load(fresh) is None
    assert not (fresh.parent / "cache").exists()


def test_missing_compiler_warns_once_and_falls_back(fresh, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-rcpb")
    with pytest.warns(RuntimeWarning, match="no C compiler.*no-such-compiler-rcpb"):
        assert native.load(fresh) is None
    with warnings.catch_warnings(record=True) as caught:  # remembered: no second warning
        warnings.simplefilter("always")
        assert native.load(fresh) is None
    assert not caught


def test_compiler_with_flags_in_cc(fresh, monkeypatch):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("CC", "cc -Wall")
    assert native.load(fresh).rcpb_test_add(1, 1) == 2


def test_compile_error_is_reported(fresh, monkeypatch):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.delenv("CC", raising=False)
    fresh.write_text("this is not C\n")
    with pytest.warns(RuntimeWarning, match="cc failed"):
        assert native.load(fresh) is None
    assert not list((fresh.parent / "cache").glob("*"))   # nothing half-built is kept


def test_another_cpu_model_gets_its_own_build(fresh, monkeypatch):
    """A cache shared by machines of different kinds never hands one a -march=native build
    made for another."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(native, "_cpu_identity", lambda: "model name : CPU A\nflags : sse2")
    assert native.load(fresh).rcpb_test_add(2, 3) == 5
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_cpu_identity", lambda: "model name : CPU B\nflags : avx512f")
    assert native.load(fresh).rcpb_test_add(2, 3) == 5
    assert len(list((fresh.parent / "cache").glob("add-*.so"))) == 2


def test_compiler_without_openmp_falls_back(fresh, monkeypatch, tmp_path):
    """A compiler that rejects -fopenmp (Apple's clang) gives no library, with one warning:
    a single-threaded build would be slower than PyTorch's own kernels."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && '
                       '{ echo "unsupported option -fopenmp" >&2; exit 1; }; done\n'
                       'exec cc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    with pytest.warns(RuntimeWarning, match="no OpenMP build possible"):
        assert native.load(fresh) is None
    assert not list((fresh.parent / "cache").glob("*.so"))
