"""Kept for existing imports: the function-driven test double is public now, harness.models.testing."""

from harness.models.testing import FunctionBackend

__all__ = ["FunctionBackend"]
