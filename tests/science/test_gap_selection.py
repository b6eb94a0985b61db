"""GAP command lines, gap_fit output parsing, environment counts, selection and metrics."""

import io
import re

import numpy as np
import pytest

from aiida_mlfail.science import extxyz, gap, selection
from tests.helpers import FIXTURES, nacl_configurations

DOMAIN_NACL = [  # DOMAIN.md section 4, as is
    {'type': 'soap', 'n_max': 5, 'l_max': 4, 'atom_sigma': 1.0, 'zeta': 4, 'cutoff': 9.0, 'delta': 1.0,
     'covariance_type': 'dot_product', 'n_sparse': 500, 'sparse_method': 'cur_points', 'add_species': True},
    {'type': 'distance_2b', 'cutoff': 9.0, 'covariance_type': 'ard_se', 'delta': 0.1, 'n_sparse': 100,
     'sparse_method': 'cur_points', 'add_species': True},
]


def test_domain_descriptor_set_is_expressible():
    parameters = gap.normalise_fit_parameters({'descriptors': DOMAIN_NACL})
    args = gap.gap_fit_arguments(parameters, 'train.xyz', 'gap.xml')
    gap_arg = next(a for a in args if a.startswith('gap='))
    assert 'soap add_species=T sparse_method=cur_points covariance_type=dot_product zeta=4 n_max=5 l_max=4' in gap_arg
    assert 'distance_2b' in gap_arg and ' : ' in gap_arg and 'cutoff=9.0' in gap_arg
    assert 'default_sigma={0.002 0.05 0.05 0.0}' in args


def test_train_on_switches_labels_off():
    parameters = gap.normalise_fit_parameters({'descriptors': DOMAIN_NACL[1:], 'train_on': ['energy', 'forces']})
    args = gap.gap_fit_arguments(parameters, 'a.xyz', 'g.xml')
    assert 'virial_parameter_name=__not_trained_virial' in args
    assert 'energy_parameter_name=energy' in args and 'force_parameter_name=forces' in args


@pytest.mark.parametrize('parameters, match', [
    ({'descriptors': []}, 'at least one descriptor'),
    ({'descriptors': [{'type': 'soap', 'n_max': 2}]}, 'misses'),
    ({'descriptors': [{**DOMAIN_NACL[1], 'cutoff': -2.0}]}, 'cutoff must be a finite number > 0'),
    ({'descriptors': DOMAIN_NACL, 'sigma': {'forces': -0.1}},
     'sigma.forces must be a finite number > 0 eV/Å, got -0.1'),
    ({'descriptors': DOMAIN_NACL, 'train_on': ['stress']}, 'train_on'),
    ({'descriptors': [{**DOMAIN_NACL[1], 'type': 'turbo_soap'}]}, "'turbo_soap' is not supported"),
])
def test_bad_fit_parameters_are_named(parameters, match):
    with pytest.raises(ValueError, match=match):
        gap.normalise_fit_parameters(parameters)


def test_environment_counts_match_gap_fit_dryrun():
    configurations = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    report = gap.parse_dryrun((FIXTURES / 'gap_fit_ok' / 'gap_fit_dryrun.out').read_text())
    counts = gap.count_environments(configurations, {'type': 'distance_2b', 'cutoff': 5.0})
    by_pair = {'Z1=11 Z2=11': 'Na-Na', 'Z1=11 Z2=17': 'Na-Cl', 'Z1=17 Z2=17': 'Cl-Cl'}
    for entry in report['descriptors']:
        pair = next(v for k, v in by_pair.items() if k in entry['description'])
        assert counts[pair] == entry['n_descriptors']
    with pytest.raises(ValueError, match='n_sparse=5000 is larger than'):
        gap.check_sparse_points(configurations, [{'type': 'distance_2b', 'cutoff': 5.0, 'n_sparse': 5000}])


