"""The massage bot logs in, registers /massage, and answers questions without pinging anyone."""

from __future__ import annotations

import discord

from bot.client import Cooldown, MassageBot
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.massage_world import (
    KNOT,
    WARM_UP_LEAD,
    ephemeral_text,
    press,
    slash,
    text_of,
)

SUBCOMMANDS = {
    "ask", "start", "stop", "pause", "resume", "next", "back", "routines", "muscle",
    "technique", "safety", "help", "stats", "alerts", "my-data", "forget-me",
}  # fmt: skip
SUBCOMMAND_GROUPS = {"remind", "class"}


async def test_login_registers_the_massage_group(fake: FakeDiscord, bot: MassageBot) -> None:
    commands = {c["name"]: c for c in fake.commands[None]}
    assert set(commands) == {"massage", "massage-admin"}
    options = {o["name"]: o for o in commands["massage"]["options"]}
    assert {name for name, o in options.items() if o["type"] == 1} == SUBCOMMANDS
    assert {name for name, o in options.items() if o["type"] == 2} == SUBCOMMAND_GROUPS
    assert len(options) == len(SUBCOMMANDS) + len(SUBCOMMAND_GROUPS)
    routine, partner, group, voice = options["start"]["options"]
    assert (routine["name"], routine["type"], routine["required"], routine["autocomplete"]) == (
        "routine",
        3,
        True,
        True,
    )
    assert (partner["name"], partner["type"], partner.get("required", False)) == (
        "partner",
        6,
        False,
    )
    assert (group["name"], group["type"]) == ("group", 5)
    assert (voice["name"], voice["type"], voice.get("required", False)) == ("voice", 5, False)
    assert options["ask"]["options"][0]["name"] == "question"
    assert options["muscle"]["options"][0]["autocomplete"]
    admin = commands["massage-admin"]
    assert admin["default_member_permissions"] == str(discord.Permissions.manage_guild.flag)
    assert admin["contexts"] == [0]  # servers only
    admin_options = {o["name"]: o for o in admin["options"]}
    assert set(admin_options) == {"channels", "group-size", "stats", "unanswered", "reload"}
    (people,) = admin_options["group-size"]["options"]
    assert (people["type"], people["min_value"], people["max_value"]) == (4, 2, 50)
    assert bot.intents.value & (1 << 15) == 0 and not bot.intents.members


async def test_dev_guild_gets_the_commands_at_once(fake: FakeDiscord, make_bot) -> None:
    wellness = fake.guild("Wellness")
    async with fake.run(make_bot(dev_guild=wellness.id)):
        assert [c["name"] for c in fake.commands[wellness.id]] == ["massage", "massage-admin"]
        assert None not in fake.commands


async def test_ask_answers(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "ask", question="should I use oil?")
    assert asked.original is not None and not asked.original.ephemeral
    (embed,) = asked.original.embeds
    assert embed["title"] == "Oil or lotion" and "unscented oil" in embed["description"]
    assert embed["author"]["name"] == "\u201cshould I use oil?\u201d"


async def test_a_clarify_offers_buttons_that_answer(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "ask", question=KNOT)
    message = asked.original
    assert message is not None and "Did you mean" in text_of(message)
    assert {b["custom_id"] for b in message.buttons} == {
        "massage:a:thumb-circles",
        "massage:a:finger-circles",
    }
    pressed = await press(fake, fake.user("bob"), message, "Thumb circles")
    assert pressed.callback.result().json["type"] == 7  # the clarify becomes the answer
    assert message.embeds[0]["title"] == "Thumb circles" and message.buttons == []
    assert message.embeds[0]["author"]["name"] == f"\u201c{KNOT}\u201d"


async def test_a_long_answer_shows_its_lead_and_more_shows_the_rest(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "ask", question="how do i warm up?")
    message = asked.original
    assert message is not None and message.embeds[0]["description"] == WARM_UP_LEAD
    assert [b["label"] for b in message.buttons] == ["More"]
    pressed = await press(fake, fake.user("bob"), message, "More")
    assert pressed.callback.result().json["type"] == 7
    entry = bot.knowledge.entries["warm-up-first"]
    assert message.embeds[0]["description"] == entry.text and message.buttons == []
    assert message.embeds[0]["title"] == "Warm up first"


