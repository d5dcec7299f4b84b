"""Data sources: the toy world (``data.source=toy``) and files (``data.source=files``),
through ``harness_data_load``."""
