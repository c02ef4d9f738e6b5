"""watcher: supervises an ML pipeline with a local, grammar-constrained LLM."""

from __future__ import annotations

__version__ = "0.1.0"
