"""The one reply type the engine returns; cogs and the console render it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ReplyKind = Literal["answer", "safety", "clarify", "fallback"]
MAX_QUESTION_CHARS = 1000  # longer questions are refused in Discord and matched cut short


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
    """

    question: str
    kind: ReplyKind
    text: str
    id: str | None = None
    title: str | None = None
    score: float = 0.0
    suggestions: tuple[Suggestion, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 1)
        data["suggestions"] = [
            {**asdict(s), "score": round(s.score, 1)} for s in self.suggestions
        ]
        return data


@dataclass(frozen=True)
class StepContext:
    """Where a question is asked from: a routine and its current step (0-based)."""

    routine_id: str
    step_index: int
