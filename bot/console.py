"""The terminal console: guided sessions and questions, typed in or piped in.

Commands: ``start ROUTINE``, ``next``, ``back``, ``pause``, ``resume``, ``stop``, ``more``,
``less``, ``routines``, ``help``, ``quit``; an empty line shows where the session stands;
any other line is a question for the assistant, asked from the current step.

Steps advance on their own while the console waits for input, and it counts down the
last minute of each step. ``quit`` (or Ctrl-C, or the end of typed input) pauses a
running session; restarted on the same store, the console offers to resume it. When
commands come from a pipe, the end of the input lets the running session play to its
end, so ``echo "start upper-back" | massage-bot console`` walks through a whole routine.

``MASSAGE_BOT_TIME_SCALE=N`` runs the console's clock N times faster than real time, for
tests and demonstrations (``600`` plays a ten-minute routine in a second). As it starts,
the console removes what ended longer ago than ``MASSAGE_BOT_RETENTION_DAYS``, as the bot does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.assistant import Assistant
from bot.config import DAY_SECONDS, ConfigError, retention_days, settings_from
from bot.habits import Habits, YourStats, weekly_time
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from bot.pictures import picture_for_step
from bot.reply import Reply, clock_text
from bot.sessions import NoSession, SessionEngine, SessionError, SessionView, Summary, Update
from bot.store import Reminder, Store, StoreError

CONSOLE_PLACE = "console"
CONSOLE_USER = "console"
TIME_SCALE_VARIABLE = "MASSAGE_BOT_TIME_SCALE"
COUNTDOWN_MARKS = (60, 30, 10)  # seconds left that are announced during a step
STORE_RETRY_SECONDS = 5.0  # real seconds between tries when the store cannot be written
WIDTH = 78
CONSOLE_REMINDER_TEXT = (
    "Your weekly reminder: time for a massage together. Type start ROUTINE to begin."
)

HELP = """\
Commands:
  start ROUTINE   begin a guided routine (routines lists them)
  next, back      move to the next or the previous step
  pause, resume   hold the timer, then carry on
  more, less      the receiver wants more or less pressure: advice for this step
                  (right after a long answer, more shows the rest of it)
  stop            end the session with a summary
  routines        list the routines
  stats           your sessions, minutes and weekly streak
  remind DAY TIME ZONE   a weekly reminder here ("remind monday 8 pm Europe/Berlin");
                  remind alone lists them, remind cancel ID removes one
  help            this list
  quit            leave (a running session is paused, to resume next time)
An empty line shows where you are; anything else is a question."""


CLOCK_ANCHOR = 1_767_225_600.0  # 2026-01-01 UTC: every scaled clock runs from here


class ScaledClock:
    """Epoch seconds running `scale` times faster than real time (1 is the real clock).

    It runs from a fixed moment, so a console restarted with the same scale continues
    the same demonstration time: a session killed mid-step comes back at the right time.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._epoch = CLOCK_ANCHOR + (time.time() - CLOCK_ANCHOR) * scale
        self._started = time.monotonic()

    def __call__(self) -> float:
        return self._epoch + (time.monotonic() - self._started) * self.scale


def clock_from_environment() -> ScaledClock:
    value = os.environ.get(TIME_SCALE_VARIABLE, "1")
    try:
        scale = float(value)
    except ValueError:
        scale = 0.0
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"{TIME_SCALE_VARIABLE} must be a positive number, not {value!r}")
    return ScaledClock(scale)


def wrap(text: str, indent: str = "") -> str:
    """Fit text to the terminal's usual width, keeping its own line breaks."""
    return "\n".join(
        textwrap.fill(line, WIDTH, initial_indent=indent, subsequent_indent=indent) if line else ""
        for line in text.splitlines()
    )


def render_step(view: SessionView) -> str:
    step = view.step
    named = step.side is None or step.side in step.title.lower()
    side = "" if named else f" (receiver's {step.side} side)"
    return (
        f"Step {view.step_index + 1} of {view.step_count}: {step.title}{side}"
        f" [{clock_text(view.seconds_left)}]\n{wrap(step.text, '  ')}"
    )


