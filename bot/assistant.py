"""Answer a question from the knowledge base: red flags first, then the best match."""

from __future__ import annotations

from dataclasses import dataclass

from bot.knowledge import Entry, KnowledgeBase, Muscle, Step
from bot.matcher import Match, Matcher, words_of
from bot.reply import MAX_QUESTION_CHARS, Reply, StepContext, Suggestion
from bot.safety import RedFlags

MORE_PRESSURE_ID = "more-pressure"
LESS_PRESSURE_ID = "less-pressure"


@dataclass(frozen=True)
class MatchSettings:
    """How sure the assistant must be. Scores are the matcher's 0 to 100.

    `answer_threshold`: below it the bot does not answer (chosen on tests/eval/).
    `clarify_margin`: entries this close to the best make the answer a `clarify`.
    """

    answer_threshold: float = 45.0
    clarify_margin: float = 1.0
    max_suggestions: int = 3


def entry_phrasings(entry: Entry) -> list[str]:
    """The texts that should match an entry: its questions, title and other names.

    A title's parenthesis is a name of its own: "Effleurage (long gliding strokes)"
    matches "effleurage" and "long gliding strokes" too.
    """
    texts = [*entry.questions, entry.title]
    name, _, aside = entry.title.partition(" (")
    if aside:
        texts += [name, aside.rstrip(")")]
    if isinstance(entry, Muscle):
        texts += entry.aliases
    return texts


class Assistant:
    """Answers questions against one immutable knowledge base."""

    def __init__(self, kb: KnowledgeBase, settings: MatchSettings | None = None) -> None:
        self.kb = kb
        self.settings = settings or MatchSettings()
        trigger_words = [t for entry in kb.red_flags for t in (*entry.triggers, *entry.unless)]
        self.matcher = Matcher(
            {entry.id: entry_phrasings(entry) for entry in kb.entries.values()},
            kb.synonyms,
            extra_vocabulary=[w for t in trigger_words for w in words_of(t)],
        )
        self.red_flags = RedFlags(kb.red_flags, self.matcher.normaliser)
        self.fallback_text = self._fallback_text()

    def ask(self, question: str, context: StepContext | None = None) -> Reply:
        """Answer `question`, inside a routine step when `context` is given."""
        question = question.strip()
        red_flag = self.red_flags.check(question)  # the whole message: a red flag may come last
        if red_flag:
            return Reply(question, "safety", red_flag.text, red_flag.id, red_flag.title, 100.0)
        matches = self.matcher.rank(question[-MAX_QUESTION_CHARS:])  # the question comes last
        if not matches or matches[0].score < self.settings.answer_threshold:
            best = matches[0].score if matches else 0.0
            return Reply(question, "fallback", self.fallback_text, score=best)
        best = matches[0]
        step = self._step(context)
        if step and best.entry_id in (MORE_PRESSURE_ID, LESS_PRESSURE_ID):
            advice = step.more_pressure if best.entry_id == MORE_PRESSURE_ID else step.less_pressure
            entry = self.kb.entries[best.entry_id]
            return Reply(question, "answer", advice, entry.id, entry.title, best.score)
        close = self._close_to(best, matches)
        if len(close) > 1:
            suggestions = tuple(
                Suggestion(m.entry_id, self.kb.entries[m.entry_id].title, m.score) for m in close
            )
            text = "Did you mean one of these?\n" + "\n".join(f"- {s.title}" for s in suggestions)
            return Reply(question, "clarify", text, score=best.score, suggestions=suggestions)
        entry = self.kb.entries[best.entry_id]
        return Reply(question, "answer", entry.text, entry.id, entry.title, best.score)

    def _step(self, context: StepContext | None) -> Step | None:
        if context is None:
            return None
        routine = self.kb.routines.get(context.routine_id)
        if routine is None or not 0 <= context.step_index < len(routine.steps):
            return None
        return routine.steps[context.step_index]

    def _close_to(self, best: Match, matches: list[Match]) -> list[Match]:
        margin = self.settings.clarify_margin
        close = [m for m in matches if best.score - m.score <= margin]
        return close[: self.settings.max_suggestions]

    def _fallback_text(self) -> str:
        routines = ", ".join(sorted(self.kb.routines)) or "none yet"
        return (
            "I'm not sure I understood that one. I can help with massage at home: ask me "
            "how to do a technique (\"what is effleurage?\"), where a muscle is (\"where are "
            "the rhomboids?\"), how much pressure to use, or what is safe. I can also guide "
            f"you step by step through a routine ({routines})."
        )
