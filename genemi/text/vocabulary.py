"""genemi's curated vocabularies: visually distinct, COCO-frequent words grouped by category.

One module for every rule-based edit: the text hard negatives (``genemi negatives``) draw replacements
and additions from here, and so does the rule-based portrayal backend. Nouns are singular lemmas, verbs
base forms (inflected by :mod:`genemi.text.inflection`), relations lower-case phrases.

Replacements stay inside a category (a dog becomes another animal, red another colour) so that a negative
describes a *plausible* different image, the property SugarCrepe showed matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

NOUN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "animal": (
        "dog", "cat", "horse", "cow", "sheep", "elephant", "bear", "zebra", "giraffe", "bird", "duck",
        "goat", "pig", "lion", "tiger", "monkey", "deer", "rabbit", "squirrel", "fox", "chicken", "pigeon",
        "seagull", "owl", "parrot", "camel", "panda", "puppy", "kitten", "pony",
    ),
    "person": (
        "man", "woman", "boy", "girl", "child", "person", "lady", "guy", "kid", "baby", "player",
        "skier", "surfer", "skateboarder", "chef", "soldier", "worker", "tourist",
    ),
    "vehicle": (
        "car", "truck", "bus", "bicycle", "motorcycle", "train", "boat", "airplane", "scooter", "van",
        "taxi", "tractor", "bike", "jeep", "helicopter", "trolley",
    ),
    "furniture": ("chair", "table", "couch", "bed", "bench", "desk", "shelf", "sofa", "stool", "cabinet", "dresser"),
    "food": (
        "pizza", "sandwich", "cake", "banana", "apple", "orange", "donut", "broccoli", "carrot", "burger",
        "salad", "bread", "pasta", "cookie", "pie", "steak", "egg", "muffin", "tomato", "lemon",
    ),
    "tableware": ("cup", "bowl", "plate", "glass", "bottle", "mug", "fork", "knife", "spoon", "pan", "pot", "vase", "jar", "tray"),
    "electronics": ("laptop", "phone", "television", "keyboard", "computer", "camera", "remote", "monitor", "radio", "tablet"),
    "sports": ("ball", "frisbee", "kite", "skateboard", "surfboard", "racket", "bat", "glove", "snowboard", "ski"),
    "clothing": ("shirt", "hat", "jacket", "dress", "tie", "scarf", "helmet", "coat", "sweater", "cap", "shoe", "boot", "skirt", "vest"),
    "carried": ("backpack", "suitcase", "handbag", "umbrella", "box", "basket", "bag", "purse", "book", "newspaper"),
    "place": (
        "kitchen", "bathroom", "bedroom", "office", "restaurant", "street", "beach", "park", "field",
        "forest", "lake", "river", "mountain", "city", "yard", "garden", "road", "desert", "airport", "market",
    ),
    "structure": ("building", "house", "tower", "bridge", "church", "fence", "wall", "barn", "tent", "shed", "statue", "fountain"),
    "shape": ("square", "circle", "triangle", "rectangle", "star", "hexagon", "diamond", "heart", "oval", "cross"),
    "nature": ("tree", "flower", "rock", "cloud", "grass", "plant", "bush", "hill", "wave", "leaf"),
    "fixture": (
        "sink", "toilet", "window", "door", "mirror", "lamp", "clock", "sign", "bathtub", "refrigerator",
        "oven", "microwave", "stove", "faucet", "pole", "bin",
    ),
}  # fmt: skip

#: adjective categories; replacements keep the category, antonyms (below) come first
ADJECTIVE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "colour": (
        "red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
        "silver", "golden", "beige",
    ),
    "size": ("big", "small", "large", "tiny", "huge", "little", "tall", "short", "long", "wide", "narrow", "thick", "thin"),
    "material": ("wooden", "metal", "plastic", "stone", "leather", "brick", "glass", "paper", "ceramic", "concrete", "wicker"),
    "state": (
        "open", "closed", "empty", "full", "wet", "dry", "old", "new", "young", "clean", "dirty", "hot",
        "cold", "bright", "dark", "fresh", "messy", "neat", "crowded", "broken", "sunny", "cloudy", "snowy",
        "happy", "sad", "modern", "busy", "quiet",
    ),
    "pattern": ("striped", "spotted", "checkered", "plain", "floral", "round", "square", "curved", "straight"),
}  # fmt: skip

#: symmetric antonym pairs: the preferred replacement of either word
ANTONYMS: tuple[tuple[str, str], ...] = (
    ("big", "small"), ("large", "small"), ("huge", "tiny"), ("little", "big"), ("tall", "short"),
    ("long", "short"), ("wide", "narrow"), ("thick", "thin"), ("open", "closed"), ("empty", "full"),
    ("wet", "dry"), ("old", "new"), ("young", "old"), ("clean", "dirty"), ("hot", "cold"),
    ("bright", "dark"), ("messy", "neat"), ("crowded", "empty"), ("sunny", "cloudy"), ("happy", "sad"),
    ("modern", "old"), ("busy", "quiet"), ("black", "white"), ("striped", "plain"), ("round", "square"),
    ("curved", "straight"),
)  # fmt: skip

#: colour spellings treated as the same colour (never a replacement for each other)
COLOUR_ALIASES = {"grey": "gray", "gold": "golden"}

#: verb groups (base forms); replacements stay in the group when it has another member
VERB_GROUPS: dict[str, tuple[str, ...]] = {
    "posture": ("sit", "stand", "lie", "lay", "kneel", "lean", "crouch", "pose"),
    "motion": ("walk", "run", "ride", "drive", "jump", "climb", "swim", "fly", "skate", "surf", "ski", "cross"),
    "handling": (
        "hold", "carry", "throw", "catch", "kick", "push", "pull", "hit", "swing", "cut", "wash", "brush",
        "open", "close", "grab", "drop", "feed", "pet", "slice", "pour",
    ),
    "eating": ("eat", "drink", "bite", "lick", "chew", "taste", "cook", "bake"),
    "attention": ("look", "watch", "read", "talk", "smile", "laugh", "play", "sleep", "wait", "sing", "wave", "point"),
    "using": ("wear", "hold", "carry", "use", "show", "fix", "sell", "buy"),
}  # fmt: skip

#: spatial relations with their preferred opposite; multi-word phrases are matched as token sequences
RELATION_OPPOSITES: tuple[tuple[str, str], ...] = (
    ("on", "under"), ("above", "below"), ("over", "under"), ("in front of", "behind"),
    ("left of", "right of"), ("inside", "outside"), ("into", "out of"), ("near", "far from"),
    ("next to", "across from"), ("on top of", "underneath"), ("beside", "behind"), ("in", "on"),
    ("toward", "away from"), ("with", "without"), ("up", "down"), ("along", "across"),
    ("at", "near"), ("by", "behind"), ("beneath", "above"), ("around", "through"),
    ("to the left of", "to the right of"), ("on the left of", "on the right of"),
)  # fmt: skip


@lru_cache(maxsize=None)
def _noun_index() -> dict[str, str]:
    return {noun: cat for cat, nouns in NOUN_CATEGORIES.items() for noun in nouns}


@lru_cache(maxsize=None)
def _adjective_index() -> dict[str, str]:
    return {adj: cat for cat, adjs in ADJECTIVE_CATEGORIES.items() for adj in adjs}


@lru_cache(maxsize=None)
def _verb_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for group, verbs in VERB_GROUPS.items():
        for verb in verbs:
            index.setdefault(verb, group)
    return index


def _opposites(pairs: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    """Each word of symmetric pairs -> its partners, in pair order."""
    index: dict[str, list[str]] = {}
    for a, b in pairs:
        index.setdefault(a, []).append(b)
        index.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=None)
def _antonym_index() -> dict[str, tuple[str, ...]]:
    return _opposites(ANTONYMS)


@lru_cache(maxsize=None)
def _relation_index() -> dict[str, tuple[str, ...]]:
    return _opposites(RELATION_OPPOSITES)


def noun_category(lemma: str) -> str | None:
    return _noun_index().get(lemma.lower())


def adjective_category(word: str) -> str | None:
    word = COLOUR_ALIASES.get(word.lower(), word.lower())
    return _adjective_index().get(word)


def verb_group(base: str) -> str | None:
    return _verb_index().get(base.lower())


def canonical_adjective(word: str) -> str:
    return COLOUR_ALIASES.get(word.lower(), word.lower())


def noun_alternatives(lemma: str) -> tuple[str, ...]:
    """Other nouns of the same category (empty for words outside the vocabulary)."""
    cat = noun_category(lemma)
    return tuple(n for n in NOUN_CATEGORIES[cat] if n != lemma.lower()) if cat else ()


def adjective_alternatives(word: str) -> tuple[str, ...]:
    """Antonyms first, then the other adjectives of the same category."""
    word = canonical_adjective(word)
    cat = _adjective_index().get(word)
    if cat is None:
        return ()
    antonyms = _antonym_index().get(word, ())
    rest = tuple(a for a in ADJECTIVE_CATEGORIES[cat] if a != word and a not in antonyms)
    return antonyms + rest


def adjective_antonyms(word: str) -> tuple[str, ...]:
    return _antonym_index().get(canonical_adjective(word), ())


def relation_opposites(phrase: str) -> tuple[str, ...]:
    return _relation_index().get(phrase.lower(), ())


def verb_alternatives(base: str) -> tuple[str, ...]:
    """Other verbs of the same group (then none: a verb outside the vocabulary has no curated swap)."""
    base = base.lower()
    group = _verb_index().get(base)
    return tuple(v for v in VERB_GROUPS[group] if v != base) if group else ()


def relation_alternatives(phrase: str) -> tuple[str, ...]:
    """The opposite(s) of a spatial relation phrase first, then the other relations."""
    phrase = phrase.lower()
    index = _relation_index()
    if phrase not in index:
        return ()
    opposites = index[phrase]
    rest = tuple(sorted(r for r in index if r != phrase and r not in opposites))
    return opposites + rest


@lru_cache(maxsize=None)
def relation_phrases_by_first_word() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Relations as token tuples keyed by their first word, longest first (for greedy matching)."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for phrase in sorted((tuple(p.split()) for p in _relation_index()), key=len, reverse=True):
        index.setdefault(phrase[0], []).append(phrase)
    return {k: tuple(v) for k, v in index.items()}


def all_nouns() -> tuple[str, ...]:
    return tuple(_noun_index())


def nouns_in(category: str) -> tuple[str, ...]:
    return NOUN_CATEGORIES[category]


def adjectives_in(category: str) -> tuple[str, ...]:
    return ADJECTIVE_CATEGORIES[category]


# --- portrayal vocabulary ------------------------------------------------------------------------------------
# Tables of the rule-based portrayal backend and of the LLM answer parser (``classify_edit``). They are
# separate from the tables above, which ``genemi negatives`` draws from and which must not change with them.

#: at most this many words in a portrayal's short label
MAX_SHORT_WORDS = 4

#: category -> base noun -> its near synonyms and subtypes (the synonym edit). The bases of a category are
#: the swap pool of the category edit (a dog becomes another animal), so no base is another base's synonym.
#: Covers the 80 COCO categories, the nouns above, and frequent Tag2Text/RAM tags. Singular forms.
PORTRAY_NOUNS: dict[str, dict[str, tuple[str, ...]]] = {
    "person": {
        "person": ("human", "pedestrian", "adult", "passerby"),
        "crowd": ("audience", "throng", "group of people"),
        "man": ("guy", "gentleman", "businessman", "fellow"),
        "woman": ("lady", "businesswoman", "gentlewoman"),
        "boy": ("schoolboy", "lad", "young boy"),
        "girl": ("schoolgirl", "young girl", "lass"),
        "child": ("kid", "toddler", "youngster"),
        "baby": ("infant", "newborn", "baby boy"),
        "player": ("athlete", "tennis player", "baseball player", "sportsman"),
        "skier": ("snowboarder", "ski racer", "cross-country skier"),
        "surfer": ("bodyboarder", "windsurfer", "wave rider"),
        "skateboarder": ("skater", "longboarder", "skateboarding teen"),
        "chef": ("cook", "baker", "sous chef"),
        "soldier": ("marine", "trooper", "guard"),
        "worker": ("laborer", "construction worker", "builder", "workman"),
        "tourist": ("traveler", "backpacker", "sightseer", "visitor"),
        "police officer": ("policeman", "cop", "officer"),
        "doctor": ("physician", "surgeon", "medic"),
        "firefighter": ("fireman", "fire fighter", "rescue worker"),
        "farmer": ("rancher", "farmhand", "shepherd"),
    },
    "animal": {
        "animal": ("creature", "wild animal", "beast"),
        "dog": ("puppy", "terrier", "labrador", "poodle", "beagle", "dachshund", "retriever"),
        "cat": ("kitten", "tabby cat", "siamese cat", "persian cat", "house cat"),
        "horse": ("pony", "stallion", "mare", "foal", "mustang"),
        "cow": ("bull", "calf", "ox", "dairy cow", "heifer"),
        "sheep": ("lamb", "ram", "ewe"),
        "elephant": ("african elephant", "asian elephant", "young elephant"),
        "bear": ("grizzly bear", "polar bear", "bear cub", "kodiak bear"),
        "zebra": ("plains zebra", "zebra foal", "mountain zebra"),
        "giraffe": ("reticulated giraffe", "giraffe calf", "masai giraffe"),
        "bird": ("sparrow", "robin", "finch", "songbird", "warbler", "crow", "raven", "hummingbird", "cardinal"),
        "duck": ("mallard", "duckling", "drake", "wood duck"),
        "goat": ("billy goat", "kid goat", "mountain goat"),
        "pig": ("piglet", "hog", "boar", "pot-bellied pig"),
        "lion": ("lioness", "lion cub", "male lion"),
        "tiger": ("bengal tiger", "tiger cub", "siberian tiger"),
        "monkey": ("chimpanzee", "baboon", "macaque", "capuchin"),
        "deer": ("fawn", "stag", "doe", "reindeer"),
        "rabbit": ("bunny", "hare", "bunny rabbit"),
        "squirrel": ("chipmunk", "tree squirrel", "ground squirrel"),
        "fox": ("arctic fox", "fox cub", "vixen"),
        "chicken": ("hen", "rooster", "chick"),
        "pigeon": ("dove", "rock dove", "homing pigeon"),
        "seagull": ("gull", "herring gull", "sea bird"),
        "owl": ("barn owl", "snowy owl", "horned owl", "owlet"),
        "parrot": ("macaw", "cockatoo", "parakeet", "budgie"),
        "camel": ("dromedary", "bactrian camel", "camel calf"),
        "panda": ("giant panda", "panda bear", "panda cub"),
        "wolf": ("timber wolf", "wolf pup", "arctic wolf"),
        "eagle": ("bald eagle", "hawk", "falcon", "bird of prey"),
        "swan": ("cygnet", "mute swan", "trumpeter swan"),
        "goose": ("gosling", "canada goose", "gander"),
        "fish": ("goldfish", "trout", "koi", "carp"),
        "turtle": ("tortoise", "sea turtle", "terrapin"),
        "frog": ("toad", "tree frog", "bullfrog"),
        "kangaroo": ("wallaby", "joey", "red kangaroo"),
        "penguin": ("emperor penguin", "king penguin", "penguin chick"),
        "butterfly": ("moth", "monarch butterfly", "swallowtail"),
    },
    "vehicle": {
        "vehicle": ("motor vehicle", "automobile", "road vehicle"),
        "car": ("sedan", "taxi", "hatchback", "suv", "jeep", "sports car"),
        "truck": ("pickup truck", "lorry", "dump truck", "delivery truck", "fire truck"),
        "bus": ("coach", "school bus", "double-decker bus", "minibus"),
        "bicycle": ("bike", "mountain bike", "road bike", "tandem bicycle"),
        "motorcycle": ("motorbike", "dirt bike", "sport bike", "chopper"),
        "train": ("locomotive", "freight train", "passenger train", "steam engine", "subway train"),
        "boat": ("sailboat", "canoe", "rowboat", "kayak", "yacht", "ship"),
        "airplane": ("jet", "airliner", "plane", "aircraft"),
        "scooter": ("moped", "vespa", "kick scooter"),
        "van": ("minivan", "camper van", "delivery van"),
        "tractor": ("farm tractor", "lawn tractor", "bulldozer"),
        "helicopter": ("rescue helicopter", "military helicopter", "gyrocopter"),
        "trolley": ("tram", "streetcar", "cable car"),
        "cart": ("wagon", "handcart", "horse cart"),
    },
    "street": {
        "traffic light": ("traffic signal", "stoplight", "signal light"),
        "fire hydrant": ("hydrant", "fire plug", "water hydrant"),
        "stop sign": ("traffic sign", "road sign", "halt sign"),
        "parking meter": ("meter", "pay station", "coin meter"),
        "street lamp": ("lamppost", "street light", "lamp post"),
        "mailbox": ("postbox", "letterbox", "mail box"),
        "trash can": ("garbage can", "bin", "trash bin", "dustbin"),
        "traffic cone": ("cone", "safety cone", "pylon"),
        "pole": ("post", "utility pole", "flagpole"),
        "bus stop": ("bus shelter", "tram stop", "bus station"),
        "sign": ("signboard", "street sign", "billboard", "signpost"),
    },
    "sports": {
        "sports ball": ("ball", "soccer ball", "football", "basketball", "tennis ball", "volleyball", "baseball"),
        "frisbee": ("flying disc", "disc", "ultimate disc"),
        "ski": ("snow ski", "cross-country ski", "alpine ski"),
        "snowboard": ("snow board", "splitboard", "freestyle snowboard"),
        "kite": ("box kite", "stunt kite", "delta kite"),
        "baseball bat": ("bat", "softball bat", "cricket bat"),
        "baseball glove": ("glove", "baseball mitt", "mitt", "catcher mitt"),
        "skateboard": ("longboard", "penny board", "cruiser board"),
        "surfboard": ("bodyboard", "paddleboard", "surf board", "shortboard"),
        "tennis racket": ("racket", "racquet", "badminton racket", "squash racket"),
        "golf club": ("golf driver", "putter", "iron club"),
        "hockey stick": ("field hockey stick", "ice hockey stick", "lacrosse stick"),
        "dumbbell": ("barbell", "kettlebell", "hand weight"),
    },
    "bag": {
        "backpack": ("rucksack", "knapsack", "school bag", "daypack"),
        "umbrella": ("parasol", "sun umbrella", "golf umbrella", "beach umbrella"),
        "handbag": ("purse", "clutch", "shoulder bag", "pocketbook"),
        "suitcase": ("luggage", "trolley case", "travel case"),
        "box": ("crate", "carton", "package", "chest"),
        "bag": ("sack", "tote bag", "shopping bag", "duffel bag"),
        "basket": ("hamper", "picnic basket", "laundry basket"),
        "briefcase": ("attache case", "document case", "portfolio"),
        "wallet": ("billfold", "coin purse", "card holder"),
    },
    "clothing": {
        "clothing": ("clothes", "garment", "apparel"),
        "shirt": ("t-shirt", "blouse", "polo shirt", "button-down shirt"),
        "hat": ("fedora", "cowboy hat", "sun hat", "top hat"),
        "jacket": ("blazer", "windbreaker", "bomber jacket"),
        "dress": ("gown", "sundress", "frock", "evening dress"),
        "tie": ("necktie", "bow tie", "cravat"),
        "scarf": ("shawl", "muffler", "bandana"),
        "helmet": ("bike helmet", "hard hat", "crash helmet", "football helmet"),
        "coat": ("overcoat", "parka", "trench coat", "raincoat"),
        "sweater": ("jumper", "cardigan", "pullover", "hoodie", "sweatshirt"),
        "cap": ("baseball cap", "beanie", "visor", "peaked cap"),
        "shoe": ("sneaker", "sandal", "loafer", "high heel", "slipper"),
        "boot": ("rain boot", "hiking boot", "cowboy boot", "ankle boot"),
        "skirt": ("miniskirt", "kilt", "pleated skirt", "maxi skirt"),
        "vest": ("waistcoat", "life vest", "safety vest", "gilet"),
        "pants": ("trousers", "jeans", "slacks", "sweatpants"),
        "shorts": ("board shorts", "swim trunks", "cargo shorts"),
        "sunglasses": ("shades", "aviators", "sport sunglasses"),
        "jersey": ("sports jersey", "team shirt", "football shirt"),
        "uniform": ("outfit", "costume", "work uniform"),
        "sock": ("stocking", "ankle sock", "knee sock"),
        "suit": ("tuxedo", "business suit", "three-piece suit"),
        "belt": ("waist belt", "sash", "utility belt"),
    },
    "tableware": {
        "bottle": ("water bottle", "flask", "wine bottle", "beer bottle"),
        "wine glass": ("goblet", "champagne flute", "stemmed glass", "wineglass"),
        "cup": ("teacup", "coffee cup", "espresso cup", "cup of coffee"),
        "fork": ("dinner fork", "salad fork", "table fork", "carving fork"),
        "knife": ("kitchen knife", "butter knife", "steak knife", "cleaver"),
        "spoon": ("teaspoon", "tablespoon", "soup spoon", "ladle"),
        "bowl": ("soup bowl", "salad bowl", "mixing bowl", "cereal bowl"),
        "plate": ("dinner plate", "platter", "saucer", "side plate"),
        "glass": ("tumbler", "drinking glass", "beer glass", "shot glass"),
        "mug": ("coffee mug", "beer mug", "stein", "tankard"),
        "pan": ("frying pan", "skillet", "wok", "saucepan"),
        "pot": ("cooking pot", "stockpot", "cauldron", "dutch oven"),
        "jar": ("mason jar", "jam jar", "canister", "cookie jar"),
        "tray": ("serving tray", "baking tray", "tea tray"),
        "teapot": ("tea kettle", "coffee pot", "tea urn"),
        "pitcher": ("jug", "water jug", "ewer"),
        "can": ("tin can", "soda can", "beer can", "tin"),
        "cutting board": ("chopping board", "bread board", "butcher block"),
        "napkin": ("serviette", "cloth napkin", "paper towel"),
    },
    "fruit": {
        "fruit": ("fresh fruit", "ripe fruit", "tropical fruit"),
        "banana": ("plantain", "ripe banana", "baby banana"),
        "apple": ("granny smith", "crab apple", "gala apple", "fuji apple"),
        "orange": ("tangerine", "mandarin", "clementine", "blood orange"),
        "lemon": ("citron", "meyer lemon", "lemon wedge"),
        "strawberry": ("wild strawberry", "ripe strawberry", "garden strawberry"),
        "grape": ("concord grape", "table grape", "muscat grape"),
        "pineapple": ("ananas", "baby pineapple", "pineapple slice"),
        "watermelon": ("melon", "honeydew melon", "watermelon slice"),
        "cherry": ("sour cherry", "morello cherry", "wild cherry"),
        "peach": ("nectarine", "flat peach", "apricot"),
        "pear": ("asian pear", "bartlett pear", "conference pear"),
        "lime": ("key lime", "kaffir lime", "lime wedge"),
        "mango": ("ripe mango", "alphonso mango", "mango slice"),
        "coconut": ("coconut half", "young coconut", "coconut shell"),
    },
    "vegetable": {
        "vegetable": ("fresh vegetable", "veggie", "greens"),
        "broccoli": ("broccolini", "broccoli floret", "calabrese"),
        "carrot": ("baby carrot", "carrot stick", "heirloom carrot"),
        "tomato": ("cherry tomato", "roma tomato", "plum tomato", "beefsteak tomato"),
        "potato": ("spud", "sweet potato", "russet potato", "new potato"),
        "onion": ("shallot", "scallion", "spring onion", "leek"),
        "pepper": ("bell pepper", "chili pepper", "jalapeno", "capsicum"),
        "cucumber": ("gherkin", "pickle", "english cucumber"),
        "lettuce": ("romaine", "iceberg lettuce", "butterhead lettuce"),
        "mushroom": ("button mushroom", "portobello", "shiitake", "toadstool"),
        "corn": ("maize", "sweet corn", "corncob", "ear of corn"),
        "cabbage": ("savoy cabbage", "napa cabbage", "cabbage head"),
        "eggplant": ("aubergine", "brinjal", "japanese eggplant"),
        "cauliflower": ("romanesco", "cauliflower floret", "cauliflower head"),
        "pumpkin": ("squash", "gourd", "jack-o-lantern"),
        "zucchini": ("courgette", "summer squash", "marrow"),
    },
    "dish": {
        "food": ("dish", "snack", "plate of food"),
        "meal": ("dinner", "lunch", "breakfast"),
        "pizza": ("pepperoni pizza", "margherita pizza", "flatbread", "calzone", "pizza slice"),
        "sandwich": ("sub", "panini", "club sandwich", "wrap", "hoagie"),
        "hot dog": ("frankfurter", "wiener", "corn dog", "chili dog"),
        "burger": ("hamburger", "cheeseburger", "veggie burger", "slider"),
        "salad": ("caesar salad", "garden salad", "greek salad", "coleslaw"),
        "pasta": ("spaghetti", "penne", "noodles", "macaroni", "lasagna"),
        "steak": ("sirloin", "ribeye", "t-bone steak", "filet mignon"),
        "egg": ("fried egg", "boiled egg", "poached egg", "omelette"),
        "soup": ("stew", "broth", "chowder", "bowl of soup"),
        "sushi": ("sashimi", "maki roll", "nigiri", "sushi roll"),
        "taco": ("burrito", "quesadilla", "fajita", "tortilla"),
        "fries": ("french fries", "chips", "potato wedges"),
        "rice": ("fried rice", "risotto", "pilaf", "paella"),
        "sausage": ("bratwurst", "chorizo", "salami", "kielbasa"),
        "cheese": ("cheddar", "brie", "mozzarella", "cheese wedge"),
        "meat": ("roast", "beef", "pork", "ham", "bacon"),
    },
    "dessert": {
        "dessert": ("sweet", "treat", "pudding"),
        "cake": ("birthday cake", "cheesecake", "layer cake", "wedding cake", "sponge cake"),
        "donut": ("doughnut", "glazed donut", "jelly donut", "cruller"),
        "cookie": ("biscuit", "cracker", "chocolate chip cookie", "macaron"),
        "pie": ("tart", "apple pie", "quiche", "pastry"),
        "muffin": ("blueberry muffin", "scone", "english muffin"),
        "cupcake": ("fairy cake", "frosted cupcake", "mini cupcake"),
        "bread": ("loaf", "baguette", "toast", "bread roll", "sourdough"),
        "croissant": ("crescent roll", "pain au chocolat", "butter croissant"),
        "bagel": ("sesame bagel", "bialy", "everything bagel"),
        "pancake": ("crepe", "flapjack", "hotcake", "stack of pancakes"),
        "waffle": ("belgian waffle", "stroopwafel", "waffle cone"),
        "ice cream": ("gelato", "sorbet", "sundae", "ice cream cone", "frozen yogurt"),
        "chocolate": ("chocolate bar", "truffle", "praline"),
        "brownie": ("fudge brownie", "blondie", "chocolate brownie"),
        "candy": ("sweets", "lollipop", "gummy bear", "bonbon"),
    },
    "drink": {
        "drink": ("beverage", "refreshment", "glass of juice"),
        "coffee": ("espresso", "latte", "cappuccino", "americano"),
        "tea": ("herbal tea", "iced tea", "chai", "cup of tea"),
        "wine": ("merlot", "champagne", "chardonnay", "prosecco"),
        "beer": ("lager", "ale", "stout", "pint"),
        "juice": ("apple juice", "lemonade", "fruit juice"),
        "milk": ("milkshake", "oat milk", "buttermilk"),
        "soda": ("cola", "soft drink", "soda pop"),
        "cocktail": ("martini", "margarita", "mojito"),
        "smoothie": ("shake", "frappe", "fruit smoothie"),
    },
    "furniture": {
        "furniture": ("furnishings", "piece of furniture", "home furniture"),
        "chair": ("armchair", "office chair", "folding chair", "rocking chair", "seat"),
        "couch": ("sofa", "loveseat", "settee", "sectional sofa", "futon"),
        "bed": ("double bed", "bunk bed", "four-poster bed", "mattress"),
        "dining table": ("kitchen table", "dinner table", "banquet table", "breakfast table"),
        "table": ("coffee table", "side table", "end table", "picnic table"),
        "bench": ("park bench", "pew", "garden bench"),
        "desk": ("writing desk", "office desk", "bureau", "computer desk"),
        "shelf": ("bookshelf", "shelving", "wall shelf", "rack"),
        "stool": ("bar stool", "footstool", "step stool"),
        "cabinet": ("cupboard", "sideboard", "hutch", "kitchen cabinet"),
        "dresser": ("chest of drawers", "vanity", "tallboy"),
        "bookcase": ("book cabinet", "bookstand", "library shelf"),
        "wardrobe": ("closet", "armoire", "clothes cabinet"),
        "ottoman": ("pouf", "footrest", "hassock"),
        "crib": ("cradle", "cot", "bassinet"),
    },
    "plant": {
        "plant": ("greenery", "foliage", "seedling"),
        "potted plant": ("houseplant", "pot plant", "indoor plant", "flowerpot"),
        "flower": ("rose", "tulip", "daisy", "sunflower", "lily", "blossom", "bouquet"),
        "tree": ("oak tree", "pine tree", "maple tree", "birch", "oak", "pine"),
        "bush": ("shrub", "hedge", "shrubbery", "thicket"),
        "cactus": ("succulent", "saguaro", "prickly pear"),
        "fern": ("bracken", "frond", "maidenhair fern"),
        "palm tree": ("palm", "coconut palm", "date palm"),
        "leaf": ("maple leaf", "oak leaf", "autumn leaf"),
        "branch": ("twig", "bough", "limb"),
    },
    "ground": {
        "grass": ("lawn", "turf", "meadow grass"),
        "sand": ("beach sand", "dune sand", "sandy ground"),
        "snow": ("snowdrift", "powder snow", "fresh snow"),
        "dirt": ("soil", "earth", "dirt ground"),
        "gravel": ("pebbles", "crushed stone", "shingle"),
        "mud": ("muck", "sludge", "mud puddle"),
        "moss": ("lichen", "moss carpet", "peat moss"),
        "hay": ("straw", "hay bale", "haystack"),
        "ice": ("ice sheet", "frozen ground", "sheet of ice"),
    },
    "nature object": {
        "rock": ("boulder", "stone", "pebble"),
        "log": ("tree trunk", "driftwood", "firewood"),
        "tree stump": ("stump", "tree trunk stump", "sawn stump"),
        "seashell": ("shell", "conch", "scallop shell"),
        "pinecone": ("pine cone", "fir cone", "spruce cone"),
        "wood": ("timber", "lumber", "wooden planks"),
    },
    "landscape": {
        "field": ("meadow", "pasture", "farmland", "prairie"),
        "beach": ("shore", "seashore", "coast", "sandy beach"),
        "forest": ("woods", "woodland", "jungle", "rainforest"),
        "mountain": ("peak", "summit", "mountain range", "alps"),
        "hill": ("hillside", "slope", "knoll", "mound"),
        "desert": ("dunes", "wasteland", "badlands"),
        "park": ("public park", "city park", "town square"),
        "garden": ("flower garden", "vegetable garden", "backyard garden"),
        "yard": ("backyard", "front yard", "courtyard"),
        "valley": ("canyon", "gorge", "ravine"),
        "cliff": ("bluff", "crag", "rock face"),
    },
    "water": {
        "water": ("sea water", "open water", "waters"),
        "ocean": ("sea", "open sea", "seascape"),
        "lake": ("reservoir", "lagoon", "mountain lake"),
        "river": ("stream", "creek", "brook"),
        "pond": ("pool", "duck pond", "fish pond"),
        "waterfall": ("cascade", "falls", "rapids"),
        "wave": ("breaker", "swell", "surf"),
        "puddle": ("rain puddle", "water puddle", "small pool"),
    },
    "sky": {
        "sky": ("open sky", "daytime sky", "horizon"),
        "cloud": ("cumulus cloud", "storm cloud", "rain cloud", "cirrus cloud"),
        "sunset": ("sunrise", "dusk", "twilight", "afterglow"),
        "rainbow": ("double rainbow", "rainbow arc", "faint rainbow"),
        "moon": ("full moon", "crescent moon", "half moon"),
        "sun": ("sunshine", "sunlight", "setting sun"),
        "lightning": ("lightning bolt", "thunderbolt", "fork lightning"),
    },
    "structure": {
        "building": ("office building", "apartment block", "high-rise", "skyscraper"),
        "house": ("cottage", "home", "villa", "bungalow", "cabin"),
        "tower": ("clock tower", "spire", "turret", "watchtower"),
        "bridge": ("footbridge", "suspension bridge", "viaduct", "overpass"),
        "church": ("chapel", "cathedral", "abbey"),
        "fence": ("railing", "picket fence", "barrier", "palisade"),
        "barn": ("stable", "granary", "farm building"),
        "tent": ("canopy", "marquee", "pavilion", "teepee"),
        "shed": ("hut", "shack", "garden shed"),
        "statue": ("sculpture", "monument", "bust", "figurine"),
        "fountain": ("water fountain", "drinking fountain", "fountain basin"),
        "castle": ("fortress", "palace", "citadel"),
        "lighthouse": ("beacon", "light tower", "coastal lighthouse"),
        "windmill": ("wind turbine", "mill", "wind pump"),
    },
    "building part": {
        "wall": ("partition", "wall panel", "retaining wall", "facade"),
        "floor": ("flooring", "parquet", "hardwood floor", "linoleum"),
        "ceiling": ("vaulted ceiling", "rafters", "ceiling panel"),
        "window": ("windowpane", "bay window", "skylight", "casement"),
        "door": ("doorway", "front door", "sliding door", "french door"),
        "roof": ("rooftop", "thatched roof", "gable", "shingles"),
        "staircase": ("stairs", "stairway", "steps", "spiral staircase"),
        "column": ("pillar", "pilaster", "colonnade"),
        "balcony": ("terrace", "veranda", "porch", "patio"),
        "gate": ("gateway", "garden gate", "turnstile"),
        "arch": ("archway", "arcade", "stone arch"),
        "chimney": ("smokestack", "flue", "chimney stack"),
    },
    "road": {
        "road": ("highway", "roadway", "country road", "lane", "motorway"),
        "street": ("avenue", "boulevard", "alley", "city street"),
        "sidewalk": ("pavement", "footpath", "walkway"),
        "path": ("trail", "pathway", "dirt track", "hiking trail"),
        "runway": ("tarmac", "landing strip", "taxiway"),
        "railroad track": ("railway", "rail line", "train track"),
        "crosswalk": ("zebra crossing", "pedestrian crossing", "crossing"),
        "parking lot": ("car park", "parking garage", "parking space"),
        "driveway": ("drive", "carport", "private drive"),
    },
    "urban": {
        "city": ("town", "downtown", "metropolis", "cityscape"),
        "market": ("bazaar", "marketplace", "farmers market", "flea market"),
        "airport": ("airfield", "terminal", "airstrip"),
        "train station": ("railway station", "platform", "depot"),
        "harbor": ("port", "marina", "dock", "pier"),
        "stadium": ("arena", "ballpark", "sports ground"),
        "playground": ("play area", "jungle gym", "play park"),
    },
    "room": {
        "room": ("chamber", "interior", "indoor space"),
        "kitchen": ("kitchenette", "galley kitchen", "scullery"),
        "bathroom": ("restroom", "washroom", "powder room"),
        "bedroom": ("bedchamber", "guest room", "dormitory"),
        "office": ("workspace", "study", "cubicle"),
        "restaurant": ("cafe", "diner", "bistro", "cafeteria"),
        "living room": ("lounge", "sitting room", "den", "family room"),
        "classroom": ("lecture hall", "schoolroom", "seminar room"),
        "dining room": ("dining hall", "dining area", "breakfast room"),
    },
    "appliance": {
        "appliance": ("home appliance", "kitchen appliance", "machine"),
        "refrigerator": ("fridge", "freezer", "icebox", "mini fridge"),
        "oven": ("range", "wood-fired oven", "convection oven", "kiln"),
        "microwave": ("microwave oven", "countertop microwave", "compact microwave"),
        "stove": ("cooktop", "hob", "gas stove"),
        "toaster": ("toaster oven", "pop-up toaster", "sandwich toaster"),
        "dishwasher": ("dishwashing machine", "dish washer", "built-in dishwasher"),
        "washing machine": ("washer", "laundry machine", "front loader"),
        "blender": ("food processor", "mixer", "juicer"),
        "kettle": ("electric kettle", "water boiler", "stovetop kettle"),
        "coffee maker": ("espresso machine", "coffee machine", "percolator"),
        "fan": ("ceiling fan", "desk fan", "electric fan"),
    },
    "bathroom fixture": {
        "toilet": ("lavatory", "loo", "water closet", "urinal"),
        "sink": ("basin", "washbasin", "kitchen sink", "bathroom sink"),
        "bathtub": ("tub", "bath", "hot tub", "jacuzzi"),
        "shower": ("shower stall", "shower head", "shower cubicle"),
        "faucet": ("tap", "spigot", "mixer tap"),
        "towel": ("bath towel", "hand towel", "washcloth"),
    },
    "electronics": {
        "tv": ("television", "flat-screen tv", "tv set", "smart tv"),
        "laptop": ("notebook computer", "chromebook", "ultrabook"),
        "mouse": ("computer mouse", "wireless mouse", "trackball"),
        "remote": ("remote control", "tv remote", "clicker"),
        "keyboard": ("computer keyboard", "keypad", "wireless keyboard"),
        "cell phone": ("phone", "smartphone", "mobile phone", "cellphone"),
        "computer": ("desktop computer", "pc", "computer tower"),
        "monitor": ("computer screen", "display", "screen", "computer monitor"),
        "camera": ("digital camera", "camcorder", "dslr", "film camera"),
        "radio": ("stereo", "boombox", "transistor radio"),
        "tablet": ("ipad", "e-reader", "tablet computer"),
        "speaker": ("loudspeaker", "bluetooth speaker", "subwoofer"),
        "headphones": ("earphones", "headset", "earbuds"),
        "game controller": ("gamepad", "joystick", "video game controller"),
        "printer": ("copier", "scanner", "laser printer"),
    },
    "decor": {
        "clock": ("wall clock", "alarm clock", "clock face", "grandfather clock"),
        "vase": ("urn", "flower vase", "amphora", "bud vase"),
        "lamp": ("table lamp", "floor lamp", "lantern", "desk lamp"),
        "light": ("light fixture", "ceiling light", "spotlight", "light bulb"),
        "candle": ("candlestick", "taper", "votive candle"),
        "picture frame": ("photo frame", "frame", "photograph"),
        "painting": ("picture", "artwork", "canvas", "portrait", "poster"),
        "mirror": ("looking glass", "wall mirror", "vanity mirror"),
        "pillow": ("cushion", "throw pillow", "bolster"),
        "rug": ("carpet", "mat", "doormat", "runner"),
        "curtain": ("drape", "blind", "window curtain"),
        "blanket": ("quilt", "duvet", "comforter", "throw"),
    },
    "toy": {
        "toy": ("plaything", "children's toy", "toy figure"),
        "teddy bear": ("stuffed bear", "plush bear", "stuffed animal", "soft toy", "teddy"),
        "doll": ("rag doll", "baby doll", "puppet", "action figure"),
        "toy car": ("model car", "toy truck", "matchbox car"),
        "rubber duck": ("rubber duckie", "bath toy", "squeaky duck"),
        "balloon": ("party balloon", "helium balloon", "water balloon"),
    },
    "toiletry": {
        "toothbrush": ("electric toothbrush", "tooth brush", "travel toothbrush"),
        "hair drier": ("hair dryer", "blow dryer", "hairdryer", "blow-dryer"),
        "comb": ("hair comb", "pocket comb", "wide-tooth comb"),
        "hairbrush": ("hair brush", "paddle brush", "round brush"),
        "razor": ("shaver", "electric razor", "safety razor"),
        "soap": ("bar of soap", "soap bar", "soap dispenser"),
        "toothpaste": ("toothpaste tube", "tube of toothpaste", "tooth gel"),
    },
    "office": {
        "scissors": ("shears", "pair of scissors", "clippers", "snips"),
        "book": ("novel", "textbook", "hardcover", "paperback", "magazine"),
        "newspaper": ("paper", "tabloid", "gazette", "broadsheet"),
        "notebook": ("notepad", "journal", "diary", "sketchbook"),
        "pen": ("ballpoint pen", "fountain pen", "marker", "felt-tip pen"),
        "pencil": ("colored pencil", "crayon", "mechanical pencil"),
        "stapler": ("staple gun", "desk stapler", "heavy-duty stapler"),
        "envelope": ("letter", "mail", "postcard"),
    },
    "tool": {
        "hammer": ("mallet", "sledgehammer", "claw hammer"),
        "screwdriver": ("phillips screwdriver", "flathead screwdriver", "precision screwdriver"),
        "wrench": ("spanner", "monkey wrench", "pipe wrench"),
        "saw": ("handsaw", "hacksaw", "chainsaw"),
        "shovel": ("spade", "snow shovel", "trowel"),
        "ladder": ("stepladder", "rope ladder", "extension ladder"),
        "drill": ("power drill", "cordless drill", "hand drill"),
    },
    "shape": {
        "square": ("quadrilateral", "block", "tile"),
        "circle": ("ring", "round shape", "dot"),
        "triangle": ("wedge", "pyramid shape", "triangular shape"),
        "rectangle": ("oblong", "rectangular block", "rectangular shape"),
        "star": ("star shape", "pentagram", "starburst"),
        "hexagon": ("six-sided shape", "honeycomb cell", "hexagonal shape"),
        "diamond": ("rhombus", "lozenge", "diamond shape"),
        "heart": ("heart shape", "love heart", "valentine heart"),
        "oval": ("ellipse", "egg shape", "oval shape"),
        "cross": ("plus sign", "cross shape", "x shape"),
    },
}  # fmt: skip

#: coarse groups of categories: an edit inside a group still counts as a category edit (banana -> pizza)
SUPER_CATEGORIES: dict[str, tuple[str, ...]] = {"food": ("fruit", "vegetable", "dish", "dessert")}

#: bases naming a whole category: they are portrayed, but never chosen as another item's replacement
GENERIC_NOUNS = frozenset({
    "person", "crowd", "animal", "vehicle", "clothing", "fruit", "vegetable", "food", "meal",
    "dessert", "drink", "furniture", "plant", "appliance", "toy", "room", "water", "sky",
})  # fmt: skip

#: uncountable nouns (last word of a phrase suffices): no article, no plural, no count edit
MASS_NOUNS = frozenset({
    "grass", "sand", "snow", "dirt", "gravel", "mud", "moss", "hay", "ice", "water", "rice", "pasta", "soup",
    "meat", "cheese", "bread", "chocolate", "cream", "coffee", "tea", "wine", "beer", "juice", "milk", "soda",
    "broccoli", "lettuce", "corn", "maize", "food", "furniture", "clothing", "foliage", "greenery", "sunshine",
    "sunlight", "lightning", "soil", "earth", "muck", "sludge", "lichen", "straw", "turf", "wood", "timber", "lumber",
    "apparel", "luggage", "spaghetti", "beef", "pork", "ham", "bacon", "cauliflower", "cabbage", "shrubbery",
    "toast", "gelato", "sorbet", "yogurt", "lemonade", "champagne", "espresso", "surf",
    "shingle", "flooring", "parquet", "linoleum", "pavement", "tarmac", "scenery", "traffic", "stew", "broth",
})  # fmt: skip

#: nouns that exist in the plural only (no article, never pluralised again, no count edit)
PLURALIA_TANTUM = frozenset({
    "scissors", "pants", "shorts", "jeans", "trousers", "slacks", "sweatpants", "sunglasses", "shades",
    "aviators", "headphones", "earphones", "earbuds", "fries", "chips", "stairs", "steps", "shears",
    "clippers", "snips", "pliers", "tongs", "swim trunks", "dunes", "woods", "badlands", "alps", "falls",
    "rapids", "rafters", "shingles", "sweets", "pebbles", "noodles", "greens", "clothes",
    "furnishings", "waters", "potato wedges", "french fries", "board shorts", "cargo shorts", "sport sunglasses",
})  # fmt: skip

#: colour palettes: which colours suit an item
PORTRAY_COLOURS: dict[str, tuple[str, ...]] = {
    "any": ("red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
            "silver", "golden", "teal"),
    "natural": ("black", "white", "brown", "gray", "golden", "cream", "tan"),
    "sky": ("blue", "gray", "orange", "pink", "purple", "golden", "red"),
    "ground": ("green", "yellow", "brown", "white", "golden", "red", "black", "gray"),
    "water": ("blue", "green", "turquoise", "brown", "gray", "teal"),
    "food": ("red", "green", "yellow", "orange", "brown", "purple", "pink", "white", "black"),
}  # fmt: skip

#: material word sets (adjectives as they precede a noun)
PORTRAY_MATERIALS: dict[str, tuple[str, ...]] = {
    "hard": ("wooden", "metal", "plastic", "glass", "stone", "ceramic", "marble"),
    "furniture": ("wooden", "metal", "plastic", "wicker", "leather", "velvet", "glass", "bamboo"),
    "tableware": ("glass", "ceramic", "metal", "plastic", "wooden", "paper", "porcelain", "copper"),
    "fabric": ("leather", "denim", "wool", "silk", "cotton", "velvet", "fur", "linen"),
    "building": ("brick", "stone", "wooden", "glass", "concrete", "metal", "marble"),
    "toy": ("plush", "wooden", "plastic", "knitted", "rubber", "felt"),
    "sports": ("wooden", "metal", "plastic", "leather", "rubber"),
}  # fmt: skip

#: texture / surface word sets
PORTRAY_TEXTURES: dict[str, tuple[str, ...]] = {
    "fur": ("fluffy", "shaggy", "spotted", "striped", "sleek", "muddy"),
    "surface": ("shiny", "rusty", "dusty", "scratched", "polished", "weathered"),
    "fabric": ("striped", "plaid", "checkered", "polka-dot", "floral", "crumpled"),
    "food": ("sliced", "half-eaten", "chopped", "burnt", "rotten", "grilled"),
    "drink": ("iced", "steaming", "frothy", "foamy", "fizzy"),
    "plant": ("leafy", "bare", "withered", "blooming", "dried", "snowy"),
    "ground": ("wet", "dry", "snowy", "muddy", "frozen", "trampled"),
    "water": ("calm", "choppy", "murky", "frozen", "foamy", "rippled"),
    "sky": ("cloudy", "clear", "stormy", "hazy", "overcast", "starry"),
    "wall": ("cracked", "weathered", "mossy", "painted", "tiled", "graffiti-covered"),
    "road": ("wet", "cracked", "snowy", "muddy", "cobbled", "dusty"),
    "shape": ("striped", "dotted", "checkered", "glossy", "fuzzy"),
}  # fmt: skip

#: size word sets
PORTRAY_SIZES: dict[str, tuple[str, ...]] = {
    "any": ("tiny", "small", "large", "huge", "giant", "miniature"),
    "person": ("tall", "short", "little", "big"),
    "place": ("small", "large", "huge", "narrow", "wide"),
}

#: count edits: a singular item becomes several, a plural one becomes a single one
COUNTS_FOR_SINGULAR = ("two", "three", "four", "a pair of")
COUNTS_FOR_PLURAL = ("a single", "one", "a lone")

#: per category: (colour palette, attribute edits that suit it as (kind, word set), best first).
#: kind "count" takes no word set; categories not listed get ``DEFAULT_PROFILE``.
PORTRAY_PROFILES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "person": ("any", (("count", ""), ("size", "person"))),
    "animal": ("natural", (("texture", "fur"), ("size", "any"), ("count", ""))),
    "vehicle": ("any", (("texture", "surface"), ("size", "any"), ("count", ""))),
    "street": ("any", (("texture", "surface"), ("material", "hard"), ("count", ""))),
    "sports": ("any", (("material", "sports"), ("size", "any"), ("count", ""))),
    "bag": ("any", (("material", "fabric"), ("texture", "fabric"), ("size", "any"))),
    "clothing": ("any", (("material", "fabric"), ("texture", "fabric"))),
    "tableware": ("any", (("material", "tableware"), ("size", "any"), ("count", ""))),
    "fruit": ("food", (("texture", "food"), ("size", "any"), ("count", ""))),
    "vegetable": ("food", (("texture", "food"), ("size", "any"), ("count", ""))),
    "dish": ("food", (("texture", "food"), ("size", "any"), ("count", ""))),
    "dessert": ("food", (("texture", "food"), ("size", "any"), ("count", ""))),
    "drink": ("food", (("texture", "drink"),)),
    "furniture": ("any", (("material", "furniture"), ("texture", "surface"), ("size", "any"))),
    "plant": ("any", (("texture", "plant"), ("size", "any"), ("count", ""))),
    "ground": ("ground", (("texture", "ground"),)),
    "nature object": ("natural", (("texture", "surface"), ("size", "any"), ("count", ""))),
    "landscape": ("ground", (("texture", "ground"), ("size", "place"))),
    "water": ("water", (("texture", "water"),)),
    "sky": ("sky", (("texture", "sky"),)),
    "structure": ("any", (("material", "building"), ("texture", "wall"), ("size", "any"))),
    "building part": ("any", (("material", "building"), ("texture", "wall"))),
    "road": ("ground", (("texture", "road"), ("size", "place"))),
    "urban": ("any", (("size", "place"),)),
    "room": ("any", (("size", "place"), ("texture", "wall"))),
    "appliance": ("any", (("material", "hard"), ("texture", "surface"), ("size", "any"))),
    "bathroom fixture": ("any", (("material", "hard"), ("texture", "surface"))),
    "electronics": ("any", (("material", "hard"), ("size", "any"), ("count", ""))),
    "decor": ("any", (("material", "hard"), ("texture", "surface"), ("size", "any"))),
    "toy": ("any", (("material", "toy"), ("size", "any"), ("count", ""))),
    "toiletry": ("any", (("material", "hard"), ("size", "any"), ("count", ""))),
    "office": ("any", (("material", "hard"), ("size", "any"), ("count", ""))),
    "tool": ("any", (("material", "hard"), ("texture", "surface"), ("size", "any"))),
    "shape": ("any", (("texture", "shape"), ("size", "any"), ("count", ""))),
}  # fmt: skip

#: items outside the vocabulary: attribute edits only, colour first
DEFAULT_PROFILE: tuple[str, tuple[tuple[str, str], ...]] = (
    "any", (("material", "hard"), ("size", "any"), ("texture", "surface")))

#: material adjective -> the noun descriptions use ("made of wood")
MATERIAL_NOUNS = {"wooden": "wood", "knitted": "yarn", "plush": "soft plush fabric", "golden": "gold"}

#: words that mark a count in an LLM's short label
COUNT_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "single", "lone", "pair",
    "couple", "several", "many", "few", "dozen", "multiple", "group", "bunch", "herd", "flock", "pack",
})  # fmt: skip

_EXTRA_COLOURS = ("grey", "gold", "navy", "maroon", "violet", "magenta", "cyan", "crimson", "blonde", "multicolored",
                  "colorful", "colourful", "dark", "light", "pale")  # fmt: skip


@dataclass(frozen=True)
class NounEntry:
    """A known noun phrase: its base noun (pool member), category, and number behaviour."""

    base: str
    category: str
    mass: bool
    plural_only: bool


@dataclass(frozen=True)
class ItemParts:
    """An item split into modifier words and head noun phrase (singular), with its vocabulary entry."""

    mods: tuple[str, ...]
    head: str
    plural: bool
    entry: NounEntry | None
    extra: tuple[str, ...] = ()  # a trailing "in"/"with" phrase ("man in red" -> ("in", "red"))
    surface: str = ""  # the head as the item writes it ("teddy bears")

    @property
    def category(self) -> str | None:
        return self.entry.category if self.entry else None

    @property
    def base(self) -> str | None:
        return self.entry.base if self.entry else None


def number_flags(phrase: str) -> tuple[bool, bool]:
    """(mass noun, plural-only noun) for a noun phrase: its last word decides, or the word before "of"."""
    words = phrase.split(" ")
    head = words[words.index("of", 1) - 1] if "of" in words[1:] else words[-1]
    return (phrase in MASS_NOUNS or head in MASS_NOUNS), (phrase in PLURALIA_TANTUM or head in PLURALIA_TANTUM)


@lru_cache(maxsize=None)
def portray_index() -> dict[str, NounEntry]:
    """Every known noun phrase (bases first, then synonyms; the first entry of a phrase wins)."""
    index: dict[str, NounEntry] = {}
    for category, bases in PORTRAY_NOUNS.items():
        for base in bases:
            index[base] = NounEntry(base, category, *number_flags(base))
    for category, bases in PORTRAY_NOUNS.items():
        for base, synonyms in bases.items():
            for syn in synonyms:
                index.setdefault(syn, NounEntry(base, category, *number_flags(syn)))
    return index


def noun_entry(phrase: str) -> NounEntry | None:
    return portray_index().get(phrase.lower())


def super_category(category: str | None) -> str | None:
    if category is None:
        return None
    return next((sup for sup, cats in SUPER_CATEGORIES.items() if category in cats), category)


def swap_pool(category: str) -> tuple[str, ...]:
    """The bases an item of ``category`` may be replaced by (generic nouns excluded)."""
    return tuple(b for b in PORTRAY_NOUNS[category] if b not in GENERIC_NOUNS)


def noun_synonyms(base: str) -> tuple[str, ...]:
    """Curated near synonyms and subtypes of a base noun (empty for unknown nouns)."""
    entry = noun_entry(base)
    return PORTRAY_NOUNS[entry.category].get(entry.base, ()) if entry else ()


def portray_profile(category: str | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    return PORTRAY_PROFILES.get(category, DEFAULT_PROFILE) if category else DEFAULT_PROFILE


@lru_cache(maxsize=None)
def _attribute_index() -> dict[str, str]:
    """Attribute word -> kind (colour, material, texture, size, count)."""
    index: dict[str, str] = {}
    for kind, tables in (("colour", PORTRAY_COLOURS), ("material", PORTRAY_MATERIALS),
                         ("size", PORTRAY_SIZES), ("texture", PORTRAY_TEXTURES)):
        for words in tables.values():
            for word in words:
                index.setdefault(word, kind)
    for word in (*ADJECTIVE_CATEGORIES["colour"], *COLOUR_ALIASES, *_EXTRA_COLOURS):
        index.setdefault(word, "colour")
    for word in ADJECTIVE_CATEGORIES["material"]:
        index.setdefault(word, "material")
    for word in ADJECTIVE_CATEGORIES["size"]:
        index.setdefault(word, "size")
    for word in ADJECTIVE_CATEGORIES["pattern"]:
        index.setdefault(word, "texture")
    for word in COUNT_WORDS:
        index.setdefault(word, "count")
    return index


def attribute_kind(word: str) -> str | None:
    """colour, material, texture, size or count for an attribute word (numbers are counts), else None."""
    return "count" if word.isdigit() else _attribute_index().get(word.lower())


_TOKEN = re.compile(r"[a-z0-9][a-z0-9'\-]*")
_PREPOSITIONS = (" in ", " with ", " wearing ")


def _singular_forms(word: str) -> tuple[str, ...]:
    """Candidate singulars of a word (the rules mis-singularise some, e.g. cookies -> cooky)."""
    from genemi.text.inflection import singularize

    forms = [singularize(word)]
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
        if word.endswith("es"):
            forms.append(word[:-2])
    return tuple(f for f in dict.fromkeys(forms) if f and f != word)


def _singular_phrases(phrase: str) -> tuple[str, ...]:
    """Singulars of a phrase: the word before "of" ("bars of soap") or the last word."""
    words = phrase.split(" ")
    at = words.index("of", 1) - 1 if "of" in words[1:] else len(words) - 1
    return tuple(" ".join(words[:at] + [s] + words[at + 1:]) for s in _singular_forms(words[at]))


@lru_cache(maxsize=65536)
def split_item(item: str) -> ItemParts:
    """Split an item ("small red teddy bears") into modifiers, head (singular) and number.

    The head is the longest known noun phrase ending the item (plural forms are recognised); an unknown
    item's head is its last word."""
    text = " ".join(_TOKEN.findall(item.lower()))
    extra: tuple[str, ...] = ()
    for prep in _PREPOSITIONS:
        if prep in f" {text} ":
            text, _, rest = f" {text} ".partition(prep)
            text, extra = text.strip(), (prep.strip(), *rest.split())
            break
    words = text.split()
    if not words:
        return ItemParts((), "", False, None, extra)
    index = portray_index()
    for size in range(min(4, len(words)), 0, -1):
        phrase = " ".join(words[-size:])
        mods = tuple(words[:-size])
        if phrase in index:
            return ItemParts(mods, phrase, False, index[phrase], extra, phrase)
        for singular in _singular_phrases(phrase):
            if singular in index and not index[singular].mass:
                return ItemParts(mods, singular, True, index[singular], extra, phrase)
    head = words[-1]
    forms = _singular_forms(head)
    plural = bool(forms) and not head.endswith(("ss", "us", "is", "ous"))
    return ItemParts(tuple(words[:-1]), forms[0] if plural else head, plural, None, extra, head)


def classify_edit(item: str, short: str) -> str:
    """What a portrayal's short label changes about an item: colour (a colour word added), category
    (another noun of the same category), synonym (a near synonym or subtype), material, texture, size,
    count (such words added, or the number changed), else other."""
    a, b = split_item(item), split_item(short)
    added = [w for w in (*b.mods, *b.extra) if w not in a.mods and w not in a.extra]
    kinds = [attribute_kind(w) for w in added]
    if "colour" in kinds:
        return "colour"
    if a.base and b.base and a.base != b.base and super_category(a.category) == super_category(b.category):
        return "category"
    same_base = a.base is not None and a.base == b.base
    if same_base and a.head != b.head:
        return "synonym"
    for kind in ("material", "texture", "size", "count"):
        if kind in kinds:
            return kind
    if (same_base or a.head == b.head) and a.plural != b.plural:
        return "count"
    return "other"
