"""The body map: body.yaml loads, and every region a file names must exist in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.__main__ import main
from bot.body import BodyMap
from bot.knowledge import default_knowledge_dir, load_knowledge
from tests.kb_helpers import problems_for, write

BODY = """\
back:
  outline:
    - rect: [0.4, 0.1, 0.6, 0.9]
  regions:
    - id: spine
      title: The spine
      avoid: true
      rect: [0.49, 0.1, 0.51, 0.6]
    - id: rhomboids
      title: Rhomboids
      paired: true
      rect: [0.45, 0.2, 0.49, 0.3]
front:
  outline:
    - rect: [0.4, 0.1, 0.6, 0.9]
"""

TECHNIQUES = """\
- id: fist-rocking
  title: Rocking light fist
  regions: [rhomboids, spine-left]
  questions: [how do i use my fist, what is rocking, rocking fist, fist on the back]
  answer: Make a light fist and rock your body so your weight does the pressing.
"""

ROUTINE = """\
id: tiny
title: Tiny routine
questions: [tiny routine, a tiny one, the test routine, short routine please]
summary: Three steps of four minutes, for tests.
next_time: Try the same routine a little slower.
steps:
  - id: left
    title: Left side
    text: Rock a light fist along the left side of the upper back.
    seconds: 240
    side: left
    more_pressure: Slow down and use the finger joints, other hand on top.
    less_pressure: Open the fist and use the flat of the fingers.
    regions: [rhomboids-left, rhomboids-right]
    pattern: lines
  - id: right
    title: Right side
    text: Rock a light fist along the right side of the upper back.
    seconds: 240
    side: right
    more_pressure: Kneel so your body weight does the work.
    less_pressure: Rock more slowly with less of your weight.
    regions: [rhomboids]
  - id: finish
    title: Finish
    text: Sweep both hands down the back three times and rest.
    seconds: 240
    more_pressure: Press the sweeps a little firmer.
    less_pressure: Make the sweeps feather light.
    pattern: rub
"""


def _inside(point: tuple[float, float], polygon: tuple[tuple[float, float], ...]) -> bool:
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (x1 - x0) * (y - y0) / (y1 - y0):
            inside = not inside
    return inside


def test_the_packaged_body_map_has_the_regions_people_name() -> None:
    body = load_knowledge().body
    assert body is not None
    for name in (
        "spine", "neck", "lower-back", "scapula", "trapezius", "rhomboids", "erector-spinae",
        "supraspinatus", "infraspinatus", "levator-scapulae", "deltoid", "lats",
        "quadratus-lumborum", "glutes", "hamstrings", "calves", "forearm-flexors",
        "forearm-extensors", "hands", "feet", "pecs", "quadriceps",
    ):
        assert body.resolve(name), name
    assert [a.id for a in body.resolve("rhomboids")] == ["rhomboids-left", "rhomboids-right"]
    for area in body.areas.values():
        xs, ys = [x for x, _ in area.points], [y for _, y in area.points]
        grid = [
            (min(xs) + (max(xs) - min(xs)) * i / 10, min(ys) + (max(ys) - min(ys)) * j / 10)
            for i in range(11)
            for j in range(11)
        ]
        inside = [point for point in grid if _inside(point, area.points)]
        on_body = [p for p in inside if any(_inside(p, part) for part in body.outline(area.view))]
        assert len(on_body) > 0.75 * len(inside), area.id  # mostly on the body
        if area.side is not None:  # the receiver's left: the viewer's left from behind
            on_the_left = max(xs) < 0.5
            assert on_the_left == ((area.side == "left") == (area.view == "back")), area.id
            assert on_the_left or min(xs) > 0.5, area.id


def test_regions_named_are_checked_at_their_line(tmp_path: Path) -> None:
    write(tmp_path, "body.yaml", BODY)
    techniques = write(tmp_path, "techniques.yaml", TECHNIQUES)
    routine = write(tmp_path, "routines/tiny.yaml", ROUTINE)
    problems = problems_for(tmp_path)
    assert problems[0] == (
        f"{techniques}:3: regions: unknown region 'spine-left'; did you mean 'spine'?"
    )
    for problem in (
        f"{routine}:14: steps.regions: a left-side step names 'rhomboids-right'",
        f"{routine}:23: steps.regions: a right-side step names 'rhomboids'",
        f"{routine}:24: steps: a pattern is drawn over regions: name them",
    ):
        assert problem in problems


def test_valid_regions_load_into_an_immutable_knowledge_base(tmp_path: Path) -> None:
    write(tmp_path, "body.yaml", BODY)
    write(tmp_path, "techniques.yaml", TECHNIQUES.replace(", spine-left", ""))
    kb = load_knowledge(tmp_path)
    assert kb.entries["fist-rocking"].regions == ("rhomboids",)  # type: ignore[union-attr]
    assert kb.body is not None and set(kb.body.areas) == {
        "spine", "rhomboids-left", "rhomboids-right"
    }
    with pytest.raises(AttributeError):
        kb.body = None  # type: ignore[misc]


def test_regions_without_a_body_map(tmp_path: Path) -> None:
    techniques = write(tmp_path, "techniques.yaml", TECHNIQUES)
    assert problems_for(tmp_path) == [
        f"{techniques}:3: regions: unknown region 'rhomboids': there is no body.yaml",
        f"{techniques}:3: regions: unknown region 'spine-left': there is no body.yaml",
    ]


def test_body_problems_point_at_their_line(tmp_path: Path) -> None:
    rhomboids = "[0.45, 0.2, 0.49, 0.3]"
    body = write(tmp_path, "body.yaml", BODY.replace(rhomboids, "[0.45, 0.2, 1.5, 0.3]"))
    write(tmp_path, "techniques.yaml", TECHNIQUES)  # not checked against a broken map
    assert problems_for(tmp_path) == [
        f"{body}:12: back.regions.rect: Input should be less than or equal to 1"
    ]
    write(tmp_path, "body.yaml", BODY.replace(rhomboids, "[0.51, 0.2, 0.55, 0.3]"))
    [problem] = problems_for(tmp_path)
    assert problem.startswith(f"{body}:1: region 'rhomboids': a paired shape is the receiver's")
    write(tmp_path, "body.yaml", BODY.replace("id: spine", "id: rhomboids-left"))
    [problem] = problems_for(tmp_path)
    assert problem == f"{body}:1: region name 'rhomboids-left' is used twice"
    two_shapes = "    - rect: [0.4, 0.1, 0.6, 0.9]\n      ellipse: [0.5, 0.5, 0.1, 0.1]\n"
    write(tmp_path, "body.yaml", BODY.replace("  regions:\n", f"{two_shapes}  regions:\n", 1))
    [problem] = problems_for(tmp_path)
    assert problem == f"{body}:4: back.outline: give exactly one of ellipse, rect or polygon"


def test_kb_check_and_schema_know_body_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "body.yaml", BODY)
    write(tmp_path, "techniques.yaml", TECHNIQUES.replace(", spine-left", ""))
    assert main(["kb", "check", str(tmp_path)]) == 0
    capsys.readouterr()
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["kb", "schema"]) == 0
    validator = jsonschema.Draft202012Validator(json.loads(capsys.readouterr().out))
    packaged = yaml.safe_load((default_knowledge_dir() / "body.yaml").read_text(encoding="utf-8"))
    assert validator.is_valid(packaged)
    assert BodyMap.model_validate(packaged) is not None
    packaged["back"]["regions"][0]["colour"] = "red"
    assert not validator.is_valid(packaged)
