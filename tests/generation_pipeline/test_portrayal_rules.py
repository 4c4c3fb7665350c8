"""Portrayals: the rules backend, the shared vocabulary tables, the LLM answer parser and the prompt files.

Every expected value here is written by hand (word sets, parsed pairs), never computed by the code under test.
"""

from typing import get_args

import pytest

from genemi.errors import ConfigError
from genemi.generation_pipeline.portrayal.answers import format_request, load_instructions, parse_answer
from genemi.generation_pipeline.portrayal.base import PORTRAYERS, PortrayalRequest, slugify
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.portrayal.rules import RulesPortrayer, portray_item
from genemi.generation_pipeline.stage import StageContext
from genemi.records import EditKind
from genemi.text import vocabulary as vocab

COCO = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
TAGS = ("sky", "grass", "water", "tree", "building", "road", "table", "food", "flower", "shirt", "hat", "wall",
        "floor", "window", "plate", "sign", "street", "field", "snow", "beach", "cloud", "people", "man")

# independently written expectations: what an item of each family may become in a category swap
ANIMALS = {
    "dog", "cat", "horse", "cow", "sheep", "elephant", "bear", "zebra", "giraffe", "bird", "duck", "goat", "pig",
    "lion", "tiger", "monkey", "deer", "rabbit", "squirrel", "fox", "chicken", "pigeon", "seagull", "owl",
    "parrot", "camel", "panda", "wolf", "eagle", "swan", "goose", "fish", "turtle", "frog", "kangaroo",
    "penguin", "butterfly", "hamster", "mouse", "donkey", "llama", "leopard", "cheetah", "rhino", "hippo",
}  # fmt: skip
VEHICLES = {
    "car", "truck", "bus", "bicycle", "motorcycle", "train", "boat", "airplane", "scooter", "van", "tractor",
    "helicopter", "trolley", "cart", "tram", "ship", "taxi", "jeep", "bike", "wagon", "ambulance",
}  # fmt: skip
FOOD = {
    "pizza", "sandwich", "hot dog", "burger", "salad", "pasta", "steak", "egg", "soup", "sushi", "taco", "fries",
    "rice", "sausage", "cheese", "meat", "banana", "apple", "orange", "lemon", "strawberry", "grape",
    "pineapple", "watermelon", "cherry", "peach", "pear", "lime", "mango", "coconut", "broccoli", "carrot",
    "tomato", "potato", "onion", "pepper", "cucumber", "lettuce", "mushroom", "corn", "cabbage", "eggplant",
    "cauliflower", "pumpkin", "zucchini", "cake", "donut", "cookie", "pie", "muffin", "cupcake", "bread",
    "croissant", "bagel", "pancake", "waffle", "ice cream", "chocolate", "brownie", "candy",
}  # fmt: skip
FURNITURE = {
    "chair", "couch", "sofa", "bed", "dining table", "table", "bench", "desk", "shelf", "stool", "cabinet",
    "dresser", "bookcase", "wardrobe", "ottoman", "crib", "armchair",
}  # fmt: skip
FAMILIES = {
    "animal": (ANIMALS, ("dog", "cat", "horse", "bird", "elephant", "zebra", "giraffe", "sheep", "cow", "bear")),
    "vehicle": (VEHICLES, ("car", "bus", "truck", "bicycle", "motorcycle", "airplane", "train", "boat")),
    "food": (FOOD, ("banana", "apple", "orange", "broccoli", "carrot", "pizza", "hot dog", "sandwich", "donut",
                    "cake")),
    "furniture": (FURNITURE, ("chair", "couch", "bed", "dining table", "bench")),
}
ATTRIBUTE_KINDS = {"material", "texture", "size", "count"}


def words(short):
    return short.split()


def check_valid(result, k):
    assert result.error is None, result.error
    shorts = [p.short for p in result.portrayals]
    assert len(shorts) == k and len(set(shorts)) == k, shorts
    for p in result.portrayals:
        assert p.prompt.strip() and p.short.strip() and 1 <= len(words(p.short)) <= 4, p
    return shorts


