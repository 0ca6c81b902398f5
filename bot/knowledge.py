"""Load and validate the YAML knowledge base into one immutable `KnowledgeBase`.

Every problem is reported as ``FILE:LINE: what is wrong``; nothing here raises a
bare traceback at the user. File kinds are decided by name: ``techniques.yaml``,
``muscles.yaml``, ``safety.yaml``, ``faq.yaml``, ``synonyms.yaml`` and one routine
per file under ``routines/``, and the body map ``body.yaml`` (see `bot.body`), whose
region names the other files' ``regions`` are checked against.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.body import BODY_CONTEXT, BodyMap, RegionName, Side, regions_off_side

MAX_ANSWER_CHARS = 1200
MAX_FILE_BYTES = 2_000_000
MIN_QUESTIONS = 4
ROUTINE_MIN_SECONDS = 10 * 60
ROUTINE_MAX_SECONDS = 20 * 60

EntryId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=60)]
Phrasing = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80)]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=10, max_length=MAX_ANSWER_CHARS)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Entry(_Frozen):
    """Fields every answerable entry shares."""

    id: EntryId
    title: Title
    questions: tuple[Phrasing, ...] = Field(min_length=MIN_QUESTIONS)
    related: tuple[EntryId, ...] = ()
    source: str | None = None

    @property
    def text(self) -> str:
        """The reply a user reads for this entry."""
        raise NotImplementedError


class _AnsweredEntry(_Entry):
    answer: Text

    @property
    def text(self) -> str:
        return self.answer


class Technique(_AnsweredEntry):
    """A way of using the hands (or forearm, fist ...) on the body."""

    kind: Literal["technique"] = "technique"
    regions: tuple[RegionName, ...] = ()


class Faq(_AnsweredEntry):
    """A frequent question about massage at home."""

    kind: Literal["faq"] = "faq"


class Safety(_AnsweredEntry):
    """A safety note. Red flags carry trigger words and are checked before matching.

    A trigger is words that stand close together ("sharp pain"), or such parts joined
    by " ... " that must all come up in the message ("diabetic ... numb feet").
    `unless` holds words that, in the trigger's sentence, say it is not a red flag
    after all ("years ago" for a surgery).
    """

    kind: Literal["safety"] = "safety"
    red_flag: bool = False
    triggers: tuple[Phrasing, ...] = ()
    unless: tuple[Phrasing, ...] = ()

    @model_validator(mode="after")
    def _red_flags_have_triggers(self) -> Safety:
        if self.red_flag and not self.triggers:
            raise ValueError("a red flag needs at least one trigger")
        if self.unless and not self.red_flag:
            raise ValueError("only a red flag has `unless` words")
        return self


class Muscle(_Entry):
    """A muscle: its names, where it is, and how to work it."""

    kind: Literal["muscle"] = "muscle"
    aliases: tuple[Phrasing, ...] = ()
    where: Text
    how: Text
    regions: tuple[RegionName, ...] = ()

    @model_validator(mode="after")
    def _fits_one_message(self) -> Muscle:
        if len(self.text) > MAX_ANSWER_CHARS:
            raise ValueError(
                f"where + how is {len(self.text)} characters, at most {MAX_ANSWER_CHARS}"
            )
        return self

    @property
    def text(self) -> str:
        return f"{self.where}\n\n{self.how}"


class Step(_Frozen):
    """One step of a routine: what the giver does, for how long, and pressure advice."""

    id: EntryId
    title: Title
    text: Text
    seconds: int = Field(ge=10, le=600)
    side: Literal["left", "right"] | None = None
    more_pressure: Text
    less_pressure: Text
    regions: tuple[RegionName, ...] = ()
    pattern: Literal["lines", "zigzag", "circles", "rub"] | None = None

    @field_validator("regions")
    @classmethod
    def _regions_on_its_side(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        side: Side | None = info.data.get("side")
        elsewhere = regions_off_side(names, side, info) if side else []
        if elsewhere:
            raise ValueError(f"a {side}-side step names {', '.join(map(repr, elsewhere))}")
        return names

    @model_validator(mode="after")
    def _pattern_has_regions(self) -> Step:
        if self.pattern and not self.regions:
            raise ValueError("a pattern is drawn over regions: name them")
        return self


class Routine(_Entry):
    """A guided routine of 10 to 20 minutes."""

    kind: Literal["routine"] = "routine"
    summary: Text
    next_time: Text
    steps: tuple[Step, ...] = Field(min_length=3)

    @model_validator(mode="after")
    def _check_steps(self) -> Routine:
        total = sum(step.seconds for step in self.steps)
        if not ROUTINE_MIN_SECONDS <= total <= ROUTINE_MAX_SECONDS:
            raise ValueError(f"steps last {total} s; a routine lasts 600 to 1200 s")
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    @property
    def text(self) -> str:
        return self.summary

    @property
    def seconds(self) -> int:
        return sum(step.seconds for step in self.steps)


Entry = Technique | Faq | Safety | Muscle | Routine
Synonyms = dict[Phrasing, Annotated[list[Phrasing], Field(min_length=1)]]

ENTRY_FILES: dict[str, type[_Entry]] = {
    "techniques.yaml": Technique,
    "muscles.yaml": Muscle,
    "safety.yaml": Safety,
    "faq.yaml": Faq,
}
SYNONYMS_FILE = "synonyms.yaml"
BODY_FILE = "body.yaml"
ROUTINES_DIR = "routines"


@dataclass(frozen=True)
class KnowledgeBase:
    """The whole validated knowledge base. Build a new one to change it."""

    entries: Mapping[str, Entry]
    routines: Mapping[str, Routine]
    synonyms: Mapping[str, str]  # variant -> canonical words
    source_dir: Path
    red_flags: tuple[Safety, ...] = field(default=())
    body: BodyMap | None = None

    def entry(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def of_kind(self, kind: str) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.kind == kind]


@dataclass(frozen=True)
class KnowledgeProblem:
    """One problem in a knowledge file, pointing at its line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base did not validate; `problems` says where and why."""

    def __init__(self, problems: list[KnowledgeProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def _open_without_blocking(path: str, flags: int) -> int:
    """Open for reading without waiting on a pipe that has no writer."""
    return os.open(path, flags | os.O_NONBLOCK)


def default_knowledge_dir() -> Path:
    """The knowledge base shipped inside the installed package."""
    return Path(str(files("knowledge")))


class _PlainLoader(getattr(yaml, "CBaseLoader", yaml.BaseLoader)):  # type: ignore[misc]
    """Reads every scalar as plain text (the models turn "150" into a number where one
    is expected), so no date, huge number or tag can fail while loading; refuses a key
    that is not plain text or is repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text, not a list or a mapping",
                    key_node.start_mark,
                )  # fmt: skip
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _line_of(node: yaml.Node | None, loc: Iterable[int | str]) -> int:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    if node is None:
        return 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


