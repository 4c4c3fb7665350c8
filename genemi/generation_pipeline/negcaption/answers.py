"""What makes a negative caption usable, and reading a chat model's answer.

A rewrite is refused when it is empty, identical to its source caption (ignoring case, spaces and final
punctuation), a paraphrase (the same content words in the same order: only function words changed, so it may
still be true of the image), or much longer than its source (not a minimal change). Content words are every
word but function words; relation words, numbers and negations count as content (they are what a relation
swap or a count change edits).
"""

from __future__ import annotations

import json
import re
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS

from genemi.text import vocabulary as vocab

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_NUMBERS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "twenty", "hundred", "single", "several", "many", "few", "both", "each", "all", "none", "no"}
_NEGATIONS = {"no", "not", "nothing", "nobody", "never", "without", "none", "n't"}
_RELATION_WORDS = {w for pair in vocab.RELATION_OPPOSITES for phrase in pair for w in phrase.split()
                   if w not in {"a", "an", "the", "of", "to"}} | {
    "on", "in", "under", "above", "below", "behind", "beside", "between", "over", "inside", "outside", "near",
    "left", "right", "top", "bottom", "front", "back", "up", "down", "into", "onto", "off", "out", "through",
    "against", "along", "around", "across", "toward", "towards", "beneath", "underneath", "upon", "within"}
FUNCTION_WORDS = frozenset(w for w in STOP_WORDS if w not in _NUMBERS | _NEGATIONS | _RELATION_WORDS)
#: a rewrite may be this many words longer than its source (besides doubling it): more is not a minimal change
_EXTRA_WORDS = 6


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in _words(text) if w not in FUNCTION_WORDS]


def rejection(source: str, rewrite: str) -> str | None:
    """Why ``rewrite`` cannot be a negative of ``source`` (None: it can)."""
    if not rewrite.strip():
        return "empty"
    if _words(rewrite) == _words(source):
        return "identical to the source caption"
    if content_words(rewrite) == content_words(source):
        return "a paraphrase: only function words changed, so it may still be true of the image"
    if len(_words(rewrite)) > 2 * len(_words(source)) + _EXTRA_WORDS:
        return "much longer than the source caption (not a minimal change)"
    return None


_KIND_WORDS = {  # words a model may use for a kind
    "swap_obj": ("swap_obj", "swap object", "swap objects", "swap_objects", "object swap", "swap roles",
                 "role swap", "swap_relation", "relation swap", "swap relation", "swap"),
    "swap_att": ("swap_att", "swap attribute", "swap attributes", "swap_attributes", "attribute swap"),
    "replace_rel": ("replace_rel", "replace relation", "relation", "change relation", "replace_relation",
                    "spatial", "position", "action"),
    "change_count": ("change_count", "count", "change count", "number", "replace_count", "quantity"),
    "replace_att": ("replace_att", "replace attribute", "attribute", "change attribute", "replace_attribute",
                    "colour", "color", "material", "size"),
    "replace_obj": ("replace_obj", "replace object", "object", "change object", "replace_object"),
}


def normalise_kind(text: Any) -> str:
    """One of :data:`~genemi.generation_pipeline.negcaption.base.NEGATIVE_KINDS` for what a model called its
    edit, else ``other``."""
    key = re.sub(r"[\s\-]+", " ", str(text or "").strip().lower()).replace(" _", "_")
    for kind, words in _KIND_WORDS.items():
        if key in words or key.replace(" ", "_") in words:
            return kind
    return "other"


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_LINE = re.compile(r"^\s*(?:\d{1,2}\s*[.):\]]|[-*•])\s*(?:\[([^\]]+)\]|\(([^)]+)\)|([a-z_ ]{3,20}):)?\s*(.+?)\s*$",
                   re.I)
_CAPTION_KEYS = ("caption", "negative", "negative_caption", "text", "rewrite", "sentence")


def parse_answer(answer: str) -> list[tuple[str, str]]:
    """``(kind, caption)`` pairs from an answer: a JSON object (``{"negatives": [{"kind", "caption"}]}`` or a
    list of such objects, possibly in a code fence) or numbered lines (``1. [swap_att] a red cat ...``)."""
    text = answer.strip()
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        candidates.append(text[start : end + 1])
    start, end = text.find("["), text.rfind("]")
    if start >= 0 and end > start:
        candidates.append(text[start : end + 1])
    for chunk in candidates:
        try:
            data = json.loads(chunk)
        except ValueError:
            continue
        found = _from_json(data)
        if found:
            return found
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(4):
            kind = m.group(1) or m.group(2) or m.group(3)
            out.append((normalise_kind(kind), m.group(4).strip().strip("\"'“”")))
    return out


def _from_json(data: Any) -> list[tuple[str, str]]:
    if isinstance(data, dict):
        for key in ("negatives", "rewrites", "captions", "answers"):
            if isinstance(data.get(key), list):
                return _from_json(data[key])
        data = [data]
    out = []
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, str):
            out.append(("other", entry.strip()))
        elif isinstance(entry, dict):
            caption = next((entry[k] for k in _CAPTION_KEYS if isinstance(entry.get(k), str)), None)
            if caption:
                out.append((normalise_kind(entry.get("kind") or entry.get("type") or entry.get("edit")),
                            caption.strip()))
    return out
