"""Pictures of where to press: a routine step's or an entry's regions on the body map.

`picture_for_step` and `picture_for_entry` return the path of a PNG (or None when the
step or entry names no region). A picture is drawn once: its file is named by a hash of
everything drawn (captions, regions, pattern, side, the body map and this module's own
source), in ``$MASSAGE_BOT_PICTURES`` or ``data/pictures/``. Drawing one takes about
50 ms; an asyncio caller should run it in a thread (`asyncio.to_thread`).

The picture: a caption at the top; below it the body seen from the back or the front,
cropped around the regions, with the regions to work filled in `HIGHLIGHT`, the stroke
pattern drawn over them, the areas to avoid (the spine) hatched in red, the receiver's
left and right marked; a legend at the bottom. Opaque and dark on light, so it reads the
same in Discord's dark and light themes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import PIL
from PIL import Image, ImageChops, ImageDraw, ImageFont

from bot.body import Area, BodyMap, Point, Side, ViewName
from bot.knowledge import KnowledgeBase, Muscle, Technique

Pattern = Literal["lines", "zigzag", "circles", "rub"]
Box = tuple[int, int, int, int]

PICTURES_VARIABLE = "MASSAGE_BOT_PICTURES"
DEFAULT_PICTURES_DIR = Path("data/pictures")
SOURCE_FINGERPRINT = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

WIDTH, HEIGHT = 800, 1000  # the PNG, in pixels
SS = 2  # drawn this many times larger, then reduced: smooth edges
MARGIN = 28
TITLE_SIZES = (40, 34, 30)  # the largest that fits the title on two lines
SUBTITLE_SIZE = 22
LEGEND_SIZE = 22
LEGEND_LINE = 30
LEGEND_GAP = 8
MIN_SPAN = 0.36  # the smallest piece of a view a panel shows (0.36 = head to waist)
LANE = 24  # pixels between pattern lines
SNAP_DEGREES = 12  # pattern lines this close to upright or level are drawn so
STROKE = 3

BACKGROUND = (251, 248, 243)
PANEL = (238, 232, 224)
SKIN = (246, 224, 203)
OUTLINE = (112, 86, 70)
LANDMARK = (190, 156, 130)
HIGHLIGHT = (120, 212, 186)
HIGHLIGHT_EDGE = (38, 150, 124)
PATTERN_INK = (14, 84, 74)
AVOID_FILL = (250, 210, 210)
AVOID_INK = (206, 38, 52)
TEXT = (32, 34, 40)
TEXT_SOFT = (92, 96, 104)
WHITE = (255, 255, 255)

HOW = {
    "lines": "press along lines, a section at a time",
    "zigzag": "zigzags along the lines",
    "circles": "small circles along the lines",
    "rub": "rub in slow circles over the area",
}
VIEW_LABELS = {
    "back": "BACK VIEW: their left is on the left",
    "front": "FRONT VIEW: their left is on the right",
}


@dataclass(frozen=True)
class Panel:
    """Where one view is drawn: `box` in the PNG's pixels shows `crop` of the view."""

    view: ViewName
    box: Box
    crop: tuple[float, float, float, float]  # x0, y0, x1, y1 in the view's unit square

    @property
    def scale(self) -> float:
        return (self.box[2] - self.box[0]) / (self.crop[2] - self.crop[0])

    def to_pixel(self, point: Point) -> tuple[float, float]:
        """A view point in the PNG's pixels."""
        return (
            self.box[0] + (point[0] - self.crop[0]) * self.scale,
            self.box[1] + (point[1] - self.crop[1]) * self.scale,
        )

    def local(self, points: Iterable[Point]) -> list[tuple[float, float]]:
        """View points in the panel's own pixels, at the drawing's size (`SS` times)."""
        return [
            ((x - self.crop[0]) * self.scale * SS, (y - self.crop[1]) * self.scale * SS)
            for x, y in points
        ]


