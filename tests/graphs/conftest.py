from __future__ import annotations

import sys
from pathlib import Path

# The corpus helpers (scripted model, shapes, harness, history validator) live here.
sys.path.insert(0, str(Path(__file__).parent))
