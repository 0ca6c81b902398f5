"""Matcher speed: latency per question, knowledge base load time, cold one-shot `ask`.

Run with `make bench` or `.venv/bin/python -m benchmarks.bench_matcher`. Not a test:
it prints figures to compare with the goals in the README.
"""

from __future__ import annotations

import difflib
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from bot.assistant import Assistant, entry_phrasings
from bot.knowledge import load_knowledge
from bot.matcher import Matcher, words_of

QUESTIONS = [
    "more pressure?",
    "where are the rhomboids",
    "can ya go firmer",
    "how do i use my fist on the upper back",
    "my wife sits at a desk all day and her shoulders are like rocks. "
    "I tried rubbing them but my thumbs get tired fast. how do I save my hands?",
    "is it ok to massage over clothes",
    "what's on tv",
    "trapezus",
    "how long should a massage be",
    "what oil should i use",
]
SYNTHETIC_SIZES = (10_000, 100_000)
DIFFLIB_QUESTIONS = 3  # difflib is slow; a few questions are enough to compare


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def time_each(run: Callable[[str], object], questions: Sequence[str], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            run(question)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def difflib_best(phrasings: Sequence[str]) -> Callable[[str], object]:
    def best(question: str) -> object:
        return difflib.get_close_matches(question.lower(), phrasings, n=3, cutoff=0.0)

    return best


def synthetic_phrasings(size: int, vocabulary: list[str], seed: int = 7) -> dict[str, list[str]]:
    """`size` phrasings of 4 to 9 words, six to an entry, from the real vocabulary plus
    made-up rare words (so rare words stay rare as the knowledge base grows)."""
    rng = random.Random(seed)
    made_up = [
        "".join(rng.choice("aeioubcdfgklmnprstv") for _ in range(rng.randint(5, 10)))
        for _ in range(size // 4)
    ]
    words = vocabulary + made_up
    phrasings: dict[str, list[str]] = {}
    for n in range(size):
        texts = phrasings.setdefault(f"entry-{n // 6}", [])
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))))
    return phrasings


def report(label: str, samples: Sequence[float]) -> float:
    p50, p99 = percentiles(samples)
    print(f"  {label:<28} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms")
    return p99


def main() -> None:
    start = time.perf_counter()
    kb = load_knowledge()
    loaded = time.perf_counter()
    assistant = Assistant(kb)
    built = time.perf_counter()
    print(f"shipped knowledge base: {len(kb.entries)} entries, {assistant.matcher.size} phrasings")
    print(f"  load + validate {1000 * (loaded - start):.0f} ms, "
          f"matcher index {1000 * (built - loaded):.0f} ms, "
          f"total {1000 * (built - start):.0f} ms")
    assistant.ask("warm up")
    ours = report("assistant.ask", time_each(assistant.ask, QUESTIONS, rounds=200))
    texts = [t.lower() for e in kb.entries.values() for t in entry_phrasings(e)]
    theirs = report("difflib baseline", time_each(difflib_best(texts), QUESTIONS, rounds=3))
    print(f"  speed-up at p99: {theirs / ours:.0f}x")

    vocabulary = sorted({w for text in texts for w in words_of(text)})
    for size in SYNTHETIC_SIZES:
        phrasings = synthetic_phrasings(size, vocabulary)
        start = time.perf_counter()
        matcher = Matcher(phrasings, kb.synonyms)
        print(f"synthetic knowledge base: {matcher.size} phrasings "
              f"(indexed in {time.perf_counter() - start:.1f} s)")
        ours = report("matcher.rank", time_each(matcher.rank, QUESTIONS, rounds=20))
        flat = [text for texts in phrasings.values() for text in texts]
        baseline = difflib_best(flat)
        theirs = report("difflib baseline", time_each(baseline, QUESTIONS[:DIFFLIB_QUESTIONS], 1))
        print(f"  speed-up at p99: {theirs / ours:.0f}x")

    command = shutil.which("massage-bot") or f"{sys.prefix}/bin/massage-bot"
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([command, "ask", "more pressure?"], check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    print(f"cold one-shot `massage-bot ask \"more pressure?\"`: best {min(runs):.2f} s, "
          f"median {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    main()