def render_where(view: SessionView) -> str:
    where = f"{view.routine_title}, step {view.step_index + 1} of {view.step_count}"
    if view.state == "paused":
        return f"{where}, paused with {clock_text(view.seconds_left)} left"
    if view.state == "time_up":
        return f"{where}, the last step's time is up"
    return f"{where}, {clock_text(view.seconds_left)} left"


def render_summary(summary: Summary) -> str:
    headline = {
        "completed": "Session complete",
        "stopped": "Session stopped",
        "abandoned": "Session ended after an hour without activity",
    }[summary.outcome]
    return (
        f"{headline}: {summary.steps_done} of {summary.step_count} steps of "
        f"{summary.routine_title} in {round(summary.minutes)} min.\n"
        f"Next time: {summary.next_time}"
    )


def render_stats(stats: YourStats) -> str:
    numbers = stats.numbers
    if not numbers.sessions:
        return "No finished sessions yet: start one with start ROUTINE."
    weeks = "week" if numbers.streak_weeks == 1 else "weeks"
    lines = [
        f"Sessions: {numbers.sessions}, about {round(numbers.minutes)} minutes in all.",
        f"Streak: {numbers.streak_weeks} {weeks} in a row.",
        f"Favourite routine: {numbers.favourite_routine}.",
        "Last 12 weeks: " + " ".join(str(n) for n in numbers.weekly_sessions),
    ]
    if stats.usual_pressure:
        lines.append(f"Usual pressure: {stats.usual_pressure}.")
    return "\n".join(lines)


def render_reminder(reminder: Reminder) -> str:
    """"ab12cd34  Mondays at 20:00 (Europe/Berlin)": a reminder in the console's list."""
    return f"{reminder.id}  {weekly_time(reminder)}"


def render_reply(reply: Reply) -> str:
    """The lead of a reply (`more` shows the rest), and what else the message asked."""
    text = f"Safety first: {reply.lead}" if reply.kind == "safety" else reply.lead
    if reply.rest:
        text += " (more: the rest)"
    if reply.kind == "answer" and reply.suggestions:
        text += "\nYou also asked about: " + "; ".join(s.title for s in reply.suggestions) + "."
    return wrap(text)


def render_update(update: Update) -> str:
    """The console's text for one update of its own session."""
    view = update.session
    if update.kind == "reply":
        assert update.reply is not None
        text = render_reply(update.reply)
        if update.paused_for_safety:
            text += "\n(The session is paused. Type resume when it is safe, or stop.)"
        return text
    assert view is not None
    if update.summary is not None:
        return render_summary(update.summary)
    if update.kind == "started":
        text = f"{view.routine_title}: {view.step_count} steps.\n{render_step(view)}"
        if update.usual_pressure:
            text = f"(Last time, {update.usual_pressure} pressure suited.)\n{text}"
        return text
    if update.kind == "step":
        text = render_step(view)
        if view.state == "paused":
            text += "\n(Paused: type resume to start the timer.)"
        return f"Now the other side.\n{text}" if update.other_side else text
    if update.kind == "paused":
        return f"Paused: {render_where(view)}. Type resume to carry on."
    if update.kind == "resumed":
        return f"Resumed: {render_where(view)}.\n{wrap(view.step.text, '  ')}"
    if update.kind == "time_up":
        return "Time is up for the last step. Type next to finish (stop works too)."
    if update.kind == "existing":
        return f"You already have a session: {render_where(view)}. {_offer(view)}"
    return render_where(view)


def _offer(view: SessionView) -> str:
    if view.state == "paused":
        return "Type resume to carry on, or stop to end it."
    if view.state == "time_up":
        return "Type next to finish it, or stop."
    return "Type stop to end it first."


