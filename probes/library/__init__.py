"""The built-in probe library: importing it registers every built-in probe."""

from probes.library import attractors, confident_wrong, drift, forecast, inspect_drift  # noqa: F401
