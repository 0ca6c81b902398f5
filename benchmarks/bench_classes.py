"""Load benchmark: a class of 500 members and 1,000 weekly reminders due in the same minute,
through the fake Discord, which enforces Discord's global rate limit (50 requests a second,
interaction responses exempt) and counts the 429s it answers.

Runs the real bot as its own process (`massage-bot run`) on a store file prepared
beforehand: one class due 20 s after the bot is ready (the `upper-back` routine, hosted
by the server's owner, its people told in one message), 1,000 people's reminders due 40 s
after, and step alerts turned on for 100 of the class's members. Then the members press
Join over 10 s, 100 of them Leave again, and the host presses Next twice, 8 s apart (each
step change sends a DM to those who asked and are still in).

Reports the time from each press to the bot's acknowledgement (p50, p99), when each
reminder arrived after its time, DMs sent twice, and the 429s. Goals: acknowledgement
p99 under 50 ms, every reminder within 60 s of its time, no DM twice, no 429.

    .venv/bin/python -m benchmarks.bench_classes [--members 500] [--reminders 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.bench_discord import (
    memory_mb,
    percentile,
    record_acknowledgements,
    start_bot,
    stop_bot,
)
from bot.store import Reminder, ScheduledClass, Store
from tests.e2e.fake_discord import Call, FakeDiscord, Interaction, Message, User

GOAL_P99_MS = 50.0
GOAL_REMINDER_SECONDS = 60.0
DISCORD_GLOBAL_LIMIT = 50  # requests a second
CLASS_AFTER_SECONDS = 20.0
REMINDERS_AFTER_SECONDS = 40.0
ALERTED_MEMBERS = 100
LEAVING_MEMBERS = 100
JOIN_RAMP_SECONDS = 10.0
STEP_GAP_SECONDS = 8.0


async def prepare_store(
    db_path: Path, server: int, channel: int, host: User, alerted: list[User],
    reminded: list[User], class_at: float, reminders_at: float,
) -> None:
    """The class, the reminders and the step-alert preferences, as the bot will find them."""
    store = await Store.open(db_path)
    try:
        await store.add_class(ScheduledClass(
            secrets.token_hex(4), str(server), str(channel), str(host.id), "upper-back",
            class_at, None, "scheduled", None, time.time(),
        ))  # fmt: skip
        for person in alerted:
            await store.set_step_alerts(str(person.id), True)
        due = time.gmtime(reminders_at)
        weekday, at = due.tm_wday, time.strftime("%H:%M", due)
        for person in reminded:
            await store.add_reminder(Reminder(
                secrets.token_hex(4), str(person.id), None, None, weekday, at, "UTC",
                reminders_at, time.time(),
            ))  # fmt: skip
    finally:
        await store.close()


def session_message(fake: FakeDiscord, channel_id: int) -> Message | None:
    """The class's session message, once posted."""
    for message in fake.messages.values():
        if message.channel.id == channel_id and any(
            b.get("label") == "Join" for b in message.buttons
        ):
            return message
    return None


async def acknowledged(interaction: Interaction, latencies: list[float], errors: list[str]) -> None:
    try:
        await interaction.response()
    except TimeoutError:
        errors.append("a press was not acknowledged within 3 s")
        return
    latencies.append(interaction.acked_at - interaction.sent_at)  # type: ignore[attr-defined]


