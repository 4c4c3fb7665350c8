"""Caption rewriting: the phrase naming an item is made to name the item's new short label.

``rewrite(parse("A dog runs."), "dog", "eagle") == "An eagle runs."``. The caption is parsed once (any
parser that yields :class:`~genemi.text.parsing.ParsedCaption`); the short label is never parsed: its
number and article come from the small rules below, so a rewrite costs far less than the parse.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Sequence

from genemi.text.inflection import NUMBER_WORDS, indefinite_article, match_case, number_value, pluralize, singularize
from genemi.text.parsing import ParsedCaption, Token
from genemi.text.vocabulary import verb_group

_NOUNS = ("NOUN", "PROPN")
#: words of a noun phrase that count or place its item rather than describe it: kept like determiners
_KEEP = {
    "several", "many", "few", "some", "other", "another", "various", "multiple", "numerous", "both", "each",
    "every", "all", "more", "most", "much", "couple", "same", "only", "first", "second", "third", "last",
    "next", "single", "lone",
}  # fmt: skip
#: parts of speech that cannot head the phrase naming an item
_NOT_HEAD = {"VERB", "AUX", "ADP", "DET", "PRON", "CCONJ", "SCONJ", "PUNCT", "SPACE", "NUM", "PART"}
#: singular nouns the plural rules would take for plurals
_SINGULAR_S = {
    "lens", "gas", "canvas", "atlas", "bias", "species", "series", "news", "molasses", "chaos", "cosmos",
    "diabetes", "measles", "mathematics", "physics", "ethics", "gymnastics", "athletics", "aerobics",
}  # fmt: skip
#: plural-only nouns: never singularised, and take no "a"
_PLURALIA = {
    "pants", "jeans", "scissors", "shorts", "trousers", "sunglasses", "eyeglasses", "goggles", "binoculars",
    "headphones", "earphones", "tongs", "pliers", "clothes", "leggings", "overalls", "pajamas", "pyjamas",
    "tights", "earmuffs",
}  # fmt: skip
#: common mass nouns: they take no "a"
_MASS = {
    "water", "grass", "snow", "sand", "food", "rice", "bread", "cheese", "milk", "coffee", "tea", "juice",
    "wine", "beer", "meat", "hair", "furniture", "luggage", "money", "broccoli", "pasta", "spaghetti", "soup",
    "sugar", "salt", "ice", "smoke", "fog", "rain", "dirt", "mud", "gravel", "hay", "traffic", "clothing",
    "jewelry", "jewellery", "equipment", "lettuce", "spinach", "cereal", "yogurt", "butter", "chocolate",
    "honey", "foliage", "corn", "garbage", "trash", "steam", "cream", "popcorn", "oatmeal", "bacon", "beef",
    "pork", "ham", "lava", "sushi", "granola", "laundry", "fur", "wool", "cotton", "silk", "leather",
}  # fmt: skip


def looks_plural(word: str) -> bool:
    """Plural by spelling: "dogs", "men", "jeans" (not "bus", "glass", "lens", "tennis")."""
    low = word.lower()
    if low in _PLURALIA:
        return True
    if low in _SINGULAR_S or low.endswith(("ss", "us", "is")):
        return False
    single = singularize(low)
    return single != low and pluralize(single) == low


def _uncountable(word: str) -> bool:
    low = word.lower()
    return low in _MASS or low in _PLURALIA


#: words that end a label's (or an item's) head noun: "slices *of* cake", "men *in* green", "dog *with* a hat"
_AFTER_HEAD = {"of", "in", "with", "on", "at", "from", "for", "under", "over", "by", "near", "without", "behind",
               "inside", "wearing", "holding"}


def _head_index(words: Sequence[str]) -> int:
    """The index of the word that takes the number: the one before the first of :data:`_AFTER_HEAD` (not the
    first word), else the last."""
    for k in range(1, len(words) - 1):
        if words[k] in _AFTER_HEAD:
            return k - 1
    return len(words) - 1


@lru_cache(maxsize=4096)
def _label(short: str) -> tuple[tuple[str, ...], int]:
    """The short label's words (leading article dropped, lower-cased but for acronyms) and its head's index
    (:func:`_head_index`: "slices" of "slices of cake", "men" of "men in green")."""
    words = short.split()
    if len(words) > 1 and words[0].lower() in ("a", "an", "the"):
        words = words[1:]
    words = [w if w.isupper() and len(w) > 1 else w.lower() for w in words]
    return tuple(words), _head_index(words)


def _inflected(short: str, plural: bool) -> list[str]:
    """The short label's words with its head in the number of the phrase it replaces."""
    words, head = _label(short)
    words = list(words)
    if not words:
        return words
    word = words[head]
    if plural and not looks_plural(word):
        words[head] = pluralize(word)
    elif not plural and looks_plural(word) and word.lower() not in _PLURALIA:
        words[head] = singularize(word)
    return words


