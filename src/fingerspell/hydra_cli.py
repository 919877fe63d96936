"""Console entry points around `@hydra.main` apps: a bad override or config ends in one line.

Hydra reports a typo'd key or a missing config group over several lines with a hint about
`HYDRA_FULL_ERROR`; every fingerspell command instead says `<command>: error: <what>` and exits 1,
like the commands without Hydra.
"""

import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hydra.errors import HydraException, InstantiationException

from fingerspell.cli_errors import fail, user_errors


def one_line(err: BaseException, command: str) -> str:
    """Hydra's multi-line errors as one line: indented option lists joined with commas.

    An override of a key that does not exist is most often a typo, so it says so, rather than
    Hydra's hint to append the key with `+`.
    """
    cause = err.__cause__
    if isinstance(err, InstantiationException) and isinstance(cause, ValueError) and str(cause).strip():
        # Hydra wraps a config class's own refusal in "Error in call to target ...; full_key: ..."
        return str(cause).strip().splitlines()[0]
    unknown = re.match(r"Could not override '([^']+)'", str(err))
    if unknown and "not in struct" in str(err.__cause__):
        key = unknown.group(1)
        return (
            f"no config key '{key}' (a typo? `{command} --cfg job` prints every key); "
            f"to add a new key on purpose, write +{key}=..."
        )
    lines: list[str] = []
    options: list[str] = []
    for raw in str(err).split("Config search path")[0].splitlines():
        if raw.startswith(("\t", "    ")) and raw.strip():
            options.append(raw.strip())
            continue
        if options and lines:
            lines[-1] += " " + ", ".join(options)
        options = []
        if raw.strip():
            lines.append(raw.strip())
    if options and lines:
        lines[-1] += " " + ", ".join(options)
    return "; ".join(lines) or type(err).__name__


@contextmanager
def hydra_errors(command: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """User faults and Hydra's config errors (plus `also`) end as `<command>: error: ...`, exit 1.

    Also usable inside the task function, where Hydra would add its own "Error executing job" line.
    """
    caught: tuple[type[BaseException], ...] = (HydraException, *also)
    with user_errors(command):
        try:
            yield
        except caught as err:
            fail(command, one_line(err, command))


def run_hydra(command: str, app: Callable[[], object], also: tuple[type[BaseException], ...] = ()) -> None:
    """Run a `@hydra.main` app as the console script `command`."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's multi-line report
    warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema")
    with hydra_errors(command, also):
        app()
