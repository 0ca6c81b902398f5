"""`/massage`: questions, guided sessions and their buttons, and answers to mentions and DMs."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import APOLOGY, MassageBot
from bot.pictures import picture_for_entry
from bot.reply import question_problem
from bot.sessions import SessionError, Update
from cogs import render
from cogs.autocomplete import choices
from cogs.classes import ClassCommands
from cogs.controls import answer_buttons
from cogs.habits import HabitCommands
from cogs.voice import channel_of

log = logging.getLogger(__name__)

NO_SESSION = "You have no session in this channel. Start one with `/massage start`."
INVITATION = (
    "{partner}, {giver} would like to give you a massage: press Accept to join as the receiver."
)


def update_note(update: Update) -> str:
    """One line saying what a session command did."""
    if update.summary is not None:
        return "The session has ended; its message shows the summary."
    assert update.session is not None
    view = update.session
    where = f"step {view.step_index + 1} of {view.step_count}: {view.step.title}"
    return {
        "paused": f"Paused at {where}.",
        "resumed": f"Resumed at {where}.",
        "joined": "You joined the session.",
        "left": "You left the session.",
    }.get(update.kind, f"Now at {where}.")


class Massage(
    HabitCommands,
    ClassCommands,
    commands.GroupCog,
    group_name="massage",
    group_description="Massage help at home",
):
    """Questions, guided sessions and lookups (their buttons act by themselves: controls),
    the habit commands and classes."""

    def __init__(self, bot: MassageBot) -> None:
        self.bot = bot
        super().__init__()

    async def cog_load(self) -> None:
        self.start_habits()
        self.start_classes()

    async def cog_unload(self) -> None:
        await self.stop_habits()
        await self.stop_classes()

    # Questions ----------------------------------------------------------------------------

    @app_commands.command(description="Ask about techniques, muscles, pressure or safety")
    @app_commands.describe(question="Your question, for example: where are the rhomboids?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        problem = question_problem(question)
        if problem is not None:
            await interaction.response.send_message(problem, ephemeral=True)
            return
        if await self.bot.cooling_down(interaction):
            return
        update = await self.bot.engine.ask(
            self._question_place(interaction.channel_id, interaction.guild_id, interaction.user),
            str(interaction.user.id), question, _server(interaction.guild_id),
        )  # fmt: skip
        assert update.reply is not None
        in_open = await self.bot.answers_in(interaction.guild_id, interaction.channel_id)
        await interaction.response.send_message(
            **_reply_message(update, question), ephemeral=not in_open
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A mention of the bot, or a direct message, is answered like `/massage ask`."""
        me = self.bot.user
        if message.author.bot or me is None:
            return
        if message.guild is not None and me not in message.mentions:
            return
        guild_id = message.guild.id if message.guild else None
        if not await self.bot.answers_in(guild_id, message.channel.id):
            return
        try:
            await self._answer_message(message)
        except Exception:
            log.exception("answering message %s failed", message.id)
            await _reply(message, content=APOLOGY)

    async def _answer_message(self, message: discord.Message) -> None:
        question = render.strip_mentions(message.content)
        problem = question_problem(question)
        if problem is not None:
            await _reply(message, content=problem)
            return
        wait = self.bot.cooldown.retry_after(message.author.id)
        if wait is not None:
            await _reply(message, content=f"Easy there: give me {max(round(wait), 1)} s.")
            return
        guild_id = message.guild.id if message.guild else None
        place = self._question_place(message.channel.id, guild_id, message.author)
        update = await self.bot.engine.ask(
            place, str(message.author.id), question, _server(guild_id)
        )
        await _reply(message, **_reply_message(update, question))

    def _question_place(
        self, channel_id: int | None, guild_id: int | None, user: discord.abc.User
    ) -> str:
        """Where a question is asked from: the channel, or for a direct message the
        channel of the author's session, so that it is answered in that session's context."""
        here = str(channel_id)
        if guild_id is not None:
            return here
        return self.bot.engine.place_of(str(user.id)) or here

    # Guided sessions ---------------------------------------------------------------------

    @app_commands.command(description="Start a guided routine")
    @app_commands.describe(
        routine="Which routine",
        partner="Who receives the massage (they can ask for more or less pressure)",
        group="A group session that others in the channel can join",
        voice="Speak the steps aloud in the voice or stage channel you are in",
    )
    async def start(
        self,
        interaction: discord.Interaction,
        routine: str,
        partner: discord.User | None = None,
        group: bool = False,
        voice: bool = False,
    ) -> None:
        problem = await self._start_problem(interaction, partner, group)
        if problem is None and voice:
            problem = self.bot.voice_guides.refusal(channel_of(interaction.user))
        if problem is not None:
            await interaction.response.send_message(problem, ephemeral=True)
            return
        try:
            update = await self.bot.engine.start(
                str(interaction.channel_id), str(interaction.user.id), routine, group=group,
                server_id=_server(interaction.guild_id),
                partner=str(partner.id) if partner is not None else None,
            )  # fmt: skip
        except SessionError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        if update.kind == "existing":
            await self._show_existing(interaction, update)
            return
        if partner is None:
            await self.bot.session_messages.post(interaction, update)
        else:
            invitation = INVITATION.format(
                partner=partner.mention, giver=interaction.user.display_name
            )
            await self.bot.session_messages.post(
                interaction, update, content=invitation,
                allowed_mentions=discord.AllowedMentions(users=[partner]),  # asked, not yet in
            )  # fmt: skip
        if voice:
            assert update.session is not None
            await self.bot.voice_guides.guide_aloud(interaction, update.session.id)

    async def _start_problem(
        self, interaction: discord.Interaction, partner: discord.User | None, group: bool
    ) -> str | None:
        if partner is not None and group:
            return "Choose a partner or a group session, not both."
        if (partner is not None or group) and interaction.guild_id is None:
            return "Partner and group sessions take place in a server channel."
        if partner is not None and (partner.bot or partner.id == interaction.user.id):
            return "Your partner is the person receiving the massage: choose someone else."
        place = str(interaction.channel_id)
        if partner is not None and self.bot.engine.find(place, str(partner.id)) is not None:
            return f"{partner.display_name} already has a session in this channel."
        if not await self.bot.answers_in(interaction.guild_id, interaction.channel_id):
            assert interaction.guild_id is not None
            channels = await self.bot.answer_channels(interaction.guild_id)
            listed = ", ".join(f"<#{channel}>" for channel in sorted(channels))
            return f"In this server I guide sessions in {listed}."
        return None

    async def _show_existing(self, interaction: discord.Interaction, update: Update) -> None:
        """Starting again while a session runs here: a link to its message, or, when it has
        none any more, the message posted again."""
        assert self.bot.store is not None and update.session is not None
        location = await self.bot.store.session_message(update.session.id)
        if location is None and self.bot.session_messages.posting(update.session.id):
            await interaction.response.send_message(
                "You already have a session here: its message is on its way.", ephemeral=True
            )
            return
        if location is None:
            await self.bot.session_messages.post(interaction, update)
            return
        server = interaction.guild_id or "@me"
        link = f"https://discord.com/channels/{server}/{location.channel_id}/{location.message_id}"
        await interaction.response.send_message(
            f"You already have a session here ([its message]({link})): {update_note(update)} "
            "Use `/massage stop` to end it first.",
            ephemeral=True,
        )

    @app_commands.command(name="next", description="Go to the next step of your session")
    async def next_step(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "next")

    @app_commands.command(description="Go back one step in your session")
    async def back(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "back")

    @app_commands.command(description="Pause your session's timer")
    async def pause(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "pause")

    @app_commands.command(description="Resume your paused session")
    async def resume(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "resume")

    @app_commands.command(description="End your session, with a summary")
    async def stop(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "stop")

    async def _command(self, interaction: discord.Interaction, action: str) -> None:
        """A session command typed as a slash command: do it (its message follows by itself),
        and say privately what was done."""
        if await self.bot.cooling_down(interaction):
            return
        engine, place = self.bot.engine, str(interaction.channel_id)
        session = engine.find(place, str(interaction.user.id))
        if session is None:
            await interaction.response.send_message(NO_SESSION, ephemeral=True)
            return
        command = {
            "next": engine.next_step,
            "back": engine.previous_step,
            "pause": engine.pause,
            "resume": engine.resume,
            "stop": engine.stop,
        }[action]
        try:
            update = await command(session.id, str(interaction.user.id), place=place)
        except SessionError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.send_message(update_note(update), ephemeral=True)

    # Looking things up --------------------------------------------------------------------

    @app_commands.command(description="List the guided routines")
    async def routines(self, interaction: discord.Interaction) -> None:
        routines = list(self.bot.knowledge.routines.values())
        await interaction.response.send_message(embed=render.routines_embed(routines))

    @app_commands.command(description="Where a muscle is and how to work it")
    @app_commands.describe(name="The muscle (start typing: traps, rhomboids ...)")
    async def muscle(self, interaction: discord.Interaction, name: str) -> None:
        await self._look_up(interaction, "muscle", name)

    @app_commands.command(description="How to do a technique")
    @app_commands.describe(name="The technique (start typing: kneading, effleurage ...)")
    async def technique(self, interaction: discord.Interaction, name: str) -> None:
        await self._look_up(interaction, "technique", name)

    async def _look_up(self, interaction: discord.Interaction, kind: str, name: str) -> None:
        knowledge, typed = self.bot.knowledge, name.strip().lower()
        entries = knowledge.of_kind(kind)
        entry = next((e for e in entries if typed in (e.id, e.title.lower())), None)
        if entry is None:
            found = choices(entries, typed)
            entry = knowledge.entry(found[0].value) if found else None
        if entry is None:
            await interaction.response.send_message(
                f"I don't know a {kind} called {render.shorten(name, 100)!r}. "
                "Start typing and pick one from the list.",
                ephemeral=True,
            )
            return
        entry_id = entry.id
        picture = await self.bot.picture(
            lambda: picture_for_entry(knowledge, entry_id), f"the {kind} {entry_id}"
        )
        embed = render.reply_embed(render.entry_reply(entry), whole=True)
        files = render.picture_files(embed, picture, f"{entry_id}.png")
        await interaction.response.send_message(embed=embed, files=files)

    @muscle.autocomplete("name")
    async def _muscle_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(self.bot.knowledge.of_kind("muscle"), current)

    @technique.autocomplete("name")
    async def _technique_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(self.bot.knowledge.of_kind("technique"), current)

    @start.autocomplete("routine")
    async def _routine_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return choices(list(self.bot.knowledge.routines.values()), current)

    @app_commands.command(description="When to stop and see a professional")
    async def safety(self, interaction: discord.Interaction) -> None:
        red_flags = list(self.bot.knowledge.red_flags)
        await interaction.response.send_message(embed=render.safety_embed(red_flags))

    @app_commands.command(description="What I can do")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(embed=render.help_embed(), ephemeral=True)

def _server(guild_id: int | None) -> str | None:
    return str(guild_id) if guild_id is not None else None


def _reply_message(update: Update, question: str) -> dict[str, Any]:
    """The answer to a question, with suggestion buttons and a note on a paused session."""
    assert update.reply is not None
    embed = render.reply_embed(update.reply, question)
    if update.paused_for_safety:
        embed.add_field(
            name="Session paused",
            value="I paused your session. Press Resume on its message when it is safe to go on.",
        )
    message: dict[str, Any] = {"embed": embed}
    buttons = answer_buttons(update.reply)
    if buttons is not None:
        message["view"] = buttons
    return message


async def _reply(message: discord.Message, **content: Any) -> None:
    """Answer a message in its channel, pinging no one (not even its author)."""
    try:
        await message.reply(**content, mention_author=False)
    except discord.HTTPException as error:
        log.warning("could not answer message %s: %s", message.id, error)


async def setup(bot: MassageBot) -> None:
    await bot.add_cog(Massage(bot))