def counted(short: str) -> bool:
    """Whether the label states its own number ("three dogs", "a single cat", "2 cups"): it then replaces
    the caption's determiners and numbers too, and keeps its number."""
    from genemi.text.vocabulary import COUNT_WORDS

    words = short.lower().split()
    if len(words) > 1 and words[0] in ("a", "an"):
        words = words[1:]
    return len(words) > 1 and (words[0] in COUNT_WORDS or words[0].isdigit())


def with_article(short: str) -> str:
    """The short label as a noun phrase: "a bald eagle", "an owl", "cats", "water"."""
    words, head = _label(short)
    if not words:
        return ""
    if looks_plural(words[head]) or _uncountable(words[head]):
        return " ".join(words)
    return f"{indefinite_article(words[0])} {' '.join(words)}"


# --- finding the phrase -----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _item(item: str) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """(keys of the head noun, modifier words, words after the head such as ("of", "wine"))."""
    words = re.findall(r"[^\W_]+", item.lower())  # "t-shirt" -> "t", "shirt", like the tokenizers
    if not words:
        return frozenset(), frozenset(), ()
    h = _head_index(words)
    head = words[h]
    return frozenset({head, singularize(head)}), frozenset(words[:h]), tuple(words[h + 1 :])


def _keys(tok: Token) -> set[str]:
    low = tok.text.lower()
    return {low, tok.lemma or low, singularize(low)}


def _describes(toks: Sequence[Token], k: int, lo: int) -> bool:
    """Whether ``toks[k]`` is part of the description of the noun after it (not a determiner or count)."""
    tok = toks[k]
    low = tok.text.lower()
    if low in _KEEP:
        return False
    if tok.pos in ("CCONJ", "PUNCT"):  # "black and white", "big, fluffy", "t-shirt"
        if k <= lo:
            return False
        if low == "-" and not tok.ws and not toks[k - 1].ws:
            return True
        return low in ("and", "or", ",", "/") and toks[k - 1].pos in ("ADJ", "ADV") and toks[k + 1].pos == "ADJ"
    return tok.pos in ("ADJ", "NOUN", "PROPN", "VERB", "ADV", "X") and tok.tag != "POS"


def _is_modifier(toks: Sequence[Token], i: int) -> bool:
    """A noun modifying the next noun ("dog" in "dog bowl"): it does not name an item itself.

    Except where the parser took a verb for that noun: "a dog sleep on the bed" (after a determiner, the
    next word a known verb followed by a preposition, adverb, determiner, punctuation or nothing)."""
    if not (i + 1 < len(toks) and toks[i + 1].pos in _NOUNS):
        return False
    after = toks[i + 2] if i + 2 < len(toks) else None
    verb_like = verb_group(toks[i + 1].lemma) is not None and (after is None or after.pos in ("ADP", "ADV", "DET", "PUNCT"))
    return not (verb_like and i > 0 and toks[i - 1].pos == "DET")


