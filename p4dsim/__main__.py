"""``python -m p4dsim`` and the ``p4dsim`` command.

The signal handlers go in before anything heavy is imported (typer, rich, numpy, torch), so
an interruption at any point after the interpreter starts exits with the documented status
(130 SIGINT, 143 SIGTERM) and one line, never with a traceback or a bare signal death.
"""

from __future__ import annotations


def main() -> None:
    import os
    import signal
    import sys

    from p4dsim.exitcodes import (
        SIGINT_EXIT,
        SIGINT_MESSAGE,
        SIGTERM_EXIT,
        SIGTERM_MESSAGE,
        Terminated,
        install_signal_handlers,
    )

    install_signal_handlers()
    try:
        from p4dsim.cli import main as cli_main
    except (KeyboardInterrupt, Terminated) as exc:
        # Interrupted while importing: nothing has been written, so nothing to clean up.
        sigint = isinstance(exc, KeyboardInterrupt)
        sys.stderr.write(f"error: {SIGINT_MESSAGE if sigint else SIGTERM_MESSAGE}\n")
        sys.stderr.flush()
        os._exit(SIGINT_EXIT if sigint else SIGTERM_EXIT)
    try:
        cli_main()
    finally:
        # The run is over (its status is decided and its files are published or removed): a
        # signal during interpreter shutdown no longer changes the outcome.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    main()
