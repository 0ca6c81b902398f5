"""The `massage-bot` command line: ask, kb, routines, eval, console, run, draw, db."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.knowledge import KnowledgeBase, KnowledgeError, json_schema, load_knowledge
from bot.reply import StepContext

DB_HELP = "the store: a file (SQLite) or a postgresql:// URL (default: $MASSAGE_BOT_DB or data/)"


class CommandError(Exception):
    """A problem with what the user typed or with their files: one line, exit status 2."""


def _knowledge(directory: str | None) -> KnowledgeBase:
    try:
        return load_knowledge(directory)
    except KnowledgeError as error:
        raise CommandError(str(error)) from None


def _step_context(kb: KnowledgeBase, args: argparse.Namespace) -> StepContext | None:
    if args.routine is None and args.step is None:
        return None
    if args.routine is None or args.step is None:
        raise CommandError("--routine and --step go together")
    routine = kb.routines.get(args.routine)
    if routine is None:
        raise CommandError(f"no routine {args.routine!r}; try: {', '.join(sorted(kb.routines))}")
    if not 1 <= args.step <= len(routine.steps):
        raise CommandError(f"{routine.id} has steps 1 to {len(routine.steps)}")
    return StepContext(routine.id, args.step - 1)


def _ask(args: argparse.Namespace) -> int:
    from bot.assistant import Assistant

    kb = _knowledge(args.knowledge)
    context = _step_context(kb, args)
    assistant = Assistant(kb)
    if args.question:
        questions: Iterable[str] = [" ".join(args.question)]
    else:  # one question a line; bytes that are not UTF-8 become U+FFFD, the line stays
        lines = (raw.decode("utf-8", "replace").rstrip("\r\n") for raw in sys.stdin.buffer)
        questions = (line for line in lines if line.strip())
    sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
    for number, question in enumerate(questions):
        reply = assistant.ask(question, context)
        if args.json:
            print(json.dumps(reply.to_json(), ensure_ascii=False), flush=True)
        else:
            print(("\n" if number else "") + reply.text, flush=True)
    return 0


def _routines(args: argparse.Namespace) -> int:
    kb = _knowledge(args.knowledge)
    if args.json:
        listing = [
            {
                "id": routine.id,
                "title": routine.title,
                "seconds": routine.seconds,
                "steps": [
                    {"n": n, "id": s.id, "title": s.title, "text": s.text, "seconds": s.seconds}
                    for n, s in enumerate(routine.steps, start=1)
                ],
            }
            for routine in kb.routines.values()
        ]
        print(json.dumps(listing, indent=2, ensure_ascii=False))
        return 0
    for routine in kb.routines.values():
        minutes = round(routine.seconds / 60)
        print(f"{routine.id}: {routine.title} ({len(routine.steps)} steps, {minutes} min)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from bot.assistant import Assistant
    from bot.evaluation import evaluate, load_cases

    try:
        cases = load_cases(args.file)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    result = evaluate(Assistant(_knowledge(args.knowledge)), cases)
    print(f"top-1 accuracy:        {result.accuracy}")
    print(f"off-topic rejection:   {result.rejection}")
    print(f"red-flag recall:       {result.red_flags}")
    if args.verbose:
        for miss in result.misses:
            got = f"{miss.reply.id or miss.reply.kind} ({miss.reply.score:.0f})"
            print(f"MISS {miss.case.expect} <- {got}: {miss.case.question}")
    return 0


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


def _shard_ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected shard numbers like 0,1") from None


def _run(args: argparse.Namespace) -> int:
    from bot.client import StartError, run
    from bot.config import ConfigError, load_config

    try:
        config = load_config(shard_count=args.shard_count, shard_ids=args.shard_ids)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    try:
        run(config, _knowledge(args.knowledge), db=args.db, knowledge_dir=args.knowledge)
    except StartError as error:
        raise CommandError(str(error)) from None
    return 0


def _db_copy(args: argparse.Namespace) -> int:
    from bot.store import Store, StoreError

    async def copy() -> tuple[str, str, dict[str, int]]:
        async with await Store.open(args.source) as source, await Store.open(args.target) as target:
            return source.name, target.name, await source.copy_to(target)

    try:
        source, target, copied = asyncio.run(copy())
    except StoreError as error:
        raise CommandError(str(error)) from None
    print(f"copied {source} to {target}: " + ", ".join(
        f"{count} {table.replace('_', ' ')}" for table, count in copied.items()))  # fmt: skip
    return 0


def _draw(args: argparse.Namespace) -> int:
    from bot.pictures import entry_plan, step_plan, write_png

    kb = _knowledge(args.knowledge)
    out = Path(args.out)
    if args.kind == "routine":
        routine = kb.routines.get(args.id)
        if routine is None:
            raise CommandError(f"no routine {args.id!r}; try: {', '.join(sorted(kb.routines))}")
        plans = [
            (out / f"{number:02d}-{step.id}.png", step_plan(kb, routine.id, number - 1))
            for number, step in enumerate(routine.steps, start=1)
        ]
    else:
        entry = kb.entry(args.id)
        if entry is None or entry.kind != args.kind:
            known = ", ".join(sorted(e.id for e in kb.of_kind(args.kind)))
            raise CommandError(f"no {args.kind} {args.id!r}; try: {known}")
        plans = [(out, entry_plan(kb, entry.id))]
    drawn = [(path, plan) for path, plan in plans if plan is not None]
    if not drawn:
        raise CommandError(f"{args.kind} {args.id!r} names no body region to draw")
    for path, plan in drawn:
        try:
            written = write_png(plan, path)
        except OSError as error:
            raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
        print(written)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="massage-bot", description="Massage help at home, in Discord or the terminal."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="answer a question (or one per line of stdin)")
    ask.add_argument("question", nargs="*", help="the question; without it, read stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--routine", help="ask as if inside this routine ...")
    ask.add_argument("--step", type=int, help="... at this step (1-based)")
    ask.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    ask.set_defaults(handler=_ask)

    routines = commands.add_parser("routines", help="list the guided routines")
    routines.add_argument("--json", action="store_true", help="with their steps, as JSON")
    routines.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    routines.set_defaults(handler=_routines)

    evaluation = commands.add_parser("eval", help="measure answers on an evaluation file")
    evaluation.add_argument("file", help="a YAML list of {q, expect}")
    evaluation.add_argument("--verbose", "-v", action="store_true", help="list every miss")
    evaluation.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    evaluation.set_defaults(handler=_eval)

    kb = commands.add_parser("kb", help="check the knowledge base or print its JSON Schema")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_commands.add_parser("check", help="validate a knowledge directory")
    check.add_argument("directory", nargs="?", help="default: the packaged knowledge base")
    check.set_defaults(handler=_kb_check)
    schema = kb_commands.add_parser("schema", help="print a JSON Schema for knowledge files")
    schema.set_defaults(handler=_kb_schema)

    console = commands.add_parser("console", help="guided sessions and questions in the terminal")
    console.add_argument("--db", help=DB_HELP)
    console.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    console.set_defaults(handler=_console)

    run = commands.add_parser("run", help="the Discord bot (needs DISCORD_TOKEN)")
    run.add_argument("--shard-count", type=int, help="shards in all (default 1)")
    run.add_argument("--shard-ids", type=_shard_ids, help="the shards this process runs: 0,1")
    run.add_argument("--db", help=DB_HELP)
    run.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    run.set_defaults(handler=_run)

    db = commands.add_parser("db", help="the store's database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    copy = db_commands.add_parser(
        "copy", help="copy every session, setting and question into an empty database"
    )
    copy.add_argument("source", metavar="FROM", help="a file (SQLite) or a postgresql:// URL")
    copy.add_argument("target", metavar="TO", help="an empty (or new) database, likewise")
    copy.set_defaults(handler=_db_copy)

    draw = commands.add_parser("draw", help="draw where to press, as PNG pictures")
    draw.add_argument("kind", choices=["routine", "muscle", "technique"])
    draw.add_argument("id", help="the routine's, muscle's or technique's id")
    draw.add_argument(
        "--out", required=True, help="a routine: a directory (NN-step.png each); else a file"
    )
    draw.add_argument("--knowledge", help="a knowledge directory (default: the packaged one)")
    draw.set_defaults(handler=_draw)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CommandError as error:
        print(f"massage-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`massage-bot ask ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
