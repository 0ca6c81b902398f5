"""Red flags: checked on the whole message before any matching, and always first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.knowledge import Safety
from bot.matcher import Normaliser, sentences_of

EXTRA_WORDS_IN_WINDOW = 3  # "pain in my chest" still matches the trigger "chest pain"
PARTS_WINDOW = 16  # "diabetic ... feet": the parts of a trigger at most this many words apart
PART_SEPARATOR = "..."
NEGATIONS = frozenset({"no", "not", "never", "without", "nothing", "nor", "avoid", "prevent"})
NEGATION_REACH = 2  # "no real sharp pain", "not feeling numb": the next words, up to this many
SCOPE_ENDS = frozenset(
    "but and though although except yet now then however still so because".split()
)  # "not dizzy but chest pain": the negation stops at "but"
DOUBLE_NEGATIONS = frozenset({"not", "never", "unable", "cannot", "hardly", "barely"})
DOUBLE_NEGATION_REACH = 4  # "can't walk without sharp pain": the pain is there
WISHES = frozenset({"want", "wish", "like"})  # "don't want him feeling sick": reaches further
WISH_REACH = 5

Positions = dict[str, list[int]]


@dataclass(frozen=True)
class _Phrase:
    """Words that must stand close together, in any order. A phrase that says "not"
    itself ("can't grip") is never negated."""

    stems: tuple[str, ...]
    negative: bool = False

    def places(self, positions: Positions, negated: set[int]) -> list[int]:
        """Where the phrase is in the message (its first word's positions), leaving out
        places where any of its words is negated."""
        if any(stem not in positions for stem in self.stems):
            return []
        if self.negative:
            negated = set()
        window = len(self.stems) + EXTRA_WORDS_IN_WINDOW
        first, *others = self.stems
        return [
            p
            for p in positions[first]
            if p not in negated
            and all(
                any(abs(q - p) < window and q not in negated for q in positions[other])
                for other in others
            )
        ]


@dataclass(frozen=True)
class _Trigger:
    parts: tuple[_Phrase, ...]
    entry: Safety
    size: int  # words in all; the longest trigger that fires wins

    def fires(self, positions: Positions, negated: set[int], excused: set[int]) -> bool:
        """Whether every part is in the message, the parts near each other, outside the
        positions `excused` by the entry's `unless` words."""
        first, *others = (
            [p for p in part.places(positions, negated) if p not in excused] for part in self.parts
        )
        return any(
            all(any(abs(q - p) <= PARTS_WINDOW for q in places) for places in others)
            for p in first
        )


@dataclass(frozen=True)
class SafetyCheck:
    """What a message says of the red flags: the one it raises, and those it names only to
    deny or set aside ("I'm not pregnant", "the surgery of my car")."""

    raised: Safety | None
    ruled_out: frozenset[str] = frozenset()


class RedFlags:
    """Finds the red-flag entry a message raises, if any.

    A trigger fires when all of its words (stop words too: "throw up" is not "throw")
    stand within a few words of each other in the message, in any order, with typos
    and word endings forgiven as in matching; a trigger of parts ("diabetic ... feet")
    when every part does, the parts within a sentence or two of each other. It does not
    fire when a negation comes just before it in the same sentence with nothing like
    "but" between ("no injury", "not feeling numb", "nothing sharp"); "without" negates
    only when the person says the sign is absent ("can't walk without sharp pain" says
    the pain is there). Nor does it fire in a sentence holding one of the entry's
    `unless` words ("years ago"). The longest trigger that fires wins.
    """

    def __init__(self, entries: Sequence[Safety], normaliser: Normaliser) -> None:
        self._normaliser = normaliser
        self._negations = {normaliser.stem(word) for word in NEGATIONS}
        self._scope_ends = {normaliser.stem(word) for word in SCOPE_ENDS}
        self._double_negations = {normaliser.stem(word) for word in DOUBLE_NEGATIONS}
        self._without = normaliser.stem("without")
        self._wishes = {normaliser.stem(word) for word in WISHES}
        self._unless = {
            entry.id: [self._phrase(words) for words in entry.unless] for entry in entries
        }
        triggers = []
        for entry in entries:
            for trigger in entry.triggers:
                parts = tuple(self._phrase(part) for part in trigger.split(PART_SEPARATOR))
                if all(part.stems for part in parts):
                    size = sum(len(part.stems) for part in parts)
                    triggers.append(_Trigger(parts, entry, size))
        triggers.sort(key=lambda t: -t.size)
        self._by_first_stem: dict[str, list[tuple[int, _Trigger]]] = defaultdict(list)
        for rank, trigger in enumerate(triggers):
            self._by_first_stem[trigger.parts[0].stems[0]].append((rank, trigger))

    def _phrase(self, words: str) -> _Phrase:
        stems = tuple(self._normaliser.stems(words))
        return _Phrase(stems, negative=any(stem in self._negations for stem in stems))

    def check(self, message: str) -> SafetyCheck:
        positions: Positions = defaultdict(list)
        negated: set[int] = set()
        sentences: list[range] = []
        offset = 0
        for sentence in sentences_of(message):
            stems = self._normaliser.stems(sentence, strict=True)
            for index, stem in enumerate(stems):
                positions[stem].append(offset + index)
            negated |= {offset + index for index in self._negated(stems)}
            sentences.append(range(offset, offset + len(stems)))
            offset += len(stems) + EXTRA_WORDS_IN_WINDOW  # phrases do not span sentences
        candidates = sorted(
            (found for stem in positions for found in self._by_first_stem.get(stem, ())),
            key=lambda found: found[0],
        )
        excused: dict[str, set[int]] = {}
        ruled_out: set[str] = set()
        for _, trigger in candidates:
            entry_id = trigger.entry.id
            if entry_id not in excused:
                excused[entry_id] = self._excused(entry_id, positions, sentences)
            if trigger.fires(positions, negated, excused[entry_id]):
                return SafetyCheck(trigger.entry)
            if trigger.fires(positions, set(), set()):
                ruled_out.add(entry_id)
        return SafetyCheck(None, frozenset(ruled_out))

    def _excused(self, entry_id: str, positions: Positions, sentences: list[range]) -> set[int]:
        """The positions of the sentences that hold one of the entry's `unless` words."""
        found = {p for phrase in self._unless[entry_id] for p in phrase.places(positions, set())}
        return {p for sentence in sentences if any(f in sentence for f in found) for p in sentence}

    def _negated(self, stems: list[str]) -> set[int]:
        """The positions in one sentence that a negation before them covers."""
        covered: set[int] = set()
        for index, stem in enumerate(stems):
            if stem not in self._negations or self._says_present(stems, index):
                continue
            wish = index + 1 < len(stems) and stems[index + 1] in self._wishes
            reach = WISH_REACH if wish else NEGATION_REACH
            for after in range(index + 1, min(index + 1 + reach, len(stems))):
                if stems[after] in self._scope_ends:
                    break
                covered.add(after)
        return covered

    def _says_present(self, stems: list[str], index: int) -> bool:
        """Whether "without" at `index` follows a negation: "can't sit without pain"."""
        if stems[index] != self._without:
            return False
        before = stems[max(index - DOUBLE_NEGATION_REACH, 0) : index]
        return any(stem in self._double_negations for stem in before)