def test_parse_gap_fit_outputs():
    ok = FIXTURES / 'gap_fit_ok'
    dry = gap.parse_dryrun((ok / 'gap_fit_dryrun.out').read_text())
    assert dry['memory_peak_mb'] == pytest.approx(594 / 1024)
    assert len(dry['descriptors']) == 3
    run = gap.parse_gap_fit_output((ok / 'gap_fit.out').read_text())
    assert run['finished'] and run['error'] is None and run['wall_time_s'] >= 0
    xml = gap.parse_gap_xml((ok / 'gap.xml').read_text())
    assert xml['init_args'] == f"IP GAP label={xml['label']}"
    assert xml['n_sparse'] == [10, 10, 10] and len(xml['sparse_files']) == 3
    assert xml['species_z'] == [11, 17] and xml['cutoff'] == 5.0
    ill = gap.parse_gap_fit_output((FIXTURES / 'gap_fit_ill' / 'gap_fit.out').read_text())
    assert ill['ill_conditioned'] and 'LA_Matrix_Factorise: cannot factorise' in ill['error']
    with pytest.raises(ValueError, match='no PEAK'):
        gap.parse_dryrun('gap_fit started\n')


def test_error_metrics():
    m = gap.error_metrics([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0])
    assert m == {'rmse': pytest.approx(1.0), 'mae': pytest.approx(0.5), 'max': pytest.approx(2.0), 'n': 4}
    with pytest.raises(ValueError, match='shape mismatch'):
        gap.error_metrics([1, 2], [1])


def test_extxyz_round_trip_keeps_labels_and_metadata():
    configurations = nacl_configurations(3)
    text = extxyz.to_text(configurations)
    back = extxyz.read_configurations(io.StringIO(text))
    for a, b in zip(configurations, back):
        assert b.info['energy'] == pytest.approx(a.info['energy'])
        assert np.allclose(b.info['virial'], a.info['virial'])
        assert np.allclose(b.arrays['forces'], a.arrays['forces'])
        assert np.allclose(b.arrays['atomic_energies'], a.arrays['atomic_energies'])
        assert extxyz.metadata_of(b) == {'config_type': 'fixture', 'md_step': a.info['md_step']}
    assert extxyz.labels_of(back[0]) == {'energy', 'forces', 'virial', 'atomic_energies'}


def test_nan_forces_are_rejected_with_configuration_and_atom():
    configurations = nacl_configurations(2)
    configurations[1].arrays['forces'][7, 2] = np.nan
    with pytest.raises(ValueError, match='configuration 1: forces of atom 7 is not finite'):
        extxyz.check_finite(configurations)


def _pool(n=40, seed=0):
    rng = np.random.default_rng(seed)
    base = nacl_configurations(1)[0]
    pool = []
    for _ in range(n):
        atoms = base.copy()
        scale = rng.lognormal(0.0, 0.6)  # long-tailed force magnitudes
        atoms.arrays['forces'] = base.arrays['forces'] * scale
        atoms.arrays['atomic_energies'] = base.arrays['atomic_energies'] + rng.normal(0, 0.05 * scale, len(atoms))
        atoms.info['energy'] = float(atoms.arrays['atomic_energies'].sum())
        pool.append(atoms)
    return pool


@pytest.mark.parametrize('method', selection.METHODS)
def test_selection_is_deterministic_and_distinct(method):
    pool = _pool()
    first = selection.select(pool, 10, method, seed=4)
    assert first == selection.select(pool, 10, method, seed=4)
    assert len(set(first)) == 10 and all(0 <= i < 40 for i in first)


def test_uniform_force_reaches_the_tail_more_than_random():
    pool = _pool(200, seed=1)
    magnitude = np.array([np.linalg.norm(a.arrays['forces'], axis=1).max() for a in pool])
    tail = magnitude >= np.quantile(magnitude, 0.9)
    uniform = [tail[selection.select(pool, 20, 'uniform_force', seed=s)].sum() for s in range(5)]
    random = [tail[selection.select(pool, 20, 'random', seed=s)].sum() for s in range(5)]
    assert np.mean(uniform) > 1.5 * np.mean(random)


