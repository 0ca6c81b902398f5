"""The `massage-bot` command line: ask, kb, routines, eval, console, run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bot.knowledge import KnowledgeError, json_schema, load_knowledge


def _kb_check(args: argparse.Namespace) -> int:
    try:
        kb = load_knowledge(args.directory)
    except KnowledgeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    for entry in kb.entries.values():
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
    print(f"{kb.source_dir}: valid ({summary}, {len(kb.synonyms)} synonyms)")
    return 0


def _kb_schema(_: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def _console(args: argparse.Namespace) -> int:
    from bot.console import run_console

    return run_console(db_path=args.db, knowledge_dir=args.knowledge)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="massage-bot", description="Massage help at home, in Discord or the terminal."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    kb = commands.add_parser("kb", help="check the knowledge base or print its JSON Schema")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_commands.add_parser("check", help="validate a knowledge directory")
    check.add_argument("directory", nargs="?", help="default: the packaged knowledge base")
    check.set_defaults(handler=_kb_check)
    schema = kb_commands.add_parser("schema", help="print a JSON Schema for knowledge files")
    schema.set_defaults(handler=_kb_schema)

    console = commands.add_parser("console", help="guided sessions and questions in the terminal")
    console.add_argument("--db", help="the store file (default: $MASSAGE_BOT_DB or data/)")
    console.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    console.set_defaults(handler=_console)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