def request(key, items, seed=0, k=4):
    return PortrayalRequest(key=key, items=tuple(items), caption=None, k=k, seed=seed)


@pytest.fixture(scope="module")
def rules():
    return RulesPortrayer(PortrayConfig(), StageContext())


# --- rules backend ---------------------------------------------------------------------------------------


def test_registry_builds_rules_and_check_loads_wordnet(rules):
    built = PORTRAYERS.build("rules", PortrayConfig(), StageContext())
    assert isinstance(built, RulesPortrayer) and built.name == "rules"
    built.check()
    built.load()
    built.offload()
    with pytest.raises(ConfigError):
        RulesPortrayer(PortrayConfig(num_portrayals=0), StageContext()).check()


def test_same_seed_same_output_and_other_seeds_change_picks(rules):
    items = ("dog", "red car", "pizza", "chair", "teddy bear", "sky", "bottle", "man", "gizmo", "tree")
    first = rules.portray([request("a.jpg", items, seed=3)])
    again = rules.portray([request("a.jpg", items, seed=3)])
    assert first == again
    other = rules.portray([request("a.jpg", items, seed=4)])
    changed = [i for i in items if first[0][i].portrayals != other[0][i].portrayals]
    assert len(changed) >= 3, changed


def test_result_independent_of_what_shares_the_call(rules):
    alone = rules.portray([request("img/1.jpg", ["dog"], seed=5)])[0]["dog"]
    crowded = rules.portray([
        request("img/0.jpg", ["cat", "dog", "sofa"], seed=5),
        request("img/1.jpg", ["pizza", "dog", "gizmo", "sky"], seed=5),
    ])  # fmt: skip
    assert crowded[1]["dog"] == alone
    assert set(crowded[0]) == {"cat", "dog", "sofa"} and set(crowded[1]) == {"pizza", "dog", "gizmo", "sky"}


@pytest.mark.parametrize("item", COCO)
def test_every_coco_category_gets_four_portrayals(rules, item):
    for seed in (0, 1):
        result = rules.portray([request("coco.jpg", [item], seed=seed)])[0][item]
        check_valid(result, 4)
        kinds = [p.kind for p in result.portrayals]
        assert kinds[:3] == ["category", "synonym", "colour"] and kinds[3] in ATTRIBUTE_KINDS, (item, kinds)
        assert result.note is None


def test_coco_list_is_complete_and_tags_are_known():
    assert len(set(COCO)) == 80
    for item in (*COCO, *TAGS):
        assert vocab.split_item(item).entry is not None, item


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_category_swaps_stay_in_the_family(rules, family):
    expected, items = FAMILIES[family]
    for item in items:
        for seed in range(8):
            result = rules.portray([request(f"{seed}.jpg", [item], seed=seed, k=8)])[0][item]
            swaps = [p.short for p in result.portrayals if p.kind == "category"]
            assert swaps and all(s in expected for s in swaps), (item, swaps)


def test_colour_edit_names_the_colour_in_both_texts(rules):
    colours = {"red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
               "silver", "golden", "teal", "cream", "tan", "turquoise"}
    for item in ("car", "dog", "cup", "sky", "grass", "man"):
        for seed in range(5):
            p = next(p for p in portray_item(item, 4, seed).portrayals if p.kind == "colour")
            named = [w for w in words(p.short) if w in colours]
            assert len(named) == 1 and named[0] in p.prompt and p.short in p.prompt, p


def test_modifiers_kept_and_colour_replaced():
    for seed in range(6):
        by_kind = {p.kind: p.short for p in portray_item("red car", 4, seed).portrayals}
        assert by_kind["category"].startswith("red ") and by_kind["synonym"].startswith("red ")
        assert by_kind["colour"].endswith(" car") and "red" not in words(by_kind["colour"])


