"""A fake Discord on 127.0.0.1 that the real discord.py client logs into.

It serves the REST API (v10) under ``/api/v10`` and the gateway websocket at ``/gateway``,
holds a small world (users, guilds with channels, roles and members, messages), sends
interactions and messages as Discord would, and records every REST call the bot makes.
Like real Discord it refuses request bodies that break Discord's limits (see
``discord_spec.py``); refusals are kept in :attr:`FakeDiscord.refusals`.

Usage, with the ``fake`` fixture of ``conftest.py`` (which builds a small world, starts the
fake and points discord.py at it)::

    async def test_ask(fake: FakeDiscord) -> None:
        alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
        async with fake.run(MassageBot()):  # logs the bot in, waits until it is ready
            interaction = await fake.slash(alice, general, "massage", "ask",
                                           question="how do I use my fist?")
            reply = await interaction.response()  # the bot's callback, within 3 s
            assert "fist" in reply.json["data"]["content"]

Add to the world (``add_user``, ``add_guild``, ``add_role``, ``add_member``) before the bot
logs in: the gateway sends it at IDENTIFY.

Shards as on Discord: a connection IDENTIFYs with its shard pair, READY echoes it with the
guilds of that shard (``shard_of``: the guild id's timestamp bits modulo the count), and a
guild's events (interactions, messages, guild and channel events) go only to the connection
owning its shard, direct messages to shard 0. So several bot processes, each running some
shards, can share one fake.

Guilds may have voice and stage channels (``add_guild(..., voice_channels=[...])``,
``add_channel``): users ``join_voice`` and ``leave_voice``, and the bot's own Voice State
Updates (gateway op 4, kept in ``voice_requests``) are answered as Discord does, up to the
VOICE_SERVER_UPDATE that starts a voice connection (no voice server listens: pass
``channel.connect`` a ``VoiceProtocol`` of the test's); on a stage the bot steps up to speak
or asks to (``PATCH /guilds/{id}/voice-states/@me``). Guild scheduled events are served as on
Discord (create, list, edit, start, end, cancel, delete, interested users), moderators make and
delete them (``create_scheduled_event``, ``delete_scheduled_event``) and users
``mark_interested``. Gateway events reach the bot only as its intents allow. Direct messages to
users who closed them or share no guild with the bot are refused (403 50007), and
``FakeDiscord(global_rate_limit=50)`` holds the bot to Discord's global rate limit, counting the
429s in ``rate_limited``.

Discord can be made to fail on purpose (see "faults" in :class:`FakeDiscord`): a route answers
an error, a rate limit or late (``fail``, ``rate_limit``, ``delay``), a response waits until
the test lets it go (``hold``), an interaction expires (``callback_too_late``, ``expire``), the
gateway drops (``close_gateway``, ``request_reconnect``, ``invalidate_session``), and moderators
delete messages and channels or take permissions away (``delete_message``, ``delete_channel``,
``set_permissions``)::

    edit = "/channels/{channel_id}/messages/{message_id}"   # Discord's path template
    fault = fake.fail("PATCH", edit, 403, code=50013)       # the next edit: Missing Permissions
    with pytest.raises(discord.Forbidden):
        await message.edit(content="...")
    assert fault.fired == 1 and fake.calls[-1].fault is fault
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import http
import itertools
import json
import logging
import mimetypes
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import discord
import pytest
from aiohttp import WSMsgType, web

from tests.e2e.discord_spec import DiscordSpec, load_spec, reasons

log = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]
Handler = Callable[..., Awaitable[web.Response]]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
INTERACTION_DEADLINE = 3.0
"""Seconds a bot has to acknowledge an interaction."""

# intents (https://discord.com/developers/docs/events/gateway#gateway-intents)
GUILD_MEMBERS = 1 << 1
GUILD_VOICE_STATES = 1 << 7
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
GUILD_SCHEDULED_EVENTS = 1 << 16
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

# message flags
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# interaction and callback types
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 2, 3, 4
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2

# channel types
GUILD_TEXT, DM, GUILD_VOICE, GUILD_STAGE_VOICE = 0, 1, 2, 13
VOCAL_CHANNEL_TYPES = {GUILD_VOICE, GUILD_STAGE_VOICE}

# guild scheduled events: where they happen, their status, their only privacy level
STAGE_INSTANCE, VOICE, EXTERNAL = 1, 2, 3
EVENT_SCHEDULED, EVENT_ACTIVE, EVENT_COMPLETED, EVENT_CANCELED = 1, 2, 3, 4
GUILD_ONLY = 2
EVENT_STATUS_CHANGES = {
    EVENT_SCHEDULED: {EVENT_SCHEDULED, EVENT_ACTIVE, EVENT_CANCELED},
    EVENT_ACTIVE: {EVENT_ACTIVE, EVENT_COMPLETED},
}
"""The statuses an event may be given from each status (Discord's rule: SCHEDULED becomes
ACTIVE or CANCELED, ACTIVE becomes COMPLETED; a completed or canceled event changes no more)."""
MAX_OPEN_EVENTS = 100
"""Scheduled and active events a guild may have at once."""

EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, read_message_history=True, add_reactions=True,
    embed_links=True, attach_files=True, use_application_commands=True, connect=True,
    speak=True,
).value
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | discord.Permissions(
    use_external_emojis=True, send_messages_in_threads=True, manage_messages=True,
).value
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
SEND_MESSAGES = discord.Permissions(send_messages=True).value
ATTACH_FILES = discord.Permissions(attach_files=True).value
READ_MESSAGE_HISTORY = discord.Permissions(read_message_history=True).value
MANAGE_MESSAGES = discord.Permissions(manage_messages=True).value
CONNECT = discord.Permissions(connect=True).value
MUTE_MEMBERS = discord.Permissions(mute_members=True).value
REQUEST_TO_SPEAK = discord.Permissions(request_to_speak=True).value
CREATE_EVENTS = discord.Permissions(create_events=True).value
MANAGE_EVENTS = discord.Permissions(manage_events=True).value
STAGE_MODERATOR = discord.Permissions(manage_channels=True, mute_members=True,
                                      move_members=True).value
"""What it takes to host a stage event (Manage Channels, Mute Members, Move Members)."""

ERROR_MESSAGES = {
    10003: "Unknown Channel",
    10008: "Unknown Message",
    10015: "Unknown Webhook",
    10062: "Unknown interaction",
    10070: "Unknown Guild Scheduled Event",
    20028: "This channel has hit the write rate limit.",
    30038: "Maximum number of uncompleted guild scheduled events reached (100)",
    40060: "Interaction has already been acknowledged.",
    50001: "Missing Access",
    50007: "Cannot send messages to this user",
    50013: "Missing Permissions",
    50027: "Invalid Webhook Token",
    50035: "Invalid Form Body",
}
"""Discord's messages for the JSON error codes a fault is most likely to need."""

RateLimitScope = Literal["user", "shared", "global"]
GUILDS = 1 << 0
FATAL_CLOSE_CODES = {4004, 4010, 4011, 4012, 4013, 4014}
"""Gateway close codes after which a client must not reconnect."""
NEW_SESSION_CLOSE_CODES = {4007, 4009}
"""Gateway close codes after which a client must IDENTIFY again (no RESUME)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a REST handler; ``{name}`` in ``pattern`` captures one path segment."""

    def register(handler: Handler) -> Handler:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        _ROUTES.append((method, re.compile(regex), handler))
        return handler

    return register


@dataclass(eq=False)
class User:
    """A Discord user (or the bot)."""

    id: int
    name: str
    bot: bool = False
    accepts_dms: bool = True
    """False: the user closed their direct messages (or blocked the bot), so the bot's
    messages to them are refused with 403 50007, as to users who share no guild with it."""

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> Json:
        return {
            "id": str(self.id), "username": self.name, "global_name": self.name.title(),
            "discriminator": "0", "avatar": None, "bot": self.bot, "public_flags": 0,
        }


@dataclass(eq=False)
class Role:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> Json:
        return {
            "id": str(self.id), "name": self.name, "permissions": str(self.permissions),
            "position": self.position, "color": 0, "colors": {"primary_color": 0},
            "hoist": False, "managed": False, "mentionable": False, "flags": 0,
            "icon": None, "unicode_emoji": None,
        }


