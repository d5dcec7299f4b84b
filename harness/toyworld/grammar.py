"""The toy language's grammar as a finite-state automaton over word classes, and a checker for any text.

This module owns what "grammatical" means. Sentences are clauses joined by conjunctions and ended by ".":

    sentence := [SADV ","] clause ((CONJ | "," CONJ) clause)* "."
    clause   := NP COP [ADV | "not" [ADV]] ADJ (CONJ [ADV | "not" [ADV]] ADJ)*  "the plot was not very good"
              | PRON [VADV] (VERB_PAST | "did not" [VADV] VERB_BASE) OBJ [PREP PDET PNOUN]
              | PRON [VADV] COG clause                                             "i thought it was fun"
    NP, OBJ  := DET [[ADV] ADJ] NOUN (determiner and noun agree in number) | "it"

(after an object, "and" may also start a verb phrase: "i watched it and loved the cast"). The automaton is
nondeterministic because some words have several classes ("the" is singular and plural); the checker
follows the set of possible states. An *ungrammatical transition* is a token that no state of the current
set can read. The checker then resynchronises on that token (as if it started a fresh phrase, so "." always
returns to the sentence start) and goes on counting, so any token sequence gets a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from harness.toyworld.vocab import PERIOD, classes_of

START = "S0"  # sentence start; also the only accepting state


def _np_transitions(prefix: str, end_s: str, end_p: str) -> dict[str, dict[str, str]]:
    """States of a determiner phrase ``DET [[ADV] ADJ] NOUN`` with number agreement."""
    out: dict[str, dict[str, str]] = {}
    for num, end in (("S", end_s), ("P", end_p)):
        out[f"{prefix}_D{num}"] = {"ADV": f"{prefix}_V{num}", "ADJ": f"{prefix}_A{num}", f"NOUN_{num}": end}
        out[f"{prefix}_V{num}"] = {"ADJ": f"{prefix}_A{num}"}
        out[f"{prefix}_A{num}"] = {f"NOUN_{num}": end}
    return out


def _build() -> dict[str, dict[str, str]]:
    clause_start = {"DET_S": "SUBJ_DS", "DET_P": "SUBJ_DP", "PRON": "V0", "IT": "SUBJ_S"}
    clause_end = {"PERIOD": START, "COMMA": "COMMA"}
    t: dict[str, dict[str, str]] = {
        START: {**clause_start, "SADV": "SADV"},
        "SADV": {"COMMA": "CL"},
        "CL": dict(clause_start),
        "COMMA": {"CONJ": "CL"},
        # copular clause
        "SUBJ_S": {"COP_S": "PRED"},
        "SUBJ_P": {"COP_P": "PRED"},
        "PRED": {"ADV": "PRED_ADV", "NOT": "PRED_NOT", "ADJ": "PRED_END"},
        "PRED_NOT": {"ADV": "PRED_ADV", "ADJ": "PRED_END"},
        "PRED_ADV": {"ADJ": "PRED_END"},
        "PRED_END": {**clause_end, "CONJ": "CONJ_PRED"},
        "CONJ_PRED": {**clause_start, "ADV": "PRED_ADV", "NOT": "PRED_NOT", "ADJ": "PRED_END"},
        # verbal clause
        "V0": {"VERB_PAST": "OBJ", "VADV": "V_ADV", "AUX": "AUX", "COG": "CL"},
        "V_ADV": {"VERB_PAST": "OBJ", "COG": "CL"},
        "AUX": {"NOT": "AUX_NOT"},
        "AUX_NOT": {"VERB_BASE": "OBJ", "VADV": "AUX_NOT_ADV"},
        "AUX_NOT_ADV": {"VERB_BASE": "OBJ"},
        "OBJ": {"DET_S": "OBJ_DS", "DET_P": "OBJ_DP", "IT": "OBJ_END"},
        "OBJ_END": {**clause_end, "CONJ": "CONJ_VP", "PREP": "PP0"},
        "CONJ_VP": {**clause_start, "VERB_PAST": "OBJ", "VADV": "V_ADV", "AUX": "AUX"},
        "PP0": {"PDET": "PP1"},
        "PP1": {"PNOUN": "PP_END"},
        "PP_END": {**clause_end, "CONJ": "CONJ_VP"},
    }
    t.update(_np_transitions("SUBJ", "SUBJ_S", "SUBJ_P"))
    t.update(_np_transitions("OBJ", "OBJ_END", "OBJ_END"))
    return t


#: state -> {word class -> next state}
TRANSITIONS: dict[str, dict[str, str]] = _build()
ALL_STATES: frozenset[str] = frozenset(TRANSITIONS)


@lru_cache(maxsize=4096)
def _word_moves(word: str) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """For ``word``: state -> next states, and every state reachable by reading ``word`` from any state."""
    moves: dict[str, set[str]] = {}
    for state, table in TRANSITIONS.items():
        for cls in classes_of(word):
            if cls in table:
                moves.setdefault(state, set()).add(table[cls])
    frozen = {s: frozenset(n) for s, n in moves.items()}
    entry = frozenset().union(*frozen.values()) if frozen else frozenset()
    return frozen, entry


@dataclass(frozen=True)
class GrammarCheck:
    """Result of checking one token sequence."""

    errors: int  # ungrammatical transitions (tokens no current state can read, unknown words included)
    finished: bool  # non-empty and the last token is "." (the text ends with a finished sentence)
    complete: bool  # the automaton ends in the sentence-start state (only meaningful for start="sentence")
    n_tokens: int

    @property
    def grammatical(self) -> bool:
        """No ungrammatical transition."""
        return self.errors == 0


def tokens(text: str) -> list[str]:
    """Split text on whitespace (the toy language's only tokenisation rule)."""
    return text.split()


def check(text: str | list[str], start: str = "any") -> GrammarCheck:
    """Count ungrammatical transitions in ``text`` (a string or a token list).

    :param start: ``"sentence"`` parses from the start of a sentence (a whole review); ``"any"`` accepts any
        state at the first token (a completion that continues a prompt mid-sentence), so only the transitions
        inside the text are judged.
    :returns: a :class:`GrammarCheck`.
    """
    words = tokens(text) if isinstance(text, str) else list(text)
    if start not in ("any", "sentence"):
        raise ValueError(f"start must be 'any' or 'sentence', got {start!r}")
    states: frozenset[str] = ALL_STATES if start == "any" else frozenset({START})
    errors = 0
    for word in words:
        moves, entry = _word_moves(word)
        nxt = frozenset().union(*(moves[s] for s in states if s in moves))
        if not nxt:
            errors += 1
            nxt = entry or ALL_STATES  # resynchronise on this word
        states = nxt
    finished = bool(words) and words[-1] == PERIOD
    return GrammarCheck(
        errors=errors, finished=finished, complete=START in states and bool(words), n_tokens=len(words)
    )


def prefix_states(words: list[str]) -> list[frozenset[str]]:
    """The automaton's state set after each token of a sentence-start parse (empty sets after an error)."""
    states = frozenset({START})
    out = []
    for word in words:
        moves, _ = _word_moves(word)
        states = frozenset().union(*(moves[s] for s in states if s in moves))
        out.append(states)
    return out
