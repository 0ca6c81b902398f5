"""Answering questions on the shipped knowledge base, through the engine and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.assistant import Assistant, MatchSettings
from bot.knowledge import load_knowledge
from bot.reply import LEAD_WORDS, MAX_QUESTION_CHARS, StepContext, split_lead

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assistant() -> Assistant:
    return Assistant(load_knowledge())


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("where are the rhomboids?", "rhomboids"),
        ("trapezus", "trapezius"),
        ("what muscles are between the spine and shouldr blade", "rhomboids"),
        ("more pressure?", "more-pressure"),
        ("firmer", "more-pressure"),
        ("can ya go firmer", "more-pressure"),
        ("ow too hard", "less-pressure"),
        ("what's effleurage", "effleurage"),
        ("how do i use my fist on the upper back", "fist-rocking"),
        ("what do i do with my other hand", "other-hand-connection"),
        ("how do i give a massage", "beginner-start"),
        ("\uff4d\uff4f\uff52\uff45 pressure", "more-pressure"),  # full-width letters
    ],
)
def test_answers_common_questions(assistant: Assistant, question: str, expected: str) -> None:
    reply = assistant.ask(question)
    assert (reply.kind, reply.id) == ("answer", expected), reply
    assert reply.text == assistant.kb.entries[expected].text
    assert 0 < reply.score <= 100


def test_a_question_after_a_story(assistant: Assistant) -> None:
    story = (
        "So my husband works construction and comes home wrecked every night. Last night "
        "I tried giving him a back rub on the couch but honestly I had no clue what I was "
        "doing and my wrists hurt after five minutes. How long should a massage actually be?"
    )
    reply = assistant.ask(story)
    assert (reply.kind, reply.id) == ("answer", "how-long")


@pytest.mark.parametrize(
    "question",
    ["help me with my taxes", "what's on tv", "asdkjh qwpeoiru zxmn", "best pizza in town?",
     "how do i check my tyre pressure", "how do i knead bread dough",
     "?", "ok", "hi", "thanks", "k", "", "   ", "no", "nope", "idk", "not really", "done",
     "good night everyone", "good morning"],
)
def test_off_topic_and_empty_get_the_fallback(assistant: Assistant, question: str) -> None:
    reply = assistant.ask(question)
    assert reply.kind == "fallback"
    assert reply.id is None
    assert "routine" in reply.text


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("my arm goes numb when you press there", "numbness-tingling"),
        ("can i massage my wife she's pregnant", "pregnancy"),
        ("i got a sharp stabbing pain when you pressed", "sharp-pain"),
        ("he says his chest hurts", "chest-pain"),
        ("feeling dizzy after the massage, more pressure next time?", "dizziness"),
        ("got rear ended last week and my neck is stiff, massage ok?", "recent-injury"),
    ],
)
def test_red_flags_win_over_technique(assistant: Assistant, question: str, expected: str) -> None:
    reply = assistant.ask(question)
    assert (reply.kind, reply.id) == ("safety", expected)
    assert reply.text == assistant.kb.entries[expected].text


def test_step_context_gives_the_steps_own_advice(assistant: Assistant) -> None:
    routine = assistant.kb.routines["upper-back"]
    fist = next(i for i, step in enumerate(routine.steps) if "fist" in step.id)
    reply = assistant.ask("more pressure?", StepContext("upper-back", fist))
    assert reply.kind == "answer"
    assert reply.text == routine.steps[fist].more_pressure
    softer = assistant.ask("can you go softer", StepContext("upper-back", fist))
    assert softer.text == routine.steps[fist].less_pressure
    assert assistant.ask("more pressure?").text == assistant.kb.entries["more-pressure"].text


def test_near_ties_clarify_with_close_suggestions_only(assistant: Assistant) -> None:
    ranked = assistant.matcher.rank("neck muscles")
    best = ranked[0].score
    for margin in (3.0, 10.0, 100.0):
        reply = Assistant(assistant.kb, MatchSettings(clarify_margin=margin)).ask("neck muscles")
        close = [m.entry_id for m in ranked if best - m.score <= margin][:3]
        assert reply.kind == "clarify" and reply.id is None
        assert [s.id for s in reply.suggestions] == close
    assert len(close) == 3 and any(best - m.score > 3.0 for m in ranked[:3])
    clear = Assistant(assistant.kb, MatchSettings(clarify_margin=-1.0)).ask("neck muscles")
    assert clear.kind == "answer"
    assert clear.id == ranked[0].entry_id


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_gets_a_reply(assistant: Assistant, text: str) -> None:
    reply = assistant.ask(text)
    assert reply.kind in ("answer", "safety", "clarify", "fallback")
    assert 0 <= reply.score <= 100
    assert reply.text


def test_ask_json_contract() -> None:
    result = run_cli("ask", "--json", "where are the rhomboids?")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"question", "kind", "id", "title", "text", "score", "suggestions"}
    assert data["kind"] == "answer" and data["id"] == "rhomboids"
    assert data["question"] == "where are the rhomboids?"


def test_ask_reads_stdin_one_question_per_line() -> None:
    result = run_cli("ask", "--json", stdin="more pressure?\n\nwhat's on tv\nim pregnant ok?\n")
    assert result.returncode == 0, result.stderr
    kinds = [json.loads(line)["kind"] for line in result.stdout.splitlines()]
    assert kinds == ["answer", "fallback", "safety"]


def test_ask_answers_every_line_of_bytes_that_are_not_all_utf8() -> None:
    lines = [b"more pressure?", b"\xff\xfe oil or lotion?", b"caf\xe9 chat", b"im pregnant ok?"]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json"], input=b"\n".join(lines) + b"\n",
        capture_output=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == b""
    replies = [json.loads(line.decode("utf-8")) for line in result.stdout.splitlines()]
    questions = [r["question"] for r in replies]
    assert questions[1:3] == ["\ufffd\ufffd oil or lotion?", "caf\ufffd chat"]
    assert (replies[0]["id"], replies[1]["id"], replies[3]["kind"]) == (
        "more-pressure", "oil-or-lotion", "safety"
    )


def test_ask_refuses_a_line_over_the_limit_quickly() -> None:
    huge = "why " * 250_000  # a megabyte on one line
    result = run_cli("ask", "--json", stdin=f"{huge}\nmore pressure?\n")
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["kind"] == "fallback" and "characters long" in first["text"]
    assert len(first["question"]) == MAX_QUESTION_CHARS
    assert second["id"] == "more-pressure"


def test_ask_in_a_routine_step() -> None:
    kb = load_knowledge()
    steps = kb.routines["upper-back"].steps
    n = next(i for i, step in enumerate(steps, start=1) if "fist" in step.id)
    result = run_cli("ask", "--json", "--routine", "upper-back", "--step", str(n), "harder")
    assert json.loads(result.stdout)["text"] == steps[n - 1].more_pressure
    bad = run_cli("ask", "--routine", "upper-back", "--step", "99", "harder")
    assert bad.returncode == 2
    assert "upper-back has steps 1 to" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_routines_json() -> None:
    result = run_cli("routines", "--json")
    routines = {r["id"]: r for r in json.loads(result.stdout)}
    assert {"upper-back", "neck-and-shoulders", "lower-back"} <= set(routines)
    first = routines["upper-back"]["steps"][0]
    assert set(first) == {"n", "id", "title", "text", "seconds"}
    assert first["n"] == 1
    for routine in routines.values():
        assert 600 <= sum(step["seconds"] for step in routine["steps"]) <= 1200


def test_the_terminal_commands_never_import_discord() -> None:
    code = "import sys; from bot.__main__ import main; main(['ask', 'more pressure?']); " \
           "assert 'discord' not in sys.modules, 'discord imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_broken_knowledge_dir_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text("- id: x\n  title: [\n", encoding="utf-8")
    result = run_cli("ask", "--knowledge", str(tmp_path), "hello")
    assert result.returncode == 2
    assert f"{tmp_path / 'faq.yaml'}:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "question",
    [
        "he fell asleep halfway through, should i keep going",
        "no injury or anything, her lower back is just stiff from standing",
        "my java code throws an exception",
        "how long do i boil an egg for",
        "she said nothing sharp, just achy the next day",
        "is it ok to massage over clothes",
    ],
)
def test_ordinary_words_do_not_raise_a_red_flag(assistant: Assistant, question: str) -> None:
    assert assistant.ask(question).kind != "safety"


def test_a_red_flag_at_the_end_of_a_very_long_message_still_wins(assistant: Assistant) -> None:
    story = "We had a lovely week at the lake and I want to thank her somehow. " * 28
    reply = assistant.ask(story + "She is pregnant, can I massage her back?")
    assert 1800 < len(story) < MAX_QUESTION_CHARS
    assert (reply.kind, reply.id) == ("safety", "pregnancy")


def test_a_question_over_the_limit_is_refused_at_once(assistant: Assistant) -> None:
    reply = assistant.ask("why " * 250_000 + "she is pregnant")  # a megabyte
    assert reply.kind == "fallback" and "1000015 characters long" in reply.text
    assert len(reply.question) == MAX_QUESTION_CHARS


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text("more pressure?\n" * 5000, encoding="utf-8")
    with questions.open() as stdin:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "ask", "--json"],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(100).startswith(b'{"question"')
        process.stdout.close()
        error = process.stderr.read().decode()
        process.wait(timeout=60)
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("should she have a pillow under her chest", "positioning-setup"),
        ("how do i find the right spot to work on the upper back", "define-the-area"),
        ("what is the erector spinae", "erector-spinae"),
        ("what are the four rotator cuff muscles", "rotator-cuff"),
        ("why is being rocked so relaxing", "rocking-is-relaxing"),
        ("zigzags or circles along the lines?", "imaginary-lines"),
        ("acupressure points on the shoulder blade", "shoulder-blade-rub"),
        ("finished one side, what now", "other-side"),
        ("what do i do with my free hand", "other-hand-connection"),
    ],
)
def test_every_seed_topic_is_answered(assistant: Assistant, question: str, expected: str) -> None:
    reply = assistant.ask(question)
    assert (reply.kind, reply.id) == ("answer", expected)
    assert assistant.kb.entries[expected].source == "massage-monday-418"


def _fist(assistant: Assistant) -> int:
    routine = assistant.kb.routines["upper-back"]
    return next(i for i, step in enumerate(routine.steps) if "fist" in step.id)


@pytest.mark.parametrize(
    ("question", "more"),
    [("can u go harderrr", True), ("softer pls", False), ("ow", False), ("ouch!!", False)],
)
def test_slang_for_pressure_gets_the_steps_advice(
    assistant: Assistant, question: str, more: bool
) -> None:
    step = assistant.kb.routines["upper-back"].steps[_fist(assistant)]
    reply = assistant.ask(question, StepContext("upper-back", _fist(assistant), 42.0))
    assert reply.kind == "answer"
    assert reply.text == (step.more_pressure if more else step.less_pressure)


def test_the_sessions_own_questions_are_answered_from_the_session(assistant: Assistant) -> None:
    routine = assistant.kb.routines["upper-back"]
    index = _fist(assistant)
    here = StepContext("upper-back", index, 83.0)
    step, upcoming = routine.steps[index], routine.steps[index + 1]
    left = assistant.ask("how much time is left?", here)
    assert left.id == "session-time-left"
    assert left.text.startswith(f"1:23 left on step {index + 1} of {len(routine.steps)}")
    held = StepContext("upper-back", index, 83.0, paused=True)
    paused = assistant.ask("how long have we got left", held)
    assert "paused" in paused.text
    which = assistant.ask("wait which step are we on", here)
    assert step.title in which.text and step.text in which.text
    coming = assistant.ask("what comes next?", here)
    assert f"step {index + 2}" in coming.text and upcoming.title in coming.text
    back = assistant.ask("can we go back a step", here)
    assert routine.steps[index - 1].title in back.text
    last = assistant.ask("whats next", StepContext("upper-back", len(routine.steps) - 1, 5.0))
    assert "last step" in last.text
    without_clock = assistant.ask("how long is left", StepContext("upper-back", index))
    assert f"lasts {step.seconds // 60}:{step.seconds % 60:02d}" in without_clock.text
    outside = assistant.ask("how much time is left on this step")
    assert outside.text == assistant.kb.entries["session-time-left"].text


def test_a_long_answer_leads_with_at_most_sixty_words(assistant: Assistant) -> None:
    reply = assistant.ask("how do I give more pressure")
    assert reply.rest and len(reply.lead.split()) <= 60
    assert reply.text.startswith(reply.lead) and reply.text.endswith(reply.rest)


def test_every_answer_opens_with_a_short_lead() -> None:
    kb = load_knowledge()
    texts = [e.text for e in kb.entries.values()]
    texts += [t for r in kb.routines.values() for s in r.steps
              for t in (s.text, s.more_pressure, s.less_pressure)]  # fmt: skip
    long_leads = [t[:60] for t in texts if len(split_lead(t)[0].split()) > LEAD_WORDS]
    assert long_leads == []


def test_split_lead_keeps_whole_sentences_and_paragraphs() -> None:
    words = " ".join(["word"] * 20)
    text = f"First {words}. Second {words}. Third {words}. Fourth {words}."
    lead, rest = split_lead(text)
    assert lead == f"First {words}. Second {words}." and rest.startswith("Third")
    assert split_lead("Short one.\n\nThen " + words + " " + words) == (
        "Short one.", "Then " + words + " " + words
    )
    assert split_lead(f"Only {words}. Tail is short.") == (f"Only {words}. Tail is short.", "")


def test_a_post_asking_two_things_offers_the_other_as_a_suggestion(assistant: Assistant) -> None:
    reply = assistant.ask(
        "We want to try this tonight. What oil should we use on her back? "
        "And how long should the whole massage last?"
    )
    assert reply.kind == "answer"
    assert {reply.id, *(s.id for s in reply.suggestions)} >= {"which-oil", "how-long"}


def test_a_long_post_under_the_threshold_is_asked_back_when_one_entry_leads(
    assistant: Assistant,
) -> None:
    story = (
        "My partner has a rough week at work, long shifts, and gets home late. "
        "She says the bit between her shoulder blades, by the spine, aches. What is it called?"
    )
    ranked = assistant.matcher.rank(story)
    strict = MatchSettings(
        long_answer_threshold=ranked[0].score + 5, ask_back_band=50.0, ask_back_lead=0.0
    )
    reply = Assistant(assistant.kb, strict).ask(story)
    assert reply.kind == "clarify" and reply.text.startswith("Did you mean")
    assert [s.id for s in reply.suggestions] == [ranked[0].entry_id]
    short = Assistant(assistant.kb, MatchSettings(answer_threshold=101, ask_back_band=200.0))
    assert short.ask("rhomboids?").kind == "fallback"  # a short question is never guessed


def test_a_red_flag_entry_answered_by_resemblance_is_a_safety_reply(
    assistant: Assistant,
) -> None:
    question = "My partner has a bad patch of eczema on her back that is cracked and weeping. Can I still massage with oil over it?"  # noqa: E501
    assert assistant.red_flags.check(question).raised is None  # no trigger: found by matching
    reply = assistant.ask(question)
    assert (reply.kind, reply.id) == ("safety", "skin-problems")


def test_a_red_flag_named_only_to_deny_it_is_never_the_answer(assistant: Assistant) -> None:
    question = "im not pregnant lol, just want a lower back rub from my husband, how does he start"
    check = assistant.red_flags.check(question)
    assert check.raised is None and check.ruled_out == {"pregnancy"}
    reply = assistant.ask(question)
    assert reply.kind == "answer" and reply.id == "lower-back"


def test_a_red_flag_needs_a_short_questions_score_when_only_resembled(
    assistant: Assistant,
) -> None:
    # a long message's lower threshold would let "surgery" alone raise the recent-injury flag
    question = "the surgery of my car cost a fortune so he is stressed, can i rub his shoulders"
    reply = assistant.ask(question)
    assert reply.kind != "safety" and reply.score < assistant.settings.answer_threshold


def test_words_the_knowledge_lacks_do_not_make_a_question_long(assistant: Assistant) -> None:
    # a long message's lower threshold needs five words the knowledge base knows
    question = "how long do i knead bread dough by hand"
    reading = assistant.matcher.read(question)
    assert len(reading.terms) >= assistant.settings.long_terms
    assert assistant.ask(question).kind == "fallback"
