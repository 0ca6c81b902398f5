"""Buttons: each carries what it needs in its custom id, and acts by itself when pressed.

`massage:s:<session>:<action>[:<step>]` moves a session (Next and Back also carry the step
they were pressed on), `massage:a:<entry>` shows a suggested entry, `massage:more:<entry>`
the whole of an answer cut short, `massage:forget:<user>` confirms forget-me. The state
lives in the store, so a button keeps working after a restart. Every press runs inside
the bot's one error boundary.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.reply import Reply
from bot.sessions import SessionEngine, SessionError, SessionView, Update
from cogs import render
from cogs.classes import end_class_event

if TYPE_CHECKING:
    from bot.client import MassageBot

STEP_PICTURE = "step.png"
BUTTON_LABEL_CHARS = 80
NOT_YOURS = (
    "Only the people in this session can use its buttons. Start your own with `/massage start`."
)
ELSEWHERE = "That session's controls work only in its own channel."

_GREY, _BLUE, _GREEN, _RED = (
    discord.ButtonStyle.secondary,
    discord.ButtonStyle.primary,
    discord.ButtonStyle.success,
    discord.ButtonStyle.danger,
)
SESSION_ACTIONS: dict[str, tuple[str, discord.ButtonStyle, int]] = {
    "back": ("Back", _GREY, 0),
    "pause": ("Pause", _GREY, 0),
    "resume": ("Resume", _GREY, 0),
    "next": ("Next", _BLUE, 0),
    "more": ("More pressure", _GREEN, 1),
    "less": ("Less pressure", _GREEN, 1),
    "stop": ("Stop", _RED, 1),
    "join": ("Join", _GREY, 2),
    "leave": ("Leave", _GREY, 2),
    "accept": ("Accept", _GREEN, 2),
    "decline": ("Decline", _GREY, 2),
}
SESSION_TEMPLATE = (
    r"massage:s:(?P<session>[0-9a-f]{1,32})"
    rf":(?P<action>{'|'.join(SESSION_ACTIONS)})(?::(?P<step>[0-9]{{1,3}}))?"
)
ENTRY_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"
ANSWER_TEMPLATE = rf"massage:a:(?P<entry>{ENTRY_ID})"
MORE_TEMPLATE = rf"massage:more:(?P<entry>{ENTRY_ID})"
FORGET_TEMPLATE = r"massage:forget:(?P<user>[0-9]{1,20})"


def client_of(interaction: discord.Interaction) -> MassageBot:
    return interaction.client  # type: ignore[return-value]


class _Guarded:
    """A button whose work (`act`) runs inside the bot's one error boundary."""

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = client_of(interaction)
        try:
            await self.act(bot, interaction)
        except Exception as error:
            await bot.on_interaction_error(interaction, error)

    async def act(self, bot: MassageBot, interaction: discord.Interaction) -> None:
        raise NotImplementedError


# Sessions -----------------------------------------------------------------------------


