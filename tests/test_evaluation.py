"""The assistant on questions written the way people type, held at the release bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.assistant import Assistant
from bot.evaluation import evaluate, load_cases
from bot.knowledge import load_knowledge
from bot.matcher import words_of

EVAL_FILE = Path(__file__).parent / "eval" / "questions.yaml"
# Written independently and never used to change the knowledge base (the scoring
# weights were chosen on both sets): it says how the bot does on questions nobody wrote
# phrasings for. The floor guards regressions.
HOLDOUT_FILE = Path(__file__).parent / "eval" / "holdout.yaml"
# Written like real posts (stories, typos, two questions at once, off-topic posts that
# share massage words) from the list of entry titles only, before the knowledge changed
# for them. The numbered sets were read while tuning; the held-out part never was.
POSTS_FILES = [
    Path(__file__).parent / "eval" / name
    for name in (
        "posts.yaml", "posts-2.yaml", "posts-3.yaml", "posts-4.yaml", "posts-5.yaml",
        "posts-6.yaml", "posts-7.yaml",
    )
]
POSTS_HOLDOUT_FILE = Path(__file__).parent / "eval" / "posts-holdout.yaml"
EVAL_FILES = [EVAL_FILE, HOLDOUT_FILE, *POSTS_FILES, POSTS_HOLDOUT_FILE]


def test_the_evaluation_set_meets_the_bar() -> None:
    cases = load_cases(EVAL_FILE)
    result = evaluate(Assistant(load_knowledge()), cases)
    misses = "\n".join(
        f"{m.case.expect} <- {m.reply.id or m.reply.kind}: {m.case.question}"
        for m in result.misses
    )
    assert result.accuracy.total >= 150 and result.rejection.total >= 40
    assert result.red_flags.total >= 15
    assert result.accuracy.rate >= 0.95, misses
    assert result.rejection.rate >= 0.95, misses
    assert result.red_flags.rate == 1.0, misses


def test_the_held_out_set_stays_above_its_floor() -> None:
    result = evaluate(Assistant(load_knowledge()), load_cases(HOLDOUT_FILE))
    assert result.accuracy.rate >= 0.80
    assert result.rejection.rate >= 0.95
    assert result.red_flags.rate == 1.0


def test_the_real_post_sets_stay_above_their_floors() -> None:
    assistant = Assistant(load_knowledge())
    tuned = evaluate(assistant, [c for path in POSTS_FILES for c in load_cases(path)])
    assert tuned.accuracy.total >= 250 and tuned.rejection.total >= 75
    assert tuned.accuracy.rate >= 0.82
    assert tuned.rejection.rate >= 0.85
    assert tuned.red_flags.rate == 1.0
    held_out = evaluate(assistant, load_cases(POSTS_HOLDOUT_FILE))
    assert held_out.accuracy.rate >= 0.70
    assert held_out.rejection.rate >= 0.75
    assert held_out.red_flags.rate == 1.0


@pytest.mark.parametrize("path", EVAL_FILES)
def test_no_case_copies_a_knowledge_phrasing(path: Path) -> None:
    kb = load_knowledge()
    phrasings = {" ".join(words_of(q)) for e in kb.entries.values() for q in e.questions}
    copied = [c.question for c in load_cases(path) if " ".join(words_of(c.question)) in phrasings]
    assert copied == []


def test_eval_command_prints_the_three_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(EVAL_FILE)]) == 0
    out = capsys.readouterr().out
    for label in ("top-1 accuracy", "off-topic rejection", "red-flag recall"):
        assert label in out


def test_a_bad_case_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text('- q: "fine"\n  expect: how-long\n- q: "no expectation"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="case 2 needs"):
        load_cases(path)
    path.write_text('- question: "oil?"\n  id: oil-or-lotion\n', encoding="utf-8")
    assert [(c.question, c.expect) for c in load_cases(path)] == [("oil?", "oil-or-lotion")]


def test_a_broken_evaluation_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("garbage: [\n", encoding="utf-8")
    assert main(["eval", str(path)]) == 2
    assert capsys.readouterr().err == f"massage-bot: {path}:2: invalid YAML\n"
    path.write_text("[]\n", encoding="utf-8")
    assert main(["eval", str(path)]) == 2
    assert "expected a list of cases" in capsys.readouterr().err
