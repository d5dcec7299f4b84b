"""Evaluating checkpoints: the context evaluators share and the loop that runs them
(:mod:`~harness.evaluation.context`, with what an evaluator's failure costs in
:mod:`~harness.evaluation.failures`), seeded sampling and log-probabilities
(:mod:`~harness.evaluation.sampling`; the samples' layout in :mod:`~harness.evaluation.samples`, given
completions in :mod:`~harness.evaluation.completions`, scored in length-sorted batches by
:mod:`~harness.evaluation.scoring`), the reference-evaluation cache (:mod:`~harness.evaluation.refcache`; its
key in :mod:`~harness.evaluation.refcache_key`, its checksummed files in
:mod:`~harness.evaluation.cache_files`), reward models (:mod:`~harness.evaluation.reward_models`), health
flags (:mod:`~harness.evaluation.health`) and readable samples (:mod:`~harness.evaluation.readable`). The
evaluators themselves are plugins (``plugins/evaluators/``)."""
