"""The harness imports as `e2e`, with benchmarks/ on sys.path: the name mypy gives it (benchmarks/ is no
package, its micro-benchmarks import each other as top-level modules), so the tests and the checker agree."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
