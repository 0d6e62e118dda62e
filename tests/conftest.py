from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/fakes.py is a helper module shared by the test files.
sys.path.insert(0, str(Path(__file__).parent))

_probe: list[object] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Probe the on-device model once, in a child process, before the first local_model test.

    A llama.cpp build the CPU cannot run dies with SIGILL, which would end the whole pytest
    process with no report. If the probe dies, every local_model test fails with the reason
    and how to rebuild, and all the other tests still run and report.
    """
    if item.get_closest_marker("local_model") is None:
        return
    from agent_budget.models.selfcheck import ProbeResult, probe

    if not _probe:
        _probe.append(probe())
    result = _probe[0]
    assert isinstance(result, ProbeResult)
    if not result.ok:
        pytest.fail(f"local model probe failed: {result.message}", pytrace=False)