def test_plural_items_keep_their_number():
    plural_vehicles = {"trucks", "buses", "bicycles", "motorcycles", "trains", "boats", "airplanes", "scooters",
                       "vans", "tractors", "helicopters", "trolleys", "carts"}
    for seed in range(6):
        for p in portray_item("red cars", 4, seed).portrayals:
            if p.kind == "category":
                assert p.short.startswith("red ") and p.short[4:] in plural_vehicles, p
            elif p.kind != "count":
                assert p.short.endswith("s"), p
        for item in ("teddy bears", "wine glasses", "skis", "dogs"):
            for p in portray_item(item, 4, seed).portrayals:
                if p.kind in ("synonym", "colour") or (p.kind == "category" and item != "dogs"):
                    assert p.short.endswith("s"), (item, p)
                if p.kind == "count":
                    assert words(p.short)[0] in ("a", "one"), (item, p)


def test_people_and_dogs_become_plural_people_and_animals():
    for seed in range(6):
        swap = next(p.short for p in portray_item("people", 4, seed).portrayals if p.kind == "category")
        assert swap in {"men", "women", "boys", "girls", "children", "babies", "players", "skiers", "surfers",
                        "skateboarders", "chefs", "soldiers", "workers", "tourists", "police officers", "doctors",
                        "firefighters", "farmers"}, swap
        swap = next(p.short for p in portray_item("dogs", 4, seed).portrayals if p.kind == "category")
        assert swap not in ANIMALS or swap in {"sheep", "deer", "fish"}, swap


def test_unknown_item_falls_back_to_attribute_edits(rules):
    result = rules.portray([request("x.jpg", ["gizmo"], seed=2)])[0]["gizmo"]
    shorts = check_valid(result, 4)
    assert [p.kind for p in result.portrayals] == ["colour", "material", "size", "texture"]
    assert all(s.endswith(" gizmo") for s in shorts)
    assert result.note and "gizmo" in result.note
    plural = portray_item("shiny gizmos", 4, 0)
    assert all(s.endswith(" gizmos") for s in check_valid(plural, 4)) and plural.note


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_any_k_gives_unique_shorts(k):
    cycle = ["category", "synonym", "colour"]
    for item in ("dog", "red car", "scissors", "sky", "hot dog", "gizmo", "teddy bears", "person"):
        for seed in range(3):
            result = portray_item(item, k, seed)
            check_valid(result, k)
            kinds = [p.kind for p in result.portrayals]
            if item != "gizmo":
                assert kinds[: min(k, 3)] == cycle[: min(k, 3)]
                if k >= 5:
                    assert kinds[4] == "category"


def test_large_k_reaches_wordnet_synonyms():
    result = portray_item("sheep", 16, 0)
    check_valid(result, 16)
    synonyms = [p.short for p in result.portrayals if p.kind == "synonym"]
    assert len(synonyms) == 4 and {"lamb", "ram", "ewe"} <= set(synonyms)


@pytest.mark.parametrize("item, k, kind, message", [
    ("dog", 0, "bad_k", "K must be >= 1, got 0"),
    ("!!!", 4, "empty_item", "no words in '!!!'"),
    ("red", 4, "not_a_noun", "item 'red' names an attribute, not a thing to repaint"),
    ("gizmo", 40, "too_few", "distinct portrayals of 'gizmo', 40 asked"),
])
def test_bad_inputs_fail_softly_saying_why(rules, item, k, kind, message):
    result = portray_item(item, k, 0)
    assert result.portrayals == [] or not result.portrayals
    assert (result.error.stage, result.error.type) == ("portray", kind) and message in result.error.message
    # through the backend: the bad item fails alone, its neighbour in the same request is portrayed
    batch = rules.portray([request("img.jpg", [item, "dog"], k=k)])[0]
    assert batch[item].error == result.error and not batch[item].portrayals
    if k >= 1:
        assert batch["dog"].error is None and len(batch["dog"].portrayals) == k


