"""Fuzzy question matching: normalise, correct typos with rapidfuzz, score by rare shared words.

A question and every phrasing of every entry become *terms*: lower-case words with
typos corrected against the knowledge base's vocabulary (rapidfuzz, OSA distance),
synonyms mapped to the knowledge base's words, stop words dropped, and stems taken.
Each term weighs its inverse entry frequency, so "rhomboids" says more than "back".

The score of a phrasing for a question (0 to 100) is mostly how much of the
phrasing's weight the question covers, partly how much of the question's weight
the phrasing explains, with a small rapidfuzz `token_sort_ratio` share to order
near ties. Long messages are also scored sentence by sentence, so a question asked
after a story is matched on its own. A phrasing scores only if it shares an
informative term (one found in fewer than half of the entries) with the question.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import snowballstemmer
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

STOP_WORDS = frozenset(
    """
    a about above again all am an and any anyone anything are as at be because been
    being but by can could did do does doing dont each else etc ever for from get gets
    getting go going got had has have having he her here hers herself him himself his how i
    if im in into is it its itself ive just know let lets like me mine my of off oh
    ok okay on once only or our ours out please pls plz really she should so
    some someone something than thank thanks thx that thats the their theirs them then there
    these they this those though thing things to too u um uh up us very was way we well were
    what whats when where which while who why will with would ya yeah yes yo you your youre
    yours hi hello hey hiya sup guys guy lol haha hmm wanna gonna gotta kinda sorta anyway
    wheres hows whos theres heres shes hes youve youll weve
    no nope nah yep yup idk dunno done sure kk
    tell question help need want wondering wonder also still ur r id ill theyre take takes
    taking took make makes making made try trying tried give gives giving put say said
    told stuff lot lots much many maybe actually basically honestly literally think thought
    mean means sure cool nice good great best anybody everyone ask asking asked
    """.split()
)
_CONTRACTIONS = (
    ("can't", "can not"), ("won't", "will not"), ("n't", " not"), ("'ll", " will"),
    ("'re", " are"), ("'ve", " have"), ("'m", " am"), ("'", ""),
)  # fmt: skip
_TYPED_NEGATION = re.compile(
    r"\b(do|does|did|is|are|was|were|should|would|could|ca|wo|have|has)nt\b"
)
_OPENED_NEGATION = {"ca": "can", "wo": "will"}  # typed "cant" is "can not", as "can't" is
_DRAWN_OUT = re.compile(r"([a-z])\1{2,}")  # "harderrr", "sooo", "owww": no word has 3 in a row
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_CORRECTABLE_LENGTH = 5
COMMON_ENGLISH_ZIPF = 3.0  # a word this frequent in English is a word, not a typo
STRICT_ENGLISH_ZIPF = 2.0  # for red flags: "fiver" is a word, "feaver" a typo of "fever"
INFORMATIVE_SHARE = 0.5  # a term in at least this share of the entries is not informative
WEAK_TERMS = frozenset({"not"})  # never enough on their own to pick an entry
EXPLAINED_POWER = 0.7  # how much words the phrasing does not explain lower its score
ENTRY_SHARE = 0.9  # words explained by the entry's other phrasings count this much
UNKNOWN_WEIGHT = 1.2  # a word the knowledge base never uses, against the rarest it does
FUZZ_WEIGHT = 0.1
RANKED = 20  # entries a ranking holds at most
RANKED_FOR_SURE = 8  # ... of which these are sure to be right, whatever the fuzz share
STORY_WEIGHT = 0.4  # the other sentences' words, when one question of several is ranked
ASKING_WORDS = frozenset(
    """
    how what whats where wheres which who why when is are am can could should would
    do does did will any anything tips tip ways advice help please pls plz need
    """.split()
)


def _max_typo_distance(word: str) -> int:
    return 1 if len(word) < 9 else 2


def words_of(text: str) -> list[str]:
    """Lower-case words of `text`, contractions opened ("don't" -> "do not"), letters
    drawn out for emphasis said once ("harderrr" -> "harder")."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = _DRAWN_OUT.sub(r"\1", text)
    for contraction, opened in _CONTRACTIONS:
        text = text.replace(contraction, opened)
    opened = _TYPED_NEGATION.sub(
        lambda m: f"{_OPENED_NEGATION.get(m[1], m[1])} not", text
    )
    return _WORD.findall(opened)


