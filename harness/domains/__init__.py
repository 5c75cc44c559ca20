"""Domains: questions with hidden truth, a prompt format, a parser and a checker (`Domain` protocol).

`make_domain` builds the one a run's `[domain] name` registered (harness.registry); an unknown name is an
error, never a default."""

from harness.domains.base import Domain, Question, make_domain, register_domain

__all__ = ["Domain", "Question", "make_domain", "register_domain"]
