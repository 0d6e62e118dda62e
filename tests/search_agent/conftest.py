from __future__ import annotations

import sys
from pathlib import Path

# The helpers of these tests (a scripted model with queued structured replies, fake tools).
sys.path.insert(0, str(Path(__file__).parent))
