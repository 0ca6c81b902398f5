"""Autocomplete: the knowledge base's entries closest to what is being typed."""

from __future__ import annotations

from discord import app_commands
from rapidfuzz import fuzz, process, utils

from bot.knowledge import Entry, Muscle
from cogs import render

MAX_CHOICES = 25
CHOICE_CUTOFF = 60  # rapidfuzz WRatio, 0 to 100
CHOICE_NAME_CHARS = 100


def choices(entries: list[Entry], current: str) -> list[app_commands.Choice[str]]:
    """Entries whose id, title or other names are close to what is typed, best first:
    typos and partial words count ("uper bak" finds upper-back, "rhomb" the rhomboids)."""
    typed = current.strip()[:CHOICE_NAME_CHARS]
    if not utils.default_process(typed):
        found = sorted(entries, key=lambda e: e.title.lower())
    else:
        names = [(name, entry) for entry in entries for name in _names(entry)]
        scored = process.extract(
            typed, [name for name, _ in names], scorer=fuzz.WRatio,
            processor=utils.default_process, score_cutoff=CHOICE_CUTOFF, limit=None,
        )  # fmt: skip
        best: dict[str, tuple[float, Entry]] = {}
        for _, score, index in scored:
            entry = names[index][1]
            if entry.id not in best or score > best[entry.id][0]:
                best[entry.id] = (score, entry)
        ordered = sorted(best.values(), key=lambda found: (-found[0], found[1].title.lower()))
        found = [entry for _, entry in ordered]
    return [
        app_commands.Choice(name=render.shorten(e.title, CHOICE_NAME_CHARS), value=e.id)
        for e in found[:MAX_CHOICES]
    ]


def _names(entry: Entry) -> list[str]:
    aliases = list(entry.aliases) if isinstance(entry, Muscle) else []
    return [entry.id.replace("-", " "), entry.title, *aliases]
