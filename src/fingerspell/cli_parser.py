"""The argument parser of the plain (non-Hydra) commands: a usage fault is one line, exit 2."""

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage fault prints one line that names the fix (not the usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
