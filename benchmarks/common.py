"""What the benchmark scripts share: the repository root and the example generator."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_generator():
    """examples/make_collection.py as the module ``make_collection``."""
    examples = str(ROOT / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    import make_collection

    return make_collection
