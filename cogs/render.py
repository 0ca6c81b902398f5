"""The one place that turns engine data into Discord embeds (buttons: `cogs.controls`)."""

from __future__ import annotations

import io
import re

import discord

from bot.knowledge import Entry, Routine, Safety
from bot.reply import Reply, clock_text
from bot.sessions import SessionView, Summary, Update

PROGRESS_CELLS = 10
PEOPLE_SHOWN = 10
EMBED_TITLE_CHARS = 256
EMBED_DESCRIPTION_CHARS = 4096
FIELD_VALUE_CHARS = 1024
AUTHOR_NAME_CHARS = 256

COLOURS = {
    "answer": discord.Colour.teal(),
    "safety": discord.Colour.red(),
    "clarify": discord.Colour.gold(),
    "fallback": discord.Colour.light_grey(),
}


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"


# Replies --------------------------------------------------------------------------------


def reply_embed(reply: Reply, question: str | None = None, *, whole: bool = False) -> discord.Embed:
    """An answer, a safety note, a clarifying question or the fallback, under the question:
    its lead (the More button shows the rest), or the `whole` text."""
    title = reply.title if reply.kind in ("answer", "safety") else None
    if reply.kind == "safety":
        title = f"\N{WARNING SIGN} {title}"
    embed = discord.Embed(
        title=shorten(title, EMBED_TITLE_CHARS) if title else None,
        description=shorten(reply.text if whole else reply.lead, EMBED_DESCRIPTION_CHARS),
        colour=COLOURS[reply.kind],
    )
    if question:
        embed.set_author(
            name=shorten(
                f"\N{LEFT DOUBLE QUOTATION MARK}{question}\N{RIGHT DOUBLE QUOTATION MARK}",
                AUTHOR_NAME_CHARS,
            )
        )
    return embed


def entry_reply(entry: Entry) -> Reply:
    """An entry's own answer, for a pressed suggestion or `/massage muscle|technique`."""
    kind = "safety" if isinstance(entry, Safety) and entry.red_flag else "answer"
    return Reply(entry.title, kind, entry.text, entry.id, entry.title, 100.0)


def picture_files(embed: discord.Embed, png: bytes | None, filename: str) -> list[discord.File]:
    """The files to send with `embed`: the PNG it then shows as its image, or none."""
    if png is None:
        return []
    embed.set_image(url=f"attachment://{filename}")
    return [discord.File(io.BytesIO(png), filename=filename)]


def advice_embed(reply: Reply, more: bool) -> discord.Embed:
    """A step's advice for the giver when the receiver asks for more or less pressure."""
    wanted = "More pressure" if more else "Less pressure"
    return discord.Embed(
        title=shorten(f"{wanted}: {reply.title}", EMBED_TITLE_CHARS),
        description=shorten(reply.text, EMBED_DESCRIPTION_CHARS),
        colour=COLOURS["answer"],
    )


def routines_embed(routines: list[Routine]) -> discord.Embed:
    """The guided routines, with their length and what they cover."""
    embed = discord.Embed(
        title="Guided routines",
        description="Start one with `/massage start routine:<name> [partner] [group]`.",
        colour=discord.Colour.blurple(),
    )
    for routine in routines[:25]:
        minutes = round(routine.seconds / 60)
        embed.add_field(
            name=shorten(f"{routine.title} ({len(routine.steps)} steps, {minutes} min)", 256),
            value=shorten(routine.summary, 300),
            inline=False,
        )
    return embed


def safety_embed(red_flags: list[Safety]) -> discord.Embed:
    """When to stop and see a professional: every red flag by its title."""
    lines = [f"\N{BULLET} {flag.title}" for flag in red_flags]
    text = (
        "Massage at home is for tired, tight muscles. Stop, and see a doctor or a "
        "professional, when any of these come up:\n\n" + "\n".join(lines) + "\n\n"
        "Ask me about any of them with `/massage ask`, for example *numbness in my arm*. "
        "When one comes up during a session I pause the timer."
    )
    return discord.Embed(
        title="\N{WARNING SIGN} Safety first",
        description=shorten(text, EMBED_DESCRIPTION_CHARS),
        colour=COLOURS["safety"],
    )


HELP_TEXT = """\
I help you give each other a good massage at home.

**Ask** `/massage ask` anything about techniques, muscles, pressure or safety, or mention \
me in a message (or write to me directly).
**Guided sessions** `/massage start` a routine, alone, with a `partner` (they become the \
receiver) or as a `group` others can join. The session message counts each step down, and \
its buttons move it on. The receiver can press *More pressure* or *Less pressure*: the giver \
gets advice for the step.
`/massage next`, `back`, `pause`, `resume` and `stop` work as commands too.
**Look things up** `/massage routines`, `/massage muscle`, `/massage technique`, \
`/massage safety`.

I am not a medical service: for pain, injury or illness, see a professional."""


