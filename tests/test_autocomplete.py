"""Autocomplete of routine, muscle and technique names: typos and partial words count."""

from __future__ import annotations

import pytest

from bot.knowledge import KnowledgeBase, load_knowledge
from cogs.autocomplete import MAX_CHOICES, choices


@pytest.fixture(scope="module")
def shipped() -> KnowledgeBase:
    return load_knowledge()


@pytest.mark.parametrize(
    ("kind", "typed", "first"),
    [
        ("routine", "uper bak", "upper-back"),
        ("routine", "nek and sholders", "neck-and-shoulders"),
        ("muscle", "rhomb", "rhomboids"),
        ("muscle", "traps", "trapezius"),  # an alias
        ("muscle", "scm", "sternocleidomastoid"),
        ("muscle", "lattisimus", "latissimus-dorsi"),
        ("technique", "efleurage", "effleurage"),
        ("technique", "rocking fist", "fist-rocking"),
    ],
)
def test_typos_and_partial_words_find_the_entry_first(
    shipped: KnowledgeBase, kind: str, typed: str, first: str
) -> None:
    entries = list(shipped.routines.values()) if kind == "routine" else shipped.of_kind(kind)
    offered = choices(entries, typed)
    assert offered and offered[0].value == first
    assert len({c.value for c in offered}) == len(offered) <= MAX_CHOICES


def test_nothing_typed_lists_the_first_names_alphabetically(shipped: KnowledgeBase) -> None:
    muscles = shipped.of_kind("muscle")
    offered = choices(muscles, "  ")
    assert len(offered) == min(len(muscles), MAX_CHOICES)
    assert [c.name for c in offered] == sorted((c.name for c in offered), key=str.lower)


def test_nonsense_offers_nothing(shipped: KnowledgeBase) -> None:
    assert choices(shipped.of_kind("muscle"), "xylophone") == []