def find_phrase(parsed: ParsedCaption, item: str) -> tuple[int, int, int] | None:
    """``(start, end, head)``: the tokens ``[start, end)`` describing ``item``, whose head noun is ``head``.

    Determiners, numbers and possessives before the description are not part of it. Among phrases with
    the item's head noun, the one sharing most of the item's modifiers wins (the first on ties).
    """
    heads, mods, tail = _item(item)
    if not heads:
        return None
    toks = parsed.tokens
    found: list[tuple[int, int]] = []  # (lowest start, head)
    for c in parsed.chunks:
        for i in range(c.start, c.end):
            if (i == c.root or toks[i].pos in _NOUNS and not _is_modifier(toks, i)) and _keys(toks[i]) & heads:
                found.append((c.start, i))
    if not found:  # a noun the parser left out of every chunk ("a red fire | hydrant"): with the chunk just before
        ends = {c.end: c.start for c in parsed.chunks}
        found = [(ends.get(i, i), i) for i, t in enumerate(toks)
                 if t.pos not in _NOT_HEAD and not _is_modifier(toks, i) and _keys(t) & heads]
    best, best_score = None, -1
    for lo, i in found:
        start = i
        while start > lo and _describes(toks, start - 1, lo):
            start -= 1
        end = i + 1
        if tail and [t.text.lower() for t in toks[end : end + len(tail)]] == list(tail):
            end += len(tail)
        score = 2 * sum(bool(_keys(toks[k]) & mods) for k in range(start, i)) + (end > i + 1)
        if score > best_score:
            best, best_score = (start, end, i), score
    return best


def _plural(tok: Token) -> bool:
    if tok.tag.startswith("NN"):
        return tok.tag in ("NNS", "NNPS")
    return tok.text.lower() != tok.lemma and looks_plural(tok.text)


@lru_cache(maxsize=1)
def _collective_words() -> frozenset[str]:
    from genemi.text.vocabulary import read_vocabulary_file

    return frozenset(read_vocabulary_file("non_objects.yaml")["collective"])


def _after_collective(toks: Sequence[Token], start: int) -> bool:
    """Whether the phrase at ``start`` follows "<collective word> of" ("a group of | sheep"): several of them."""
    return start >= 2 and toks[start - 1].text.lower() == "of" and toks[start - 2].lemma.lower() in _collective_words()


def _determined(tok: Token | None) -> bool:
    """Whether ``tok`` (the word before a phrase) determines it: an article, number, possessive or count word."""
    return tok is not None and (tok.pos in ("DET", "NUM") or tok.tag in ("PRP$", "POS", "WP$")
                                or tok.text.lower() in _KEEP)


# --- rewriting ---------------------------------------------------------------------------------------


