"""Built-in harness plugins (import name ``harness_plugins``).

Each module is an ordinary plugin, registered through the ``harness.plugins`` entry-point group exactly as a
third-party plugin is: methods (dpo/ipo, kto, cpo/simpo, orpo), data sources (toyworld, datafiles) and
evaluators (gold_reward, kl).
"""
