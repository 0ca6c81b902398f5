"""The one reply type the engine returns; cogs and the console render it."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ReplyKind = Literal["answer", "safety", "clarify", "fallback"]
MAX_QUESTION_CHARS = 2000  # every door refuses longer questions (Discord's message length)
LEAD_WORDS = 60  # what can be read at a glance mid-massage; the rest is one press away
SHORT_REST_WORDS = 12  # a rest this short is shown with the lead
ECHO_CHARS = 40  # of what someone typed, quoted back in an error
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(*])")


def echo(typed: str) -> str:
    """What someone typed, quoted and cut short, for an error that must not grow with it."""
    text = typed.strip()
    return repr(text if len(text) <= ECHO_CHARS else text[: ECHO_CHARS - 1] + "…")


def question_problem(question: str) -> str | None:
    """Why a question cannot be asked as it is, or None when it can: the one check every
    door (Discord, the console, `ask`) makes first."""
    if not question.strip():
        return "Ask me a question, for example *where are the rhomboids?*"
    if len(question) > MAX_QUESTION_CHARS:
        return (
            f"That question is {len(question)} characters long; please ask it in "
            f"{MAX_QUESTION_CHARS} or fewer."
        )
    return None


def split_lead(text: str, words: int = LEAD_WORDS) -> tuple[str, str]:
    """The first part of `text` to show at once, and the rest (maybe empty).

    The lead is the first paragraph (up to the first line break: a blank line in a
    knowledge file's folded text) when it fits in `words`, otherwise as many whole
    sentences as fit (always at least one).
    """
    text = text.strip()
    head, _, tail = text.partition("\n")
    if tail and len(head.split()) <= words:
        lead, rest = head, tail
    else:
        ends = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
        fitting = [end for end in ends if len(text[:end].split()) <= words]
        cut = fitting[-1] if fitting else ends[0]
        lead, rest = text[:cut], text[cut:]
    if len(rest.split()) < SHORT_REST_WORDS:
        return text, ""
    return lead.strip(), rest.strip()


def clock_text(seconds: float) -> str:
    """Seconds as m:ss, rounded up so a running step never shows 0:00."""
    whole = math.ceil(max(seconds, 0.0))
    return f"{whole // 60}:{whole % 60:02d}"


def minutes_text(seconds: float) -> str:
    """Seconds as whole minutes for people: "about 12 min" ("under a minute" below one)."""
    return "under a minute" if seconds < 60 else f"about {round(seconds / 60)} min"


@dataclass(frozen=True)
class Suggestion:
    """An entry the user may have meant, offered when the best matches are close."""

    id: str
    title: str
    score: float


@dataclass(frozen=True)
class Reply:
    """What the bot says to one question.

    `score` is the matcher's 0 to 100 confidence in `id` (100 for a red flag, which
    is matched by its trigger words, and for step advice given in a session).
    `suggestions`: for a `clarify`, what the person may have meant; for an `answer`,
    the other things the message asked about.
    """

    question: str
    kind: ReplyKind
    text: str
    id: str | None = None
    title: str | None = None
    score: float = 0.0
    suggestions: tuple[Suggestion, ...] = field(default=())

    @property
    def lead(self) -> str:
        """What to show at once (see `split_lead`)."""
        return split_lead(self.text)[0]

    @property
    def rest(self) -> str:
        """The rest of the text, shown on request; empty when the lead is all of it."""
        return split_lead(self.text)[1]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 1)
        data["suggestions"] = [
            {**asdict(s), "score": round(s.score, 1)} for s in self.suggestions
        ]
        return data


@dataclass(frozen=True)
class StepContext:
    """Where a question is asked from: a routine and its current step (0-based), and in a
    live session the seconds left on that step and whether its timer is paused."""

    routine_id: str
    step_index: int
    seconds_left: float | None = None
    paused: bool = False
