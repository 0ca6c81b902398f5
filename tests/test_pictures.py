"""Pictures: everything that names a region draws, and the highlight stays where it should.

The checks read the rendered PNG's pixels: the highlight colour must fall inside the
named regions' shapes (computed from the body map, not from the drawing code), never on
the spine, and only on the worked side for one-sided steps.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageChops, ImageDraw

from bot import pictures
from bot.__main__ import main
from bot.body import Area
from bot.console import Console
from bot.knowledge import KnowledgeBase, Muscle, Technique, load_knowledge
from bot.pictures import (
    AVOID_FILL,
    AVOID_INK,
    HIGHLIGHT,
    PATTERN_INK,
    Panel,
    Plan,
    entry_plan,
    picture_for_entry,
    picture_for_step,
    render,
    step_plan,
)
from bot.sessions import SessionEngine
from bot.store import Store

if TYPE_CHECKING:
    from conftest import FakeAsker, FakeClock

TOLERANCE = 2  # pixels: smoothing may shift an edge this much


@pytest.fixture(scope="module")
def packaged() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture(scope="module")
def drawn(packaged: KnowledgeBase) -> dict[str, tuple[Plan, Image.Image]]:
    """Every picture of the packaged knowledge base, drawn once for all the tests."""
    plans: dict[str, Plan | None] = {
        f"{routine.id}/{step.id}": step_plan(packaged, routine.id, index)
        for routine in packaged.routines.values()
        for index, step in enumerate(routine.steps)
    }
    plans |= {entry_id: entry_plan(packaged, entry_id) for entry_id in packaged.entries}
    return {name: (plan, render(plan)) for name, plan in plans.items() if plan is not None}


def exactly(image: Image.Image, panel: Panel, *colours: tuple[int, int, int]) -> Image.Image:
    """A mask of the pixels inside the panel that are exactly one of `colours`."""
    found = Image.new("L", image.size, 0)
    for colour in colours:
        red, green, blue = (
            band.point([255 if value == wanted else 0 for value in range(256)])
            for band, wanted in zip(image.split(), colour, strict=True)
        )
        both = ImageChops.multiply(ImageChops.multiply(red, green), blue)
        found = ImageChops.lighter(found, both)
    in_panel = Image.new("L", image.size, 0)
    in_panel.paste(255, panel.box)
    return ImageChops.multiply(found, in_panel)


def count(mask: Image.Image) -> int:
    return mask.histogram()[255]


def shapes_mask(image: Image.Image, panel: Panel, areas: list[Area], widen: int = 0) -> Image.Image:
    """The areas' shapes in the PNG's pixels, widened by `widen` pixels."""
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    for area in areas:
        outline = [panel.to_pixel(point) for point in area.points]
        draw.polygon(outline, fill=255)
        if widen:
            draw.line([*outline, outline[0]], fill=255, width=2 * widen + 1, joint="curve")
    return mask


def test_every_step_names_its_regions(packaged: KnowledgeBase) -> None:
    for routine in packaged.routines.values():
        for step in routine.steps:
            assert step.regions, f"{routine.id}/{step.id}"
    named = [e for e in packaged.entries.values() if isinstance(e, Muscle | Technique)]
    assert sum(bool(entry.regions) for entry in named) >= 30


def test_everything_that_names_a_region_draws(
    packaged: KnowledgeBase, drawn: dict[str, tuple[Plan, Image.Image]]
) -> None:
    steps = sum(len(routine.steps) for routine in packaged.routines.values())
    entries = [e for e in packaged.entries.values() if getattr(e, "regions", ())]
    assert len(drawn) == steps + len(entries)
    for name, (_, image) in drawn.items():
        assert image.size == (800, 1000) and image.mode == "RGB", name
        png = io.BytesIO()
        image.save(png, format="PNG")
        assert png.tell() < 200_000, name


def test_the_highlight_falls_inside_the_named_regions(
    drawn: dict[str, tuple[Plan, Image.Image]],
) -> None:
    for name, (plan, image) in drawn.items():
        for panel in plan.panels():
            areas = [area for area in plan.areas if area.view == panel.view]
            inside = shapes_mask(image, panel, areas, widen=TOLERANCE)
            highlight = exactly(image, panel, HIGHLIGHT)
            ink = exactly(image, panel, PATTERN_INK)
            assert count(highlight) > 0.3 * count(shapes_mask(image, panel, areas)), name
            assert ImageChops.subtract(ImageChops.lighter(highlight, ink), inside).getbbox() is None
            assert (count(ink) > 0) == (plan.pattern is not None), name


def test_the_spine_is_marked_to_avoid_and_never_highlighted(
    packaged: KnowledgeBase, drawn: dict[str, tuple[Plan, Image.Image]]
) -> None:
    assert packaged.body is not None
    spine = packaged.body.areas["spine"]
    checked = 0
    for name, (plan, image) in drawn.items():
        for panel in plan.panels():
            if panel.view != "back" or spine in plan.areas:
                continue
            spine_mask = shapes_mask(image, panel, [spine])
            worked = exactly(image, panel, HIGHLIGHT, PATTERN_INK)
            assert ImageChops.multiply(worked, spine_mask).getbbox() is None, name
            marked = ImageChops.multiply(exactly(image, panel, AVOID_FILL, AVOID_INK), spine_mask)
            # hatched red over a pale red band wherever the spine is in view
            assert count(marked) >= 0.3 * count(spine_mask), f"{name}: spine not marked to avoid"
            checked += 1
    assert checked > 50


def test_a_one_sided_step_highlights_only_its_side(
    packaged: KnowledgeBase, drawn: dict[str, tuple[Plan, Image.Image]]
) -> None:
    assert packaged.body is not None
    spine_xs = [x for x, _ in packaged.body.areas["spine"].points]
    sides = set()
    for name, (plan, image) in drawn.items():
        if plan.side is None:
            continue
        sides.add(plan.side)
        [panel] = plan.panels()
        assert panel.view == "back", name
        left_edge = panel.to_pixel((min(spine_xs), 0))[0]
        right_edge = panel.to_pixel((max(spine_xs), 0))[0]
        worked = exactly(image, panel, HIGHLIGHT, PATTERN_INK).getbbox()
        assert worked is not None, name
        if plan.side == "left":  # the receiver's left is the viewer's left from behind
            assert worked[2] <= left_edge, name
        else:
            assert worked[0] >= right_edge, name
    assert sides == {"left", "right"}


def test_the_cache_draws_once(
    packaged: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = picture_for_step(packaged, "upper-back", 3, tmp_path)
    assert path is not None and path.parent == tmp_path and path.suffix == ".png"
    written = path.stat().st_mtime_ns
    with Image.open(path) as image:
        assert image.size == (800, 1000)

    def no_drawing(plan: Plan) -> Image.Image:
        raise AssertionError("drawn again")

    monkeypatch.setattr(pictures, "render", no_drawing)
    assert picture_for_step(packaged, "upper-back", 3, tmp_path) == path
    assert path.stat().st_mtime_ns == written
    monkeypatch.undo()

    other = picture_for_step(packaged, "upper-back", 4, tmp_path)
    assert other is not None and other != path
    assert picture_for_entry(packaged, "rhomboids", tmp_path) not in (None, path, other)
    assert picture_for_entry(packaged, "how-long") is None  # an FAQ: no regions
    monkeypatch.setenv("MASSAGE_BOT_PICTURES", str(tmp_path / "env"))
    assert picture_for_step(packaged, "upper-back", 3) == tmp_path / "env" / path.name
    with pytest.raises(KeyError):
        picture_for_step(packaged, "nope", 0)
    with pytest.raises(IndexError):
        picture_for_step(packaged, "upper-back", 99)


def test_draw_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "upper-back"
    assert main(["draw", "routine", "upper-back", "--out", str(out)]) == 0
    names = sorted(path.name for path in out.iterdir())
    assert names[0] == "01-set-up.png" and names[3] == "04-fist-left.png" and len(names) == 11
    assert capsys.readouterr().out.splitlines()[0] == str(out / "01-set-up.png")
    for kind, entry_id in (("muscle", "rhomboids"), ("technique", "fist-rocking")):
        file = tmp_path / f"{entry_id}.png"
        assert main(["draw", kind, entry_id, "--out", str(file)]) == 0
        with Image.open(file) as image:
            assert image.format == "PNG" and image.size == (800, 1000)
    capsys.readouterr()
    for argv in (
        ["draw", "muscle", "nope", "--out", str(tmp_path / "x.png")],
        ["draw", "technique", "rhomboids", "--out", str(tmp_path / "x.png")],
        ["draw", "routine", "nope", "--out", str(tmp_path / "x")],
        ["draw", "technique", "kneading", "--out", str(tmp_path / "x.png")],
    ):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith("massage-bot: ") and error.count("\n") == 1, argv
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x").exists()


async def test_the_console_prints_the_step_picture(
    packaged: KnowledgeBase,
    store: Store,
    asker: FakeAsker,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASSAGE_BOT_PICTURES", str(tmp_path / "pictures"))
    lines: list[str] = []
    console = Console(SessionEngine(packaged, store, asker, clock), lines.append)
    await console.handle("start upper-back")
    await console.handle("next")
    shown = [line.strip().removeprefix("Picture: ") for line in lines if "Picture: " in line]
    assert len(shown) == 2 and shown[0] != shown[1]
    assert all(Path(path).is_file() for path in shown)
    assert Path(shown[1]) == picture_for_step(packaged, "upper-back", 1)
