"""Where joblib itself maps each array of a joblib file: the expected values
pkinspect's payload offsets are tested against.

Shared by scripts/gen_fixtures.py and scripts/fixtures_containers.py.
"""

from __future__ import annotations

from pathlib import Path

import joblib


def memmap_payloads(path: Path) -> list[list[int]]:
    """[offset, nbytes] of every array joblib itself memory-maps from `path`.

    These files were just written by joblib.dump from our own objects (trusted),
    so loading them is safe; mmap_mode='r' makes joblib report where each
    array's raw bytes sit, which is what pkinspect must find statically.
    """
    import numpy as np

    found: list[list[int]] = []
    seen: set[int] = set()
    stack = [joblib.load(path, mmap_mode="r")]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.memmap):
            found.append([int(obj.offset), int(obj.nbytes)])
        elif isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                stack.extend(obj.ravel().tolist())
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return sorted(found)
