"""Loading and validating knowledge files: every problem is `FILE:LINE: what is wrong`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.knowledge import load_knowledge
from tests.kb_helpers import problems_for, write

GOOD_FAQ = """\
- id: how-long
  title: How long should a massage be
  questions:
    - how long should a massage last
    - how many minutes
    - is ten minutes enough
    - how long to rub her back
  answer: Ten to twenty minutes is plenty for a back massage at home.
  related: [water-after]
- id: water-after
  title: Water after a massage
  questions:
    - should i drink water after
    - water after massage
    - do i need to drink water
    - why drink water after a rub
  answer: A glass of water feels nice afterwards, but it is not a must.
"""


def test_a_valid_directory_loads(tmp_path: Path) -> None:
    write(tmp_path, "faq.yaml", GOOD_FAQ)
    write(tmp_path, "synonyms.yaml", "more pressure: [harder, firmer]\n")
    kb = load_knowledge(tmp_path)
    assert set(kb.entries) == {"how-long", "water-after"}
    assert kb.synonyms == {"harder": "more pressure", "firmer": "more pressure"}


def test_bad_yaml_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.yaml", GOOD_FAQ + "- id: broken\n  title: [unclosed\n")
    [problem] = problems_for(tmp_path)
    assert problem.startswith(f"{path}:")
    line = int(problem.split(":")[1])
    assert line in (19, 20)  # the unclosed "[" opens on 19; YAML notices at the end
    assert "invalid YAML" in problem


def test_a_missing_field_names_the_entry_line(tmp_path: Path) -> None:
    answer = "  answer: A glass of water feels nice afterwards, but it is not a must.\n"
    text = GOOD_FAQ.replace(answer, "")
    path = write(tmp_path, "faq.yaml", text)
    assert problems_for(tmp_path) == [f"{path}:10: answer: Field required"]


def test_duplicate_id_and_unknown_related(tmp_path: Path) -> None:
    text = GOOD_FAQ.replace("id: water-after", "id: how-long").replace("[water-after]", "[nope]")
    path = write(tmp_path, "faq.yaml", text)
    assert problems_for(tmp_path) == [
        f"{path}:10: duplicate id 'how-long'",
        f"{path}:1: how-long: related id 'nope' does not exist",
    ]


def test_an_over_long_answer_points_at_the_answer(tmp_path: Path) -> None:
    text = GOOD_FAQ.replace("Ten to twenty minutes", "x" * 1300)
    path = write(tmp_path, "faq.yaml", text)
    [problem] = problems_for(tmp_path)
    assert problem.startswith(f"{path}:8: answer:")
    assert "1200" in problem


def test_too_few_questions_and_a_duplicate_key(tmp_path: Path) -> None:
    text = GOOD_FAQ.replace("    - is ten minutes enough\n    - how long to rub her back\n", "")
    path = write(tmp_path, "faq.yaml", text)
    [problem] = problems_for(tmp_path)
    assert problem.startswith(f"{path}:4: questions:")
    write(tmp_path, "faq.yaml", GOOD_FAQ.replace("  related: [water-after]\n", "  title: again\n"))
    [problem] = problems_for(tmp_path)
    assert problem == f"{path}:9: invalid YAML: duplicate key 'title'"


def test_routine_length_is_checked(tmp_path: Path) -> None:
    step = """\
      - id: step-{n}
        title: Step {n}
        text: Press slowly along the muscle beside the spine.
        seconds: 60
        more_pressure: Lean in with your body weight.
        less_pressure: Use the flat of your hand instead.
    """
    steps = "".join(textwrap.dedent(step).format(n=n) for n in range(3))
    routine = f"""\
