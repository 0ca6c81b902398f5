"""Shared fixtures: a small knowledge directory, a fake clock, a fake asker, and a real
store on each backend (an SQLite file, and a database of a throwaway PostgreSQL cluster
started once per test session)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeBase, load_knowledge
from bot.reply import Reply, StepContext
from bot.sessions import SessionEngine
from bot.store import Store
from tests import pg_cluster
from tests.pg_cluster import ThrowawayPostgres

TINY_ROUTINE = """\
id: tiny
title: Tiny test routine
questions: [tiny routine, a tiny one, the test routine, short routine please]
summary: Four steps of two and a half minutes, for tests.
next_time: Try the same routine a little slower.
steps:
  - id: warm-up
    title: Warm up
    text: Rest both hands on the upper back and breathe together.
    seconds: 150
    more_pressure: Lean in a little with your body weight.
    less_pressure: Let your hands rest more lightly.
  - id: left-fist
    title: Left side fist
    text: Rock a light fist along the left side of the upper back.
    seconds: 150
    side: left
    more_pressure: Slow down and use the finger joints, other hand on top.
    less_pressure: Open the fist and use the flat of the fingers.
  - id: right-fist
    title: Right side fist
    text: Rock a light fist along the right side of the upper back.
    seconds: 150
    side: right
    more_pressure: Kneel so your body weight does the work.
    less_pressure: Rock more slowly with less of your weight.
  - id: finish
    title: Finish
    text: Sweep both hands down the back three times and rest.
    seconds: 150
    more_pressure: Press the sweeps a little firmer.
    less_pressure: Make the sweeps feather light.
"""

SAFETY = """\
- id: numbness-tingling
  title: Numbness or tingling
  red_flag: true
  triggers: [numb, tingling]
  questions: [my arm is numb, tingling in the fingers, pins and needles, lost feeling]
  answer: Stop the massage now and let the receiver sit up; see a doctor if it lasts.
"""

FAQ = """\
- id: oil-or-lotion
  title: Oil or lotion
  questions: [should I use oil, oil or lotion, what oil for massage, do I need lotion]
  answer: A little unscented oil or lotion helps the hands glide over bare skin.
"""


def write_knowledge(directory: Path) -> Path:
    """A small valid knowledge directory: the `tiny` routine, one red flag, one FAQ."""
    (directory / "routines").mkdir(parents=True)
    (directory / "routines" / "tiny.yaml").write_text(TINY_ROUTINE, encoding="utf-8")
    (directory / "safety.yaml").write_text(SAFETY, encoding="utf-8")
    (directory / "faq.yaml").write_text(FAQ, encoding="utf-8")
    return directory


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeAsker:
    """Answers everything, except 'numb' (a red flag) and 'tv' (not understood)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, StepContext | None]] = []

    def ask(self, question: str, context: StepContext | None = None) -> Reply:
        self.asked.append((question, context))
        if "numb" in question.lower():
            return Reply(question, "safety", "Stop now.", "numbness-tingling", "Numbness", 100.0)
        if "tv" in question.lower():
            return Reply(question, "fallback", "I am not sure.")
        return Reply(question, "answer", "An answer.", "oil-or-lotion", "Oil or lotion", 90.0)


@pytest.fixture
def make_knowledge() -> Callable[[Path], Path]:
    """`write_knowledge`, for tests that need a second knowledge directory."""
    return write_knowledge


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    return write_knowledge(tmp_path / "knowledge")


@pytest.fixture
def kb(knowledge_dir: Path) -> KnowledgeBase:
    return load_knowledge(knowledge_dir)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def asker() -> FakeAsker:
    return FakeAsker()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL 15 cluster of the test session's own (see `tests/pg_cluster.py`)."""
    require(pg_cluster.available(), "PostgreSQL 15's server", pg_cluster.HOW_TO_GET_IT)
    cluster = ThrowawayPostgres()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres: ThrowawayPostgres) -> str:
    """A fresh, empty database of the test session's cluster."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, db_path: Path) -> str:
    """Where a store lives, once per backend: an SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(db_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(db: str) -> AsyncIterator[Store]:
    async with await Store.open(db) as opened:
        yield opened


@pytest.fixture
def engine(kb: KnowledgeBase, store: Store, asker: FakeAsker, clock: FakeClock) -> SessionEngine:
    return SessionEngine(kb, store, asker, clock)


REQUIRE_ALL_VARIABLE = "MASSAGE_BOT_TEST_EVERYTHING"


def require(available: bool, what: str, how: str) -> None:
    """Skip a test that needs `what` where it is not available, saying `how` to run it;
    with ``MASSAGE_BOT_TEST_EVERYTHING=1`` (CI sets it) the skip is a failure instead."""
    if available:
        return
    message = f"needs {what}: {how}"
    if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
        pytest.fail(message)
    pytest.skip(message)