# --- vocabulary ------------------------------------------------------------------------------------------


def test_vocabulary_tables_are_consistent():
    bases = {b for pool in vocab.PORTRAY_NOUNS.values() for b in pool}
    for category, pool in vocab.PORTRAY_NOUNS.items():
        assert category in vocab.PORTRAY_PROFILES, category
        assert len(vocab.swap_pool(category)) >= 4, category
        for base, synonyms in pool.items():
            assert len(synonyms) >= 2, base
            assert not set(synonyms) & bases, (base, set(synonyms) & bases)
    for noun in vocab.all_nouns():  # every noun `genemi negatives` knows is portrayable too
        assert vocab.noun_entry(noun) is not None, noun


@pytest.mark.parametrize("item, short, kind", [
    ("dog", "cat", "category"), ("dog", "puppy", "synonym"), ("car", "red car", "colour"),
    ("red car", "red truck", "category"), ("chair", "wooden chair", "material"), ("dog", "fluffy dog", "texture"),
    ("dog", "huge dog", "size"), ("dog", "two dogs", "count"), ("dogs", "a single dog", "count"),
    ("dog", "car", "other"), ("banana", "pizza", "category"), ("gizmo", "blue gizmo", "colour"),
    ("man", "man in red", "colour"), ("bird", "bald eagle", "category"), ("bird", "sparrow", "synonym"),
    ("teddy bears", "stuffed animals", "synonym"), ("dog", "dog", "other"),
])  # fmt: skip
def test_classify_edit(item, short, kind):
    assert vocab.classify_edit(item, short) == kind


# --- slugs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("short", ["../evil", "/etc/passwd", "a\x00b", "x" * 500, "..", "../../..", "..\\win",
                                   "C:\\Windows", "~/.ssh", "", "\x00", "  /  "])
def test_slugs_of_hostile_shorts_are_safe(short):
    slug = slugify(short)
    assert slug and len(slug) <= 48
    assert "/" not in slug and "\\" not in slug and ".." not in slug and "\x00" not in slug and "." not in slug


def test_rules_shorts_make_distinct_slugs():
    result = portray_item("hot dog", 6, 0)
    assert len({slugify(p.short) for p in result.portrayals}) == 6


# --- answer parser -----------------------------------------------------------------------------------------