def rewrite(parsed: ParsedCaption, item: str, short: str) -> str | None:
    """``parsed``'s text with the phrase naming ``item`` naming ``short`` instead; None if no phrase names it.

    Determiners and possessives stay; the label takes the phrase's number; "a"/"an" agree with the label (and are
    dropped before mass or plural-only labels); the label is lower-case unless it starts the caption. A variation
    repaints one grounded instance, so a phrase counting several ("two dogs", "3 cats") keeps the others and adds
    the label: "two dogs on a couch" -> "a dog and a bald eagle on a couch", "three red stars" -> "two red stars
    and a red triangle" (a label that states its own count replaces the number instead).
    """
    span = find_phrase(parsed, item)
    if span is None:
        return None
    start, end, head = span
    toks = parsed.tokens
    repl, first, det = {}, start, start - 1
    while det >= 0 and toks[det].pos == "SPACE":
        det -= 1
    own_count = counted(short)
    several = number_value(toks[det].text) if det >= 0 and toks[det].pos in ("NUM", "DET") else None
    if not own_count and several is not None and several >= 2 and _plural(toks[head]):
        return _one_of_several(parsed, (det, start, end, head), several, short)
    if own_count:  # "a red square" -> "three green squares": the label brings its own number
        words = [w if w.isupper() and len(w) > 1 else w.lower() for w in short.split()]
        while det >= 0 and (toks[det].pos in ("DET", "NUM") or toks[det].text.lower() in _KEEP):
            repl[det], first, det = "", det, det - 1
    else:
        words, label_head = list(_label(short)[0]), _label(short)[1]
        source = toks[head].text.lower()
        bare = not _determined(toks[det] if det >= 0 else None)
        plural = _plural(toks[head]) or (_after_collective(toks, start) and source not in _MASS)
        if source in _MASS and words and looks_plural(words[label_head]):
            plural = True  # "a field of grass" -> "a field of flowers": a mass noun takes a plural label as it is
        if bare and source in _PLURALIA and words and not _uncountable(words[label_head]):
            plural = False  # "wearing jeans" -> "wearing a skirt"
        words = _inflected(short, plural)
        after_of = start >= 1 and toks[start - 1].text.lower() == "of"  # "a bowl of soup" -> "of salad": mass
        if words and bare and not plural and not _uncountable(words[label_head]) and \
                (source in _PLURALIA or label_head < len(words) - 1 or (source in _MASS and not after_of)):
            words = [indefinite_article(words[0]), *words]  # "eating pizza" -> "eating a slice of pizza"
    if not words:
        return None
    if not own_count and det >= 0 and toks[det].text.lower() in ("a", "an"):
        if _uncountable(words[_label(short)[1]]):
            repl[det], first = "", det
        else:
            repl[det] = match_case(indefinite_article(words[0]), toks[det].text)
    label = " ".join(words)
    if first == 0:
        label = match_case(label, toks[0].text)
    # the phrase becomes one token (with the trailing whitespace of its last one), then render as usual
    merged = replace(toks[end - 1], text=label)
    return ParsedCaption(parsed.text, toks[:start] + (merged,) + toks[end:], ()).render(repl)


def _one_of_several(parsed: ParsedCaption, span: tuple[int, int, int, int], count: int, short: str) -> str:
    """The caption with the counted phrase at ``span`` (number token, phrase start, end, head) naming one
    instance fewer, then "and" and the label with its article: one of the ``count`` became ``short``."""
    number, start, end, head = span
    toks = parsed.tokens
    kept = [t.text for t in toks[start:end]]
    if count - 1 == 1:
        kept[head - start] = singularize(kept[head - start])
        kept = [indefinite_article(kept[0]), *kept]
    else:
        digits = toks[number].text.isdigit() or count - 1 >= len(NUMBER_WORDS)
        kept = [str(count - 1) if digits else NUMBER_WORDS[count - 1], *kept]
    label = f"{' '.join(kept)} and {with_article(' '.join(_inflected(short, False)))}"
    if number == 0:
        label = match_case(label, toks[0].text)
    merged = replace(toks[end - 1], text=label)
    return ParsedCaption(parsed.text, toks[:start] + (merged,) + toks[end:], ()).render({number: ""})


def fallback_caption_text(caption: str | None, short: str) -> str:
    """``"<caption> and <short with article>"`` (the caption's final punctuation kept at the end)."""
    phrase = with_article(short)
    if not caption or not caption.strip():
        return phrase
    caption = caption.strip()
    body = caption.rstrip(".!?")
    return f"{body.rstrip()} and {phrase}{caption[len(body):]}"


def rewrite_captions(parsed_captions: Sequence[ParsedCaption], item: str, short: str,
                     fallback_caption: str | None) -> tuple[list[str], bool]:
    """Every caption naming ``item``, rewritten for ``short`` (deduplicated, in order), and False.

    When none names it: ``["<fallback_caption> and <short>"]`` (``fallback_caption`` defaulting to the
    first caption; just the label with its article when there is no caption) and True.
    """
    out = [text for parsed in parsed_captions if (text := rewrite(parsed, item, short)) is not None]
    if out:
        return list(dict.fromkeys(out)), False
    if not fallback_caption and parsed_captions:
        fallback_caption = parsed_captions[0].text
    return [fallback_caption_text(fallback_caption, short)], True
