"""Is the installed llama.cpp build portable? Count the instructions that make it not so.

A llama.cpp built with ``GGML_NATIVE=ON`` compiles AMX and AVX-512 kernels whenever the build
machine's CPU advertises them. A cloud VM may advertise AMX and still refuse it (SIGILL at the
first batched matmul), and many CPUs lack AVX-512. This module disassembles the shared
libraries of the installed ``llama_cpp`` package with ``objdump`` and counts AMX tile
instructions and AVX-512 (``%zmm``) register uses. It never imports ``llama_cpp`` (importing a
bad build is what crashes). Without ``objdump`` the answer is "unknown", never "portable".
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AMX = re.compile(
    r"\b(tileloadd|tileloaddt1|tilestored|tilezero|ldtilecfg|sttilecfg|tdpb[su][su]d|"
    r"tdpbf16ps|tdpfp16ps|tilerelease)\b"
)
AVX512 = re.compile(r"%zmm\d")

Verdict = Literal["portable", "not-portable", "unknown"]


@dataclass(frozen=True)
class LibraryScan:
    """What one shared library contains."""

    path: Path
    amx: int
    avx512: int

    @property
    def portable(self) -> bool:
        return self.amx == 0 and self.avx512 == 0


@dataclass(frozen=True)
class BuildReport:
    verdict: Verdict
    libraries: tuple[LibraryScan, ...] = ()
    reason: str = ""

    def render(self) -> str:
        lines = [
            f"{s.path.name:<36} AMX: {s.amx:>6}   AVX-512 (zmm): {s.avx512:>6}"
            for s in self.libraries
        ]
        lines.append(f"{self.verdict}: {self.reason}" if self.reason else self.verdict)
        return "\n".join(lines)


REBUILD_HINT = (
    "Rebuild it portably: `make clean && make install` in the agent-budget checkout, or "
    "`scripts/install-llama.sh .venv <version>` (builds with GGML_NATIVE=OFF and an x86-64-v3 "
    "baseline, never from pip's wheel cache)."
)


def llama_library_dir() -> Path | None:
    """The installed llama_cpp package's lib/ folder, found without importing llama_cpp."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    lib = Path(spec.origin).parent / "lib"
    return lib if lib.is_dir() else None


def scan_library(path: Path, objdump: str = "objdump") -> LibraryScan:
    """Count AMX instructions and AVX-512 register uses in one ELF file."""
    out = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    lines = out.splitlines()  # one instruction per line, as objdump prints them
    amx = sum(1 for line in lines if AMX.search(line))
    return LibraryScan(path, amx, sum(1 for line in lines if AVX512.search(line)))


def scan_libraries(paths: list[Path]) -> BuildReport:
    """A verdict over the given libraries (``unknown`` when objdump is not installed)."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return BuildReport(
            "unknown", reason="objdump not found (Debian/Ubuntu: apt install binutils)"
        )
    scans = tuple(scan_library(p, objdump) for p in paths)
    bad = [s for s in scans if not s.portable]
    if bad:
        names = ", ".join(s.path.name for s in bad)
        return BuildReport(
            "not-portable",
            scans,
            f"{names} use AMX or AVX-512: this build dies with SIGILL on machines that "
            f"advertise but cannot run them, or lack them. {REBUILD_HINT}",
        )
    return BuildReport("portable", scans, "no AMX, no AVX-512")


def check_installed_llama() -> BuildReport:
    """The verdict on the llama_cpp installed in this interpreter's environment."""
    lib = llama_library_dir()
    if lib is None:
        return BuildReport("unknown", reason="llama-cpp-python is not installed")
    seen: set[str] = set()
    paths: list[Path] = []
    for path in sorted(lib.glob("*.so*")):  # wheels install each soname as its own copy
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        if digest and digest not in seen:
            seen.add(digest)
            paths.append(path)
    if not paths:
        return BuildReport("unknown", reason=f"no shared libraries in {lib}")
    return scan_libraries(paths)
