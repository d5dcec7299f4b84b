"""Hydra config folder of the plugin, added to the harness's search path by ``harness_config_searchpath``."""
