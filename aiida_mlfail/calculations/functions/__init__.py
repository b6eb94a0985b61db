"""calcfunctions: cheap, provenance-tracked transformations (inputs, selection, merging, metrics).

The science lives in ``aiida_mlfail.science``; these wrap it so each step is a node in the graph.
One module per family:

* :mod:`.structures` -- start structures from a spec, structures collected into a set;
* :mod:`.training_sets` -- merge (one reference only), select, split;
* :mod:`.lammps_inputs` -- inputs of LAMMPS sampling, GAP MD, ``rerun`` and single-point jobs;
* :mod:`.labels` -- reference labels onto configurations;
* :mod:`.metrics` -- errors of predictions against reference labels, parity plot;
* :mod:`.analysis` -- forensics of a GAP MD run, RDF / MSD / diffusion;
* :mod:`.active_learning` -- the active learner's batch choice, screening, iteration table and ledger;
* :mod:`.calibration` -- ROC / precision-recall of the failure signals of oracle explorations.

Every name is re-exported here (``from aiida_mlfail.calculations.functions import X`` keeps
working), and every calcfunction is registered under an ``mlfail.`` entry point in the
``aiida.calculations`` group (pyproject.toml), so stored nodes name the entry point, not the module.
"""

from __future__ import annotations

from .active_learning import active_learning_summary, choose_batch, first_configurations, screen_configurations
from .analysis import analyse_mlmd, structure_and_dynamics
from .calibration import calibration_analysis
from .labels import LABEL_KEYS, attach_labels, with_labels
from .lammps_inputs import (
    continue_mlmd,
    join_md_segments,
    prepare_mlmd,
    prepare_rerun,
    prepare_sampling,
    prepare_single_points,
)
from .metrics import compare_labels, validation_metrics
from .structures import build_structure, check_structure_spec, collect_structures
from .training_sets import merge_training_sets, select_configurations, split_training_set

__all__ = [
    'LABEL_KEYS',
    'active_learning_summary',
    'analyse_mlmd',
    'attach_labels',
    'build_structure',
    'calibration_analysis',
    'choose_batch',
    'check_structure_spec',
    'collect_structures',
    'compare_labels',
    'continue_mlmd',
    'first_configurations',
    'join_md_segments',
    'merge_training_sets',
    'prepare_mlmd',
    'prepare_rerun',
    'prepare_sampling',
    'prepare_single_points',
    'screen_configurations',
    'select_configurations',
    'split_training_set',
    'structure_and_dynamics',
    'validation_metrics',
    'with_labels',
]
