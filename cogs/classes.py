"""Scheduled classes on Discord: `/massage class schedule/list/cancel` (commands of the
`/massage` group, mixed into its cog), each class a scheduled event in the server's Events,
opened on time (or late, or marked missed) with one message for those interested, and
cancelled when its event is deleted or cancelled in the server."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.classes import CLASS_PARTICIPANT_LIMIT, ClassError, Classes, Opening
from bot.reminders import ReminderError, parse_moment, zone_choices
from bot.sessions import Update
from bot.store import ScheduledClass, StoreError
from cogs import render
from cogs.autocomplete import choices
from cogs.voice import VocalChannel, VoiceError

if TYPE_CHECKING:
    from bot.client import MassageBot

log = logging.getLogger(__name__)

CLASS_POLL_SECONDS = 20.0  # looked for at least this often (and whenever the clock is woken)
MENTIONED_AT_MOST = 90  # Discord takes at most 100 users in allowed_mentions
MESSAGE_CHARS = 2000
INTERESTED_PAGE = 100


async def end_class_event(bot: MassageBot, guild_id: int, event_id: str, how: str) -> None:
    """Start, end or cancel (`how`) a class's Discord event, trying again after Discord's
    passing failures; logged if it cannot be. Ending or cancelling ends an event that is
    live and cancels one still scheduled (its start had failed, or Discord started it)."""
    guild = bot.get_guild(guild_id)
    if guild is None:
        log.warning("could not %s the event %s: the server %s is not in my cache", how,
                    event_id, guild_id)  # fmt: skip
        return

    async def change() -> None:
        try:
            event = await guild.fetch_scheduled_event(int(event_id))
        except discord.NotFound:
            log.info("the event %s of a class is gone already", event_id)
            return
        scheduled = event.status is discord.EventStatus.scheduled
        active = event.status is discord.EventStatus.active
        if how == "start" and scheduled:
            await event.start()
        elif how != "start" and active:
            await event.end()
        elif how != "start" and scheduled:
            await event.cancel()

    await bot.persistently(f"{how} the event {event_id} of a class", change)


def with_mentions(text: str, people: list[int]) -> tuple[str, list[int]]:
    """`text` followed by a mention of each of `people` that fits in one message (at most
    MENTIONED_AT_MOST), then "and N more"; the text, and who it mentions."""
    mentioned: list[int] = []
    for person in people[:MENTIONED_AT_MOST]:
        mention = f" <@{person}>" if mentioned else f"\n<@{person}>"
        rest = len(people) - len(mentioned) - 1
        more = f" and {rest} more who are interested" if rest else ""
        if len(text) + len(mention) + len(more) > MESSAGE_CHARS:
            break
        text += mention
        mentioned.append(person)
    if len(people) > len(mentioned):
        text += f" and {len(people) - len(mentioned)} more who are interested"
    return text, mentioned


def describe_class(scheduled: ScheduledClass, title: str) -> str:
    """"`ab12cd34` Upper back class, <t:…:F> in <#channel>, led by <@host>"."""
    when = int(scheduled.starts_at)
    voice = f", spoken in <#{scheduled.voice_channel_id}>" if scheduled.voice_channel_id else ""
    return (
        f"`{scheduled.id}` {title}, <t:{when}:F> (<t:{when}:R>) in <#{scheduled.channel_id}>"
        f"{voice}, led by <@{scheduled.host_id}>"
    )


def can_run_events(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions
    return permissions.create_events or permissions.manage_events


class ClassCommands:
    """The class commands of `/massage`, and the loop that opens classes (see the module)."""

    bot: MassageBot
    classes_group = app_commands.Group(name="class", description="Classes at a set time")

    def _classes(self) -> Classes:
        return Classes(self.bot.engine.store, self.bot.engine, self.bot.clock)

    def _title(self, routine_id: str) -> str:
        routine = self.bot.knowledge.routines.get(routine_id)
        return routine.title if routine is not None else routine_id

    # Commands ---------------------------------------------------------------------------

    @classes_group.command(name="schedule", description="Schedule a class in this server")
    @app_commands.describe(
        routine="Which routine (start typing)",
        day="today, tomorrow, a weekday or a date like 2026-12-24",
        time="20:00 or 8pm",
        zone="the time zone of that time, e.g. Europe/Berlin (start typing)",
        channel="where the session runs (this channel if left out)",
        voice="a voice or stage channel where I speak the steps",
    )
    async def class_schedule(
        self,
        interaction: discord.Interaction,
        routine: str,
        day: str,
        time: str,
        zone: str,
        channel: discord.TextChannel | None = None,
        voice: VocalChannel | None = None,
    ) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        if not can_run_events(interaction):
            raise app_commands.MissingPermissions(["create_events"])
        channel_id = channel.id if channel is not None else interaction.channel_id
        assert channel_id is not None
        if not await self.bot.answers_in(guild.id, channel_id):
            await interaction.response.send_message(
                "I don't guide sessions in that channel here (see `/massage-admin channels`).",
                ephemeral=True,
            )
            return
        classes = self._classes()
        try:
            starts_at = parse_moment(day, time, zone, self.bot.clock())
            await classes.check(str(guild.id), routine, starts_at)
        except (ReminderError, ClassError) as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            event = await self._create_event(guild, routine, starts_at, channel_id, voice)
        except discord.Forbidden:
            await interaction.followup.send(
                "I need the Create Events permission in this server to put the class in its "
                "Events. Ask an admin to give my role that permission, then try again.",
                ephemeral=True,
            )
            return
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            log.warning("could not create the event of a class: %s", error)
            await interaction.followup.send(
                "Discord did not take the class's event just now, so nothing is scheduled. "
                "Please try again in a moment.",
                ephemeral=True,
            )
            return
        try:
            scheduled = await classes.schedule(
                str(guild.id), str(channel_id), str(interaction.user.id), routine, starts_at,
                event_id=str(event.id), voice_channel_id=str(voice.id) if voice else None,
            )  # fmt: skip
        except StoreError:
            await end_class_event(self.bot, guild.id, str(event.id), "cancel")
            raise
        speaking = voice is not None and self.bot.voice_guides.channel_problem(voice)
        await interaction.followup.send(
            f"Class scheduled: {describe_class(scheduled, self._title(routine))}. Members can "
            "mark themselves interested in the server's Events; I'll tell them when it starts. "
            f"Up to {CLASS_PARTICIPANT_LIMIT} people can join."
            + (f"\nBefore it starts: {speaking}" if speaking else ""),
            ephemeral=True,
        )

    async def _create_event(
        self,
        guild: discord.Guild,
        routine_id: str,
        starts_at: float,
        channel_id: int,
        voice: VocalChannel | None,
    ) -> discord.ScheduledEvent:
        routine = self.bot.knowledge.routines[routine_id]
        start = dt.datetime.fromtimestamp(starts_at, dt.UTC)
        where: dict[str, Any]
        if voice is None:
            channel = guild.get_channel(channel_id)
            where = {
                "entity_type": discord.EntityType.external,
                "location": f"#{channel.name}" if channel is not None else "this server",
                "end_time": start + dt.timedelta(seconds=routine.seconds + 15 * 60),
            }
        else:
            stage = isinstance(voice, discord.StageChannel)
            kind = discord.EntityType.stage_instance if stage else discord.EntityType.voice
            where = {"entity_type": kind, "channel": voice}
        event = await guild.create_scheduled_event(
            name=render.shorten(f"Massage class: {routine.title}", 100),
            description=render.shorten(
                f"A guided {routine.title.lower()} ({round(routine.seconds / 60)} minutes) with "
                f"massage-bot, in <#{channel_id}>. Press Join on the session message when it "
                "starts.",
                1000,
            ),
            start_time=start,
            privacy_level=discord.PrivacyLevel.guild_only,
            **where,
        )
        await self._drop_twins(guild, event)
        return event

    async def _drop_twins(self, guild: discord.Guild, event: discord.ScheduledEvent) -> None:
        """Delete copies of `event` that belong to no class: discord.py sends the request
        again after a 5xx, which Discord may have carried out already."""
        me = self.bot.user.id if self.bot.user else None
        events = await self.bot.persistently(
            f"look for copies of event {event.id}", guild.fetch_scheduled_events
        )
        for twin in events or []:
            same = (twin.name, twin.start_time, twin.creator_id, twin.description) == (
                event.name, event.start_time, me, event.description
            )  # fmt: skip
            if twin.id == event.id or not same:
                continue
            try:
                if await self.bot.engine.store.class_of_event(str(twin.id)) is not None:
                    continue
            except StoreError:
                continue  # not sure it is a copy: left alone
            log.info("deleting event %s, a copy of event %s", twin.id, event.id)
            await self.bot.persistently(f"delete event {twin.id}", twin.delete)

    @class_schedule.autocomplete("routine")
    async def _class_routines(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(list(self.bot.knowledge.routines.values()), current)

    @class_schedule.autocomplete("zone")
    async def _class_zones(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=zone, value=zone) for zone in zone_choices(current)]

    @classes_group.command(name="list", description="The classes scheduled in this server")
    async def class_list(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        upcoming = await self._classes().upcoming(str(interaction.guild_id))
        text = "\n".join(describe_class(c, self._title(c.routine_id)) for c in upcoming)
        await interaction.response.send_message(
            render.shorten(text, 2000) or "No classes scheduled. Schedule one with "
            "`/massage class schedule`.",
            ephemeral=True,
        )

    @classes_group.command(name="cancel", description="Cancel a scheduled class")
    @app_commands.describe(scheduled="the class, from `/massage class list` (start typing)")
    @app_commands.rename(scheduled="class")
    async def class_cancel(self, interaction: discord.Interaction, scheduled: str) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        found = await self.bot.engine.store.class_by_id(scheduled.strip())
        if (
            found is not None
            and found.host_id != str(interaction.user.id)
            and not can_run_events(interaction)
        ):
            await interaction.response.send_message(
                "Only the class's host, or someone with the Manage Events permission, can "
                "cancel it.",
                ephemeral=True,
            )
            return
        try:
            cancelled = await self._classes().cancel(str(guild.id), scheduled.strip())
        except ClassError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.send_message(
            f"Cancelled: {describe_class(cancelled, self._title(cancelled.routine_id))}.",
            ephemeral=True,
        )
        if cancelled.event_id is not None:
            await end_class_event(self.bot, guild.id, cancelled.event_id, "cancel")

    @class_cancel.autocomplete("scheduled")
    async def _class_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        upcoming = await self._classes().upcoming(str(interaction.guild_id))
        found = []
        for scheduled in upcoming:
            when = dt.datetime.fromtimestamp(scheduled.starts_at, dt.UTC)
            title = self._title(scheduled.routine_id)
            name = f"{scheduled.id} {title}, {when:%a %d %b %H:%M} UTC"
            if current.lower() in name.lower():
                found.append(app_commands.Choice(name=render.shorten(name, 100),
                                                 value=scheduled.id))  # fmt: skip
        return found[:25]

    # Discord's events ----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_scheduled_event_delete(self, event: discord.ScheduledEvent) -> None:
        """A class's event deleted in the server: the class is cancelled too (or, if the
        store fails now, as the bot next starts)."""
        try:
            cancelled = await self._classes().cancel_for_event(str(event.id))
        except StoreError as error:
            log.warning("could not cancel the class of deleted event %s: %s", event.id, error)
            return
        if cancelled is not None:
            log.info("class %s cancelled: its event was deleted", cancelled.id)

    @commands.Cog.listener()
    async def on_scheduled_event_update(
        self, before: discord.ScheduledEvent, after: discord.ScheduledEvent
    ) -> None:
        """A class's event cancelled in the server cancels the class; moved, it moves."""
        if after.status is discord.EventStatus.cancelled:
            await self.on_scheduled_event_delete(after)
            return
        if after.status is discord.EventStatus.scheduled and before.start_time != after.start_time:
            store = self.bot.engine.store
            try:
                found = await store.class_of_event(str(after.id))
                if found is not None:
                    await store.move_class(found.id, after.start_time.timestamp())
            except StoreError as error:
                log.warning("could not move the class of event %s: %s", after.id, error)

    async def _catch_up_with_events(self) -> None:
        """Classes whose events were deleted, cancelled or ended in the server while the bot
        was away are cancelled; those whose events moved, move (the servers' events come
        with them from the gateway); those a stop left half-opened are opened again."""
        store = self.bot.engine.store
        try:
            if unopened := await store.reschedule_unopened_classes(self.bot.owned_shards):
                log.info("%d class(es) left half-opened by a stop are to open again", unopened)
            scheduled = await store.classes(shards=self.bot.owned_shards)
        except StoreError as error:
            log.warning("could not look for classes whose events changed: %s", error)
            return
        for found in scheduled:
            guild = self.bot.get_guild(int(found.server_id))
            if found.event_id is None or guild is None:
                continue  # a server the bot has left: its class is missed when due
            event = guild.get_scheduled_event(int(found.event_id))
            try:
                if event is None or event.status in (
                    discord.EventStatus.cancelled, discord.EventStatus.completed
                ):
                    if await self._classes().cancel_for_event(found.event_id) is not None:
                        log.info("class %s cancelled: its event went while I was away", found.id)
                elif abs(event.start_time.timestamp() - found.starts_at) >= 1:
                    await store.move_class(found.id, event.start_time.timestamp())
            except StoreError as error:
                log.warning("could not catch class %s up with its event: %s", found.id, error)

    # Opening classes on time ------------------------------------------------------------

    def start_classes(self) -> None:
        """Start opening classes when their time comes (from the cog's `cog_load`)."""
        self._class_loop = asyncio.create_task(self.open_classes(), name="massage-classes")
        self.bot.engine.subscribe(self.on_class_update)

    async def stop_classes(self) -> None:
        self.bot.engine.unsubscribe(self.on_class_update)
        self._class_loop.cancel()
        await asyncio.gather(self._class_loop, return_exceptions=True)

    async def open_classes(self) -> None:
        await self.bot.wait_until_ready()  # the servers are known: their events can be found
        woken = self.bot.waker()
        await self._catch_up_with_events()
        while True:
            try:  # each told on its own: one server's slow Discord delays no other's
                async for opening in self._classes().open_due(self.bot.owned_shards):
                    self.bot.in_background(self._opened(opening))
            except StoreError as error:
                log.warning("could not look for classes to open: %s", error)
            await self.bot.sleep_until_woken(woken, CLASS_POLL_SECONDS)

    async def _opened(self, opening: Opening) -> None:
        """Tell the class's channel (and the people interested) that it started, or that it
        was missed; start or cancel its Discord event."""
        scheduled = opening.scheduled
        title = self._title(scheduled.routine_id)
        channel = self.bot.get_partial_messageable(int(scheduled.channel_id))
        server_id = int(scheduled.server_id)
        if opening.update is None:
            if scheduled.event_id is not None:
                await end_class_event(self.bot, server_id, scheduled.event_id, "cancel")
            planned = f"<t:{int(scheduled.starts_at)}:t>"
            await self._say(
                channel, f"The {title} class planned for {planned} did not start: {opening.problem}"
            )
            return
        interested: list[int] = []
        complete = True
        if scheduled.event_id is not None:
            await end_class_event(self.bot, server_id, scheduled.event_id, "start")
            interested, complete = await self._interested(server_id, scheduled.event_id)
        late = opening.late_minutes
        text = (
            f"The **{title}** class is starting now"
            + (f" ({late} minutes late: I was offline)" if late else "")
            + f", led by <@{scheduled.host_id}>. Press Join on the session message to take part."
        )
        people = [u for u in interested if str(u) != scheduled.host_id]
        text, mentioned = with_mentions(text, people)
        if not complete:
            text += "\n(Discord did not give me the whole list of those interested just now.)"
        pinged = discord.AllowedMentions(users=[discord.Object(u) for u in mentioned])
        await self._say(channel, text, pinged)
        if scheduled.voice_channel_id is not None:
            await self._speak_class(channel, opening.update.session.id, scheduled.voice_channel_id)

    async def _speak_class(
        self, channel: discord.PartialMessageable, session_id: str, voice_channel_id: str
    ) -> None:
        """Speak a class's session in its voice channel, saying in its text channel when
        that cannot be done."""
        vocal = self.bot.get_channel(int(voice_channel_id))
        if not isinstance(vocal, VocalChannel):
            note: str | None = "Its voice channel is gone, so this class goes on in text only."
        else:
            try:
                note = await self.bot.voice_guides.guide(session_id, vocal)
            except VoiceError as error:
                note = str(error)
        if note is not None:
            await self._say(channel, note)

    async def _interested(self, guild_id: int, event_id: str) -> tuple[list[int], bool]:
        """The ids of the people interested in an event, oldest id first, and whether that
        is all of them (Discord may fail to give every page). Paged by hand: discord.py 2.7
        pages `ScheduledEvent.users()` from the wrong end past 100."""
        found: list[int] = []
        after: int | None = None
        me = self.bot.user.id if self.bot.user else None
        while True:
            page = await self.bot.persistently(
                f"read who is interested in event {event_id}",
                functools.partial(
                    self.bot.http.get_scheduled_event_users, guild_id, int(event_id),
                    limit=INTERESTED_PAGE, with_member=False, after=after,
                ),
            )  # fmt: skip
            if page is None:
                return found, False
            ids = [int(entry["user"]["id"]) for entry in page]
            found += [i for i in ids if i != me]
            if len(ids) < INTERESTED_PAGE:
                return found, True
            after = max(ids)

    async def _say(
        self,
        channel: discord.PartialMessageable,
        text: str,
        mentions: discord.AllowedMentions | None = None,
    ) -> None:
        await self.bot.persistently(
            f"post in the class channel {channel.id}",
            lambda: channel.send(text, allowed_mentions=mentions or discord.AllowedMentions.none()),
        )

    def on_class_update(self, update: Update) -> None:
        """The engine's listener: a class's session ended, so its Discord event ends too."""
        view = update.session
        if update.summary is not None and view is not None and view.group:
            self.bot.in_background(self._class_ended(view.id))

    async def _class_ended(self, session_id: str) -> None:
        try:
            found = await self.bot.engine.store.class_of_session(session_id)
        except StoreError as error:
            log.warning("could not look for the class of session %s: %s", session_id, error)
            return
        if found is not None and found.event_id is not None:
            await end_class_event(self.bot, int(found.server_id), found.event_id, "end")