ANSWERS = [
    (  # 0: the original layout
        "Bird:\n"
        "1) a majestic bald eagle with white head feathers, photo (bald eagle)\n"
        "2) a small brown sparrow sitting on a twig, photo (brown sparrow)\n"
        "3) a blue bird with bright blue wings, photo (blue bird)\n"
        "4) a colourful parrot with long tail feathers, photo (colourful parrot)\n"
        "Tree:\n"
        "1) a tall palm tree with green fronds, photo (palm tree)\n"
        "2) a leafy oak tree in summer, photo (oak tree)\n"
        "3) a red maple tree in autumn, photo (red maple tree)\n"
        "4) a flowering cherry tree with pink blossoms, photo (cherry tree)\n",
        ["bird", "tree"], 4,
        {"bird": ["bald eagle", "brown sparrow", "blue bird", "colourful parrot"],
         "tree": ["palm tree", "oak tree", "red maple tree", "cherry tree"]},
    ),
    (  # 1: "1." numbering, bold header, blank lines, prose before and after
        "Here are the portrayals you asked for:\n\n**Dog:**\n\n"
        "1. A fluffy white cat curled up asleep (white cat)\n"
        "2. A beagle puppy with floppy ears (beagle puppy)\n\n"
        "3. A golden dog with a shiny coat (golden dog)\n"
        "4. A dog wearing a red knitted sweater (dog in sweater)\n\n"
        "Let me know if you need more!\n",
        ["dog"], 4, {"dog": ["white cat", "beagle puppy", "golden dog", "dog in sweater"]},
    ),
    (  # 2: items in another order, upper-case headers without colon
        "TRUCK\n"
        "1) a big red fire engine with ladders (fire engine)\n"
        "2) a pickup truck with a wooden bed (pickup truck)\n"
        "3) a blue truck parked by the road (blue truck)\n"
        "4) a rusty old truck in a field (rusty truck)\n"
        "CAR\n"
        "1) a yellow school bus (school bus)\n"
        "2) a sleek sports car (sports car)\n"
        "3) a green car with tinted windows (green car)\n"
        "4) a tiny toy car on the asphalt (toy car)\n",
        ["car", "truck"], 4,
        {"car": ["school bus", "sports car", "green car", "toy car"],
         "truck": ["fire engine", "pickup truck", "blue truck", "rusty truck"]},
    ),
    (  # 3: "(1)" numbering, plural/singular header differences
        "Horses:\n"
        "(1) a zebra grazing on dry grass (zebra)\n"
        "(2) a shetland pony with a thick mane (shetland pony)\n"
        "(3) a black horse with a white blaze (black horse)\n"
        "(4) a horse covered in mud (muddy horse)\n"
        "Cow:\n"
        "(1) a herd of sheep (sheep)\n"
        "(2) a pair of oxen pulling a plough (oxen)\n"
        "(3) brown cows in a meadow (brown cows)\n"
        "(4) cows with spotted coats (spotted cows)\n",
        ["horse", "cows"], 4,
        {"horse": ["zebra", "shetland pony", "black horse", "muddy horse"],
         "cows": ["sheep", "oxen", "brown cows", "spotted cows"]},
    ),
    (  # 4: "1 -" numbering, missing closing brackets
        "Pizza:\n"
        "1 - a cheeseburger with melted cheese (cheeseburger\n"
        "2 - a flatbread topped with herbs (flatbread)\n"
        "3 - a pizza with a green crust (green pizza\n"
        "4 - a pizza cut into small slices (sliced pizza)\n",
        ["pizza"], 4, {"pizza": ["cheeseburger", "flatbread", "green pizza", "sliced pizza"]},
    ),
    (  # 5: short after a dash, colon or long dash instead of brackets
        "Bird:\n"
        "1) A bald eagle on a branch - bald eagle\n"
        "2) a pigeon pecking at crumbs: pigeon\n"
        "3) a yellow canary in a cage \u2013 yellow canary\n"
        "4) an owl with huge eyes \u2014 barn owl\n",
        ["bird"], 4, {"bird": ["bald eagle", "pigeon", "yellow canary", "barn owl"]},
    ),
    (  # 6: "-" bullets, short first then colon
        "Bird:\n"
        "- bald eagle: a majestic eagle with white head feathers\n"
        "- robin: a robin with an orange breast on a fence\n"
        "- red bird: a bright red bird on a wire\n"
        "- crow: a crow standing in the snow\n",
        ["bird"], 4, {"bird": ["bald eagle", "robin", "red bird", "crow"]},
    ),
    (  # 7: JSON object keyed by item, in a fence, with prose
        'Here is the JSON:\n```json\n{\n  "cat": [\n'
        '    {"description": "a small grey rabbit sitting still", "short": "grey rabbit"},\n'
        '    {"description": "a tabby kitten playing", "short": "tabby kitten"},\n'
        '    {"long": "an orange cat lying in the sun", "label": "orange cat"},\n'
        '    {"prompt": "a long-haired cat", "short": "long-haired cat"}\n  ],\n  "sofa": [\n'
        '    {"description": "a wooden rocking chair", "short": "rocking chair"},\n'
        '    {"description": "a leather couch", "short": "leather couch"},\n'
        '    {"description": "a purple sofa with cushions", "short": "purple sofa"},\n'
        '    {"description": "a tiny doll sofa", "short": "tiny sofa"}\n  ]\n}\n```\nDone.\n',
        ["cat", "sofa"], 4,
        {"cat": ["grey rabbit", "tabby kitten", "orange cat", "long-haired cat"],
         "sofa": ["rocking chair", "leather couch", "purple sofa", "tiny sofa"]},
    ),
    (  # 8: JSON list of objects with an item key, trailing comma, capitalised item
        '[\n  {"item": "Cup", "portrayals": [\n'
        '     {"description": "a glass jar of honey", "short": "glass jar"},\n'
        '     {"description": "a porcelain teacup", "short": "teacup"},\n'
        '     {"description": "a red cup", "short": "red cup"},\n'
        '     {"description": "a paper cup", "short": "paper cup"},\n  ]},\n'
        '  {"item": "table", "portrayals": [\n'
        '     {"description": "a park bench", "short": "park bench"},\n'
        '     {"description": "a kitchen table", "short": "kitchen table"},\n'
        '     {"description": "a green table", "short": "green table"},\n'
        '     {"description": "a glass table", "short": "glass table"}\n  ]}\n]\n',
        ["cup", "table"], 4,
        {"cup": ["glass jar", "teacup", "red cup", "paper cup"],
         "table": ["park bench", "kitchen table", "green table", "glass table"]},
    ),
    (  # 9: more lines than asked, a duplicate
        "Umbrella:\n"
        "1) a beach parasol with stripes (parasol)\n"
        "2) a beach parasol, striped (parasol)\n"
        "3) a black umbrella opened wide (black umbrella)\n"
        "4) a paper umbrella from japan (paper umbrella)\n"
        "5) a golf umbrella (golf umbrella)\n",
        ["umbrella"], 3, {"umbrella": ["parasol", "black umbrella", "paper umbrella"]},
    ),
    (  # 10: no numbering at all
        "Banana:\n"
        "a ripe yellow mango (mango)\n"
        "a plantain on a plate (plantain)\n"
        "a purple banana (purple banana)\n"
        "a sliced banana (sliced banana)\n",
        ["banana"], 4, {"banana": ["mango", "plantain", "purple banana", "sliced banana"]},
    ),
    (  # 11: one item, no header, an introduction
        'Okay, here are 4 portrayals for the word "clock":\n'
        "1) a round wall clock with roman numerals (wall clock)\n"
        "2) an hourglass with falling sand (hourglass)\n"
        "3) a red alarm clock (red alarm clock)\n"
        "4) a clock made of wood (wooden clock)\n",
        ["clock"], 4, {"clock": ["wall clock", "hourglass", "red alarm clock", "wooden clock"]},
    ),
    (  # 12: "Word 1: bird" header, labelled long/short on one line
        "Word 1: bird\n"
        "1. Long: a majestic bald eagle perched high. Short: bald eagle\n"
        "2. Long: a hummingbird hovering near a flower, Short: hummingbird\n"
        "3. Long: a pink flamingo standing on one leg; Short: pink flamingo\n"
        "4. Long: a bird with fluffy feathers | Short: fluffy bird\n",
        ["bird"], 4, {"bird": ["bald eagle", "hummingbird", "pink flamingo", "fluffy bird"]},
    ),
    (  # 13: description and short on separate lines
        "Kite:\n"
        "1. Description: a red box kite flying high\n   Short: red box kite\n"
        "2. Description: a paper airplane gliding\n   Short: paper airplane\n"
        "3. Description: a yellow kite with a long tail\n   Short: yellow kite\n"
        "4. Description: a huge kite shaped like a dragon\n   Short: dragon kite\n",
        ["kite"], 4, {"kite": ["red box kite", "paper airplane", "yellow kite", "dragon kite"]},
    ),
    (  # 14: markdown heading, "*" bullets, a header with its first line on the same line
        "### Laptop\n"
        "* a thin tablet computer with a keyboard case (tablet)\n"
        "* a notebook computer with a silver lid (notebook computer)\n"
        "* a pink laptop with stickers (pink laptop)\n"
        "* a wooden laptop made of bamboo (bamboo laptop)\n"
        "Phone: 1) a vintage rotary telephone (rotary telephone)\n"
        "2) a smartphone with a cracked screen (smartphone)\n"
        "3) a gold phone with a shiny case (gold phone)\n"
        "4) a huge phone the size of a book (huge phone)\n",
        ["laptop", "phone"], 4,
        {"laptop": ["tablet", "notebook computer", "pink laptop", "bamboo laptop"],
         "phone": ["rotary telephone", "smartphone", "gold phone", "huge phone"]},
    ),
    (  # 15: JSON wrapped in another object, one object per portrayal
        '{"portrayals": [\n'
        ' {"item": "boat", "long": "a red canoe on a lake", "short": "red canoe"},\n'
        ' {"item": "boat", "long": "a sailboat", "short": "sailboat"},\n'
        ' {"item": "boat", "long": "a jet ski", "short": "jet ski"},\n'
        ' {"item": "boat", "long": "a wooden boat", "short": "wooden boat"}\n]}',
        ["boat"], 4, {"boat": ["red canoe", "sailboat", "jet ski", "wooden boat"]},
    ),
    (  # 16: CRLF line ends, "1:" numbering, quotes and a period after the bracket
        'Bottle:\r\n1: "a glass vase with flowers" (glass vase).\r\n2: a thermos flask (thermos).\r\n'
        "3: a green bottle (green bottle).\r\n4: a tiny bottle (tiny bottle).\r\n",
        ["bottle"], 4, {"bottle": ["glass vase", "thermos", "green bottle", "tiny bottle"]},
    ),
    (  # 17: square brackets, "The" in the short, case in the short
        "Chair:\n"
        "1) an old wooden stool [Wooden Stool]\n"
        "2) a comfy armchair by the fire (The Armchair)\n"
        "3) a bright orange chair (orange chair)\n"
        "4) a chair made of wicker (wicker chair)\n",
        ["chair"], 4, {"chair": ["wooden stool", "armchair", "orange chair", "wicker chair"]},
    ),
    (  # 18: JSON mode answer whose entries are numbered text lines, items keyed in plural
        '{"Cups": ["1) a small glass jar of honey (glass jar)", "2) a porcelain teacup (teacup)"],\n'
        ' "Spoons": {"1": "a wooden ladle - ladle", "2": "a silver spoon (silver spoon)"}}',
        ["cup", "spoon"], 2, {"cup": ["glass jar", "teacup"], "spoon": ["ladle", "silver spoon"]},
    ),
]


