"""The Discord client: one `AutoShardedBot` that wires the knowledge, the store, the
session engine and the cogs. The only module under `bot/` that imports discord.

A process runs some shards (all by default) and owns their servers' sessions. On a shared
PostgreSQL store it first takes its shards' leases (refusing to start when another process
holds one), restores and times only its own sessions, hears the other processes' knowledge
reloads, and stops if it loses its leases. Work done once for everyone (registering the
commands, pruning old data) is the work of the process that runs shard 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.assistant import Assistant
from bot.config import DAY_SECONDS, DEFAULT_RETENTION_DAYS, BotConfig
from bot.habits import Habits
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from bot.pictures import picture_for_step
from bot.sessions import Clock, SessionEngine, Update
from bot.shards import Shards
from bot.store import ScheduledClass, Store, StoreError
from cogs.controls import DYNAMIC_ITEMS
from cogs.live import EDIT_GAP_SECONDS, RETRY_DELAYS, SessionMessages
from cogs.voice import VoiceGuides

log = logging.getLogger(__name__)
T = TypeVar("T")

EXTENSIONS = ("cogs.massage", "cogs.admin")
TIMER_MAX_SLEEP = 300.0  # look again at least this often, in case the wall clock jumped
TIMER_RETRY_SECONDS = 5.0
RELOAD_NOTICE, FORGET_NOTICE = "reload", "forget"  # what processes tell each other
UNSEEN_CHANNEL = "I can't see the channel you chose: give me View Channel there, or choose another."
STORE_TROUBLE = (
    "My storage isn't working right now, so I could not do that (nothing you had is "
    "lost). Please try again in a while."
)
BAD_OPTION = "I could not use one of the options you gave: please check it."
APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
COOLDOWN_RATE, COOLDOWN_SECONDS = 10, 10.0  # actions per user
RETENTION_EVERY_SECONDS = DAY_SECONDS
TRANSIENT_TRIES = 5  # for a one-off request (an announcement, an event's state)
DIRECT_MESSAGES_PER_SECOND = 26  # leaving room for edits under REQUESTS_PER_SECOND
DMS_CLOSED = 50007  # Discord's code: this person takes no direct messages from the bot
DM_CHANNELS_KEPT = 100_000
DMS_REFUSED_SECONDS = 3600.0  # not asked again for so long (step alerts come every minute)
REQUESTS_PER_SECOND = 32  # Discord's global limit is 50 (interaction responses are exempt)
EXEMPT_ROUTES = ("/interactions/", "/webhooks/")
UI_PERMISSION_NAMES = {
    "manage_guild": "Manage Server",
    "manage_channels": "Manage Channels",
    "create_events": "Create Events",
}


class Window:
    """At most `limit` starts in any `per` seconds: the rest wait their turn, in order."""

    def __init__(self, limit: int, per: float = 1.0) -> None:
        self.limit = limit
        self.per = per
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def turn(self) -> None:
        async with self._lock:
            now = time.monotonic()
            while self._starts and now - self._starts[0] >= self.per:
                self._starts.popleft()
            if len(self._starts) >= self.limit:
                await asyncio.sleep(self._starts[0] + self.per - now)
                self._starts.popleft()
            self._starts.append(time.monotonic())


def paced_requests(window: Window) -> aiohttp.TraceConfig:
    """Every request to Discord but interaction answers waits for its turn in `window` as
    it is sent, retries and requests held back by discord.py included: discord.py keeps to
    each route's limits, not to the global one."""

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        if not any(exempt in params.url.path for exempt in EXEMPT_ROUTES):
            await window.turn()

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace


class StartError(Exception):
    """The bot cannot start or go on; the message is one line for the person (never the
    token)."""


def permission_name(permission: str) -> str:
    """A permission as Discord's app names it ("manage_guild": "Manage Server")."""
    return UI_PERMISSION_NAMES.get(permission, permission.replace("_", " ").title())


def intents() -> discord.Intents:
    """Servers and their scheduled events, voice states (who is in a spoken session's
    channel), and messages for mentions and DMs: no privileged intent."""
    return discord.Intents(
        guilds=True, guild_messages=True, dm_messages=True,
        guild_scheduled_events=True, voice_states=True,
    )  # fmt: skip


