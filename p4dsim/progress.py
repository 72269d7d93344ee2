"""Progress as plain log lines, for when the output is not a terminal (CI logs, ``nohup``,
a pipe): rich's live bar prints nothing there until the end.

:class:`LogProgress` has the part of ``rich.progress.Progress``'s interface the commands use
(context manager, ``add_task``, ``update``, ``advance``, ``console``) and prints one line per
task at most every ``interval_s`` seconds (``P4DSIM_PROGRESS_INTERVAL``, default 10) and a
last one when the task ends: ``replay demo: 12/31 (39 %), 3.2 s elapsed, ~4.9 s left``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    start: float = field(default_factory=time.monotonic)
    last_print: float = 0.0
    printed: float = -1.0


class LogProgress:
    def __init__(self, console: Any, disable: bool = False, interval_s: float | None = None):
        self.console = console
        self.disable = disable
        if interval_s is None:
            try:
                interval_s = float(os.environ.get("P4DSIM_PROGRESS_INTERVAL", "10"))
            except ValueError:
                interval_s = 10.0
        self.interval_s = max(0.0, interval_s)
        self.tasks: list[_Task] = []

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            for i in range(len(self.tasks)):
                self._print(i, final=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        self.tasks.append(_Task(description, total))
        self.tasks[-1].last_print = time.monotonic()
        return len(self.tasks) - 1

    def update(
        self,
        task_id: int,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        **_: Any,
    ) -> None:
        t = self.tasks[task_id]
        if total is not None:
            t.total = total
        if completed is not None:
            t.completed = completed
        if advance is not None:
            t.completed += advance
        if time.monotonic() - t.last_print >= self.interval_s:
            self._print(task_id)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _print(self, task_id: int, final: bool = False) -> None:
        t = self.tasks[task_id]
        if self.disable or (final and t.printed == t.completed):
            return
        now = time.monotonic()
        el = now - t.start
        done = f"{t.completed:g}"
        eta = ""
        if t.total:
            done += f"/{t.total:g} ({100 * t.completed / t.total:.0f} %)"
            if 0 < t.completed < t.total:
                eta = f", ~{el * (t.total - t.completed) / t.completed:.1f} s left"
        self.console.print(
            f"{t.description}: {done}, {el:.1f} s elapsed{eta}", highlight=False, markup=False
        )
        t.last_print, t.printed = now, t.completed
