"""Fault injection for the repository's kill-and-resume tests: named points in the code where a test can
make the process die as `kill -9` would, at the n-th time the point is reached.

    LOOPPROBE_FAULT=write@7        SIGKILL at the 7th atomic write
    LOOPPROBE_FAULT=count:FILE     count every point reached; write the counts to FILE (JSON) at exit

Unset (always, outside tests), `reached` is one dictionary lookup.
"""

from __future__ import annotations

import atexit
import json
import os
import signal

_plan = os.environ.get("LOOPPROBE_FAULT", "")
_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None
if "@" in _plan:
    _point, _, _n = _plan.partition("@")
    _target = (_point, int(_n))
elif _plan.startswith("count:"):
    _out = _plan.removeprefix("count:")

    @atexit.register
    def _write_counts() -> None:
        with open(_out, "w") as f:
            json.dump(_counts, f)

POINTS = ("write", "model", "cache", "step", "sample", "round")  # where `reached` is called


def reached(point: str) -> None:
    if not _plan:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _target is not None and _target == (point, _counts[point]):
        os.kill(os.getpid(), signal.SIGKILL)
