"""Model backends behind one protocol (`ModelBackend`): sample, score, fine-tune, save, load."""

from harness.models.base import Completion, ModelBackend, TrainStats

__all__ = ["Completion", "ModelBackend", "TrainStats"]