class _Loader:
    """Reads one knowledge directory, collecting every problem before failing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problems: list[KnowledgeProblem] = []
        self.invalid_ids: set[str] = set()  # entries already reported, so not "unknown" again
        self.unreadable = False  # a file that could not be parsed may hold any id
        self.context: dict[str, Any] = {}  # for validators: the body map, once loaded

    def problem(self, path: Path, line: int, message: str) -> None:
        self.problems.append(KnowledgeProblem(str(path), line, message))

    def read(self, path: Path) -> tuple[Any, yaml.Node | None]:
        """The file's data and YAML node tree, or (None, None) with its problem noted."""
        text = self.text_of(path)
        if text is None:
            self.unreadable = True
            return None, None
        try:
            loader = _PlainLoader(text)
            try:
                node = loader.get_single_node()
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            reason = getattr(error, "problem", None) or str(error)
            self.problem(path, line, f"invalid YAML: {reason}")
            self.unreadable = True
            return None, None
        except RecursionError:
            self.problem(path, 1, "invalid YAML: nested too deeply")
            self.unreadable = True
            return None, None
        return data, node

    def text_of(self, path: Path) -> str | None:
        """A regular file's text, at most `MAX_FILE_BYTES` (not a pipe, a device, or a
        link to one: reading those could hang or never end)."""
        try:
            with open(path, "rb", opener=_open_without_blocking) as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    self.problem(path, 1, "not a regular file (a pipe, a device or a link to one)")
                    return None
                data = file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            self.problem(path, 1, f"cannot read the file: {error.strerror or error}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.problem(path, 1, f"larger than {MAX_FILE_BYTES // 1_000_000} MB; split it up")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            self.problem(path, line, "not UTF-8 text")
            return None

    def validation(self, path: Path, node: yaml.Node | None, prefix: tuple, error: ValidationError):
        for detail in error.errors():
            loc = prefix + tuple(detail["loc"])
            fields = ".".join(str(part) for part in detail["loc"] if isinstance(part, str))
            message = detail["msg"].removeprefix("Value error, ")
            self.problem(path, _line_of(node, loc), f"{fields}: {message}" if fields else message)

    def entries(self, path: Path, model: type[_Entry]) -> list[tuple[_Entry, int]]:
        data, node = self.read(path)
        if data is None and node is None:
            return []
        if not isinstance(data, list):
            self.problem(path, _line_of(node, ()), "expected a list of entries")
            return []
        adapter = TypeAdapter(model)
        loaded = []
        for index, item in enumerate(data):
            try:
                entry = adapter.validate_python(item, context=self.context)
                loaded.append((entry, _line_of(node, (index,))))
            except ValidationError as error:
                self.validation(path, node, (index,), error)
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    self.invalid_ids.add(item["id"])
        return loaded

    def routine(self, path: Path) -> tuple[Routine, int] | None:
        data, node = self.read(path)
        if data is None and node is None:
            return None
        try:
            return Routine.model_validate(data, context=self.context), _line_of(node, ())
        except ValidationError as error:
            self.validation(path, node, (), error)
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                self.invalid_ids.add(data["id"])
            return None

    def body(self, path: Path) -> BodyMap | None:
        data, node = self.read(path)
        if data is None and node is None:
            return None
        try:
            return BodyMap.model_validate(data)
        except ValidationError as error:
            self.validation(path, node, (), error)
            return None

    def synonyms(self, path: Path) -> dict[str, str]:
        data, node = self.read(path)
        if data is None and node is None:
            return {}
        try:
            table = TypeAdapter(Synonyms).validate_python(data)
        except ValidationError as error:
            self.validation(path, node, (), error)
            return {}
        variants: dict[str, str] = {}
        for canonical, words in table.items():
            for word in words:
                variant = word.lower()
                if variants.get(variant, canonical) != canonical:
                    self.problem(
                        path,
                        _line_of(node, (canonical,)),
                        f"{word!r} already means {variants[variant]!r}",
                    )
                variants[variant] = canonical.lower()
        return variants


def load_knowledge(directory: Path | str | None = None) -> KnowledgeBase:
    """Load and validate every knowledge file; raise `KnowledgeError` listing all problems."""
    directory = Path(directory) if directory is not None else default_knowledge_dir()
    loader = _Loader(directory)
    if not directory.is_dir():
        raise KnowledgeError([KnowledgeProblem(str(directory), 1, "not a directory")])

    body_path = directory / BODY_FILE
    body = loader.body(body_path) if body_path.is_file() else None
    if body is not None or not body_path.is_file():  # a broken body.yaml is reported once
        loader.context[BODY_CONTEXT] = body
    found: list[tuple[Entry, Path, int]] = []
    synonyms: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == BODY_FILE:
            continue
        if path.name == SYNONYMS_FILE:
            synonyms = loader.synonyms(path)
        elif path.name in ENTRY_FILES:
            found += [(e, path, line) for e, line in loader.entries(path, ENTRY_FILES[path.name])]
        else:
            expected = ", ".join([*ENTRY_FILES, SYNONYMS_FILE, BODY_FILE])
            loader.problem(path, 1, f"unknown knowledge file; expected one of {expected}")
    for path in sorted((directory / ROUTINES_DIR).glob("*.yaml")):
        loaded = loader.routine(path)
        if loaded:
            found.append((loaded[0], path, loaded[1]))

    entries: dict[str, Entry] = {}
    for entry, path, line in found:
        if entry.id in entries:
            loader.problem(path, line, f"duplicate id {entry.id!r}")
        entries.setdefault(entry.id, entry)
    for entry, path, line in found:
        for related in entry.related:
            if not (related in entries or related in loader.invalid_ids or loader.unreadable):
                loader.problem(path, line, f"{entry.id}: related id {related!r} does not exist")
    if not entries and not loader.problems:
        loader.problem(directory, 1, "no knowledge files found")
    if loader.problems:
        raise KnowledgeError(loader.problems)

    routines = {e.id: e for e in entries.values() if isinstance(e, Routine)}
    red_flags = tuple(e for e in entries.values() if isinstance(e, Safety) and e.red_flag)
    return KnowledgeBase(
        entries=entries,
        routines=routines,
        synonyms=synonyms,
        source_dir=directory,
        red_flags=red_flags,
        body=body,
    )


def json_schema() -> dict[str, Any]:
    """A JSON Schema that every knowledge file matches (one branch per file kind)."""
    file_kinds = [*(list[model] for model in ENTRY_FILES.values()), Synonyms, Routine, BodyMap]
    schema = TypeAdapter(Union[tuple(file_kinds)]).json_schema()  # noqa: UP007
    return {"title": "massage-bot knowledge file", **schema}
