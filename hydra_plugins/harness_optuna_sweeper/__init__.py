"""Hydra sweeper plugin ``hydra/sweeper=optuna``: a thin shim over :mod:`harness.sweep.sweeper`.

Hydra instantiates sweepers only from classes found in the ``hydra_plugins`` namespace package, so this
package exists to be found; everything it does is delegated to the harness.
"""
