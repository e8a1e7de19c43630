"""Command line: ``labkit <command>`` or ``python -m labkit <command>``."""
from __future__ import annotations

import argparse
import sys


def _info(_: argparse.Namespace) -> int:
    from .env import environment_report

    for key, value in environment_report().items():
        print(f"{key:>14}: {value}")
    return 0


def _demo(_: argparse.Namespace) -> int:
    """The smallest end-to-end example: the lab's BERT saved and reopened by transformers."""
    from .env import roundtrip_demo

    print(roundtrip_demo())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description="Foundation Model Lab command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show library versions and the device the lab will use").set_defaults(func=_info)
    sub.add_parser("demo", help="run the lab's main demo").set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