id: short
title: Too short
questions: [a short one, tiny routine, quick rub, three steps]
summary: A routine that is far too short to be valid.
next_time: Try a longer one next time around.
steps:
{textwrap.indent(steps, "  ")}"""
    path = write(tmp_path, "routines/short.yaml", routine)
    [problem] = problems_for(tmp_path)
    assert problem == f"{path}:1: steps last 180 s; a routine lasts 600 to 1200 s"


def test_unknown_file_and_no_files(tmp_path: Path) -> None:
    assert problems_for(tmp_path) == [f"{tmp_path}:1: no knowledge files found"]
    path = write(tmp_path, "stuff.yaml", "[]\n")
    [problem] = problems_for(tmp_path)
    assert problem.startswith(f"{path}:1: unknown knowledge file")


def test_kb_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "faq.yaml", GOOD_FAQ)
    assert main(["kb", "check", str(tmp_path)]) == 0
    assert "valid (2 faq" in capsys.readouterr().out
    write(tmp_path, "faq.yaml", GOOD_FAQ.replace("[water-after]", "[gone]"))
    assert main(["kb", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"{tmp_path / 'faq.yaml'}:1: how-long: related id 'gone' does not exist"


def test_kb_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["kb", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    faq = [{"id": "x", "title": "Xx", "questions": ["a b", "c d", "e f", "g h"],
            "answer": "long enough answer"}]
    assert jsonschema.Draft202012Validator(schema).is_valid(faq)
    assert not jsonschema.Draft202012Validator(schema).is_valid([{"id": "Bad Id"}])


def test_one_broken_file_does_not_bury_the_problem(tmp_path: Path) -> None:
    write(tmp_path, "faq.yaml", GOOD_FAQ.replace("[water-after]", "[tiny-routine]"))
    routine = write(tmp_path, "routines/tiny.yaml", "id: tiny-routine\ntitle: Tiny\n")
    [problem, *others] = problems_for(tmp_path)
    assert problem.startswith(f"{routine}:1: questions: Field required")
    assert not any("does not exist" in line for line in others)
    (tmp_path / "faq.yaml").write_bytes(b"\xff\xfe not utf-8")
    problems = problems_for(tmp_path)
    assert problems[0] == f"{tmp_path / 'faq.yaml'}:1: not UTF-8 text"
    assert not any("does not exist" in line for line in problems)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("- id: ok-entry\n  ? [a, list]\n  : as a key\n", 2, "a key must be plain text"),
        ("- id: dated\n  title: 2024-02-30\n", 1, "questions: Field required"),  # no date
        (f"- id: big\n  title: Big\n  related: {'9' * 5000}\n", 1, ""),  # a huge number
        ("- id: deep\n  title: " + "[" * 5000 + "]" * 5000 + "\n", 2, ""),
    ],
)
def test_odd_yaml_is_a_problem_with_its_line_not_a_traceback(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = write(tmp_path, "faq.yaml", text)
    problems = problems_for(tmp_path)
    assert problems and all(p.startswith(f"{path}:") for p in problems)
    assert says in "\n".join(problems)
    assert any(p.startswith(f"{path}:{line}:") for p in problems)


def test_only_regular_files_of_a_sensible_size_are_read(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").symlink_to("/dev/zero")
    assert problems_for(tmp_path) == [f"{tmp_path / 'faq.yaml'}:1: not a regular file "
                                      "(a pipe, a device or a link to one)"]  # fmt: skip
    (tmp_path / "faq.yaml").unlink()
    os.mkfifo(tmp_path / "faq.yaml")  # nobody writes to it: reading must not wait
    assert "not a regular file" in problems_for(tmp_path)[0]
    (tmp_path / "faq.yaml").unlink()
    write(tmp_path, "faq.yaml", "# " + "x" * 2_100_000 + "\n")
    assert problems_for(tmp_path) == [f"{tmp_path / 'faq.yaml'}:1: larger than 2 MB; split it up"]


def test_kb_check_reports_odd_files_in_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").symlink_to("/dev/zero")
    write(tmp_path, "techniques.yaml", "- ? [key]\n  : value\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "kb", "check", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 2
