"""Composing and checking trial configs before any compute.

:mod:`~harness.config.declared` lists the core settings, each declared once (default, type, check, help) in
:mod:`~harness.config.settings_run`, :mod:`~harness.config.settings_eval`,
:mod:`~harness.config.settings_model` and :mod:`~harness.config.settings_sweeper`;
:mod:`~harness.config.store` registers their nodes and what plugins contribute to the config tree (every
``method=<name>``, the profiles, the evaluators' options); :mod:`~harness.config.compose` expands and composes
the jobs of a run; :mod:`~harness.config.validation` checks a composed trial config;
:mod:`~harness.config.trainer_config` maps a method's knobs onto its trainer config and keeps one home per
knob; :mod:`~harness.config.metrics` resolves metric names used as objectives.
"""