def help_embed() -> discord.Embed:
    colour = discord.Colour.blurple()
    return discord.Embed(title="Massage bot", description=HELP_TEXT, colour=colour)


# Sessions -------------------------------------------------------------------------------


def progress_bar(done: int, total: int) -> str:
    filled = round(PROGRESS_CELLS * done / total) if total else 0
    return "\N{BLACK LARGE SQUARE}" * filled + "\N{WHITE LARGE SQUARE}" * (PROGRESS_CELLS - filled)


def session_embed(view: SessionView, now: float, *, other_side: bool = False) -> discord.Embed:
    """Step n of m with its instructions, a live countdown and the clock time it ends."""
    step = view.step
    lines = []
    if other_side:
        lines.append("**Now the other side.**")
    if step.side:
        lines.append(f"*The receiver's {step.side} side.*")
    lines += [step.text, ""]
    lines.append(
        f"{progress_bar(view.step_index, view.step_count)} "
        f"step {view.step_index + 1} of {view.step_count}"
    )
    if view.state == "running" and view.due_at is not None:
        lines.append(f"\N{STOPWATCH} Next step <t:{int(view.due_at)}:R>")
    elif view.state == "paused":
        lines.append(
            f"\N{DOUBLE VERTICAL BAR} Paused with {clock_text(view.seconds_left)} left on this step"
        )
    elif view.state == "time_up":
        lines.append("\N{BELL} Time is up: press Next to finish, or Back to repeat a step.")
    if view.state in ("running", "paused"):
        ends = int(now + view.seconds_left + view.later_seconds)
        resumed = " if resumed now" if view.state == "paused" else ""
        lines.append(f"\N{CHEQUERED FLAG} Ends around <t:{ends}:t>{resumed}")
    embed = discord.Embed(
        title=shorten(f"{view.routine_title}: {step.title}", EMBED_TITLE_CHARS),
        description=shorten("\n".join(lines), EMBED_DESCRIPTION_CHARS),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="People", value=people_line(view), inline=False)
    if view.invited is not None and view.invite_expires_at is not None:
        embed.add_field(
            name="Invitation",
            value=f"<@{view.invited}>, press Accept to receive this massage "
            f"(open until <t:{int(view.invite_expires_at)}:t>).",
            inline=False,
        )
    embed.set_footer(text=f"session {view.id}")
    return embed


def people_line(view: SessionView) -> str:
    """Who is in the session (mentions in an embed ping no one)."""
    if view.group:
        others = [f"<@{p.user_id}>" for p in view.participants if p.user_id != view.host]
        shown = ", ".join(others[:PEOPLE_SHOWN]) + (" ..." if len(others) > PEOPLE_SHOWN else "")
        count = f"{len(view.participants)} of {view.participant_limit} in the group"
        line = f"Host <@{view.host}>, {count}" + (f": {shown}" if shown else "")
        return shorten(line, FIELD_VALUE_CHARS)
    return ", ".join(f"{p.role} <@{p.user_id}>" for p in view.participants)


def summary_embed(summary: Summary) -> discord.Embed:
    outcome = {
        "completed": "Routine complete. Well done, both of you!",
        "stopped": "Session stopped.",
        "abandoned": "Session ended after an hour without a touch.",
    }[summary.outcome]
    text = (
        f"{outcome}\n\nSteps done: {summary.steps_done} of {summary.step_count}, "
        f"about {summary.minutes:.0f} minutes.\n\n**Next time:** {summary.next_time}"
    )
    return discord.Embed(
        title=shorten(summary.routine_title, EMBED_TITLE_CHARS),
        description=text,
        colour=discord.Colour.green(),
    )


_MENTION = re.compile(r"<@[!&]?\d+>|<#\d+>")


def strip_mentions(text: str) -> str:
    """A message's text without user, role and channel mentions."""
    return " ".join(_MENTION.sub(" ", text).split())


def update_embed(update: Update, now: float) -> discord.Embed:
    """The session message's embed after `update`: the summary once it has ended, else its
    step (with last time's pressure on a new session)."""
    if update.summary is not None:
        return summary_embed(update.summary)
    assert update.session is not None
    embed = session_embed(update.session, now, other_side=update.other_side)
    if update.usual_pressure is not None:
        embed.description = shorten(
            f"*Last time, {update.usual_pressure} pressure suited.*\n{embed.description}",
            EMBED_DESCRIPTION_CHARS,
        )
    return embed
