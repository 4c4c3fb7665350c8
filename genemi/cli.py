"""The ``genemi`` command: ``genemi <subcommand> [flags]``; each subcommand is a module's ``main(argv)``."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

#: subcommand -> (module with main(argv), one-line description); imported lazily
COMMANDS = {
    "train": ("genemi.training.train", "fine-tune CLIP on mined hard negatives (GeNeMi / CE-CLIP / NegCLIP)"),
    "generate": ("genemi.generation_pipeline.pipeline",
                 "run the generation pipeline (tag -> ground -> segment -> portray -> caption -> inpaint -> score); "
                 "`genemi generate merge|export|stats|gallery|regenerate` join shards, export the training set, report, "
                 "show, repaint one variation"),
    "negatives": ("genemi.negatives.command",
                  "generate typed text hard negatives (CE-CLIP / NegCLIP / SugarCrepe edits) from captions"),
    "eval": ("genemi.evaluation.eval_autogmentation",
             "evaluate snapshots on SugarCrepe(++), ARO, VALSE, VL-CheckList, Winoground, What'sUp, CREPE, SPEC, "
             "ColorSwap, GeNeMi test set, retention; `genemi eval compare` compares evaluated models"),
    "convert": ("genemi.convert", "`genemi convert groundingdino`: original Grounding DINO files (.pth + .py config) "
                "-> a transformers folder; `genemi convert snapshot --to original`: a genemi model_N.pt -> the file "
                "the original GeNeMi trainer continues from"),
    "demo": ("genemi.demo", "built-in shapes world: generate (real edits), negatives, train, evaluate (offline, CPU)"),
}


def guarded(prog: str, on_interrupt: str, action: Callable[[], T]) -> tuple[int, T | None]:
    """Run a command's work: ``(0, result)``, or print why it stopped and return ``(code, None)``.

    Library code raises; this is the one place where subcommands turn a genemi error (exit code 2) or
    Ctrl-C (130, with ``on_interrupt`` telling how to continue) into a message.
    """
    from genemi.errors import GenemiError

    try:
        return 0, action()
    except GenemiError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130, None


def parse_command(parser, argv: Sequence[str] | None):
    """``parser.parse_args(argv)``, with argparse's own exits (``--help``, a bad flag) returned as exit codes, so
    callers such as the demo keep control."""
    try:
        return parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)


def run_tool(prog: str, parser, argv: Sequence[str] | None, action: Callable[[object], T],
             report: Callable[[T], None], on_interrupt: str = "rerun it") -> int:
    """A command's ``main``: parse ``argv``, run ``action(args)`` through :func:`guarded`, then ``report`` its
    result. argparse's own exits (``--help``, a bad flag) come back as return codes, so callers such as the
    demo keep control."""
    args = parse_command(parser, argv)
    if isinstance(args, int):
        return args

    def run():
        if hasattr(args, "verbose"):  # -v/-q of command_parser
            from genemi.options import setup_logging

            setup_logging(args)
        return action(args)

    code, result = guarded(prog, on_interrupt, run)
    if code:
        return code
    report(result)
    return 0


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: genemi <command> [flags]   (genemi <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from genemi import __version__

        print(f"genemi {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"genemi: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
