"""A progress bar on stderr for the report's long stages, off when stderr is not a
terminal (CI logs, cron mail, pipes) or when asked."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stages(*, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A function to call with each stage's name as it starts; it shows the stage, how
    many have passed and the time taken, and does nothing when disabled or when stderr
    is not a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("[dim]{task.completed} steps"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def step(name: str) -> None:
            bar.update(task, description=name, advance=1)

        yield step
