"""Errors that the CLI turns into exit codes. Every layer may raise these; none imports more."""


class LogbookError(Exception):
    """A failure while working: the CLI prints the message and exits 1."""

    exit_code = 1


class InputError(LogbookError):
    """Bad input: a one-line reason naming the file or option, the field and what was expected.

    The CLI prints it and exits 2. ``lines`` holds several problems when a file had more than one.
    """

    exit_code = 2

    def __init__(self, message: str, lines: list[str] | None = None):
        super().__init__(message)
        self.lines = lines or [message]


class TamperedError(LogbookError):
    """An entry's record differs from its hash chain (``logbook verify`` says where). The CLI prints
    it and exits 3; nothing runs for a tampered entry."""

    exit_code = 3
