"""Custom exceptions: one line each; the message says which file, what and how to fix it."""

from __future__ import annotations


class AtlasError(Exception):
    """Base class for errors a user can act on (the CLI prints them without a traceback)."""


class ConfigError(AtlasError):
    """A region config is missing, unreadable or invalid."""


class InputError(AtlasError):
    """A raw input file is missing, unreadable or holds bad rows."""


class NetworkError(AtlasError):
    """The street network is empty, disconnected or cannot be loaded."""


class BundleError(AtlasError):
    """A region bundle is missing, incomplete or corrupt."""


class ExportError(AtlasError):
    """An export was asked for something that does not exist or would be empty."""


class Terminated(BaseException):
    """The process got SIGTERM: unwind like Ctrl-C (clean up, then exit with status 143).

    A ``BaseException``, so that ``except Exception`` does not swallow it.
    """
