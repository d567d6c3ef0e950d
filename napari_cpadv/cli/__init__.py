"""``cpadv``: the plugin's core, headless. Results are JSON on stdout.

Bad input prints one line on stderr naming the file and the reason, and exits with 2.
Each command group is a module (``data``, ``models``, ``attacks``, ``study``) that adds its
parsers; ``_common`` holds what they share.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from napari_cpadv.cli._common import _Help, _Parser
from napari_cpadv.cli.models import _hyper
from napari_cpadv.errors import CpadvError

__all__ = ["_Help", "_hyper", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from napari_cpadv.cli import attacks, data, models, reproduce, study

    parser = _Parser(
        prog="cpadv", description="Adversarial audits of tumour detectors on whole-slide images."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (data, models, attacks, study, reproduce):
        group.add_parsers(sub)
    return parser


FOLDER_OUTS = {"attack", "sweep", "transfer", "universal", "tiles", "figures", "study", "reproduce"}
"""Commands whose ``--out`` is a folder."""


def _check_out(args: argparse.Namespace) -> None:
    """A folder output that is an existing file is refused before any work."""
    out = getattr(args, "out", None)
    if args.command in FOLDER_OUTS and out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise CpadvError(path, "--out names a folder to write into, and this is a file")


def _resumable(out: Path) -> bool:
    """A stopped attack run, which ``--resume`` continues."""
    from napari_cpadv.experiments.runs import RunFolder

    run = RunFolder(out)
    return run.adversarial.exists() and not run.report_path.exists()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cpadv`` console script; returns the exit status.

    Output piped into a reader that stops early (``cpadv info S | head -1``) ends quietly:
    a closed pipe is the reader's choice, not an error (Python's documented recipe: point
    stdout at devnull so that the interpreter's final flush does not fail again).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad argument (its one line printed) or --help
        return int(exc.code or 0)
    args.argv = None if argv is None else list(argv)

    def one_line(message: Warning | str, *_: object, **__: object) -> None:
        print(f"cpadv {args.command}: warning: {message}", file=sys.stderr)

    try:
        _check_out(args)
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # printed, whatever filters the caller set
            warnings.showwarning = one_line  # a warning is one line, as errors are
            result = args.run(args)
    except CpadvError as exc:
        print(f"cpadv {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; every output is written whole or not at all
        out = getattr(args, "out", None)
        kept = f"; what was finished is kept in {out}" if out else ""
        if out and getattr(args, "resume", None) is not None and _resumable(Path(out)):
            kept += " (the same command with --resume continues it)"
        print(f"\ncpadv {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except OSError as exc:  # a read-only folder, a full disk: the file and the reason
        where = exc.filename or getattr(args, "out", None) or ""
        print(f"cpadv {args.command}: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
