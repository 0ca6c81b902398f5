"""Load benchmark: shard processes over one PostgreSQL, beside one process on SQLite.

Starts a throwaway PostgreSQL 15 cluster (durable: fsync and synchronous commits on, as in
production; tests.pg_cluster) and the fake Discord (tests.e2e.fake_discord) with servers
spread evenly over the shards, then, in the same run:

1. SQLite: one `massage-bot run` process on a fresh SQLite file; `--sessions` personal
   sessions are started at `--rate` interactions a second and stay live, then each gets
   `--actions` presses (Next, Pause/Resume, More or Less pressure) at the same rate.
2. PostgreSQL: the same load over `--processes` processes (one shard each) on one
   database, while a probe writes a session to the same database every 50 ms.
3. Takeover: one shard process is killed (SIGKILL) and a replacement started for its
   shard: the time until it has restored its sessions (about sessions / processes).

Reports each run's acknowledgement p50/p99/max (from sending an interaction to the bot's
callback) and errors, the probe's store write p50/p99, each process's resident memory, and
the replacement's restore time, against the goals: p99 under 50 ms and within 2x of SQLite,
restore under 5 s. The harness turns its garbage collector off (see bench_discord).

`--commit off` runs the bots with PostgreSQL's ``synchronous_commit=off`` (in the URL): the
guarantee of SQLite's default, for a fair comparison.

    .venv/bin/python -m benchmarks.bench_shards [--sessions 10000] [--processes 4] [--commit off]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_discord import (
    ROUTINES,
    Results,
    Timer,
    memory_mb,
    percentile,
    record_acknowledgements,
)
from bot.knowledge import load_knowledge
from bot.pictures import picture_for_step
from bot.sessions import Session, SessionEvent
from bot.store import Store
from tests.e2e.bot_process import BotProcess
from tests.e2e.fake_discord import Channel, FakeDiscord, Message, User
from tests.pg_cluster import ThrowawayPostgres

GOAL_P99_MS = 50.0
GOAL_RESTORE_SECONDS = 5.0
CHANNELS_PER_SERVER = 5
SESSIONS_PER_SERVER = 25
PROBE_EVERY_SECONDS = 0.05
RESTORED = re.compile(r"ready to serve (\d+) restored sessions \(restored in ([\d.]+) s\)")


@dataclass
class Run:
    """One run's figures."""

    name: str
    results: Results
    memory: dict[str, tuple[float, float]]  # process: (resident MB with every session, peak)

    def p(self, fraction: float) -> float:
        ordered = [latency * 1000 for latency in self.results.latencies]
        return statistics.median(ordered) if fraction == 0.5 else percentile(ordered, fraction)


