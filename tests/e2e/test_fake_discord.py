"""The fake Discord works with the real discord.py client, and refuses what Discord refuses."""

from __future__ import annotations

import asyncio
import datetime
import io
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.e2e import fake_discord
from tests.e2e.discord_spec import load_spec, reasons
from tests.e2e.fake_discord import FakeDiscord

FRUITS = [f"fruit {n:02d}" for n in range(40)]
SEND = "/channels/{channel_id}/messages"
EDIT = "/channels/{channel_id}/messages/{message_id}"
CALLBACK = "/interactions/{interaction_id}/{token}/callback"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
BUTTON = {"type": 2, "style": 1, "label": "Next", "custom_id": "next"}

demo = app_commands.Group(name="demo", description="Try the fake Discord")
curate = app_commands.Group(name="demo-admin", description="For curators",
                            default_permissions=discord.Permissions(manage_guild=True))
channels = app_commands.Group(name="channels", description="Where the bot answers", parent=curate)


@channels.command(name="add", description="Answer in a channel")
async def add_channel(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
    await interaction.response.send_message(f"answering in {channel.mention}", ephemeral=True)


class Counter(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"demo:count:(?P<n>\d+)"):
    """A button that survives restarts: its count lives in its custom id."""

    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label=f"Count {n}", custom_id=f"demo:count:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> Counter:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None).add_item(Counter(self.n + 1))
        await interaction.response.edit_message(content=f"count {self.n + 1}", view=view)


class Refresh(discord.ui.View):
    """Buttons answered by deferring and editing the original response later."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Refresh", custom_id="demo:refresh")
    async def refresh(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.defer()
        embed = discord.Embed(title="Refreshed", description="d" * 4096)
        await interaction.edit_original_response(embed=embed, view=self)


@demo.command(description="Answer pong")
async def ping(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("pong")


@demo.command(description="Pick a fruit")
@app_commands.describe(fruit="The fruit", amount="How many")
async def pick(
    interaction: discord.Interaction, fruit: str, amount: app_commands.Range[int, 1, 9] = 1
) -> None:
    await interaction.response.send_message(f"{amount} x {fruit}", ephemeral=True)


@pick.autocomplete("fruit")
async def fruit_choices(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=f, value=f) for f in FRUITS if current in f][:25]


@demo.command(description="Start a counter")
async def count(interaction: discord.Interaction) -> None:
    view = discord.ui.View(timeout=None).add_item(Counter(0))
    await interaction.response.send_message("count 0", view=view)


@demo.command(description="Say something too long for Discord")
async def shout(interaction: discord.Interaction, length: int) -> None:
    await interaction.response.send_message("a" * length)


@demo.command(description="Think first, answer later, with everything discord.py can send")
async def tour(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    embed = discord.Embed(title="Tour", description="A guided tour", colour=0x2F3136)
    embed.add_field(name="Step", value="1 of 3").set_footer(text="footer")
    await interaction.followup.send(embed=embed, view=Refresh())
    await interaction.edit_original_response(content="edited", embed=embed, view=Refresh())
    assert isinstance(interaction.channel, discord.TextChannel)
    sent = await interaction.channel.send(
        "a picture", embed=embed, view=Refresh(), file=discord.File(io.BytesIO(PNG), "step.png"),
        allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
    )
    await sent.edit(content="a picture, edited", embed=embed.set_image(url="attachment://step.png"),
                    attachments=sent.attachments, view=None)
    await interaction.followup.send("done", ephemeral=True)


class DemoBot(commands.Bot):
    """A minimal bot: the /demo group, a persistent counter, and answers to mentions and DMs."""

    def __init__(self, guild_id: int, **options: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         allowed_mentions=discord.AllowedMentions.none(), **options)
        self.guild_id = guild_id
        self.errors: asyncio.Queue[app_commands.AppCommandError] = asyncio.Queue()

    async def setup_hook(self) -> None:
        self.tree.add_command(demo)
        self.tree.add_command(curate)
        self.tree.on_error = self.on_app_command_error
        self.add_dynamic_items(Counter)
        self.add_view(Refresh())
        await self.tree.sync()
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.errors.put_nowait(error)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause before IDENTIFYing again: the fake has no identify rate limit."""

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        assert self.user is not None
        if message.guild is None or self.user.mentioned_in(message):
            await message.channel.send(f"heard: {message.content}")


class ShardedDemoBot(commands.AutoShardedBot):
    """Two shards in one process."""

    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), shard_count=2)

    async def setup_hook(self) -> None:
        self.tree.add_command(demo)
        await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause between shards: the fake has no identify rate limit."""


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[DemoBot]:
    bot = DemoBot(fake.guild("Wellness").id)
    async with fake.run(bot):
        yield bot


async def test_login_syncs_the_group_globally_and_to_the_guild(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    assert {g.name for g in bot.guilds} == {"Wellness", "Retreat"}
    assert fake.calls_to("GET", "/users/@me") and fake.calls_to("GET", "/oauth2/applications/@me")
    for scope in (None, bot.guild_id):
        command, admin = fake.commands[scope]
        assert command["name"] == "demo" and command["id"].isdigit()
        assert admin["default_member_permissions"] == str(discord.Permissions.manage_guild.flag)
        assert admin["options"][0]["type"] == 2 and admin["options"][0]["options"][0]["type"] == 1
        subcommands = {o["name"]: o for o in command["options"]}
        assert set(subcommands) == {"ping", "pick", "count", "shout", "tour"}
        assert all(o["type"] == 1 for o in subcommands.values())
        fruit, amount = subcommands["pick"]["options"]
        assert (fruit["name"], fruit["type"], fruit["required"], fruit["autocomplete"]) == (
            "fruit", 3, True, True)
        assert (amount["min_value"], amount["max_value"]) == (1, 9)
    assert fake.commands[bot.guild_id][0]["guild_id"] == str(bot.guild_id)
    synced = await bot.tree.fetch_commands(guild=discord.Object(bot.guild_id))
    assert [c.name for c in synced] == ["demo", "demo-admin"]


async def test_subcommand_groups_and_default_permissions(fake: FakeDiscord, bot: DemoBot) -> None:
    wellness = fake.guild("Wellness")
    general, sessions = wellness.channel("general"), wellness.channel("sessions")
    interaction = await fake.slash(fake.user("dana"), general, "demo-admin", "channels", "add",
                                   channel=sessions)
    callback = await interaction.response()
    assert callback.json["data"]["content"] == f"answering in <#{sessions.id}>"
    with pytest.raises(PermissionError):
        await fake.slash(fake.user("carol"), general, "demo-admin", "channels", "add",
                         channel=sessions)


async def test_slash_command_is_answered(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    interaction = await fake.slash(alice, general, "demo", "ping")
    callback = await interaction.response()
    assert callback.json["type"] == 4 and callback.json["data"]["content"] == "pong"
    assert callback.query["with_response"] == "1"
    assert interaction.original is not None and interaction.original.content == "pong"
    pick = await fake.slash(alice, general, "demo", "pick", fruit="fruit 07", amount=3)
    assert (await pick.response()).json["data"]["content"] == "3 x fruit 07"
    assert pick.original is not None and pick.original.ephemeral


async def test_slash_refuses_what_discords_client_would_not_send(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    with pytest.raises(LookupError):
        await fake.slash(alice, general, "nope")
    with pytest.raises(ValueError, match="needs one of the subcommands"):
        await fake.slash(alice, general, "demo")
    with pytest.raises(ValueError, match="misses required options"):
        await fake.slash(alice, general, "demo", "pick")
    with pytest.raises(ValueError, match="out of its range"):
        await fake.slash(alice, general, "demo", "pick", fruit="x", amount=10)


async def test_autocomplete_offers_at_most_25_choices(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    choices = await fake.autocomplete(alice, general, "demo", "pick", fruit="fruit")
    assert len(choices) == 25
    assert await fake.autocomplete(alice, general, "demo", "pick", fruit="3") == [
        {"name": f, "value": f} for f in FRUITS if "3" in f
    ]


async def test_buttons_work_across_a_restart(fake: FakeDiscord) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    async with fake.run(DemoBot(fake.guild("Wellness").id)):
        interaction = await fake.slash(alice, general, "demo", "count")
        await interaction.response()
        message = interaction.original
        assert message is not None
        pressed = await fake.press(alice, message, "Count 0")
        assert (await pressed.response()).json["type"] == 7
        assert message.content == "count 1" and message.button("demo:count:1")
    # a new bot process reads the state back from the button's custom id
    async with fake.run(DemoBot(fake.guild("Wellness").id)):
        pressed = await fake.press(fake.user("bob"), message, "demo:count:1")
        await pressed.response()
        assert message.content == "count 2" and message.button("Count 2")


async def test_a_body_breaking_a_limit_is_refused(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    fine = await fake.slash(alice, general, "demo", "shout", length=2000)
    await fine.response()
    too_long = await fake.slash(alice, general, "demo", "shout", length=2001)
    call = await fake.wait_for_call("POST", rf"/interactions/{too_long.id}/.+/callback")
    assert call.status == 400 and call.response["code"] == 50035
    (refusal,) = fake.refusals
    assert refusal.reasons == [
        "data.content: Must be 2000 or fewer in length. (BASE_TYPE_MAX_LENGTH)"
    ]
    assert not too_long.callback.done()
    error = await asyncio.wait_for(bot.errors.get(), 2.0)
    assert isinstance(error.__cause__, discord.HTTPException) and error.__cause__.status == 400
    fake.refusals.clear()


@pytest.mark.parametrize(("body", "reason"), [
    ({"type": 4, "data": {"embeds": [{"description": "d" * 4097}]}},
     "data.embeds.0.description: Must be 4096 or fewer in length. (BASE_TYPE_MAX_LENGTH)"),
    ({"type": 4, "data": {"components": [
        {"type": 1, "components": [{**BUTTON, "custom_id": str(n)} for n in range(6)]}]}},
     "data.components.0.components: Must be 5 or fewer in length. (BASE_TYPE_MAX_LENGTH)"),
    ({"type": 7, "data": {"components": [
        {"type": 1, "components": [{**BUTTON, "custom_id": "x" * 101}]}]}},
     "data.components.0.components.0.custom_id: Must be 100 or fewer in length. "
     "(BASE_TYPE_MAX_LENGTH)"),
    ({"type": 4, "data": {"components": [{"type": 1, "components": [BUTTON, BUTTON]}]}},
     "data.components.0.components.1.custom_id: Component custom id cannot be duplicated "
     "(COMPONENT_CUSTOM_ID_DUPLICATED)"),
    ({"type": 4, "data": {"components": [
        {"type": 1, "components": [{**BUTTON, "custom_id": str(n)}]} for n in range(6)]}},
     "data.components: Must be 5 or fewer in length. (BASE_TYPE_MAX_LENGTH)"),
    ({"type": 4, "data": {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}},
     "data.embeds: Embed size exceeds maximum size of 6000 (MAX_EMBED_SIZE_EXCEEDED)"),
    ({"type": 8, "data": {"choices": [{"name": "n", "value": "v"}] * 26}},
     "data.choices: Must be 25 or fewer in length. (BASE_TYPE_MAX_LENGTH)"),
])
def test_the_limits_discord_enforces(body: dict[str, Any], reason: str) -> None:
    spec = load_spec()
    callback = spec.operation("POST", "/interactions/1/token/callback")
    assert callback is not None
    assert reasons(spec.check(callback, body)) == [reason]


async def test_discord_py_bodies_pass_validation(fake: FakeDiscord, bot: DemoBot) -> None:
    """Callback types 5, 6 (and 4, 7, 8 above), follow-ups, edits with embeds and components,
    and a multipart message with a PNG, as discord.py sends them."""
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    interaction = await fake.slash(alice, general, "demo", "tour")
    assert (await interaction.response()).json["type"] == 5
    done = await fake.wait_for_call("POST", rf"/webhooks/\d+/{interaction.token}",
                                    where=lambda c: c.json.get("content") == "done")
    assert done.status == 200 and interaction.followups[-1].ephemeral
    assert interaction.original is not None and not interaction.original.loading
    assert interaction.original.content == "edited"

    (upload,) = fake.calls_to("POST", rf"/channels/{general.id}/messages")
    assert upload.files[0].filename == "step.png" and upload.files[0].data == PNG
    picture = fake.messages[int(upload.response["id"])]
    assert picture.content == "a picture, edited" and picture.components == []
    assert [a["filename"] for a in picture.attachments] == ["step.png"]
    assert picture.mentions == [] and picture.embeds[0]["image"]["url"] == "attachment://step.png"

    followup = interaction.original
    pressed = await fake.press(alice, followup, "Refresh")
    assert (await pressed.response()).json == {"type": 6}
    await fake.wait_for_call("PATCH", rf"/webhooks/\d+/{pressed.token}/messages/@original")
    assert followup.embeds[0]["title"] == "Refreshed"
    assert all(c.status < 300 for c in fake.calls), [str(c) for c in fake.calls]


async def test_mentions_and_direct_messages_reach_the_bot(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    unmentioned = asyncio.create_task(bot.wait_for("message", timeout=2.0))
    await fake.send_message(alice, general, "nobody is talking to the bot")
    # without the message content intent, Discord hides the content of other messages
    assert (await unmentioned).content == ""

    start = len(fake.calls)
    await fake.send_message(alice, general, f"{fake.bot.mention} hello @everyone")
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages", since=start)
    assert reply.json["content"] == f"heard: <@{fake.bot.id}> hello @everyone"
    answer = fake.messages[int(reply.response["id"])]
    assert answer.mentions == [] and not answer.mention_everyone  # AllowedMentions.none()

    start = len(fake.calls)
    await fake.send_message(alice, general, "thanks", reference=answer)  # a reply pings the bot
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages", since=start)
    assert reply.json["content"] == "heard: thanks"

    dm = fake.dm_channel(alice)
    await fake.send_message(alice, dm, "hi in private")
    reply = await fake.wait_for_call("POST", rf"/channels/{dm.id}/messages")
    assert reply.json["content"] == "heard: hi in private"


async def test_commands_and_buttons_in_direct_messages(fake: FakeDiscord, bot: DemoBot) -> None:
    alice = fake.user("alice")
    interaction = await fake.slash(alice, fake.dm_channel(alice), "demo", "count")
    await interaction.response()
    assert interaction.original is not None
    pressed = await fake.press(alice, interaction.original, "Count 0")
    await pressed.response()
    assert interaction.original.content == "count 1"


async def test_common_rest_calls(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, wellness = fake.user("alice"), fake.guild("Wellness")
    channel = await bot.fetch_channel(wellness.channel("general").id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    sent = await channel.send("hello")
    assert (await channel.fetch_message(sent.id)).content == "hello"
    async with channel.typing():
        await sent.add_reaction("\N{THUMBS UP SIGN}")
    assert [m.id async for m in channel.history(limit=5)] == [sent.id]
    await sent.delete()
    with pytest.raises(discord.NotFound):  # an answer, not a refusal
        await channel.fetch_message(sent.id)
    dm = await (await bot.fetch_user(alice.id)).create_dm()
    assert dm.id == fake.dm_channel(alice).id
    guild = bot.get_guild(wellness.id)
    assert guild is not None and (await guild.fetch_member(alice.id)).name == "alice"
    assert fake.unhandled == []


async def test_privileged_intents_must_be_enabled(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with fake.run(commands.Bot(command_prefix="!", intents=discord.Intents.all())):
            pass
    fake.privileged_intents = fake_discord.PRIVILEGED_INTENTS
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None and len(guild.members) == len(wellness.members)
        assert len(await guild.chunk()) == len(wellness.members)


async def test_late_and_repeated_acknowledgements_are_refused(
    fake: FakeDiscord, bot: DemoBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    interaction = await fake.slash(alice, general, "demo", "ping")
    await interaction.response()
    url = f"{fake.api_base}/interactions/{interaction.id}/{interaction.token}/callback"
    async with aiohttp.ClientSession() as session, session.post(
        url, json={"type": 4, "data": {"content": "again"}}
    ) as again:
        assert again.status == 400 and (await again.json())["code"] == 40060

    monkeypatch.setattr(fake_discord, "INTERACTION_DEADLINE", 0.0)
    late = await fake.slash(alice, general, "demo", "ping")
    call = await fake.wait_for_call("POST", rf"/interactions/{late.id}/.+/callback")
    assert call.response["code"] == 10062
    assert [r.code for r in fake.refusals] == [40060, 10062]
    fake.refusals.clear()


async def test_unknown_routes_answer_404_and_are_recorded(fake: FakeDiscord, bot: DemoBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nowhere/{x}", x=1))
    assert [c.path for c in fake.unhandled] == ["/nowhere/1"]
    assert fake.unhandled[0].response == {"message": "404: Not Found", "code": 0}


async def test_shards_each_get_their_guilds(fake: FakeDiscord) -> None:
    alice = fake.user("alice")
    bot = ShardedDemoBot()
    async with fake.run(bot):
        assert {g.name for g in bot.guilds} == {"Wellness", "Retreat"}
        assert sorted(bot.shards) == [0, 1] and {g.shard_id for g in bot.guilds} == {0, 1}
        for guild in ("Wellness", "Retreat"):
            interaction = await fake.slash(alice, fake.guild(guild).channel("general"),
                                           "demo", "ping")
            await interaction.response()


async def test_clients_on_different_shards_each_hear_only_their_guilds(fake: FakeDiscord) -> None:
    alice, wellness, retreat = fake.user("alice"), fake.guild("Wellness"), fake.guild("Retreat")
    assert fake.shard_of(wellness, 2) != fake.shard_of(retreat, 2)
    clients = {shard: DemoBot(wellness.id, shard_id=shard, shard_count=2) for shard in (0, 1)}
    heard: dict[int, list[str]] = {0: [], 1: []}
    for shard, client in clients.items():

        async def hear(message: discord.Message, shard: int = shard) -> None:
            if not message.author.bot:
                heard[shard].append(message.content)

        client.add_listener(hear, "on_message")
    async with fake.run(clients[0]), fake.run(clients[1]):
        for shard, client in clients.items():
            (guild,) = client.guilds
            assert fake.shard_of(fake.guilds[guild.id], 2) == shard
            assert [e.what for e in fake.gateway_log if e.shard_id == shard][:2] == [
                "IDENTIFY", "READY"
            ]
        for guild in (wellness, retreat):
            await fake.send_message(alice, guild.channel("general"),
                                    f"{fake.bot.mention} in {guild.name}")  # fmt: skip
        await fake.send_message(alice, fake.dm_channel(alice), "in a DM")
        await fake.wait_for_call("POST", rf"/channels/{fake.dm_channel(alice).id}/messages")
    by_shard = {fake.shard_of(g, 2): f"{fake.bot.mention} in {g.name}" for g in (wellness, retreat)}
    assert heard[0] == [by_shard[0], "in a DM"] and heard[1] == [by_shard[1]]


async def test_nothing_leaves_the_loopback_interface(
    fake: FakeDiscord, offline: list[str]
) -> None:
    assert fake.api_base == discord.http.Route.BASE
    with pytest.raises(OSError):
        await asyncio.get_running_loop().getaddrinfo("discord.com", 443)
    assert offline == ["lookup of discord.com"]
    offline.clear()


# --- faults: Discord failing on purpose -------------------------------------------------------


def text_channel(bot: DemoBot, channel: fake_discord.Channel) -> discord.TextChannel:
    """The bot's view of a fake guild channel."""
    found = bot.get_channel(channel.id)
    assert isinstance(found, discord.TextChannel)
    return found


