"""Small English inflection rules for the vocabulary's words: plurals, verb forms, articles, casing.

Rules plus an irregular table cover the curated vocabulary exactly; other words get the regular rules.
"""

from __future__ import annotations

from functools import lru_cache

_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
    "goose": "geese", "tooth": "teeth", "foot": "feet", "sheep": "sheep", "deer": "deer", "fish": "fish",
    "knife": "knives", "leaf": "leaves", "shelf": "shelves", "wolf": "wolves", "calf": "calves",
    "loaf": "loaves", "half": "halves", "life": "lives", "wife": "wives", "ox": "oxen", "bus": "buses",
    "glass": "glasses", "ski": "skis", "taxi": "taxis", "pony": "ponies", "puppy": "puppies",
    "baby": "babies", "lady": "ladies", "city": "cities", "tomato": "tomatoes", "potato": "potatoes",
    "tray": "trays", "toy": "toys", "boy": "boys", "guy": "guys", "key": "keys", "monkey": "monkeys",
}  # fmt: skip
_IRREGULAR_SINGULARS = {v: k for k, v in _IRREGULAR_PLURALS.items() if v != k}

#: base -> (3rd person singular, past, present participle, past participle)
_IRREGULAR_VERBS = {
    "sit": ("sits", "sat", "sitting", "sat"), "stand": ("stands", "stood", "standing", "stood"),
    "lie": ("lies", "lay", "lying", "lain"), "lay": ("lays", "laid", "laying", "laid"),
    "kneel": ("kneels", "knelt", "kneeling", "knelt"), "run": ("runs", "ran", "running", "run"),
    "ride": ("rides", "rode", "riding", "ridden"), "drive": ("drives", "drove", "driving", "driven"),
    "swim": ("swims", "swam", "swimming", "swum"), "fly": ("flies", "flew", "flying", "flown"),
    "hold": ("holds", "held", "holding", "held"), "throw": ("throws", "threw", "throwing", "thrown"),
    "catch": ("catches", "caught", "catching", "caught"), "hit": ("hits", "hit", "hitting", "hit"),
    "swing": ("swings", "swung", "swinging", "swung"), "cut": ("cuts", "cut", "cutting", "cut"),
    "eat": ("eats", "ate", "eating", "eaten"), "drink": ("drinks", "drank", "drinking", "drunk"),
    "bite": ("bites", "bit", "biting", "bitten"), "read": ("reads", "read", "reading", "read"),
    "sleep": ("sleeps", "slept", "sleeping", "slept"), "wear": ("wears", "wore", "wearing", "worn"),
    "sell": ("sells", "sold", "selling", "sold"), "buy": ("buys", "bought", "buying", "bought"),
    "sing": ("sings", "sang", "singing", "sung"), "feed": ("feeds", "fed", "feeding", "fed"),
    "drop": ("drops", "dropped", "dropping", "dropped"), "grab": ("grabs", "grabbed", "grabbing", "grabbed"),
    "pet": ("pets", "petted", "petting", "petted"), "show": ("shows", "showed", "showing", "shown"),
    "ski": ("skis", "skied", "skiing", "skied"), "get": ("gets", "got", "getting", "gotten"),
    "put": ("puts", "put", "putting", "put"), "make": ("makes", "made", "making", "made"),
    "take": ("takes", "took", "taking", "taken"), "go": ("goes", "went", "going", "gone"),
    "see": ("sees", "saw", "seeing", "seen"), "fix": ("fixes", "fixed", "fixing", "fixed"),
    "wash": ("washes", "washed", "washing", "washed"), "brush": ("brushes", "brushed", "brushing", "brushed"),
    "push": ("pushes", "pushed", "pushing", "pushed"), "cross": ("crosses", "crossed", "crossing", "crossed"),
    "watch": ("watches", "watched", "watching", "watched"), "crouch": ("crouches", "crouched", "crouching", "crouched"),
}  # fmt: skip

#: number words by value ("zero" = 0 ... "twelve" = 12)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve")