@pytest.mark.parametrize("case", range(len(ANSWERS)))
def test_parser_reads_messy_answers(case):
    text, items, k, expected = ANSWERS[case]
    parsed, failed = parse_answer(text, items, k)
    assert failed == {}
    assert {item: [p.short for p in ps] for item, ps in parsed.items()} == expected
    for ps in parsed.values():
        assert all(p.prompt and p.short and p.kind in get_args(EditKind) for p in ps)


def test_parser_keeps_descriptions_and_classifies_kinds():
    parsed, _ = parse_answer(ANSWERS[2][0], ["car", "truck"], 4)
    assert [p.kind for p in parsed["car"]] == ["category", "synonym", "colour", "other"]
    assert [p.kind for p in parsed["truck"]] == ["other", "synonym", "colour", "texture"]
    assert parsed["car"][0].prompt == "a yellow school bus"
    parsed, _ = parse_answer(ANSWERS[0][0], ["bird", "tree"], 4)
    assert parsed["bird"][0].prompt == "a majestic bald eagle with white head feathers, photo"


def test_parser_rejects_incomplete_items():
    too_few = "Dog:\n1) a cat (cat)\n2) a wolf (wolf)\nCat:\n1) a dog (dog)\n2) a lion (lion)\n" \
              "3) a black cat (black cat)\n4) a fat cat (fat cat)\n"
    parsed, failed = parse_answer(too_few, ["dog", "cat"], 4)
    assert [p.short for p in parsed["cat"]] == ["dog", "lion", "black cat", "fat cat"]
    assert set(failed) == {"dog"} and "2 valid" in failed["dog"]

    bad_shorts = ("Bench:\n1) a wooden chair (wooden chair)\n"
                  "2) a long sofa with many cushions (very long and very comfy sofa)\n"
                  "3) a stone bench ()\n4) a picnic table (picnic table)\n5) a metal bench (metal bench)\n")
    parsed, failed = parse_answer(bad_shorts, ["bench"], 4)
    assert parsed == {} and "3 valid" in failed["bench"]
    assert "6 words" in failed["bench"] and "empty short" in failed["bench"]
    assert parse_answer(bad_shorts, ["bench"], 3)[0]["bench"][2].short == "metal bench"

    missing = "Dog:\n1) a cat (cat)\n2) a fox (fox)\n3) a red dog (red dog)\n4) a big dog (big dog)\n"
    parsed, failed = parse_answer(missing, ["dog", "frisbee"], 4)
    assert set(parsed) == {"dog"} and set(failed) == {"frisbee"}

    no_short = "Dog:\n1) a cat sitting\n2) a fox running\n"
    assert "no short label" in parse_answer(no_short, ["dog"], 2)[1]["dog"]
    assert parse_answer("", ["dog"], 4) == ({}, {"dog": "empty answer"})
    json_short = '{"dog": [{"description": "a cat", "short": "one two three four five six"}]}'
    assert "dog" in parse_answer(json_short, ["dog"], 1)[1]


