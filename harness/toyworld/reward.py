"""The toy world's gold reward: exact sentiment of a completion minus penalties for degenerate text.

This module owns the ground-truth reward (the role of the sentiment classifier in the DPO paper's
controlled-sentiment experiment). It scores the completion alone, as whitespace-separated tokens:

    net        = sum over adjectives and verbs w of polarity(w) * (-1 if w is negated)
                 (polarity +1 positive, -1 negative, 0 neutral; "not" negates the next adjective or
                 verb before the next "." or ",", so "not bad" counts +1 and "did not like" -1)
    sentiment  = tanh(net / 2)                                   in (-1, 1)
    repeat     = 0.25 * number of content-word tokens (nouns, adjectives, adverbs, verbs) that repeat an
                 earlier token of the completion
    unfinished = 0.5 if the completion does not end with "." (empty, or cut off mid-sentence) else 0
    grammar    = 0.5 * number of ungrammatical transitions (see harness.toyworld.grammar; the first token
                 may continue the prompt from any grammatical state)
    total      = sentiment - repeat - unfinished - grammar       (at most 1; unbounded below)

Why this shape: a finished, grammatical, enthusiastic review ("great . i loved the acting .") scores about
0.76-0.95, while the base model (pretrained on a balanced mix of tones) averages near 0, so there is headroom.
``tanh`` saturates after three or four sentiment words, whereas a reward model learned from preference pairs
tends to keep paying for more of them: a policy that over-optimises such a model drifts to word salad
("great amazing superb wonderful"), repeats, or completions cut off at the token limit, which the gold
reward penalises. The gap between learned-reward and gold-reward curves is what the harness shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from harness.toyworld.grammar import check, tokens
from harness.toyworld.vocab import CONTENT_WORDS, NEGATABLE, NEGATION, PERIOD, POLARITY, PUNCTUATION

SENTIMENT_SCALE = 2.0  # net sentiment words at which tanh reaches 0.76
REPEAT_WEIGHT = 0.25  # per repeated content word
UNFINISHED_WEIGHT = 0.5  # once, when the last token is not "."
GRAMMAR_WEIGHT = 0.5  # per ungrammatical transition


@dataclass(frozen=True)
class GoldRewardBreakdown:
    """The gold reward of one completion and its parts (``total = sentiment - the three penalties``)."""

    sentiment: float
    repeat_penalty: float
    unfinished_penalty: float
    grammar_penalty: float
    total: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


def net_sentiment(words: list[str]) -> int:
    """Positive minus negative sentiment words, each flipped when negated by a preceding "not"."""
    net = 0
    negated = False
    for word in words:
        if word == NEGATION:
            negated = not negated
        elif word in PUNCTUATION:
            negated = False
        elif word in NEGATABLE:
            polarity = POLARITY.get(word, 0)
            net += -polarity if negated else polarity
            negated = False
    return net


def repeated_content_words(words: list[str]) -> int:
    """Number of content-word tokens that repeat an earlier token of the sequence."""
    seen: set[str] = set()
    repeats = 0
    for word in words:
        if word in CONTENT_WORDS:
            repeats += word in seen
            seen.add(word)
    return repeats


def gold_reward_breakdown(completion: str) -> GoldRewardBreakdown:
    """The gold reward of ``completion`` with its parts (see the module docstring for the formula)."""
    words = tokens(completion)
    sentiment = math.tanh(net_sentiment(words) / SENTIMENT_SCALE)
    repeat = REPEAT_WEIGHT * repeated_content_words(words)
    unfinished = 0.0 if words and words[-1] == PERIOD else UNFINISHED_WEIGHT
    grammar = GRAMMAR_WEIGHT * check(words, start="any").errors
    return GoldRewardBreakdown(
        sentiment=sentiment,
        repeat_penalty=repeat,
        unfinished_penalty=unfinished,
        grammar_penalty=grammar,
        total=sentiment - repeat - unfinished - grammar,
    )


def gold_reward(completion: str) -> float:
    """The gold reward of one completion (text after the prompt, tokens separated by spaces)."""
    return gold_reward_breakdown(completion).total


def gold_rewards(completions: Iterable[str]) -> list[float]:
    """The gold reward of each completion."""
    return [gold_reward(c) for c in completions]
