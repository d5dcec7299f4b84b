"""Checkpoint evaluators: each module registers its EvaluatorSpecs through ``harness_evaluators_register``."""
