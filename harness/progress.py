"""Progress reporting: the loop calls `reporter.task(...)`; the CLI plugs in rich bars, tests plug in nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class Reporter(Protocol):
    def task(self, description: str, total: int) -> AbstractContextManager[Advance]: ...

    def log(self, message: str) -> None: ...


class SilentReporter:
    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda n: None

    def log(self, message: str) -> None:
        pass


class RichReporter:
    """One rich progress bar per task, left on screen when done."""

    def __init__(self, console):
        self.console = console

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=False) as bar:
            task_id = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task_id, n)

    def log(self, message: str) -> None:
        self.console.print(message)
