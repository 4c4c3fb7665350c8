"""LLM portrayal answers: the instruction prompt, the per-image request message, and a tolerant parser.

The parser reads the original's plain-text layout (a header line per item, then numbered lines
``N) <long description> (<short label>)``) and the usual ways models stray from it: other numbering or
bullets, markdown, headers in another case or number, the short label after a dash or colon or with its
closing bracket missing, prose around the answer, more lines than asked, duplicates, and JSON answers
(an object keyed by item, or a list of objects with an ``item`` key, possibly in a code fence).
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline.chat.prompts import load_prompt
from genemi.records import Portrayal
from genemi.text import vocabulary as vocab

MAX_SHORT_WORDS = vocab.MAX_SHORT_WORDS
#: genemi's instruction prompt per answer format (``--portrayal-format``): numbered text lists, or one JSON object
INSTRUCTIONS_RESOURCES = {"text": "instructions.txt", "json": "instructions_json.txt"}

# a numbered or bulleted line: "1)", "1.", "1:", "(1)", "1 -", "-", "*", "•"
_MARK = re.compile(r"^(?:\(\d{1,2}\)|\d{1,2}\s*[.):\]](?!\d)|\d{1,2}\s+[-–—](?=\s)|[-*•+·](?=\s))\s*")
# "Word 1: bird", "Item: bird", "For the word bird:"
_HEADER_PREFIX = re.compile(r"^(?:word|item|object|noun|for)\b\s*\d*\s*[:\-–—]?\s*(?:the\s+)?(?:word\s+)?", re.I)
_LONG_LABEL = re.compile(r"^(?:long(?:\s+description)?|description|prompt|portrayal)\s*[:=]\s*", re.I)
_SHORT_LABEL = re.compile(r"\b(?:short(?:\s+(?:description|label))?|label)\s*[:=]\s*", re.I)
_SEPARATORS = (" -> ", " → ", " => ", " -- ", " — ", " – ", " - ", " | ")
_JSON_LONG_KEYS = ("description", "long", "long_description", "prompt", "portrayal", "text", "desc")
_JSON_SHORT_KEYS = ("short", "short_description", "label", "short_label", "name")
_JSON_ITEM_KEYS = ("item", "word", "object", "noun")
_INLINE_HEADER = re.compile(r"^(.{1,60}?)\s*[:：]\s+(\S.*)$")
_QUOTES = "\"'`“”‘’"


def format_request(items: Sequence[str], caption: str | None) -> str:
    """The user message for one image: the words to portray and, when known, the sentence around them."""
    words = f"Words: {', '.join(items)}"
    return f"{words}\nSentence: {caption.strip()}" if caption and caption.strip() else words


def load_instructions(path: str | None, k: int, answer_format: str = "text") -> str:
    """The instruction (system) prompt with ``{k}`` filled in: the user's file, or genemi's own for the answer
    format (``text``: numbered lists; ``json``: one JSON object)."""
    if k < 1:
        raise ConfigError(f"the number of portrayals must be >= 1, got {k}")
    return load_prompt(path, __package__, INSTRUCTIONS_RESOURCES[answer_format], k=k)


def _norm(text: str) -> str:
    text = re.sub(r"[^a-z0-9'\- ]+", " ", text.lower())
    text = re.sub(r"^(?:(?:a|an|the)\s+)+", "", text.strip())
    return " ".join(text.split())


def _canonical(text: str) -> str:
    """Singular form of a normalised phrase ("birds" -> "bird", "people" -> "person")."""
    parts = vocab.split_item(text)
    return " ".join([*parts.mods, parts.head, *parts.extra])


class _Items:
    """Finds which requested item a header names (case, articles and number do not matter)."""

    def __init__(self, items: Sequence[str]):
        self.exact: dict[str, str] = {}
        self.canon: dict[str, str] = {}
        for item in items:
            self.exact.setdefault(_norm(item), item)
            self.canon.setdefault(_canonical(_norm(item)), item)

    def find(self, text: str) -> str | None:
        key = _norm(text)
        if not key:
            return None
        return self.exact.get(key) or self.canon.get(_canonical(key))

    def header(self, content: str) -> str | None:
        text = content.strip().strip(_QUOTES + "*_#").strip()
        text = _HEADER_PREFIX.sub("", text).strip().strip(_QUOTES).rstrip(":：-–—").strip().strip(_QUOTES)
        return self.find(text) if len(text.split()) <= 6 else None


# --- one portrayal -----------------------------------------------------------------------------------------


def _clean_long(text: str) -> str:
    text = _LONG_LABEL.sub("", text.strip().strip(_QUOTES).strip())
    return text.strip().strip(_QUOTES).strip(" ,;:-–—|").strip()


def _clean_short(text: str) -> str:
    text = _SHORT_LABEL.sub("", text.strip())
    text = " ".join(text.strip().strip(_QUOTES + " *_[](){}.,;:!?").split()).lower()
    return re.sub(r"^(?:a|an|the)\s+", "", text)


def split_portrayal(text: str) -> tuple[str, str | None]:
    """(long description, short label or None) from one answer line: ``long (short)``, ``long (short``,
    ``long [short]``, ``long - short``, ``short: long``, ``long, short: short``."""
    text = _LONG_LABEL.sub("", text.strip(), count=1)  # "Description: ..." is not "short: long"
    label = _SHORT_LABEL.search(text)
    if label and label.start() > 0:
        return _clean_long(text[: label.start()]), _clean_short(text[label.end() :])
    opened = max(text.rfind("("), text.rfind("["))
    if opened > 0:
        closed = text.find(")" if text[opened] == "(" else "]", opened)
        tail = text[closed + 1 :] if closed >= 0 else ""
        if closed < 0 or not tail.strip(" .,;:!*" + _QUOTES):
            return _clean_long(text[:opened]), _clean_short(text[opened + 1 : closed if closed >= 0 else None])
    cut = max(((text.rfind(sep), sep) for sep in _SEPARATORS), key=lambda t: t[0])
    if cut[0] < 0 and ": " in text:
        cut = (text.find(": "), ": ")
    if cut[0] > 0:
        left, right = text[: cut[0]], text[cut[0] + len(cut[1]) :]
        if len(_clean_short(left).split()) < len(_clean_short(right).split()):
            left, right = right, left
        return _clean_long(left), _clean_short(right)
    if opened > 0:  # "long (short) more text": the bracketed words
        closed = text.find(")" if text[opened] == "(" else "]", opened)
        return _clean_long(text[:opened] + " " + text[closed + 1 :]), _clean_short(text[opened + 1 : closed])
    return _clean_long(text), None


def _problem(long: str, short: str | None) -> str | None:
    if short is None:
        return "no short label"
    if not short or not re.search(r"[a-z]", short):
        return "empty short label"
    if len(short.split()) > MAX_SHORT_WORDS:
        return f"short label {short!r} has {len(short.split())} words (at most {MAX_SHORT_WORDS})"
    if not long or not re.search(r"[A-Za-z]", long):
        return "empty description"
    return None


# --- the answer ----------------------------------------------------------------------------------------------


def _text_sections(text: str, items: _Items, single: str | None) -> dict[str, list[tuple[int, bool, str]]]:
    """item -> its lines as (line number, numbered or bulleted, content)."""
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    preamble: list[tuple[int, bool, str]] = []
    current: list | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.replace("**", "").replace("__", "").strip().lstrip("#>").strip()
        if not line or line.startswith("```"):
            continue
        mark = _MARK.match(line)
        content = line[mark.end() :].strip() if mark else line
        item = items.header(content) if (not mark or content.endswith((":", "："))) else None
        rest = ""
        inline = None if item or mark else _INLINE_HEADER.match(content)  # "Bird: 1) a bald eagle (eagle)"
        if inline and (item := items.header(inline.group(1))):
            rest = inline.group(2)
        if item is not None:
            current = sections.setdefault(item, [])
            if rest:
                inner = _MARK.match(rest)
                current.append((number, bool(inner), rest[inner.end() :].strip() if inner else rest))
            continue
        (current if current is not None else preamble).append((number, bool(mark), content))
    if not sections and single is not None:
        sections[single] = preamble
    return sections


def _text_candidates(lines: list[tuple[int, bool, str]]) -> list[tuple[str, str | None, str]]:
    """(long, short, where) per portrayal line; unnumbered lines count only where no line is numbered."""
    numbered = any(marked for _, marked, _ in lines)
    out: list[list] = []
    for number, marked, content in lines:
        label = _SHORT_LABEL.match(content)
        if label and out and out[-1][1] is None:  # "Short: bald eagle" under its description
            out[-1][1] = _clean_short(content[label.end() :])
            continue
        if numbered and not marked:
            continue
        long, short = split_portrayal(content)
        out.append([long, short, f"line {number}"])
    return [tuple(c) for c in out]


def _json_blob(text: str) -> Any:
    fence = re.search(r"```(?:json|JSON)?\s*(.*?)```", text, re.S)
    blobs = [fence.group(1)] if fence else []
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        blobs.append(text[min(starts) : max(text.rfind("}"), text.rfind("]")) + 1])
    for blob in blobs:
        for candidate in (blob, re.sub(r",\s*([}\]])", r"\1", blob)):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return None


def _keyname(key: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _key(obj: dict, names: Sequence[str]) -> Any:
    lowered = {_keyname(k): v for k, v in obj.items()}
    return next((lowered[n] for n in names if n in lowered), None)


def _json_entry(entry: Any) -> tuple[str, str | None] | None:
    if isinstance(entry, str):
        mark = _MARK.match(entry.strip())
        return split_portrayal(entry.strip()[mark.end() :] if mark else entry)
    if isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
        return _clean_long(entry[0]), _clean_short(entry[1])
    if isinstance(entry, dict):
        long, short = _key(entry, _JSON_LONG_KEYS), _key(entry, _JSON_SHORT_KEYS)
        if isinstance(long, str) or isinstance(short, str):
            return _clean_long(str(long or "")), None if short is None else _clean_short(str(short))
    return None


def _json_list(value: Any) -> list:
    """The portrayal entries of one item's JSON value."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if _json_entry(value) is not None:
            return [value]
        lists = [v for v in value.values() if isinstance(v, list)]
        return lists[0] if lists else list(value.values())
    return [value]


def _json_sections(obj: Any, items: _Items, depth: int = 0) -> dict[str, list]:
    """item -> raw JSON entries, from an object keyed by item or a list of objects with an item key."""
    out: dict[str, list] = {}
    if depth > 4:
        return out
    if isinstance(obj, dict):
        named = _key(obj, _JSON_ITEM_KEYS)
        item = items.find(named) if isinstance(named, str) else None
        if item is not None:
            rest = {k: v for k, v in obj.items() if _keyname(k) not in _JSON_ITEM_KEYS}
            out.setdefault(item, []).extend(_json_list(rest))
            return out
        for key, value in obj.items():
            item = items.find(str(key))
            if item is not None:
                out.setdefault(item, []).extend(_json_list(value))
        if not out:
            for value in obj.values():
                if isinstance(value, (dict, list)):
                    for item, entries in _json_sections(value, items, depth + 1).items():
                        out.setdefault(item, []).extend(entries)
    elif isinstance(obj, list):
        for value in obj:
            if isinstance(value, (dict, list)):
                for item, entries in _json_sections(value, items, depth + 1).items():
                    out.setdefault(item, []).extend(entries)
    return out


def parse_answer(text: str, items: Sequence[str], k: int) -> tuple[dict[str, list[Portrayal]], dict[str, str]]:
    """Portrayals per item from a model's answer: (item -> exactly k portrayals, item -> why not parsed).

    The first k valid lines of an item are taken (duplicates and the item itself skipped); an item with
    fewer, or missing from the answer, is reported with a reason. Each portrayal's kind comes from
    :func:`genemi.text.vocabulary.classify_edit`."""
    items = list(dict.fromkeys(items))
    if not (text or "").strip():
        return {}, {item: "empty answer" for item in items}
    index = _Items(items)
    candidates: dict[str, list[tuple[str, str | None, str]]] = {}
    blob = _json_blob(text) if any(c in text for c in "{[") else None
    if blob is not None:
        found = _json_sections(blob, index)
        if not found and len(items) == 1:
            found = {items[0]: _json_list(blob)}
        for item, entries in found.items():
            rows = [(*(_json_entry(e) or ("", None)), f"entry {i}") for i, e in enumerate(entries, 1)]
            candidates[item] = rows
        if not any(short for rows in candidates.values() for _, short, _ in rows):
            candidates = {}  # not a JSON answer after all (brackets in prose)
    if not candidates:
        for item, lines in _text_sections(text, index, items[0] if len(items) == 1 else None).items():
            candidates[item] = _text_candidates(lines)
    done: dict[str, list[Portrayal]] = {}
    failed: dict[str, str] = {}
    for item in items:
        if item not in candidates:
            failed[item] = "no portrayals for this item in the answer"
            continue
        portrayals, problems, seen = [], [], {_norm(item)}
        for long, short, where in candidates[item]:
            problem = _problem(long, short)
            if problem is None and short in seen:
                problem = f"repeats {short!r}" if short != _norm(item) else "the short label is the item itself"
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            seen.add(short)
            portrayals.append(Portrayal(kind=vocab.classify_edit(item, short), prompt=long, short=short))
            if len(portrayals) == k:
                break
        if len(portrayals) == k:
            done[item] = portrayals
        else:
            detail = f" ({'; '.join(problems[:3])})" if problems else ""
            failed[item] = f"{len(portrayals)} valid portrayals, {k} needed{detail}"
    return done, failed
