"""Probes over a run's recorded artifacts (the probe library arrives with issue 3)."""
