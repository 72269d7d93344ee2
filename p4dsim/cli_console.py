"""The consoles and the progress bar of the ``p4dsim`` command line."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def progress_bar(quiet: bool, *extra_columns):
    """The commands' rich progress bar on stderr: description, bar, done/total, the first of
    ``extra_columns``, elapsed time, the rest; silent with ``quiet``. When stderr is not a
    terminal: a log line every P4DSIM_PROGRESS_INTERVAL seconds instead (p4dsim.progress)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not err_console.is_terminal:  # a log file or a pipe: periodic lines, not a live bar
        from p4dsim.progress import LogProgress

        return LogProgress(err_console, disable=quiet)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns[:1],
        TimeElapsedColumn(),
        *extra_columns[1:],
        console=err_console,
        disable=quiet,
    )
