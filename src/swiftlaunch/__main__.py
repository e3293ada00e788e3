"""`python -m swiftlaunch {bench,info}`."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="swiftlaunch", description=__doc__)
    parser.add_argument("command", choices=["bench", "info"], help="bench: the launch-cost table; info: versions, driver, GPUs")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "info":
        from .info import main as info_main

        return info_main()
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    parser.parse_args([command])
    return 2


if __name__ == "__main__":
    sys.exit(main())
