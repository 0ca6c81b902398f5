"""The body map (``knowledge/body.yaml``): outlines and named regions, as data.

Each view (``back``, ``front``) is a unit square: x and y run from 0 to 1 on the same
scale, y downwards, the figure standing in the middle (x = 0.5 is the midline). Left
and right are always the receiver's: on the back view (seen from behind, or from above
when they lie face down) their left is on the viewer's left; on the front view it is on
the viewer's right. A ``paired`` shape is given once, for the receiver's left side, and
its mirror image (x -> 1 - x) is the right side: a paired region ``rhomboids`` defines
``rhomboids-left`` and ``rhomboids-right``, and naming ``rhomboids`` means both.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

BODY_CONTEXT = "body"  # the validation-context key that holds the loaded BodyMap (or None)
ELLIPSE_POINTS = 72
SMOOTHING_ROUNDS = 3

Side = Literal["left", "right"]
ViewName = Literal["back", "front"]
Point = tuple[float, float]
Coordinate = Annotated[float, Field(ge=0, le=1)]
Radius = Annotated[float, Field(gt=0, le=0.5)]
RegionId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=40)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shape(_Frozen):
    """One of ``ellipse: [cx, cy, rx, ry]``, ``rect: [x0, y0, x1, y1]`` or ``polygon``."""

    ellipse: tuple[Coordinate, Coordinate, Radius, Radius] | None = None
    rect: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = None
    polygon: tuple[tuple[Coordinate, Coordinate], ...] | None = Field(None, min_length=3)
    smooth: bool = False  # round a polygon's corners
    paired: bool = False  # this is the receiver's left side; its mirror image is the right

    @model_validator(mode="after")
    def _one_shape(self) -> Shape:
        given = [name for name in ("ellipse", "rect", "polygon") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of ellipse, rect or polygon")
        if self.rect and not (self.rect[0] < self.rect[2] and self.rect[1] < self.rect[3]):
            raise ValueError("rect is [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        if self.smooth and not self.polygon:
            raise ValueError("only a polygon can be smooth")
        return self

    def points(self) -> tuple[Point, ...]:
        """The outline as a polygon (an ellipse sampled, a smooth polygon rounded)."""
        if self.ellipse:
            cx, cy, rx, ry = self.ellipse
            steps = range(ELLIPSE_POINTS)
            return tuple(
                (cx + rx * math.cos(2 * math.pi * i / ELLIPSE_POINTS),
                 cy + ry * math.sin(2 * math.pi * i / ELLIPSE_POINTS))
                for i in steps
            )
        if self.rect:
            x0, y0, x1, y1 = self.rect
            return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        assert self.polygon is not None
        points = tuple(self.polygon)
        for _ in range(SMOOTHING_ROUNDS if self.smooth else 0):
            points = _chaikin(points)
        return points


def _chaikin(points: tuple[Point, ...]) -> tuple[Point, ...]:
    """One round of Chaikin's corner cutting on a closed polygon."""
    cut: list[Point] = []
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        cut += [(0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1),
                (0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1)]
    return tuple(cut)


def _mirror(points: tuple[Point, ...]) -> tuple[Point, ...]:
    return tuple((1 - x, y) for x, y in points)


def _centroid_x(points: tuple[Point, ...]) -> float:
    return sum(x for x, _ in points) / len(points)


class Region(Shape):
    """A named area of one view."""

    id: RegionId
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=40)]
    landmark: bool = False  # always drawn, faintly, to find one's way (the shoulder blades)
    avoid: bool = False  # always drawn as an area to keep off (the spine)


class View(_Frozen):
    """One view of the body: its outline (shapes drawn as one silhouette) and its regions."""

    outline: tuple[Shape, ...] = Field(min_length=1)
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class Area:
    """One region of one side, ready to draw: its polygon in the view's unit square."""

    id: str
    title: str
    view: ViewName
    side: Side | None
    points: tuple[Point, ...]
    landmark: bool
    avoid: bool


class BodyMap(_Frozen):
    """The whole body map: a back view and a front view."""

    back: View
    front: View

    @model_validator(mode="after")
    def _check_regions(self) -> BodyMap:
        seen: set[str] = set()
        for view_name, view in (("back", self.back), ("front", self.front)):
            for region in view.regions:
                names = [region.id]
                if region.paired:
                    names += [f"{region.id}-left", f"{region.id}-right"]
                    left_of_midline = _centroid_x(region.points()) < 0.5
                    if left_of_midline != (view_name == "back"):
                        viewer = "left" if view_name == "back" else "right"
                        raise ValueError(
                            f"region {region.id!r}: a paired shape is the receiver's left side,"
                            f" on the viewer's {viewer} (x {'<' if viewer == 'left' else '>'} 0.5)"
                            f" in the {view_name} view"
                        )
                for name in names:
                    if name in seen:
                        raise ValueError(f"region name {name!r} is used twice")
                    seen.add(name)
        return self

    def view(self, name: ViewName) -> View:
        return self.back if name == "back" else self.front

    @cached_property
    def areas(self) -> dict[str, Area]:
        """Every region of every side, by id (``rhomboids-left``, ``spine`` ...)."""
        found: dict[str, Area] = {}
        for view_name in ("back", "front"):
            for region in self.view(view_name).regions:
                points = region.points()
                sides: tuple[tuple[str, Side | None, tuple[Point, ...]], ...] = (
                    ((f"{region.id}-left", "left", points),
                     (f"{region.id}-right", "right", _mirror(points)))
                    if region.paired
                    else ((region.id, None, points),)
                )
                for area_id, side, area_points in sides:
                    found[area_id] = Area(
                        area_id, region.title, view_name, side, area_points, region.landmark,
                        region.avoid,
                    )
        return found

    @cached_property
    def pairs(self) -> dict[str, tuple[str, str]]:
        """A paired region's own name -> its left and right area ids."""
        return {
            region.id: (f"{region.id}-left", f"{region.id}-right")
            for view_name in ("back", "front")
            for region in self.view(view_name).regions
            if region.paired
        }

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the whole map, for caches of what is drawn from it."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def resolve(self, name: str) -> tuple[Area, ...]:
        """The areas a region name means: one area, both sides of a pair, or none."""
        if name in self.pairs:
            return tuple(self.areas[area_id] for area_id in self.pairs[name])
        return (self.areas[name],) if name in self.areas else ()

    def outline(self, view: ViewName) -> tuple[tuple[Point, ...], ...]:
        """The polygons of a view's silhouette, paired shapes mirrored."""
        polygons: list[tuple[Point, ...]] = []
        for shape in self.view(view).outline:
            points = shape.points()
            polygons += [points, _mirror(points)] if shape.paired else [points]
        return tuple(polygons)


def _known_region(name: str, info: ValidationInfo) -> str:
    """Check a region name against the body map in the validation context, if any."""
    if not info.context or BODY_CONTEXT not in info.context:
        return name
    body: BodyMap | None = info.context[BODY_CONTEXT]
    if body is None:
        raise ValueError(f"unknown region {name!r}: there is no body.yaml")
    if not body.resolve(name):
        close = get_close_matches(name, [*body.areas, *body.pairs], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown region {name!r}{hint}")
    return name


RegionName = Annotated[RegionId, AfterValidator(_known_region)]


def regions_off_side(regions: tuple[str, ...], side: Side, info: ValidationInfo) -> list[str]:
    """The regions (of the body map in the validation context) that reach the other side."""
    body: BodyMap | None = (info.context or {}).get(BODY_CONTEXT)
    if body is None:
        return []
    return [
        name for name in regions
        if any(area.side not in (None, side) for area in body.resolve(name))
    ]
