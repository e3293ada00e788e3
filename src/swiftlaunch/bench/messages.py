"""What the bench says while it runs: progress on stderr, exceptions in one line."""

from __future__ import annotations

import sys


def progress(text: str) -> None:
    # stderr, so that stdout holds the tables alone.
    print(text, file=sys.stderr, flush=True)


def first_line(e: BaseException, lines: int = 1) -> str:
    """The first ``lines`` non-blank lines of an exception's message, joined: what fits in a cell."""
    return " ".join([line.strip() for line in str(e).splitlines() if line.strip()][:lines])
