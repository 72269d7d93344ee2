"""p4dsim's exceptions.

Every error a user can cause (a bad scenario file, a missing dataset file, an unknown adapter)
raises a subclass of :class:`P4DSimError` whose message names the file, the field or the byte
offset and says what to change. The CLI prints the message without a traceback and exits 2.
"""

from __future__ import annotations


class P4DSimError(Exception):
    """Base class of every error p4dsim raises for bad input or an unusable environment."""


class ConfigError(P4DSimError, ValueError):
    """A scenario file, a source string or an option has a bad value."""


class SourceError(P4DSimError):
    """A dataset source cannot be opened or read (missing files, corrupt records)."""


class AdapterNotFoundError(ConfigError):
    """An adapter or exporter name that no installed plugin provides."""


class OutputError(P4DSimError):
    """The output location cannot be written (exists and is not a p4dsim dataset, ...)."""


class BackendUnavailableError(P4DSimError):
    """A rendering backend was asked for that this machine cannot run (no CUDA, no gsplat)."""
