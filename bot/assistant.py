"""Answer a question from the knowledge base: red flags first, then the best match."""

from __future__ import annotations

from dataclasses import dataclass

from bot.knowledge import Entry, KnowledgeBase, Muscle, Safety
from bot.matcher import Match, Matcher, Reading, asking_sentences, words_of
from bot.reply import (
    MAX_QUESTION_CHARS,
    Reply,
    ReplyKind,
    StepContext,
    Suggestion,
    clock_text,
    minutes_text,
    question_problem,
    split_lead,
)
from bot.safety import RedFlags

MORE_PRESSURE_ID = "more-pressure"
LESS_PRESSURE_ID = "less-pressure"
SESSION_TIME_LEFT_ID = "session-time-left"
SESSION_WHICH_STEP_ID = "session-which-step"
SESSION_NEXT_STEP_ID = "session-next-step"
SESSION_GO_BACK_ID = "session-go-back"


@dataclass(frozen=True)
class MatchSettings:
    """How sure the assistant must be. Scores are the matcher's 0 to 100.

    `answer_threshold`: below it the bot does not answer a short question (chosen on
    tests/eval/); `long_answer_threshold` for a message of `long_terms` content words or
    more that the knowledge base knows, whose story the answer cannot all explain; it
    rises as the share of the message's words that the knowledge base knows falls (to the
    power `known_power`): a story about bread dough or a necklace must score higher than
    one about a sore back.
    `ask_back_band`, `ask_back_lead`: a long message's best entry under the threshold by
    at most the band, and ahead of the next by at least the lead, is offered back: "Did
    you mean ...?" (a short question under the threshold shares too little to guess from).
    `clarify_margin`: entries this close to the best make the answer a `clarify`.
    """

    answer_threshold: float = 45.0
    long_answer_threshold: float = 24.0
    long_terms: int = 5
    known_power: float = 0.5
    ask_back_band: float = 4.0
    ask_back_lead: float = 12.0
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
        """Answer `question`, inside a routine step when `context` is given.

        A red flag anywhere in the message wins. Otherwise the best entry answers when
        it scores over the threshold; one clearly ahead but a little under it is offered
        back ("Did you mean ...?"); near ties ask which one was meant. A message that
        asks two things gets the main answer with the other offered as a suggestion.
        """
        if len(question) > MAX_QUESTION_CHARS:  # checked first: a megabyte would take seconds
            too_long = question_problem(question) or ""
            return Reply(question[:MAX_QUESTION_CHARS], "fallback", too_long)
        question = question.strip()
        safety = self.red_flags.check(question)  # the whole message: a red flag may come last
        if red_flag := safety.raised:
            return Reply(question, "safety", red_flag.text, red_flag.id, red_flag.title, 100.0)
        reading = self.matcher.read(question)
        denied = safety.ruled_out  # "I'm not pregnant": never answered with that red flag
        matches = [m for m in self.matcher.rank(reading) if m.entry_id not in denied]
        threshold, long = self._threshold(reading)
        if matches and self._is_red_flag(self.kb.entries[matches[0].entry_id]):
            threshold = max(threshold, self.settings.answer_threshold)  # it stops a session
        sure = bool(matches) and matches[0].score >= threshold
        each = [m for m in self._each_question(reading, sure) if m.entry_id not in denied]
        if not sure and not each:
            return self._unsure(question, matches, threshold, long=long)
        if each and (not sure or len(each) > 1):  # several questions: the first asked leads
            matches = [each[0], *(m for m in matches if m.entry_id != each[0].entry_id)]
        best = matches[0]
        entry = self.kb.entries[best.entry_id]
        live = self._from_session(best.entry_id, context)
        if live is not None:
            return Reply(question, "answer", live, entry.id, entry.title, best.score)
        close = self._close_to(best, matches)
        if len(close) > 1 and len(each) < 2:  # two questions are not one ambiguous one
            suggestions = tuple(self._suggestion(m) for m in close)
            text = "Did you mean one of these?\n" + "\n".join(f"- {s.title}" for s in suggestions)
            return Reply(question, "clarify", text, score=best.score, suggestions=suggestions)
        also = tuple(self._suggestion(m) for m in each if m.entry_id != best.entry_id)
        also = also[: self.settings.max_suggestions]
        kind: ReplyKind = "safety" if self._is_red_flag(entry) else "answer"
        return Reply(question, kind, entry.text, entry.id, entry.title, best.score, also)

    @staticmethod
    def _is_red_flag(entry: Entry) -> bool:
        return isinstance(entry, Safety) and entry.red_flag

    def _threshold(self, reading: Reading) -> tuple[float, bool]:
        """The score an answer needs for this message, and whether the message is long."""
        settings = self.settings
        terms = reading.terms
        known = sum(self.matcher.knows(term) for term in terms)
        if known < settings.long_terms:
            return settings.answer_threshold, False
        return settings.long_answer_threshold / (known / len(terms)) ** settings.known_power, True

    def _unsure(
        self, question: str, matches: list[Match], threshold: float, *, long: bool
    ) -> Reply:
        """Under the threshold: ask back about an entry clearly ahead, else the fallback."""
        if not matches:
            return Reply(question, "fallback", self.fallback_text)
        best, settings = matches[0], self.settings
        runner_up = matches[1].score if len(matches) > 1 else 0.0
        near = best.score >= threshold - settings.ask_back_band
        near = near and best.score - runner_up >= settings.ask_back_lead
        if near and long:
            suggestion = self._suggestion(best)
            text = f"Did you mean: {suggestion.title}?"
            return Reply(question, "clarify", text, score=best.score, suggestions=(suggestion,))
        return Reply(question, "fallback", self.fallback_text, score=best.score)

    def _each_question(self, reading: Reading, answered: bool) -> list[Match]:
        """For a message of several sentences, the best entry of each question that is sure
        enough on its own, in the order asked, one per entry: the answer when the message
        as a whole was not `answered`, else what else it asks (when it asks several things)."""
        asking = asking_sentences(list(reading.sentences)) if len(reading.sentences) > 1 else []
        if not asking or (answered and len(asking) < 2):
            return []
        found: dict[str, Match] = {}
        for ranking in self.matcher.rank_each_question(reading, asking):
            top = ranking[0] if ranking else None
            if top is not None and top.score >= self.settings.answer_threshold:
                found.setdefault(top.entry_id, top)
        return list(found.values())

    def _suggestion(self, match: Match) -> Suggestion:
        return Suggestion(match.entry_id, self.kb.entries[match.entry_id].title, match.score)

    def _from_session(self, entry_id: str, context: StepContext | None) -> str | None:
        """For a question about the session itself or its pressure, asked inside a routine,
        the answer from that routine and step; None for any other question."""
        routine = self.kb.routines.get(context.routine_id) if context else None
        if context is None or routine is None or not 0 <= context.step_index < len(routine.steps):
            return None
        index, steps = context.step_index, routine.steps
        step, count = steps[index], len(steps)
        if entry_id == MORE_PRESSURE_ID:
            return step.more_pressure
        if entry_id == LESS_PRESSURE_ID:
            return step.less_pressure
        later = sum(s.seconds for s in steps[index + 1 :])
        if entry_id == SESSION_TIME_LEFT_ID:
            if context.seconds_left is None:
                return (
                    f"Step {index + 1} of {count}, {step.title}, lasts "
                    f"{clock_text(step.seconds)}; the steps after it take {minutes_text(later)}."
                )
            paused = " (the timer is paused)" if context.paused else ""
            return (
                f"{clock_text(context.seconds_left)} left on step {index + 1} of {count}, "
                f"{step.title}{paused}; {minutes_text(context.seconds_left + later)} "
                "to the end of the routine."
            )
        if entry_id == SESSION_WHICH_STEP_ID:
            return f"You're on step {index + 1} of {count}: {step.title}.\n{step.text}"
        if entry_id == SESSION_NEXT_STEP_ID:
            if index == count - 1:
                return f"This is the last step, {step.title}. After it, press Next to finish."
            upcoming = steps[index + 1]
            lead = split_lead(upcoming.text)[0]
            return f"Next comes step {index + 2} of {count}: {upcoming.title}.\n{lead}"
        if entry_id == SESSION_GO_BACK_ID:
            if index == 0:
                return "This is the first step: Back starts it again with a fresh timer."
            return (
                f"Press Back (or type back) to return to step {index} of {count}, "
                f"{steps[index - 1].title}, with a fresh timer."
            )
        return None

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
