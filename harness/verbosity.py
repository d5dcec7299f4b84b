"""How chatty the libraries underneath are.

A sweep runs dozens of trials in one process; per-trial loading bars, dataset ``map`` bars and deprecation
warnings from datasets, transformers and TRL would bury the harness's own progress bars and results. They are
silenced unless ``verbose=true``; errors are always shown.
"""

from __future__ import annotations

import warnings


def set_library_verbosity(verbose: bool) -> None:
    """Quiet datasets/transformers/TRL progress bars, info logs and FutureWarnings (unless ``verbose``)."""
    import datasets
    import transformers

    if verbose:
        datasets.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()
        transformers.utils.logging.set_verbosity_warning()
        return
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for module in ("transformers", "trl", "peft", "accelerate", "datasets"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
