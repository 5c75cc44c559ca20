"""Model backends behind one protocol (`ModelBackend`: sample, score, fine-tune, save), each registered as a
`BackendPlugin` (its config, its base model, loading its checkpoints; harness.models.factory looks them up).
The torch backends share one training core (harness.models.training); harness.models.testing has a
function-driven test double."""

from harness.models.base import BackendPlugin, Completion, ModelBackend, TrainStats

__all__ = ["BackendPlugin", "Completion", "ModelBackend", "TrainStats"]
