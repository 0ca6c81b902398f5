"""Benchmark the session engine: 10,000 concurrent sessions in one process, store on.

Starts the sessions (each one written to a real SQLite file), then sends random commands
(next, back, pause, resume, more, less) to random sessions while a simulated clock moves
on and timers fire. Prints the time per command (p50, p99), the time per timer sweep,
and the resident memory. Goals: p99 under 2 ms per command, under 100 MB in all.

    .venv/bin/python -m benchmarks.bench_sessions [--sessions 10000] [--commands 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.knowledge import KnowledgeBase, Routine, Step
from bot.reply import Reply, StepContext
from bot.sessions import SessionEngine, SessionError
from bot.store import Store

GOAL_P99_MS = 2.0
GOAL_MEMORY_MB = 100.0


class SimulatedClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CannedAsker:
    """Questions are not what is measured here."""

    def ask(self, question: str, context: StepContext | None = None) -> Reply:
        return Reply(question, "answer", "An answer.")


def benchmark_knowledge() -> KnowledgeBase:
    steps = tuple(
        Step(
            id=f"step-{number}",
            title=f"Step {number}",
            text="Rock a light fist along the muscles beside the spine.",
            seconds=90,
            side=("left", "right", None)[number % 3],
            more_pressure="Slow down and lean in with your body weight.",
            less_pressure="Open the hand and use the flat of the fingers.",
        )
        for number in range(1, 9)
    )
    routine = Routine(
        id="bench",
        title="Benchmark routine",
        questions=("bench one", "bench two", "bench three", "bench four"),
        summary="Eight steps of a minute and a half.",
        next_time="Try it again tomorrow.",
        steps=steps,
    )
    return KnowledgeBase(
        entries={routine.id: routine},
        routines={routine.id: routine},
        synonyms={},
        source_dir=Path("."),
    )


def resident_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentile_ms(durations: list[float], percent: float) -> float:
    ordered = sorted(durations)
    return ordered[min(int(len(ordered) * percent / 100), len(ordered) - 1)] * 1000


def report(name: str, durations: list[float]) -> float:
    p50, p99 = percentile_ms(durations, 50), percentile_ms(durations, 99)
    worst = max(durations) * 1000
    mean = statistics.fmean(durations) * 1000
    print(f"{name:<10} {len(durations):>7} x  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  "
          f"mean {mean:6.3f} ms  max {worst:7.2f} ms")  # fmt: skip
    return p99


async def run(session_count: int, command_count: int, directory: Path) -> bool:
    knowledge = benchmark_knowledge()
    clock = SimulatedClock()
    random.seed(418)
    baseline = resident_mb()
    async with await Store.open(directory / "bench.sqlite3") as store:
        engine = SessionEngine(knowledge, store, CannedAsker(), clock)
        starts: list[float] = []
        session_ids = []
        for number in range(session_count):
            began = time.perf_counter()
            update = await engine.start(f"channel-{number % 500}", f"user-{number}", "bench")
            starts.append(time.perf_counter() - began)
            assert update.session is not None
            session_ids.append((update.session.id, f"user-{number}"))
            clock.now += 0.001

        actions = {
            "next": engine.next_step,
            "back": engine.previous_step,
            "pause": engine.pause,
            "resume": engine.resume,
            "more": engine.more_pressure,
            "less": engine.less_pressure,
        }
        commands: list[float] = []
        sweeps: list[float] = []
        refused = timer_updates = 0
        for number in range(command_count):
            session_id, user_id = random.choice(session_ids)
            action = actions[random.choice(list(actions))]
            began = time.perf_counter()
            try:
                await action(session_id, user_id)
            except SessionError:  # e.g. resume while running: still a full command
                refused += 1
            commands.append(time.perf_counter() - began)
            clock.now += 0.01
            if number % 100 == 0:
                began = time.perf_counter()
                timer_updates += len(await engine.tick())
                sweeps.append(time.perf_counter() - began)
        memory = resident_mb()
        active = len(engine.active_sessions())

    print(f"{session_count} sessions ({active} still active), store in {directory}")
    report("start", starts)
    p99 = report("command", commands)
    report("tick", sweeps)
    print(f"timer updates (steps moved on by the clock): {timer_updates}")
    print(f"refused commands (e.g. resume while running): {refused}")
    print(f"resident memory: {memory:.1f} MB ({baseline:.1f} MB before the sessions)")
    met = p99 < GOAL_P99_MS and memory < GOAL_MEMORY_MB
    print(
        f"goals (p99 < {GOAL_P99_MS} ms, < {GOAL_MEMORY_MB:.0f} MB): {'met' if met else 'MISSED'}"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--commands", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        met = asyncio.run(run(args.sessions, args.commands, Path(directory)))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
