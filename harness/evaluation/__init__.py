"""Evaluating checkpoints: the context evaluators share (:mod:`~harness.evaluation.context`), seeded sampling
and log-probabilities (:mod:`~harness.evaluation.sampling`), the reference-evaluation cache
(:mod:`~harness.evaluation.refcache`), reward models (:mod:`~harness.evaluation.reward_models`), summary
statistics (:mod:`~harness.evaluation.stats`) and health flags (:mod:`~harness.evaluation.health`). The
evaluators themselves are plugins (``plugins/eval_*.py``)."""
