"""Sampling reviews and prompts from the toy grammar, with a controllable sentiment mix.

This module owns the *distribution* of toy text (what the base model is pretrained on, and where prompts come
from); :mod:`harness.toyworld.grammar` owns what is grammatical, and every review sampled here is grammatical
by that automaton. A review has a *tone*: ``positive`` and ``negative`` reviews have clauses of that polarity
(and some neutral ones), ``neutral`` reviews have no sentiment words, ``mixed`` reviews alternate polarity
from clause to clause ("the acting was great , but the plot was dull ."). Content words are not repeated
within a review. Sampling is deterministic given a :class:`random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from harness.toyworld import vocab as V
from harness.toyworld.grammar import TRANSITIONS, prefix_states

TONES = ("positive", "negative", "neutral", "mixed")
_ADJ = {+1: V.ADJ_POS, -1: V.ADJ_NEG, 0: V.ADJ_NEU}
_PAST = {+1: V.VERB_PAST_POS, -1: V.VERB_PAST_NEG, 0: V.VERB_PAST_NEU}
_BASE = {+1: V.VERB_BASE_POS, -1: V.VERB_BASE_NEG, 0: V.VERB_BASE_NEU}


class _Review:
    """Builds one review, drawing content words without repetition."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def pick(self, words: Sequence[str]) -> str:
        fresh = [w for w in words if w not in self.used]
        word = self.rng.choice(fresh or words)
        if word in V.CONTENT_WORDS:
            self.used.add(word)
        return word

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def np(self, pol: int, p_adj: float) -> list[str]:
        """``DET [[ADV] ADJ] NOUN`` with number agreement; the adjective has polarity ``pol`` or none."""
        plural = self.chance(0.25)
        words = [self.pick(V.DET_P if plural else V.DET_S)]
        if self.chance(p_adj):
            if self.chance(0.2):
                words.append(self.pick(V.ADV))
            words.append(self.pick(_ADJ[pol]))
        words.append(self.pick(V.NOUN_P if plural else V.NOUN_S))
        return words

    def subject(self) -> tuple[list[str], bool]:
        if self.chance(0.2):
            return ["it"], False
        np = self.np(0, 0.15)
        return np, np[-1] in V.NOUN_P

    def predicate(self, pol: int) -> list[str]:
        """``[ADV | not [ADV]] ADJ``: a predicate of polarity ``pol``
        ("not" + an adjective of the other sign)."""
        negate = self.chance(0.15 if pol else 0.05)
        words = ["not"] if negate else []
        if self.chance(0.3):
            words.append(self.pick(V.ADV))
        words.append(self.pick(_ADJ[-pol if negate else pol]))
        return words

    def copular(self, pol: int) -> list[str]:
        subj, plural = self.subject()
        words = [*subj, self.pick(V.COP_P if plural else V.COP_S), *self.predicate(pol)]
        if self.chance(0.2):
            words += ["and", *self.predicate(pol)]
        return words

    def obj(self, pol: int) -> list[str]:
        return ["it"] if self.chance(0.25) else self.np(pol, 0.3)

    def verb_phrase(self, pol: int) -> list[str]:
        words = [self.pick(V.VADV)] if pol and self.chance(0.15) else []
        if self.chance(0.15):  # "did not like" is negative: the base verb has the other sign
            words = ["did", "not", *words, self.pick(_BASE[-pol])]
        else:
            words.append(self.pick(_PAST[pol]))
        return words + self.obj(pol)

    def verbal(self, pol: int) -> list[str]:
        words = [self.pick(V.PRON), *self.verb_phrase(pol)]
        if self.chance(0.25):
            words += [self.pick(V.PREP), self.pick(V.PDET), self.pick(V.PNOUN)]
        elif self.chance(0.12):
            words += ["and", *self.verb_phrase(pol)]
        return words

    def clause(self, pol: int) -> list[str]:
        r = self.rng.random()
        if r < 0.45:
            return self.copular(pol)
        if r < 0.88:
            return self.verbal(pol)
        return [self.pick(V.PRON), self.pick(V.COG), *self.copular(pol)]

    def sentence(self, pols: list[int]) -> list[str]:
        words = [self.pick(V.SADV), ","] if self.chance(0.1) else []
        words += self.clause(pols[0])
        for pol in pols[1:]:
            contrast = pol != pols[0]
            joiner = self.rng.choice([[",", "but"], ["but"]] if contrast else [[",", "and"], ["and"]])
            words += [*joiner, *self.clause(pol)]
        return [*words, "."]