# --- prompt files ------------------------------------------------------------------------------------------


def test_request_message():
    assert format_request(["cup", "table"], "a cup on a wooden table") == \
        "Words: cup, table\nSentence: a cup on a wooden table"
    assert format_request(["dog"], None) == "Words: dog"


def test_instructions_resource_and_user_file(tmp_path):
    text = load_instructions(None, 3)
    assert "{k}" not in text and "exactly 3 portrayals" in text
    assert "Words: cup, table" in text and "colour" in text
    own = tmp_path / "prompt.txt"
    own.write_text("Give {k} ideas per word.\n")
    assert load_instructions(str(own), 5) == "Give 5 ideas per word.\n"
    with pytest.raises(ConfigError, match="does not exist"):
        load_instructions(str(tmp_path / "nope.txt"), 4)
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        load_instructions(str(tmp_path / "empty.txt"), 4)


def test_portions_keep_their_portion_word_out_of_the_modifiers():
    """"glass of wine" is a glass of wine, not wine made of glass ("glass champagne"); a portion is counted by
    its portion word ("two slices of pizza", not "two slice of pizzas")."""
    import re

    for seed in range(12):
        for item in ("glass of wine", "slice of pizza", "bowl of rice", "slices of pizza"):
            for p in portray_item(item, 8, seed).portrayals:
                assert not re.search(r"\bglass (champagne|wine|prosecco|merlot|cocktail|smoothie)\b", p.short), p
                assert not re.search(r"\bslices? of \w+ slices?\b|\bslice of pizzas\b|\bone slices\b", p.short), p
    counts = {item: [p.short for p in portray_item(item, 8, 0).portrayals if p.kind == "count"]
              for item in ("slice of pizza", "slices of pizza", "bowl of rice")}
    assert counts["slice of pizza"] and all(re.fullmatch(r"\w+ slices of pizza", s) for s in counts["slice of pizza"])
    assert counts["slices of pizza"] == ["one slice of pizza"] and counts["bowl of rice"] == ["two bowls of rice"]


def test_a_new_noun_is_a_noun_edit_even_with_a_colour_word():
    assert vocab.classify_edit("dog", "golden retriever") == "synonym"
    assert vocab.classify_edit("dog", "white poodle") == "synonym"
    assert vocab.classify_edit("dog", "white cat") == "category"
    assert vocab.classify_edit("dog", "golden dog") == "colour" and vocab.classify_edit("red car", "blue car") == "colour"
