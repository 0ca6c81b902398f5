"""The store's tables for the Discord bot: session messages, answer channels, per-server
unanswered questions, and transactions from several callers at once."""

from __future__ import annotations

import asyncio

from bot.sessions import SessionEngine
from bot.store import SessionMessage, Store


async def test_a_sessions_message_is_remembered(engine: SessionEngine, store: Store) -> None:
    started = await engine.start("channel", "alice", "tiny")
    assert started.session is not None
    session_id = started.session.id
    assert await store.session_message(session_id) is None
    await store.set_session_message(session_id, "10", "20", shown_version=1)
    await store.set_session_message(session_id, "10", "21")  # posted again
    assert await store.session_message(session_id) == SessionMessage(session_id, "10", "21", 0)
    assert await store.stale_session_messages() == [SessionMessage(session_id, "10", "21", 0)]
    await store.set_shown_version(session_id, started.session.version)
    assert await store.stale_session_messages() == []
    await engine.next_step(session_id, "alice")  # the session moves on: its message is behind
    (stale,) = await store.stale_session_messages()
    assert stale.shown_version == started.session.version


async def test_answer_channels_per_server(store: Store) -> None:
    assert await store.answer_channels("s1") == set()
    await store.set_answer_channel("s1", "c1", True)
    await store.set_answer_channel("s1", "c1", True)  # twice is once
    await store.set_answer_channel("s1", "c2", True)
    await store.set_answer_channel("s2", "c9", True)
    await store.set_answer_channel("s1", "c2", False)
    assert await store.answer_channels("s1") == {"c1"}
    assert await store.answer_channels("s2") == {"c9"}


async def test_unanswered_questions_per_server(store: Store) -> None:
    await store.record_unanswered("What is reiki?", 1.0, "s1")
    await store.record_unanswered("crystals?", 2.0, "s1")
    await store.record_unanswered("what is  REIKI?", 3.0, "s1")
    await store.record_unanswered("what is reiki?", 4.0, "s2")
    await store.record_unanswered("stocks", 5.0)  # a DM or the console: no server
    mine = await store.unanswered_questions(server_id="s1")
    assert [(q.question, q.times_asked) for q in mine] == [("what is reiki?", 2), ("crystals?", 1)]
    everyone = await store.unanswered_questions()
    assert [q.times_asked for q in everyone] == [3, 1, 1]
    assert everyone[0].question == "what is reiki?"


async def test_overlapping_writers_take_turns(store: Store) -> None:
    writes = [store.set_answer_channel("s", f"c{n}", True) for n in range(20)]
    writes += [store.record_unanswered(f"q{n}", float(n), "s") for n in range(20)]
    await asyncio.gather(*writes)
    assert len(await store.answer_channels("s")) == 20
    assert len(await store.unanswered_questions(server_id="s")) == 20
