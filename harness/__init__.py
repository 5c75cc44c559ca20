"""The loop under controlled conditions: configure it, run it, read what it recorded.

`run_loop` is imported lazily, so reading artifacts (as probes do) never pays for importing torch.
"""

from harness.artifacts import Manifest, RoundRecord, RunError, RunStore, SampleRow, SelectedRow

__all__ = ["BaseTrainConfig", "LoopConfig", "Manifest", "RoundRecord", "RunConfig", "RunError", "RunStore",
           "SampleRow", "SelectedRow", "run_loop"]


def __getattr__(name: str):
    if name == "run_loop":
        from harness.loop import run_loop

        return run_loop
    if name in ("BaseTrainConfig", "LoopConfig", "RunConfig"):
        import harness.config

        return getattr(harness.config, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
