"""The fake Discord works with the real discord.py client, and refuses what Discord refuses."""

from __future__ import annotations

import asyncio
import io
import re
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


async def test_nothing_leaves_the_loopback_interface(
    fake: FakeDiscord, offline: list[str]
) -> None:
    assert fake.api_base == discord.http.Route.BASE
    with pytest.raises(OSError):
        await asyncio.get_running_loop().getaddrinfo("discord.com", 443)
    assert offline == ["lookup of discord.com"]
    offline.clear()
