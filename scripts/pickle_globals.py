"""List the globals a (well-formed, single) pickle imports, without loading it.

Walks pickletools.genops with a tiny symbolic stack: only strings are tracked
(so STACK_GLOBAL operands pushed directly or fetched from the memo resolve);
everything else is an opaque placeholder.  Used to record the imported
globals of the benign fixtures in manifest.json.  Raises on anything odd -
it is meant for real-library output only.
"""

from __future__ import annotations

import pickletools

_OPAQUE = object()
_STR_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
            "STRING", "BINSTRING", "SHORT_BINSTRING"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def scan_globals(data: bytes) -> list[str]:
    """Return 'module.name' for every GLOBAL/INST/STACK_GLOBAL, in first-seen order."""
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    seen: list[str] = []

    def note(module, name):
        if not (isinstance(module, str) and isinstance(name, str)):
            raise ValueError("non-string STACK_GLOBAL operand")
        g = f"{module}.{name}"
        if g not in seen:
            seen.append(g)

    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name in ("GLOBAL", "INST"):
            module, attr = arg.split(" ", 1)
            note(module, attr)
        if name == "STACK_GLOBAL":
            attr = stack.pop()
            module = stack.pop()
            note(module, attr)
            stack.append(_OPAQUE)
            continue
        if name in _PUT_OPS:
            memo[arg] = stack[-1]
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
            continue
        if name in _GET_OPS:
            stack.append(memo[arg])
            continue
        if name == "MARK":
            marks.append(len(stack))
            continue
        if name == "DUP":
            stack.append(stack[-1])
            continue
        before = op.stack_before
        if pickletools.markobject in before:
            k = before.index(pickletools.markobject)
            del stack[marks.pop():]
            if k:
                del stack[-k:]
        elif before:
            del stack[-len(before):]
        if name == "STOP":
            break
        for _ in op.stack_after:
            stack.append(arg if name in _STR_OPS else _OPAQUE)
    return seen
