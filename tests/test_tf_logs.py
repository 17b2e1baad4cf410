"""TensorFlow's C++ start-up logging stays off the entry points' stderr, unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from export.registry import list_formats
from runtime import tf_logs
from runtime.tf_logs import LEVEL_VAR, native_stderr_filtered, quiet_tensorflow

REPO = Path(__file__).resolve().parents[1]
NOISE = ("oneDNN custom operations are on", "cpu_feature_guard",
         "All log messages before absl::InitializeLog()")


def _env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing (conftest quiets the test process itself)."""
    env = {k: v for k, v in os.environ.items() if k not in (LEVEL_VAR, "TF_ENABLE_ONEDNN_OPTS")}
    # oneDNN on explicitly: TensorFlow then prints its start-up line on any x86 CPU, so that the
    # line's absence below means it was hidden, not that this CPU never triggers it.
    return {**env, "TF_ENABLE_ONEDNN_OPTS": "1", "PYTHONPATH": str(REPO), **extra}


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(n in line for n in NOISE)]


def test_export_prints_no_tensorflow_startup_noise(tiny_run, tmp_path):
    fmt = list_formats()[0].name  # one format is enough: TensorFlow loads in this process and its worker
    cmd = [sys.executable, "-m", "export", "--run", str(tiny_run), "--out", str(tmp_path / "b"),
           "--formats", fmt, "--threads", "2"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not _noise(proc.stderr), proc.stderr
    assert f"{fmt}: exporting" in proc.stderr  # our own log lines still come through


@pytest.mark.parametrize("how", ["--verbose", "a level the user set"])
def test_tensorflow_logs_as_usual_with_verbose_or_the_users_level(how):
    verbose = how == "--verbose"
    env = _env() if verbose else _env(**{LEVEL_VAR: "0"})
    code = f"from runtime.tf_logs import quiet_tensorflow; quiet_tensorflow({verbose}); import tensorflow"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "oneDNN custom operations are on" in proc.stderr


@pytest.fixture
def clean(monkeypatch):
    """No level in the environment, and quiet_tensorflow's hook (if any) kept out of this process."""
    monkeypatch.delenv(LEVEL_VAR, raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(tf_logs, "_set_here", False)


def test_quiet_sets_the_level_only_when_the_user_did_not(clean, monkeypatch):
    quiet_tensorflow()
    assert os.environ[LEVEL_VAR] == "2"
    quiet_tensorflow(verbose=True)  # a later --verbose run in the same process takes back ours
    assert LEVEL_VAR not in os.environ
    monkeypatch.setenv(LEVEL_VAR, "0")
    quiet_tensorflow()
    quiet_tensorflow(verbose=True)
    assert os.environ[LEVEL_VAR] == "0"  # the user's, untouched either way


def test_the_filter_drops_only_startup_info_and_warnings(capfd):
    error = b"E0000 00:00:1796223201.630731    4381 node_def_util.cc:682] a real error\n"
    with native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to "
                    b"STDERR\n")
        os.write(2, b"I0000 00:00:1796223100.751303    3342 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"W0000 00:00:1796223100.751303    3342 cuda.cc:12] no GPU\n")
        os.write(2, error)
        os.write(2, b"a Python warning, or anything else\n")
    assert capfd.readouterr().err == (error + b"a Python warning, or anything else\n").decode()
