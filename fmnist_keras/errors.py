"""Errors a user can act on. The CLI prints their message as one line."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text (or its type's name), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class FmnistError(Exception):
    """An error with a message meant for the user and a process exit code."""

    exit_code = 1


class UsageError(FmnistError):
    """Options that contradict each other; `param` names the option to change."""

    exit_code = 2

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


class DataError(FmnistError):
    """The Fashion-MNIST files are missing, corrupt or not what they claim."""

    exit_code = 2


class ModelFileError(FmnistError):
    """A model file is missing, unreadable, unsafe or not this model."""

    exit_code = 2


class OutputError(FmnistError):
    """The output folder cannot be written, or holds a run we must not overwrite."""

    exit_code = 2


class TrainingDiverged(FmnistError):
    """The loss became NaN or infinite."""

    exit_code = 3


class VerificationFailed(FmnistError):
    """An exported artifact did not match the float model closely enough."""

    exit_code = 4

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report  # what was measured, so the CLI can show which artifact failed


class ClusterError(FmnistError):
    """TF_CONFIG is malformed, or the workers of a cluster could not reach each other."""

    exit_code = 2


class MissingRuntime(FmnistError):
    """An option needs an optional runtime that is not installed, or not at the verified version."""

    exit_code = 2
