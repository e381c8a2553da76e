"""Kept only for tests/test_config.py, which imports ``REPO_ROOT`` and ``run`` from here: every other test
imports from ``support`` (one module per concern). Once test_config.py does too, delete this file."""

from support.commands import REPO_ROOT, run

__all__ = ["REPO_ROOT", "run"]
