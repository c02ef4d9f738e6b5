"""Subcommands of ``watcher``; each module has ``register(subparsers)``."""