class SessionButton(
    _Guarded, discord.ui.DynamicItem[discord.ui.Button[Any]], template=SESSION_TEMPLATE
):
    """Back, Pause/Resume, Next, More/Less pressure, Stop, Join/Leave, Accept/Decline."""

    def __init__(self, session_id: str, action: str, step: int | None = None) -> None:
        label, style, row = SESSION_ACTIONS[action]
        custom_id = f"massage:s:{session_id}:{action}" + ("" if step is None else f":{step}")
        super().__init__(discord.ui.Button(label=label, style=style, row=row, custom_id=custom_id))
        self.session_id = session_id
        self.action = action
        self.step = step

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> SessionButton:
        step = int(match["step"]) if match["step"] is not None else None
        return cls(match["session"], match["action"], step)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Presses come at most as fast as the cooldown allows, and only from the session's
        own server and channel (Discord's client sends no other, but anyone can forge one)."""
        bot = client_of(interaction)
        if await bot.cooling_down(interaction):
            return False
        view = bot.engine.get(self.session_id)
        if view is None:
            return True  # ended: the engine says so
        server = str(interaction.guild_id) if interaction.guild_id is not None else None
        if (server, str(interaction.channel_id)) != (view.server_id, view.place):
            await interaction.response.send_message(ELSEWHERE, ephemeral=True)
            return False
        user_id = str(interaction.user.id)
        outsider = all(p.user_id != user_id for p in view.participants)
        joining = self.action in ("join", "accept", "decline")
        if outsider and not joining:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return False
        return True

    async def act(self, bot: MassageBot, interaction: discord.Interaction) -> None:
        try:
            update = await self._apply(bot.engine, str(interaction.user.id))
        except SessionError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        if self.action in ("more", "less"):
            await _send_advice(interaction, update, more=self.action == "more")
            return
        if self.action in ("join", "leave"):  # said privately; the message follows by edit
            await interaction.response.send_message(_membership_note(update), ephemeral=True)
            return
        await bot.session_messages.respond(interaction, update)

    async def _apply(self, engine: SessionEngine, user_id: str) -> Update:
        session_id, action = self.session_id, self.action
        if action == "next":
            return await engine.next_step(session_id, user_id, at_step=self.step)
        if action == "back":
            return await engine.previous_step(session_id, user_id, at_step=self.step)
        if action in ("accept", "decline"):
            return await engine.answer_invitation(session_id, user_id, accept=action == "accept")
        command = {
            "pause": engine.pause,
            "resume": engine.resume,
            "stop": engine.stop,
            "more": engine.more_pressure,
            "less": engine.less_pressure,
            "join": engine.join,
            "leave": engine.leave,
        }[action]
        return await command(session_id, user_id)


def _membership_note(update: Update) -> str:
    """What joining or leaving a group session did, for the person who pressed."""
    view = update.session
    if update.summary is not None or view is None:
        return "You left, the last one out: the session has ended."
    if update.kind == "joined":
        people = len(view.participants)
        return f"You joined {view.routine_title}: {people} people are in. Follow the message."
    return f"You left {view.routine_title}."


async def _send_advice(interaction: discord.Interaction, update: Update, *, more: bool) -> None:
    """The receiver's request reaches the giver, the one mention the bot makes on purpose,
    and is said aloud when the session is spoken in a voice channel."""
    assert update.session is not None and update.reply is not None
    embed = render.advice_embed(update.reply, more)
    user_id = str(interaction.user.id)
    me = next(p for p in update.session.participants if p.user_id == user_id)
    givers = [p.user_id for p in update.session.participants if p.role == "giver"]
    if me.role != "receiver" or not givers:
        await interaction.response.send_message(embed=embed, ephemeral=True)
        return
    wanted = "more" if more else "less"
    await interaction.response.send_message(
        content=" ".join(f"<@{giver}>" for giver in givers)
        + f" {interaction.user.display_name} would like {wanted} pressure.",
        embed=embed,
        allowed_mentions=discord.AllowedMentions(
            users=[discord.Object(int(giver)) for giver in givers]
        ),
    )
    client_of(interaction).voice_guides.advise(update.session.id, update.reply.text, more=more)


def session_buttons(view: SessionView) -> discord.ui.View:
    """Back, Pause/Resume, Next; More, Less, Stop; Join/Leave for a group, Accept/Decline
    while a partner is invited."""
    step = view.step_index
    actions: list[tuple[str, int | None]] = [
        ("back", step),
        ("resume" if view.state == "paused" else "pause", None),
        ("next", step),
        ("more", None),
        ("less", None),
        ("stop", None),
    ]
    if view.group:
        actions += [("join", None), ("leave", None)]
    if view.invited is not None:
        actions += [("accept", None), ("decline", None)]
    buttons = discord.ui.View(timeout=None)
    for action, at_step in actions:
        buttons.add_item(SessionButton(view.id, action, at_step))
    return buttons


def session_message(
    update: Update, now: float, picture: bytes | None, *, new: bool = False
) -> dict[str, Any]:
    """Keyword arguments to send (`new`) or edit the session message after `update`, with
    the step's `picture` (a PNG) as the embed's image.

    An edit always names the message's files (`attachments`): the picture, or none. Left
    out, Discord keeps the old file, which clients may then also show outside the edited
    embed (discord/discord-api-docs#5675).
    """
    files = "files" if new else "attachments"
    embed = render.update_embed(update, now)
    if update.summary is not None:
        return {"embed": embed, "view": None, files: []}
    assert update.session is not None
    return {
        "embed": embed,
        "view": session_buttons(update.session),
        files: render.picture_files(embed, picture, STEP_PICTURE),
    }


# Answers ------------------------------------------------------------------------------

GONE = "That answer is no longer in my knowledge base; please ask again."


class AnswerButton(
    _Guarded, discord.ui.DynamicItem[discord.ui.Button[Any]], template=ANSWER_TEMPLATE
):
    """A suggestion: what a `clarify` may have meant, or what else a message asked. Pressing
    it makes the message that entry's answer."""

    def __init__(self, entry_id: str, title: str = "") -> None:
        label = render.shorten(title or entry_id, BUTTON_LABEL_CHARS)
        button = discord.ui.Button(label=label, style=_GREY, custom_id=f"massage:a:{entry_id}")
        super().__init__(button)
        self.entry_id = entry_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> AnswerButton:
        return cls(match["entry"], item.label or "")

    async def act(self, bot: MassageBot, interaction: discord.Interaction) -> None:
        entry = bot.knowledge.entry(self.entry_id)
        if entry is None:
            await interaction.response.send_message(GONE, ephemeral=True)
            return
        reply = render.entry_reply(entry)
        embed = render.reply_embed(reply)
        asked = interaction.message.embeds if interaction.message else []
        if asked and asked[0].author.name:  # keep the question above its answer
            embed.set_author(name=asked[0].author.name)
        await interaction.response.edit_message(embed=embed, view=answer_buttons(reply))


class MoreButton(_Guarded, discord.ui.DynamicItem[discord.ui.Button[Any]], template=MORE_TEMPLATE):
    """Under an answer shown cut short: pressing it shows the whole answer, buttons kept."""

    def __init__(self, entry_id: str) -> None:
        button = discord.ui.Button(label="More", style=_BLUE, custom_id=f"massage:more:{entry_id}")
        super().__init__(button)
        self.entry_id = entry_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> MoreButton:
        return cls(match["entry"])

    async def act(self, bot: MassageBot, interaction: discord.Interaction) -> None:
        entry = bot.knowledge.entry(self.entry_id)
        message = interaction.message
        if entry is None or message is None:
            await interaction.response.send_message(GONE, ephemeral=True)
            return
        shown = message.embeds[0] if message.embeds else None
        embed = render.reply_embed(render.entry_reply(entry), whole=True)
        if shown is not None and shown.author.name:
            embed.set_author(name=shown.author.name)
        if shown is not None and shown.title:
            embed.title, embed.colour = shown.title, shown.colour
        buttons = discord.ui.View.from_message(message, timeout=None)
        for item in list(buttons.children):
            if getattr(item, "custom_id", None) == f"massage:more:{self.entry_id}":
                buttons.remove_item(item)
        await interaction.response.edit_message(
            embed=embed, view=buttons if buttons.children else None
        )


def answer_buttons(reply: Reply) -> discord.ui.View | None:
    """More, when the answer was cut short; and one button per suggestion (four at most):
    what a `clarify` may have meant, or what else the message asked about."""
    buttons = discord.ui.View(timeout=None)
    if reply.rest and reply.id is not None:
        buttons.add_item(MoreButton(reply.id))
    if reply.kind in ("clarify", "answer"):
        for suggestion in reply.suggestions[:4]:
            buttons.add_item(AnswerButton(suggestion.id, suggestion.title))
    return buttons if buttons.children else None


# People's own data ----------------------------------------------------------------------


class ForgetButton(
    _Guarded, discord.ui.DynamicItem[discord.ui.Button[Any]], template=FORGET_TEMPLATE
):
    """Confirms `/massage forget-me`; only the person who asked can press it."""

    def __init__(self, user_id: str) -> None:
        custom_id = f"massage:forget:{user_id}"
        style = discord.ButtonStyle.danger
        super().__init__(discord.ui.Button(label="Forget me", style=style, custom_id=custom_id))
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> ForgetButton:
        return cls(match["user"])

    async def act(self, bot: MassageBot, interaction: discord.Interaction) -> None:
        if str(interaction.user.id) != self.user_id:
            await interaction.response.send_message(
                "That button is someone else's.", ephemeral=True
            )
            return
        cancelled = await bot.forget_person(self.user_id)
        hosting = {0: "", 1: " The class you were to host is cancelled."}.get(
            len(cancelled), f" The {len(cancelled)} classes you were to host are cancelled."
        )
        await interaction.response.edit_message(
            content="Done: I have forgotten you. Past sessions keep only an anonymous place."
            + hosting,
            view=None,
        )
        for scheduled in cancelled:
            if scheduled.event_id is not None:
                await end_class_event(bot, int(scheduled.server_id), scheduled.event_id, "cancel")


DYNAMIC_ITEMS = (SessionButton, AnswerButton, MoreButton, ForgetButton)
