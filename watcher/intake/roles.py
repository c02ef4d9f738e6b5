"""What the daemon watches, and what a path found there is: a request, a step's output, or nothing of ours."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from watcher.config import Settings
from watcher.config.outputs import fixed_prefix, has_wild_folders, iter_matching_steps, step_globs
from watcher.spool.folders import IGNORED_SUFFIXES, is_candidate

REQUEST = "request"
APPROVAL = "approval"  # the pipeline's approval file (pipeline.approval_file)


class WatchSet:
    def __init__(self, settings: Settings) -> None:
        self.requests = settings.path(settings.watcher.folders.requests)
        self._requests = str(self.requests)
        self.root = settings.root
        self.pipeline_root = settings.pipeline_root
        # step number -> glob of its output files, relative to pipeline_root unless absolute
        self.step_globs = step_globs(settings)
        self._folders = self._watch_folders(settings)
        approval = settings.watcher.pipeline.approval_file
        self.approval = None if approval is None else settings.path(approval)
        self._approval = str(self.approval)
        if self.approval is not None:
            self._folders.setdefault(self.approval.parent, False)

    @staticmethod
    def _watch_folders(settings: Settings) -> dict[Path, bool]:
        """Folder -> recursive. Step output folders are watched down to the first wildcard of their glob."""
        folders = {settings.path(settings.watcher.folders.requests): False}
        for cfg in settings.watcher.steps.values():
            folder = settings.pipeline_path(fixed_prefix(cfg.output_glob))
            folders[folder] = folders.get(folder, False) or has_wild_folders(cfg.output_glob)
        return folders

    def folders(self) -> list[tuple[Path, bool]]:
        return list(self._folders.items())

    def role(self, path: Path) -> str | None:
        """``REQUEST``, ``APPROVAL``, a step number, or None for a path not ours (temp files, our subfolders)."""
        # Twice per file on the main loop: string operations, not Path ones.
        text = str(path)
        folder, name = os.path.split(text)
        if folder == self._requests:
            return REQUEST if is_candidate(name) else None
        if text == self._approval:
            return APPROVAL
        if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
            return None
        return next(iter_matching_steps(self.step_globs, text, self.pipeline_relative(path)), None)

    def step_outputs(self) -> list[Path]:
        """Every existing step output file, and the approval file (the start-up scan and the rescan)."""
        found: dict[Path, None] = {}
        if self.approval is not None and self.approval.exists():
            found[self.approval] = None
        for pattern in self.step_globs.values():
            for name in sorted(glob.glob(pattern, root_dir=self.pipeline_root, recursive=True)):
                found[self.pipeline_root / name] = None
        return list(found)

    def pipeline_relative(self, path: Path) -> str:
        """What a step's output_glob is matched against: the path relative to pipeline_root when inside it."""
        if path.is_relative_to(self.pipeline_root):
            return str(path.relative_to(self.pipeline_root))
        return str(path)

    def relative(self, path: Path) -> str:
        """How a request names the file: relative to the root when inside it."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
