"""The paper's analyses of a run directory: cached in RUN_DIR/analyses/, each a tidy table plus a figure.

Built on the pure functions of `sddlab.analyses.math` (no files, no training), the one training loop
`sddlab.training.train` (re-dense and re-init training, through `AnalysedRun.train`) and the one
per-level driver `AnalysedRun.per_level` of `levels`. Every function takes a run directory (or an
`AnalysedRun`, to share one loaded data set and model) and returns an `AnalysisResult`:

- `distance`: learning-distance variants per level and per layer (checkpoints only, cheap).
- `redense`: re-dense training of levels (all weights trainable again, constant LR).
- `interpolation`: sparse -> re-dense linear interpolation, train / test loss and accuracy.
- `landscape`: 1-D loss curves along filter-normalised random directions.
- `curvature`: Hessian trace (Hutchinson) and top eigenvalue of the sparse network.
- `tickets`: winning ticket vs random re-initialisation vs one-shot pruning.
- `phases` / `flatness`: phase detection; flatness at the dense, critical, sweet and collapse levels.
- `calibration`: ECE, adaptive ECE, NLL and confidence per level (records, else checkpoints); reliability bins.
- `correlations`: rank correlations of test accuracy with every predictor, with a one-line verdict.
- `analyse_all`: correlations, tickets and flatness together.
"""

from sddlab.analyses.cache import AnalysisCache, AnalysisResult
from sddlab.analyses.calibration import calibration
from sddlab.analyses.correlations import correlations
from sddlab.analyses.curvature import curvature
from sddlab.analyses.distance import distance
from sddlab.analyses.flatness import flatness, landmarks, phases
from sddlab.analyses.interpolation import interpolation
from sddlab.analyses.landscape import landscape
from sddlab.analyses.levels import AnalysedRun, as_run
from sddlab.analyses.redense import redense
from sddlab.analyses.suite import analyse_all
from sddlab.analyses.tickets import tickets

__all__ = [
    "AnalysedRun",
    "AnalysisCache",
    "AnalysisResult",
    "analyse_all",
    "as_run",
    "calibration",
    "correlations",
    "curvature",
    "distance",
    "flatness",
    "interpolation",
    "landmarks",
    "landscape",
    "phases",
    "redense",
    "tickets",
]
