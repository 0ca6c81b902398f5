"""Red flags in everyday words win over everything; harmless look-alikes never raise one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.assistant import Assistant
from bot.knowledge import load_knowledge
from tests.kb_helpers import problems_for, write

EVAL = Path(__file__).parent / "eval"
# The tuning part was read while the triggers were written; the held-out part (every
# third case of the set, written before any trigger changed) never was.
TUNING, HELD_OUT = EVAL / "red_flags.yaml", EVAL / "red_flags-holdout.yaml"

RED_FLAGS = """\
- id: recent-injury
  title: Recent injury or surgery
  red_flag: true
  triggers: [had surgery, sharp pain, can't grip, diabetic ... numb feet]
  unless: [years ago]
  questions: [i just had surgery, after an operation, a recent injury, she hurt herself]
  answer: Hold off on massage until a doctor says it is fine.
"""


@pytest.fixture(scope="module")
def assistant() -> Assistant:
    return Assistant(load_knowledge())


def _cases(path: Path, part: str) -> list[str]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))[part]


def _kinds(assistant: Assistant, questions: list[str]) -> dict[str, str]:
    return {q: f"{assistant.ask(q).kind} {assistant.ask(q).id}" for q in questions}


def test_every_red_flag_of_the_tuning_set_is_caught(assistant: Assistant) -> None:
    questions = _cases(TUNING, "red_flags")
    assert len(questions) >= 40
    missed = {q: k for q, k in _kinds(assistant, questions).items() if not k.startswith("safety")}
    assert missed == {}


def test_no_look_alike_of_the_tuning_set_raises_a_safety_reply(assistant: Assistant) -> None:
    questions = _cases(TUNING, "look_alikes")
    assert len(questions) >= 40
    raised = {q: k for q, k in _kinds(assistant, questions).items() if k.startswith("safety")}
    assert raised == {}


def test_the_held_out_red_flags_stay_above_their_floor(assistant: Assistant) -> None:
    flags, look_alikes = _cases(HELD_OUT, "red_flags"), _cases(HELD_OUT, "look_alikes")
    caught = sum(assistant.ask(q).kind == "safety" for q in flags)
    kept_out = sum(assistant.ask(q).kind != "safety" for q in look_alikes)
    assert caught / len(flags) >= 0.8
    assert kept_out / len(look_alikes) >= 0.95


@pytest.fixture
def tiny(tmp_path: Path) -> Assistant:
    write(tmp_path, "safety.yaml", RED_FLAGS)
    return Assistant(load_knowledge(tmp_path))


@pytest.mark.parametrize(
    "message",
    [
        "she had surgery on her knee",
        "i can't walk without sharp pain",  # "without" after a negation: the pain is there
        "he cant grip his cup anymore",  # a trigger that says "not" itself
        "no idea why. she had surgery last week",
        "my dad is diabetic and lately he has numb feet",  # parts, a few words apart
        "not dizzy. sharp pain when i press",  # a negation ends with its sentence
        "no fever but a sharp pain in the neck",  # ... and at "but"
    ],
)
def test_red_flags_said_in_everyday_words(tiny: Assistant, message: str) -> None:
    assert tiny.ask(message).kind == "safety"


@pytest.mark.parametrize(
    "message",
    [
        "she had surgery years ago, all fine now",  # an `unless` word in its sentence
        "he has no sharp pain at all",
        "she can sit without sharp pain",  # "without" saying the sign is absent
        "she never had surgery",
        "i don't want to cause any sharp pain",
        "my dad is diabetic",  # only one part of the trigger
    ],
)
def test_harmless_look_alikes(tiny: Assistant, message: str) -> None:
    assert tiny.ask(message).kind != "safety"


def test_unless_words_belong_to_red_flags(tmp_path: Path) -> None:
    write(tmp_path, "safety.yaml", RED_FLAGS.replace("red_flag: true", "red_flag: false"))
    problems = problems_for(tmp_path)
    assert any("only a red flag has `unless` words" in p for p in problems)