@dataclass(frozen=True)
class Plan:
    """Everything one picture shows."""

    title: str
    subtitle: str
    areas: tuple[Area, ...]  # the regions to work
    pattern: Pattern | None
    side: Side | None
    body: BodyMap

    @property
    def fingerprint(self) -> str:
        """A hash of everything drawn: the cached file's name."""
        drawn = {
            "title": self.title,
            "subtitle": self.subtitle,
            "areas": [area.id for area in self.areas],
            "pattern": self.pattern,
            "side": self.side,
            "body": self.body.fingerprint,
            "source": SOURCE_FINGERPRINT,
            "pillow": PIL.__version__,
        }
        return hashlib.sha256(json.dumps(drawn, sort_keys=True).encode()).hexdigest()

    @property
    def views(self) -> tuple[ViewName, ...]:
        return tuple(v for v in ("back", "front") if any(a.view == v for a in self.areas))

    def caption(self) -> tuple[int, list[str]]:
        """The title's font size and lines."""
        for size in TITLE_SIZES:
            lines = _wrap(self.title, _font(size), (WIDTH - 2 * MARGIN) * SS)
            if len(lines) <= 2:
                break
        return size, lines[:2]

    def legend(self) -> list[tuple[str, list[str]]]:
        """The legend's rows: a swatch kind and its lines of text. Areas to avoid that
        the panels may show get a row each; `render` leaves out those they do not."""
        rows = [("work", f"Work here: {_names(self.areas)}")]
        if self.pattern:
            rows.append((self.pattern, f"How: {HOW[self.pattern]}"))
        rows += [
            (f"avoid:{area.id}", f"Keep off: {area.title.lower()}")
            for area in self.body.areas.values()
            if area.avoid and area.view in self.views and area not in self.areas
        ]
        width = (WIDTH - 2 * MARGIN - 46) * SS
        return [(kind, _wrap(text, _font(LEGEND_SIZE), width)[:2]) for kind, text in rows]

    def panels(self) -> tuple[Panel, ...]:
        """One panel per view that has a region to work, side by side."""
        views = self.views
        gap = 16
        width = (WIDTH - 2 * MARGIN - gap * (len(views) - 1)) // len(views)
        size, lines = self.caption()
        top = 18 + len(lines) * int(size * 1.2) + SUBTITLE_SIZE + 22
        rows = self.legend()
        legend = sum(len(lines) * LEGEND_LINE + LEGEND_GAP for _, lines in rows)
        bottom = HEIGHT - 14 - legend - 10
        panels = []
        for number, view in enumerate(views):
            left = MARGIN + number * (width + gap)
            box = (left, top, left + width, bottom)
            points = [p for a in self.areas if a.view == view for p in a.points]
            panels.append(Panel(view, box, _crop(points, width / (bottom - top))))
        return tuple(panels)


