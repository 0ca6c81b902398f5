"""Load benchmark: many people using the bot at once through the fake Discord.

Starts the fake Discord (tests.e2e.fake_discord) with 50 servers, runs the real bot
as its own process (`massage-bot run`, pointed at the fake by DISCORD_API_BASE and
DISCORD_GATEWAY_URL, with a fresh store file), and lets 1,000 partner sessions play at
once: each giver starts a routine with a partner, then giver and receiver take turns
pressing Next, Back, Pause/Resume, More or Less pressure and asking questions, with a
few seconds between actions, and finally Stop.

Reports the time from sending each interaction to the bot's acknowledgement (p50, p99,
max), the errors (interactions not acknowledged within 3 s, apologies, cooldown notes,
refusals), and the bot process's resident memory. Goals: no error, p99 under 50 ms,
under 150 MB. The harness keeps every call the fake records, so it turns its own garbage
collector off: its pauses (up to 250 ms late in a run) would otherwise be counted as the
bot's.

    .venv/bin/python -m benchmarks.bench_discord [--sessions 1000] [--servers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.fake_discord import Channel, FakeDiscord, Interaction, User

GOAL_P99_MS = 50.0
GOAL_MEMORY_MB = 150.0
CHANNELS_PER_SERVER = 5
ROUTINES = ("upper-back", "neck-and-shoulders", "lower-back")
QUESTIONS = (
    "how hard should I press",
    "where are the rhomboids",
    "what oil should we use",
    "is kneading good for the shoulders",
    "what's on tv tonight",
    "harder please",
)
FAILURES = ("Sorry, something went wrong", "Easy there")


@dataclass
class Results:
    """Acknowledgement times and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interactions: int = 0


