"""Red flags: checked on the whole message before any matching, and always first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.knowledge import Safety
from bot.matcher import Normaliser

EXTRA_WORDS_IN_WINDOW = 3  # "pain in my chest" still matches the trigger "chest pain"
NEGATIONS = frozenset({"no", "not", "without", "nothing"})  # right before: "no injury"


@dataclass(frozen=True)
class _Trigger:
    stems: tuple[str, ...]
    entry: Safety

    def fires(self, positions: dict[str, list[int]], negated: set[int]) -> bool:
        """Whether all the trigger's words stand close together in the message, the first
        not at a position in `negated` (right after "no", "not" ...)."""
        if any(stem not in positions for stem in self.stems):
            return False
        window = len(self.stems) + EXTRA_WORDS_IN_WINDOW
        first, *others = self.stems
        return any(
            all(any(abs(q - p) < window for q in positions[other]) for other in others)
            for p in positions[first]
            if p not in negated
        )


class RedFlags:
    """Finds the red-flag entry a message raises, if any.

    A trigger fires when all of its words (stop words too: "throw up" is not "throw")
    stand within a few words of each other in the message, in any order, with typos
    and word endings forgiven as in matching, unless "no", "not", "without" or
    "nothing" comes right before it ("no injury", "nothing sharp"). The longest trigger
    that fires wins.
    """

    def __init__(self, entries: Sequence[Safety], normaliser: Normaliser) -> None:
        self._normaliser = normaliser
        self._negations = {normaliser.stem(word) for word in NEGATIONS}
        triggers = [
            _Trigger(tuple(normaliser.stems(trigger)), entry)
            for entry in entries
            for trigger in entry.triggers
        ]
        ordered = sorted((t for t in triggers if t.stems), key=lambda t: -len(t.stems))
        self._by_first_stem: dict[str, list[tuple[int, _Trigger]]] = defaultdict(list)
        for rank, trigger in enumerate(ordered):
            self._by_first_stem[trigger.stems[0]].append((rank, trigger))

    def check(self, message: str) -> Safety | None:
        positions: dict[str, list[int]] = defaultdict(list)
        for index, stem in enumerate(self._normaliser.stems(message)):
            positions[stem].append(index)
        candidates = sorted(
            (found for stem in positions for found in self._by_first_stem.get(stem, ())),
            key=lambda found: found[0],
        )
        negated = {p + 1 for stem in self._negations for p in positions.get(stem, ())}
        return next((t.entry for _, t in candidates if t.fires(positions, negated)), None)