def _crop(points: list[Point], aspect: float) -> tuple[float, float, float, float]:
    """The piece of a view around `points`, centred on the midline, `aspect` wide/high."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    pad = 0.05 + 0.2 * max(max(xs) - min(xs), max(ys) - min(ys))
    half_width = max(abs(min(xs) - 0.5), abs(max(xs) - 0.5)) + pad
    height = max(max(ys) - min(ys) + 2 * pad, MIN_SPAN, 2 * half_width / aspect)
    width = height * aspect
    top = (min(ys) + max(ys) - height) / 2
    top = min(max(top, 0.0), 1.0 - height) if height <= 1 else (1.0 - height) / 2
    return (0.5 - width / 2, top, 0.5 + width / 2, top + height)


# ------------------------------------------------------------------ planning


def step_plan(kb: KnowledgeBase, routine_id: str, step_index: int) -> Plan | None:
    """What the picture of a routine step shows; None when it names no region.

    Raises KeyError for an unknown routine and IndexError for a step it does not have.
    """
    routine = kb.routines[routine_id]
    if not 0 <= step_index < len(routine.steps):
        raise IndexError(f"{routine_id} has steps 1 to {len(routine.steps)}")
    step = routine.steps[step_index]
    if kb.body is None or not step.regions:
        return None
    side = f" · their {step.side} side" if step.side else ""
    return Plan(
        title=step.title,
        subtitle=f"{routine.title} · step {step_index + 1} of {len(routine.steps)}{side}",
        areas=_areas(kb.body, step.regions),
        pattern=step.pattern,
        side=step.side,
        body=kb.body,
    )


def entry_plan(kb: KnowledgeBase, entry_id: str) -> Plan | None:
    """What the picture of a muscle or technique shows; None when it names no region.

    Raises KeyError for an unknown entry.
    """
    entry = kb.entries[entry_id]
    if kb.body is None or not isinstance(entry, Muscle | Technique) or not entry.regions:
        return None
    what = "Muscle: where it is" if isinstance(entry, Muscle) else "Technique: where to use it"
    return Plan(entry.title, what, _areas(kb.body, entry.regions), None, None, kb.body)


def _areas(body: BodyMap, names: Iterable[str]) -> tuple[Area, ...]:
    found = {area.id: area for name in names for area in body.resolve(name)}
    return tuple(found.values())


# ------------------------------------------------------------------- drawing


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size * SS)


def render(plan: Plan) -> Image.Image:
    """The picture, `WIDTH` x `HEIGHT`, RGB."""
    image = Image.new("RGB", (WIDTH * SS, HEIGHT * SS), BACKGROUND)
    draw = ImageDraw.Draw(image)
    size, lines = plan.caption()
    y = 18 * SS
    for line in lines:
        draw.text((MARGIN * SS, y), line, font=_font(size), fill=TEXT)
        y += int(size * 1.2) * SS
    subtitle = _wrap(plan.subtitle, _font(SUBTITLE_SIZE), (WIDTH - 2 * MARGIN) * SS)[0]
    draw.text((MARGIN * SS, y + 2 * SS), subtitle, font=_font(SUBTITLE_SIZE), fill=TEXT_SOFT)
    panels = plan.panels()
    shown = {f"avoid:{area.id}" for panel in panels for area in _draw_panel(image, panel, plan)}
    y = (panels[0].box[3] + 12) * SS
    for kind, lines in plan.legend():
        if kind.startswith("avoid:") and kind not in shown:
            continue
        _swatch(draw, (MARGIN * SS, y, (MARGIN + 32) * SS, y + 32 * SS), kind)
        for line in lines:
            draw.text(((MARGIN + 46) * SS, y + 3 * SS), line, font=_font(LEGEND_SIZE), fill=TEXT)
            y += LEGEND_LINE * SS
        y += LEGEND_GAP * SS
    return image.reduce(SS)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _mask(size: tuple[int, int], polygons: Iterable[list[tuple[float, float]]]) -> Image.Image:
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for polygon in polygons:
        draw.polygon(polygon, fill=255)
    return mask


def _paint(canvas: Image.Image, colour: tuple[int, int, int], mask: Image.Image) -> None:
    """Fill `mask`'s pixels with `colour` (only within its bounding box: much faster)."""
    box = mask.getbbox()
    if box:
        canvas.paste(colour, box, mask.crop(box))


def _draw_panel(image: Image.Image, panel: Panel, plan: Plan) -> list[Area]:
    """Draw one view into its box; return the areas to avoid that it shows."""
    left, top, right, bottom = (value * SS for value in panel.box)
    size = (right - left, bottom - top)
    canvas = Image.new("RGB", size, PANEL)
    draw = ImageDraw.Draw(canvas)

    silhouette = [panel.local(polygon) for polygon in plan.body.outline(panel.view)]
    for polygon in silhouette:  # each part's edge, then every fill over the inner edges
        draw.line([*polygon, polygon[0]], fill=OUTLINE, width=2 * STROKE * SS)
    body = _mask(size, silhouette)
    _paint(canvas, SKIN, body)

    view_areas = [a for a in plan.body.areas.values() if a.view == panel.view]
    worked = [area for area in plan.areas if area.view == panel.view]
    avoid = [area for area in view_areas if area.avoid and area not in worked]
    avoid_mask = _mask(size, (panel.local(area.points) for area in avoid))
    shapes = [panel.local(area.points) for area in worked]
    highlight = ImageChops.subtract(ImageChops.multiply(_mask(size, shapes), body), avoid_mask)
    edges = Image.new("L", size, 0)
    for polygon in shapes:
        ImageDraw.Draw(edges).line([*polygon, polygon[0]], fill=255, width=3 * SS)
    _paint(canvas, HIGHLIGHT_EDGE, ImageChops.multiply(edges, body))
    _paint(canvas, HIGHLIGHT, highlight)
    for area in view_areas:  # over the highlight: a shoulder blade shows through
        if area.landmark and not area.avoid and area not in worked:
            outline = panel.local(area.points)
            draw.line([*outline, outline[0]], fill=LANDMARK, width=STROKE * SS)
    if plan.pattern:
        strokes = Image.new("L", size, 0)
        for area in worked:
            _pattern(ImageDraw.Draw(strokes), panel.local(area.points), plan.pattern, LANE * SS)
        _paint(canvas, PATTERN_INK, ImageChops.multiply(strokes, highlight))

    shown = [area for area in avoid if _visible(area, panel)]
    for area in shown:
        _avoid(canvas, panel.local(area.points), area.title)
    _sides(draw, panel.view, plan.side, size)
    label = VIEW_LABELS[panel.view]
    label_box = (10 * SS, 10 * SS, 26 * SS + int(_font(18).getlength(label)), 40 * SS)
    draw.rounded_rectangle(label_box, radius=15 * SS, fill=BACKGROUND)
    draw.text((18 * SS, 25 * SS), label, font=_font(18), fill=TEXT_SOFT, anchor="lm")

    rounded = Image.new("L", size, 0)
    ImageDraw.Draw(rounded).rounded_rectangle((0, 0, *size), radius=18 * SS, fill=255)
    image.paste(canvas, (left, top), mask=rounded)
    return shown


