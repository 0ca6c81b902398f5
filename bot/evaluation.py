"""Measure the assistant on a set of questions with the answer expected for each.

An evaluation file is a YAML list of cases::

    - q: "can ya go firmer"
      expect: more-pressure     # an entry id, or `fallback` (not about massage),
                                # or `safety` (any red flag)

`question` may stand for `q`, and `id` or `kind` for `expect`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.assistant import Assistant
from bot.reply import Reply

FALLBACK = "fallback"
SAFETY = "safety"


@dataclass(frozen=True)
class Case:
    question: str
    expect: str


@dataclass(frozen=True)
class Miss:
    case: Case
    reply: Reply


@dataclass
class Tally:
    passed: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.rate:.1%} ({self.passed}/{self.total})"


@dataclass
class EvalResult:
    accuracy: Tally = field(default_factory=Tally)  # in-domain: top-1 entry
    rejection: Tally = field(default_factory=Tally)  # off-topic: fallback
    red_flags: Tally = field(default_factory=Tally)  # red flag: safety reply
    misses: list[Miss] = field(default_factory=list)


def load_cases(path: Path | str) -> list[Case]:
    """Read an evaluation file; raise ValueError naming the first bad case."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ValueError(f"{path}{line}: invalid YAML") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a list of cases")
    cases = []
    for number, item in enumerate(data, start=1):
        item = item if isinstance(item, dict) else {}
        question = item.get("q", item.get("question"))
        expect = item.get("expect") or item.get("id") or item.get("kind")
        if not isinstance(question, str) or not expect:
            raise ValueError(f"{path}: case {number} needs `q` and `expect`")
        cases.append(Case(question, str(expect)))
    return cases


def evaluate(assistant: Assistant, cases: list[Case]) -> EvalResult:
    result = EvalResult()
    red_flag_ids = {entry.id for entry in assistant.kb.red_flags}
    for case in cases:
        reply = assistant.ask(case.question)
        if case.expect == FALLBACK:
            tally, passed = result.rejection, reply.kind == "fallback"
        elif case.expect == SAFETY or case.expect in red_flag_ids:
            tally, passed = result.red_flags, reply.kind == "safety"
        else:
            if case.expect not in assistant.kb.entries:
                raise ValueError(f"case {case.question!r} expects unknown id {case.expect!r}")
            tally, passed = result.accuracy, reply.kind == "answer" and reply.id == case.expect
        tally.total += 1
        tally.passed += passed
        if not passed:
            result.misses.append(Miss(case, reply))
    return result
