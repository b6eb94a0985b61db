"""Every ``normalise_*`` function refuses a bad value with a ``ValueError`` naming the key, never with a
``TypeError``/``OverflowError``/``KeyError`` (issue 13: ``int(.inf)`` and ``float(None)`` escaped the validators),
and never accepts a non-finite number, a bool or a string where a number is expected."""

import math
import re

import pytest

from aiida_mlfail.engines.rematch import normalise_parameters
from aiida_mlfail.science import active_learning, explore, gap, lammps_md, mlmd, selection, soap, structures
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.config_space import normalise_config_space_parameters
from aiida_mlfail.workflows.restart import RESTART_DEFAULTS, normalise_restart

TWO_BODY = [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]
BAD = [math.inf, -math.inf, math.nan, None, True, False, '300', 1e30, -1, 0, 2.5, [], {}, [1.0]]

#: (name, function of one dict, a valid dict, the numeric keys to spoil: path inside the dict)
NORMALISERS = [
    ('md', lammps_md.normalise_md, {}, [(k,) for k in lammps_md.MD_DEFAULTS]),
    ('state point', lambda p: lammps_md.normalise_state_point(p, ['Na', 'Cl']),
     {'temperature': 1400.0, 'ensemble': 'NPT', 'pressure': 1.0, 'volume': 100.0},
     [('temperature',), ('pressure',), ('volume',)]),
    ('state point density', lambda p: lammps_md.normalise_state_point(p, ['Na', 'Cl']),
     {'temperature': 1400.0, 'density': 1.5}, [('density',)]),
    ('mlmd', mlmd.normalise_mlmd, {'reference_volume': 100.0},
     [(k,) for k in mlmd.MLMD_DEFAULTS if k != 'ensemble'] + [('reference_volume',)]
     + [('guards', k) for k in mlmd.GUARD_DEFAULTS]),
    ('explore', explore.normalise_explore, {'max_steps': 100, 'comparison_step': 10},
     [(k,) for k in ('max_steps', 'comparison_step', 'critical_similarity', 'alpha', 'threshold', 'temperature',
                     'seed', 'timestep')] + [('soap', k) for k in ('r_cut', 'n_max', 'l_max', 'sigma')]),
    ('soap', lambda p: soap.normalise_soap_parameters(p, ['Na']), {},
     [(k,) for k in ('r_cut', 'n_max', 'l_max', 'sigma')]),
    ('active learning', active_learning.normalise_active_learning, {},
     [(k,) for k in ('max_iterations', 'max_new_configurations', 'max_failed_labels', 'max_concurrent_labels',
                     'reseed')]
     + [('outliers', k) for k in active_learning.ACTIVE_LEARNING_DEFAULTS['outliers']]),
    ('gap fit', gap.normalise_fit_parameters, {'descriptors': TWO_BODY},
     [('sparse_jitter',), ('seed',), ('sparse_separate_file',)] + [('sigma', k) for k in gap.TRAINABLE]),
    ('rematch', normalise_parameters, {'mode': 'matrix'}, [('alpha',), ('threshold',)]),
    ('config space', normalise_config_space_parameters, {}, [('alpha',), ('threshold',), ('bins',)]),
    ('restart', normalise_restart, {}, [(k,) for k in RESTART_DEFAULTS if k != 'on_out_of_memory']),
    ('selection', selection.normalise_selection, {'n': 3}, [('n',), ('seed',)]),
    ('split', selection.normalise_split, {}, [('train_fraction',), ('seed',)]),
    ('potential', lambda p: ReferencePotential.from_dict({'name': 'bmhtf_coul_long', 'parameters': p}), {},
     [('cutoff',), ('kspace_accuracy',)]),
    # density=None means none given
    ('nacl builder', lambda p: structures.molten_nacl(**p), {'n_ions': 8}, [('n_ions',), ('seed',)]),
    ('argon builder', lambda p: structures.argon(**p), {'n_cells': 1}, [('n_cells',), ('box',)]),
]


def _spoiled(valid: dict, path: tuple, value) -> dict:
    spoiled = {k: (dict(v) if isinstance(v, dict) else v) for k, v in valid.items()}
    target = spoiled
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return spoiled


@pytest.mark.parametrize('name, function, valid, paths', NORMALISERS, ids=[n[0] for n in NORMALISERS])
def test_bad_numbers_raise_only_value_errors_naming_the_key(name, function, valid, paths):
    function(valid)  # the valid dict passes
    for path in paths:
        for value in BAD:
            try:
                result = function(_spoiled(valid, path, value))
            except ValueError as exc:
                assert path[-1] in str(exc), f'{name}: {path}={value!r}: {exc}'
                continue
            # accepted: it must be a sound number (an integral count or a finite float in range), or None for
            # a per-pair distance (guards / outliers min_distance: None means per-pair defaults from the data)
            if value is None and path[-1] == 'min_distance':
                assert result[path[0]]['min_distance'] is None
                continue
            assert not isinstance(value, (bool, str, list, dict, type(None))) or value in (True, False) and \
                path[-1] in ('reseed', 'sparse_separate_file', 'atomic_energies'), f'{name}: {path}={value!r} accepted'
            assert not (isinstance(value, float) and not math.isfinite(value)), f'{name}: {path}={value!r} accepted'
            assert result is not None


@pytest.mark.parametrize('value', [1e30, 2.0**31])
def test_integers_beyond_a_c_int_are_refused_naming_the_value_as_given(value):
    with pytest.raises(ValueError, match=rf'steps must be an integer .*got {re.escape(repr(value))}'):
        mlmd.normalise_mlmd({'steps': value})


def test_integral_floats_are_accepted_as_integers():
    seed = lammps_md.normalise_md({'seed': 7.0})['seed']
    assert seed == 7 and isinstance(seed, int)