def _visible(area: Area, panel: Panel) -> bool:
    """Whether the area's bounding box meets the panel's piece of the view."""
    xs, ys = [x for x, _ in area.points], [y for _, y in area.points]
    x0, y0, x1, y1 = panel.crop
    return min(xs) < x1 and max(xs) > x0 and min(ys) < y1 and max(ys) > y0


def _avoid(canvas: Image.Image, polygon: list[tuple[float, float]], title: str) -> None:
    """A red, hatched area with its name along it when it fits: keep off."""
    size = canvas.size
    mask = _mask(size, [polygon])
    _paint(canvas, AVOID_FILL, mask)
    hatch = Image.new("L", size, 0)
    hatch_draw = ImageDraw.Draw(hatch)
    step = 12 * SS
    for offset in range(-size[1], size[0], step):
        hatch_draw.line((offset, 0, offset + size[1], size[1]), fill=255, width=2 * SS)
    _paint(canvas, AVOID_INK, ImageChops.multiply(hatch, mask))
    draw = ImageDraw.Draw(canvas)
    draw.line([*polygon, polygon[0]], fill=AVOID_INK, width=2 * SS)

    xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
    label = f"AVOID {title.upper()}"
    font = _font(17)
    length, height = font.getlength(label) + 16 * SS, 26 * SS
    top, bottom = max(min(ys), 0), min(max(ys), size[1])
    if bottom - top < length + 40 * SS or max(xs) - min(xs) > height * 2:
        return
    tag = Image.new("RGB", (int(length), height), AVOID_INK)
    ImageDraw.Draw(tag).text((8 * SS, 3 * SS), label, font=font, fill=WHITE)
    tag = tag.rotate(90, expand=True)
    y = int(top + (bottom - top - length) * 0.85)
    canvas.paste(tag, (int((min(xs) + max(xs) - tag.width) / 2), y))


def _sides(
    draw: ImageDraw.ImageDraw, view: ViewName, side: Side | None, size: tuple[int, int]
) -> None:
    """The receiver's L and R at the panel's edges; the side worked stands out."""
    letters = ("L", "R") if view == "back" else ("R", "L")
    radius = 20 * SS
    y = size[1] // 2
    for letter, x in zip(letters, (14 * SS + radius, size[0] - 14 * SS - radius), strict=True):
        worked = side is not None and letter == side[0].upper()
        fill, ink = (TEXT, WHITE) if worked else (PANEL, TEXT_SOFT)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill,
                     outline=TEXT if worked else TEXT_SOFT, width=2 * SS)
        draw.text((x, y), letter, font=_font(22), fill=ink, anchor="mm")
        if worked:
            word = "LEFT" if letter == "L" else "RIGHT"
            left, top, right, bottom = draw.textbbox(
                (x, y + radius + 8 * SS), word, font=_font(18), anchor="mt"
            )
            draw.rounded_rectangle((left - 6 * SS, top - 4 * SS, right + 6 * SS, bottom + 4 * SS),
                                   radius=6 * SS, fill=BACKGROUND)
            draw.text((x, y + radius + 8 * SS), word, font=_font(18), fill=TEXT, anchor="mt")


# ------------------------------------------------------------------ patterns


