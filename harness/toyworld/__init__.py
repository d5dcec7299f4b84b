"""The toy world: the harness's built-in synthetic model, data and exact gold reward.

No model hub is needed: a template grammar of short movie reviews (:mod:`.vocab`, :mod:`.grammar`,
:mod:`.reviews`), a gold reward known exactly (:mod:`.reward`), a word-level tokenizer (:mod:`.tokenizer`), a
small Llama model pretrained on the grammar's text (:mod:`.pretrain`), and preference pairs sampled from it
and labelled by the gold reward (:mod:`.pairs`), built deterministically from a :class:`ToyWorldSpec` and
cached on disk (:mod:`.build`). It is a miniature of the controlled-sentiment experiment of the DPO paper.

    from harness.toyworld import build_toy_world
    world = build_toy_world()          # about a minute the first time, then read from the cache
    world.model_dir, world.train_pairs_path, world.meta["base_model"]["mean_gold_reward"]
"""

from harness.toyworld.build import ToyWorld, build_toy_world, default_cache_dir
from harness.toyworld.grammar import GrammarCheck, check
from harness.toyworld.reward import GoldRewardBreakdown, gold_reward, gold_reward_breakdown, gold_rewards
from harness.toyworld.spec import VERSION, ToyWorldSpec

__all__ = [
    "VERSION",
    "GoldRewardBreakdown",
    "GrammarCheck",
    "ToyWorld",
    "ToyWorldSpec",
    "build_tokenizer",
    "build_toy_world",
    "check",
    "default_cache_dir",
    "gold_reward",
    "gold_reward_breakdown",
    "gold_rewards",
]


def __getattr__(name: str):
    if name == "build_tokenizer":  # imported lazily: it pulls in transformers (a cached world needs neither)
        from harness.toyworld.tokenizer import build_tokenizer

        return build_tokenizer
    raise AttributeError(name)
