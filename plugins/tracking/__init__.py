"""Experiment trackers: each trial one run in TensorBoard, W&B, MLflow or trackio (``tracking.report_to``)."""