def _axes(polygon: list[tuple[float, float]]) -> tuple[Point, Point, Point]:
    """The polygon's centroid and the unit vectors along and across its longest extent."""
    area = cx = cy = xx = yy = xy = 0.0
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        area += cross / 2
        cx += (x0 + x1) * cross / 6
        cy += (y0 + y1) * cross / 6
        xx += (x0 * x0 + x0 * x1 + x1 * x1) * cross / 12
        yy += (y0 * y0 + y0 * y1 + y1 * y1) * cross / 12
        xy += (x0 * y1 + 2 * x0 * y0 + 2 * x1 * y1 + x1 * y0) * cross / 24
    cx, cy = cx / area, cy / area
    xx, yy, xy = xx / area - cx * cx, yy / area - cy * cy, xy / area - cx * cy
    angle = 0.5 * math.atan2(2 * xy, xx - yy)
    square = round(angle / (math.pi / 2)) * math.pi / 2
    if abs(angle - square) < math.radians(SNAP_DEGREES):
        angle = square
    along = (math.cos(angle), math.sin(angle))
    return (cx, cy), along, (-along[1], along[0])


def _pattern(
    draw: ImageDraw.ImageDraw, polygon: list[tuple[float, float]], pattern: Pattern, lane: float
) -> None:
    """Draw the stroke pattern over one area, in lanes about `lane` apart that run along
    its longest extent and follow its shape."""
    lane *= {"lines": 1.0, "zigzag": 1.0, "circles": 1.3, "rub": 1.8}[pattern]
    lanes, spacing = _lanes(polygon, lane)
    width = STROKE * SS
    for path in lanes:
        length = _length(path)
        if pattern == "lines":
            draw.line(path, fill=255, width=width)
            for x, y in (path[0], path[-1]):
                draw.ellipse((x - width, y - width, x + width, y + width), fill=255)
        elif pattern == "zigzag":
            amplitude = spacing * 0.3
            steps = max(2, round(length / (amplitude * 1.6)))
            draw.line(
                [_along(path, length * i / steps, amplitude * (1 if i % 2 else -1))
                 for i in range(steps + 1)],
                fill=255, width=width, joint="curve",
            )
        elif pattern == "circles":
            radius = spacing * 0.28
            rings = max(1, round(length / (radius * 2.6)))
            for i in range(rings):
                x, y = _along(path, length * (i + 0.5) / rings)
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=255,
                             width=width)
        else:  # rub: loops that overlap as they travel, like a hand rubbing round
            radius = min(spacing * 0.45, length / 2)
            travel = max(length - 2 * radius, 0.0)
            turns = max(1.5, travel / (radius * 0.9))
            draw.line(
                [_along(path, radius + travel * t / 200 - radius * math.cos(angle),
                        radius * math.sin(angle))
                 for t, angle in ((t, 2 * math.pi * turns * t / 200) for t in range(201))],
                fill=255, width=width,
            )