class Cooldown:
    """At most `rate` actions per user in a window of `per` seconds.

    Unlike `commands.CooldownMapping`, which sweeps every user's bucket on each call,
    stale windows are swept at most once per `per` seconds.
    """

    def __init__(self, rate: int, per: float) -> None:
        self.rate = rate
        self.per = per
        self._windows: dict[int, tuple[float, int]] = {}  # user -> (window start, count)
        self._swept_at = 0.0

    def retry_after(self, user_id: int) -> float | None:
        """Count an action; return the seconds to wait if it is one too many."""
        now = time.monotonic()
        if now - self._swept_at >= self.per:
            self._windows = {u: w for u, w in self._windows.items() if now - w[0] < self.per}
            self._swept_at = now
        started, count = self._windows.get(user_id, (now, 0))
        if now - started >= self.per:
            started, count = now, 0
        if count >= self.rate:
            return started + self.per - now
        self._windows[user_id] = (started, count + 1)
        return None


class MassageBot(commands.AutoShardedBot):
    """Slash commands, live session messages and answers to mentions and DMs."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        *,
        db: Path | str | None = None,
        knowledge_dir: Path | str | None = None,
        dev_guild: int | None = None,
        shard_count: int = 1,
        shard_ids: list[int] | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Clock = time.time,
        cooldown: tuple[int, float] = (COOLDOWN_RATE, COOLDOWN_SECONDS),
        retry_delays: Sequence[float] = RETRY_DELAYS,
        edit_gap: float = EDIT_GAP_SECONDS,
        voice_client_class: type[discord.VoiceProtocol] = discord.VoiceClient,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=shard_count,
            shard_ids=shard_ids,
            max_messages=None,  # nothing reads the message cache
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            http_trace=paced_requests(Window(REQUESTS_PER_SECOND)),
        )
        self.knowledge = knowledge
        self.knowledge_dir = Path(knowledge_dir) if knowledge_dir else knowledge.source_dir
        self.db = db  # a file path or a postgresql:// URL (None: $MASSAGE_BOT_DB or data/)
        self.dev_guild = dev_guild
        self.owned_shards = Shards.of(shard_count, tuple(shard_ids) if shard_ids else None)
        self.retention_days = retention_days
        self.stop_reason: str | None = None  # why the bot stopped itself, if it did
        self.clock = clock
        self.assistant = Assistant(knowledge)
        self.store: Store | None = None
        self._engine: SessionEngine | None = None
        self._habits: Habits | None = None
        self.cooldown = Cooldown(*cooldown)
        self._answer_channels: dict[str, set[str]] = {}
        self._reload_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # kept until done
        self._timer_wake = asyncio.Event()
        self._wakers: list[asyncio.Event] = []  # other loops woken with the timer
        self.session_messages = SessionMessages(self, retry_delays, edit_gap)
        self.voice_guides = VoiceGuides(self, voice_client_class)
        self._direct_messages = Window(1, 1 / DIRECT_MESSAGES_PER_SECOND)  # evenly spread
        self._dms_refused: dict[str, float] = {}  # user id: when Discord said DMs are closed
        self._dm_channels: dict[str, int] = {}  # user id: their DM channel, oldest first
        self._pictures = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pictures")
        self._picture_bytes: dict[str, bytes | None] = {}  # by `what`, for this knowledge

    @property
    def engine(self) -> SessionEngine:
        assert self._engine is not None, "the engine exists once setup_hook has run"
        return self._engine

    @property
    def habits(self) -> Habits:
        assert self._habits is not None, "habits exist once setup_hook has run"
        return self._habits

    # Start and stop ---------------------------------------------------------------------

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process does the work done once for every process."""
        return 0 in self.owned_shards.ids

    async def setup_hook(self) -> None:
        self.store = await Store.open(self.db)
        await self.store.take_shards(self.owned_shards, self._lost_shards)
        self._engine = SessionEngine(
            self.knowledge, self.store, self.assistant, self.clock, shards=self.owned_shards
        )
        self.engine.subscribe(self.session_messages.on_update)  # the one place that shows them
        self._habits = Habits(self.store, self.clock)
        restoring = time.monotonic()
        restored = await self.engine.restore()
        restore_seconds = time.monotonic() - restoring
        await self.session_messages.start()
        await self.voice_guides.start()
        await self.store.listen(self._heard)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.tree.on_error = self.on_app_command_error
        await self._sync_commands()
        self._timer = asyncio.create_task(self._run_timer(), name="massage-session-timer")
        if self.runs_shard_zero:
            await self.prune()
            self._retention = asyncio.create_task(self._run_retention(), name="massage-retention")
        log.info("%s: ready to serve %d restored sessions (restored in %.2f s)",
                 self.owned_shards, len(restored), restore_seconds)  # fmt: skip

    def _lost_shards(self, reason: str) -> None:
        """The store lost this process's shard leases: stop, so another can take over."""
        log.error("%s; stopping", reason)
        self.stop_reason = reason
        self.in_background(self.close())

    async def _sync_commands(self) -> None:
        """Register the commands: at once in the development server, else globally.

        Only the process holding shard 0 syncs, so that several processes do not race.
        """
        if not self.runs_shard_zero:
            return
        if self.dev_guild is None:
            await self.tree.sync()
            return
        guild = discord.Object(self.dev_guild)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def close(self) -> None:
        for task in (self._timer, self._retention):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.voice_guides.close()  # before discord.py leaves the voice channels
        await super().close()
        await self.session_messages.close()
        self._pictures.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: the Massage cog answers mentions and direct messages."""

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent, /) -> None:
        """A session's message deleted by someone is posted again."""
        await self.session_messages.on_message_deleted(payload.message_id)

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState, /
    ) -> None:
        """Someone (or the bot) joined, left or moved between voice channels."""
        await self.voice_guides.on_voice_state_update(member, before, after)

    # The session timer ------------------------------------------------------------------

    def wake_timer(self) -> None:
        """A session changed (or the clock moved): the timer looks at the next deadline
        again, and so do the loops waiting on a `waker`."""
        self._timer_wake.set()
        for event in self._wakers:
            event.set()

    def waker(self) -> asyncio.Event:
        """An event set whenever the timer is woken, for a loop that sleeps between looks."""
        event = asyncio.Event()
        self._wakers.append(event)
        return event

    async def sleep_until_woken(self, waker: asyncio.Event, seconds: float) -> None:
        """Sleep `seconds`, or less if woken meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await waker.wait()
        waker.clear()

    async def _run_timer(self) -> None:
        """Sleep until the next step is due, move the sessions on, and show them."""
        while True:
            self._timer_wake.clear()
            deadline = self.engine.next_deadline()
            delay = TIMER_MAX_SLEEP if deadline is None else deadline - self.clock()
            if delay > 0:  # asyncio.timeout, not wait_for: a cancel is never swallowed
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(delay, TIMER_MAX_SLEEP)):
                        await self._timer_wake.wait()
                continue
            try:
                await self.engine.tick()  # its changes are announced to session_messages
            except Exception:
                log.exception("the session timer failed; trying again shortly")
                await asyncio.sleep(TIMER_RETRY_SECONDS)

    # Retention --------------------------------------------------------------------------

    async def prune(self) -> None:
        """Remove the sessions that ended, and the unanswered questions last asked, more
        than `retention_days` ago."""
        assert self.store is not None
        before = self.clock() - self.retention_days * DAY_SECONDS
        try:
            pruned = await self.store.prune(before)
        except StoreError as error:
            log.warning("could not prune old sessions and questions: %s", error)
            return
        log.info("pruned %d ended sessions and %d unanswered questions older than %d days",
                 pruned.sessions, pruned.questions, self.retention_days)  # fmt: skip

    async def _run_retention(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_EVERY_SECONDS)
            await self.prune()

    # Pictures -----------------------------------------------------------------------------

    async def picture(self, draw: Callable[[], Path | None], what: str) -> bytes | None:
        """The PNG `draw` returns the path of, drawn (or found in the cache) and read in a
        thread, then kept in memory under `what`; None when there is none, or when that
        failed (logged: send it without)."""
        if what in self._picture_bytes:
            return self._picture_bytes[what]

        def read() -> bytes | None:
            path = draw()
            return None if path is None else path.read_bytes()

        try:  # one drawing thread: a picture is drawn once, and memory stays in one arena
            png = await asyncio.get_running_loop().run_in_executor(self._pictures, read)
        except OSError as error:
            log.warning("no picture for %s: %s", what, error)
            return None
        self._picture_bytes[what] = png
        return png

    async def step_picture(self, update: Update) -> bytes | None:
        """The picture of the step `update` shows; none for the summary, nor for a step the
        knowledge no longer has as it was (a reload changed the session's routine)."""
        view = update.session
        if update.summary is not None or view is None:
            return None
        knowledge, index = self.knowledge, view.step_index
        routine = knowledge.routines.get(view.routine_id)
        if routine is None or index >= len(routine.steps) or routine.steps[index] != view.step:
            return None
        return await self.picture(
            lambda: picture_for_step(knowledge, view.routine_id, index),
            f"step {index + 1} of {view.routine_id}",
        )

    # Shared helpers for the cogs ----------------------------------------------------------

    async def answers_in(self, guild_id: int | None, channel_id: int | None) -> bool:
        """Whether the bot answers in the open here (a server may list its answer channels)."""
        if guild_id is None:
            return True
        channels = await self.answer_channels(guild_id)
        return not channels or str(channel_id) in channels

    async def answer_channels(self, guild_id: int) -> set[str]:
        assert self.store is not None
        key = str(guild_id)
        if key not in self._answer_channels:
            self._answer_channels[key] = await self.store.answer_channels(key)
        return self._answer_channels[key]

    async def set_answer_channel(self, guild_id: int, channel_id: int, answer: bool) -> None:
        assert self.store is not None
        await self.store.set_answer_channel(str(guild_id), str(channel_id), answer)
        self._answer_channels.pop(str(guild_id), None)

    async def reload_knowledge(self) -> KnowledgeBase:
        """Load the knowledge directory again and swap it in if it validates, then have
        every other process on the store do the same.

        Raises `KnowledgeError` (and keeps the current knowledge) when it does not.
        Running sessions keep the routine they started with.
        """
        knowledge = await self._reload_here()
        assert self.store is not None
        await self.store.announce(RELOAD_NOTICE)
        return knowledge

    def _heard(self, notice: str) -> None:
        """Another process reloaded its knowledge (reload ours too, logged if it fails), or
        forgot someone (take them out of our sessions too)."""
        what, _, user_id = notice.partition(" ")
        if what == RELOAD_NOTICE:
            self.in_background(self._reload_as_told())
        elif what == FORGET_NOTICE and user_id:
            self.in_background(self._forget_as_told(user_id))

    async def _reload_as_told(self) -> None:
        try:
            await self._reload_here()
        except KnowledgeError as error:
            log.error("kept the current knowledge: %d problem(s) in the files (%s)",
                      len(error.problems), error.problems[0])  # fmt: skip

    async def _forget_as_told(self, user_id: str) -> None:
        try:
            await self.engine.forget_person(user_id)
        except StoreError as error:
            log.error("could not forget someone as another process asked: %s", error)

    async def forget_person(self, user_id: str) -> list[ScheduledClass]:
        """`/massage forget-me`: forget `user_id` here and in the store, then tell the other
        processes (which run sessions they may be in); the classes they were to host, now
        cancelled (their Discord events are for the caller)."""
        cancelled = await self.engine.forget_person(user_id)
        try:
            await self.engine.store.announce(f"{FORGET_NOTICE} {user_id}")
        except StoreError as error:
            log.error("could not tell the other processes to forget someone: %s", error)
        return cancelled

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task kept until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload_here(self) -> KnowledgeBase:
        async with self._reload_lock:
            knowledge, assistant = await asyncio.to_thread(self._load_assistant)
            self.knowledge, self.assistant = knowledge, assistant
            self._picture_bytes.clear()
            self.engine.knowledge, self.engine.asker = knowledge, assistant
            log.info("reloaded the knowledge from %s", self.knowledge_dir)
            return knowledge

    def _load_assistant(self) -> tuple[KnowledgeBase, Assistant]:
        knowledge = load_knowledge(self.knowledge_dir)
        return knowledge, Assistant(knowledge)

    # Errors -------------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Slash commands' errors go to the one error boundary."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await self.on_interaction_error(interaction, cause)

    async def on_interaction_error(
        self, interaction: discord.Interaction, error: BaseException
    ) -> None:
        """The one error boundary of commands and buttons: what the person can act on is
        said plainly and privately; anything else is logged, with a short apology."""
        if isinstance(error, app_commands.CommandNotFound):
            log.info("ignored an unknown command: %s", error)
            return
        if isinstance(error, app_commands.NoPrivateMessage):
            await self.tell(interaction, "That works in a server, not in direct messages.")
            return
        if isinstance(error, app_commands.MissingPermissions):
            needed = ", ".join(permission_name(p) for p in error.missing_permissions)
            await self.tell(interaction, f"That needs the {needed} permission in this server.")
            return
        if isinstance(error, app_commands.CheckFailure):
            await self.tell(interaction, "That command is not available to you here.")
            return
        if isinstance(error, app_commands.TransformerError):
            log.info("an option could not be used: %s", error)
            unseen_channel = error.type is discord.AppCommandOptionType.channel
            await self.tell(interaction, UNSEEN_CHANNEL if unseen_channel else BAD_OPTION)
            return
        if isinstance(error, StoreError):
            log.error("the store failed: %s", error)
            await self.tell(interaction, STORE_TROUBLE)
            return
        what = interaction.command.qualified_name if interaction.command else "a button"
        log.error("%s failed", what, exc_info=error)
        await self.tell(interaction, APOLOGY)

    async def persistently(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`, tried again after failures Discord may get over (5xx, timeouts, a
        lost connection) at the first TRANSIENT_TRIES of the session messages' delays; None,
        logged, when it never worked or Discord refused it (4xx)."""
        delays = iter(self.session_messages.retry_delays[: TRANSIENT_TRIES - 1])
        while True:
            try:
                return await call()
            except discord.HTTPException as error:
                if error.status < 500:
                    log.warning("could not %s: %s", what, error)
                    return None
                failure: Exception = error
            except (aiohttp.ClientError, TimeoutError) as error:
                failure = error
            delay = next(delays, None)
            log.warning("could not %s%s: %s", what, "" if delay is None else ", trying again",
                        failure)  # fmt: skip
            if delay is None:
                return None
            await asyncio.sleep(delay)

    async def direct_message(self, user_id: str, text: str) -> bool:
        """Send a direct message (reminders, step alerts, a note for a host), paced with
        every other one under Discord's global rate limit; False (logged) when it could not
        be sent (their DMs are closed, Discord failed)."""
        refused_at = self._dms_refused.get(user_id)
        if refused_at is not None and time.monotonic() - refused_at < DMS_REFUSED_SECONDS:
            return False  # asked again so soon, Discord would count it an invalid request
        await self._direct_messages.turn()
        try:
            channel = await self.open_direct_messages(user_id)
            await channel.send(text)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError, ValueError) as error:
            if isinstance(error, discord.Forbidden) and error.code == DMS_CLOSED:
                self._dms_refused[user_id] = time.monotonic()
            log.warning("could not send a direct message to %s: %s", user_id, error)
            return False
        self._dms_refused.pop(user_id, None)
        return True

    async def open_direct_messages(self, user_id: str) -> discord.abc.Messageable:
        """The direct-message channel with `user_id`, opened once (a request) and then
        remembered (discord.py keeps only the last 128)."""
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel = await self.create_dm(discord.Object(int(user_id)))
            channel_id = self._dm_channels[user_id] = channel.id
            while len(self._dm_channels) > DM_CHANNELS_KEPT:
                self._dm_channels.pop(next(iter(self._dm_channels)))
        return self.get_partial_messageable(channel_id, type=discord.ChannelType.private)

    async def cooling_down(self, interaction: discord.Interaction) -> bool:
        """Whether the user must wait (and has been told so, privately)."""
        wait = self.cooldown.retry_after(interaction.user.id)
        if wait is None:
            return False
        text = f"Easy there: give me {max(round(wait), 1)} s, then try again."
        await interaction.response.send_message(text, ephemeral=True)
        return True

    async def tell(self, interaction: discord.Interaction, text: str) -> None:
        """A short private message for whoever started `interaction`, answered or not yet."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as error:
            log.warning("could not tell the user about a problem: %s", error)


def run(
    config: BotConfig,
    knowledge: KnowledgeBase,
    *,
    db: Path | str | None = None,
    knowledge_dir: Path | str | None = None,
) -> None:
    """Run the bot until it is stopped; raise `StartError` when it cannot start, or stopped
    itself (it lost its shards)."""
    discord.utils.setup_logging()
    if config.api_base:
        discord.http.Route.BASE = config.api_base
    if config.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)

    async def serve() -> None:
        bot = MassageBot(
            knowledge,
            db=db,
            knowledge_dir=knowledge_dir,
            dev_guild=config.dev_guild,
            shard_count=config.shard_count,
            shard_ids=list(config.shard_ids) if config.shard_ids is not None else None,
            retention_days=config.retention_days,
        )
        async with bot:
            await bot.start(config.token)
        if bot.stop_reason is not None:
            raise StartError(bot.stop_reason)

    try:
        asyncio.run(serve())
    except discord.LoginFailure:
        raise StartError(
            "Discord refused the token in DISCORD_TOKEN; copy it again from the Developer "
            "Portal (your application, Bot, Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise StartError("Discord refused the intents the bot asked for") from None
    except StoreError as error:
        raise StartError(str(error)) from None
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound, TimeoutError) as error:
        where = config.api_base or "discord.com"
        raise StartError(f"cannot reach Discord at {where}: {error.__class__.__name__}") from None
