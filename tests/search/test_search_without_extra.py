"""The offline path works without the [search] extra (`make demo` installs only
`.[local,plot]`), and a real backend asked for without it names the extra."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from agent_budget.tools.search import IndexInfo

SCRIPT = textwrap.dedent(
    """
    import sys, importlib.abc

    class NoExtra(importlib.abc.MetaPathFinder):
        # As if `pip install agent-budget` had been run without [search].
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("ddgs", "tavily", "trafilatura", "primp"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoExtra())
    from pathlib import Path
    from agent_budget.tools.search import (
        MissingExtra, offline_backend, offline_fetcher, resolve_backend, search_tools)

    lazy = [m for m in ("httpx", "tenacity", "ddgs", "tavily", "trafilatura") if m in sys.modules]
    print("imported on import:", lazy)
    backend = offline_backend(Path(sys.argv[1]), progress=False)
    search, fetch = search_tools(backend, offline_fetcher(backend=backend))
    assert "offline://stdlib/math#comb" in search.invoke({"query": "binomial coefficient"})
    assert "Title: math.comb" in fetch.invoke({"url": "offline://stdlib/math#comb"})
    for name in ("ddgs", "tavily"):
        try:
            resolve_backend(name, **({"api_key": "k"} if name == "tavily" else {}))
        except MissingExtra as exc:
            print(name, "->", exc)
    print("offline ok")
    """
)


def test_offline_tools_work_without_the_search_extra(built_index: IndexInfo) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(built_index.path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "imported on import: []" in out  # lazy: no HTTP stack or engine at import
    assert "offline ok" in out
    assert "ddgs -> the DuckDuckGo backend needs the 'ddgs' package" in out
    assert "tavily -> the Tavily backend needs the 'tavily-python' package" in out
    assert out.count("pip install 'agent-budget[search]'") == 2
