"""The llama.cpp build: portable on any x86-64-v3 CPU, and a native crash never ends the test run.

See scripts/install-llama.sh for how it is built and agent_budget/models/portability.py for
how it is checked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent_budget.models.portability import check_installed_llama, scan_libraries

ROOT = Path(__file__).resolve().parents[1]


def test_the_makefile_builds_the_version_pyproject_pins() -> None:
    make = re.search(r"^LLAMA_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make, "Makefile has no LLAMA_VERSION"
    local = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["local"]
    pins = [r for r in local if r.startswith("llama-cpp-python")]
    assert pins == [f"llama-cpp-python[server]=={make.group(1)}"]


def test_installed_llama_cpp_has_no_amx_and_no_avx512() -> None:
    report = check_installed_llama()
    if report.verdict == "unknown":
        pytest.skip(f"cannot check the llama.cpp build: {report.reason}")
    assert report.verdict == "portable", report.render()


def _shared_lib(tmp_path: Path, name: str, asm: str, flags: list[str]) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build the sample libraries")
    src = tmp_path / f"{name}.c"
    src.write_text(f'void f(void) {{ __asm__ volatile("{asm}"); }}\n')
    out = tmp_path / f"lib{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", *flags, str(src), "-o", str(out)], check=True)
    return out


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump not found (binutils)")
def test_the_check_fails_on_amx_or_avx512_code_and_passes_on_avx2(tmp_path: Path) -> None:
    amx = _shared_lib(tmp_path, "amx", "tilerelease", ["-mamx-tile"])
    zmm = _shared_lib(tmp_path, "zmm", "vpxord %zmm1, %zmm1, %zmm1", ["-mavx512f"])
    avx2 = _shared_lib(tmp_path, "avx2", "vpxor %ymm1, %ymm1, %ymm1", ["-mavx2"])
    report = scan_libraries([amx, zmm, avx2])
    assert report.verdict == "not-portable"
    counts = {s.path.name: (s.amx, s.avx512) for s in report.libraries}
    assert counts == {"libamx.so": (1, 0), "libzmm.so": (0, 1), "libavx2.so": (0, 0)}
    assert "libamx.so, libzmm.so" in report.reason and "install-llama.sh" in report.reason
    assert scan_libraries([avx2]).verdict == "portable"


def test_without_objdump_the_answer_is_unknown_not_portable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    report = scan_libraries([tmp_path / "libx.so"])
    assert report.verdict == "unknown" and "objdump not found" in report.reason


@pytest.mark.local_model
def test_probe_reports_a_crash_by_signal_with_how_to_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_budget.models.selfcheck import probe

    assert probe().ok
    monkeypatch.setenv("AGENT_BUDGET_PROBE_SIGNAL", "SIGILL")
    broken = probe()
    assert not broken.ok and broken.returncode == -4
    assert "SIGILL" in broken.message and "install-llama.sh" in broken.message


@pytest.mark.local_model
def test_a_crashing_build_fails_the_local_model_tests_and_the_others_still_report() -> None:
    env = {**os.environ, "AGENT_BUDGET_PROBE_SIGNAL": "SIGILL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/models/test_model_local.py::test_chat_reports_usage_and_model_name",
            "tests/models/test_model_local.py::test_max_tokens_caps_output",
            "tests/test_budget.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # a test failure, not a signal
    assert re.search(r"\d+ passed, 2 errors", out), out
    assert "died with SIGILL" in out and "install-llama.sh" in out
