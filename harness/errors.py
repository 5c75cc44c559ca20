"""Errors the command line prints as one line (exit 2), and the one that means a run stopped on a bad round."""

from __future__ import annotations


class RunError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


class RoundFailed(RunError):
    """A round's fine-tune failed (recorded in its round.json with status "failed"); the run stopped there.
    Earlier rounds are intact. The CLI exits 1: this is a finding about the loop, not a usage error."""
