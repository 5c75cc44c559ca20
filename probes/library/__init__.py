"""The built-in probe library: importing it registers every built-in probe."""

from probes.library import (  # noqa: F401
    attractors,
    collapse,
    confident_wrong,
    drift,
    forecast,
    forecast_skill,
    inspect_drift,
    regime,
)
