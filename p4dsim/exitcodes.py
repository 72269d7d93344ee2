"""Exit statuses of the ``p4dsim`` command and the signal handling behind them.

0 success, 1 an internal error (a bug: a traceback is printed), 2 a user mistake or a
command-line usage error (one line, no traceback), 130 interrupted by SIGINT (Ctrl-C), 143
terminated by SIGTERM. Interruptions unwind the stack as exceptions, so every writer's
``abort`` runs and no staging folder is left behind.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

OK = 0
USER_ERROR = 2
SIGINT_EXIT = 128 + signal.SIGINT  # 130
SIGTERM_EXIT = 128 + signal.SIGTERM  # 143


_SIGINT_MSG = "interrupted (SIGINT): stopped; staged files removed, nothing partial published"
_SIGTERM_MSG = "terminated (SIGTERM): stopped; staged files removed, nothing partial published"


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (like KeyboardInterrupt
    for SIGINT): ``finally`` blocks and ``except BaseException`` clean-ups run."""


def _on_sigterm(signum: int, frame: Any) -> None:
    # Ignore further SIGTERMs while unwinding, so a clean-up is not cut short by a second one.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


_interrupted = False


def _on_sigint(signum: int, frame: Any) -> None:
    # typer turns KeyboardInterrupt into a silent exit code; remember that it happened.
    global _interrupted
    _interrupted = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt()


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated`, SIGINT KeyboardInterrupt (also in a process that
    was started with SIGINT ignored, as background jobs of a shell are)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(usage-error, exit, abort) exception classes of every click that may be in use: typer
    ships its own copy (``typer._click``, with ``Exit``/``Abort`` in ``typer.exceptions``),
    and a plain ``click`` may be installed too. Looked up by name so that either works."""
    import importlib

    found: dict[str, list[type]] = {"ClickException": [], "Exit": [], "Abort": []}
    for name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for cls_name, bucket in found.items():
            cls = getattr(mod, cls_name, None)
            if isinstance(cls, type) and cls not in bucket:
                bucket.append(cls)
    return tuple(found["ClickException"]), tuple(found["Exit"]), tuple(found["Abort"])


def run_cli(app: Callable[..., Any], print_error: Callable[[str], None], user_errors: tuple) -> int:
    """Run the typer ``app`` and return the process exit status (see the module docstring)."""
    install_signal_handlers()
    usage_errors, exits, aborts = _click_exceptions()
    try:
        rv = app(standalone_mode=False)
        if _interrupted:
            print_error(_SIGINT_MSG)
            return SIGINT_EXIT
        return rv if isinstance(rv, int) else OK
    except user_errors as exc:
        print_error(f"error: {exc}")
        return USER_ERROR
    except KeyboardInterrupt:
        print_error(_SIGINT_MSG)
        return SIGINT_EXIT
    except Terminated:
        print_error(_SIGTERM_MSG)
        return SIGTERM_EXIT
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException as exc:
        if usage_errors and isinstance(exc, usage_errors):
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # the help text, as click does; still status 2
                return USER_ERROR
            msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print_error(f"usage error: {msg}{hint}")
            return USER_ERROR
        if aborts and isinstance(exc, aborts):
            print_error(_SIGINT_MSG)
            return SIGINT_EXIT
        if exits and isinstance(exc, exits):
            return int(getattr(exc, "exit_code", 0) or 0)
        if isinstance(exc, UnicodeDecodeError | IsADirectoryError | MemoryError):
            # Reached only for inputs no check caught; still a user mistake, not a bug.
            print_error(f"error: {type(exc).__name__}: {exc}")
            return USER_ERROR
        raise
