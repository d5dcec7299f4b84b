"""Training methods: each module registers its MethodSpecs through ``harness_methods_register``."""
