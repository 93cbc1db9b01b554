"""The rich consoles the commands print to (stdout for results, stderr for progress and errors).

rich already honours ``NO_COLOR`` and drops colours and live progress when the stream is
not a terminal; ``FORCE_COLOR`` forces them.  The consoles are made per command run, so a
test that runs commands in-process gets fresh ones.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["Output", "escape", "progress_bar", "spinner"]


class Output:
    """Where a command writes: ``out`` (results) and ``err`` (progress, notes, errors)."""

    def __init__(self, verbose: bool = False) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.verbose = verbose

    def note(self, message: str) -> None:
        """A progress line on stderr."""
        self.err.print(message)

    def done(self, message: str) -> None:
        """A success line on stderr, with a green tick."""
        self.err.print(f"[green]✓[/green] {message}")

    def warn(self, message: str) -> None:
        """A warning line on stderr."""
        self.err.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def error(self, message: str) -> None:
        """The one-line error a failing command ends with."""
        self.err.print(f"[bold red]chopin: error:[/bold red] {escape(message)}")


def progress_bar(output: Output) -> Progress:
    """A progress bar with a count (``3/7``) and elapsed time, on stderr."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.err,
        transient=False,
    )


def spinner(output: Output) -> Progress:
    """A spinner with a description and elapsed time, for work of unknown size."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=output.err)