class Console:
    """One person at a terminal: commands in, plain text out, timers in between."""

    def __init__(
        self, engine: SessionEngine, write: Callable[[str], None], *, scale: float = 1.0
    ) -> None:
        self.engine = engine
        self.write = write
        self.scale = scale  # clock seconds per real second
        self._rest = ""  # the rest of the last answer, for `more`
        self.habits = Habits(engine.store, engine.now)
        self._retry_at: float | None = None  # after a failed save, when timers try again
        self._marks_step: tuple[str, int, float | None] | None = None
        self._marks_unsaid: set[int] = set()
        self._next_reminder_at: float | None = None  # this console's soonest reminder

    @property
    def session(self) -> SessionView | None:
        return self.engine.find(CONSOLE_PLACE, CONSOLE_USER)

    async def welcome(self) -> None:
        """Restore the store's sessions and offer to resume this console's own."""
        await self.engine.restore()
        await self._plan_next_reminder()
        self.write("massage-bot console. Type help for the commands, or ask a question.")
        view = self.session
        scale = self.engine.other_scale(CONSOLE_PLACE, CONSOLE_USER)
        if view is None and scale is not None:
            self.write(
                f"Your unfinished session ran with {TIME_SCALE_VARIABLE}={scale:g}: start the "
                "console with that scale to resume it (its times belong to that clock)."
            )
        if view is None:
            return
        if view.state == "running":
            self.write("Welcome back: your session kept time while the console was closed.")
            try:
                view = (await self.engine.pause(view.id, CONSOLE_USER)).session or view
            except StoreError as error:
                self.write(f"Could not pause it: {error}")
        self.write(f"Unfinished session: {render_where(view)}. {_offer(view)}")

    async def handle(self, line: str) -> bool:
        """Act on one line of input; False when the console should close."""
        command, _, argument = line.strip().partition(" ")
        command = command.lower()
        rest, self._rest = self._rest, ""
        if command == "more" and not argument and rest:
            self.write(wrap(rest))
            return True
        if command == "quit" and not argument:
            await self.pause_for_later()
            return False
        try:
            await self._dispatch(command, argument.strip(), line.strip())
        except (SessionError, ValueError) as error:  # ValueError: a reminder as typed
            self.write(str(error))
        except StoreError as error:  # the change was not made
            self.write(f"Nothing changed: {error}")
        return True

    async def _dispatch(self, command: str, argument: str, line: str) -> None:
        moves = {
            "next": self.engine.next_step,
            "back": self.engine.previous_step,
            "pause": self.engine.pause,
            "resume": self.engine.resume,
            "stop": self.engine.stop,
        }
        pressure = {"more": self.engine.more_pressure, "less": self.engine.less_pressure}
        if command == "start":  # "start upper back" means upper-back
            routine_id = "-".join(argument.lower().split()) or None
            self.show(await self.engine.start(CONSOLE_PLACE, CONSOLE_USER, routine_id))
        elif command in moves and not argument:
            self.show(await moves[command](self._session_id(), CONSOLE_USER))
        elif command in pressure and not argument:
            update = await pressure[command](self._session_id(), CONSOLE_USER)
            assert update.reply is not None
            self.write(wrap(f"For the giver: {update.reply.text}"))
        elif command == "routines" and not argument:
            for routine in sorted(self.engine.knowledge.routines.values(), key=lambda r: r.id):
                steps, minutes = len(routine.steps), round(routine.seconds / 60)
                self.write(f"  {routine.id}: {routine.title} ({steps} steps, {minutes} min)")
        elif command == "stats" and not argument:
            self.write(render_stats(await self.habits.your_stats(CONSOLE_USER)))
        elif command == "remind":
            await self._remind(argument)
        elif command == "help" and not argument:
            self.write(HELP)
        elif not line:
            view = self.session
            self.write(render_where(view) if view else "No session: type start ROUTINE.")
        else:
            update = await self.engine.ask(CONSOLE_PLACE, CONSOLE_USER, line)
            self.show(update)
            assert update.reply is not None
            self._rest = update.reply.rest
            if update.problem:
                self.write(f"(Your session's progress was not saved: {update.problem})")

    async def _remind(self, argument: str) -> None:
        """`remind DAY TIME ZONE`, `remind` (the list) or `remind cancel ID`."""
        words = argument.split()
        if not words:
            reminders = await self.habits.store.reminders_of(CONSOLE_USER)
            listed = "\n".join(f"  {render_reminder(r)}" for r in reminders)
            self.write(listed or "No reminders: remind monday 20:00 Europe/Berlin sets one.")
        elif words[0].lower() == "cancel" and len(words) == 2:
            await self.habits.cancel_reminder(CONSOLE_USER, words[1])
            await self._plan_next_reminder()
            self.write("Reminder cancelled.")
        elif len(words) >= 3 and words[0].lower() != "cancel":
            day, *at, zone = words  # the time may be two words: "8 pm"
            reminder = await self.habits.add_weekly_reminder(CONSOLE_USER, day, " ".join(at), zone)
            await self._plan_next_reminder()
            self.write(
                f"Reminder set: {weekly_time(reminder)}, shown here while the console runs "
                f"(remind cancel {reminder.id} removes it)."
            )
        else:
            self.write("Write it like: remind monday 20:00 Europe/Berlin, or remind cancel ID")

    async def _plan_next_reminder(self) -> None:
        """Note when this console's soonest reminder is due, so an idle console wakes for it."""
        reminders = await self.habits.store.reminders_of(CONSOLE_USER)
        self._next_reminder_at = min((r.next_at for r in reminders), default=None)

    def _session_id(self) -> str:
        view = self.session
        if view is None:
            raise NoSession("No session yet: type start ROUTINE (routines lists them).")
        return view.id

    def show(self, update: Update) -> None:
        self.write(render_update(update))
        view = update.session
        if update.kind in ("started", "step") and view is not None and update.summary is None:
            try:
                path = picture_for_step(self.engine.knowledge, view.routine_id, view.step_index)
            except OSError as error:
                self.write(f"  (no picture: {error})")
            else:
                if path is not None:
                    self.write(f"  Picture: {path}")

    async def on_time(self) -> None:
        """Apply due timers, showing this console's steps and its countdown. When the
        store cannot be written, say so once and try again a little later."""
        if self._retry_at is not None and self.engine.now() < self._retry_at:
            return
        try:
            updates = await self.engine.tick()
        except StoreError as error:
            if self._retry_at is None:
                self.write(f"Cannot save the session's progress: {error}. Still trying.")
            self._retry_at = self.engine.now() + STORE_RETRY_SECONDS * self.scale
            return
        if self._retry_at is not None:
            self._retry_at = None
            self.write("Saving works again.")
        shown = 0
        with contextlib.suppress(StoreError):  # looked for again at the next moment
            async for _ in self.habits.due_reminders(user_id=CONSOLE_USER):
                self.write(f"Reminder: {CONSOLE_REMINDER_TEXT}")
                shown += 1
        if shown:
            await self._plan_next_reminder()
        for update in updates:
            if update.session is not None and update.session.place == CONSOLE_PLACE:
                self.show(update)
        view = self.session
        if view is None or view.state != "running":
            return
        unsaid = self._unsaid_marks(view)
        reached = {mark for mark in unsaid if view.seconds_left <= mark}
        if reached:
            unsaid -= reached
            self.write(f"  {clock_text(view.seconds_left)} left")

    def seconds_to_wait(self, now: float) -> float | None:
        """Clock seconds until a timer or this console's reminder is due, or a countdown mark
        is reached; after a failed save, until the next try."""
        if self._retry_at is not None:
            return max(self._retry_at - now, 0.0)
        moments = [self.engine.next_deadline(), self._next_reminder_at]
        view = self.session
        if view is not None and view.state == "running" and view.due_at is not None:
            moments += [view.due_at - mark for mark in self._unsaid_marks(view)]
        upcoming = [moment for moment in moments if moment is not None]
        return max(min(upcoming) - now, 0.0) if upcoming else None

    def _unsaid_marks(self, view: SessionView) -> set[int]:
        """The countdown marks still to announce for the running step (or timer) shown."""
        step = (view.id, view.step_index, view.due_at)
        if self._marks_step != step:
            self._marks_step = step
            self._marks_unsaid = {mark for mark in COUNTDOWN_MARKS if mark < view.seconds_left}
        return self._marks_unsaid

    async def pause_for_later(self) -> None:
        """On the way out: pause a running session (if the store can still be written)."""
        view = self.session
        if view is None or view.state != "running":
            return
        try:
            await self.engine.pause(view.id, CONSOLE_USER)
        except StoreError as error:
            self.write(f"Could not pause your session: {error}. It resumes as last saved.")
            return
        self.write("Paused your session: start the console again to resume it.")

    async def play_out(self) -> None:
        """At the end of piped input: finish a session whose time is up, say if one waits."""
        view = self.session
        if view is not None and view.state == "time_up":
            self.show(await self.engine.stop(view.id, CONSOLE_USER))
        elif view is not None and view.state == "paused":
            self.write(f"{render_where(view)}: start the console again to resume it.")


