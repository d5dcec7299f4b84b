"""Built-in harness plugins (import name ``harness_plugins``), in packages by role.

Each module is an ordinary plugin, registered through the ``harness.plugins`` entry-point group exactly as a
third-party plugin is (``pyproject.toml`` lists them):

- ``methods``: dpo (dpo, ipo), kto, cpo (cpo, simpo), orpo, reward, sft, online_rl (grpo, rloo), ppo;
- ``data``: the sources ``toy`` (toyworld) and ``files``;
- ``evaluators``: gold_reward, reward_model, kl, win_rate, preference_accuracy, text_stats, lm_eval,
  reward_accuracy, and ``judge`` (a package);
- ``tracking``: trackers (``tracking.report_to``).

A module imports the public API (:mod:`harness.plugin`), the toy world and its own package's modules, never
another package's (``tests/test_architecture.py`` checks it).
"""
