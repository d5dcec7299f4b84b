"""The toy world's words: every word, its grammatical classes and its sentiment polarity.

This module owns the lexicon only (no grammar, no sampling). A word may belong to several classes ("the" is
a singular and a plural determiner, "really" is an intensifier and a verb adverb); the automaton in
:mod:`harness.toyworld.grammar` works over these classes. Polarity is +1 (positive), -1 (negative) or 0
and only matters for adjectives and verbs, the words that negation ("not") applies to.
"""

from __future__ import annotations

from types import MappingProxyType


def _w(text: str) -> list[str]:
    """Whitespace-separated words (keeps the word lists below readable)."""
    return text.split()


# --- nouns ------------------------------------------------------------------------------------------------
NOUN_S = _w("""movie film plot acting cast ending script soundtrack story dialogue direction director pacing
cinematography music score lead villain hero performance screenplay editing humor finale premise sequel
setting atmosphere twist climax opening show series documentary animation remake romance""")
NOUN_P = _w("""characters actors effects visuals scenes songs jokes costumes performances sets stunts villains
twists battles landscapes dialogues""")
# Nouns of prepositional phrases ("with my friends", "on the weekend").
PNOUN = _w(
    "friends family sister brother wife husband kids parents weekend "
    "evening holidays theater cinema festival flight couch"
)

# --- adjectives, by polarity -----------------------------------------------------------------------------
ADJ_POS = _w("""great good excellent wonderful amazing brilliant superb fantastic beautiful charming
delightful enjoyable funny moving touching clever smart gripping thrilling stunning powerful fresh solid
perfect lovely memorable engaging impressive outstanding terrific marvelous splendid elegant inspiring
heartfelt witty compelling captivating magnificent refreshing satisfying strong nice fun sweet gorgeous""")
ADJ_NEG = _w("""bad terrible awful boring dull weak poor horrible dreadful lame stupid silly bland tedious
clumsy messy painful annoying forgettable shallow predictable pointless flat lazy cheap ugly confusing
disappointing mediocre awkward tiresome stale sloppy hollow wooden cheesy irritating pathetic atrocious
unbearable lifeless trite ridiculous overlong bloated""")
ADJ_NEU = _w("""long short old new quiet loud dark simple familiar different typical unusual french italian
american modern classic young serious strange subtle complex bright gentle large small recent early late
ordinary""")

# --- adverbs ---------------------------------------------------------------------------------------------
# Intensifiers before an adjective ("very good"); VADV also before a verb ("i really loved it").
ADV = _w("""very really truly quite so extremely rather incredibly remarkably fairly somewhat genuinely
totally utterly absolutely surprisingly""")
VADV = _w("really truly genuinely totally absolutely")
# Sentence adverbs, always followed by a comma ("overall , the film was fine .").
SADV = _w("overall honestly frankly personally basically admittedly ultimately anyway")

# --- verbs, by form and polarity --------------------------------------------------------------------------
VERB_PAST_POS = _w(
    "loved enjoyed adored liked admired appreciated praised cherished relished treasured recommended"
)
VERB_PAST_NEG = _w("hated disliked despised loathed regretted resented detested")
VERB_PAST_NEU = _w(
    "watched saw rented streamed reviewed noticed finished remembered described discussed rewatched expected"
)
VERB_BASE_POS = _w("love enjoy like recommend admire appreciate")  # after "did not"
VERB_BASE_NEG = _w("hate dislike regret")
VERB_BASE_NEU = _w("watch see finish understand remember expect")
COG = _w("thought felt think believe")  # "i thought the plot was weak"

# --- function words and punctuation -----------------------------------------------------------------------
DET_S = _w("the this that")
DET_P = _w("the these those")
PDET = _w("my our the")
PRON = _w("i we")
IT = ["it"]
COP_S = _w("was is")
COP_P = _w("were are")
AUX = ["did"]
NOT = ["not"]
CONJ = _w("and but")
PREP = _w("with at on in after before during")
PERIOD, COMMA = ".", ","

NEGATION = "not"
PUNCTUATION = frozenset({PERIOD, COMMA})

_CLASS_LISTS: dict[str, list[str]] = {
    "NOUN_S": NOUN_S,
    "NOUN_P": NOUN_P,
    "PNOUN": PNOUN,
    "ADJ": ADJ_POS + ADJ_NEG + ADJ_NEU,
    "ADV": ADV,
    "VADV": VADV,
    "SADV": SADV,
    "VERB_PAST": VERB_PAST_POS + VERB_PAST_NEG + VERB_PAST_NEU,
    "VERB_BASE": VERB_BASE_POS + VERB_BASE_NEG + VERB_BASE_NEU,
    "COG": COG,
    "DET_S": DET_S,
    "DET_P": DET_P,
    "PDET": PDET,
    "PRON": PRON,
    "IT": IT,
    "COP_S": COP_S,
    "COP_P": COP_P,
    "AUX": AUX,
    "NOT": NOT,
    "CONJ": CONJ,
    "PREP": PREP,
    "PERIOD": [PERIOD],
    "COMMA": [COMMA],
}


def _classes() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for cls, words in _CLASS_LISTS.items():
        for word in words:
            out.setdefault(word, set()).add(cls)
    return {word: frozenset(classes) for word, classes in out.items()}


#: word -> the grammatical classes it can take.
WORD_CLASSES: MappingProxyType[str, frozenset[str]] = MappingProxyType(_classes())

#: Every word of the toy language, punctuation included, in a fixed order (the tokenizer's vocabulary order).
WORDS: tuple[str, ...] = tuple(sorted(WORD_CLASSES))

#: Sentiment polarity of adjectives and verbs (+1 / -1); neutral words are absent.
POLARITY: MappingProxyType[str, int] = MappingProxyType(
    {w: +1 for w in ADJ_POS + VERB_PAST_POS + VERB_BASE_POS}
    | {w: -1 for w in ADJ_NEG + VERB_PAST_NEG + VERB_BASE_NEG}
)

#: Words that "not" applies to: the next of these (before punctuation) has its polarity flipped.
NEGATABLE: frozenset[str] = frozenset(
    w for w, classes in WORD_CLASSES.items() if classes & {"ADJ", "VERB_PAST", "VERB_BASE"}
)

#: Classes of function words and punctuation; every other word is a content word (see the repeat penalty).
FUNCTION_CLASSES = frozenset(
    {
        "DET_S",
        "DET_P",
        "PDET",
        "PRON",
        "IT",
        "COP_S",
        "COP_P",
        "AUX",
        "NOT",
        "CONJ",
        "PREP",
        "PERIOD",
        "COMMA",
    }
)

#: Content words: nouns, adjectives, adverbs and verbs (repeating one of these in a completion is penalised).
CONTENT_WORDS: frozenset[str] = frozenset(w for w, c in WORD_CLASSES.items() if not c <= FUNCTION_CLASSES)


def classes_of(word: str) -> frozenset[str]:
    """The grammatical classes of ``word`` (empty for a word outside the vocabulary)."""
    return WORD_CLASSES.get(word, frozenset())
