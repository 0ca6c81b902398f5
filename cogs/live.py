"""The one place that turns "session S is now at version V" into its Discord message.

The engine announces every change of a session (`SessionEngine.subscribe`); here each
session's message is brought to the newest version. The interaction that caused a change
shows it when it can (`respond`, `post`); whatever it could not show, and every change the
timer makes, goes out as an ordinary edit: one at a time per session, the newest version
replacing any pending one, again after any response that may have landed out of order,
retried with backoff on 5xx and timeouts, re-posted when the message or its picture was
deleted, and the host told once, privately, when Discord refuses for want of a
permission. Nothing is retried forever. The store remembers which version each message
shows, so a restarted bot brings stale messages up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.sessions import NoSession, SessionError, StoreError, Update
from cogs.controls import session_message

if TYPE_CHECKING:
    from bot.client import MassageBot

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)  # then the host is told
EDIT_GAP_SECONDS = 1.0  # a message is edited at most this often; changes meanwhile coalesce
UNKNOWN_CHANNEL = 10003
NEEDED = {  # what the bot needs in a session's channel, in Discord's words
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}


class SessionMessages:
    """Keeps every session's message showing the session as it is."""

    def __init__(
        self,
        bot: MassageBot,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        edit_gap: float = EDIT_GAP_SECONDS,
    ) -> None:
        self.bot = bot
        self.retry_delays = retry_delays
        self.edit_gap = edit_gap
        self._newest: dict[str, Update] = {}  # the newest change of each session to show
        self._shown: dict[str, int] = {}  # the version the message got last (last to land)
        self._given_up: dict[str, int] = {}  # a version not to try again (the host was told)
        self._responding: Counter[str] = Counter()  # interaction responses under way
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._told: set[str] = set()  # sessions whose host was told about a problem
        self._edited_at: dict[str, float] = {}  # when each message was last edited
        self._closed = False

    async def close(self) -> None:
        """Stop the edits under way (the store remembers what each message shows)."""
        self._closed = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    # What happens to sessions -----------------------------------------------------------

    def on_update(self, update: Update) -> None:
        """The engine's listener: a session changed (a command, a timer, a restore)."""
        if update.session is None:
            return
        session_id = update.session.id
        self.bot.wake_timer()
        known = self._newest.get(session_id)
        if known is not None and known.session is not None:
            if known.session.version > update.session.version:
                return
            if _shows(known) == _shows(update):  # an answer or a pressure request
                return
        self._newest[session_id] = update
        self._kick(session_id)

    async def start(self) -> None:
        """Once the engine has restored its sessions: messages that show an older version
        than the store holds (ended sessions' too) are brought up to date, for the servers
        this process owns."""
        assert self.bot.store is not None
        for stale in await self.bot.store.stale_session_messages(self.bot.owned_shards):
            if stale.session_id not in self._newest:
                update = await self.bot.engine.update_for(stale.session_id)
                if update is not None:
                    self.on_update(update)

    async def on_message_deleted(self, message_id: int) -> None:
        """A session's message was deleted: post it again."""
        assert self.bot.store is not None
        session_id = await self.bot.store.session_of_message(str(message_id))
        update = self._newest.get(session_id) if session_id else None
        if session_id is None or update is None or update.summary is not None:
            return
        await self.bot.store.forget_session_message(session_id)
        self._shown.pop(session_id, None)
        self._kick(session_id)

    # Interactions show what they changed ------------------------------------------------

    async def respond(self, interaction: discord.Interaction, update: Update) -> None:
        """Answer a button press by showing `update` on the pressed message; when that fails
        (too late, Discord down), the change is shown by an ordinary edit instead."""
        assert update.session is not None
        session_id = update.session.id
        self._responding[session_id] += 1  # before any await: no edit starts meanwhile
        shown = False
        try:
            picture = await self.bot.step_picture(update)
            await interaction.response.edit_message(
                **session_message(update, self.bot.clock(), picture)
            )
            shown = True
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            log.warning("session %s: the response to a press failed: %s", session_id, error)
        finally:
            self._done_responding(session_id)
        if shown:
            await self._record(session_id, update.session.version)
        self._kick(session_id)  # a newer version may have come meanwhile: it goes last
        self._forget_if_done(session_id)

    async def post(
        self, interaction: discord.Interaction, update: Update, **message: Any
    ) -> None:
        """Answer `/massage start` with the new session's message (`message` adds content
        and allowed mentions). When the response fails, the message Discord may still have
        made is looked up, or a new one posted: a session never stays without a message."""
        assert update.session is not None and self.bot.store is not None
        session_id = update.session.id
        self._responding[session_id] += 1  # until the message is remembered
        try:
            message_id: int | None = None
            try:
                picture = await self.bot.step_picture(update)
                payload = session_message(update, self.bot.clock(), picture, new=True)
                response = await interaction.response.send_message(**payload, **message)
                message_id = response.message_id
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                log.warning("session %s: the response to start failed: %s", session_id, error)
                with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, TimeoutError):
                    message_id = (await interaction.original_response()).id
            if message_id is not None:
                version = update.session.version
                with contextlib.suppress(StoreError):
                    await self.bot.store.set_session_message(
                        session_id, update.session.place, str(message_id), version
                    )
                    self._shown[session_id] = version
        finally:
            self._done_responding(session_id)
        self._kick(session_id)

    def posting(self, session_id: str) -> bool:
        """Whether the session's message is being posted or changed by a response now."""
        return self._responding[session_id] > 0

    # Edits --------------------------------------------------------------------------------

    def _kick(self, session_id: str) -> None:
        """Start bringing the session's message up to date, unless that is under way."""
        update = self._newest.get(session_id)
        if self._closed or update is None or update.session is None:
            return
        if self._responding[session_id]:
            return
        version = update.session.version
        if self._shown.get(session_id) == version or self._given_up.get(session_id) == version:
            return
        if session_id not in self._workers:
            task = asyncio.create_task(self._bring_up_to_date(session_id))
            self._workers[session_id] = task
            task.add_done_callback(lambda _: self._worker_done(session_id))

    def _worker_done(self, session_id: str) -> None:
        self._workers.pop(session_id, None)
        self._kick(session_id)  # a change may have arrived while the last edit was under way
        self._forget_if_done(session_id)

    def _done_responding(self, session_id: str) -> None:
        self._responding[session_id] -= 1
        if self._responding[session_id] <= 0:
            del self._responding[session_id]

    def _forget_if_done(self, session_id: str) -> None:
        """Let an ended session go once its summary shows and nothing is under way."""
        update = self._newest.get(session_id)
        if update is None or update.session is None or update.summary is None:
            return
        busy = self._responding[session_id] or session_id in self._workers
        if not busy and self._shown.get(session_id) == update.session.version:
            self._forget(session_id)

    def _forget(self, session_id: str) -> None:
        for table in (self._newest, self._shown, self._given_up, self._edited_at):
            table.pop(session_id, None)
        self._told.discard(session_id)

    async def _bring_up_to_date(self, session_id: str) -> None:
        """Edit (or post) the message until it shows the newest version; see the module."""
        store = self.bot.store
        assert store is not None
        delays = iter(self.retry_delays)
        while True:
            update = self._newest.get(session_id)
            if update is None or update.session is None or self._responding[session_id]:
                return
            version = update.session.version
            try:
                location = await store.session_message(session_id)
                if location is not None and session_id not in self._shown:
                    self._shown[session_id] = location.shown_version
                if self._shown.get(session_id) == version:
                    return
                if location is None:
                    await self._post_anew(update)
                    continue
                wait = self._edited_at.get(session_id, 0.0) + self.edit_gap - time.monotonic()
                if wait > 0:  # a busy class: the changes meanwhile go out as one edit
                    await asyncio.sleep(wait)
                    continue
                self._edited_at[session_id] = time.monotonic()
                await self._edit(int(location.channel_id), int(location.message_id), update)
                delays = iter(self.retry_delays)
            except discord.NotFound as error:
                if error.code == UNKNOWN_CHANNEL:
                    await self._channel_gone(update)
                    return
                await store.forget_session_message(session_id)  # deleted: post it again
                self._shown.pop(session_id, None)
            except discord.Forbidden as error:
                await self._give_up(update, self._missing_permissions(update, error))
                return
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError, StoreError) as error:
                delay = next(delays, None)
                log.warning("session %s: could not show version %d: %s", session_id, version, error)
                if delay is None:
                    await self._give_up(update, "Discord did not accept my edits for a while.")
                    return
                await asyncio.sleep(delay)

    async def _edit(self, channel_id: int, message_id: int, update: Update) -> None:
        assert update.session is not None
        channel = self.bot.get_partial_messageable(channel_id)
        picture = await self.bot.step_picture(update)
        await channel.get_partial_message(message_id).edit(
            **session_message(update, self.bot.clock(), picture)
        )
        await self._record(update.session.id, update.session.version)

    async def _post_anew(self, update: Update) -> None:
        """Post the session's message in its channel (its first one failed, or was deleted)."""
        assert update.session is not None and self.bot.store is not None
        view = update.session
        channel = self.bot.get_partial_messageable(int(view.place))
        picture = await self.bot.step_picture(update)
        message = await channel.send(
            **session_message(update, self.bot.clock(), picture, new=True)
        )
        await self.bot.store.set_session_message(view.id, view.place, str(message.id), view.version)
        self._shown[view.id] = view.version

    async def _record(self, session_id: str, version: int) -> None:
        """The message got `version`: the last write to land is what it shows."""
        self._shown[session_id] = version
        assert self.bot.store is not None
        with contextlib.suppress(StoreError):
            await self.bot.store.set_shown_version(session_id, version)

    # When Discord says no -----------------------------------------------------------------

    async def _channel_gone(self, update: Update) -> None:
        """The session's channel was deleted: end the session, and tell the host."""
        assert update.session is not None
        view = update.session
        self._given_up[view.id] = view.version
        if update.summary is None:
            with contextlib.suppress(NoSession, SessionError, StoreError):
                await self.bot.engine.stop(view.id, view.host)
        await self._tell_host(
            update, f"The channel of your {view.routine_title} session was deleted, so I ended it."
        )
        self._forget(view.id)

    async def _give_up(self, update: Update, reason: str) -> None:
        assert update.session is not None
        view = update.session
        self._given_up[view.id] = view.version
        await self._tell_host(
            update,
            f"I can't update the message of your {view.routine_title} session in <#{view.place}>: "
            f"{reason} The session itself goes on; its buttons and commands still work.",
        )

    def _missing_permissions(self, update: Update, error: discord.Forbidden) -> str:
        assert update.session is not None
        channel = self.bot.get_channel(int(update.session.place))
        if isinstance(channel, discord.abc.GuildChannel):
            granted = channel.permissions_for(channel.guild.me)
            missing = [name for flag, name in NEEDED.items() if not getattr(granted, flag)]
            if missing:
                return f"I'm missing the {', '.join(missing)} permission there."
        return f"Discord refused ({error.text or 'missing access'})."

    async def _tell_host(self, update: Update, text: str) -> None:
        """A direct message to the session's host, at most once per session."""
        assert update.session is not None
        view = update.session
        if view.id in self._told:
            return
        self._told.add(view.id)
        log.warning("session %s: telling the host: %s", view.id, text)
        await self.bot.direct_message(view.host, text)


def _shows(update: Update) -> tuple[object, ...]:
    """What the session message shows of an update (what a new version may change)."""
    view = update.session
    assert view is not None
    people = tuple((p.user_id, p.role) for p in view.participants)
    paused_left = round(view.seconds_left) if view.state == "paused" else None
    return (update.summary is not None, view.state, view.step_index, view.due_at, paused_left,
            people, view.host, view.invited, update.other_side)  # fmt: skip

