"""The terminal console: its commands in-process, then the real program over a pipe.

The subprocess tests run ``python -m bot console`` on a store and a knowledge directory in
tmp_path. ``MASSAGE_BOT_TIME_SCALE=600`` plays the ten-minute test routine in about a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.console import (
    HELP,
    Console,
    ScaledClock,
    render_update,
    serve,
)
from bot.knowledge import KnowledgeBase
from bot.reply import Reply, clock_text
from bot.sessions import SessionEngine
from bot.store import Store, StoreError
from tests.conftest import FakeAsker, FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

STEP = 150.0
REPO = Path(__file__).resolve().parents[1]


class Screen:
    """Collects what the console writes."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)

    def take(self) -> str:
        text, self.lines = "\n".join(self.lines), []
        return text


@pytest.fixture
def screen() -> Screen:
    return Screen()


@pytest.fixture
def console(engine: SessionEngine, screen: Screen) -> Console:
    return Console(engine, screen)


# In-process, on a fake clock ------------------------------------------------------


async def test_every_command(console: Console, screen: Screen, clock: FakeClock) -> None:
    await console.welcome()
    assert "Type help" in screen.take()
    for command in ("next", "back", "pause", "resume", "stop", "more", "less"):
        await console.handle(command)
        assert screen.take() == "No session yet: type start ROUTINE (routines lists them)."
    await console.handle("routines")
    assert screen.take() == "  tiny: Tiny test routine (4 steps, 10 min)"
    await console.handle("help")
    assert screen.take() == HELP
    await console.handle("start nope")
    assert "no routine 'nope'" in screen.take()
    await console.handle("start  Tiny ")
    assert screen.take().startswith("Tiny test routine: 4 steps.\nStep 1 of 4: Warm up [2:30]")
    await console.handle("start tiny")
    assert "You already have a session" in screen.take()
    await console.handle("more")
    assert screen.take() == "For the giver: Lean in a little with your body weight."
    await console.handle("next")
    assert screen.take().startswith("Step 2 of 4: Left side fist [2:30]")
    await console.handle("less")
    assert screen.take() == "For the giver: Open the fist and use the flat of the fingers."
    await console.handle("next")
    assert screen.take().startswith("Now the other side.\nStep 3 of 4: Right side fist")
    await console.handle("back")
    assert screen.take().startswith("Now the other side.\nStep 2 of 4")
    clock.advance(20)
    await console.handle("pause")
    assert screen.take() == (
        "Paused: Tiny test routine, step 2 of 4, paused with 2:10 left. Type resume to carry on."
    )
    await console.handle("pause")
    assert screen.take() == "The session is already paused."
    await console.handle("")
    assert screen.take() == "Tiny test routine, step 2 of 4, paused with 2:10 left"
    await console.handle("resume")
    assert screen.take() == (  # with the step's instructions again
        "Resumed: Tiny test routine, step 2 of 4, 2:10 left.\n"
        "  Rock a light fist along the left side of the upper back."
    )
    await console.handle("resume")
    assert screen.take() == "The session is not paused."
    await console.handle("should I use oil")
    assert screen.take() == "An answer."
    await console.handle("my arm is numb")
    assert screen.take() == (
        "Safety first: Stop now.\n(The session is paused. Type resume when it is safe, or stop.)"
    )
    await console.handle("stop")
    assert screen.take().startswith("Session stopped: 2 of 4 steps of Tiny test routine in 0 min.")
    assert await console.handle("quit") is False


