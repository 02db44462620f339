"""Fixtures: a real LAS process."""

from tests.support.services import las

__all__ = ["las"]
