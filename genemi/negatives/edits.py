"""Compositional edits of a parsed caption, each a whole-token operation whose result differs from it.

Every edit returns the negative text or raises :class:`NotApplicable` with the reason (which becomes the
``reason`` of an invalid :class:`~genemi.records.TextNegative`). Randomness comes only
from the ``random.Random`` passed in, so a caption's negatives depend on (seed, caption id) alone.

Types (the original CE-CLIP four first, in its order ``[relation, adj, noun, verb]``):

==========================  ==========================================================================
``swap_obj``                exchange two noun phrases (CE-CLIP's "relation": it swapped two nouns)
``replace_att``             replace an adjective
``replace_obj``             replace a noun
``replace_act``             replace a verb
``replace_rel``             replace a spatial relation / preposition ("on" -> "under")
``swap_att``                exchange adjectives between two noun phrases (or move one to another)
``add_obj``                 add a noun phrase ("a man" -> "a man and a dog")
``add_att``                 add an adjective to a noun phrase ("a car" -> "a red car")
``change_count``            change how many there are ("two dogs" -> "three dogs", "a dog" -> "two dogs")
``shuffle_*``               NegCLIP/ARO word-order perturbations (see :mod:`genemi.text.order`)
==========================  ==========================================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from spacy.lang.en.stop_words import STOP_WORDS

from genemi.negatives.sources import ReplacementSource, Slot, noun_lemma, verb_lemma
from genemi.text import vocabulary as vocab
from genemi.text.inflection import NUMBER_WORDS, indefinite_article, match_case, pluralize, singularize
from genemi.text.order import ORDER_PERTURBATIONS
from genemi.text.parsing import ParsedCaption

#: CE-CLIP's four types, in the order of its ``valid_caption`` mask columns 1..4
ORIGINAL_TYPES = ("swap_obj", "replace_att", "replace_obj", "replace_act")
EDIT_TYPES = (ORIGINAL_TYPES + ("replace_rel", "swap_att", "add_obj", "add_att", "change_count")
              + tuple(ORDER_PERTURBATIONS))
#: named type sets accepted by ``--types``
TYPE_SETS = {
    "ceclip": ORIGINAL_TYPES,
    "sugarcrepe": ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att"),
    "order": tuple(ORDER_PERTURBATIONS),
    "all": EDIT_TYPES,
}

Pick = Literal["random", "first", "original"]
_PERSONAL = {"i", "you", "he", "she", "it", "we", "they", "someone", "something", "one"}


class NotApplicable(Exception):
    """The edit type does not apply to this caption (the message is the reason)."""


@dataclass
class EditContext:
    """What an edit needs besides the caption: the replacement sources and how to pick among candidates."""

    sources: Sequence[ReplacementSource]
    pick: Pick = "random"


# --- token pieces --------------------------------------------------------------------------------------


class Pieces:
    """A caption as editable ``[text, whitespace]`` pieces; :meth:`text` fixes articles and first-letter case."""

    def __init__(self, parsed: ParsedCaption):
        self.parsed = parsed
        self.items: list[list[str]] = [[t.text, t.ws] for t in parsed.tokens]
        self.changed: set[int] = set()  # positions (in items) whose word is new or moved

    def replace(self, start: int, end: int, text: str) -> None:
        ws = self.items[end - 1][1]
        self.items[start : end] = [[text, ws]]
        self.changed.add(start)

    def insert(self, at: int, text: str) -> None:
        self.items.insert(at, [text, " "])
        self.changed = {c + 1 if c >= at else c for c in self.changed} | {at}

    def text(self) -> str:
        items = [list(it) for it in self.items]
        for i in range(len(items) - 1):
            word = items[i][0]
            if word.lower() in ("a", "an") and (i + 1) in self.changed:
                items[i][0] = match_case(indefinite_article(items[i + 1][0]), word)
        if items and self.parsed.text[:1].isupper() and items[0][0][:1].islower():
            items[0][0] = items[0][0][:1].upper() + items[0][0][1:]
        return "".join(t + ws for t, ws in items).strip()


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _lower_first(text: str, tag: str) -> str:
    """Lower-case a sentence-initial word that moves elsewhere (not proper nouns or "I")."""
    if tag in ("NNP", "NNPS") or text == "I" or text.isupper() and len(text) > 1:
        return text
    return text[:1].lower() + text[1:]


# --- candidate selection -------------------------------------------------------------------------------


class _Present:
    """Nouns and adjectives already in the caption (computed once per slot choice)."""

    def __init__(self, parsed: ParsedCaption):
        self.nouns = {noun_lemma(t.text, t.tag) for t in parsed.tokens if t.pos in ("NOUN", "PROPN")}
        self.adjectives = {vocab.canonical_adjective(t.text) for t in parsed.tokens}


def _acceptable(candidate: str, slot: Slot, parsed: ParsedCaption, present: _Present) -> bool:
    cand = candidate.strip().lower()
    if not cand or not all(part.replace("-", "").isalpha() for part in cand.split()):
        return False
    if slot.kind in ("obj", "att", "act", "add_obj", "add_att") and cand in STOP_WORDS:
        return False
    word = slot.word.lower()
    if cand == word:
        return False
    if slot.kind == "obj" and noun_lemma(cand, slot.tag) == noun_lemma(word, slot.tag):
        return False
    if slot.kind == "act" and verb_lemma(cand) == verb_lemma(word, parsed.tokens[slot.start].lemma):
        return False
    if slot.kind in ("obj", "add_obj"):  # a word already in the caption makes a weak negative
        if cand in present.nouns or noun_lemma(cand, "NNS" if slot.plural else "NN") in present.nouns:
            return False
    if slot.kind in ("att", "add_att") and vocab.canonical_adjective(cand) in present.adjectives:
        return False
    return True


def choose(parsed: ParsedCaption, slot: Slot, ctx: EditContext, rng: random.Random) -> str | None:
    """The replacement for ``slot``: the first source with an acceptable candidate decides.

    ``random`` is uniform over the acceptable candidates (visited in a random order, so long lists are
    not filtered in full); ``first`` takes the best ranked; ``original`` the 4th ranked (CE-CLIP).
    """
    present = _Present(parsed)
    for source in ctx.sources:
        cands = list(dict.fromkeys(source.candidates(parsed, slot)))
        if ctx.pick == "random":
            for k in rng.sample(range(len(cands)), len(cands)):
                if _acceptable(cands[k], slot, parsed, present):
                    return cands[k]
            continue
        cands = [c for c in cands if _acceptable(c, slot, parsed, present)]
        if cands:
            return cands[0] if ctx.pick == "first" else cands[min(3, len(cands) - 1)]
    return None


# --- slot finding --------------------------------------------------------------------------------------


def _relation_spans(parsed: ParsedCaption) -> list[tuple[int, int]]:
    toks, spans, i = parsed.tokens, [], 0
    lowered = [t.text.lower() for t in toks]
    by_first = vocab.relation_phrases_by_first_word()
    while i < len(toks):
        for phrase in by_first.get(lowered[i], ()):
            n = len(phrase)
            if tuple(lowered[i : i + n]) == phrase:
                span = toks[i : i + n]
                if any(t.dep in ("prep", "advmod", "pcomp") or t.pos == "ADP" for t in span) and not any(
                    t.dep in ("prt", "agent", "dative") for t in span
                ):
                    spans.append((i, i + n))
                    i += n - 1
                break
        i += 1
    return spans


def _slots(parsed: ParsedCaption, kind: str) -> list[Slot]:
    toks = parsed.tokens
    if kind == "rel":
        return [Slot("rel", s, e, " ".join(t.text for t in toks[s:e]), toks[s].tag) for s, e in _relation_spans(parsed)]
    in_relation = {i for s, e in _relation_spans(parsed) for i in range(s, e)}
    pos = {"obj": ("NOUN",), "att": ("ADJ",), "act": ("VERB",)}[kind]
    return [
        Slot(kind, i, i + 1, t.text, t.tag)
        for i, t in enumerate(toks)
        if t.pos in pos and t.text.isalpha() and i not in in_relation and t.text.lower() not in _PERSONAL
    ]


_WHAT = {"obj": "noun", "att": "adjective", "act": "verb", "rel": "spatial relation"}


def _replace(kind: str) -> Callable[[ParsedCaption, random.Random, EditContext], str]:
    def edit(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
        slots = _slots(parsed, kind)
        if not slots:
            raise NotApplicable(f"no {_WHAT[kind]} in the caption")
        rng.shuffle(slots)
        for slot in slots:
            word = choose(parsed, slot, ctx, rng)
            if word is None:
                continue
            pieces = Pieces(parsed)
            pieces.replace(slot.start, slot.end, match_case(word, slot.word))
            text = pieces.text()
            if not _same(text, parsed.text):
                return text
        tried = ", ".join(sorted({s.word.lower() for s in slots}))
        raise NotApplicable(f"no replacement found for {_WHAT[kind]} ({tried})")

    edit.__name__ = f"replace_{kind}"
    return edit


# --- swaps and additions -------------------------------------------------------------------------------


def _object_chunks(parsed: ParsedCaption):
    """Noun phrases headed by a noun, excluding pronouns and nouns inside relations ("in *front* of")."""
    in_relation = {i for s, e in _relation_spans(parsed) for i in range(s, e)}
    return [c for c in parsed.chunks if parsed.tokens[c.root].pos in ("NOUN", "PROPN")
            and parsed.tokens[c.root].text.lower() not in _PERSONAL and c.root not in in_relation]


def _chunk_text(parsed: ParsedCaption, start: int, end: int) -> str:
    return "".join(t.text + t.ws for t in parsed.tokens[start:end]).strip()


def swap_obj(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
    chunks = _object_chunks(parsed)
    pairs = [(a, b) for i, a in enumerate(chunks) for b in chunks[i + 1 :]
             if not _same(_chunk_text(parsed, a.start, a.end), _chunk_text(parsed, b.start, b.end))]
    if not pairs:
        raise NotApplicable("fewer than two different noun phrases" if len(chunks) < 2 else "the noun phrases are identical")
    a, b = rng.choice(pairs)
    toks = parsed.tokens
    text_a, text_b = _chunk_text(parsed, a.start, a.end), _chunk_text(parsed, b.start, b.end)
    if a.start == 0:  # the phrase that leaves the sentence start loses its capital
        text_a = _lower_first(text_a, toks[a.start].tag)
    pieces = Pieces(parsed)
    pieces.replace(b.start, b.end, text_a)  # later span first: earlier indices stay valid
    pieces.replace(a.start, a.end, text_b)
    text = pieces.text()
    if _same(text, parsed.text):
        raise NotApplicable("swapping the noun phrases does not change the caption")
    return text


def _chunk_adjectives(parsed: ParsedCaption, chunk) -> list[int]:
    return [i for i in range(chunk.start, chunk.end) if parsed.tokens[i].pos == "ADJ" and parsed.tokens[i].text.isalpha()]


def swap_att(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
    chunks = _object_chunks(parsed)
    with_adj = [(c, _chunk_adjectives(parsed, c)) for c in chunks]
    toks = parsed.tokens
    swaps = [(i, j) for ci, ai in with_adj for cj, aj in with_adj if ci.start < cj.start
             for i in ai for j in aj if toks[i].text.lower() != toks[j].text.lower()]
    # adjectives of one kind change places (colour with colour: "a red cube and a blue ball" -> "a blue cube and a
    # red ball"); across kinds only when no pair shares one ("a big red cube" would become "a blue red cube")
    same = [(i, j) for i, j in swaps if (k := vocab.adjective_category(toks[i].text)) is not None
            and k == vocab.adjective_category(toks[j].text)]
    swaps = same or swaps
    if swaps:
        i, j = rng.choice(swaps)
        pieces = Pieces(parsed)
        pieces.replace(j, j + 1, toks[i].text.lower() if i == 0 else toks[i].text)
        pieces.replace(i, i + 1, toks[j].text)
        return pieces.text()
    # one phrase has an adjective and another has none: move it there
    moves = [(i, cj) for ci, ai in with_adj for cj, aj in with_adj if ci is not cj and not aj
             for i in ai if _movable_adjective(parsed, i)]
    if not moves:
        raise NotApplicable("needs two noun phrases of which at least one has an adjective")
    i, target = rng.choice(moves)
    adj = toks[i].text if i > 0 else toks[i].text.lower()
    at = _adjective_position(parsed, target)
    pieces = Pieces(parsed)
    pieces.items, pieces.changed = [], set()
    for k, tok in enumerate(toks):
        if k == at:
            pieces.changed.add(len(pieces.items))
            pieces.items.append([adj, " "])
        if k == i:  # drop the adjective; the word now after its article is "changed" (a/an fix)
            pieces.changed.add(len(pieces.items))
            continue
        pieces.items.append([tok.text, tok.ws])
    return pieces.text()


def _movable_adjective(parsed: ParsedCaption, i: int) -> bool:
    """A plain modifier, not part of a coordination ("white and black appliances")."""
    toks = parsed.tokens
    near = {toks[k].text.lower() for k in (i - 1, i + 1) if 0 <= k < len(toks)}
    return toks[i].dep == "amod" and not near & {"and", "or", ","}


def _adjective_position(parsed: ParsedCaption, chunk) -> int:
    """Where a new adjective goes: before the compound modifiers of the head noun ("a red tennis racket")."""
    at = chunk.root
    while at - 1 >= chunk.start and parsed.tokens[at - 1].dep == "compound":
        at -= 1
    return at


def add_obj(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
    chunks = _object_chunks(parsed)
    if not chunks:
        raise NotApplicable("no noun phrase to add an object to")
    chunk = rng.choice(chunks)
    slot = Slot("add_obj", chunk.end, chunk.end, "", "NN")
    noun = choose(parsed, slot, ctx, rng)
    if noun is None:
        raise NotApplicable("no object to add")
    pieces = Pieces(parsed)
    last = pieces.items[chunk.end - 1]
    pieces.items[chunk.end - 1] = [last[0], " "]
    pieces.items.insert(chunk.end, ["and", " "])
    pieces.items.insert(chunk.end + 1, [indefinite_article(noun), " "])
    pieces.items.insert(chunk.end + 2, [noun, last[1]])
    return pieces.text()


def add_att(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
    chunks = [c for c in _object_chunks(parsed) if parsed.tokens[c.root].pos == "NOUN"]
    if not chunks:
        raise NotApplicable("no noun phrase to add an attribute to")
    chunk = rng.choice(chunks)
    at = _adjective_position(parsed, chunk)
    slot = Slot("add_att", at, at, "", parsed.tokens[chunk.root].tag)
    # skip categories the phrase already has ("a red car" gets a material or size, not a second colour)
    have = {vocab.adjective_category(parsed.tokens[i].text) for i in _chunk_adjectives(parsed, chunk)}
    ctx_filtered = EditContext([_CategoryFilter(s, have) for s in ctx.sources], ctx.pick)
    adj = choose(parsed, slot, ctx_filtered, rng)
    if adj is None:
        raise NotApplicable("no attribute to add")
    pieces = Pieces(parsed)
    pieces.insert(at, adj if at > 0 else match_case(adj, parsed.tokens[0].text))
    if at == 0:
        pieces.items[1][0] = _lower_first(pieces.items[1][0], parsed.tokens[0].tag)
    return pieces.text()


#: number words a count edit reads and writes (it never writes "one": the noun would have to become singular)
_NUMBERS = NUMBER_WORDS[1:11]  # one ... ten
_PLURAL_FORMS = {"is": "are", "was": "were", "has": "have", "does": "do"}


def change_count(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
    """How many there are: a number word before a plural noun becomes another from two to six ("two dogs" -> "three
    dogs"); "a"/"an"/"one" before a singular countable noun becomes two or three of it ("a dog is running" ->
    "two dogs are running": the verb of which it is the subject agrees)."""
    toks = parsed.tokens
    options = []
    for chunk in _object_chunks(parsed):
        head = toks[chunk.root]
        if head.text.lower() in vocab.MASS_NOUNS or head.text.lower() in vocab.PLURALIA_TANTUM:
            continue
        for i in range(chunk.start, chunk.root):
            word = toks[i].text.lower()
            if word in _NUMBERS[1:] and head.tag == "NNS":
                options.append((i, chunk, False))
            elif word in ("a", "an", "one") and head.tag == "NN" and toks[i].dep in ("det", "nummod"):
                options.append((i, chunk, True))
    if not options:
        raise NotApplicable("no counted object (a number, or 'a' before a countable noun)")
    i, chunk, singular = rng.choice(options)
    current = toks[i].text.lower()
    new = rng.choice([n for n in (("two", "three") if singular else _NUMBERS[1:6]) if n != current])
    changes = {i: match_case(new, toks[i].text)}
    if singular:
        changes[chunk.root] = pluralize(toks[chunk.root].text)
        if toks[chunk.root].dep in ("nsubj", "nsubjpass"):  # its verb (and auxiliaries) agree with a plural
            verb = toks[chunk.root].head
            for k in [verb] + [k for k, t in enumerate(toks) if t.head == verb and t.dep in ("aux", "auxpass")]:
                word = toks[k].text.lower()
                if word in _PLURAL_FORMS:
                    changes[k] = match_case(_PLURAL_FORMS[word], toks[k].text)
                elif toks[k].tag == "VBZ":  # third person singular -> plural present (rides -> ride)
                    changes[k] = match_case(word[:-2] if word.endswith("oes") else singularize(word), toks[k].text)
    pieces = Pieces(parsed)
    for k in sorted(changes, reverse=True):  # later positions first: earlier indices stay valid
        pieces.replace(k, k + 1, changes[k])
    return pieces.text()


class _CategoryFilter:
    """Wraps a source to drop adjectives of categories a noun phrase already has."""

    def __init__(self, source: ReplacementSource, have: set[str | None]):
        self.source, self.have, self.name = source, have - {None}, source.name

    def prepare(self, requests) -> None:
        self.source.prepare(requests)

    def candidates(self, parsed, slot):
        return [c for c in self.source.candidates(parsed, slot) if vocab.adjective_category(c) not in self.have]


def _order(name: str) -> Callable[[ParsedCaption, random.Random, EditContext], str]:
    perturb = ORDER_PERTURBATIONS[name]

    def edit(parsed: ParsedCaption, rng: random.Random, ctx: EditContext) -> str:
        text = perturb(parsed, rng)
        if text is None:
            raise NotApplicable("too few words to reorder")
        return text

    edit.__name__ = name
    return edit


#: type -> edit(parsed, rng, ctx) -> negative text (raises NotApplicable)
EDITS: dict[str, Callable[[ParsedCaption, random.Random, EditContext], str]] = {
    "swap_obj": swap_obj,
    "replace_att": _replace("att"),
    "replace_obj": _replace("obj"),
    "replace_act": _replace("act"),
    "replace_rel": _replace("rel"),
    "swap_att": swap_att,
    "add_obj": add_obj,
    "add_att": add_att,
    "change_count": change_count,
    **{name: _order(name) for name in ORDER_PERTURBATIONS},
}


def replacement_slots(parsed: ParsedCaption, types: Sequence[str]) -> list[Slot]:
    """Every slot the ``replace_*`` types of ``types`` may query (for batched sources' ``prepare``)."""
    kinds = [t.split("_", 1)[1] for t in types if t.startswith("replace_")]
    return [slot for kind in kinds for slot in _slots(parsed, kind)]


def resolve_types(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"all"``, ``"ceclip"``, ``"sugarcrepe"``, ``"order"`` or a comma list of types / sets, deduplicated."""
    from genemi.errors import ConfigError

    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in (n.strip() for n in names if n.strip()):
        expanded = TYPE_SETS.get(name, (name,))
        for t in expanded:
            if t not in EDITS:
                raise ConfigError(f"unknown negative type {t!r}; types: {', '.join(EDIT_TYPES)}; sets: {', '.join(TYPE_SETS)}")
            if t not in out:
                out.append(t)
    if not out:
        raise ConfigError("no negative types selected")
    return tuple(out)