def sentences_of(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part.strip()]


def asking_sentences(sentences: list[str]) -> list[int]:
    """The indexes of the sentences that ask something (a question mark, or a question or
    request word first); the last sentence when none does."""
    asking = [
        index
        for index, sentence in enumerate(sentences)
        if sentence.rstrip().endswith("?") or (words_of(sentence) or [""])[0] in ASKING_WORDS
    ]
    return asking or [len(sentences) - 1]


def _summed(size: int, parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """An array of `size` zeros with each part's value added at its indexes."""
    if not parts:
        return np.zeros(size)
    indexes = np.concatenate([found for found, _ in parts])
    values = np.repeat([value for _, value in parts], [found.size for found, _ in parts])
    return np.bincount(indexes, weights=values, minlength=size)


def _weights(sentences: Sequence[Sequence[str]], asking: int) -> dict[str, float]:
    """Each term's weight: 1 in the asking sentence, `STORY_WEIGHT` only elsewhere."""
    weights: dict[str, float] = {}
    for index, terms in enumerate(sentences):
        weight = 1.0 if index == asking else STORY_WEIGHT
        for term in terms:
            weights[term] = max(weights.get(term, 0.0), weight)
    return weights


class Normaliser:
    """Turns text into terms: typo-corrected, synonyms mapped, stop words out, stemmed."""

    def __init__(self, vocabulary: Iterable[str], synonyms: Mapping[str, str]) -> None:
        self._stemmer = snowballstemmer.stemmer("english")
        self._synonyms = {tuple(words_of(k)): tuple(words_of(v)) for k, v in synonyms.items()}
        self._longest_synonym = max((len(k) for k in self._synonyms), default=1)
        self._synonym_starts = {variant[0] for variant in self._synonyms if variant}
        counts = Counter(vocabulary)
        for variant, canonical in self._synonyms.items():
            counts.update(variant + canonical)
        self._known = counts
        self._correctable = sorted(
            w for w in counts if len(w) >= MIN_CORRECTABLE_LENGTH - 1 and w not in STOP_WORDS
        )
        self.correct = lru_cache(maxsize=65536)(self._correct)
        self.stem = lru_cache(maxsize=65536)(self._stemmer.stemWord)

    def _correct(self, word: str, english_zipf: float = COMMON_ENGLISH_ZIPF) -> str:
        """The vocabulary word `word` was most likely meant to be, or `word` itself when it
        is known, short, a number, or an English word this common."""
        if (
            word in self._known
            or len(word) < MIN_CORRECTABLE_LENGTH
            or word.isdigit()
            or zipf_frequency(word, "en") >= english_zipf
        ):
            return word
        limit = _max_typo_distance(word)
        close = process.extract(
            word, self._correctable, scorer=OSA.distance, score_cutoff=limit, limit=8
        )
        if not close:
            return word
        best, _, _ = min(close, key=lambda found: (found[1], -self._known[found[0]]))
        return best

    def words(self, text: str, *, strict: bool = False) -> list[str]:
        """Corrected words with synonyms replaced by the knowledge base's words. `strict`
        corrects only words that are not English at all ("fiver" stays a fiver)."""
        zipf = STRICT_ENGLISH_ZIPF if strict else COMMON_ENGLISH_ZIPF
        corrected = [self.correct(word, zipf) for word in words_of(text)]
        mapped: list[str] = []
        i = 0
        while i < len(corrected):
            if corrected[i] not in self._synonym_starts:
                mapped.append(corrected[i])
                i += 1
                continue
            for size in range(min(self._longest_synonym, len(corrected) - i), 0, -1):
                canonical = self._synonyms.get(tuple(corrected[i : i + size]))
                if canonical:
                    mapped.extend(canonical)
                    i += size
                    break
            else:
                mapped.append(corrected[i])
                i += 1
        return mapped

    def stems(self, text: str, *, strict: bool = False) -> list[str]:
        """Every word's stem, stop words included, in order (for phrases)."""
        return [self.stem(word) for word in self.words(text, strict=strict)]

    def terms(self, text: str) -> list[str]:
        """Stemmed content words of `text`, in order, without repeats."""
        seen: dict[str, None] = {}
        for word in self.words(text):
            if word not in STOP_WORDS:
                seen.setdefault(self.stem(word), None)
        return list(seen)


@dataclass(frozen=True)
class Reading:
    """A question read once: its sentences and each sentence's terms."""

    sentences: tuple[str, ...]
    sentence_terms: tuple[tuple[str, ...], ...]

    @property
    def terms(self) -> list[str]:
        """The terms of the whole message, in order, without repeats."""
        return list(dict.fromkeys(t for terms in self.sentence_terms for t in terms))


@dataclass(frozen=True)
class Phrasing:
    entry_id: str
    text: str  # normalised, for rapidfuzz
    terms: frozenset[str]
    weight: float


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float  # 0 to 100
    phrasing: str


class Matcher:
    """Ranks the entries of a knowledge base for a question."""

    def __init__(
        self,
        phrasings: Mapping[str, Iterable[str]],
        synonyms: Mapping[str, str],
        extra_vocabulary: Iterable[str] = (),
    ) -> None:
        """`phrasings` maps each entry id to the texts that should match it."""
        by_entry = {entry_id: list(texts) for entry_id, texts in phrasings.items()}
        vocabulary = [w for texts in by_entry.values() for t in texts for w in words_of(t)]
        self.normaliser = Normaliser([*vocabulary, *extra_vocabulary], synonyms)
        entry_terms = {
            entry_id: [self.normaliser.terms(text) for text in texts]
            for entry_id, texts in by_entry.items()
        }
        self._entry_vocabulary = {
            entry_id: frozenset(t for terms in term_lists for t in terms)
            for entry_id, term_lists in entry_terms.items()
        }
        document_frequency: Counter[str] = Counter()
        for terms in self._entry_vocabulary.values():
            document_frequency.update(terms)
        entries = max(len(by_entry), 1)
        self.idf = {t: math.log(1 + entries / df) for t, df in document_frequency.items()}
        self.unknown_weight = UNKNOWN_WEIGHT * math.log(1 + entries)
        self.informative_idf = math.log(1 + 1 / INFORMATIVE_SHARE)
        self._phrasings: list[Phrasing] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for entry_id, term_lists in entry_terms.items():
            for terms in term_lists:
                if not terms:
                    continue
                for term in terms:
                    postings[term].append(len(self._phrasings))
                self._phrasings.append(
                    Phrasing(
                        entry_id=entry_id,
                        text=" ".join(terms),
                        terms=frozenset(terms),
                        weight=sum(self.idf[t] for t in terms),
                    )
                )
        # The same index as arrays, so that a question is scored against every phrasing
        # at once: phrasings by term, entries by term, and each phrasing's entry and weight.
        self._entry_ids = list(by_entry)
        entry_number = {entry_id: n for n, entry_id in enumerate(self._entry_ids)}
        self._postings = {t: np.array(found, dtype=np.int32) for t, found in postings.items()}
        entries_by_term: dict[str, list[int]] = defaultdict(list)
        for entry_id, vocabulary in self._entry_vocabulary.items():
            for term in vocabulary:
                entries_by_term[term].append(entry_number[entry_id])
        self._term_entries = {t: np.array(e, dtype=np.int32) for t, e in entries_by_term.items()}
        self._phrasing_entry = np.array(
            [entry_number[p.entry_id] for p in self._phrasings], dtype=np.int32
        )
        self._phrasing_weight = np.array([p.weight for p in self._phrasings])
        self._phrasing_size = np.array([len(p.terms) for p in self._phrasings], dtype=np.int32)

    @property
    def size(self) -> int:
        """How many phrasings the matcher compares."""
        return len(self._phrasings)

    def knows(self, term: str) -> bool:
        """Whether some phrasing of the knowledge base uses `term`."""
        return term in self.idf

    def is_informative(self, term: str) -> bool:
        return self.idf.get(term, 0.0) >= self.informative_idf

    def read(self, question: str) -> Reading:
        """`question` as the matcher reads it: its sentences and their terms."""
        sentences = tuple(sentences_of(question))
        return Reading(sentences, tuple(tuple(self.normaliser.terms(s)) for s in sentences))

    def rank(self, question: str | Reading, limit: int = 5) -> list[Match]:
        """The best entries for `question`, best first, one match per entry.

        A long message is matched as a whole, so that a question leaning on its story
        ("how do I get rid of it?") takes its topic from the story, and a story about
        bread dough keeps its "when do I stop kneading?" from passing for a massage
        question.
        """
        reading = self.read(question) if isinstance(question, str) else question
        return self._rank_weighted(dict.fromkeys(reading.terms, 1.0))[:limit]

    def rank_each_question(
        self, reading: Reading, asking: Sequence[int], limit: int = 3
    ) -> list[list[Match]]:
        """The ranking of each sentence of `reading` that asks something (their indexes
        in `asking`), its own words counting fully and the rest `STORY_WEIGHT`."""
        return [
            self._rank_weighted(_weights(reading.sentence_terms, index))[:limit]
            for index in asking
        ]

    def _rank_weighted(self, weights: dict[str, float]) -> list[Match]:
        """Score every phrasing that shares an informative term with the question (or, when
        it has none, that is made only of its common words), best entry first.

        Each term counts its rarity (idf) times its weight in the question.
        coverage: the share of the phrasing's weight the question has;
        explained: the share of the question's weight found in the phrasing and in the
        entry's other phrasings. A phrasing scores coverage x explained^EXPLAINED_POWER.
        All phrasings are scored at once, as arrays.
        """
        known = [t for t in weights if t in self._postings]
        informative = [t for t in known if self.is_informative(t) and t not in WEAK_TERMS]
        count = len(self._phrasings)
        if informative:
            candidates = np.unique(np.concatenate([self._postings[t] for t in informative]))
        else:  # only common words ("how do I give a massage"): phrasings made of them alone
            found = np.zeros(count, dtype=np.int32)
            for term in known:
                found[self._postings[term]] += 1
            candidates = np.flatnonzero((found > 0) & (found == self._phrasing_size))
        if candidates.size == 0:
            return []
        mass = {t: self.idf.get(t, self.unknown_weight) * w for t, w in weights.items()}
        shared = _summed(count, [(self._postings[t], mass[t]) for t in known])[candidates]
        in_entry = _summed(len(self._entry_ids), [(self._term_entries[t], mass[t]) for t in known])
        coverage = shared / self._phrasing_weight[candidates]
        entries = self._phrasing_entry[candidates]
        in_entries = ENTRY_SHARE * in_entry[entries]
        explained = (in_entries + (1 - ENTRY_SHARE) * shared) / sum(mass.values())
        scores = coverage * explained**EXPLAINED_POWER
        order = np.lexsort((-scores, entries))  # by entry, its best phrasing first
        by_entry = entries[order]
        firsts = order[np.r_[True, by_entry[1:] != by_entry[:-1]]]
        best = firsts[np.argsort(-scores[firsts], kind="stable")][:RANKED]
        # only entries that the fuzz share could still lift into the top get it computed
        bar = scores[best[min(RANKED_FOR_SURE, best.size) - 1]] - FUZZ_WEIGHT / (1 - FUZZ_WEIGHT)
        best = best[scores[best] >= bar]
        query_text = " ".join(t for t, w in weights.items() if w == 1.0)
        matches = []
        for position in best:
            phrasing = self._phrasings[candidates[position]]
            share = fuzz.token_sort_ratio(query_text, phrasing.text)
            score = (1 - FUZZ_WEIGHT) * 100 * float(scores[position]) + FUZZ_WEIGHT * share
            matches.append(Match(phrasing.entry_id, min(100.0, score), phrasing.text))
        return sorted(matches, key=lambda match: match.score, reverse=True)