def build_world(fake: FakeDiscord, sessions: int, shards: int) -> list[tuple[User, Channel]]:
    """Servers spread evenly over `shards`; a (person, channel) per session."""
    people: list[tuple[User, Channel]] = []
    servers = -(-sessions // SESSIONS_PER_SERVER)
    for number in range(servers):
        while ((fake.next_id() >> 22) + 1) % shards != number % shards:
            pass  # the next id lands on the shard this server should be on
        owner = fake.add_user(f"s{number}-owner")
        guild = fake.add_guild(f"Server {number}", owner=owner,
                               channels=[f"room-{n}" for n in range(CHANNELS_PER_SERVER)])
        for n in range(min(SESSIONS_PER_SERVER, sessions - len(people))):
            person = fake.add_user(f"s{number}-u{n}")
            fake.add_member(guild, person)
            people.append((person, guild.channels[n % CHANNELS_PER_SERVER]))
    return people


async def at_rate(rate: float, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    """Start the jobs `rate` a second, and wait until they are all done."""
    tasks = []
    began = time.monotonic()
    for number, job in enumerate(jobs):
        delay = began + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(job()))
    await asyncio.gather(*tasks)


async def run_load(
    fake: FakeDiscord, people: list[tuple[User, Channel]], processes: list[BotProcess],
    args: argparse.Namespace, name: str,
) -> Run:  # fmt: skip
    """Start every session, note each process's memory, then press buttons."""
    results, rng = Results(), random.Random(args.seed)
    timer = Timer(results)
    messages: dict[int, Message] = {}
    paused: set[int] = set()

    async def start(person: User, channel: Channel) -> None:
        started = await fake.slash(person, channel, "massage", "start",
                                   routine=rng.choice(ROUTINES))  # fmt: skip
        await timer.ack(started, "start")
        if started.original is None:
            results.errors.append("start: no session message")
        else:
            messages[person.id] = started.original

    async def act(person: User) -> None:
        message = messages.get(person.id)
        if message is None:
            return
        choice = rng.random()
        if choice < 0.3:
            label = "Next"
        elif choice < 0.6:
            label = "Resume" if person.id in paused else "Pause"
            paused.symmetric_difference_update({person.id})
        else:
            label = "More pressure" if rng.random() < 0.6 else "Less pressure"
        await timer.ack(await fake.press(person, message, label), "action")

    await at_rate(args.rate, [lambda p=p, c=c: start(p, c) for p, c in people])
    await asyncio.sleep(2)  # the last edits land
    memory = {process.name: memory_mb(process.pid) for process in processes}
    actions = [person for person, _ in people for _ in range(args.actions)]
    rng.shuffle(actions)
    await at_rate(args.rate, [lambda p=p: act(p) for p in actions])
    for process in processes:
        _, peak = memory_mb(process.pid)
        memory[process.name] = (memory[process.name][0], peak)
    results.errors += [str(r) for r in fake.refusals] + [str(c) for c in fake.unhandled]
    return Run(name, results, memory)


def probe_writes(db: str, stop: threading.Event) -> list[float]:
    """Write a (finished) session and its event every 50 ms until `stop`, on an event loop
    of its own (the harness's is busy being Discord); each write's time."""
    routine = load_knowledge().routines[ROUTINES[0]]
    session = Session.begin("probe", "probe", routine, "probe", "giver", group=False,
                            participant_limit=2, now=time.time())  # fmt: skip
    session.stop(time.time())  # ended: no shard process restores it
    timings = []

    async def probe() -> None:
        async with await Store.open(db) as store:
            while not stop.is_set():
                session.event_seq += 1
                event = SessionEvent(session.event_seq, time.time(), "probe", None, 0)
                began = time.perf_counter()
                await store.save_sessions([(session, event)])
                timings.append(time.perf_counter() - began)
                await asyncio.sleep(PROBE_EVERY_SECONDS)

    asyncio.run(probe())
    return timings


async def takeover(
    fake: FakeDiscord, db: str, workdir: Path, processes: list[BotProcess], shards: int
) -> tuple[float, int, float]:
    """Kill the last shard's process and start a replacement: seconds from its start until
    it is ready, the sessions it restored, and the seconds the restore itself took."""
    victim = processes[-1]
    victim.kill()
    replacement = BotProcess(fake, db, workdir, shards, victim.shard_ids)
    replacement.name += "-replacement"
    replacement.log_path = workdir / f"{replacement.name}.log"
    began = time.monotonic()
    replacement.start()
    await replacement.ready()
    ready = time.monotonic() - began
    processes[-1] = replacement
    found = RESTORED.search(replacement.log())
    assert found, replacement.log_path
    return ready, int(found[1]), float(found[2])


def draw_pictures(directory: Path) -> None:
    """Draw every step's picture once, so that neither run pays for drawing them."""
    knowledge = load_knowledge()
    for routine in ROUTINES:
        for index in range(len(knowledge.routines[routine].steps)):
            picture_for_step(knowledge, routine, index, directory)


async def benchmark(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    draw_pictures(workdir / "pictures")  # where the bot processes look (BotProcess)
    postgres = ThrowawayPostgres(durable=True)
    postgres.start()
    runs: list[Run] = []
    try:
        for name, shards in (("SQLite, 1 process", 1), (f"PostgreSQL, {args.processes} "
                                                        "processes", args.processes)):
            fake = FakeDiscord(validate=False)
            people = build_world(fake, args.sessions, shards)
            record_acknowledgements(fake)
            await fake.start()
            db = str(workdir / "bench.sqlite3")
            if shards > 1:
                db = postgres.create_database() + ("" if args.commit == "on" else
                                                   "?synchronous_commit=off")  # fmt: skip
            processes = [BotProcess(fake, db, workdir, shards, (shard,)).start()
                         for shard in range(shards)]  # fmt: skip
            stop_probe = threading.Event()
            try:
                for process in processes:
                    await process.ready()
                if shards > 1:
                    probe = asyncio.create_task(asyncio.to_thread(probe_writes, db, stop_probe))
                run = await run_load(fake, people, processes, args, name)
                runs.append(run)
                if shards > 1:
                    stop_probe.set()
                    writes = [t * 1000 for t in await probe]
                    ready, restored, restore = await takeover(fake, db, workdir, processes, shards)
            finally:
                stop_probe.set()
                for process in processes:
                    process.stop()
                await fake.stop()
    finally:
        postgres.stop()

    sqlite, shared = runs
    for run in runs:
        latencies = run.results.latencies
        print(f"{run.name}: {args.sessions} live sessions, {run.results.interactions} "
              f"interactions at {args.rate:g}/s: acknowledged in p50 {run.p(0.5):.1f} ms, "
              f"p99 {run.p(0.99):.1f} ms, max {max(latencies) * 1000:.1f} ms; "
              f"errors {len(run.results.errors)}")  # fmt: skip
        for error in run.results.errors[:5]:
            print(f"  {error}")
        for process, (live, peak) in run.memory.items():
            print(f"  {process}: {live:.0f} MB with every session live, peak {peak:.0f} MB")
    print(f"PostgreSQL with synchronous_commit={args.commit}")
    print(f"store writes (a session and its event) during the PostgreSQL run: "
          f"p50 {statistics.median(writes):.1f} ms, p99 {percentile(writes, 0.99):.1f} ms "
          f"({len(writes)} writes)")  # fmt: skip
    print(f"replacement for a killed process: ready {ready:.1f} s after its start, having "
          f"restored {restored} sessions in {restore:.2f} s "
          f"(goal < {GOAL_RESTORE_SECONDS:.0f} s)")  # fmt: skip
    print(f"logs: {workdir}")
    met = (
        not sqlite.results.errors and not shared.results.errors
        and shared.p(0.99) < GOAL_P99_MS and shared.p(0.99) <= 2 * sqlite.p(0.99)
        and ready < GOAL_RESTORE_SECONDS
    )  # fmt: skip
    print("goals met" if met else "GOALS MISSED")
    return 0 if met else 1


def main() -> int:
    gc.disable()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="interactions a second")
    parser.add_argument("--actions", type=int, default=1, help="presses per session")
    parser.add_argument("--seed", type=int, default=418)
    parser.add_argument("--commit", choices=("on", "off"), default="on",
                        help="PostgreSQL's synchronous_commit for the bots (off: as durable as "
                        "SQLite's default)")  # fmt: skip
    return asyncio.run(benchmark(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
