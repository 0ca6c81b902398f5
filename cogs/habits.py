"""Coming back every week, on Discord: `/massage stats`, `alerts`, `remind`, `my-data` and
`forget-me` (commands of the `/massage` group, mixed into its cog), the reminders they
set sent on time, and each step of a group session sent by DM to those who asked."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from typing import TYPE_CHECKING, Literal

import aiohttp
import discord
from discord import app_commands

from bot.console import CONSOLE_USER
from bot.habits import REMINDER_TEXT, SERVER_REMINDER_TEXT, HabitError, describe
from bot.reminders import ReminderError, zone_choices
from bot.sessions import SessionView, Update
from bot.stats import weekly_chart
from bot.store import Reminder, StoreError
from cogs import render
from cogs.controls import ForgetButton
from cogs.live import UNKNOWN_CHANNEL

if TYPE_CHECKING:
    from bot.client import MassageBot

log = logging.getLogger(__name__)

CHANNEL_GONE_TEXT = (
    "The channel of your weekly server reminder was deleted, so I removed the reminder. "
    "Set it again in another channel with `/massage remind weekly`."
)
OPEN_AHEAD_SECONDS = 60.0  # DM channels of reminders due this soon are opened beforehand
OPENED_AHEAD = 5_000
REMINDER_POLL_SECONDS = 20.0  # looked for at least this often (and whenever the clock is woken)
STATS_CHART = "weeks.png"


class HabitCommands:
    """The habit commands of `/massage`, and the loops behind them (see the module)."""

    bot: MassageBot
    remind = app_commands.Group(name="remind", description="Weekly reminders to take a moment")

    # Stats -------------------------------------------------------------------------------

    @app_commands.command(description="Your sessions, minutes and weekly streak")
    async def stats(self, interaction: discord.Interaction) -> None:
        stats = await self.bot.habits.your_stats(str(interaction.user.id))
        numbers = stats.numbers
        if not numbers.sessions:
            await interaction.response.send_message(
                "No finished sessions yet. Start one with `/massage start`.", ephemeral=True
            )
            return
        weeks = "week" if numbers.streak_weeks == 1 else "weeks"
        embed = discord.Embed(title="Your massage habit", colour=discord.Colour.teal())
        embed.add_field(name="Sessions", value=str(numbers.sessions))
        embed.add_field(name="Minutes", value=str(round(numbers.minutes)))
        embed.add_field(name="Streak", value=f"{numbers.streak_weeks} {weeks} in a row")
        embed.add_field(name="Favourite routine", value=str(numbers.favourite_routine))
        if stats.usual_pressure:
            embed.add_field(name="Usual pressure", value=stats.usual_pressure)
        kept = self.bot.retention_days
        embed.set_footer(text=f"Counts every session kept: the last {kept} days.")
        chart = await asyncio.to_thread(
            weekly_chart, numbers.weekly_sessions, "Your sessions per week"
        )
        files = render.picture_files(embed, chart, STATS_CHART)
        await interaction.response.send_message(embed=embed, files=files, ephemeral=True)

    # Step alerts ---------------------------------------------------------------------------

    @app_commands.command(description="Each step of your group sessions by direct message")
    @app_commands.describe(state="on: a short DM at each step; off: none")
    async def alerts(self, interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
        await self.bot.engine.store.set_step_alerts(str(interaction.user.id), state == "on")
        text = (
            "Step alerts on: in a group session, I'll DM you each new step."
            if state == "on"
            else "Step alerts off."
        )
        await interaction.response.send_message(text, ephemeral=True)

    # Reminders -----------------------------------------------------------------------------

    @remind.command(name="weekly", description="A weekly reminder at a time of your choosing")
    @app_commands.describe(
        day="monday ... sunday",
        time="20:00 or 8pm, your local time",
        zone="your time zone, e.g. Europe/Berlin (start typing)",
        channel="for the whole server, in this channel (needs Manage Server); else by DM",
    )
    async def remind_weekly(
        self,
        interaction: discord.Interaction,
        day: str,
        time: str,
        zone: str,
        channel: discord.TextChannel | None = None,
    ) -> None:
        if channel is not None and (
            interaction.guild_id is None or not interaction.permissions.manage_guild
        ):
            raise app_commands.MissingPermissions(["manage_guild"])
        try:
            reminder = await self.bot.habits.add_weekly_reminder(
                str(interaction.user.id), day, time, zone,
                server_id=str(interaction.guild_id) if channel else None,
                channel_id=str(channel.id) if channel else None,
            )  # fmt: skip
        except (ReminderError, HabitError) as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.send_message(
            f"Reminder set: {describe(reminder)}. The next one is <t:{int(reminder.next_at)}:F>.",
            ephemeral=True,
        )

    @remind_weekly.autocomplete("zone")
    async def _zones(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=zone, value=zone) for zone in zone_choices(current)]

    @remind.command(name="list", description="Your weekly reminders")
    async def remind_list(self, interaction: discord.Interaction) -> None:
        reminders = await self.bot.engine.store.reminders_of(str(interaction.user.id))
        text = "\n".join(describe(r) for r in reminders) or (
            "No reminders. Set one with `/massage remind weekly`."
        )
        await interaction.response.send_message(render.shorten(text, 2000), ephemeral=True)

    @remind.command(name="cancel", description="Stop one of your weekly reminders")
    @app_commands.describe(reminder="its id, from `/massage remind list` (start typing)")
    async def remind_cancel(self, interaction: discord.Interaction, reminder: str) -> None:
        try:
            await self.bot.habits.cancel_reminder(str(interaction.user.id), reminder)
        except HabitError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.send_message("Reminder cancelled.", ephemeral=True)

    @remind_cancel.autocomplete("reminder")
    async def _reminder_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        reminders = await self.bot.engine.store.reminders_of(str(interaction.user.id))
        return [
            app_commands.Choice(name=render.shorten(re.sub(r"[`<>#]", "", describe(r)), 100),
                                value=r.id)
            for r in reminders if current.lower() in describe(r).lower()
        ][:25]  # fmt: skip

    # People's own data -------------------------------------------------------------------

    @app_commands.command(name="my-data", description="What I keep about you, as a file")
    async def my_data(self, interaction: discord.Interaction) -> None:
        data = await self.bot.habits.personal_data(str(interaction.user.id))
        body = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
        file = discord.File(io.BytesIO(body), filename="massage-bot-my-data.json")
        await interaction.response.send_message(
            "Everything I keep about you (sessions, preferences, reminders, classes you host).",
            file=file, ephemeral=True,
        )  # fmt: skip

    @app_commands.command(name="forget-me", description="Delete what I keep about you")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        button = ForgetButton(str(interaction.user.id))
        buttons = discord.ui.View(timeout=None)
        buttons.add_item(button)
        await interaction.response.send_message(
            "This deletes your preferences, reminders and step alerts, takes you out of any "
            "session you are in, and leaves you in past sessions only as an anonymous "
            "participant. It cannot be undone.",
            view=buttons, ephemeral=True,
        )  # fmt: skip

    # Loops -----------------------------------------------------------------------------------

    def start_habits(self) -> None:
        """Start sending reminders and step alerts (from the cog's `cog_load`)."""
        self._reminders = asyncio.create_task(self.send_reminders(), name="massage-reminders")
        self.bot.engine.subscribe(self.on_session_update)

    async def stop_habits(self) -> None:
        self.bot.engine.unsubscribe(self.on_session_update)
        self._reminders.cancel()
        await asyncio.gather(self._reminders, return_exceptions=True)

    async def send_reminders(self) -> None:
        """Send each due reminder once, on time (see `MassageBot.direct_message` for the
        pace)."""
        woken = self.bot.waker()
        habits, shards = self.bot.habits, self.bot.owned_shards
        while True:
            sent, soonest = 0, None
            try:
                async for reminder in habits.due_reminders(shards, other_than=CONSOLE_USER):
                    await self._send_reminder(reminder)
                    sent += 1
                soonest = await habits.store.next_reminder_at(shards, other_than=CONSOLE_USER)
            except StoreError as error:
                log.warning("could not look for reminders: %s", error)
            if not sent:
                if soonest is not None and soonest - self.bot.clock() <= OPEN_AHEAD_SECONDS:
                    await self._open_ahead(soonest)
                wait = REMINDER_POLL_SECONDS if soonest is None else soonest - self.bot.clock()
                await self.bot.sleep_until_woken(woken, min(max(wait, 0.0), REMINDER_POLL_SECONDS))

    async def _open_ahead(self, soonest: float) -> None:
        """Open the DM channels of the reminders due next, before their time, so that each
        is one request when it is due (a first DM is two): a thousand due in one minute
        then go out well within it, under Discord's global limit."""
        try:
            coming = await self.bot.habits.store.due_reminders(
                soonest + OPEN_AHEAD_SECONDS, limit=OPENED_AHEAD, shards=self.bot.owned_shards,
                other_than=CONSOLE_USER,
            )  # fmt: skip
        except StoreError as error:
            log.warning("could not look for reminders to come: %s", error)
            return
        for reminder in coming:
            if self.bot.clock() >= soonest:
                return  # their time has come: sending goes first
            if reminder.channel_id is None:
                with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, TimeoutError):
                    await self.bot.open_direct_messages(reminder.user_id)

    async def _send_reminder(self, reminder: Reminder) -> None:
        if reminder.channel_id is None:
            await self.bot.direct_message(reminder.user_id, REMINDER_TEXT)
            return
        text = SERVER_REMINDER_TEXT.format(host=f"<@{reminder.user_id}>")
        try:
            await self.bot.get_partial_messageable(int(reminder.channel_id)).send(text)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            log.warning("reminder %s could not be sent: %s", reminder.id, error)
            if isinstance(error, discord.NotFound) and error.code == UNKNOWN_CHANNEL:
                with contextlib.suppress(StoreError):  # else tried again next week
                    await self.bot.engine.store.delete_reminder(reminder.id, reminder.user_id)
                await self.bot.direct_message(reminder.user_id, CHANNEL_GONE_TEXT)

    def on_session_update(self, update: Update) -> None:
        """The engine's listener for step alerts: someone joined a group session (on a
        step they see, so no DM for it), or it moved to a step."""
        view = update.session
        if view is None or not view.group or update.summary is not None:
            return
        if update.kind in ("started", "joined"):
            people = [update.user_id] if update.user_id else [p.user_id for p in view.participants]
            self.bot.in_background(self._seen(view, people))
        elif update.kind in ("step", "restored", "resumed"):
            self.bot.in_background(self._alert(update))

    async def _seen(self, view: SessionView, people: list[str]) -> None:
        """`people` see the step they joined on: it is never sent to them."""
        try:
            for user_id in people:
                await self.bot.engine.store.claim_step_alert(view.id, user_id, view.step_index)
        except StoreError as error:
            log.warning("could not note the step people joined on: %s", error)

    async def _alert(self, update: Update) -> None:
        view = update.session
        assert view is not None
        store = self.bot.engine.store
        people = [p.user_id for p in view.participants]
        text = (
            f"{view.routine_title}, step {view.step_index + 1} of {view.step_count}: "
            f"{view.step.title}"
        )
        try:
            for user_id in sorted(await store.step_alert_people(people)):
                now = self.bot.engine.get(view.id)
                if now is None or now.step_index != view.step_index:
                    return  # moved on while DMs queued: the next step's alerts take over
                if all(p.user_id != user_id for p in now.participants):
                    continue  # left meanwhile
                if not await store.claim_step_alert(view.id, user_id, view.step_index):
                    continue  # one DM a step, even after a restart or going back to it
                await self.bot.direct_message(user_id, render.shorten(text, 2000))
        except StoreError as error:
            log.warning("could not send step alerts: %s", error)