async def test_a_failed_write_is_reported_and_changes_nothing(
    console: Console, screen: Screen, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await console.handle("start tiny")
    screen.take()

    async def disk_full(*args: object, **kwargs: object) -> None:
        raise StoreError("could not save to store.sqlite3: database or disk is full")

    monkeypatch.setattr(store, "save_sessions", disk_full)
    await console.handle("next")
    assert screen.take() == (
        "Nothing changed: could not save to store.sqlite3: database or disk is full"
    )
    assert console.session is not None and console.session.step_index == 0


async def test_steps_advance_with_a_countdown(
    console: Console, screen: Screen, clock: FakeClock
) -> None:
    await console.handle("start tiny")
    screen.take()
    assert console.seconds_to_wait(clock.now) == STEP - 60
    clock.advance(STEP - 60)
    await console.on_time()
    assert screen.take() == "  1:00 left"
    assert console.seconds_to_wait(clock.now) == 30
    clock.advance(35)  # past the 30 s mark
    await console.on_time()
    assert screen.take() == "  0:25 left"
    clock.advance(25)
    await console.on_time()
    assert screen.take().startswith("Step 2 of 4: Left side fist")
    clock.advance(STEP)
    await console.on_time()
    assert screen.take().startswith("Now the other side.\nStep 3 of 4")
    clock.advance(2 * STEP)  # a long sleep passes the last step as well: one update
    await console.on_time()
    assert screen.take() == "Time is up for the last step. Type next to finish (stop works too)."
    await console.play_out()
    assert screen.take().startswith("Session complete: 4 of 4 steps")
    assert console.seconds_to_wait(clock.now) is None


async def test_a_restarted_console_offers_to_resume(
    kb: KnowledgeBase, db_path: Path, asker: FakeAsker, clock: FakeClock, screen: Screen
) -> None:
    async with await Store.open(db_path) as store:
        first = Console(SessionEngine(kb, store, asker, clock), screen)
        await first.handle("start tiny")
    clock.advance(STEP + 30)
    async with await Store.open(db_path) as store:
        screen.take()
        second = Console(SessionEngine(kb, store, asker, clock), screen)
        await second.welcome()
        assert screen.take().endswith(
            "Welcome back: your session kept time while the console was closed.\n"
            "Unfinished session: Tiny test routine, step 2 of 4, paused with 2:00 left. "
            "Type resume to carry on, or stop to end it."
        )
        await second.handle("quit")  # already paused: nothing to say
        assert screen.take() == ""
    async with await Store.open(db_path) as store:
        third = Console(SessionEngine(kb, store, asker, clock), screen)
        await third.welcome()
        assert "step 2 of 4, paused with 2:00 left" in screen.take()
        await third.handle("resume")
        assert screen.take().startswith("Resumed: Tiny test routine, step 2 of 4, 2:00 left.\n")
        await third.handle("quit")
        assert screen.take() == "Paused your session: start the console again to resume it."


async def test_serve_quits_typed_input_and_plays_out_piped_input(
    kb: KnowledgeBase, store: Store, asker: FakeAsker, screen: Screen
) -> None:
    clock = ScaledClock(scale=6000.0)
    console = Console(SessionEngine(kb, store, asker, clock), screen)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    for line in ("start tiny", None):
        lines.put_nowait(line)
    await serve(console, lines, clock, interactive=True)
    assert screen.lines[-1] == "Paused your session: start the console again to resume it."
    for line in ("resume", None):
        lines.put_nowait(line)
    await serve(console, lines, clock, interactive=False)
    assert screen.lines[-1].startswith("Session complete: 4 of 4 steps")


def test_renders_count_down_in_minutes_and_seconds() -> None:
    assert [clock_text(s) for s in (150.0, 149.2, 60.0, 0.4, 0.0, -3.0)] == [
        "2:30",
        "2:30",
        "1:00",
        "0:01",
        "0:00",
        "0:00",
    ]


async def test_existing_session_offers_depend_on_its_state(
    engine: SessionEngine, clock: FakeClock
) -> None:
    started = await engine.start("console", "console", "tiny")
    assert started.session is not None
    running = await engine.start("console", "console", "tiny")
    assert render_update(running).endswith("Type stop to end it first.")
    clock.advance(4 * STEP)
    await engine.tick()
    time_up = await engine.start("console", "console", "tiny")
    assert render_update(time_up).endswith(
        "the last step's time is up. Type next to finish it, or stop."
    )


async def test_more_shows_the_rest_of_a_long_answer(
    engine: SessionEngine, screen: Screen, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = "Lean in slowly. " + " ".join(["Then keep going with the flat of your hand."] * 12)
    answer = Reply("oil?", "answer", long, "oil-or-lotion", "Oil", 90.0)
    monkeypatch.setattr(engine.asker, "ask", lambda question, context=None: answer)
    console = Console(engine, screen)
    await console.handle("should I use oil")
    said = screen.take()
    assert said.endswith("(more: the rest)") and len(said.split()) < 70
    await console.handle("more")
    assert screen.take().replace("\n", " ") == answer.rest
    await console.handle("more")  # no rest left: "more" is more pressure again
    assert screen.take() == "No session yet: type start ROUTINE (routines lists them)."


# The real program, over a pipe ----------------------------------------------------


class ConsoleProcess:
    """``python -m bot console`` in a subprocess, read line by line as it prints."""

    def __init__(self, db: Path, knowledge: Path, *, time_scale: float = 1.0) -> None:
        environment = {**os.environ, "MASSAGE_BOT_TIME_SCALE": str(time_scale)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "console",
                "--db",
                str(db),
                "--knowledge",
                str(knowledge),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=environment,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """Wait for an output line containing `text` and return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.output)) from None
            self.output.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 20.0) -> tuple[int, str]:
        """Close stdin, wait for the exit; the exit code and everything printed since."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout)
        time.sleep(0.05)
        while not self._lines.empty():
            self.output.append(self._lines.get())
        assert self.process.stderr is not None
        errors = self.process.stderr.read()
        assert "Traceback" not in errors, errors
        return code, "\n".join(self.output)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def spawn(db_path: Path, knowledge_dir: Path) -> Iterator[Callable[..., ConsoleProcess]]:
    started: list[ConsoleProcess] = []

    def start(time_scale: float = 1.0) -> ConsoleProcess:
        started.append(ConsoleProcess(db_path, knowledge_dir, time_scale=time_scale))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()


def test_a_whole_routine_over_a_pipe(spawn: Callable[..., ConsoleProcess]) -> None:
    console = spawn(time_scale=600)
    for line in ("routines", "start tiny", "more", "should I use oil", "next", "less", "back"):
        console.send(line)
    code, output = console.finish()
    assert code == 0
    steps = [line for line in output.splitlines() if line.startswith("Step ")]
    assert [step.split(":")[0] for step in steps] == [
        "Step 1 of 4", "Step 2 of 4", "Step 1 of 4", "Step 2 of 4", "Step 3 of 4", "Step 4 of 4",
    ]  # fmt: skip
    assert "For the giver: Lean in a little with your body weight." in output
    assert "unscented oil" in output  # answered by the real assistant
    assert "Now the other side.\nStep 3 of 4" in output
    assert "  0:10 left" in output
    *_, summary, next_time = output.splitlines()
    assert summary.startswith("Session complete: 4 of 4 steps of Tiny test routine in 1")
    assert next_time == "Next time: Try the same routine a little slower."


def test_a_killed_console_resumes_the_step_it_was_on(
    spawn: Callable[..., ConsoleProcess], db_path: Path
) -> None:
    first = spawn()
    first.send("start tiny")
    first.send("next")
    first.expect("Step 2 of 4: Left side fist")
    first.kill()
    with sqlite3.connect(db_path) as connection:  # the kill left the store usable
        assert connection.execute("SELECT step_index FROM sessions").fetchone() == (1,)
    connection.close()
    second = spawn()
    offer = second.expect("Unfinished session")
    assert "step 2 of 4, paused with 2:" in offer
    second.send("resume")
    assert "Resumed: Tiny test routine, step 2 of 4" in second.expect("Resumed")
    second.send("stop")
    code, output = second.finish()
    assert code == 0
    assert "Session stopped: 1 of 4 steps" in output


def test_a_paused_session_keeps_its_time_through_a_kill(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    first = spawn()
    first.send("start tiny")
    first.send("pause")
    first.expect("Paused")
    first.kill()
    second = spawn()
    assert "step 1 of 4, paused with 2:30 left" in second.expect("Unfinished session")
    second.send("stop")
    code, output = second.finish()
    assert code == 0 and "Session stopped: 0 of 4 steps" in output


def run_console_cli(
    *arguments: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", *arguments],
        input="",
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=30,
    )


@pytest.mark.parametrize("problem", ["not a database", "locked", "read-only"])
def test_a_store_it_cannot_use_is_one_clear_line(
    tmp_path: Path, knowledge_dir: Path, problem: str
) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_text("not a database\n" if problem == "not a database" else "")
    if problem == "locked":
        asyncio.run(asyncio.run(Store.open(path)).close())  # a real store, then held
    before = path.read_bytes()  # read first: closing a file drops this process's locks on it
    holder = sqlite3.connect(path)
    if problem == "locked":
        holder.execute("BEGIN EXCLUSIVE")
    if problem == "read-only":
        path.chmod(0o444)
    result = run_console_cli("--db", str(path), "--knowledge", str(knowledge_dir))
    holder.close()
    assert result.returncode == 1
    assert result.stderr.startswith(f"massage-bot: {path}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_an_invalid_knowledge_directory_or_time_scale_is_reported(
    tmp_path: Path, knowledge_dir: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = run_console_cli("--db", str(tmp_path / "s.db"), "--knowledge", str(tmp_path / "empty"))
    assert result.returncode == 1 and "no knowledge files found" in result.stderr
    fast = {**os.environ, "MASSAGE_BOT_TIME_SCALE": "fast"}
    result = run_console_cli("--knowledge", str(knowledge_dir), environment=fast)
    assert result.returncode == 1
    assert (
        result.stderr
        == "massage-bot: MASSAGE_BOT_TIME_SCALE must be a positive number, not 'fast'\n"
    )


def test_sigterm_ends_the_console_with_the_session_paused(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    console = spawn()
    console.send("start tiny")
    console.expect("Step 1 of 4")
    console.process.send_signal(signal.SIGTERM)
    assert console.process.wait(10) == 0
    assert "Paused your session" in console.expect("Paused your session")


def test_demonstration_time_stays_consistent_across_a_kill(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    first = spawn(time_scale=60)  # a 150 s step lasts 2.5 s
    first.send("start tiny")
    first.expect("Step 1 of 4")
    time.sleep(0.5)
    first.kill()
    time.sleep(1.0)  # 60 demonstration seconds pass while it is down
    second = spawn(time_scale=60)
    offer = second.expect("Unfinished session")
    left = re.search(r"(\d+):(\d\d) left", offer)
    assert left, offer
    seconds = int(left[1]) * 60 + int(left[2])
    assert seconds <= 150 - 60  # the time that passed counts, and none is added
    second.kill()
    third = spawn()  # the real clock: the session is not resumed on the wrong clock
    assert "MASSAGE_BOT_TIME_SCALE=60" in third.expect("ran with")
    third.send("start tiny")
    assert "time scale" in third.expect("time scale")
    code, _ = third.finish()
    assert code == 0


def test_a_damaged_store_is_one_clear_line(tmp_path: Path, knowledge_dir: Path) -> None:
    path = tmp_path / "store.sqlite3"
    subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(path), "--knowledge",
         str(knowledge_dir)],
        input="start tiny\nquit\n", capture_output=True, text=True, cwd=REPO, timeout=30,
        check=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    data[4096 * 2 + 100 : 4096 * 4] = b"\xab" * (4096 * 4 - 4096 * 2 - 100)  # pages 3 and 4
    path.write_bytes(bytes(data))
    result = run_console_cli("--db", str(path), "--knowledge", str(knowledge_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"massage-bot: {path} is damaged (database disk image is malformed); "
        "restore it from a backup or move it away\n"
    )


async def test_stats_and_weekly_reminders_in_the_console(
    engine: SessionEngine, screen: Screen, clock: FakeClock, store: Store
) -> None:
    console = Console(engine, screen)
    await console.handle("stats")
    assert screen.take() == "No finished sessions yet: start one with start ROUTINE."
    await console.handle("start tiny")
    clock.advance(200)
    await console.handle("stop")
    screen.take()
    await console.handle("stats")
    said = screen.take()
    assert said.startswith("Sessions: 1, about 3 minutes in all.\nStreak: 1 week in a row.")
    await console.handle("remind someday 20:00 UTC")
    assert "not a day of the week" in screen.take()
    await console.handle("remind monday 20:00 UTC")
    (reminder,) = await store.reminders_of("console")
    assert screen.take() == (
        "Reminder set: Mondays at 20:00 (UTC), shown here while the console runs "
        f"(remind cancel {reminder.id} removes it)."
    )
    await store.add_reminder(dataclasses.replace(reminder, id="other", user_id="1234"))
    clock.now = reminder.next_at + 1
    await console.on_time()
    assert screen.take().count("Reminder: ") == 1  # its own, not a Discord user's
    await console.handle("remind")
    assert screen.take() == f"  {reminder.id}  Mondays at 20:00 (UTC)"  # no Discord markup
    await console.handle(f"remind cancel {reminder.id}")
    assert screen.take() == "Reminder cancelled."


async def test_a_reminder_time_may_be_two_words(console: Console, screen: Screen) -> None:
    await console.handle("remind monday 8 pm Europe/Berlin")
    assert screen.take().startswith("Reminder set: Mondays at 20:00 (Europe/Berlin)")
    await console.handle("remind friday 8:30 am UTC")
    assert screen.take().startswith("Reminder set: Fridays at 08:30 (UTC)")
    await console.handle("remind monday 8 pm")
    assert "is not a time zone" in screen.take()


async def test_the_wait_ends_when_the_consoles_next_reminder_is_due(
    console: Console, screen: Screen, clock: FakeClock, store: Store
) -> None:
    await console.handle("remind monday 20:00 UTC")
    await console.handle("remind sunday 20:00 UTC")
    soonest = min(r.next_at for r in await store.reminders_of("console"))
    assert console.seconds_to_wait(clock.now) == soonest - clock.now
    clock.now = soonest
    await console.on_time()
    assert screen.lines[-1].startswith("Reminder: ")
    following = min(r.next_at for r in await store.reminders_of("console"))
    assert console.seconds_to_wait(clock.now) == following - clock.now > 0
    for reminder in await store.reminders_of("console"):
        await console.handle(f"remind cancel {reminder.id}")
    assert console.seconds_to_wait(clock.now) is None


async def test_an_idle_typed_console_shows_a_reminder_on_time(
    kb: KnowledgeBase, store: Store, asker: FakeAsker, screen: Screen
) -> None:
    clock = ScaledClock(scale=600.0)  # a clock minute is a tenth of a real second
    console = Console(SessionEngine(kb, store, asker, clock), screen, scale=clock.scale)
    soon = dt.datetime.fromtimestamp(clock() + 120, dt.UTC)  # one to two clock minutes on
    await console.handle(f"remind {soon:%A} {soon:%H:%M} UTC")
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    serving = asyncio.create_task(serve(console, lines, clock, interactive=True))
    try:
        async with asyncio.timeout(5):  # nothing is typed meanwhile
            while not any(line.startswith("Reminder: ") for line in screen.lines):
                await asyncio.sleep(0.01)
    finally:
        lines.put_nowait(None)
        await serving


async def test_the_console_removes_sessions_ended_longer_ago_than_the_retention(
    kb: KnowledgeBase, knowledge_dir: Path, db_path: Path, asker: FakeAsker
) -> None:
    day = 86_400.0
    async with await Store.open(db_path) as store:
        for days_ago in (40, 10):
            clock = FakeClock(time.time() - days_ago * day)
            console = Console(SessionEngine(kb, store, asker, clock), Screen())
            await console.handle("start tiny")
            clock.advance(300)
            await console.handle("stop")
        assert (await store.row_counts())["sessions"] == 2

    keep_30_days = {**os.environ, "MASSAGE_BOT_RETENTION_DAYS": "30"}
    result = run_console_cli("--db", str(db_path), "--knowledge", str(knowledge_dir),
                             environment=keep_30_days)  # fmt: skip
    assert result.returncode == 0, result.stderr
    async with await Store.open(db_path) as store:
        (kept,) = await store.session_records(since=0.0)
        assert time.time() - kept.started_at < 11 * day

    soon = {**os.environ, "MASSAGE_BOT_RETENTION_DAYS": "soon"}
    wrong = run_console_cli("--db", str(db_path), "--knowledge", str(knowledge_dir),
                            environment=soon)  # fmt: skip
    assert (wrong.returncode, wrong.stderr) == (
        1, "massage-bot: MASSAGE_BOT_RETENTION_DAYS must be a whole number of days, 1 or more\n"
    )  # fmt: skip