async def serve(
    console: Console,
    lines: asyncio.Queue[str | None],
    clock: ScaledClock,
    *,
    interactive: bool,
) -> None:
    """Read lines and run timers until quit, or until piped input and its session end.

    `None` in `lines` is the end of input: typed input then quits, piped input lets a
    running session play out.
    """
    await console.welcome()
    input_open = True
    while True:
        wait = console.seconds_to_wait(clock())
        real_wait = None if wait is None else wait / clock.scale
        if not input_open:
            view = console.session
            if view is None or view.state != "running":
                await console.play_out()
                return
            await asyncio.sleep(real_wait or 0.0)
            await console.on_time()
            continue
        try:
            async with asyncio.timeout(real_wait):
                line = await lines.get()
        except TimeoutError:
            await console.on_time()
            continue
        await console.on_time()
        if line is None and interactive:
            await console.pause_for_later()
            return
        if line is None:
            input_open = False
        elif not await console.handle(line):
            return


def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Feed stdin to the event loop line by line (a thread, so pipes and files both work)."""

    def put(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the console has already closed
            loop.call_soon_threadsafe(lines.put_nowait, line)

    pending = b""
    try:
        while chunk := os.read(sys.stdin.fileno(), 4096):
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                put(raw.decode("utf-8", "replace").rstrip("\r"))
    except OSError:
        pass
    if pending:
        put(pending.decode("utf-8", "replace"))
    put(None)


def _print(text: str) -> None:
    print(text, flush=True)


async def _main(
    db_path: str | None, knowledge: KnowledgeBase, clock: ScaledClock, retention: int
) -> None:
    async with await Store.open(db_path) as store:
        with contextlib.suppress(StoreError):  # a full disk: pruned another time
            await store.prune(time.time() - retention * DAY_SECONDS)  # the real clock's days
        assistant = Assistant(knowledge)
        engine = SessionEngine(knowledge, store, assistant, clock, clock_scale=clock.scale)
        console = Console(engine, _print, scale=clock.scale)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, lines.put_nowait, "quit")
        threading.Thread(target=_read_lines, args=(loop, lines), daemon=True).start()
        await serve(console, lines, clock, interactive=sys.stdin.isatty())


def run_console(db_path: str | None, knowledge_dir: str | None) -> int:
    """``massage-bot console``: 0 when done, 1 with a one-line reason when it cannot start."""
    try:
        clock = clock_from_environment()
        retention = retention_days(settings_from(None, Path(".env")))
        knowledge = load_knowledge(knowledge_dir)
    except (ValueError, ConfigError) as error:
        print(f"massage-bot: {error}", file=sys.stderr)
        return 1
    except KnowledgeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        asyncio.run(_main(db_path, knowledge, clock, retention))
    except StoreError as error:
        print(f"massage-bot: {error}", file=sys.stderr)
        return 1
    return 0
