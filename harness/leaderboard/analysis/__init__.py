"""The leaderboard's analysis, apart from its rendering: trial records (:class:`harness.records.TrialRecord`)
in, pandas DataFrames and plain sentences out; nothing here knows Markdown or HTML.

Modules: ``frames`` (records as tables: one row per checkpoint, per trial, per sample; cell text), ``columns``
(metric columns from the evaluators' declarations), ``ranking`` (the objective, each trial's checkpoint within
the KL budget, the Pareto front), ``tables`` (the per-trial table, the cost per method), ``seeds`` (means and
intervals over seeds, Holm's correction), ``conclusions`` (each method at its best setting, the verdict),
``matched_kl`` (reward at matched KL; ``matched_kl_cells``: each cell chosen on selection values and read on
test values; ``frontier``: where a reward-vs-KL frontier is read; ``bootstrap``: intervals over seeds and
evaluation noise), ``caveats`` (swept values that changed nothing, loss conventions),
``budgets`` (compute budgets), ``knobs`` (hyperparameters by their papers' names), ``selection`` (how
checkpoints were chosen), ``merging`` (which records may be ranked together).
"""
