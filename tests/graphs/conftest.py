from __future__ import annotations

import sys
from pathlib import Path

# The corpus helpers (shapes, harness, history validator) live here; the scripted chat
# model is `ScriptedChat` in tests/fakes.py, with the other fakes.
sys.path.insert(0, str(Path(__file__).parent))
