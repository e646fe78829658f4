"""How the phases move with the amount of training data: the critical minimum, the sweet peak and the margin
over dense for each training-set size, from the runs of a sweep over `data.subset`."""

from __future__ import annotations

import pandas as pd

from sddlab.figures.axis import paper_axis
from sddlab.phases.over_seeds import landmarks_by
from sddlab.store import RunStore

SIZE = "train_examples"


def with_train_examples(table: pd.DataFrame) -> pd.DataFrame:
    """The level table with each run's number of training examples (from its meta.json: the subset actually drawn,
    after any held-out split), so that a run on the whole data set has its true size rather than no subset."""
    sizes = {run_dir: RunStore(run_dir).meta().get("noise", {}).get("train_examples")
             for run_dir in table["run_dir"].unique()}
    return table.assign(**{SIZE: table["run_dir"].map(sizes)})


def phases_by_size(table: pd.DataFrame) -> pd.DataFrame:
    """One row per training-set size, smallest first: seeds, dense accuracy, each landmark's level, sparsity,
    remaining weights and accuracy, and the sweet-minus-dense margin with its spread over seeds (see
    `sddlab.phases.over_seeds`); official-count runs on the paper's sparsity axis."""
    sized = table if SIZE in table else with_train_examples(table)
    return landmarks_by(paper_axis(sized), [SIZE]).sort_values(SIZE, ignore_index=True)
