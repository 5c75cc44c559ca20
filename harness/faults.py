"""Fault injection for the repository's kill-and-resume tests: named points in the code where a test can
make the process die as `kill -9` would, at the n-th time the point is reached.

    LOOPPROBE_FAULT=write@7        SIGKILL at the 7th atomic write
    LOOPPROBE_FAULT=count          count every point reached (`counts()`; tests read them)

Unarmed (always, outside tests), `reached` is one test of a module global.
"""

from __future__ import annotations

import os
import signal

POINTS = ("write", "model", "cache", "step", "sample", "round")  # where `reached` is called

_armed = False
_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None


def arm(plan: str) -> None:
    """"point@n" kills at the n-th time `point` is reached; "count" only counts; "" disarms."""
    global _armed, _target
    _counts.clear()
    _armed, _target = bool(plan), None
    if "@" in plan:
        point, _, n = plan.partition("@")
        if point not in POINTS or not n.isdigit():
            raise ValueError(f"LOOPPROBE_FAULT={plan!r}: expected POINT@N with POINT one of {POINTS}")
        _target = (point, int(n))


def counts() -> dict[str, int]:
    return dict(_counts)


def reached(point: str) -> None:
    if not _armed:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _target is not None and _target == (point, _counts[point]):
        os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get("LOOPPROBE_FAULT", ""))