async def benchmark(args: argparse.Namespace) -> int:
    fake = FakeDiscord(validate=False, global_rate_limit=DISCORD_GLOBAL_LIMIT)
    host = fake.add_user("host")
    members = [fake.add_user(f"member{n}") for n in range(args.members)]
    reminded = [fake.add_user(f"reminded{n}") for n in range(args.reminders)]
    wellness = fake.add_guild("Wellness", owner=host, channels=["class"], members=members)
    fake.add_guild("Reminded", owner=reminded[0], members=reminded[1:])
    channel = wellness.channel("class")
    record_acknowledgements(fake)
    await fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-classes-"))
    db_path = workdir / "bench.sqlite3"
    ready_in = 15.0  # generous: the bot is started, then the clock of the plan starts
    class_at = time.time() + ready_in + CLASS_AFTER_SECONDS
    reminders_at = round(time.time() + ready_in + REMINDERS_AFTER_SECONDS)
    reminders_due_monotonic = time.monotonic() + (reminders_at - time.time())
    await prepare_store(db_path, wellness.id, channel.id, host, members[:ALERTED_MEMBERS],
                        reminded, class_at, reminders_at)  # fmt: skip
    process = await start_bot(fake, db_path, workdir / "bot.log")
    latencies: list[float] = []
    errors: list[str] = []
    try:
        deadline = time.monotonic() + ready_in + CLASS_AFTER_SECONDS + 30
        while (message := session_message(fake, channel.id)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the class never opened; see {workdir / 'bot.log'}")
            await asyncio.sleep(0.1)

        async def join(member: User, delay: float, leave: bool) -> None:
            await asyncio.sleep(delay)
            await acknowledged(await fake.press(member, message, "Join"), latencies, errors)
            if leave:
                await asyncio.sleep(2.0)
                await acknowledged(await fake.press(member, message, "Leave"), latencies, errors)

        leaving = set(range(ALERTED_MEMBERS, ALERTED_MEMBERS + LEAVING_MEMBERS))
        joins = [asyncio.create_task(join(m, JOIN_RAMP_SECONDS * n / len(members), n in leaving))
                 for n, m in enumerate(members)]  # fmt: skip
        await asyncio.gather(*joins)
        for _ in range(2):
            await asyncio.sleep(STEP_GAP_SECONDS)
            await acknowledged(await fake.press(host, message, "Next"), latencies, errors)
        wait_until = reminders_due_monotonic + GOAL_REMINDER_SECONDS + 15
        while time.monotonic() < wait_until:
            sent = sum(1 for c in dm_calls(fake) if "weekly reminder" in c.json.get("content", ""))
            if sent >= len(reminded):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        _, peak = memory_mb(process.pid)
    finally:
        stop_bot(process)
        await fake.stop()

    reminder_delays = [c.received - reminders_due_monotonic for c in dm_calls(fake)
                       if "weekly reminder" in c.json.get("content", "")]  # fmt: skip
    per_person = Counter((c.path, c.json.get("content")) for c in dm_calls(fake))
    twice = sum(1 for count in per_person.values() if count > 1)
    alerts = sum(1 for c in dm_calls(fake) if "step" in c.json.get("content", ""))
    too_many = [c for c in fake.calls if c.status == 429]
    errors += [str(r) for r in fake.refusals]
    latencies_ms = [latency * 1000 for latency in latencies]
    p50, p99 = statistics.median(latencies_ms), percentile(latencies_ms, 0.99)
    late = max(reminder_delays, default=float("inf"))
    print(f"class of {args.members}: {len(latencies)} presses acknowledged in p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms (goal p99 < {GOAL_P99_MS:.0f} ms); {alerts} step alerts sent")
    print(f"reminders: {len(reminder_delays)} of {len(reminded)} sent, the last {late:.1f} s "
          f"after their time (goal < {GOAL_REMINDER_SECONDS:.0f} s)")
    print(f"DMs sent twice: {twice}; 429s: {len(too_many)} (global: {fake.rate_limited})")
    print(f"errors {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    print(f"bot memory peak {peak:.0f} MB; bot log: {workdir / 'bot.log'}")
    met = (
        not errors and p99 < GOAL_P99_MS and len(reminder_delays) == len(reminded)
        and late < GOAL_REMINDER_SECONDS and twice == 0 and not too_many
    )  # fmt: skip
    print("goals met" if met else "GOALS MISSED")
    return 0 if met else 1


def dm_calls(fake: FakeDiscord) -> list[Call]:
    """The bot's messages into direct-message channels."""
    dms = {c.id for c in fake.channels.values() if c.guild is None}
    return [c for c in fake.calls if c.method == "POST" and c.status == 200
            and c.path.startswith("/channels/") and c.path.endswith("/messages")
            and int(c.path.split("/")[2]) in dms]  # fmt: skip


def main() -> int:
    gc.disable()  # the harness keeps every call: its collector's pauses are not the bot's
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--reminders", type=int, default=1000)
    return asyncio.run(benchmark(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
