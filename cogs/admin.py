"""`/massage-admin`, for a server's curators (Manage Server): answer channels, the size of
group sessions, the questions nobody could answer yet, and reloading the knowledge base (in
every process of the bot)."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import MassageBot
from bot.knowledge import KnowledgeError
from bot.sessions import PERSONAL_PARTICIPANT_LIMIT
from bot.stats import WEEKS_CHARTED, weekly_chart
from bot.store import ServerSettings, UnansweredQuestion
from cogs import render

log = logging.getLogger(__name__)

UNANSWERED_SHOWN = 25
GROUP_SIZE_MIN, GROUP_SIZE_MAX = PERSONAL_PARTICIPANT_LIMIT, 50  # people in a group session
PROBLEMS_CHARS = render.EMBED_DESCRIPTION_CHARS - 200  # room for the heading and "N more"


def problems_text(problems: list[str]) -> str:
    """`FILE:LINE: message` lines in a code block that fits an embed, with "... N more"."""
    shown: list[str] = []
    used = 0
    for problem in problems:
        line = render.shorten(problem, 300)
        if used + len(line) + 1 > PROBLEMS_CHARS:
            break
        shown.append(line)
        used += len(line) + 1
    more = len(problems) - len(shown)
    text = "```\n" + "\n".join(shown).replace("```", "'''") + "\n```"
    return text + (f"... and {more} more (run `massage-bot kb check` to see all)" if more else "")


def unanswered_line(question: UnansweredQuestion) -> str:
    """How often it was asked, in bold, then the question (shortened)."""
    asked = f"**{question.times_asked}\N{MULTIPLICATION SIGN}**"
    return f"{asked} {render.shorten(question.question, 140)}"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Admin(
    commands.GroupCog,
    group_name="massage-admin",
    group_description="For curators: channels, group size, stats, unanswered questions, reload",
):
    """Server settings and knowledge upkeep."""

    channels = app_commands.Group(name="channels", description="The channels where I answer")

    def __init__(self, bot: MassageBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Curators only, in a server: checked here, not only by how Discord shows the
        commands (a hand-made request would get past that)."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    @channels.command(name="add", description="Answer questions and guide sessions here")
    @app_commands.describe(channel="A text channel")
    async def add_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> None:
        assert interaction.guild_id is not None
        await self.bot.set_answer_channel(interaction.guild_id, channel.id, True)
        await self._list_channels(interaction, f"I now answer in {channel.mention}.")

    @channels.command(name="remove", description="Stop answering in a channel")
    @app_commands.describe(channel="A text channel")
    async def remove_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> None:
        assert interaction.guild_id is not None
        await self.bot.set_answer_channel(interaction.guild_id, channel.id, False)
        await self._list_channels(interaction, f"{channel.mention} is off my list.")

    @channels.command(name="list", description="Where I answer in this server")
    async def list_channels(self, interaction: discord.Interaction) -> None:
        await self._list_channels(interaction, "")

    async def _list_channels(self, interaction: discord.Interaction, first: str) -> None:
        assert interaction.guild_id is not None
        channels = sorted(await self.bot.answer_channels(interaction.guild_id))
        if channels:
            where = (
                "I answer in "
                + ", ".join(f"<#{c}>" for c in channels)
                + (". Elsewhere, slash commands are answered privately and mentions not at all.")
            )
        else:
            where = "I answer in every channel (add channels to answer only there)."
        text = f"{first}\n{where}" if first else where
        await interaction.response.send_message(render.shorten(text, 2000), ephemeral=True)

    @app_commands.command(
        name="group-size", description="How many people a new group session here takes"
    )
    @app_commands.describe(people=f"{GROUP_SIZE_MIN} to {GROUP_SIZE_MAX} (leave out to see it)")
    async def group_size(
        self,
        interaction: discord.Interaction,
        people: app_commands.Range[int, GROUP_SIZE_MIN, GROUP_SIZE_MAX] | None = None,
    ) -> None:
        assert self.bot.store is not None
        server_id = str(interaction.guild_id)
        if people is None:
            limit = (await self.bot.store.get_server_settings(server_id)).participant_limit
            text = f"Group sessions here take up to {limit} people."
        else:
            await self.bot.store.set_server_settings(server_id, ServerSettings(people))
            text = (f"New group sessions here take up to {people} people "
                    "(those running keep their size).")  # fmt: skip
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(description="The questions I could not answer here, most asked first")
    async def unanswered(self, interaction: discord.Interaction) -> None:
        assert self.bot.store is not None
        questions = await self.bot.store.unanswered_questions(
            UNANSWERED_SHOWN, str(interaction.guild_id)
        )
        if not questions:
            await interaction.response.send_message(
                "No unanswered questions in this server so far.", ephemeral=True
            )
            return
        lines = [unanswered_line(q) for q in questions]
        embed = discord.Embed(
            title="Unanswered questions",
            description=render.shorten("\n".join(lines), render.EMBED_DESCRIPTION_CHARS),
            colour=discord.Colour.light_grey(),
        )
        embed.set_footer(text="Add them to the knowledge files, then /massage-admin reload.")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(description="Sessions and people per week, routines, unanswered topics")
    async def stats(self, interaction: discord.Interaction) -> None:
        report = await self.bot.habits.server_report(str(interaction.guild_id))
        numbers = report.numbers
        embed = discord.Embed(
            title=f"This server, the last {WEEKS_CHARTED} weeks", colour=discord.Colour.teal()
        )
        embed.add_field(name="Sessions", value=str(sum(numbers.weekly_sessions)))
        embed.add_field(name="Sessions this week", value=str(numbers.weekly_sessions[-1]))
        embed.add_field(name="People this week", value=str(numbers.weekly_people[-1]))
        embed.add_field(
            name="People per week, oldest first",
            value=" ".join(str(people) for people in numbers.weekly_people),
            inline=False,
        )
        routines = self.bot.knowledge.routines
        used = [
            f"{render.shorten(routines[r].title if r in routines else r, 80)}: {count}"
            for r, count in numbers.routines[:5]
        ]
        embed.add_field(name="Most-used routines", value="\n".join(used) or "None yet",
                        inline=False)  # fmt: skip
        unanswered = [unanswered_line(q) for q in report.unanswered]
        embed.add_field(
            name="Most-asked questions I could not answer",
            value=render.shorten("\n".join(unanswered), 1024) or "None so far",
            inline=False,
        )
        chart = await asyncio.to_thread(weekly_chart, numbers.weekly_sessions, "Sessions per week")
        files = render.picture_files(embed, chart, "server-weeks.png")
        await interaction.response.send_message(embed=embed, files=files, ephemeral=True)

    @app_commands.command(description="Reload the knowledge base (kept as it is if broken)")
    async def reload(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            knowledge = await self.bot.reload_knowledge()
        except KnowledgeError as error:
            problems = [str(problem) for problem in error.problems]
            log.warning("reload refused: %d problems in the knowledge files", len(problems))
            embed = discord.Embed(
                title=f"Kept the current knowledge: {len(problems)} problem(s) in the files",
                description=problems_text(problems),
                colour=discord.Colour.red(),
            )
            await interaction.followup.send(embed=embed, ephemeral=True)
            return
        await interaction.followup.send(
            f"Reloaded: {len(knowledge.entries)} entries, {len(knowledge.routines)} routine(s). "
            "Running sessions keep the routine they started with.",
            ephemeral=True,
        )


async def setup(bot: MassageBot) -> None:
    await bot.add_cog(Admin(bot))
