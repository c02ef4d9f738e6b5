"""Logging set-up: loguru to stderr (journald keeps it), optionally a rotating file as well.

Lines about a request carry its id: use ``logger.bind(request_id=...)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {extra[request_id]}| <level>{message}</level>"
)


def _with_default_request_id(record: dict) -> None:  # type: ignore[type-arg]
    extra = record["extra"]
    rid = extra.get("request_id")
    extra["request_id"] = f"[{rid}] " if rid and not str(rid).startswith("[") else (rid or "")


def configure_logging(level: str = "INFO", log_file: Path | None = None, serialize: bool = False) -> None:
    logger.remove()
    logger.configure(patcher=_with_default_request_id)  # type: ignore[arg-type]
    logger.add(sys.stderr, level=level, format=FORMAT, serialize=serialize, backtrace=False, diagnose=False)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(log_file, level=level, rotation="20 MB", retention=5, serialize=True, enqueue=True)
