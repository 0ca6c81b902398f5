"""Red flags: checked on the whole message before any matching, and always first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.knowledge import Safety
from bot.matcher import Normaliser


@dataclass(frozen=True)
class _Trigger:
    terms: frozenset[str]
    entry: Safety


class RedFlags:
    """Finds the red-flag entry a message raises, if any.

    A trigger fires when every one of its terms is among the message's terms, so
    "shooting pain down my arm" fires "shooting", and typos are forgiven the same way
    as in matching. The most specific trigger (the one with the most terms) wins.
    """

    def __init__(self, entries: Sequence[Safety], normaliser: Normaliser) -> None:
        self._normaliser = normaliser
        self._triggers = sorted(
            (
                _Trigger(frozenset(normaliser.terms(trigger)), entry)
                for entry in entries
                for trigger in entry.triggers
            ),
            key=lambda trigger: len(trigger.terms),
            reverse=True,
        )

    def check(self, message: str) -> Safety | None:
        terms = set(self._normaliser.terms(message))
        for trigger in self._triggers:
            if trigger.terms and trigger.terms <= terms:
                return trigger.entry
        return None
