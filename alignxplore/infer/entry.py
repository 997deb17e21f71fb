"""The ``alignxplore`` console command (declared in pyproject.toml):

    alignxplore infer --input users.jsonl --out summaries.jsonl --backend hf --model DIR
    alignxplore personalize --input queries.jsonl --summaries summaries.jsonl --out answers.jsonl ...
    alignxplore serve --backend openai --model NAME --base-url URL --port 8080

Each subcommand is the module's own CLI (``python -m alignxplore.infer``,
``python -m alignxplore.infer.service``); ``alignxplore SUBCOMMAND --help`` lists its options.
"""
from __future__ import annotations

import sys


def _infer(argv: list[str]) -> int:
    from .offline import main

    return main(argv, prog="alignxplore infer")


def _personalize(argv: list[str]) -> int:
    from .offline import main

    return main(["--personalize", *argv], prog="alignxplore personalize")


def _serve(argv: list[str]) -> int:
    from .service import main

    return main(argv, prog="alignxplore serve")


COMMANDS = {"infer": _infer, "personalize": _personalize, "serve": _serve}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if not argv or argv[0] not in COMMANDS:
        what = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"{__doc__.strip()}\n\nerror: {what}; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    command = COMMANDS[argv[0]]
    if argv[0] == "serve":
        return command(argv[1:])
    from ..cli import run_main

    run_main(lambda: command(argv[1:]))  # one-line errors for bad input (exits)
    return 0


def console() -> None:
    sys.exit(main())
