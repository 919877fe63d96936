"""One-line errors at the top of every command: foreseeable faults never show a traceback."""

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from omegaconf.errors import OmegaConfBaseException

from fingerspell.data.errors import DataError

log = logging.getLogger("fingerspell")

# Faults a user can fix: bad data, bad config values, missing files.
USER_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    ValueError,
    FileNotFoundError,
    OmegaConfBaseException,
)


class CommandFailed(SystemExit):
    """The exit after a one-line error, still carrying the line (a sweep job records it)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(exit_code)
        self.message = message


def fail(command: str, message: str, exit_code: int = 1) -> NoReturn:
    """Print `<command>: error: <message>` and exit with `exit_code`."""
    print(f"{command}: error: {message}", file=sys.stderr)  # noqa: T201 - CLI output
    raise CommandFailed(message, exit_code)


@contextmanager
def user_errors(command: str, exit_code: int = 1) -> Iterator[None]:
    """Turn a user-fixable exception into `<command>: error: <message>` and a non-zero exit."""
    try:
        yield
    except USER_ERRORS as err:
        fail(command, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, exit_code)


def run_cli(command: str, func: Callable[[], object]) -> None:
    """Call `func` under `user_errors`."""
    with user_errors(command):
        func()