def build_world(fake: FakeDiscord, servers: int, sessions: int) -> list[tuple[User, User, Channel]]:
    """Servers with channels and members; a (giver, receiver, channel) per session."""
    per_server = -(-sessions // servers)
    pairs = []
    for number in range(servers):
        people = [fake.add_user(f"s{number}-u{n}") for n in range(2 * per_server)]
        owner = fake.add_user(f"s{number}-owner")
        channels = [f"room-{n}" for n in range(CHANNELS_PER_SERVER)]
        guild = fake.add_guild(f"Server {number}", owner=owner, channels=channels, members=people)
        for n in range(per_server):
            if len(pairs) < sessions:
                channel = guild.channels[n % CHANNELS_PER_SERVER]
                pairs.append((people[2 * n], people[2 * n + 1], channel))
    return pairs


class Timer:
    """Records each interaction's time to its acknowledgement."""

    def __init__(self, results: Results) -> None:
        self.results = results

    async def ack(self, interaction: Interaction, what: str) -> Interaction:
        self.results.interactions += 1
        try:
            call = await interaction.response()
        except TimeoutError:
            self.results.errors.append(f"{what}: not acknowledged within 3 s")
            return interaction
        self.results.latencies.append(interaction.acked_at - interaction.sent_at)
        body = call.json.get("data") or {}
        text = str(body.get("content", ""))
        if any(failure in text for failure in FAILURES):
            self.results.errors.append(f"{what}: {text}")
        return interaction


async def play_session(
    fake: FakeDiscord,
    timer: Timer,
    giver: User,
    receiver: User,
    channel: Channel,
    actions: int,
    think: float,
    rng: random.Random,
) -> None:
    """One couple's session: start, a few actions by either of them, stop."""
    routine = rng.choice(ROUTINES)
    start = await fake.slash(giver, channel, "massage", "start", routine=routine, partner=receiver)
    await timer.ack(start, "start")
    message = start.original
    if message is None:
        timer.results.errors.append("start: no session message")
        return
    paused = False
    for _ in range(actions):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
        choice = rng.random()
        if choice < 0.25:
            pressed = await fake.press(giver, message, "Next")
        elif choice < 0.35:
            pressed = await fake.press(receiver, message, "Back")
        elif choice < 0.5:
            pressed = await fake.press(giver, message, "Resume" if paused else "Pause")
            paused = not paused
        elif choice < 0.75:
            label = "More pressure" if rng.random() < 0.6 else "Less pressure"
            pressed = await fake.press(receiver, message, label)
        else:
            question = rng.choice(QUESTIONS)
            pressed = await fake.slash(receiver, channel, "massage", "ask", question=question)
        await timer.ack(pressed, "action")
    await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
    await timer.ack(await fake.press(giver, message, "Stop"), "stop")


def record_acknowledgements(fake: FakeDiscord) -> None:
    """Stamp each interaction with the moment the fake received the bot's callback."""
    interact = fake._interact

    async def stamped(*args, **kwargs):  # type: ignore[no-untyped-def]
        interaction = await interact(*args, **kwargs)
        interaction.callback.add_done_callback(
            lambda _: setattr(interaction, "acked_at", time.monotonic())
        )
        return interaction

    fake._interact = stamped  # type: ignore[method-assign]


def memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def start_bot(fake: FakeDiscord, db_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    environment.pop("DISCORD_DEV_GUILD", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--db", str(db_path)],
            env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=db_path.parent,
        )  # fmt: skip
    await fake.wait_until_ready(timeout=60)
    deadline = time.monotonic() + 30
    while not fake.commands.get(None):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the bot did not register its commands; see {log_path}")
        await asyncio.sleep(0.05)
    return process


def stop_bot(process: subprocess.Popen[bytes]) -> None:
    """Stop the bot as Ctrl-C would, killing it if it has not stopped within 20 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


async def benchmark(args: argparse.Namespace) -> int:
    fake = FakeDiscord(validate=False)
    pairs = build_world(fake, args.servers, args.sessions)
    record_acknowledgements(fake)
    await fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-discord-"))
    process = await start_bot(fake, workdir / "bench.sqlite3", workdir / "bot.log")
    results, rng = Results(), random.Random(args.seed)
    timer = Timer(results)
    began = time.monotonic()
    try:
        players = []
        for giver, receiver, channel in pairs:
            players.append(asyncio.create_task(play_session(
                fake, timer, giver, receiver, channel, args.actions, args.think,
                random.Random(rng.random()),
            )))  # fmt: skip
            await asyncio.sleep(args.ramp / len(pairs))  # people arrive over the ramp
        rss_during, _ = memory_mb(process.pid)
        await asyncio.gather(*players)
        elapsed = time.monotonic() - began
        rss, peak = memory_mb(process.pid)
    finally:
        stop_bot(process)
        await fake.stop()

    errors = results.errors + [str(r) for r in fake.refusals] + [str(c) for c in fake.unhandled]
    latencies_ms = [latency * 1000 for latency in results.latencies]
    p50, p99 = statistics.median(latencies_ms), percentile(latencies_ms, 0.99)
    print(f"sessions {args.sessions} over {args.servers} servers, {results.interactions} "
          f"interactions in {elapsed:.0f} s ({results.interactions / elapsed:.0f}/s)")
    print(f"acknowledged in p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies_ms):.1f} ms "
          f"(goal p99 < {GOAL_P99_MS:.0f} ms)")
    print(f"errors {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    print(f"bot memory: {rss_during:.0f} MB with every session running, {rss:.0f} MB at the "
          f"end, peak {peak:.0f} MB (goal < {GOAL_MEMORY_MB:.0f} MB)")
    print(f"bot log: {workdir / 'bot.log'}")
    met = not errors and p99 < GOAL_P99_MS and peak < GOAL_MEMORY_MB
    print("goals met" if met else "GOALS MISSED")
    return 0 if met else 1


def main() -> int:
    gc.disable()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--actions", type=int, default=6, help="actions per session")
    parser.add_argument("--think", type=float, default=4.0, help="seconds between actions")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to start them all")
    parser.add_argument("--seed", type=int, default=418)
    return asyncio.run(benchmark(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
