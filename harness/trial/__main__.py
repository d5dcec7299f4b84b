"""``python -m harness.trial CONFIG.yaml TRIAL_DIR``: run one trial from a composed config file.

For a stage that a plugin runs as a trial of its own (the reward stage of online methods), in a fresh process:
the record is written to ``TRIAL_DIR/trial.json`` and the exit status is 0 whatever the trial's status (read
the record).
"""

import sys
from pathlib import Path

from omegaconf import OmegaConf

from harness.trial.runner import run_trial

if len(sys.argv) != 3:
    sys.exit("usage: python -m harness.trial CONFIG.yaml TRIAL_DIR")
run_trial(OmegaConf.load(sys.argv[1]), Path(sys.argv[2]))