def test_temporal_selection_is_evenly_spaced_and_split_partitions():
    assert selection.select(_pool(), 5, 'temporal') == [0, 10, 20, 29, 39]
    train, validation = selection.split(10, 0.6, seed=2)
    assert len(train) == 6 and sorted(train + validation) == list(range(10))
    with pytest.raises(ValueError, match='cannot select 41'):
        selection.select(_pool(), 41, 'random')
    pool = _pool()
    del pool[3].arrays['atomic_energies']
    with pytest.raises(ValueError, match="needs 'atomic_energies', missing in configuration 3"):
        selection.select(pool, 5, 'uniform_atomic_energy')


# -- untrusted GAP data: init strings, file names, descriptor keys (issue 13) -------------------------------

@pytest.mark.parametrize('text, expected', [
    ('IP GAP label=GAP_2026_1', 'IP GAP label=GAP_2026_1'),
    ('IP GAP  label=L E_scale=1.5d0 r_scale=-2e-1 do_rescale_E=T lammps=false fast_gap=True', None),
])
def test_check_init_args_accepts_the_gap_grammar(text, expected):
    assert gap.check_init_args(text) == (expected or ' '.join(text.split()))


@pytest.mark.parametrize('text, match', [
    ('IP GAP label=L"\nshell touch /tmp/pwned\n"', 'is not a QUIP init string'),
    ('IP GAP label=L" 11 17\nshell touch x\n#', 'is not a QUIP init string'),
    ('IP GAP label=L\tE_scale=1', 'is not a QUIP init string'),
    ('IP GAP label=${x}', 'is not a QUIP init string'),
    ('IP GAP label=L;rm', 'is not a QUIP init string'),
    ('IP GAP label=L&', 'is not a QUIP init string'),
    ('IP GAP label=L #', 'is not a QUIP init string'),
    ('IP GAP label=L minimise_bulk=T', "unknown keyword 'minimise_bulk'; allowed: label, E_scale"),
    ('IP GAP label=L E_scale', "'E_scale' is not a key=value word"),
    ('IP GAP label=L E_scale=1e400', 'E_scale must be a finite number'),
    ('IP GAP label=L lammps=yes', 'lammps must be T or F'),
    ('IP GAP label=L label=M', "keyword 'label' given twice"),
    ('IP GAP label=.hidden', 'must be a name'),
    ('IP GAP', 'has no label='),
    ('IP SW label=L', 'must start with "IP GAP"'),
    ('', 'must start with "IP GAP"'),
    (None, 'is not a QUIP init string'),
    (['IP', 'GAP'], 'is not a QUIP init string'),
])
def test_check_init_args_refuses_and_names_the_word(text, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        gap.check_init_args(text)


def test_check_init_args_label_and_optional_label():
    assert gap.check_init_args('IP GAP', require_label=False) == 'IP GAP'
    with pytest.raises(ValueError, match="label 'A' is not the GAP label 'B'"):
        gap.check_init_args('IP GAP label=A', label='B')


@pytest.mark.parametrize('filename, files, match', [
    ('../gap.xml', ['../gap.xml'], "'../gap.xml'"),
    ('gap.xml', ['gap.xml', '../x'], "'../x'"),
    ('gap.xml', ['gap.xml', '/abs/x'], "'/abs/x'"),
    ('gap.xml', ['gap.xml', 'a b'], "'a b'"),
    ('gap.xml', ['gap.xml', 'gap.xml'], 'listed twice'),
    ('gap.xml', ['other.xml'], 'is not one of its files'),
    ('gap.xml', 'gap.xml', 'non-empty list'),
    ('gap.xml', [], 'non-empty list'),
    ('gap.xml', ['gap.xml', None], 'None'),
])
def test_check_gap_files_refuses(filename, files, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        gap.check_gap_files(filename, files)


def test_parse_gap_xml_checks_label_init_args_and_sparse_files():
    text = (FIXTURES / 'gap_fit_ok' / 'gap.xml').read_text()
    info = gap.parse_gap_xml(text)
    assert info['init_args'] == f"IP GAP label={info['label']}" and len(info['sparse_files']) == 3
    label = info['label']
    bad_args = text.replace(f'init_args="IP GAP label={label}"', f'init_args="IP GAP label={label}&quot;\nshell x"')
    with pytest.raises(ValueError, match='<Potential init_args>'):
        gap.parse_gap_xml(bad_args)
    with pytest.raises(ValueError, match='<Potential label>'):
        gap.parse_gap_xml(text.replace(f'<Potential label="{label}"', '<Potential label="a b"'))
    sparse = info['sparse_files'][0]
    with pytest.raises(ValueError, match=re.escape("sparseX_filename must be a bare file name") + ".*'../x'"):
        gap.parse_gap_xml(text.replace(f'sparseX_filename="{sparse}"', 'sparseX_filename="../x"'))
    with pytest.raises(ValueError, match="''"):
        gap.parse_gap_xml(text.replace(f'sparseX_filename="{sparse}"', 'sparseX_filename=""'))


def test_descriptor_keys_are_whitelisted_per_type_and_values_typed():
    base = {'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}
    checked = gap.check_descriptor({**base, 'n_sparse': 10.0, 'sparse_method': 'UNIFORM', 'Z1': 11, 'Z2': 17})
    assert checked['n_sparse'] == 10 and isinstance(checked['n_sparse'], int) and checked['sparse_method'] == 'uniform'
    soap = {'type': 'soap', 'n_max': 2, 'l_max': 2, 'atom_sigma': 0.5, 'cutoff': 4, 'delta': 0.1, 'n_sparse': 5,
            'species_Z': [11, 17], 'n_species': 2, 'Z': 11, 'central_weight': 1.0, 'cutoff_transition_width': 0.5}
    assert 'species_Z={11 17}' in gap.descriptor_string(soap) and 'cutoff=4 ' in gap.descriptor_string(soap)
    angle = {'type': 'angle_3b', 'cutoff': 3.0, 'delta': 0.1, 'n_sparse': 5, 'Z': 11, 'Z1': 17, 'Z2': 17}
    assert gap.descriptor_string(angle).startswith('angle_3b ')
    for bad, match in [
        ({**base, 'print_sparse_index': '/tmp/x'}, "unknown distance_2b descriptor key(s) ['print_sparse_index']"),
        ({**base, 'n_max': 4}, "key(s) ['n_max']; allowed: ['Z1', 'Z2'"),  # a SOAP key on a 2-body descriptor
        ({**base, 'sparse_method': 'file'}, 'sparse_method must be one of'),
        ({**base, 'sparse_method': 'uniform} at_file=/etc/x'}, 'sparse_method must be one of'),
        ({**base, 'covariance_type': 5}, 'covariance_type must be one of'),
        ({**base, 'cutoff': float('inf')}, 'cutoff must be a finite number > 0'),
        ({**base, 'cutoff': '5'}, "cutoff must be a finite number > 0, got '5'"),
        ({**base, 'n_sparse': True}, 'n_sparse must be an integer > 0, got True'),
        ({**base, 'add_species': 'T'}, "add_species must be true or false, got 'T'"),
        ({**base, 'Z1': 200}, 'Z1 must be an integer'),
        ({**soap, 'species_Z': '11 17'}, 'species_Z must be a non-empty list'),
        ({**soap, 'species_Z': [11, '17}']}, 'species_Z[1] must be an integer'),
        ({**soap, 'l_max': -1}, 'l_max must be an integer >= 0'),
    ]:
        with pytest.raises(ValueError, match=re.escape(match)):
            gap.descriptor_string(bad)


def test_gap_fit_arguments_checks_file_names():
    parameters = gap.normalise_fit_parameters({'descriptors': DOMAIN_NACL[1:]})
    with pytest.raises(ValueError, match="at_file must be a bare file name.*'../t.xyz'"):
        gap.gap_fit_arguments(parameters, '../t.xyz', 'gap.xml')
    with pytest.raises(ValueError, match="gp_file must be a bare file name.*'/tmp/gap.xml'"):
        gap.gap_fit_arguments(parameters, 't.xyz', '/tmp/gap.xml')


def test_environment_counts_stop_reading_once_every_species_pair_has_enough():
    """``enough``: the submit-time n_sparse check reads the pool only until every possible species pair has
    enough environments; an absent pair makes it read everything and give the full counts."""
    configurations = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    descriptor = {'type': 'distance_2b', 'cutoff': 5.0}
    full = gap.count_environments(configurations, descriptor)
    read = []

    def lazily():
        for atoms in configurations:
            read.append(atoms)
            yield atoms

    first = gap.count_environments(configurations[:1], descriptor)
    partial = gap.count_environments(lazily(), descriptor, species=['Na', 'Cl'], enough=min(first.values()))
    assert len(read) == 1 and partial == first
    read.clear()
    assert gap.count_environments(lazily(), descriptor, species=['Na', 'Cl', 'K'], enough=1) == full
    assert len(read) == len(configurations) > 1


def _gaussian_energy_pool(n=2000, outlier=1234, seed=0):
    """``n`` two-atom configurations with E/N ~ Normal(-3.0, 0.05) eV/atom and one outlier at +20 sigma."""
    from ase import Atoms

    per_atom = np.random.default_rng(seed).normal(-3.0, 0.05, n)
    per_atom[outlier] = -3.0 + 20 * 0.05
    pool = []
    for e in per_atom:
        atoms = Atoms('NaCl', positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[5, 5, 5], pbc=True)
        atoms.info['energy'] = 2 * float(e)
        pool.append(atoms)
    return pool, per_atom


def _pooled_counts(per_atom, pool, n, method, seeds):
    edges = np.linspace(*np.percentile(per_atom, [1, 99]), 9)  # 8 equal bins over the bulk of the pool
    return sum(np.histogram(per_atom[selection.select(pool, n, method, seed=s)], edges)[0] for s in seeds)


def test_uniform_energy_selects_a_flat_histogram_from_a_gaussian_pool():
    """Selected E/N histogram (8 equal bins between the pool's 1st and 99th percentiles, 10 seeds pooled):
    max/min count ratio 1.18 measured for the flat-histogram draw, 8.5 for a random draw (the Gaussian)."""
    pool, per_atom = _gaussian_energy_pool()
    uniform = _pooled_counts(per_atom, pool, 200, 'uniform_energy', range(10))
    random = _pooled_counts(per_atom, pool, 200, 'random', range(10))
    assert uniform.max() / uniform.min() < 1.6, uniform
    assert random.max() / random.min() > 5, random


def test_uniform_energy_does_not_always_choose_a_single_outlier():
    """One configuration 20 sigma above the rest is one histogram bin among ~30 populated ones: picked in
    about n / bins of the draws (0.55 measured for n=20 over 40 seeds), not in every draw; and its bin does
    not collapse the others (20 equal-width bins over min..max put 1985 of the 2000 into 4 bins)."""
    pool, per_atom = _gaussian_energy_pool()
    picked = [1234 in selection.select(pool, 20, 'uniform_energy', seed=s) for s in range(40)]
    assert 0.2 < np.mean(picked) < 0.9, np.mean(picked)
    _, edges = selection.flat_histogram_weights(per_atom)
    assert (np.histogram(per_atom, edges)[0] > 0).sum() >= 20