def _polarities(rng: random.Random, tone: str, n_clauses: int, offset: int, sign: int) -> list[int]:
    if tone == "neutral":
        return [0] * n_clauses
    if tone == "mixed":
        return [sign * (-1) ** (offset + k) for k in range(n_clauses)]
    base = +1 if tone == "positive" else -1
    return [0 if rng.random() < 0.2 else base for _ in range(n_clauses)]


def sample_review(rng: random.Random, tone: str, min_words: int = 8, max_words: int = 30) -> str:
    """One review of ``tone`` (see :data:`TONES`) with 1-3 sentences and ``min_words..max_words`` tokens."""
    if tone not in TONES:
        raise ValueError(f"tone must be one of {TONES}, got {tone!r}")
    while True:
        review = _Review(rng)
        sign = rng.choice((1, -1))
        n_sentences = rng.choices((1, 2, 3), weights=(0.25, 0.45, 0.30))[0]
        words: list[str] = []
        offset = 0
        for _ in range(n_sentences):
            n_clauses = 2 if (tone == "mixed" and n_sentences == 1) or rng.random() < 0.3 else 1
            words += review.sentence(_polarities(rng, tone, n_clauses, offset, sign))
            offset += n_clauses
        if min_words <= len(words) <= max_words:
            return " ".join(words)


def sample_tone(rng: random.Random, mix: Mapping[str, float]) -> str:
    """A tone drawn with the weights in ``mix`` (keys from :data:`TONES`)."""
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def sample_reviews(
    rng: random.Random, n: int, mix: Mapping[str, float], min_words: int = 8, max_words: int = 30
) -> list[str]:
    """``n`` reviews whose tones follow ``mix``."""
    return [sample_review(rng, sample_tone(rng, mix), min_words, max_words) for _ in range(n)]


def _cut_points(words: list[str]) -> list[int]:
    """Prefix lengths that make a good prompt: inside the first or second sentence, at least 2 words, where
    the current clause is unfinished (so the completion has to finish it: after "the movie was" the
    sentiment is the completion's), and not on an open negation (a "not" whose word would be in the
    completion, which the completion-only gold reward could not see)."""
    ends = [i for i, w in enumerate(words) if w == V.PERIOD]
    limit = ends[1] if len(ends) > 1 else ends[0]  # at most the first sentence plus part of the second
    points = []
    negation_open = False
    for i, (word, states) in enumerate(zip(words[:limit], prefix_states(words[:limit]), strict=True)):
        if word == V.NEGATION:
            negation_open = True
        elif word in V.NEGATABLE or word in V.PUNCTUATION:
            negation_open = False
        can_end = any("PERIOD" in TRANSITIONS[s] for s in states)
        if i + 1 >= 2 and word != V.PERIOD and not can_end and not negation_open:
            points.append(i + 1)
    return points


def sample_prompt(
    rng: random.Random, mix: Mapping[str, float], min_words: int = 8, max_words: int = 30
) -> str:
    """The beginning of a review: part of its first sentence, or its first sentence and part of the next."""
    while True:
        words = sample_review(rng, sample_tone(rng, mix), min_words, max_words).split()
        points = _cut_points(words)
        if points:
            return " ".join(words[: rng.choice(points)])