async def test_a_post_asking_two_things_offers_the_other(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    question = "We got a new bottle tonight. Should I use oil on her back? And how do I warm up?"
    message = (await slash(fake, alice, general, "massage", "ask", question=question)).original
    assert message is not None
    answered = message.embeds[0]["title"]
    offered = [b["label"] for b in message.buttons if b["custom_id"].startswith("massage:a:")]
    assert {answered, *offered} == {"Oil or lotion", "Warm up first"}
    await press(fake, alice, message, offered[0])
    assert message.embeds[0]["title"] == offered[0]


async def test_a_fallback_says_what_the_bot_can_do_and_is_kept_for_curators(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, wellness = fake.user("alice"), fake.guild("Wellness")
    asked = await slash(
        fake, alice, wellness.channel("general"), "massage", "ask", question="what's on tv tonight"
    )
    assert asked.original is not None and "I can help with massage" in text_of(asked.original)
    assert bot.store is not None
    (question,) = await bot.store.unanswered_questions(server_id=str(wellness.id))
    assert question.question == "what's on tv tonight"


async def test_a_red_flag_gets_the_safety_reply(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "ask", question="my arm went numb")
    assert asked.original is not None
    (embed,) = asked.original.embeds
    assert (
        embed["title"].endswith("Numbness or tingling")
        and "Stop the massage" in embed["description"]
    )
    assert embed["color"] == discord.Colour.red().value


async def test_empty_and_long_questions_get_a_clear_message(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    empty = await slash(fake, alice, general, "massage", "ask", question="   ")
    assert "Ask me a question" in ephemeral_text(empty)
    long = await slash(fake, alice, general, "massage", "ask", question="why " * 600)
    assert "2400 characters long" in ephemeral_text(long)
    await fake.send_message(alice, general, fake.bot.mention)
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages")
    assert "Ask me a question" in reply.json["content"]


async def test_mentions_and_direct_messages_are_answered(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    start = len(fake.calls)
    await fake.send_message(alice, general, "should I use oil? nobody asked the bot")
    await fake.send_message(alice, general, f"{fake.bot.mention} should I use oil?")
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages", since=start)
    assert reply.json["embeds"][0]["title"] == "Oil or lotion"
    assert len(fake.calls_to("POST", rf"/channels/{general.id}/messages")) == 1
    dm = fake.dm_channel(alice)
    await fake.send_message(alice, dm, "my fingers are tingling")
    reply = await fake.wait_for_call("POST", rf"/channels/{dm.id}/messages")
    assert reply.json["embeds"][0]["title"].endswith("Numbness or tingling")


async def test_a_question_with_mentions_pings_no_one(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, bob, wellness = fake.user("alice"), fake.user("bob"), fake.guild("Wellness")
    general, curators = wellness.channel("general"), wellness.role("Curators")
    question = f"@everyone @here {bob.mention} {curators.mention} should I use oil?"
    asked = await slash(fake, alice, general, "massage", "ask", question=question)
    await fake.send_message(alice, general, f"{fake.bot.mention} {question}")
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages")
    answer = fake.messages[int(reply.response["id"])]
    for allowed in (
        reply.json["allowed_mentions"],
        asked.callback.result().json["data"]["allowed_mentions"],
    ):
        assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")
        assert not allowed.get("replied_user")
    for message in (asked.original, answer):
        assert message is not None
        assert message.mentions == [] and message.mention_roles == []
        assert not message.mention_everyone


async def test_lookups_routines_safety_and_help(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    muscle = await slash(fake, alice, general, "massage", "muscle", name="muscle-07")
    assert muscle.original is not None and "number 7" in text_of(muscle.original)
    typed = await slash(fake, alice, general, "massage", "technique", name="thumb")
    assert typed.original is not None and typed.original.embeds[0]["title"] == "Thumb circles"
    unknown = await slash(fake, alice, general, "massage", "muscle", name="elbow")
    assert "I don't know a muscle called 'elbow'" in ephemeral_text(unknown)
    routines = await slash(fake, alice, general, "massage", "routines")
    assert routines.original is not None and "Tiny test routine" in text_of(routines.original)
    safety = await slash(fake, alice, general, "massage", "safety")
    assert safety.original is not None and "Numbness or tingling" in text_of(safety.original)
    helped = await slash(fake, alice, general, "massage", "help")
    assert "/massage start" in ephemeral_text(helped)


async def test_autocomplete_stays_within_discords_limits(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    muscles = await fake.autocomplete(alice, general, "massage", "muscle", name="")
    assert len(muscles) == 25 and all(len(c["name"]) <= 100 for c in muscles)
    found = await fake.autocomplete(alice, general, "massage", "muscle", name="m07")
    assert found[0] == {
        "name": "Muscle number 07 with a long name that fills the choice", "value": "muscle-07"
    }
    routines = await fake.autocomplete(alice, general, "massage", "start", routine="tny rutine")
    assert routines == [{"name": "Tiny test routine", "value": "tiny"}]
    techniques = await fake.autocomplete(alice, general, "massage", "technique", name="thumb circ")
    assert [c["value"] for c in techniques][:1] == ["thumb-circles"]
    odd = await fake.autocomplete(alice, general, "massage", "technique", name="\u200b!!" * 60)
    assert len(odd) <= 25


async def test_cooldown_answers_kindly(fake: FakeDiscord, make_bot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    async with fake.run(make_bot(cooldown=(2, 60.0))):
        for _ in range(2):
            await slash(fake, alice, general, "massage", "ask", question="should I use oil?")
        third = await slash(fake, alice, general, "massage", "ask", question="oil?")
        assert "Easy there" in ephemeral_text(third)
        bob = await slash(fake, fake.user("bob"), general, "massage", "ask", question="oil?")
        assert bob.original is not None and not bob.original.ephemeral


async def test_a_failing_handler_apologises_privately(
    fake: FakeDiscord, bot: MassageBot, monkeypatch, caplog
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")

    def broken(*args, **kwargs):
        raise RuntimeError("the matcher fell over")

    monkeypatch.setattr(bot.engine.asker, "ask", broken)
    asked = await slash(fake, alice, general, "massage", "ask", question="oil?")
    assert ephemeral_text(asked).startswith("Sorry, something went wrong")
    assert "Traceback" not in ephemeral_text(asked)
    assert "the matcher fell over" in caplog.text


async def test_unknown_commands_and_custom_ids_are_ignored(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "ask", question="should I use oil?")
    message = asked.original
    assert message is not None
    start = len(fake.calls)
    ignored = [
        await fake.press(alice, message, custom_id, must_exist=False)
        for custom_id in (
            "massage:s:zz:next",
            "massage:s:abc:dance",
            "massage:a:Not An Id",
            "other:thing",
            "massage",
            "",
        )
    ]
    command = await fake._interact(
        2,
        alice,
        general,
        {"id": "1", "name": "massage", "type": 1, "options": [{"name": "dance", "type": 1}]},
    )
    unknown = await fake._interact(2, alice, general, {"id": "2", "name": "yoga", "type": 1})
    helped = await slash(fake, alice, general, "massage", "help")  # the bot still answers
    for interaction in [*ignored, command, unknown]:
        assert not interaction.callback.done()
    assert fake.calls[start:] == [helped.callback.result()]  # nothing else was sent


async def test_a_mention_is_no_prefix_command(fake: FakeDiscord, bot: MassageBot, caplog) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    await fake.send_message(alice, general, f"{fake.bot.mention} help me with my back")
    await fake.wait_for_call("POST", rf"/channels/{general.id}/messages")
    assert "CommandNotFound" not in caplog.text and "Ignoring exception" not in caplog.text


def test_the_cooldown_window_passes(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr("bot.client.time.monotonic", lambda: now[0])
    cooldown = Cooldown(2, 10.0)
    assert cooldown.retry_after(1) is None and cooldown.retry_after(1) is None
    assert cooldown.retry_after(1) == 10.0 and cooldown.retry_after(2) is None
    now[0] += 4
    assert cooldown.retry_after(1) == 6.0
    now[0] += 6
    assert cooldown.retry_after(1) is None