def _lanes(
    polygon: list[tuple[float, float]], lane: float
) -> tuple[list[list[tuple[float, float]]], float]:
    """Paths through the polygon along its longest extent, each at a fixed share of its
    local thickness (so they bend with a curved area), and the distance between them.
    The paths keep to the stretch where the area is near its usual thickness."""
    (cx, cy), (ux, uy), (vx, vy) = _axes(polygon)
    across = [((x - cx) * vx + (y - cy) * vy, (x - cx) * ux + (y - cy) * uy) for x, y in polygon]
    u0, u1 = min(u for _, u in across), max(u for _, u in across)
    spans = [(u, _span(across, u)) for u in (u0 + (u1 - u0) * (i + 0.5) / 48 for i in range(48))]
    thickness = sorted(span[1] - span[0] for _, span in spans if span)
    if not thickness:
        return [], lane
    typical = thickness[len(thickness) // 2]
    runs: list[list[tuple[float, float, float]]] = [[]]
    for u, span in spans:
        if span and span[1] - span[0] >= 0.8 * typical:
            runs[-1].append((u, *span))
        elif runs[-1]:
            runs.append([])
    run = max(runs, key=len)
    smooth = [  # each edge averaged over its neighbours: no kinks from the polygon's corners
        (u, *(sum(edge) / len(edge) for edge in zip(*(s[1:] for s in run[max(0, i - 3):i + 4]),
                                                     strict=True)))
        for i, (u, _, _) in enumerate(run)
    ]
    count = max(1, min(4, round(typical / lane)))
    lanes = [
        [(cx + u * ux + v * vx, cy + u * uy + v * vy)
         for u, lo, hi in smooth
         for v in [lo + (hi - lo) * (number + 0.5) / count]]
        for number in range(count)
    ]
    return [path for path in lanes if len(path) > 1], typical / count


def _length(path: list[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(path))


def _along(path: list[tuple[float, float]], at: float, aside: float = 0.0) -> tuple[float, float]:
    """The point `at` along the path, moved `aside` to its left (negative: to its right)."""
    segments = list(itertools.pairwise(path))
    for number, ((x0, y0), (x1, y1)) in enumerate(segments):
        step = math.dist((x0, y0), (x1, y1))
        if at <= step or number == len(segments) - 1:
            share = at / step if step else 0.0
            nx, ny = ((y0 - y1) / step, (x1 - x0) / step) if step else (0.0, 0.0)
            return (x0 + (x1 - x0) * share + nx * aside, y0 + (y1 - y0) * share + ny * aside)
        at -= step
    return path[-1]


def _span(local: list[Point], v: float) -> tuple[float, float] | None:
    """Where the line at second coordinate `v` crosses the polygon: the first and last
    of the first coordinate."""
    crossings = [
        u0 + (u1 - u0) * (v - w0) / (w1 - w0)
        for (u0, w0), (u1, w1) in zip(local, local[1:] + local[:1], strict=True)
        if (w0 <= v < w1) or (w1 <= v < w0)
    ]
    return (min(crossings), max(crossings)) if len(crossings) >= 2 else None


# -------------------------------------------------------------------- legend


def _swatch(draw: ImageDraw.ImageDraw, box: Box, kind: str) -> None:
    x0, y0, x1, y1 = box
    if kind.startswith("avoid:"):
        draw.rectangle(box, fill=AVOID_FILL)
        for offset in range(x0 - (y1 - y0), x1, 12 * SS):
            line = [(max(offset, x0), y0 + max(x0 - offset, 0)),
                    (min(offset + y1 - y0, x1), y1 - max(offset + y1 - y0 - x1, 0))]
            draw.line(line, fill=AVOID_INK, width=2 * SS)
        draw.rectangle(box, outline=AVOID_INK, width=2 * SS)
        return
    draw.rounded_rectangle(box, radius=6 * SS, fill=HIGHLIGHT, outline=HIGHLIGHT_EDGE, width=SS)
    if kind == "work":
        return
    inner = [(x0 + 4 * SS, y0 + 3 * SS), (x1 - 4 * SS, y0 + 3 * SS),
             (x1 - 4 * SS, y1 - 3 * SS), (x0 + 4 * SS, y1 - 3 * SS)]
    icon = Image.new("L", (x1, y1), 0)
    _pattern(ImageDraw.Draw(icon), inner, kind, 12 * SS)  # type: ignore[arg-type]
    draw.bitmap((0, 0), icon, fill=PATTERN_INK)


def _names(areas: tuple[Area, ...]) -> str:
    """Region titles with their sides, a pair said once: "Rhomboids (both sides)"."""
    sides: dict[str, list[Side | None]] = {}
    for area in areas:
        sides.setdefault(area.title, []).append(area.side)
    names = []
    for title, found in sides.items():
        if set(found) == {"left", "right"}:
            names.append(f"{title} (both sides)")
        else:
            names += [f"{title} ({side})" if side else title for side in found]
    return ", ".join(names)


# --------------------------------------------------------------------- files


def pictures_dir() -> Path:
    """``$MASSAGE_BOT_PICTURES`` if set, else ``data/pictures``."""
    return Path(os.environ.get(PICTURES_VARIABLE) or DEFAULT_PICTURES_DIR)


def write_png(plan: Plan, path: Path) -> Path:
    """Draw the picture into `path` (written whole or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
        try:
            render(plan).save(file, format="PNG")
            os.chmod(file.name, 0o644)
        except BaseException:
            os.unlink(file.name)
            raise
    os.replace(file.name, path)
    return path


def cached_png(plan: Plan, directory: Path | None = None) -> Path:
    """The picture's file in the cache, drawn only if it is not there yet."""
    path = (directory or pictures_dir()) / f"{plan.fingerprint[:24]}.png"
    return path if path.is_file() else write_png(plan, path)


def picture_for_step(
    kb: KnowledgeBase, routine_id: str, step_index: int, directory: Path | None = None
) -> Path | None:
    """The PNG for a routine's step (0-based), or None when the step names no region."""
    plan = step_plan(kb, routine_id, step_index)
    return cached_png(plan, directory) if plan else None


def picture_for_entry(
    kb: KnowledgeBase, entry_id: str, directory: Path | None = None
) -> Path | None:
    """The PNG for a muscle or technique, or None when it names no region (or is neither)."""
    plan = entry_plan(kb, entry_id)
    return cached_png(plan, directory) if plan else None
