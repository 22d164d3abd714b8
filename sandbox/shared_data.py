"""Where the workplace's shared data is (../shared/data: the 81k catalogue, the roster, loans).

Tests and benchmarks read it from there, never from a copy in the repository (it is not ours to
ship). ``SHUXIANG_SHARED_DATA`` names it outright; otherwise the first ``shared/data`` beside the
checkout or any folder above it (a git worktree or a clone elsewhere sits deeper), then the
workplace's own ``/work/shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKPLACE = Path("/work/shared/data")


def shared_data_dir() -> Path:
    named = os.environ.get("SHUXIANG_SHARED_DATA")
    if named:
        return Path(named)
    for folder in ROOT.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return WORKPLACE
