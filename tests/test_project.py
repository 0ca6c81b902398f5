"""The project as a stranger clones it: it carries every file its tests and tools read."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# spelt out piecemeal, so that this file does not hold what it looks for
BESIDE = "shared"
OUTSIDE_FOLDERS = tuple(
    pattern.format(BESIDE)
    for pattern in ("../{}", '"..", "{}"', "'..', '{}'", '".." / "{}"')
)


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False
    ).stdout.decode()
    names = [name for name in listed.split("\0") if name]
    if not names:  # not a git checkout (an unpacked archive): every file under the root
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / name for name in names]


def test_nothing_reads_a_folder_beside_the_checkout() -> None:
    readers = [
        p for p in _tracked_files()
        if p.suffix in {".py", ".toml", ".cfg", ".ini"} or p.name in {"Makefile", "run"}
    ]  # fmt: skip
    offenders = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in readers
        if path.is_file() and path != Path(__file__).resolve()
        for needle in OUTSIDE_FOLDERS
        if needle in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []


def test_the_discord_api_description_ships_with_its_licence() -> None:
    folder = ROOT / "tests" / "e2e" / "discord-api"
    assert (folder / "openapi.json").stat().st_size > 100_000
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert "make discord-api" in (folder / "README.md").read_text(encoding="utf-8")