@dataclass(eq=False)
class Channel:
    """A guild channel (text, voice or stage: ``type``), or a DM channel when ``guild`` is
    None."""

    id: int
    name: str
    guild: Guild | None = None
    recipient: User | None = None
    overwrites: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """Permission overwrites by role or user id: (type 0 role / 1 member, allow, deny)."""
    deleted: bool = False
    type: int = GUILD_TEXT
    """``GUILD_TEXT``, ``GUILD_VOICE`` or ``GUILD_STAGE_VOICE`` (``DM`` without a guild)."""
    user_limit: int = 0
    """For a voice channel: how many may be in it at once (0: no limit)."""

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def vocal(self) -> bool:
        """A voice or stage channel."""
        return self.type in VOCAL_CHANNEL_TYPES

    def payload(self) -> Json:
        if self.guild is None:
            assert self.recipient is not None
            return {"id": str(self.id), "type": DM, "recipients": [self.recipient.payload()],
                    "last_message_id": None, "flags": 0}
        overwrites = [{"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}
                      for target, (kind, allow, deny) in self.overwrites.items()]
        position = self.guild.channels.index(self) if self in self.guild.channels else 0
        data: Json = {
            "id": str(self.id), "type": self.type, "name": self.name,
            "guild_id": str(self.guild.id), "position": position,
            "permission_overwrites": overwrites, "nsfw": False, "topic": None,
            "parent_id": None, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0,
        }
        if self.vocal:
            data |= {"bitrate": 64000, "user_limit": self.user_limit, "rtc_region": None,
                     "video_quality_mode": 1}
        return data


@dataclass(eq=False)
class Member:
    """A user's membership of a guild."""

    user: User
    guild: Guild
    roles: list[Role] = field(default_factory=list)

    @property
    def permissions(self) -> int:
        """Guild-wide permissions (no channel overwrites in the fake)."""
        if self.user is self.guild.owner:
            return ALL_PERMISSIONS
        value = self.guild.everyone.permissions
        for role in self.roles:
            value |= role.permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def permissions_in(self, channel: Channel) -> int:
        """Permissions in ``channel``: @everyone's, then the roles', then the member's own
        overwrite, as Discord computes them."""
        value = self.permissions
        if value & ADMINISTRATOR:
            return value
        overwrites = channel.overwrites
        if self.guild.id in overwrites:
            _, allow, deny = overwrites[self.guild.id]
            value = (value & ~deny) | allow
        allow = deny = 0
        for role in self.roles:
            if role.id in overwrites:
                allow, deny = allow | overwrites[role.id][1], deny | overwrites[role.id][2]
        value = (value & ~deny) | allow
        if self.user.id in overwrites:
            _, allow, deny = overwrites[self.user.id]
            value = (value & ~deny) | allow
        return value

    def payload(self, *, with_user: bool = True) -> Json:
        data: Json = {
            "roles": [str(r.id) for r in self.roles], "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "flags": 0, "nick": None, "avatar": None,
            "pending": False, "premium_since": None, "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass(eq=False)
class Guild:
    """A guild with its channels, roles and members (the bot is always a member), who is in
    its voice channels, and its scheduled events."""

    id: int
    name: str
    owner: User
    channels: list[Channel] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    voice_states: dict[int, VoiceState] = field(default_factory=dict)
    """Who is in a voice or stage channel, by user id."""
    scheduled_events: dict[int, ScheduledEvent] = field(default_factory=dict)
    """Its scheduled events (completed and canceled ones too; not deleted ones), by id."""

    @property
    def everyone(self) -> Role:
        return self.roles[0]

    def channel(self, name: str) -> Channel:
        """The channel called ``name``."""
        return next(c for c in self.channels if c.name == name)

    def role(self, name: str) -> Role:
        """The role called ``name``."""
        return next(r for r in self.roles if r.name == name)

    def member(self, user: User) -> Member:
        """``user``'s membership (KeyError if they are not a member)."""
        return self.members[user.id]

    def scheduled_event(self, name: str) -> ScheduledEvent:
        """The scheduled event called ``name`` (the latest, if several are)."""
        return next(e for e in reversed(self.scheduled_events.values()) if e.name == name)

    def visible_events(self, user: User) -> list[ScheduledEvent]:
        """The scheduled events ``user`` may see: not those in channels hidden from them."""
        member = self.members[user.id]
        return [e for e in self.scheduled_events.values()
                if e.channel is None or member.permissions_in(e.channel) & VIEW_CHANNEL]

    def payload(self, bot: User, *, all_members: bool) -> Json:
        """The GUILD_CREATE payload; without the members intent only the bot's member and
        those in voice channels (as Discord sends them)."""
        members = list(self.members.values()) if all_members else [
            m for m in self.members.values() if m.user is bot or m.user.id in self.voice_states
        ]
        return {
            "id": str(self.id), "name": self.name, "icon": None, "splash": None,
            "discovery_splash": None, "banner": None, "description": None,
            "owner_id": str(self.owner.id), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 1,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "premium_tier": 0,
            "premium_subscription_count": 0, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None,
            "public_updates_channel_id": None, "preferred_locale": "en-US", "features": [],
            "vanity_url_code": None, "max_members": 500000, "max_video_channel_users": 25,
            "application_id": None, "large": False, "unavailable": False,
            "member_count": len(self.members), "joined_at": "2024-01-01T00:00:00+00:00",
            "roles": [r.payload() for r in self.roles],
            "channels": [c.payload() for c in self.channels],
            "members": [m.payload() for m in members],
            "emojis": [], "stickers": [], "threads": [], "presences": [],
            "voice_states": [v.payload() for v in self.voice_states.values()],
            "stage_instances": [],
            "guild_scheduled_events": [e.payload() for e in self.visible_events(bot)],
            "soundboard_sounds": [],
        }


@dataclass(eq=False)
class VoiceState:
    """A user (or the bot) in a guild's voice or stage channel."""

    user: User
    channel: Channel
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    """The user's voice session (for the bot: its gateway session's id, as on Discord)."""
    self_mute: bool = False
    self_deaf: bool = False
    suppress: bool = False
    """In a stage channel: in the audience (everyone joins a stage suppressed)."""
    request_to_speak_timestamp: str | None = None
    """In a stage's audience: when they asked to speak (None: they have not)."""

    def payload(self, *, connected: bool = True) -> Json:
        """The VOICE_STATE_UPDATE payload; ``connected=False`` for the user leaving."""
        guild = self.channel.guild
        assert guild is not None
        data: Json = {
            "guild_id": str(guild.id),
            "channel_id": str(self.channel.id) if connected else None,
            "user_id": str(self.user.id), "session_id": self.session_id,
            "deaf": False, "mute": False, "self_deaf": self.self_deaf,
            "self_mute": self.self_mute, "self_video": False, "self_stream": False,
            "suppress": self.suppress,
            "request_to_speak_timestamp": self.request_to_speak_timestamp,
        }
        if self.user.id in guild.members:
            data["member"] = guild.members[self.user.id].payload()
        return data


@dataclass(eq=False)
class ScheduledEvent:
    """A guild scheduled event: on a stage (``STAGE_INSTANCE``) or in a voice channel
    (``VOICE``), both with ``channel``, or somewhere else (``EXTERNAL``, with ``location`` and
    an ``end``); and the users who marked themselves interested."""

    id: int
    guild: Guild
    name: str
    entity_type: int
    start: datetime
    end: datetime | None = None
    channel: Channel | None = None
    location: str | None = None
    description: str | None = None
    creator: User | None = None
    status: int = EVENT_SCHEDULED
    """``EVENT_SCHEDULED``, ``EVENT_ACTIVE``, ``EVENT_COMPLETED`` or ``EVENT_CANCELED``."""
    image: str | None = None
    """The cover image's hash."""
    interested: dict[int, User] = field(default_factory=dict)
    """Who marked themselves interested, by user id (the creator is, from the start)."""

    @property
    def open(self) -> bool:
        """Scheduled or active: not over."""
        return self.status in (EVENT_SCHEDULED, EVENT_ACTIVE)

    def payload(self, *, with_user_count: bool = False) -> Json:
        external = self.entity_type == EXTERNAL
        data: Json = {
            "id": str(self.id), "guild_id": str(self.guild.id), "name": self.name,
            "description": self.description,
            "channel_id": None if self.channel is None else str(self.channel.id),
            "creator_id": None if self.creator is None else str(self.creator.id),
            "image": self.image, "scheduled_start_time": self.start.isoformat(),
            "scheduled_end_time": None if self.end is None else self.end.isoformat(),
            "status": self.status, "entity_type": self.entity_type, "entity_id": None,
            "entity_metadata": {"location": self.location} if external else None,
            "privacy_level": GUILD_ONLY, "recurrence_rule": None,
            "guild_scheduled_event_exceptions": [],
        }
        if self.creator is not None:
            data["creator"] = self.creator.payload()
        if with_user_count:
            data["user_count"] = len(self.interested)
        return data


@dataclass
class VoiceRequest:
    """A Voice State Update (gateway op 4) the bot sent: joining ``channel_id`` in
    ``guild_id``, or leaving its voice channel there when ``channel_id`` is None."""

    shard_id: int
    guild_id: int
    channel_id: int | None
    self_mute: bool = False
    self_deaf: bool = False
    answered: bool = False
    """Whether the fake answered as Discord does (VOICE_STATE_UPDATE, and VOICE_SERVER_UPDATE
    on joining); False when Discord would have ignored it (an unknown or non-voice channel, no
    Connect permission, a full channel): the bot's connection attempt then times out."""
    received: float = field(default_factory=time.monotonic)

    @property
    def leaving(self) -> bool:
        return self.channel_id is None


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One REST request the bot made, and what the fake answered."""

    method: str
    path: str
    """Without the ``/api/v10`` prefix, percent-decoded (``/webhooks/1/tok/messages/@original``)."""
    query: dict[str, str]
    json: Any
    """The JSON body, or a multipart body's ``payload_json``; None without a body."""
    files: list[UploadedFile] = field(default_factory=list)
    route: str | None = None
    """The path template from Discord's API description, if the path is in it."""
    status: int = 0
    response: Any = None
    """The JSON answer (text for a non-JSON one, None for 204)."""
    fault: Fault | None = None
    """The fault rule that caught this request, if one did."""
    received: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        caught = f" (fault: {self.fault})" if self.fault else ""
        return f"{self.method} {self.path} -> {self.status}{caught}"


@dataclass
class Refusal:
    """A request real Discord would have refused, with Discord's answer."""

    call: Call
    code: int
    message: str
    reasons: list[str]

    def __str__(self) -> str:
        why = "; ".join(self.reasons) or self.message
        call = self.call
        return f"{call.method} {call.path} refused ({call.status}, code {self.code}): {why}"


@dataclass(eq=False)
class Message:
    """A message as Discord stores it; edits by the bot update it in place."""

    id: int
    channel: Channel
    author: User
    content: str = ""
    embeds: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    attachments: list[Json] = field(default_factory=list)
    files: list[UploadedFile] = field(default_factory=list)
    flags: int = 0
    mentions: list[User] = field(default_factory=list)
    mention_roles: list[Role] = field(default_factory=list)
    mention_everyone: bool = False
    reference: Json | None = None
    interaction: Interaction | None = None
    """The interaction this message answers, for responses and follow-ups."""
    timestamp: str = field(default_factory=_now)
    edited_timestamp: str | None = None
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred response ("Bot is thinking...") not edited yet."""
        return bool(self.flags & LOADING)

    @property
    def buttons(self) -> list[Json]:
        """Every button on the message, in rows, sections and containers too."""
        found: list[Json] = []
        pending = list(self.components)
        while pending:
            component = pending.pop(0)
            if component.get("type") == 2:
                found.append(component)
            pending += component.get("components") or []
            if isinstance(component.get("accessory"), dict):
                pending.append(component["accessory"])
        return found

    def button(self, key: str) -> Json:
        """The button whose custom_id or label is ``key``."""
        for button in self.buttons:
            if key in (button.get("custom_id"), button.get("label")):
                return button
        labels = [(b.get("label"), b.get("custom_id")) for b in self.buttons]
        raise LookupError(f"no button {key!r} on message {self.id}; buttons: {labels}")

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id), "channel_id": str(self.channel.id), "author": self.author.payload(),
            "content": self.content, "embeds": self.embeds, "components": self.components,
            "attachments": self.attachments, "flags": self.flags, "type": 0,
            "timestamp": self.timestamp, "edited_timestamp": self.edited_timestamp,
            "tts": False, "pinned": False, "mention_everyone": self.mention_everyone,
            "mentions": [u.payload() for u in self.mentions],
            "mention_roles": [str(r.id) for r in self.mention_roles],
        }
        guild = self.channel.guild
        if guild is not None:
            data["guild_id"] = str(guild.id)
            if self.author.id in guild.members and self.interaction is None:
                data["member"] = guild.members[self.author.id].payload(with_user=False)
        if self.reference is not None:
            data["message_reference"] = self.reference
        if self.interaction is not None:
            inter = self.interaction
            data["type"] = 20 if inter.type == APPLICATION_COMMAND else 0
            data["webhook_id"] = data["application_id"] = str(self.author.id)
            data["interaction_metadata"] = {
                "id": str(inter.id), "type": inter.type, "user": inter.user.payload(),
                "authorizing_integration_owners": inter.payload["authorizing_integration_owners"],
            }
        return data


@dataclass(eq=False)
class Interaction:
    """An interaction the fake sent to the bot, and how the bot answered it."""

    id: int
    token: str
    type: int
    user: User
    channel: Channel
    payload: Json
    message: Message | None = None
    """The message a pressed component is attached to."""
    sent_at: float = field(default_factory=time.monotonic)
    callback: asyncio.Future[Call] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    original: Message | None = None
    """The response message (a component's message after an update)."""
    followups: list[Message] = field(default_factory=list)
    expired: bool = False
    """Set by :meth:`FakeDiscord.expire`: the token is dead."""

    async def response(self, timeout: float = INTERACTION_DEADLINE) -> Call:
        """The bot's callback (``call.json`` is its body: ``{"type": 4, "data": {...}}``)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.callback), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not acknowledge interaction {self.id} within {timeout}s"
            ) from None


@dataclass(eq=False, repr=False)
class Fault:
    """A rule that makes Discord misbehave on matching requests (made by
    :meth:`FakeDiscord.fail`, ``rate_limit``, ``delay``, ``hold`` and ``callback_too_late``).

    A request is caught by the first rule, in the order they were made, whose method and path
    match and which has not fired ``times`` times yet. A caught request waits for the rule's
    gate (a hold) and its ``delay``, then gets the rule's error without its effect (nothing is
    created or edited; ``applied=True`` performs it first), or, without an error status, the
    normal answer. The request is in ``fake.calls`` with ``call.fault`` set. A request real
    Discord refuses (a bad token, a body breaking a limit) is refused before any rule sees it.
    """

    method: str
    """An HTTP method, or ``*`` for any."""
    path: str
    status: int | None
    """The error status, or None to answer normally (late, or once released)."""
    body: Json | str | None = None
    times: int | None = 1
    delay: float = 0.0
    retry_after: float | None = None
    scope: RateLimitScope = "user"
    applied: bool = False
    where: Callable[[Call], bool] | None = None
    gate: asyncio.Event | None = None
    fired: int = 0
    """How many requests this rule caught."""
    calls: list[Call] = field(default_factory=list)
    _regex: re.Pattern[str] = field(default=re.compile(""), repr=False)
    _owner: FakeDiscord | None = field(default=None, repr=False)

    def __str__(self) -> str:
        answer = "hold" if self.gate else (self.status or f"delay {self.delay}s")
        times = "always" if self.times is None else f"{self.fired}/{self.times}"
        return f"{self.method} {self.path} -> {answer} ({times})"

    def __repr__(self) -> str:
        return f"<Fault {self}>"

    @property
    def active(self) -> bool:
        """Whether it may still catch a request."""
        return self._owner is not None and (self.times is None or self.fired < self.times)

    def matches(self, call: Call) -> bool:
        return (
            self.active and self.method in ("*", call.method)
            and self._regex.fullmatch(call.path) is not None
            and (self.where is None or self.where(call))
        )

    def remove(self) -> None:
        """Stop catching requests, and let held ones go."""
        self.release()
        if self._owner is not None:
            self._owner.faults.remove(self)
            self._owner = None

    def release(self) -> None:
        """Let the requests a hold caught (and any it catches later) go on."""
        if self.gate is not None:
            self.gate.set()

    async def wait(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until this rule has caught ``count`` requests (for a hold: they are waiting)."""
        owner = self._owner
        if owner is None:
            raise RuntimeError(f"fault {self} was removed")
        await owner._until(lambda: True if self.fired >= count else None, timeout,
                           f"{count} requests caught by {self}")

    def _response(self) -> web.Response:
        """Discord's error answer, rate limit headers and all."""
        assert self.status is not None
        if isinstance(self.body, str):  # an HTML page from Cloudflare, not Discord's JSON
            return web.Response(status=self.status, text=self.body, content_type="text/html")
        headers = {"Content-Type": "application/json", "Via": "1.1 google"}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(-(-self.retry_after // 1))))
        if self.status == 429 and self.scope == "global":
            headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
        elif self.status == 429:
            assert self.retry_after is not None
            bucket = hashlib.sha1(f"{self.method} {self.path}".encode()).hexdigest()[:16]
            headers |= {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0" if self.scope == "user" else "4",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Bucket": bucket, "X-RateLimit-Scope": self.scope,
            }
        return web.Response(status=self.status, body=json.dumps(self.body).encode(),
                            headers=headers)


@dataclass
class GatewayEvent:
    """Something that happened on a shard's gateway connection, in ``fake.gateway_log``.

    ``what`` is what the bot sent (``IDENTIFY``, ``RESUME``), what the fake answered
    (``READY``, ``RESUMED``, ``INVALID_SESSION``), what the fake did on a test's request
    (``CLOSE`` with its close code, ``RECONNECT``), or ``DISCONNECT`` (the bot closed, with its
    code).
    """

    shard_id: int
    what: str
    detail: Any = None
    """The close code, the replayed events' count (RESUMED), or the d of INVALID_SESSION."""

    def __str__(self) -> str:
        detail = "" if self.detail is None else f" {self.detail}"
        return f"shard {self.shard_id}: {self.what}{detail}"


class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1, for one test."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        privileged_intents: int = 0,
        validate: bool = True,
        rate_limit_headers: bool = False,
        global_rate_limit: int | None = None,
    ) -> None:
        """``privileged_intents`` are the ones enabled for the application (none by default,
        like a new application); a bot asking for others is closed with 4014 as on Discord.
        ``validate=False`` skips the schema checks (for load tests).

        ``rate_limit_headers=True`` (also settable later) adds Discord's ``X-RateLimit-*``
        headers to every answer, with a bucket that is never exhausted. Without them discord.py
        sends one request per bucket (a route and its channel, guild or webhook) at a time;
        with them it sends several at once after the bucket's first answer, as against Discord.

        ``global_rate_limit=N`` (also settable later; Discord's is 50) enforces Discord's global
        rate limit: a bot request arriving when N others arrived within the last second is
        answered 429 with ``X-RateLimit-Global: true``, ``Retry-After`` and
        ``{"global": true, "retry_after": ...}`` (the seconds until the window has room), and
        counted in :attr:`rate_limited`. Interaction callbacks and webhooks are exempt, as on
        Discord. discord.py then holds every request until ``retry_after`` has passed.
        """
        self.token = token
        self.rate_limit_headers = rate_limit_headers
        self.global_rate_limit = global_rate_limit
        self.rate_limited = 0
        """How many requests the global rate limit answered 429."""
        self._window: collections.deque[float] = collections.deque()
        self.privileged_intents = privileged_intents
        self.spec: DiscordSpec | None = load_spec() if validate else None
        self._checked: dict[tuple[str, str, str], Json] = {}
        self._ids = itertools.count(int(time.time() * 1000) - DISCORD_EPOCH_MS)
        self.bot = User(self.next_id(), "massage-bot", bot=True)
        self.app_owner = User(self.next_id(), "app-owner")
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self._dms: dict[int, Channel] = {}
        self.commands: dict[int | None, list[Json]] = {}
        """Registered application commands: global under None, a guild's under its id."""
        self.calls: list[Call] = []
        self.refusals: list[Refusal] = []
        self.unhandled: list[Call] = []
        """Requests to routes the fake does not serve (answered 404)."""
        self.faults: list[Fault] = []
        """Fault rules not removed (spent ones too), in the order they catch requests."""
        self.gateway_log: list[GatewayEvent] = []
        self.voice_requests: list[VoiceRequest] = []
        """The Voice State Updates (gateway op 4) the bot sent, joining or leaving."""
        self._sessions: dict[int, _Session] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- the world -------------------------------------------------------------------------

    def next_id(self) -> int:
        """A new snowflake; consecutive ids fall on consecutive shards."""
        return next(self._ids) << 22

    def add_user(self, name: str) -> User:
        user = User(self.next_id(), name)
        self.users[user.id] = user
        return user

    def add_guild(
        self, name: str, *, owner: User, channels: Iterable[str] = ("general",),
        members: Iterable[User] = (), voice_channels: Iterable[str] = (),
        stage_channels: Iterable[str] = (), bot_permissions: int = BOT_PERMISSIONS,
    ) -> Guild:
        """A guild with an @everyone role, the given text, voice and stage channels, its owner,
        the bot (with a role of its own holding ``bot_permissions``; add ``CREATE_EVENTS`` for
        a bot that schedules events) and ``members``."""
        guild = Guild(self.next_id(), name, owner)
        guild.roles.append(Role(guild.id, "@everyone", EVERYONE_PERMISSIONS))
        bot_role = self.add_role(guild, self.bot.name, bot_permissions)
        for names, kind in ((channels, GUILD_TEXT), (voice_channels, GUILD_VOICE),
                            (stage_channels, GUILD_STAGE_VOICE)):
            for channel_name in names:
                self.add_channel(guild, channel_name, type=kind)
        self.guilds[guild.id] = guild
        self.add_member(guild, self.bot, bot_role)
        for user in (owner, *members):
            self.add_member(guild, user)
        return guild

    def add_channel(
        self, guild: Guild, name: str, *, type: int = GUILD_TEXT, user_limit: int = 0
    ) -> Channel:
        """A new channel of ``guild`` (``GUILD_TEXT``, ``GUILD_VOICE`` or
        ``GUILD_STAGE_VOICE``), sent to the bot at IDENTIFY; once the bot runs, use
        :meth:`create_channel`."""
        if type not in (GUILD_TEXT, *VOCAL_CHANNEL_TYPES):
            raise ValueError(f"the fake has no guild channels of type {type}")
        channel = Channel(self.next_id(), name, guild, type=type, user_limit=user_limit)
        guild.channels.append(channel)
        self.channels[channel.id] = channel
        return channel

    def add_role(self, guild: Guild, name: str, permissions: int = 0) -> Role:
        role = Role(self.next_id(), name, permissions, position=len(guild.roles))
        guild.roles.append(role)
        return role

    def add_member(self, guild: Guild, user: User, *roles: Role) -> Member:
        member = Member(user, guild, list(roles))
        guild.members[user.id] = member
        return member

    def user(self, name: str) -> User:
        """The user called ``name``."""
        return next(u for u in self.users.values() if u.name == name)

    def guild(self, name: str) -> Guild:
        """The guild called ``name``."""
        return next(g for g in self.guilds.values() if g.name == name)

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        if user.id not in self._dms:
            channel = Channel(self.next_id(), "", recipient=user)
            self.channels[channel.id] = self._dms[user.id] = channel
        return self._dms[user.id]

    def scheduled_events(self, guild: Guild) -> list[ScheduledEvent]:
        """``guild``'s scheduled events, oldest first (completed and canceled ones too)."""
        return list(guild.scheduled_events.values())

    def add_scheduled_event(
        self, guild: Guild, name: str, *, start: datetime | None = None,
        end: datetime | None = None, channel: Channel | None = None, location: str | None = None,
        description: str | None = None, creator: User | None = None,
        status: int = EVENT_SCHEDULED,
    ) -> ScheduledEvent:
        """A scheduled event of ``guild``, sent to the bot at IDENTIFY (once the bot runs, use
        :meth:`create_scheduled_event`): in voice or stage ``channel``, or somewhere else
        (``location``, with an ``end`` as Discord requires). ``start`` defaults to an hour from
        now. Its ``creator`` (the guild's owner by default) is interested in it, as on Discord.
        """
        if channel is not None:
            if channel.guild is not guild or not channel.vocal:
                raise ValueError(f"{channel.name!r} is not a voice or stage channel of "
                                 f"{guild.name}")
            if location is not None:
                raise ValueError("an event in a channel has no location")
            kind = STAGE_INSTANCE if channel.type == GUILD_STAGE_VOICE else VOICE
        elif location is None or end is None:
            raise ValueError("an event outside Discord needs a location and an end")
        else:
            kind = EXTERNAL
        start = start or datetime.now(UTC) + timedelta(hours=1)
        if end is not None and end <= start:
            raise ValueError("an event ends after it starts")
        creator = creator or guild.owner
        event = ScheduledEvent(self.next_id(), guild, name, kind, start, end, channel, location,
                               description, creator, status)
        event.interested[creator.id] = creator
        guild.scheduled_events[event.id] = event
        return event

    def _find_event(self, event: ScheduledEvent | int) -> ScheduledEvent:
        """A scheduled event, or the one with id ``event`` (LookupError if none has)."""
        if isinstance(event, ScheduledEvent):
            return event
        for guild in self.guilds.values():
            if event in guild.scheduled_events:
                return guild.scheduled_events[event]
        raise LookupError(f"no scheduled event {event}")

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE`` (env ``DISCORD_API_BASE``)."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (env ``DISCORD_GATEWAY_URL``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Release held requests, close the gateway sessions and the server."""
        self.clear_faults()
        for session in list(self._sessions.values()):
            if session.ws is not None and not session.ws.closed:
                await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.asynccontextmanager
    async def run(self, client: discord.Client, *, timeout: float = 10.0) -> AsyncIterator[None]:
        """Log ``client`` in, wait until it is ready, and close it on the way out.

        An error that stops the client is raised here, at start or on close.
        """
        # every guild arrives at once, so the client need not wait 2 s for more (its default)
        client._connection.guild_ready_timeout = 0.01
        task = asyncio.create_task(client.start(self.token))

        if isinstance(client, discord.AutoShardedClient):
            shard_ids = client.shard_ids  # None: every shard
        else:
            shard_ids = [client.shard_id or 0]

        async def ready() -> None:
            await self.wait_until_ready(shard_ids, timeout=timeout)
            await client.wait_until_ready()

        waiter = asyncio.create_task(ready())
        try:
            done, _ = await asyncio.wait({task, waiter}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
                raise RuntimeError("the client stopped before it was ready")
            if waiter not in done:
                raise TimeoutError(f"the client was not ready within {timeout}s")
            waiter.result()
            yield
        finally:
            waiter.cancel()
            await client.close()
            await asyncio.wait_for(task, timeout)

    # --- waiting ---------------------------------------------------------------------------

    async def _until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Wait until ``check()`` returns something other than None."""
        deadline = time.monotonic() + timeout
        while (result := check()) is None:
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = ", ".join(map(str, self.calls[-8:])) or "none"
                refused = "; ".join(map(str, self.refusals)) or "none"
                raise TimeoutError(f"no {what} within {timeout}s (last calls: {recent}; "
                                   f"refusals: {refused})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return result

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_call(
        self, method: str, path: str, *, where: Callable[[Call], bool] | None = None,
        since: int = 0, timeout: float = 5.0,
    ) -> Call:
        """The first call from index ``since`` on (``since=len(fake.calls)`` for new ones)
        whose method matches and whose path fully matches the regex ``path``."""
        pattern = re.compile(path)

        def find() -> Call | None:
            return next((
                c for c in self.calls[since:]
                if c.method == method and pattern.fullmatch(c.path) and (where is None or where(c))
            ), None)

        return await self._until(find, timeout, f"{method} {path}")

    def calls_to(self, method: str, path: str) -> list[Call]:
        """The calls so far whose method matches and whose path fully matches ``path``."""
        pattern = re.compile(path)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    async def wait_until_ready(
        self, shard_ids: Iterable[int] | None = None, *, timeout: float = 5.0
    ) -> None:
        """Wait until the bot's gateway sessions (every shard it identified with, by default)
        have received their guilds."""

        def ready() -> bool | None:
            sessions = [s for s in self._sessions.values() if s.ready and s.connected]
            if not sessions:
                return None
            wanted = set(range(sessions[0].shard_count) if shard_ids is None else shard_ids)
            return True if wanted <= {s.shard_id for s in sessions} else None

        await self._until(ready, timeout, "ready gateway session")

    # --- what users do -----------------------------------------------------------------------

    async def slash(
        self, user: User, channel: Channel, /, *path: str, forged: bool = False, **options: Any
    ) -> Interaction:
        """``user`` runs ``/path...`` in ``channel`` with ``options`` (registered names; users,
        channels and roles as fake objects). Raises where Discord's client would not send it:
        LookupError for a command the bot did not register, ValueError for bad options,
        PermissionError when the member lacks the command's default permissions.
        ``forged=True`` sends it anyway, past the permissions and places Discord's client
        keeps a command to (a hand-made request: the bot must check for itself)."""
        data = self._command_data(user, channel, path, options, focused=None, forged=forged)
        return await self._interact(APPLICATION_COMMAND, user, channel, data)

    async def autocomplete(
        self, user: User, channel: Channel, /, *path: str, **options: Any
    ) -> list[Json]:
        """The choices the bot offers while ``user`` types; the last keyword option is the
        one being typed."""
        if not options:
            raise ValueError("autocomplete needs the option being typed")
        focused = list(options)[-1]
        data = self._command_data(user, channel, path, options, focused=focused, forged=False)
        interaction = await self._interact(AUTOCOMPLETE, user, channel, data)
        body = (await interaction.response()).json
        assert body["type"] == 8, f"autocomplete answered with callback type {body['type']}"
        return body["data"]["choices"]

    async def press(
        self, user: User, message: Message, button: str, *, must_exist: bool = True,
        channel: Channel | None = None,
    ) -> Interaction:
        """``user`` presses the button with custom_id or label ``button`` on ``message``.
        ``must_exist=False`` sends ``button`` as a custom_id even if the message has no such
        button (a stale or forged id); ``channel`` claims the press came from another channel
        (forged: Discord's client would never send it)."""
        if must_exist:
            found = message.button(button)
            if found.get("disabled"):
                raise ValueError(f"button {button!r} is disabled")
            if "custom_id" not in found:
                raise ValueError(f"button {button!r} is a link")
            custom_id = found["custom_id"]
        else:
            custom_id = button
        data = {"custom_id": custom_id, "component_type": 2}
        where = channel or message.channel
        return await self._interact(MESSAGE_COMPONENT, user, where, data, message)

    async def send_message(
        self, user: User, channel: Channel, content: str, *, reference: Message | None = None
    ) -> Message:
        """``user`` posts ``content`` in ``channel`` (a guild channel or :meth:`dm_channel`);
        mentions are written as ``user.mention`` / ``role.mention`` / ``@everyone``."""
        message = Message(self.next_id(), channel, user, content)
        users, roles, everyone = self._mentioned(content)
        if reference is not None:
            # a reply pings the replied-to author, as Discord's client does by default
            users += [] if reference.author in users else [reference.author]
            message.reference = {"message_id": str(reference.id), "channel_id": str(channel.id)}
            if channel.guild is not None:
                message.reference["guild_id"] = str(channel.guild.id)
        message.mentions, message.mention_roles, message.mention_everyone = users, roles, everyone
        self.messages[message.id] = message
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def join_voice(
        self, user: User, channel: Channel, *, self_mute: bool = False, self_deaf: bool = False
    ) -> VoiceState:
        """``user`` joins voice or stage ``channel`` (leaving any other: a user is in one voice
        channel at a time, across guilds; a stage's audience is suppressed). The bot gets
        VOICE_STATE_UPDATE, with the member, if its intents include GUILD_VOICE_STATES, so
        discord.py's ``member.voice`` and ``channel.members`` follow. For the bot itself this
        is a moderator moving it (its own joining is its gateway's Voice State Update)."""
        guild = channel.guild
        if guild is None or not channel.vocal or channel.deleted:
            raise ValueError(f"{channel.name!r} is not a voice or stage channel")
        if user.id not in guild.members:
            raise ValueError(f"{user.name} is not a member of {guild.name}")
        present = [s for s in guild.voice_states.values() if s.channel is channel]
        if channel.user_limit and user.id not in {s.user.id for s in present} and (
            len(present) >= channel.user_limit
        ):
            raise ValueError(f"{channel.name!r} is full ({channel.user_limit})")
        if not user.bot:
            for other in self.guilds.values():
                if other is not guild and user.id in other.voice_states:
                    await self.leave_voice(user, other)
        state = guild.voice_states.get(user.id) or VoiceState(user, channel)
        if user is self.bot and (session := self._owner(guild)) is not None:
            state.session_id = session.session_id
        state.channel, state.self_mute, state.self_deaf = channel, self_mute, self_deaf
        state.suppress = channel.type == GUILD_STAGE_VOICE
        guild.voice_states[user.id] = state
        await self._tell(guild, GUILD_VOICE_STATES, "VOICE_STATE_UPDATE", state.payload())
        return state

    async def leave_voice(self, user: User, guild: Guild | None = None) -> None:
        """``user`` leaves their voice channel (in ``guild``, or wherever they are): the bot gets
        VOICE_STATE_UPDATE with ``channel_id`` null (GUILD_VOICE_STATES intent). For the bot
        itself this is a moderator disconnecting it."""
        guilds = [guild] if guild is not None else list(self.guilds.values())
        states = [(g, g.voice_states.pop(user.id)) for g in guilds if user.id in g.voice_states]
        if not states:
            raise ValueError(f"{user.name} is not in a voice channel")
        for where, state in states:
            await self._tell(where, GUILD_VOICE_STATES, "VOICE_STATE_UPDATE",
                             state.payload(connected=False))

    async def mark_interested(self, event: ScheduledEvent | int, user: User) -> None:
        """``user`` marks themselves interested in ``event`` (or the event with that id): the bot
        gets GUILD_SCHEDULED_EVENT_USER_ADD if its intents include GUILD_SCHEDULED_EVENTS
        (discord.py dispatches ``scheduled_event_user_add`` only for users in its cache: with
        the members intent, or after it met the user). Marking twice changes nothing."""
        found = self._find_event(event)
        if user.id not in found.guild.members:
            raise ValueError(f"{user.name} is not a member of {found.guild.name}")
        if not found.open:
            raise ValueError(f"event {found.name!r} is over")
        if user.id not in found.interested:
            found.interested[user.id] = user
            await self._tell_interest("GUILD_SCHEDULED_EVENT_USER_ADD", found, user)

    async def unmark_interested(self, event: ScheduledEvent | int, user: User) -> None:
        """``user`` is no longer interested in ``event``: GUILD_SCHEDULED_EVENT_USER_REMOVE."""
        found = self._find_event(event)
        if found.interested.pop(user.id, None) is not None:
            await self._tell_interest("GUILD_SCHEDULED_EVENT_USER_REMOVE", found, user)

    async def _tell_interest(self, what: str, event: ScheduledEvent, user: User) -> None:
        await self._tell(event.guild, GUILD_SCHEDULED_EVENTS, what, {
            "guild_scheduled_event_id": str(event.id), "user_id": str(user.id),
            "guild_id": str(event.guild.id),
        })

    async def dispatch(self, event: str, data: Json, *, guild: Guild | None = None) -> None:
        """Send a gateway event to the session whose shard owns ``guild`` (shard 0 without
        one): with several bot processes on different shards, only that one hears it."""
        await self._session_for(guild).dispatch(event, data)

    # --- faults: Discord failing on purpose --------------------------------------------------

    def fail(
        self, method: str, path: str | re.Pattern[str], status: int, *, code: int | None = None,
        message: str | None = None, body: Json | str | None = None, times: int | None = 1,
        delay: float = 0.0, retry_after: float | None = None, scope: RateLimitScope = "user",
        applied: bool = False, where: Callable[[Call], bool] | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests (None: until removed) with ``status``
        and Discord's ``{"message", "code"}`` body, without their effect.

        ``path`` is matched against the whole request path without ``/api/v10``: Discord's path
        template, where ``{name}`` stands for one segment and the rest is literal
        (``"/channels/{channel_id}/messages/{message_id}"``, or
        ``f"/channels/{channel.id}/messages/{{message_id}}"`` for one channel), or a compiled
        regex. ``code`` takes its message from :data:`ERROR_MESSAGES` unless ``message`` is
        given; without a code the body is Discord's generic ``{"message": "503: Service
        Unavailable", "code": 0}``. ``body`` replaces the JSON body (a string is sent as an HTML
        page, as Cloudflare's 502 or ban pages, without the ``Via`` header). ``delay`` seconds
        pass before the answer; ``applied=True`` performs the request's effect first (Discord
        did it, but answered an error). A 429 is Discord's rate limit (see :meth:`rate_limit`).
        ``where`` narrows the match (``where=lambda call: call.json["content"] == "x"``).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"a fault answers an error status, not {status}")
        if status == 429:
            retry_after = 1.0 if retry_after is None else retry_after
            text = "The resource is being rate limited." if scope == "shared" else (
                "You are being rate limited.")
            answer: Json = {"message": message or text, "retry_after": retry_after,
                            "global": scope == "global"}
            if code is not None:
                answer["code"] = code
        else:
            generic = f"{status}: {http.HTTPStatus(status).phrase}"
            text = ERROR_MESSAGES.get(code, generic) if code else generic
            answer = {"message": message or text, "code": code or 0}
        return self._add_fault(Fault(
            method, str(path), status, body if body is not None else answer, times, delay,
            retry_after, scope, applied, where,
        ), path)

    def rate_limit(
        self, method: str, path: str | re.Pattern[str], retry_after: float = 0.05, *,
        scope: RateLimitScope = "user", code: int | None = None, times: int | None = 1,
        where: Callable[[Call], bool] | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests 429, as Discord does when a rate limit
        is exceeded: ``Retry-After`` and the ``X-RateLimit-*`` headers (``Remaining: 0``,
        ``Scope`` user or shared; ``X-RateLimit-Global: true`` for scope global) and the body
        ``{"message": "You are being rate limited.", "retry_after": ..., "global": ...}``.
        discord.py waits ``retry_after`` seconds and sends the request again."""
        return self.fail(method, path, 429, code=code, times=times, retry_after=retry_after,
                         scope=scope, where=where)

    def delay(
        self, method: str, path: str | re.Pattern[str], seconds: float, *,
        times: int | None = 1, where: Callable[[Call], bool] | None = None,
    ) -> Fault:
        """Serve the next ``times`` matching requests normally, but only after ``seconds``:
        their effect and answer come after those of later, faster requests."""
        return self._add_fault(Fault(method, str(path), None, None, times, seconds,
                                     where=where), path)

    def hold(
        self, method: str, path: str | re.Pattern[str], *, times: int | None = 1,
        where: Callable[[Call], bool] | None = None,
    ) -> Fault:
        """Keep the next ``times`` matching requests waiting, without their effect, until
        ``release()``; ``await hold.wait()`` waits until one arrived. Two holds on one route
        catch its next two requests one each, so releasing the second first makes Discord
        serve them in the other order."""
        return self._add_fault(Fault(method, str(path), None, None, times,
                                     where=where, gate=asyncio.Event()), path)

    def callback_too_late(
        self, after: float = INTERACTION_DEADLINE, *, applied: bool = False,
        times: int | None = 1, where: Callable[[Call], bool] | None = None,
    ) -> Fault:
        """The next ``times`` interaction callbacks reach Discord past the interaction's 3 s:
        after ``after`` seconds they are answered 404 10062 Unknown interaction, and the user
        sees "The application did not respond". With ``applied=True`` the response was shown
        (the callback's effect happens), yet the bot is answered 10062 all the same: from the
        bot's side the two cases look alike."""
        return self.fail("POST", "/interactions/{interaction_id}/{token}/callback", 404,
                         code=10062, delay=after, applied=applied, times=times, where=where)

    def expire(self, interaction: Interaction) -> None:
        """``interaction``'s token dies now: its callback is answered 404 10062 Unknown
        interaction and its follow-ups and edits 401 50027 Invalid Webhook Token (as after the
        3 s, or the 15 minutes once acknowledged)."""
        interaction.expired = True

    def clear_faults(self) -> None:
        """Remove every fault rule, letting held requests go."""
        for fault in list(self.faults):
            fault.remove()

    def _add_fault(self, fault: Fault, path: str | re.Pattern[str]) -> Fault:
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1, or None for always")
        if isinstance(path, re.Pattern):
            fault._regex = path
        else:
            parts = re.split(r"(\{\w+\})", path)
            fault._regex = re.compile("".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in parts
            ))
        fault._owner = self
        self.faults.append(fault)
        return fault

    async def _serve_fault(
        self, fault: Fault, call: Call, serve: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        """Answer ``call``, caught by ``fault``."""
        log.info("fault %s caught %s %s", fault, call.method, call.path)
        if fault.gate is not None:
            await fault.gate.wait()
        if fault.status is None:
            await asyncio.sleep(fault.delay)
            return await serve()
        if fault.applied:
            await serve()
        await asyncio.sleep(fault.delay)
        return fault._response()

    # --- faults: the gateway -----------------------------------------------------------------

    async def close_gateway(
        self, code: int = 4000, *, shard_id: int = 0, resumable: bool | None = None
    ) -> None:
        """Close shard ``shard_id``'s gateway connection with ``code``; 1006 drops the TCP
        connection without a close frame, as a network failure. The session stays resumable
        (events meanwhile are replayed on RESUME) unless ``resumable=False`` or the code asks
        for a new session (4007, 4009) or is fatal (4004, 4010-4014). discord.py reconnects at
        once and RESUMEs (IDENTIFYing after Discord refuses the RESUME); after a fatal code it
        stops."""
        session = self._connected(shard_id)
        if resumable is None:
            resumable = code not in FATAL_CLOSE_CODES | NEW_SESSION_CLOSE_CODES
        ws, session.ws, session.resumable = session.ws, None, resumable
        assert ws is not None
        if not resumable:
            del self._sessions[shard_id]
        self.gateway_log.append(GatewayEvent(shard_id, "CLOSE", code))
        self._notify()
        if code == 1006:
            if session.transport is not None:
                session.transport.abort()
        else:
            await ws.close(code=code, message=b"closed by the fake Discord")

    async def request_reconnect(self, *, shard_id: int = 0) -> None:
        """Send op 7 Reconnect: the bot closes the connection and RESUMEs on a new one."""
        session = self._connected(shard_id)
        self.gateway_log.append(GatewayEvent(shard_id, "RECONNECT"))
        await session.send({"op": 7, "d": None})

    async def invalidate_session(self, *, shard_id: int = 0, resumable: bool = False) -> None:
        """Send op 9 Invalid Session: with ``resumable=False`` the session is gone and the bot
        IDENTIFYs again (a new READY); with True it reconnects and RESUMEs."""
        session = self._connected(shard_id)
        if not resumable:
            session.resumable = False
            del self._sessions[shard_id]
            self._notify()
        self.gateway_log.append(GatewayEvent(shard_id, "INVALID_SESSION", resumable))
        await session.send({"op": 9, "d": resumable})

    async def wait_for_gateway(
        self, what: str, *, shard_id: int = 0, since: int = 0, timeout: float = 5.0
    ) -> GatewayEvent:
        """The first :class:`GatewayEvent` ``what`` of ``shard_id`` in ``gateway_log`` from
        index ``since`` on (``since=len(fake.gateway_log)`` for new ones)."""

        def find() -> GatewayEvent | None:
            return next((e for e in self.gateway_log[since:]
                         if e.what == what and e.shard_id == shard_id), None)

        return await self._until(find, timeout, f"gateway {what} on shard {shard_id}")

    def _connected(self, shard_id: int) -> _Session:
        session = self._sessions.get(shard_id)
        if session is None or not session.connected:
            raise RuntimeError(f"shard {shard_id} is not connected to the fake gateway")
        return session

    # --- what moderators do ------------------------------------------------------------------

    async def delete_message(self, message: Message) -> None:
        """Someone deletes ``message``: the bot gets MESSAGE_DELETE (as its intents allow;
        never for an ephemeral one) and requests on it get 404 10008 Unknown Message."""
        if not message.deleted:
            message.deleted = True
            await self._dispatch_message("MESSAGE_DELETE", message)

    async def delete_channel(self, channel: Channel) -> None:
        """Someone deletes guild channel ``channel`` and its messages: the bot gets
        CHANNEL_DELETE, requests on the channel get 404 10003 Unknown Channel and those on its
        messages through an interaction's webhook 404 10008 Unknown Message."""
        guild = channel.guild
        if guild is None:
            raise ValueError("only guild channels can be deleted")
        payload = channel.payload()
        for state in [s for s in guild.voice_states.values() if s.channel is channel]:
            await self.leave_voice(state.user, guild)  # everyone in it is disconnected
        for event in [e for e in guild.scheduled_events.values() if e.channel is channel]:
            del guild.scheduled_events[event.id]  # no event: discord.py drops them itself
        guild.channels.remove(channel)
        del self.channels[channel.id]
        channel.deleted = True
        for message in self.messages.values():
            if message.channel is channel:
                message.deleted = True
        session = self._owner(guild)
        if session is not None and session.intents & GUILDS:
            await session.dispatch("CHANNEL_DELETE", payload)

    async def create_channel(
        self, guild: Guild, name: str, *, type: int = GUILD_TEXT, user_limit: int = 0
    ) -> Channel:
        """Someone creates a channel (text, voice or stage) in ``guild``: CHANNEL_CREATE."""
        channel = self.add_channel(guild, name, type=type, user_limit=user_limit)
        await self._tell(guild, GUILDS, "CHANNEL_CREATE", channel.payload())
        return channel

    async def set_role_permissions(
        self, role: Role, permissions: discord.Permissions | int
    ) -> None:
        """Give ``role`` (the bot's own is ``guild.role(fake.bot.name)``) these guild-wide
        ``permissions``: GUILD_ROLE_UPDATE."""
        guild = next(g for g in self.guilds.values() if role in g.roles)
        role.permissions = (
            permissions.value if isinstance(permissions, discord.Permissions) else permissions
        )
        await self._tell(guild, GUILDS, "GUILD_ROLE_UPDATE",
                         {"guild_id": str(guild.id), "role": role.payload()})

    async def create_scheduled_event(
        self, guild: Guild, name: str, *, start: datetime | None = None,
        end: datetime | None = None, channel: Channel | None = None, location: str | None = None,
        description: str | None = None, creator: User | None = None,
    ) -> ScheduledEvent:
        """A moderator (``creator``, the guild's owner by default) schedules an event, as
        :meth:`add_scheduled_event` describes: the bot gets GUILD_SCHEDULED_EVENT_CREATE, then
        GUILD_SCHEDULED_EVENT_USER_ADD for the creator (GUILD_SCHEDULED_EVENTS intent)."""
        event = self.add_scheduled_event(guild, name, start=start, end=end, channel=channel,
                                         location=location, description=description,
                                         creator=creator)
        await self._announce_event(event)
        return event

    async def update_scheduled_event(
        self, event: ScheduledEvent | int, *, status: int | None = None, name: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        description: str | None = None, location: str | None = None,
    ) -> ScheduledEvent:
        """A moderator starts (``status=EVENT_ACTIVE``), ends (``EVENT_COMPLETED``), cancels
        (``EVENT_CANCELED``) or edits ``event``, under Discord's rules (ValueError otherwise):
        GUILD_SCHEDULED_EVENT_UPDATE."""
        found = self._find_event(event)
        if status is not None and status not in EVENT_STATUS_CHANGES.get(found.status, ()):
            raise ValueError(f"event {found.name!r} cannot go from status {found.status} "
                             f"to {status}")
        if start is not None and found.status != EVENT_SCHEDULED:
            raise ValueError(f"event {found.name!r} has started: its start cannot change")
        if location is not None and found.entity_type != EXTERNAL:
            raise ValueError(f"event {found.name!r} is in a channel: it has no location")
        if (end or found.end or datetime.max.replace(tzinfo=UTC)) <= (start or found.start):
            raise ValueError(f"event {found.name!r} would end before it starts")
        found.status = found.status if status is None else status
        found.name = name or found.name
        found.start, found.end = start or found.start, end or found.end
        found.description = found.description if description is None else description
        found.location = location or found.location
        await self._tell(found.guild, GUILD_SCHEDULED_EVENTS, "GUILD_SCHEDULED_EVENT_UPDATE",
                         found.payload())
        return found

    async def delete_scheduled_event(self, event: ScheduledEvent | int) -> None:
        """A moderator deletes ``event``: GUILD_SCHEDULED_EVENT_DELETE (GUILD_SCHEDULED_EVENTS
        intent); requests on it get 404 10070 Unknown Guild Scheduled Event."""
        found = self._find_event(event)
        del found.guild.scheduled_events[found.id]
        await self._tell(found.guild, GUILD_SCHEDULED_EVENTS, "GUILD_SCHEDULED_EVENT_DELETE",
                         found.payload())

    async def _announce_event(self, event: ScheduledEvent) -> None:
        """Tell the bot of a new event and of its creator's interest in it."""
        await self._tell(event.guild, GUILD_SCHEDULED_EVENTS, "GUILD_SCHEDULED_EVENT_CREATE",
                         event.payload())
        for user in event.interested.values():
            await self._tell_interest("GUILD_SCHEDULED_EVENT_USER_ADD", event, user)

    async def set_permissions(
        self, channel: Channel, target: User | Role, *,
        allow: discord.Permissions | int = 0, deny: discord.Permissions | int = 0,
    ) -> None:
        """Set ``channel``'s permission overwrite for ``target`` (a member, a role, or the
        guild's @everyone role; ``allow=deny=0`` removes it) and send the bot CHANNEL_UPDATE.

        For the bot's own REST requests the fake enforces VIEW_CHANNEL (403 50001 Missing
        Access on every route of the channel), SEND_MESSAGES and ATTACH_FILES (403 50013
        Missing Permissions on sending), MANAGE_MESSAGES (deleting others' messages) and
        READ_MESSAGE_HISTORY (history comes back empty). As on Discord, without SEND_MESSAGES
        the bot still edits and deletes its own messages (a ``fail(..., 403, code=50013)``
        makes an edit fail), and interaction responses need no channel permission.
        """
        guild = channel.guild
        if guild is None:
            raise ValueError("DM channels have no permission overwrites")
        allow = allow.value if isinstance(allow, discord.Permissions) else allow
        deny = deny.value if isinstance(deny, discord.Permissions) else deny
        if allow or deny:
            channel.overwrites[target.id] = (int(isinstance(target, User)), allow, deny)
        else:
            channel.overwrites.pop(target.id, None)
        session = self._owner(guild)
        if session is not None and session.intents & GUILDS:
            await session.dispatch("CHANNEL_UPDATE", channel.payload())

    # --- interactions ------------------------------------------------------------------------

    def _find_command(self, channel: Channel, name: str) -> Json:
        scopes = ([channel.guild.id] if channel.guild else []) + [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        raise LookupError(f"/{name} is not registered for {channel.guild or 'DMs'} "
                          f"(registered: {self._registered_names()})")

    def _registered_names(self) -> list[str]:
        return [c["name"] for commands in self.commands.values() for c in commands]

    def _command_data(
        self, user: User, channel: Channel, path: tuple[str, ...], options: Json,
        focused: str | None, forged: bool,
    ) -> Json:
        if not path:
            raise ValueError("a command name is needed")
        command = self._find_command(channel, path[0])
        if not forged:
            self._check_allowed(user, channel, command)
        data: Json = {"id": command["id"], "name": command["name"], "type": 1}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        level: list[Json] = command.get("options") or []
        target: list[Json] = data.setdefault("options", [])
        for name in path[1:]:
            spec = next((o for o in level if o["name"] == name
                         and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
            if spec is None:
                raise LookupError(f"/{' '.join(path)}: no subcommand {name!r}")
            node: Json = {"name": name, "type": spec["type"], "options": []}
            target.append(node)
            target, level = node["options"], spec.get("options") or []
        if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in level):
            choices = [o["name"] for o in level]
            raise ValueError(f"/{' '.join(path)} needs one of the subcommands {choices}")
        resolved: Json = {}
        for name, value in options.items():
            spec = next((o for o in level if o["name"] == name), None)
            if spec is None:
                raise ValueError(f"/{' '.join(path)} has no option {name!r}")
            target.append(self._option(spec, value, channel.guild, resolved, name == focused))
        missing = [o["name"] for o in level if o.get("required") and o["name"] not in options]
        if missing and focused is None:  # while typing, later options may still be empty
            raise ValueError(f"/{' '.join(path)} misses required options {missing}")
        if resolved:
            data["resolved"] = resolved
        return data

    def _check_allowed(self, user: User, channel: Channel, command: Json) -> None:
        if channel.guild is None:
            if 1 not in (command.get("contexts") or [0, 1, 2]):
                raise LookupError(f"/{command['name']} is not available in DMs")
            return
        needed = command.get("default_member_permissions")
        if needed is not None:
            have = channel.guild.member(user).permissions
            if have & int(needed) != int(needed):
                raise PermissionError(f"{user.name} may not use /{command['name']}")

    def _option(
        self, spec: Json, value: Any, guild: Guild | None, resolved: Json, focused: bool
    ) -> Json:
        name, kind = spec["name"], spec["type"]
        if focused:
            return {"name": name, "type": kind, "value": str(value), "focused": True}
        if kind in (6, 7, 8, 9):
            return {"name": name, "type": kind, "value": self._resolve(value, guild, resolved)}
        expected = {3: str, 4: int, 5: bool, 10: (int, float)}.get(kind)
        if expected is None or not isinstance(value, expected):
            raise ValueError(f"option {name!r} (type {kind}) cannot take {value!r}")
        choices = [c["value"] for c in spec.get("choices") or []]
        if choices and value not in choices:
            raise ValueError(f"option {name!r} must be one of {choices}")
        shortest, longest = spec.get("min_length", 0), spec.get("max_length", 6000)
        if kind == 3 and not shortest <= len(value) <= longest:
            raise ValueError(f"option {name!r} has a length Discord's client would not send")
        low, high = spec.get("min_value", value), spec.get("max_value", value)
        if kind in (4, 10) and not low <= value <= high:
            raise ValueError(f"option {name!r} is out of its range")
        return {"name": name, "type": kind, "value": value}

    def _resolve(self, value: Any, guild: Guild | None, resolved: Json) -> str:
        key = str(value.id)
        if isinstance(value, User):
            resolved.setdefault("users", {})[key] = value.payload()
            if guild is not None and value.id in guild.members:
                member = guild.members[value.id]
                resolved.setdefault("members", {})[key] = {
                    **member.payload(with_user=False), "permissions": str(member.permissions)
                }
        elif isinstance(value, Role):
            resolved.setdefault("roles", {})[key] = value.payload()
        elif isinstance(value, Channel):
            resolved.setdefault("channels", {})[key] = {
                **value.payload(), "permissions": str(ALL_PERMISSIONS)
            }
        else:
            raise ValueError(f"{value!r} is not a fake user, role or channel")
        return key

    async def _interact(
        self, kind: int, user: User, channel: Channel, data: Json, message: Message | None = None
    ) -> Interaction:
        guild = channel.guild
        if channel.deleted:
            raise ValueError(f"channel {channel.name!r} was deleted")
        app_permissions = self._bot_permissions(channel) if guild else BOT_PERMISSIONS
        payload: Json = {
            "id": "", "application_id": str(self.bot.id), "type": kind, "token": "",
            "version": 1, "data": data, "channel_id": str(channel.id), "channel": channel.payload(),
            "locale": "en-US", "entitlements": [], "attachment_size_limit": 10 * 1024 * 1024,
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1,
            "app_permissions": str(app_permissions),
        }
        if guild is not None:
            member = guild.member(user)
            payload |= {
                "guild_id": str(guild.id), "guild_locale": "en-US",
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "member": {**member.payload(), "permissions": str(member.permissions)},
            }
        else:
            payload["user"] = user.payload()
        if message is not None:
            payload["message"] = message.payload()
        interaction = Interaction(self.next_id(), secrets.token_urlsafe(48), kind, user, channel,
                                  payload, message)
        payload["id"], payload["token"] = str(interaction.id), interaction.token
        self.interactions[interaction.id] = self._by_token[interaction.token] = interaction
        await self.dispatch("INTERACTION_CREATE", payload, guild=guild)
        return interaction

    # --- messages ----------------------------------------------------------------------------

    def _mentioned(
        self, content: str, allowed: Json | None = None
    ) -> tuple[list[User], list[Role], bool]:
        """Who ``content`` pings, under Discord's ``allowed_mentions`` rules."""
        if allowed is None:  # Discord's default: every mention pings
            allowed = {"parse": ["users", "roles", "everyone"]}
        parse = set(allowed.get("parse") or [])
        allowed_users = {str(u) for u in allowed.get("users") or []}
        allowed_roles = {str(r) for r in allowed.get("roles") or []}
        roles = {r.id: r for g in self.guilds.values() for r in g.roles}
        users = [
            self.users[int(i)] for i in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
            if int(i) in self.users and ("users" in parse or i in allowed_users)
        ]
        mentioned_roles = [
            roles[int(i)] for i in dict.fromkeys(re.findall(r"<@&(\d+)>", content))
            if int(i) in roles and ("roles" in parse or i in allowed_roles)
        ]
        everyone = "everyone" in parse and bool(re.search(r"@(everyone|here)\b", content))
        return users, mentioned_roles, everyone

    def _bot_message(
        self, channel: Channel, body: Json, files: list[UploadedFile],
        interaction: Interaction | None = None,
    ) -> Message:
        message = Message(self.next_id(), channel, self.bot, flags=body.get("flags") or 0,
                          interaction=interaction)
        if body.get("message_reference"):
            message.reference = body["message_reference"]
        self._apply(message, body, files)
        self.messages[message.id] = message
        return message

    async def _edit(self, message: Message, body: Json, files: list[UploadedFile]) -> None:
        """Edit ``message`` (which ends a deferral's "thinking...") and tell the bot."""
        message.flags &= ~LOADING
        self._apply(message, body, files)
        message.edited_timestamp = _now()
        await self._dispatch_message("MESSAGE_UPDATE", message)

    def _apply(self, message: Message, body: Json, files: list[UploadedFile]) -> None:
        """Apply a create or edit body to ``message``."""
        if "content" in body:
            message.content = body["content"] or ""
            message.mentions, message.mention_roles, message.mention_everyone = self._mentioned(
                message.content, body.get("allowed_mentions")
            )
        if "embeds" in body:
            message.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            message.components = body["components"] or []
        if body.get("flags") is not None:
            message.flags = body["flags"] | (message.flags & EPHEMERAL)
        if "attachments" in body or files:
            message.attachments, message.files = self._attachments(
                message, body.get("attachments"), files
            )

    def _attachments(
        self, message: Message, wanted: list[Json] | None, files: list[UploadedFile]
    ) -> tuple[list[Json], list[UploadedFile]]:
        """Kept attachments (by id) plus new ones (``files[n]`` named by index ``n``)."""
        kept = {a["id"]: (a, f) for a, f in zip(message.attachments, message.files, strict=True)}
        by_index = dict(enumerate(files))
        chosen: list[tuple[Json, UploadedFile]] = []
        for entry in wanted if wanted is not None else [{"id": i} for i in by_index]:
            key = str(entry["id"])
            if key in kept:
                chosen.append(kept[key])
            elif int(key) in by_index:
                upload = by_index[int(key)]
                attachment_id = self.next_id()
                filename = entry.get("filename") or upload.filename
                # not served: fetching it is recorded in ``unhandled``
                url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
                chosen.append(({
                    "id": str(attachment_id), "filename": filename, "size": len(upload.data),
                    "url": url, "proxy_url": url,
                    "content_type": mimetypes.guess_type(filename)[0] or upload.content_type,
                    "description": entry.get("description"),
                }, upload))
        return [a for a, _ in chosen], [f for _, f in chosen]

    async def _dispatch_message(self, event: str, message: Message) -> None:
        """Tell the bot about a message, as its intents allow (ephemeral ones never)."""
        guild = message.channel.guild
        session = self._owner(guild)
        if message.ephemeral or session is None:
            return
        if not session.intents & (GUILD_MESSAGES if guild else DIRECT_MESSAGES):
            return
        if event == "MESSAGE_DELETE":
            data: Json = {"id": str(message.id), "channel_id": str(message.channel.id)}
            if guild is not None:
                data["guild_id"] = str(guild.id)
            await session.dispatch(event, data)
            return
        data = message.payload()
        visible = (
            session.intents & MESSAGE_CONTENT or guild is None or message.author is self.bot
            or self.bot in message.mentions
        )
        if not visible:
            data |= {"content": "", "embeds": [], "attachments": [], "components": []}
        await session.dispatch(event, data)

    # --- gateway -----------------------------------------------------------------------------

    def shard_of(self, guild: Guild | None, shard_count: int) -> int:
        """The shard ``guild``'s events go to among ``shard_count`` (Discord's rule: the
        guild id's timestamp bits modulo the count); direct messages go to shard 0."""
        return 0 if guild is None else (guild.id >> 22) % shard_count

    def _owner(self, guild: Guild | None) -> _Session | None:
        """The gateway session whose shard pair owns ``guild`` (shard 0 for DMs), if any:
        each bot process may identify with its own shards."""
        return next((s for s in self._sessions.values()
                     if self.shard_of(guild, s.shard_count) == s.shard_id), None)  # fmt: skip

    async def _tell(self, guild: Guild, intent: int, event: str, data: Json) -> None:
        """Dispatch ``event`` to the session owning ``guild``, if one is connected and its
        intents include ``intent`` (as Discord does; nothing otherwise)."""
        session = self._owner(guild)
        if session is not None and session.intents & intent:
            await session.dispatch(event, data)

    def _session_for(self, guild: Guild | None) -> _Session:
        session = self._owner(guild)
        if session is None or not session.ready:
            raise RuntimeError("the bot is not connected to the fake gateway (is it running?)")
        return session

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws, request.transport)
        await session.send({"op": 10, "d": {"heartbeat_interval": 41250}})
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                match message["op"]:
                    case 1:
                        await session.send({"op": 11})
                    case 2:
                        await self._identify(session, message["d"])
                    case 4:
                        await self._voice_state_request(session, message["d"])
                    case 6:
                        session = await self._resume(session, message["d"])
                    case 8:
                        await self._members_chunk(session, message["d"])
        finally:
            self._disconnected(session, ws)
        return ws

    def _disconnected(self, session: _Session, ws: web.WebSocketResponse) -> None:
        """Forget ``session`` when the bot closed it with 1000 or 1001 (which ends a session on
        Discord) or it is not resumable; keep it for a RESUME otherwise."""
        if self._sessions.get(session.shard_id) is not session:
            return
        if session.ws is ws:  # closed by the bot or the network, not by close_gateway
            session.ws = None
            self.gateway_log.append(GatewayEvent(session.shard_id, "DISCONNECT", ws.close_code))
            if ws.close_code in (1000, 1001):
                session.resumable = False
        elif session.ws is not None:  # resumed on another connection meanwhile
            return
        if not session.resumable:
            del self._sessions[session.shard_id]
        self._notify()

    async def _identify(self, session: _Session, data: Json) -> None:
        assert session.ws is not None
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        session.intents = data.get("intents", 0)
        if session.intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.shard_id, session.shard_count = data.get("shard", [0, 1])
        self.gateway_log.append(GatewayEvent(session.shard_id, "IDENTIFY"))
        for shard_id, other in list(self._sessions.items()):  # a dead process's, of old counts
            if other.shard_count != session.shard_count and not other.connected:
                del self._sessions[shard_id]
        self._sessions[session.shard_id] = session
        guilds = [g for g in self.guilds.values()
                  if self.shard_of(g, session.shard_count) == session.shard_id]  # fmt: skip
        await session.dispatch("READY", {
            "v": 10, "user": self.bot.payload(), "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": [session.shard_id, session.shard_count],
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "application": {"id": str(self.bot.id), "flags": 0},
        })
        for guild in guilds:
            payload = guild.payload(self.bot, all_members=bool(session.intents & GUILD_MEMBERS))
            await session.dispatch("GUILD_CREATE", payload)
        session.ready = True
        self.gateway_log.append(GatewayEvent(session.shard_id, "READY"))
        self._notify()

    async def _resume(self, connection: _Session, data: Json) -> _Session:
        """Take the RESUMEd session over on this connection and replay the events it missed;
        answer op 9 (not resumable) for a session Discord no longer knows."""
        assert connection.ws is not None
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return connection
        session = next((s for s in self._sessions.values()
                        if s.session_id == data.get("session_id") and s.resumable), None)
        self.gateway_log.append(GatewayEvent(
            connection.shard_id if session is None else session.shard_id, "RESUME"))
        if session is None:
            self.gateway_log.append(GatewayEvent(connection.shard_id, "INVALID_SESSION", False))
            await connection.send({"op": 9, "d": False})
            return connection
        previous, session.ws, session.transport = session.ws, connection.ws, connection.transport
        if previous is not None:  # the old connection's end is not handled yet
            self.gateway_log.append(
                GatewayEvent(session.shard_id, "DISCONNECT", previous.close_code))
            if not previous.closed:
                await previous.close(code=4000)
        missed = [p for p in session.history if p["s"] > (data.get("seq") or 0)]
        for payload in missed:
            await session.send(payload)
        await session.dispatch("RESUMED", {})
        self.gateway_log.append(GatewayEvent(session.shard_id, "RESUMED", len(missed)))
        self._notify()
        return session

    async def _members_chunk(self, session: _Session, data: Json) -> None:
        guild = self.guilds[int(data["guild_id"])]
        user_ids = {int(u) for u in data.get("user_ids") or []}
        members = [m.payload() for m in guild.members.values()
                   if not user_ids or m.user.id in user_ids]
        await session.dispatch("GUILD_MEMBERS_CHUNK", {
            "guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1,
            "nonce": data.get("nonce"),
        })

    async def wait_for_voice_request(
        self, *, since: int = 0, timeout: float = 5.0
    ) -> VoiceRequest:
        """The first Voice State Update the bot sent, from index ``since`` of
        :attr:`voice_requests` on (``since=len(fake.voice_requests)`` for new ones)."""

        def find() -> VoiceRequest | None:
            return next(iter(self.voice_requests[since:]), None)

        return await self._until(find, timeout, "voice state update (gateway op 4)")

    async def _voice_state_request(self, session: _Session, data: Json) -> None:
        """Answer the bot's op 4 as Discord does: joining, VOICE_STATE_UPDATE (GUILD_VOICE_STATES
        intent) and VOICE_SERVER_UPDATE with an endpoint on 127.0.0.1 (no voice server listens
        there); leaving (``channel_id`` null), VOICE_STATE_UPDATE. Ignored, as on Discord, for
        a guild of another shard, a channel that is not a voice or stage channel of the guild,
        one the bot may not see or connect to, or a full one (the bot's attempt times out)."""
        channel_id = data.get("channel_id")
        request = VoiceRequest(session.shard_id, _snowflake(str(data.get("guild_id"))),
                               None if channel_id is None else _snowflake(str(channel_id)),
                               bool(data.get("self_mute")), bool(data.get("self_deaf")))
        self.voice_requests.append(request)
        self._notify()
        guild = self.guilds.get(request.guild_id)
        if guild is None or self.shard_of(guild, session.shard_count) != session.shard_id:
            return
        state = guild.voice_states.get(self.bot.id)
        if request.leaving:
            if state is not None:
                del guild.voice_states[self.bot.id]
                request.answered = True
                await self._tell(guild, GUILD_VOICE_STATES, "VOICE_STATE_UPDATE",
                                 state.payload(connected=False))
            return
        channel = self.channels.get(request.channel_id or 0)
        if channel is None or channel.guild is not guild or not channel.vocal:
            return
        allowed = guild.member(self.bot).permissions_in(channel)
        if allowed & (VIEW_CHANNEL | CONNECT) != VIEW_CHANNEL | CONNECT:
            return
        present = [s for s in guild.voice_states.values() if s.channel is channel]
        full = channel.user_limit and len(present) >= channel.user_limit
        if full and (state is None or state.channel is not channel):
            return
        joined = state is None
        state = state or VoiceState(self.bot, channel)
        state.channel, state.session_id = channel, session.session_id
        state.self_mute, state.self_deaf = request.self_mute, request.self_deaf
        state.suppress = channel.type == GUILD_STAGE_VOICE
        state.request_to_speak_timestamp = None
        guild.voice_states[self.bot.id] = state
        request.answered = True
        await self._tell(guild, GUILD_VOICE_STATES, "VOICE_STATE_UPDATE", state.payload())
        if joined:
            await session.dispatch("VOICE_SERVER_UPDATE", {
                "token": secrets.token_hex(8), "guild_id": str(guild.id),
                "endpoint": f"127.0.0.1:{self.port}",
            })

    # --- REST --------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix(API_PREFIX)
        call = Call(request.method, path, dict(request.query), None)
        try:
            response = await self._answer(request, call)
        except _Refused as refused:
            response = _json(refused.body, refused.status)
            call.status = refused.status
            if refused.record:
                self.refusals.append(Refusal(call, refused.body["code"], refused.body["message"],
                                             reasons(refused.body.get("errors", {}))))
                log.warning("%s", self.refusals[-1])
        call.status = response.status
        if not response.body:
            call.response = None
        elif response.content_type == "application/json":
            call.response = json.loads(response.body)
        else:
            call.response = response.text
        if self.rate_limit_headers and response.status != 429:
            response.headers.update(_bucket_headers(call))
        self.calls.append(call)
        self._notify()
        return response

    async def _answer(self, request: web.Request, call: Call) -> web.Response:
        call.json, call.files = await _read_body(request)
        if request.path.startswith(API_PREFIX + "/"):
            webhook = call.path.startswith(("/webhooks/", "/interactions/"))
            if not webhook and request.headers.get("Authorization") != f"Bot {self.token}":
                raise _Refused(401, 0, "401: Unauthorized")
            if not webhook and (wait := self._spend_global_limit()) is not None:
                self.rate_limited += 1
                return _global_rate_limited(wait)
            self._validate(call)
        fault = next((f for f in self.faults if f.matches(call)), None)
        if fault is None:
            return await self._serve(call)
        fault.fired += 1  # before any await: concurrent requests are caught by distinct rules
        fault.calls.append(call)
        call.fault = fault
        self._notify()
        return await self._serve_fault(fault, call, lambda: self._serve(call))

    async def _serve(self, call: Call) -> web.Response:
        """The answer of the route handler serving ``call``."""
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(call.path)
            if method == call.method and match:
                return await handler(self, call, **match.groupdict())
        self.unhandled.append(call)
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _spend_global_limit(self) -> float | None:
        """Count a request against the global rate limit: None if it may go on, else the
        seconds until the last second's window has room."""
        limit = self.global_rate_limit
        if limit is None:
            return None
        now, window = time.monotonic(), self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return window[0] + 1.0 - now
        window.append(now)
        return None

    def _validate(self, call: Call) -> None:
        """Refuse a body that breaks the limits in Discord's API description (bodies already
        checked are not checked again: a bot sending one message to many is cheap to serve)."""
        if self.spec is None or (operation := self.spec.operation(call.method, call.path)) is None:
            return
        call.route = operation.template
        if operation.schema is not None and call.json is not None:
            key = (call.method, operation.template, _shape(call.json))
            errors = self._checked.get(key)
            if errors is None:
                if len(self._checked) >= 4096:
                    self._checked.clear()
                errors = self._checked[key] = self.spec.check(operation, call.json)
            if errors:
                raise _Refused(400, 50035, "Invalid Form Body", errors)

    def _channel(self, channel_id: str, needed: int = 0) -> Channel:
        """The channel, if the bot may see it and has the ``needed`` permissions in it."""
        channel = self.channels.get(_snowflake(channel_id))
        if channel is None:
            raise _Refused(404, 10003, "Unknown Channel", record=False)
        have = self._bot_permissions(channel)
        # answers a correct bot may get (a moderator changed the channel), not refusals
        if not have & VIEW_CHANNEL:
            raise _Refused(403, 50001, "Missing Access", record=False)
        if have & needed != needed:
            raise _Refused(403, 50013, "Missing Permissions", record=False)
        return channel

    def _bot_permissions(self, channel: Channel) -> int:
        guild = channel.guild
        return ALL_PERMISSIONS if guild is None else guild.member(self.bot).permissions_in(channel)

    def _message(self, channel_id: str, message_id: str) -> Message:
        message = self.messages.get(_snowflake(message_id))
        if message is None or message.deleted or message.channel.id != _snowflake(channel_id):
            raise _Refused(404, 10008, "Unknown Message", record=False)
        return message

    def _webhook(self, application_id: str, token: str) -> Interaction:
        """The interaction an interaction webhook (application id + token) belongs to."""
        interaction = self._by_token.get(token)
        if interaction is None or application_id != str(self.bot.id):
            raise _Refused(404, 10015, "Unknown Webhook")
        if interaction.expired:
            raise _Refused(401, 50027, "Invalid Webhook Token", record=False)
        return interaction

    def _guild(self, guild_id: str) -> Guild:
        guild = self.guilds.get(_snowflake(guild_id))
        if guild is None:
            raise _Refused(404, 10004, "Unknown Guild", record=False)
        return guild

    def _scope(self, application_id: str, guild_id: str | None) -> int | None:
        """Where a command route's commands live: None (global) or a guild id."""
        if application_id != str(self.bot.id):
            raise _Refused(404, 10002, "Unknown Application")
        return None if guild_id is None else self._guild(guild_id).id

    def _register(self, scope: int | None, body: Json) -> Json:
        """Store a command as Discord does, keeping the id of one with the same name."""
        commands = self.commands.setdefault(scope, [])
        old = next((c for c in commands if c["name"] == body["name"]
                    and c["type"] == body.get("type", 1)), None)
        command = {"type": 1, "default_member_permissions": None, "nsfw": False, **body,
                   "id": old["id"] if old else str(self.next_id()),
                   "application_id": str(self.bot.id), "version": str(self.next_id())}
        if command["default_member_permissions"] is not None:
            command["default_member_permissions"] = str(command["default_member_permissions"])
        if scope is not None:
            command["guild_id"] = str(scope)
        if old:
            commands[commands.index(old)] = command
        else:
            commands.append(command)
        return command

    # --- REST routes -------------------------------------------------------------------------

    @_route("GET", "/users/@me")
    async def _get_me(self, call: Call) -> web.Response:
        return _json(self.bot.payload())

    @_route("GET", "/users/{user_id}")
    async def _get_user(self, call: Call, user_id: str) -> web.Response:
        user = self.users.get(_snowflake(user_id))
        if user is None:
            raise _Refused(404, 10013, "Unknown User", record=False)
        return _json(user.payload())

    @_route("GET", "/oauth2/applications/@me")
    @_route("GET", "/applications/@me")
    async def _get_application(self, call: Call) -> web.Response:
        return _json({
            "id": str(self.bot.id), "name": self.bot.name, "icon": None,
            "description": "A fake application", "summary": "", "bot_public": True,
            "bot_require_code_grant": False, "owner": self.app_owner.payload(),
            "verify_key": "0" * 64, "team": None, "flags": 0, "rpc_origins": [],
            "bot": self.bot.payload(),
        })

    @_route("GET", "/gateway")
    @_route("GET", "/gateway/bot")
    async def _get_gateway(self, call: Call) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1,
        }})

    @_route("GET", "/applications/{application_id}/commands")
    @_route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _get_commands(
        self, call: Call, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        return _json(self.commands.get(self._scope(application_id, guild_id), []))

    @_route("PUT", "/applications/{application_id}/commands")
    @_route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _put_commands(
        self, call: Call, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        scope = self._scope(application_id, guild_id)
        old = self.commands.get(scope, [])
        self.commands[scope] = [c for c in old if c["name"] in {b["name"] for b in call.json}]
        return _json([self._register(scope, body) for body in call.json])

    @_route("POST", "/applications/{application_id}/commands")
    @_route("POST", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _post_command(
        self, call: Call, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        return _json(self._register(self._scope(application_id, guild_id), call.json), 201)

    @_route("GET", "/applications/{application_id}/commands/{command_id}")
    @_route("PATCH", "/applications/{application_id}/commands/{command_id}")
    @_route("DELETE", "/applications/{application_id}/commands/{command_id}")
    @_route("GET", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
    @_route("PATCH", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
    @_route("DELETE", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}")
    async def _command(
        self, call: Call, application_id: str, command_id: str, guild_id: str | None = None
    ) -> web.Response:
        commands = self.commands.get(self._scope(application_id, guild_id), [])
        command = next((c for c in commands if c["id"] == command_id), None)
        if command is None:
            raise _Refused(404, 10063, "Unknown application command", record=False)
        if call.method == "DELETE":
            commands.remove(command)
            return _json(None)
        if call.method == "PATCH":
            command.update(call.json)
        return _json(command)

    @_route("POST", "/interactions/{interaction_id}/{token}/callback")
    async def _callback(self, call: Call, interaction_id: str, token: str) -> web.Response:
        interaction = self._by_token.get(token)
        if interaction is None or str(interaction.id) != interaction_id:
            raise _Refused(404, 10062, "Unknown interaction")
        if interaction.expired:
            raise _Refused(404, 10062, "Unknown interaction", record=False)
        if interaction.callback.done():
            raise _Refused(400, 40060, "Interaction has already been acknowledged.")
        if interaction.channel.deleted:
            raise _Refused(404, 10003, "Unknown Channel", record=False)
        late = call.received - interaction.sent_at
        if late > INTERACTION_DEADLINE:
            raise _Refused(404, 10062, f"Unknown interaction (acknowledged after {late:.1f}s)")
        body = call.json or {}
        kind, data = body.get("type"), body.get("data") or {}
        valid = {APPLICATION_COMMAND: {4, 5, 9}, MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
                 AUTOCOMPLETE: {8}}[interaction.type]
        if kind not in valid:
            raise _Refused(400, 50035, "Invalid Form Body", {"type": {"_errors": [{
                "code": "INTERACTION_CALLBACK_TYPE_INVALID",
                "message": f"Callback type {kind} is not valid for interaction type "
                           f"{interaction.type}.",
            }]}})
        message: Message | None = None
        if kind == 4:
            _require_content(data, call.files)
            message = self._bot_message(interaction.channel, data, call.files, interaction)
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif kind == 5:
            flags = (data.get("flags") or 0) | LOADING
            message = self._bot_message(interaction.channel, {"flags": flags}, [], interaction)
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif kind in (6, 7):
            message = interaction.message
            assert message is not None
            if kind == 7:
                await self._edit(message, data, call.files)
        interaction.original = message
        interaction.callback.set_result(call)
        if call.query.get("with_response") not in ("1", "true", "True"):
            return _json(None)
        answer: Json = {"interaction": {
            "id": str(interaction.id), "type": interaction.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and message.ephemeral),
        }}
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"] = {"type": kind, "message": message.payload()}
        return _json(answer)

    @_route("POST", "/webhooks/{application_id}/{token}")
    async def _followup(self, call: Call, application_id: str, token: str) -> web.Response:
        interaction = self._webhook(application_id, token)
        if not interaction.callback.done():
            raise _Refused(404, 10015, "Unknown Webhook (the interaction is not acknowledged)")
        if interaction.channel.deleted:
            raise _Refused(404, 10003, "Unknown Channel", record=False)
        body = call.json or {}
        _require_content(body, call.files)
        original = interaction.original
        if original is not None and original.loading:
            # the first follow-up after a deferral fills the "thinking..." message
            message = original
            await self._edit(message, body, call.files)
        else:
            message = self._bot_message(interaction.channel, body, call.files, interaction)
            interaction.followups.append(message)
            await self._dispatch_message("MESSAGE_CREATE", message)
        return _json(message.payload() if call.query.get("wait") in ("1", "true", "True") else None)

    @_route("GET", "/webhooks/{application_id}/{token}/messages/{message_id}")
    @_route("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}")
    @_route("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}")
    async def _webhook_message(
        self, call: Call, application_id: str, token: str, message_id: str
    ) -> web.Response:
        interaction = self._webhook(application_id, token)
        if message_id == "@original":
            message = interaction.original
            if message is None:
                raise _Refused(404, 10008, "Unknown Message (the interaction has no response yet)")
        else:
            owned = [interaction.original, *interaction.followups]
            message = next((m for m in owned if m is not None and str(m.id) == message_id), None)
        if message is None or message.deleted:
            raise _Refused(404, 10008, "Unknown Message", record=False)
        return await self._change(call, message)

    async def _change(self, call: Call, message: Message) -> web.Response:
        """GET, PATCH or DELETE a message, telling the bot's gateway as Discord does."""
        if call.method == "DELETE":
            message.deleted = True
            await self._dispatch_message("MESSAGE_DELETE", message)
            return _json(None)
        if call.method == "PATCH":
            await self._edit(message, call.json or {}, call.files)
        return _json(message.payload())

    @_route("GET", "/channels/{channel_id}")
    async def _get_channel(self, call: Call, channel_id: str) -> web.Response:
        return _json(self._channel(channel_id).payload())

    @_route("POST", "/channels/{channel_id}/messages")
    async def _send(self, call: Call, channel_id: str) -> web.Response:
        channel = self._channel(channel_id, SEND_MESSAGES | (ATTACH_FILES if call.files else 0))
        recipient = channel.recipient
        if recipient is not None and (recipient.bot or not recipient.accepts_dms or not any(
            recipient.id in g.members for g in self.guilds.values()
        )):
            # DMs closed, or no guild shared with the bot: an answer a correct bot may get
            raise _Refused(403, 50007, "Cannot send messages to this user", record=False)
        body = call.json or {}
        _require_content(body, call.files)
        message = self._bot_message(channel, body, call.files)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return _json(message.payload())

    @_route("GET", "/channels/{channel_id}/messages")
    async def _history(self, call: Call, channel_id: str) -> web.Response:
        channel = self._channel(channel_id)
        if not self._bot_permissions(channel) & READ_MESSAGE_HISTORY:
            return _json([])
        before = int(call.query.get("before", 1 << 63))
        after = int(call.query.get("after", 0))
        found = [m for m in reversed(self.messages.values())
                 if m.channel is channel and not m.deleted and not m.ephemeral
                 and after < m.id < before]
        return _json([m.payload() for m in found[: int(call.query.get("limit", 50))]])

    @_route("GET", "/channels/{channel_id}/messages/{message_id}")
    @_route("PATCH", "/channels/{channel_id}/messages/{message_id}")
    @_route("DELETE", "/channels/{channel_id}/messages/{message_id}")
    async def _channel_message(self, call: Call, channel_id: str, message_id: str) -> web.Response:
        channel = self._channel(channel_id)
        message = self._message(channel_id, message_id)
        if call.method == "PATCH" and message.author is not self.bot:
            raise _Refused(403, 50005, "Cannot edit a message authored by another user")
        if call.method == "DELETE" and message.author is not self.bot:
            self._channel(channel_id, MANAGE_MESSAGES)
        assert channel is message.channel
        return await self._change(call, message)

    @_route("POST", "/channels/{channel_id}/typing")
    @_route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
    @_route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
    async def _acknowledge(self, call: Call, channel_id: str, **_: str) -> web.Response:
        self._channel(channel_id)
        return _json(None)

    @_route("POST", "/users/@me/channels")
    async def _open_dm(self, call: Call) -> web.Response:
        user = self.users.get(_snowflake(str(call.json.get("recipient_id"))))
        if user is None:
            raise _Refused(404, 10013, "Unknown User", record=False)
        return _json(self.dm_channel(user).payload())

    @_route("GET", "/guilds/{guild_id}")
    async def _get_guild(self, call: Call, guild_id: str) -> web.Response:
        return _json(self._guild(guild_id).payload(self.bot, all_members=False))

    @_route("GET", "/guilds/{guild_id}/channels")
    async def _get_guild_channels(self, call: Call, guild_id: str) -> web.Response:
        return _json([c.payload() for c in self._guild(guild_id).channels])

    @_route("GET", "/guilds/{guild_id}/roles")
    async def _get_roles(self, call: Call, guild_id: str) -> web.Response:
        return _json([r.payload() for r in self._guild(guild_id).roles])

    @_route("GET", "/guilds/{guild_id}/members/{user_id}")
    async def _get_member(self, call: Call, guild_id: str, user_id: str) -> web.Response:
        member = self._guild(guild_id).members.get(_snowflake(user_id))
        if member is None:
            raise _Refused(404, 10007, "Unknown Member", record=False)
        return _json(member.payload())

    @_route("GET", "/guilds/{guild_id}/scheduled-events")
    async def _list_events(self, call: Call, guild_id: str) -> web.Response:
        counted = _flag(call.query.get("with_user_count"))
        events = self._guild(guild_id).visible_events(self.bot)
        return _json([e.payload(with_user_count=counted) for e in events])

    @_route("POST", "/guilds/{guild_id}/scheduled-events")
    async def _create_event(self, call: Call, guild_id: str) -> web.Response:
        guild = self._guild(guild_id)
        body: Json = call.json or {}
        for name in ("name", "scheduled_start_time", "privacy_level", "entity_type"):
            if body.get(name) is None:  # checked here too for a fake made with validate=False
                raise _form_error(name, "BASE_TYPE_REQUIRED", "This field is required")
        kind = body["entity_type"]
        channel = self._event_channel(guild, kind, body.get("channel_id"))
        # Create Events: since February 2026 Manage Events alone no longer lets a bot create
        self._may_host(guild, channel, kind, CREATE_EVENTS)
        start = _future_start(body["scheduled_start_time"])
        end = _parse_time("scheduled_end_time", body.get("scheduled_end_time"))
        location = (body.get("entity_metadata") or {}).get("location")
        _check_event_place(kind, start, end, location)
        if sum(e.open for e in guild.scheduled_events.values()) >= MAX_OPEN_EVENTS:
            raise _Refused(400, 30038, ERROR_MESSAGES[30038], record=False)
        event = ScheduledEvent(
            self.next_id(), guild, body["name"], kind, start, end, channel,
            location if kind == EXTERNAL else None, body.get("description"), self.bot,
            image=_image_hash(body.get("image")),
        )
        event.interested[self.bot.id] = self.bot  # the creator is interested, as on Discord
        guild.scheduled_events[event.id] = event
        await self._announce_event(event)
        return _json(event.payload())

    @_route("GET", "/guilds/{guild_id}/scheduled-events/{event_id}")
    async def _get_event(self, call: Call, guild_id: str, event_id: str) -> web.Response:
        event = self._event(guild_id, event_id)
        return _json(event.payload(with_user_count=_flag(call.query.get("with_user_count"))))

    @_route("PATCH", "/guilds/{guild_id}/scheduled-events/{event_id}")
    async def _edit_event(self, call: Call, guild_id: str, event_id: str) -> web.Response:
        event = self._event(guild_id, event_id)
        body: Json = call.json or {}
        kind = body.get("entity_type") or event.entity_type
        if "channel_id" in body or kind != event.entity_type:
            channel = self._event_channel(event.guild, kind, body.get("channel_id"))
        else:
            channel = event.channel
        self._may_manage(event, channel, kind)
        status = body.get("status") or event.status
        # a moderator may have ended or canceled it meanwhile: answers, not refusals
        if not event.open:
            raise _form_error("status", "GUILD_SCHEDULED_EVENT_INVALID_STATUS",
                              "Cannot modify a completed or canceled event.", record=False)
        if status not in EVENT_STATUS_CHANGES[event.status]:
            raise _form_error("status", "GUILD_SCHEDULED_EVENT_INVALID_STATUS_TRANSITION",
                              f"Cannot change an event's status from {event.status} to "
                              f"{status}.", record=False)
        start = event.start
        if "scheduled_start_time" in body:
            if event.status != EVENT_SCHEDULED:
                raise _form_error("scheduled_start_time",
                                  "GUILD_SCHEDULED_EVENT_SCHEDULE_INVALID_START_BY_STATUS",
                                  "Cannot change the start time of an event that has started.")
            start = _future_start(body["scheduled_start_time"])
        end = event.end
        if "scheduled_end_time" in body:
            end = _parse_time("scheduled_end_time", body["scheduled_end_time"])
        location = event.location
        if "entity_metadata" in body:
            location = (body["entity_metadata"] or {}).get("location")
        _check_event_place(kind, start, end, location)
        event.entity_type, event.channel, event.status = kind, channel, status
        event.start, event.end = start, end
        event.location = location if kind == EXTERNAL else None
        event.name = body.get("name") or event.name
        if "description" in body:
            event.description = body["description"]
        if "image" in body:
            event.image = _image_hash(body["image"])
        await self._tell(event.guild, GUILD_SCHEDULED_EVENTS, "GUILD_SCHEDULED_EVENT_UPDATE",
                         event.payload())
        return _json(event.payload())

    @_route("PATCH", "/guilds/{guild_id}/voice-states/@me")
    async def _edit_my_voice_state(self, call: Call, guild_id: str) -> web.Response:
        """The bot on a stage: steps up to speak (``suppress`` false: Mute Members there, as a
        stage moderator), back to the audience, or asks to speak (Request to Speak). As on
        Discord, only in the stage channel it is in; the bot then gets VOICE_STATE_UPDATE."""
        guild = self._guild(guild_id)
        body: Json = call.json or {}
        state = guild.voice_states.get(self.bot.id)
        channel_id = body.get("channel_id")
        if state is None or (channel_id is not None and _snowflake(str(channel_id)) !=
                             state.channel.id):
            raise _Refused(404, 10065, "Unknown Voice State", record=False)
        if state.channel.type != GUILD_STAGE_VOICE:
            raise _Refused(400, 50024, "Cannot execute action on this channel type")
        allowed = guild.member(self.bot).permissions_in(state.channel)
        if body.get("suppress") is False and not allowed & MUTE_MEMBERS:
            raise _Refused(403, 50013, "Missing Permissions", record=False)
        if body.get("request_to_speak_timestamp") and not allowed & REQUEST_TO_SPEAK:
            raise _Refused(403, 50013, "Missing Permissions", record=False)
        if "suppress" in body:
            state.suppress = bool(body["suppress"])
        if "request_to_speak_timestamp" in body:
            state.request_to_speak_timestamp = body["request_to_speak_timestamp"]
        await self._tell(guild, GUILD_VOICE_STATES, "VOICE_STATE_UPDATE", state.payload())
        return _json(None)

    @_route("DELETE", "/guilds/{guild_id}/scheduled-events/{event_id}")
    async def _delete_event(self, call: Call, guild_id: str, event_id: str) -> web.Response:
        event = self._event(guild_id, event_id)
        self._may_manage(event, event.channel, event.entity_type)
        await self.delete_scheduled_event(event)
        return _json(None)

    @_route("GET", "/guilds/{guild_id}/scheduled-events/{event_id}/users")
    async def _event_users(self, call: Call, guild_id: str, event_id: str) -> web.Response:
        """Who is interested, in ascending order of user id (Discord's rule): the first
        ``limit`` after ``after``, or the last ``limit`` before ``before`` (which wins)."""
        event = self._event(guild_id, event_id)
        limit_text = call.query.get("limit", "100")
        limit = int(limit_text) if limit_text.isdigit() else -1
        if not 1 <= limit <= 100:
            raise _form_error("limit", "NUMBER_TYPE_MAX" if limit > 100 else "NUMBER_TYPE_MIN",
                              "Must be between 1 and 100.")
        users = sorted(event.interested.values(), key=lambda u: u.id)
        if "before" in call.query:
            before = _snowflake(call.query["before"])
            users = [u for u in users if u.id < before][-limit:]
        else:
            after = _snowflake(call.query.get("after", "0"))
            users = [u for u in users if u.id > after][:limit]
        with_member = _flag(call.query.get("with_member"))
        answer = []
        for user in users:
            entry: Json = {"guild_scheduled_event_id": str(event.id), "user_id": str(user.id),
                           "user": user.payload(), "response": 1}
            if with_member and user.id in event.guild.members:
                entry["member"] = event.guild.members[user.id].payload()
            answer.append(entry)
        return _json(answer)

    def _event(self, guild_id: str, event_id: str) -> ScheduledEvent:
        """A scheduled event of the guild that the bot may see."""
        guild = self._guild(guild_id)
        event = guild.scheduled_events.get(_snowflake(event_id))
        if event is None or event not in guild.visible_events(self.bot):
            raise _Refused(404, 10070, ERROR_MESSAGES[10070], record=False)
        return event

    def _event_channel(self, guild: Guild, kind: Any, channel_id: Any) -> Channel | None:
        """The channel an event of entity type ``kind`` is to be in: a stage channel for
        ``STAGE_INSTANCE``, a voice channel for ``VOICE``, none for ``EXTERNAL``."""
        if kind == EXTERNAL:
            if channel_id is not None:
                raise _form_error("channel_id", "GUILD_SCHEDULED_EVENT_CHANNEL_NOT_ALLOWED",
                                  "An external event cannot have a channel.")
            return None
        if kind not in (STAGE_INSTANCE, VOICE):
            raise _form_error("entity_type", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}.")
        if channel_id is None:
            raise _form_error("channel_id", "BASE_TYPE_REQUIRED", "This field is required")
        channel = self.channels.get(_snowflake(str(channel_id)))
        if channel is None or channel.guild is not guild:
            raise _Refused(404, 10003, "Unknown Channel", record=False)
        if channel.type != (GUILD_STAGE_VOICE if kind == STAGE_INSTANCE else GUILD_VOICE):
            raise _form_error("channel_id", "CHANNEL_TYPE_INVALID",
                              "Channel type is not valid for this event.")
        return channel

    def _may_host(self, guild: Guild, channel: Channel | None, kind: int, needed: int) -> None:
        """Refuse (403, as an answer) unless the bot has ``needed`` where the event is, and what
        its place takes: View Channel and Connect for a voice channel, Manage Channels, Mute
        Members and Move Members for a stage."""
        bot = guild.member(self.bot)
        have = bot.permissions if channel is None else bot.permissions_in(channel)
        if channel is not None and not have & VIEW_CHANNEL:
            raise _Refused(403, 50001, "Missing Access", record=False)
        needed |= {VOICE: CONNECT, STAGE_INSTANCE: STAGE_MODERATOR}.get(kind, 0)
        if have & needed != needed:
            raise _Refused(403, 50013, "Missing Permissions", record=False)

    def _may_manage(self, event: ScheduledEvent, channel: Channel | None, kind: int) -> None:
        """Editing or deleting an event takes Manage Events, or Create Events for the bot's own
        events (Discord's rule since February 2026)."""
        own = event.creator is self.bot
        try:
            self._may_host(event.guild, channel, kind, MANAGE_EVENTS)
        except _Refused:
            if not own:
                raise
            self._may_host(event.guild, channel, kind, CREATE_EVENTS)


class _Refused(Exception):
    """Raised by a handler to answer with Discord's error body; ``record=False`` for answers
    a correct bot may get (a message deleted meanwhile), which are not refusals."""

    def __init__(
        self, status: int, code: int, message: str, errors: Json | None = None, *,
        record: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.record = record
        self.body: Json = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


class _Session:
    """One gateway session (one shard), on its current connection if it has one: dispatches
    while it has none are kept and replayed on RESUME."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self.ws: web.WebSocketResponse | None = ws
        self.transport = transport
        self.session_id = secrets.token_hex(16)
        self.shard_id = 0
        self.shard_count = 1
        self.intents = 0
        self.seq = 0
        self.ready = False
        self.resumable = True
        self.history: list[Json] = []

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def send(self, payload: Json) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(ConnectionError):  # closing: replayed on RESUME
                await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: Json) -> None:
        self.seq += 1
        payload = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.history.append(payload)
        await self.send(payload)


class _HurriedAsyncio:
    """The asyncio module, with sleeps shortened by ``factor``."""

    def __init__(self, factor: float) -> None:
        self._factor = factor

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: T | None = None) -> T | None:
        return await asyncio.sleep(delay * self._factor, result)


def hurry_retries(monkeypatch: pytest.MonkeyPatch, factor: float = 0.01) -> None:
    """Make discord.py's REST and webhook clients wait ``factor`` times as long between their
    retries (1, 3, 5, 7 s after a 500, 502, 504 or 524; Retry-After after a 429), so a test
    can let them run out."""
    for module in (discord.http, discord.webhook.async_):
        monkeypatch.setattr(module, "asyncio", _HurriedAsyncio(factor))


def _snowflake(value: str) -> int:
    """An id from a path or body, 0 (no such thing) when it is not a number."""
    return int(value) if value.isdigit() else 0


def _shape(body: Any) -> str:
    """``body`` as a key for the checks it passed or failed: discord.py gives every message a
    random nonce, so a valid nonce (a 64-bit integer or a string of at most 25 characters)
    counts as any other."""
    if isinstance(body, dict) and "nonce" in body:
        nonce = body["nonce"]
        if (isinstance(nonce, str) and len(nonce) <= 25) or (
            type(nonce) is int and -(1 << 63) <= nonce < 1 << 63
        ):
            body = {**body, "nonce": type(nonce).__name__}
    return json.dumps(body, sort_keys=True)


def _flag(value: str | None) -> bool:
    """A boolean query parameter (discord.py sends ``1``/``0``, others ``true``/``false``)."""
    return value in ("1", "true", "True")


def _form_error(path: str, code: str, message: str, *, record: bool = True) -> _Refused:
    """Discord's 400 Invalid Form Body naming the field at dotted ``path``."""
    errors: Json = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        errors = {key: errors}
    return _Refused(400, 50035, "Invalid Form Body", errors, record=record)


def _parse_time(name: str, value: Any) -> datetime | None:
    """An ISO 8601 time from a body (UTC when it names no zone); None for None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise _form_error(name, "DATE_TIME_TYPE_PARSE",
                          f"Could not interpret \"{value}\" as a date.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _future_start(value: Any) -> datetime:
    """An event's start time from a body: Discord refuses one that has passed."""
    start = _parse_time("scheduled_start_time", value)
    if start is None:
        raise _form_error("scheduled_start_time", "BASE_TYPE_REQUIRED", "This field is required")
    if start <= datetime.now(UTC):
        raise _form_error("scheduled_start_time", "GUILD_SCHEDULED_EVENT_SCHEDULE_PAST",
                          "Cannot schedule event in the past.")
    return start


def _check_event_place(
    kind: int, start: datetime | None, end: datetime | None, location: str | None
) -> None:
    """Discord's rules on an event's times and place beyond its API description: an end after
    the start; an external event's location and end."""
    if start is not None and end is not None and end <= start:
        raise _form_error("scheduled_end_time", "GUILD_SCHEDULED_EVENT_END_BEFORE_START",
                          "The end time must be after the start time.")
    if kind == EXTERNAL and not location:
        raise _form_error("entity_metadata.location", "BASE_TYPE_REQUIRED",
                          "This field is required")
    if kind == EXTERNAL and end is None:
        raise _form_error("scheduled_end_time", "BASE_TYPE_REQUIRED", "This field is required")


def _image_hash(data: str | None) -> str | None:
    """The hash Discord gives an uploaded image (a ``data:`` URI), None for none."""
    return None if not data else hashlib.md5(data.encode()).hexdigest()


def _require_content(body: Json, files: list[UploadedFile]) -> None:
    """Discord refuses a message with nothing to show."""
    keys = ("content", "embeds", "components", "sticker_ids", "poll")
    if not files and not any(body.get(k) for k in keys):
        raise _Refused(400, 50006, "Cannot send an empty message")


def _bucket_headers(call: Call) -> dict[str, str]:
    """Discord's rate limit headers for a bucket that never runs out."""
    bucket = hashlib.sha1(f"{call.method} {call.route or call.path}".encode()).hexdigest()[:16]
    return {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}", "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket}


def _global_rate_limited(retry_after: float) -> web.Response:
    """Discord's answer to a request over the global rate limit."""
    retry_after = max(round(retry_after, 3), 0.001)
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": True}
    return web.Response(status=429, body=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Via": "1.1 google",
        "Retry-After": str(max(1, int(-(-retry_after // 1)))),
        "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global",
    })


def _json(data: Any, status: int = 200) -> web.Response:
    # exactly "application/json": discord.py treats "...; charset=utf-8" as text
    if data is None:
        return web.Response(status=204)
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json"})


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """The JSON body (a multipart body's ``payload_json``) and uploaded files."""
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()
            if part.name == "payload_json":
                payload = json.loads(data)
            else:
                files.append(UploadedFile(part.name or "", part.filename or "",
                                          part.headers.get("Content-Type", ""), bytes(data)))
        return payload, files
    if not request.can_read_body:
        return None, []
    try:
        return await request.json(), []
    except ValueError:
        raise _Refused(400, 50109, "The request body contains invalid JSON.") from None