def number_value(word: str) -> int | None:
    """The value of a number word or of digits ("three" -> 3, "12" -> 12), else None."""
    low = word.lower()
    if low.isdigit():
        return int(low)
    return NUMBER_WORDS.index(low) if low in NUMBER_WORDS else None


#: Penn tag -> index into (base, 3sg, past, participle, past participle)
_TAG_FORM = {"VB": 0, "VBP": 0, "VBZ": 1, "VBD": 2, "VBG": 3, "VBN": 4}
_VOWELS = set("aeiou")


def pluralize(noun: str) -> str:
    low = noun.lower()
    if low in _IRREGULAR_PLURALS:
        return match_case(_IRREGULAR_PLURALS[low], noun)
    if low.endswith(("s", "x", "z", "ch", "sh")):
        plural = low + "es"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in _VOWELS:
        plural = low[:-1] + "ies"
    else:
        plural = low + "s"
    return match_case(plural, noun)


def singularize(noun: str) -> str:
    low = noun.lower()
    if low in _IRREGULAR_SINGULARS:
        return match_case(_IRREGULAR_SINGULARS[low], noun)
    if low.endswith("ies") and len(low) > 4:
        return match_case(low[:-3] + "y", noun)
    if low.endswith(("ches", "shes", "sses", "xes", "zes")):
        return match_case(low[:-2], noun)
    if low.endswith("s") and not low.endswith("ss") and len(low) > 2:
        return match_case(low[:-1], noun)
    return noun


def _doubles_final(base: str) -> bool:
    """Consonant-vowel-consonant monosyllables double their last letter (run -> running)."""
    if len(base) < 3 or base[-1] in _VOWELS or base[-1] in "wxy":
        return False
    vowels = [c for c in base if c in _VOWELS]
    return len(vowels) == 1 and base[-2] in _VOWELS and base[-3] not in _VOWELS


@lru_cache(maxsize=4096)
def verb_forms(base: str) -> tuple[str, str, str, str, str]:
    """(base, 3rd singular, past, present participle, past participle)."""
    base = base.lower()
    if base in _IRREGULAR_VERBS:
        return (base, *_IRREGULAR_VERBS[base])
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2:-1] not in _VOWELS:
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        stem_ing, past = base[:-1] + "ing", base + "d"
    elif base.endswith("ie"):
        stem_ing, past = base[:-2] + "ying", base + "d"
    elif _doubles_final(base):
        stem_ing, past = base + base[-1] + "ing", base + base[-1] + "ed"
    elif base.endswith("y") and base[-2:-1] not in _VOWELS:
        stem_ing, past = base + "ing", base[:-1] + "ied"
    else:
        stem_ing, past = base + "ing", base + "ed"
    return base, third, past, stem_ing, past


def inflect_verb(base: str, tag: str) -> str:
    """The form of ``base`` that fills a slot with Penn tag ``tag`` (VB, VBZ, VBD, VBG, VBN, VBP)."""
    return verb_forms(base)[_TAG_FORM.get(tag, 0)]


def verb_base(word: str, verbs: tuple[str, ...]) -> str | None:
    """The base form among ``verbs`` of which ``word`` is an inflection, if any."""
    low = word.lower()
    for base in verbs:
        if low in verb_forms(base):
            return base
    return None


#: initials read with a vowel sound: "an SUV", "an MRI", "an X-ray"
_VOWEL_LETTERS = "AEFHILMNORSX"


def indefinite_article(word: str) -> str:
    """'an' before a vowel sound (approximated by spelling, with the common exceptions; an acronym by the sound
    of its first letter's name), else 'a'."""
    letters = word.split("-")[0]
    if len(letters) > 1 and letters.isupper() and letters.isalpha():
        return "an" if letters[0] in _VOWEL_LETTERS else "a"
    low = word.lower()
    if low.startswith(("uni", "use", "usu", "eu", "one", "uk")):
        return "a"
    if low.startswith(("hour", "honest", "heir")):
        return "an"
    return "an" if low[:1] in _VOWELS else "a"


def match_case(word: str, like: str) -> str:
    """``word`` cased like ``like`` (UPPER, Capitalised or as is)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
