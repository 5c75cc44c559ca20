"""Domains: questions with hidden truth, a prompt format, a parser and a checker (`Domain` protocol)."""

from __future__ import annotations


def make_domain(config, seed: int):
    """The domain a run's `[domain] name` picks."""
    if config.name == "word_problems":
        from harness.domains.word_problems import WordProblemsDomain

        return WordProblemsDomain(config, seed=seed)
    from harness.domains.arithmetic import ArithmeticDomain

    return ArithmeticDomain(config, seed=seed)
