"""Probes: pure functions over a run's recorded artifacts that return measurements with confidence intervals.

Write one in a short file::

    from probes import Probe, RunView, probe, stats

    @probe
    class UnparsedRate(Probe):
        \"\"\"Share of pool samples whose answer cannot be parsed (format drift).\"\"\"
        id, family = "example.unparsed", "drift"
        def measure(self, run: RunView):
            ...

See docs/writing-a-probe.md for a complete example with its controls.
"""

from probes import stats
from probes._api import Concern, Measurement, Probe, ProbeError, SeriesPoint, get_probe, probe, registry
from probes._loading import load_probes
from probes._runner import (
    Correction,
    ProbeInfo,
    ProbeResults,
    correct,
    incomplete,
    measure_probe,
    read_results,
    recorded_selection,
    results_for,
    run_probes,
    stale_probes,
    write_results,
)
from probes._view import MISSING, PooledRunView, RunView, SampleTable, answer_code, answer_text
from probes.common import series, top_items, tracked, tracked_names
from probes.stats import Estimate, ItemValues

__all__ = ["MISSING", "Concern", "Correction", "Estimate", "ItemValues", "Measurement", "PooledRunView", "Probe",
           "ProbeError", "ProbeInfo", "ProbeResults", "RunView", "SampleTable", "SeriesPoint", "answer_code",
           "answer_text", "correct", "get_probe", "incomplete", "load_probes", "measure_probe", "probe",
           "read_results", "recorded_selection", "registry", "results_for", "run_probes", "series", "stale_probes", "stats", "top_items",
           "tracked", "tracked_names", "write_results"]
