"""One round = amplify (the backend's `sample`) -> select (here) -> distill (the backend's `finetune`)."""

from harness.strategies.select import UnlabeledSample, Vote, majority_vote, self_consistency, strip_labels

__all__ = ["UnlabeledSample", "Vote", "majority_vote", "self_consistency", "strip_labels"]