def edits_of(fake: FakeDiscord, message: discord.Message) -> list[fake_discord.Call]:
    return fake.calls_to("PATCH", rf"/channels/\d+/messages/{message.id}")


async def test_a_503_fails_an_edit_at_once_and_edits_nothing(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    sent = await text_channel(bot, fake.guild("Wellness").channel("general")).send("before")
    unavailable = fake.fail("PATCH", EDIT, 503)
    with pytest.raises(discord.DiscordServerError) as failed:
        await sent.edit(content="after")
    assert (failed.value.status, failed.value.text) == (503, "503: Service Unavailable")
    assert fake.messages[sent.id].content == "before"
    (edit,) = edits_of(fake, sent)  # discord.py does not retry a 503
    assert edit.fault is unavailable and edit.status == 503
    assert unavailable.fired == 1 and not unavailable.active and unavailable.calls == [edit]
    await sent.edit(content="after")  # the fault fired its one time
    assert fake.messages[sent.id].content == "after"


async def test_a_refused_send_creates_no_message(fake: FakeDiscord, bot: DemoBot) -> None:
    channel = text_channel(bot, fake.guild("Wellness").channel("general"))
    before = len(fake.messages)
    fake.fail("POST", SEND, 403, code=50013)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello")
    assert (refused.value.code, refused.value.text) == (50013, "Missing Permissions")
    assert len(fake.messages) == before


@pytest.mark.parametrize(("status", "code", "error", "text"), [
    (403, 50013, discord.Forbidden, "Missing Permissions"),
    (403, 50001, discord.Forbidden, "Missing Access"),
    (404, 10008, discord.NotFound, "Unknown Message"),
    (404, 10003, discord.NotFound, "Unknown Channel"),
])
async def test_discords_error_codes_reach_discord_py(
    fake: FakeDiscord, bot: DemoBot, status: int, code: int, error: type[Exception], text: str
) -> None:
    sent = await text_channel(bot, fake.guild("Wellness").channel("general")).send("before")
    fake.fail("PATCH", EDIT, status, code=code)
    with pytest.raises(error) as failed:
        await sent.edit(content="after")
    assert isinstance(failed.value, discord.HTTPException)
    assert (failed.value.status, failed.value.code, failed.value.text) == (status, code, text)
    assert fake.messages[sent.id].content == "before"
    assert fake.calls[-1].response == {"message": text, "code": code}


async def test_discord_py_retries_500_502_and_webhook_503s_then_gives_up(
    fake: FakeDiscord, bot: DemoBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_discord.hurry_retries(monkeypatch)  # its 1, 3, 5, 7 s waits in milliseconds
    sent = await text_channel(bot, fake.guild("Wellness").channel("general")).send("before")
    fake.fail("PATCH", EDIT, 500, times=2)
    await sent.edit(content="third time lucky")
    assert [c.status for c in edits_of(fake, sent)] == [500, 500, 200]
    assert fake.messages[sent.id].content == "third time lucky"

    cloudflare = "<html><head><title>502 Bad Gateway</title></head></html>"
    bad_gateway = fake.fail("PATCH", EDIT, 502, body=cloudflare, times=None)
    with pytest.raises(discord.DiscordServerError) as failed:
        await sent.edit(content="never")
    assert bad_gateway.fired == 5 and failed.value.text == cloudflare  # five tries in all
    assert edits_of(fake, sent)[-1].response == cloudflare
    bad_gateway.remove()
    assert bad_gateway not in fake.faults and not any(f.active for f in fake.faults)
    assert fake.messages[sent.id].content == "third time lucky"

    # interaction webhooks retry every 5xx, 503 included
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    original = "/webhooks/{application_id}/{token}/messages/@original"
    fake.fail("PATCH", original, 503)
    interaction = await fake.slash(alice, general, "demo", "tour")
    await fake.wait_for_call("POST", rf"/webhooks/\d+/{interaction.token}",
                             where=lambda c: c.json.get("content") == "done")
    edits = fake.calls_to("PATCH", rf"/webhooks/\d+/{interaction.token}/messages/@original")
    assert [c.status for c in edits] == [503, 200]
    assert interaction.original is not None and interaction.original.content == "edited"


async def test_a_429_is_waited_out_and_the_edit_lands(fake: FakeDiscord, bot: DemoBot) -> None:
    sent = await text_channel(bot, fake.guild("Wellness").channel("general")).send("before")
    limited = fake.rate_limit("PATCH", EDIT, retry_after=0.05)
    start = time.monotonic()
    await sent.edit(content="after the wait")
    assert time.monotonic() - start >= 0.05
    first, second = edits_of(fake, sent)
    assert (first.status, first.fault, second.status, second.fault) == (429, limited, 200, None)
    assert first.response == {
        "message": "You are being rate limited.", "retry_after": 0.05, "global": False
    }
    assert fake.messages[sent.id].content == "after the wait"

    # a global limit holds every request of the bot, then lets the waiting one through
    fake.rate_limit("GET", "/users/{user_id}", retry_after=0.05, scope="global")
    alice = fake.user("alice")
    assert (await bot.fetch_user(alice.id)).name == "alice"
    assert [c.status for c in fake.calls_to("GET", rf"/users/{alice.id}")] == [429, 200]

    # a 429 without Discord's Via header is Cloudflare's ban page: discord.py gives up at once
    fake.fail("GET", "/users/{user_id}", 429, body="<html>error 1015</html>")
    with pytest.raises(discord.HTTPException) as banned:
        await bot.fetch_user(alice.id)
    assert banned.value.status == 429


async def test_rate_limit_answers_have_discords_headers_and_body(fake: FakeDiscord) -> None:
    fake.rate_limit("GET", "/users/@me", retry_after=1.5, code=20028)
    fake.rate_limit("GET", "/users/@me", retry_after=0.25, scope="shared")
    fake.rate_limit("GET", "/users/@me", retry_after=2.0, scope="global")
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        answers = []
        for _ in range(3):
            async with session.get(f"{fake.api_base}/users/@me") as answer:
                answers.append((answer.status, answer.headers, await answer.json()))
    (status, user, body), (_, shared, shared_body), (_, whole, global_body) = answers
    assert status == 429 and user["Content-Type"] == "application/json" and user["Via"]
    assert (user["Retry-After"], user["X-RateLimit-Remaining"], user["X-RateLimit-Scope"]) == (
        "2", "0", "user")
    assert float(user["X-RateLimit-Reset-After"]) == 1.5
    assert float(user["X-RateLimit-Reset"]) == pytest.approx(time.time() + 1.5, abs=1)
    assert user["X-RateLimit-Limit"] and user["X-RateLimit-Bucket"]
    assert "X-RateLimit-Global" not in user
    assert body == {"message": "You are being rate limited.", "retry_after": 1.5,
                    "global": False, "code": 20028}
    assert shared["X-RateLimit-Scope"] == "shared"
    assert shared_body["message"] == "The resource is being rate limited."
    assert (whole["X-RateLimit-Global"], whole["X-RateLimit-Scope"]) == ("true", "global")
    assert "X-RateLimit-Bucket" not in whole and global_body["global"] is True


async def test_fault_rules_match_by_method_path_and_where(fake: FakeDiscord, bot: DemoBot) -> None:
    general, sessions = (fake.guild("Wellness").channel(n) for n in ("general", "sessions"))
    channel = text_channel(bot, general)
    only_x = fake.fail("POST", f"/channels/{general.id}/messages", 403, code=50013,
                       times=None, where=lambda call: call.json["content"] == "x")
    for _ in range(2):
        with pytest.raises(discord.Forbidden):
            await channel.send("x")
    await channel.send("y")
    await text_channel(bot, sessions).send("x")  # another channel
    assert only_x.fired == 2 and only_x.active
    only_x.remove()
    await channel.send("x")

    anything = fake.fail("*", re.compile(r"/channels/\d+(/.*)?"), 404, code=10003, times=None)
    with pytest.raises(discord.NotFound):
        await bot.fetch_channel(general.id)
    with pytest.raises(discord.NotFound):
        await channel.send("z")
    fake.clear_faults()
    assert not anything.active and fake.faults == []
    assert (await bot.fetch_channel(general.id)).id == general.id
    caught = [(c.method, c.fault) for c in fake.calls if c.fault]
    assert caught == [("POST", only_x)] * 2 + [("GET", anything), ("POST", anything)]
    with pytest.raises(ValueError):
        fake.fail("GET", "/users/@me", 200)


async def test_a_slow_answer_lets_a_later_edit_land_first(fake: FakeDiscord, bot: DemoBot) -> None:
    general, sessions = (fake.guild("Wellness").channel(n) for n in ("general", "sessions"))
    first = await text_channel(bot, general).send("first")
    second = await text_channel(bot, sessions).send("second")
    slow = fake.delay("PATCH", f"/channels/{{channel_id}}/messages/{first.id}", 0.2)
    updates: list[int] = []

    async def on_raw_message_edit(payload: discord.RawMessageUpdateEvent) -> None:
        updates.append(payload.message_id)

    bot.add_listener(on_raw_message_edit)
    both = asyncio.create_task(bot.wait_for(
        "raw_message_edit", check=lambda payload: payload.message_id == first.id, timeout=2.0))
    early = asyncio.create_task(first.edit(content="sent first"))
    await slow.wait()
    await second.edit(content="sent second")
    assert not early.done()
    await early
    assert [c.path for c in fake.calls if c.method == "PATCH"] == [
        f"/channels/{sessions.id}/messages/{second.id}",
        f"/channels/{general.id}/messages/{first.id}",
    ]
    await both
    assert updates == [second.id, first.id]  # MESSAGE_UPDATE in the order Discord applied them


async def test_held_answers_can_be_released_in_the_other_order(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    sent = await text_channel(bot, fake.guild("Wellness").channel("general")).send("zero")
    # without rate limit headers discord.py sends one request of a bucket at a time
    held = fake.hold("PATCH", EDIT)
    first = asyncio.create_task(sent.edit(content="one"))
    await held.wait()
    second = asyncio.create_task(sent.edit(content="two"))
    await asyncio.sleep(0.1)
    assert edits_of(fake, sent) == []  # the second edit waits inside discord.py
    held.release()
    await asyncio.gather(first, second)
    assert fake.messages[sent.id].content == "two"

    # with them (as from Discord) it sends both at once, and Discord may serve them reversed
    fake.rate_limit_headers = True
    await sent.edit(content="zero")  # the bucket's first answer carries the headers
    one, two = fake.hold("PATCH", EDIT), fake.hold("PATCH", EDIT)
    first = asyncio.create_task(sent.edit(content="one"))
    await one.wait()
    second = asyncio.create_task(sent.edit(content="two"))
    await two.wait()
    two.release()
    await second
    assert fake.messages[sent.id].content == "two" and not first.done()
    one.release()
    await first
    assert fake.messages[sent.id].content == "one"  # the earlier edit landed last


async def test_two_presses_answered_in_the_other_order(fake: FakeDiscord, bot: DemoBot) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    counted = await fake.slash(alice, fake.guild("Wellness").channel("general"), "demo", "count")
    await counted.response()
    assert counted.original is not None
    first_hold, second_hold = fake.hold("POST", CALLBACK), fake.hold("POST", CALLBACK)
    first = await fake.press(alice, counted.original, "Count 0")
    await first_hold.wait()
    second = await fake.press(bob, counted.original, "Count 0")
    await second_hold.wait()
    second_hold.release()
    await second.response()
    assert not first.callback.done()
    first_hold.release()
    await first.response()
    answered = [c.path.split("/")[2] for c in fake.calls_to("POST", r"/interactions/.+")]
    assert answered[-2:] == [str(second.id), str(first.id)]


async def test_a_callback_reaching_discord_too_late_gets_10062(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    late = fake.callback_too_late(after=0.05)
    interaction = await fake.slash(alice, general, "demo", "ping")
    error = await asyncio.wait_for(bot.errors.get(), 2.0)
    assert isinstance(error.__cause__, discord.NotFound) and error.__cause__.code == 10062
    assert error.__cause__.text == "Unknown interaction"
    assert late.fired == 1 and not interaction.callback.done() and interaction.original is None

    # the other case: the user saw the answer, yet the bot was told 10062
    fake.callback_too_late(after=0.05, applied=True)
    shown = await fake.slash(alice, general, "demo", "ping")
    error = await asyncio.wait_for(bot.errors.get(), 2.0)
    assert isinstance(error.__cause__, discord.NotFound) and error.__cause__.code == 10062
    assert shown.original is not None and shown.original.content == "pong"


async def test_an_expired_interaction_refuses_its_follow_ups(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    followup = fake.hold("POST", "/webhooks/{application_id}/{token}")
    interaction = await fake.slash(alice, general, "demo", "tour")  # defers, then follows up
    await followup.wait()
    fake.expire(interaction)
    followup.release()
    error = await asyncio.wait_for(bot.errors.get(), 2.0)
    assert isinstance(error.__cause__, discord.HTTPException)
    assert (error.__cause__.status, error.__cause__.code) == (401, 50027)
    assert interaction.original is not None and interaction.original.loading


async def test_deleted_messages_and_channels_are_gone_for_the_bot(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    wellness = fake.guild("Wellness")
    general, sessions = wellness.channel("general"), wellness.channel("sessions")
    sent = await text_channel(bot, general).send("soon gone")
    deleted = asyncio.create_task(bot.wait_for("raw_message_delete", timeout=2.0))
    await fake.delete_message(fake.messages[sent.id])
    assert (await deleted).message_id == sent.id
    with pytest.raises(discord.NotFound) as gone:
        await sent.edit(content="edited")
    assert gone.value.code == 10008

    channel = text_channel(bot, sessions)
    there = await channel.send("in a channel soon gone")
    removed = asyncio.create_task(bot.wait_for("guild_channel_delete", timeout=2.0))
    await fake.delete_channel(sessions)
    assert (await removed).id == sessions.id and bot.get_channel(sessions.id) is None
    for request in (channel.send("anyone?"), there.edit(content="edited")):
        with pytest.raises(discord.NotFound) as unknown:
            await request
        assert unknown.value.code == 10003
    with pytest.raises(ValueError, match="deleted"):
        await fake.slash(fake.user("alice"), sessions, "demo", "ping")


async def test_permission_overwrites_refuse_what_the_bot_may_no_longer_do(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    wellness, alice = fake.guild("Wellness"), fake.user("alice")
    general = wellness.channel("general")
    channel = text_channel(bot, general)
    sent = await channel.send("before")
    updated = asyncio.create_task(bot.wait_for("guild_channel_update", timeout=2.0))
    await fake.set_permissions(general, fake.bot, deny=discord.Permissions(send_messages=True))
    await updated
    assert not channel.permissions_for(channel.guild.me).send_messages  # discord.py knows
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello")
    assert (refused.value.code, refused.value.text) == (50013, "Missing Permissions")
    await sent.edit(content="edited anyway")  # as on Discord: own messages stay editable
    interaction = await fake.slash(alice, general, "demo", "ping")  # responses need no permission
    await interaction.response()
    assert not int(interaction.payload["app_permissions"]) & fake_discord.SEND_MESSAGES

    await fake.set_permissions(general, wellness.everyone,
                               deny=discord.Permissions(view_channel=True))
    with pytest.raises(discord.Forbidden) as hidden:
        await sent.edit(content="edited again")
    assert (hidden.value.code, hidden.value.text) == (50001, "Missing Access")
    await fake.set_permissions(general, wellness.everyone)  # no overwrites: as before
    await fake.set_permissions(general, fake.bot)
    assert general.overwrites == {}
    await channel.send("back")


# --- faults: the gateway ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 4000, 1006])
async def test_a_dropped_gateway_is_resumed_and_missed_events_replayed(
    fake: FakeDiscord, bot: DemoBot, code: int
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    since, start = len(fake.gateway_log), len(fake.calls)
    resumed = asyncio.create_task(bot.wait_for("resumed", timeout=3.0))
    await fake.close_gateway(code)
    await fake.send_message(alice, general, f"{fake.bot.mention} are you there?")  # meanwhile
    await resumed
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages", since=start)
    assert reply.json["content"] == f"heard: {fake.bot.mention} are you there?"
    assert [e.what for e in fake.gateway_log[since:]] == ["CLOSE", "RESUME", "RESUMED"]
    assert fake.gateway_log[since].detail == code


async def test_a_session_discord_forgot_makes_the_bot_identify_again(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    since = len(fake.gateway_log)
    await fake.close_gateway(4009)  # session timed out
    await fake.wait_for_gateway("READY", since=since)
    assert [str(e) for e in fake.gateway_log[since:]] == [
        "shard 0: CLOSE 4009", "shard 0: RESUME", "shard 0: INVALID_SESSION False",
        "shard 0: IDENTIFY", "shard 0: READY",
    ]
    await fake.wait_until_ready()
    interaction = await fake.slash(fake.user("alice"), fake.guild("Wellness").channel("general"),
                                   "demo", "ping")
    await interaction.response()


async def test_reconnect_and_invalid_session_opcodes(fake: FakeDiscord, bot: DemoBot) -> None:
    def since(start: int) -> list[str]:
        return [e.what for e in fake.gateway_log[start:] if e.what != "DISCONNECT"]

    start = len(fake.gateway_log)
    await fake.request_reconnect()  # op 7: the bot closes and resumes
    await fake.wait_for_gateway("RESUMED", since=start)
    assert since(start) == ["RECONNECT", "RESUME", "RESUMED"]
    assert fake_discord.GatewayEvent(0, "DISCONNECT", 4000) in fake.gateway_log[start:]

    start = len(fake.gateway_log)
    await fake.invalidate_session(resumable=True)  # op 9 true: resume
    await fake.wait_for_gateway("RESUMED", since=start)
    assert since(start) == ["INVALID_SESSION", "RESUME", "RESUMED"]

    start = len(fake.gateway_log)
    ready = asyncio.create_task(bot.wait_for("ready", timeout=3.0))
    await fake.invalidate_session()  # op 9 false: a new session
    await ready
    assert since(start) == ["INVALID_SESSION", "IDENTIFY", "READY"]
    await fake.wait_until_ready()


# --- scheduled events ------------------------------------------------------------------------


def bare_bot(*, members: bool = False, **intents: bool) -> commands.Bot:
    """A bot with the default intents (``intents`` switch some off or on; ``members`` adds the
    privileged one, which the test must enable on the fake), hearing every gateway event."""
    flags = discord.Intents.default()
    flags.members = members
    for name, value in intents.items():
        setattr(flags, name, value)
    return commands.Bot(command_prefix=commands.when_mentioned, intents=flags,
                        enable_debug_events=True)


def heard(bot: commands.Bot) -> list[str]:
    """The gateway events ``bot`` receives from now on, by name."""
    names: list[str] = []

    async def on_socket_event_type(event_type: str) -> None:
        names.append(event_type)

    bot.add_listener(on_socket_event_type)
    return names


def soon(hours: float = 1.0) -> datetime.datetime:
    return discord.utils.utcnow() + datetime.timedelta(hours=hours)


def grant(fake: FakeDiscord, guild: fake_discord.Guild, permissions: int) -> None:
    """Before login: give the bot's own role ``permissions`` too."""
    guild.role(fake.bot.name).permissions |= permissions


async def test_the_bot_creates_lists_starts_ends_and_deletes_events(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    room = fake.add_channel(wellness, "Massage room", type=fake_discord.GUILD_VOICE)
    grant(fake, wellness, fake_discord.CREATE_EVENTS)
    bot = bare_bot()
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        voice_room = guild.get_channel(room.id)
        assert isinstance(voice_room, discord.VoiceChannel)
        created = asyncio.create_task(bot.wait_for("scheduled_event_create", timeout=2.0))
        outside = await guild.create_scheduled_event(
            name="Shoulder class", start_time=soon(1), end_time=soon(2), location="Studio 4",
            entity_type=discord.EntityType.external, privacy_level=discord.PrivacyLevel.guild_only,
        )
        assert (await created).id == outside.id and guild.get_scheduled_event(outside.id)
        inside = await guild.create_scheduled_event(
            name="Live demo", start_time=soon(3), channel=voice_room,
            privacy_level=discord.PrivacyLevel.guild_only, description="Upper back",
        )
        assert (outside.location, outside.entity_type) == ("Studio 4", discord.EntityType.external)
        assert (inside.channel_id, inside.entity_type) == (room.id, discord.EntityType.voice)
        assert inside.status is discord.EventStatus.scheduled and inside.creator_id == fake.bot.id

        first, second = fake.scheduled_events(wellness)
        assert (first.name, first.location, first.end) == ("Shoulder class", "Studio 4",
                                                           outside.end_time)
        assert second.channel is room and second.entity_type == fake_discord.VOICE
        assert list(second.interested) == [fake.bot.id]  # the creator is interested
        listed = await guild.fetch_scheduled_events(with_counts=True)
        assert [(e.name, e.user_count) for e in listed] == [("Shoulder class", 1), ("Live demo", 1)]
        assert (await guild.fetch_scheduled_event(inside.id)).description == "Upper back"

        updated = asyncio.create_task(bot.wait_for("scheduled_event_update", timeout=2.0))
        renamed = await inside.edit(name="Live demo, upper back", start_time=soon(4))
        assert renamed.name == second.name == "Live demo, upper back"
        before, after = await updated
        assert (before.name, after.name) == ("Live demo", "Live demo, upper back")
        started = await renamed.start()
        assert started.status is discord.EventStatus.active
        assert second.status == fake_discord.EVENT_ACTIVE
        with pytest.raises(discord.HTTPException) as running:
            await started.edit(start_time=soon(5))  # a running event keeps its start
        assert (running.value.status, running.value.code) == (400, 50035)
        ended = await started.end()
        assert ended.status is discord.EventStatus.completed
        with pytest.raises(discord.HTTPException):  # an answer: a moderator may have ended it
            await ended.edit(name="again")

        deleted = asyncio.create_task(bot.wait_for("scheduled_event_delete", timeout=2.0))
        await outside.delete()
        assert (await deleted).id == outside.id and guild.get_scheduled_event(outside.id) is None
        with pytest.raises(discord.NotFound) as gone:
            await guild.fetch_scheduled_event(outside.id)
        assert gone.value.code == 10070
    assert [r.reasons for r in fake.refusals] == [[
        "scheduled_start_time: Cannot change the start time of an event that has started. "
        "(GUILD_SCHEDULED_EVENT_SCHEDULE_INVALID_START_BY_STATUS)"
    ]]
    fake.refusals.clear()


async def test_discord_refuses_events_it_would_refuse(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    room = fake.add_channel(wellness, "Massage room", type=fake_discord.GUILD_VOICE)
    general = wellness.channel("general")
    bot = bare_bot()
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        external: dict[str, Any] = {
            "name": "Class", "scheduled_start_time": soon(1).isoformat(),
            "scheduled_end_time": soon(2).isoformat(), "privacy_level": 2, "entity_type": 3,
            "entity_metadata": {"location": "Studio 4"},
        }
        # without Create Events (the default): 403, an answer a correct bot may get
        with pytest.raises(discord.Forbidden) as forbidden:
            await bot.http.create_guild_scheduled_event(guild.id, **external)
        assert forbidden.value.code == 50013
        # Manage Events alone no longer lets a bot create events (February 2026)
        bot_role = wellness.role(fake.bot.name)
        await fake.set_role_permissions(bot_role, bot_role.permissions | fake_discord.MANAGE_EVENTS)
        with pytest.raises(discord.Forbidden):
            await bot.http.create_guild_scheduled_event(guild.id, **external)
        await fake.set_role_permissions(bot_role, bot_role.permissions | fake_discord.CREATE_EVENTS)
        assert fake.refusals == [] and fake.scheduled_events(wellness) == []

        refused = [
            {**external, "scheduled_start_time": soon(-1).isoformat()},  # in the past
            {key: value for key, value in external.items() if key != "scheduled_end_time"},
            {**external, "entity_metadata": {}},
            {key: value for key, value in external.items() if key != "privacy_level"},
            {**external, "scheduled_end_time": soon(0.5).isoformat()},  # ends before it starts
            {**external, "entity_type": 2, "channel_id": general.id, "entity_metadata": None},
        ]
        for body in refused:
            with pytest.raises(discord.HTTPException) as bad:
                await bot.http.create_guild_scheduled_event(guild.id, **body)
            assert (bad.value.status, bad.value.code) == (400, 50035)
        # discord.py sends no privacy level unless told: Discord requires it
        with pytest.raises(discord.HTTPException):
            await guild.create_scheduled_event(name="Class", start_time=soon(1),
                                               channel=guild.get_channel(room.id))
        assert fake.scheduled_events(wellness) == []

        # a stage event takes Manage Channels, Mute Members and Move Members there too
        created = asyncio.create_task(bot.wait_for("guild_channel_create", timeout=2.0))
        stage = await fake.create_channel(wellness, "Stage", type=fake_discord.GUILD_STAGE_VOICE)
        stage_channel = await created
        assert isinstance(stage_channel, discord.StageChannel) and stage_channel.id == stage.id
        on_stage = {"name": "Talk", "start_time": soon(1), "channel": stage_channel,
                    "privacy_level": discord.PrivacyLevel.guild_only}
        with pytest.raises(discord.Forbidden):
            await guild.create_scheduled_event(**on_stage)
        await fake.set_permissions(stage, fake.bot, allow=fake_discord.STAGE_MODERATOR)
        talk = await guild.create_scheduled_event(**on_stage)
        assert talk.entity_type is discord.EntityType.stage_instance
        # an event in a channel the bot may not see is hidden from it
        await fake.set_permissions(stage, fake.bot, deny=discord.Permissions(view_channel=True))
        assert await guild.fetch_scheduled_events() == []
        with pytest.raises(discord.NotFound):
            await guild.fetch_scheduled_event(talk.id)
    assert [r.reasons for r in fake.refusals] == [
        ["scheduled_start_time: Cannot schedule event in the past. "
         "(GUILD_SCHEDULED_EVENT_SCHEDULE_PAST)"],
        ["scheduled_end_time: This field is required (BASE_TYPE_REQUIRED)"],
        ["entity_metadata.location: This field is required (BASE_TYPE_REQUIRED)"],
        ["privacy_level: This field is required (BASE_TYPE_REQUIRED)"],
        ["scheduled_end_time: The end time must be after the start time. "
         "(GUILD_SCHEDULED_EVENT_END_BEFORE_START)"],
        ["channel_id: Channel type is not valid for this event. (CHANNEL_TYPE_INVALID)"],
        ["privacy_level: This field is required (BASE_TYPE_REQUIRED)"],
    ]
    fake.refusals.clear()


async def test_only_manage_events_lets_the_bot_change_others_events(fake: FakeDiscord) -> None:
    wellness, dana = fake.guild("Wellness"), fake.user("dana")
    theirs = fake.add_scheduled_event(wellness, "Dana's class", location="Park", end=soon(2),
                                      creator=dana)
    grant(fake, wellness, fake_discord.CREATE_EVENTS)
    bot = bare_bot()
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        event = guild.get_scheduled_event(theirs.id)  # GUILD_CREATE carried it
        assert event is not None and event.creator_id == dana.id and event.location == "Park"
        with pytest.raises(discord.Forbidden):
            await event.edit(name="Mine now")
        with pytest.raises(discord.Forbidden):
            await event.delete()
        mine = await guild.create_scheduled_event(
            name="Bot's class", start_time=soon(1), end_time=soon(2), location="Hall",
            entity_type=discord.EntityType.external, privacy_level=discord.PrivacyLevel.guild_only,
        )
        await mine.edit(description="its own: Create Events is enough")
        bot_role = wellness.role(fake.bot.name)
        await fake.set_role_permissions(bot_role, bot_role.permissions | fake_discord.MANAGE_EVENTS)
        await event.cancel()
        assert theirs.status == fake_discord.EVENT_CANCELED


async def test_interest_and_moderators_events_reach_the_bot(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    alice, bob, dana = fake.user("alice"), fake.user("bob"), fake.user("dana")
    fake.privileged_intents = fake_discord.GUILD_MEMBERS  # discord.py needs the users cached
    bot = bare_bot(members=True)
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        created = asyncio.create_task(bot.wait_for("scheduled_event_create", timeout=2.0))
        creator = asyncio.create_task(bot.wait_for("scheduled_event_user_add", timeout=2.0))
        event = await fake.create_scheduled_event(wellness, "Evening class", location="Park",
                                                  end=soon(2))
        assert (await created).name == "Evening class" and event.creator is dana
        assert (await creator)[1].id == dana.id

        added = asyncio.create_task(bot.wait_for(
            "scheduled_event_user_add", check=lambda _, user: user.id == bob.id, timeout=2.0))
        await fake.mark_interested(event, alice)
        await fake.mark_interested(event.id, bob)
        await fake.mark_interested(event, bob)  # again: nothing happens
        cached, user = await added
        assert user.id == bob.id and cached.id == event.id
        interested = [u.id async for u in cached.users()]
        assert interested == sorted([dana.id, alice.id, bob.id])

        removed = asyncio.create_task(bot.wait_for("scheduled_event_user_remove", timeout=2.0))
        await fake.unmark_interested(event, bob)
        assert (await removed)[1].id == bob.id
        updated = asyncio.create_task(bot.wait_for("scheduled_event_update", timeout=2.0))
        await fake.update_scheduled_event(event, status=fake_discord.EVENT_ACTIVE)
        assert (await updated)[1].status is discord.EventStatus.active
        with pytest.raises(ValueError):
            await fake.update_scheduled_event(event, status=fake_discord.EVENT_SCHEDULED)
        deleted = asyncio.create_task(bot.wait_for("scheduled_event_delete", timeout=2.0))
        await fake.delete_scheduled_event(event.id)
        assert (await deleted).id == event.id and list(guild.scheduled_events) == []
        assert fake.scheduled_events(wellness) == []


async def test_interested_users_are_listed_in_pages_of_at_most_100(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    event = fake.add_scheduled_event(wellness, "Big class", location="Park", end=soon(2))
    for n in range(149):
        user = fake.add_user(f"guest{n}")
        fake.add_member(wellness, user)
        event.interested[user.id] = user
    ids = sorted(event.interested)
    bot = bare_bot()
    async with fake.run(bot):
        http = bot.http

        async def page(**query: Any) -> list[int]:
            users = await http.get_scheduled_event_users(wellness.id, event.id, **query)
            return [int(u["user"]["id"]) for u in users]

        assert await page(limit=100, with_member=False) == ids[:100]  # ascending
        assert await page(limit=100, with_member=False, after=ids[99]) == ids[100:]
        assert await page(limit=10, with_member=False, before=ids[50]) == ids[40:50]
        assert await page(limit=5, with_member=False, before=ids[50], after=ids[0]) == ids[45:50]
        (entry,) = await http.get_scheduled_event_users(wellness.id, event.id, limit=1,
                                                        with_member=True)
        assert entry["member"]["user"]["id"] == str(ids[0])
        assert entry["guild_scheduled_event_id"] == str(event.id)
        with pytest.raises(discord.HTTPException) as too_many:
            await page(limit=101, with_member=False)
        assert too_many.value.code == 50035
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        counted = await guild.fetch_scheduled_event(event.id)
        assert counted.user_count == 150
        # discord.py 2.7 pages these users as if they came newest first: past 100 it repeats
        # some (here 50 of 150); a bot with big events pages with ``after=`` itself
        listed = [u.id async for u in counted.users()]
        assert len(listed) == 150 and len(set(listed)) == 100
    fake.refusals.clear()


async def test_scheduled_events_reach_only_a_bot_with_their_intent(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    bot = bare_bot(guild_scheduled_events=False)
    events = heard(bot)
    async with fake.run(bot):
        event = await fake.create_scheduled_event(wellness, "Quiet", location="Park", end=soon(2))
        await fake.mark_interested(event, fake.user("alice"))
        await fake.delete_scheduled_event(event)
        await fake.send_message(fake.user("alice"), fake.dm_channel(fake.user("alice")), "hi")
        await asyncio.wait_for(bot.wait_for("message"), 2.0)  # what came after it arrived
    assert not [e for e in events if e.startswith("GUILD_SCHEDULED_EVENT")]


# --- voice ---------------------------------------------------------------------------------


class RecordingVoice(discord.VoiceProtocol):
    """A voice protocol that records Discord's answers and never opens a voice connection."""

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        super().__init__(client, channel)
        self.states: list[dict[str, Any]] = []
        self.servers: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def on_voice_state_update(self, data: Any, /) -> None:
        self.states.append(dict(data))
        self.changed.set()

    async def on_voice_server_update(self, data: Any, /) -> None:
        self.servers.append(dict(data))
        self.changed.set()

    async def until(self, done: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    async def connect(
        self, *, timeout: float, reconnect: bool, self_deaf: bool = False, self_mute: bool = False
    ) -> None:
        assert isinstance(self.channel, discord.VoiceChannel | discord.StageChannel)
        await self.channel.guild.change_voice_state(channel=self.channel, self_mute=self_mute,
                                                    self_deaf=self_deaf)
        await self.until(lambda: self.states and self.servers, timeout)

    async def disconnect(self, *, force: bool) -> None:
        assert isinstance(self.channel, discord.VoiceChannel | discord.StageChannel)
        await self.channel.guild.change_voice_state(channel=None)
        if self.states and self.states[-1]["channel_id"] is not None:  # connected: wait
            await self.until(lambda: self.states[-1]["channel_id"] is None, 2.0)
        self.cleanup()


async def test_voice_states_follow_users_joining_moving_and_leaving(fake: FakeDiscord) -> None:
    wellness = fake.add_guild("Studio", owner=fake.user("dana"), voice_channels=["Room"],
                              stage_channels=["Stage"], members=[fake.user("alice")])
    room, stage = wellness.channel("Room"), wellness.channel("Stage")
    alice, dana = fake.user("alice"), fake.user("dana")
    await fake.join_voice(dana, room, self_mute=True)  # before the bot logs in
    bot = bare_bot()  # without the members intent: discord.py caches members in voice
    async with fake.run(bot):
        guild = bot.get_guild(wellness.id)
        assert guild is not None
        voice_room, voice_stage = guild.get_channel(room.id), guild.get_channel(stage.id)
        assert isinstance(voice_room, discord.VoiceChannel)
        assert isinstance(voice_stage, discord.StageChannel)
        assert [m.id for m in voice_room.members] == [dana.id]  # GUILD_CREATE's voice_states
        dana_member = guild.get_member(dana.id)
        assert dana_member is not None and dana_member.voice is not None
        assert dana_member.voice.self_mute

        joined = asyncio.create_task(bot.wait_for("voice_state_update", timeout=2.0))
        await fake.join_voice(alice, room)
        member, before, after = await joined
        assert member.id == alice.id and before.channel is None and after.channel == voice_room
        assert {m.id for m in voice_room.members} == {dana.id, alice.id}

        moved = asyncio.create_task(bot.wait_for("voice_state_update", timeout=2.0))
        await fake.join_voice(alice, stage)
        _, before, after = await moved
        assert (before.channel, after.channel, after.suppress) == (voice_room, voice_stage, True)
        assert [m.id for m in voice_stage.members] == [alice.id]

        left = asyncio.create_task(bot.wait_for("voice_state_update", timeout=2.0))
        await fake.leave_voice(alice)
        member, _, after = await left
        assert after.channel is None and member.voice is None and voice_stage.members == []
        # without the members intent discord.py forgets a member who left voice
        assert guild.get_member(alice.id) is None
        assert alice.id not in wellness.voice_states
        with pytest.raises(ValueError):
            await fake.leave_voice(alice)


async def test_voice_states_reach_only_a_bot_with_their_intent(fake: FakeDiscord) -> None:
    studio = fake.add_guild("Studio", owner=fake.user("dana"), voice_channels=["Room"])
    bot = bare_bot(voice_states=False)
    events = heard(bot)
    async with fake.run(bot):
        await fake.join_voice(fake.user("dana"), studio.channel("Room"))
        await fake.send_message(fake.user("dana"), fake.dm_channel(fake.user("dana")), "hi")
        await asyncio.wait_for(bot.wait_for("message"), 2.0)
    assert "VOICE_STATE_UPDATE" not in events


async def test_the_bot_joins_and_leaves_voice_through_its_gateway(fake: FakeDiscord) -> None:
    studio = fake.add_guild("Studio", owner=fake.user("dana"), voice_channels=["Room", "Locked"])
    room, locked = studio.channel("Room"), studio.channel("Locked")
    bot = bare_bot()
    async with fake.run(bot):
        await fake.set_permissions(locked, fake.bot, deny=discord.Permissions(connect=True))
        guild = bot.get_guild(studio.id)
        assert guild is not None
        voice_room, voice_locked = guild.get_channel(room.id), guild.get_channel(locked.id)
        assert isinstance(voice_room, discord.VoiceChannel)
        assert isinstance(voice_locked, discord.VoiceChannel)

        voice = await voice_room.connect(cls=RecordingVoice, self_deaf=True)
        (request,) = fake.voice_requests
        assert request == fake_discord.VoiceRequest(
            0, studio.id, room.id, self_deaf=True, answered=True, received=request.received)
        (state,), (server,) = voice.states, voice.servers
        assert state["channel_id"] == str(room.id) and state["user_id"] == str(fake.bot.id)
        assert state["session_id"] == bot.ws.session_id  # type: ignore[union-attr]
        assert server["endpoint"] == f"127.0.0.1:{fake.port}" and server["token"]
        assert guild.me.voice is not None and guild.me.voice.channel == voice_room
        assert guild.voice_client is voice and studio.voice_states[fake.bot.id].self_deaf

        since = len(fake.voice_requests)
        await voice.disconnect(force=False)
        leaving = await fake.wait_for_voice_request(since=since)
        assert leaving.leaving and leaving.answered and leaving.channel_id is None
        assert guild.me.voice is None and guild.voice_client is None
        assert fake.bot.id not in studio.voice_states

        # Discord ignores a request it would not grant: the bot's attempt times out
        since = len(fake.voice_requests)
        with pytest.raises(TimeoutError):
            await voice_locked.connect(cls=RecordingVoice, timeout=0.2)
        await fake.wait_for_voice_request(since=since + 1)  # discord.py disconnects on timeout
        denied, gave_up = fake.voice_requests[since:]
        assert (denied.channel_id, denied.answered) == (locked.id, False)
        assert gave_up.leaving and not gave_up.answered  # it was in no channel

        # a moderator moves the bot, then disconnects it
        voice = await voice_room.connect(cls=RecordingVoice)
        await fake.set_permissions(locked, fake.bot)
        await fake.join_voice(fake.bot, locked)
        await voice.until(lambda: voice.states[-1]["channel_id"] == str(locked.id), 2.0)
        await fake.leave_voice(fake.bot)
        await voice.until(lambda: voice.states[-1]["channel_id"] is None, 2.0)


async def test_on_a_stage_the_bot_steps_up_or_asks_to_speak(fake: FakeDiscord) -> None:
    studio = fake.add_guild("Studio", owner=fake.user("dana"), voice_channels=["Room"],
                            stage_channels=["Stage"])
    room, stage = studio.channel("Room"), studio.channel("Stage")
    bot = bare_bot()
    async with fake.run(bot):
        guild = bot.get_guild(studio.id)
        assert guild is not None
        voice_room, voice_stage = guild.get_channel(room.id), guild.get_channel(stage.id)
        assert isinstance(voice_room, discord.VoiceChannel)
        assert isinstance(voice_stage, discord.StageChannel)
        voice = await voice_stage.connect(cls=RecordingVoice)
        assert studio.voice_states[fake.bot.id].suppress  # everyone joins the audience
        for forbidden in (guild.me.edit(suppress=False), guild.me.request_to_speak()):
            with pytest.raises(discord.Forbidden):  # no Mute Members, no Request to Speak
                await forbidden
        await fake.set_permissions(stage, fake.bot,
                                   allow=fake_discord.REQUEST_TO_SPEAK)
        await guild.me.request_to_speak()
        await voice.until(lambda: voice.states[-1]["request_to_speak_timestamp"], 2.0)
        await fake.set_permissions(stage, fake.bot, allow=fake_discord.MUTE_MEMBERS)
        await guild.me.edit(suppress=False)  # a stage moderator makes itself a speaker
        await voice.until(lambda: voice.states[-1]["suppress"] is False, 2.0)
        assert voice.states[-1]["request_to_speak_timestamp"] is None
        assert guild.me.voice is not None and not guild.me.voice.suppress
        await voice.disconnect(force=False)

        voice = await voice_room.connect(cls=RecordingVoice)
        with pytest.raises(discord.HTTPException) as refused:  # no stage to step up on
            await guild.me.edit(suppress=False)
        assert refused.value.code == 50024
    assert [r.code for r in fake.refusals] == [50024]
    fake.refusals.clear()


# --- direct messages in bulk, and Discord's global rate limit ---------------------------------


async def test_many_direct_messages_in_a_row(fake: FakeDiscord) -> None:
    wellness = fake.guild("Wellness")
    people = [fake.add_user(f"client{n:03d}") for n in range(300)]
    for person in people:
        fake.add_member(wellness, person)
    closed, stranger = people[0], fake.add_user("stranger")  # shares no guild with the bot
    closed.accepts_dms = False
    bot = bare_bot()
    async with fake.run(bot):
        start, calls = time.perf_counter(), len(fake.calls)
        for person in people[1:]:
            dm = await bot.create_dm(discord.Object(person.id))
            await dm.send("Your massage session starts in an hour.")
        elapsed = time.perf_counter() - start
        assert len(fake.calls) - calls == 2 * 299
        assert all(c.status == 200 for c in fake.calls[calls:])
        assert all(fake.dm_channel(p).id in {m.channel.id for m in fake.messages.values()}
                   for p in people[1:])
        assert elapsed < 30  # about 1.5 ms a message; a guard against the fake growing slow
        for person in (closed, stranger):
            dm = await bot.create_dm(discord.Object(person.id))
            with pytest.raises(discord.Forbidden) as refused:
                await dm.send("hello")
            assert refused.value.code == 50007  # an answer a correct bot must expect
        assert fake.refusals == []
        # a body checked once is not checked again, yet a bad one is still refused
        dm = await bot.create_dm(discord.Object(people[1].id))
        with pytest.raises(discord.HTTPException):
            await dm.send("Your massage session starts in an hour.", nonce="n" * 26)
    assert [r.reasons for r in fake.refusals] == [[
        "nonce: Must be 25 or fewer in length. (BASE_TYPE_MAX_LENGTH)"
    ]]
    fake.refusals.clear()


async def test_the_global_rate_limit_holds_a_bot_to_n_requests_a_second(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    channel = text_channel(bot, general)
    fake.global_rate_limit = 4
    start = len(fake.calls)
    await asyncio.gather(*(channel.send(f"message {n}") for n in range(6)))
    calls = fake.calls[start:]
    served = [c for c in calls if c.status == 200]
    limited = [c for c in calls if c.status == 429]
    assert len(served) == 6 and fake.rate_limited == len(limited) > 0  # discord.py waited
    assert all(c.response["global"] and 0 < c.response["retry_after"] <= 1 for c in limited)
    times = [c.received for c in served]
    windows = zip(times, times[4:], strict=False)
    assert all(later - earlier > 0.9 for earlier, later in windows)  # at most 4 a second

    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(5):
            async with session.get(f"{fake.api_base}/users/@me") as answer:
                pass
    assert answer.status == 429 and answer.headers["Via"]
    assert answer.headers["X-RateLimit-Global"] == "true"
    assert answer.headers["X-RateLimit-Scope"] == "global"
    assert int(answer.headers["Retry-After"]) >= 1
    # interaction responses are not bound by the global rate limit
    interaction = await fake.slash(alice, general, "demo", "ping")
    assert (await interaction.response()).status == 200
    fake.global_rate_limit = None
