"""CP2K protocols and inputs (aiida_mlfail.science.cp2k), rendered through aiida-cp2k's Cp2kInput."""

import os
import pathlib
import re

import pytest
from aiida_cp2k.utils import Cp2kInput

from aiida_mlfail.science import cp2k
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import FIXTURES

CP2K_DATA = pathlib.Path('/usr/share/cp2k')
#: Elements of the package's systems: NaCl, argon, BMIM BF4.
ELEMENTS = ['Na', 'Cl', 'Ar', 'H', 'B', 'C', 'N', 'F']


def test_protocols_load_and_unknown_is_named():
    assert cp2k.available_protocols() == ['fast', 'moderate', 'precise']
    for name in cp2k.available_protocols():
        protocol = cp2k.load_protocol(name)
        assert protocol['walltime_seconds'] > 0 and protocol['scf']['method'] in ('OT', 'DIAG')
    with pytest.raises(ValueError, match=r"unknown CP2K protocol 'nope'; available: fast, moderate, precise"):
        cp2k.load_protocol('nope')
    # a fresh copy each time
    cp2k.load_protocol('fast')['cutoff'] = -1
    assert cp2k.load_protocol('fast')['cutoff'] > 0


def test_protocols_get_finer_and_add_dispersion():
    fast, moderate, precise = (cp2k.load_protocol(n) for n in ('fast', 'moderate', 'precise'))
    assert fast['cutoff'] <= moderate['cutoff'] < precise['cutoff']
    assert fast['scf']['eps_scf'] >= moderate['scf']['eps_scf'] > precise['scf']['eps_scf']
    assert fast['vdw'] is None
    assert moderate['basis_set'] == precise['basis_set'] == ['DZVP-MOLOPT-SR-GTH', 'DZVP-MOLOPT-GTH']
    assert fast['basis_set'] == ['SZV-MOLOPT-SR-GTH', 'SZV-MOLOPT-GTH']
    assert moderate['vdw']['type'] == precise['vdw']['type'] == 'DFTD3(BJ)'
    assert precise['vdw']['r_cutoff'] > moderate['vdw']['r_cutoff']


@pytest.mark.parametrize('name', ['fast', 'moderate', 'precise'])
def test_basis_sets_and_potentials_exist_in_cp2k_data(name):
    if not CP2K_DATA.is_dir():
        if os.environ.get('CI'):
            pytest.fail(f'CP2K data directory {CP2K_DATA} missing, and CI is set: this check must run in CI')
        pytest.skip(f'CP2K data directory {CP2K_DATA} not installed (Debian cp2k package)')
    protocol = cp2k.load_protocol(name)
    basis_text = (CP2K_DATA / protocol['basis_set_file']).read_text()
    potential_text = (CP2K_DATA / protocol['potential_file']).read_text()
    choices = cp2k.resolve_kinds(name, ELEMENTS, CP2K_DATA)
    assert list(choices) == sorted(ELEMENTS)
    for element, choice in choices.items():
        assert choice['resolved'] and choice['basis_set'] == protocol['basis_set'][0]
        # the basis entry states the valence (-qN) and the pseudopotential's electron-count line sums to it
        basis = re.escape(choice['basis_set'])
        header = re.search(rf'^[ \t]*{element}[ \t]+(\S+[ \t]+)*{basis}([ \t]+\S+)*[ \t]+\S+-q(\d+)[ \t]*$',
                           basis_text, re.M)
        assert header, (element, choice)
        valence = int(header.group(3))
        assert choice['potential'] == f'GTH-PBE-q{valence}' and choice['valence'] == valence
        counts = re.search(rf'^{element}\s+{re.escape(choice["potential"])}\b.*\n([\d ]+)\n', potential_text, re.M)
        assert sum(map(int, counts.group(1).split())) == valence, (element, counts.group(1))
    if protocol['vdw']:
        assert (CP2K_DATA / 'dftd3.dat').is_file()


@pytest.mark.parametrize('name', ['fast', 'moderate', 'precise'])
def test_single_point_parameters_render(name):
    protocol = cp2k.load_protocol(name)
    parameters = cp2k.single_point_parameters(name, ['Na', 'Cl', 'Na', 'Cl'])
    assert parameters['GLOBAL']['RUN_TYPE'] == 'ENERGY_FORCE'
    force_eval = parameters['FORCE_EVAL']
    assert force_eval['STRESS_TENSOR'] == 'ANALYTICAL'
    assert force_eval['PRINT'] == {'FORCES': {'_': 'ON'}, 'STRESS_TENSOR': {'_': 'ON'}}
    assert [kind['_'] for kind in force_eval['SUBSYS']['KIND']] == ['Cl', 'Na']
    dft = force_eval['DFT']
    assert dft['MGRID'] == {'CUTOFF': protocol['cutoff'], 'REL_CUTOFF': protocol['rel_cutoff']}
    assert dft['QS']['METHOD'] == protocol['method']
    assert ('VDW_POTENTIAL' in dft['XC']) == (protocol['vdw'] is not None)
    assert 'IGNORE_CONVERGENCE_FAILURE' not in dft['SCF']
    text = Cp2kInput(parameters).render()
    for line in ('RUN_TYPE ENERGY_FORCE', 'STRESS_TENSOR ANALYTICAL', '&FORCES ON', '&STRESS_TENSOR ON',
                 f'BASIS_SET {protocol["basis_set"][0]}', 'POTENTIAL GTH-PBE-q9', 'POTENTIAL GTH-PBE-q7', '&KIND Na',
                 f'&XC_FUNCTIONAL {protocol["xc"]}', f'CUTOFF {protocol["cutoff"]}'):
        assert line in text, line
    if protocol['vdw']:
        c9 = '.TRUE.' if protocol['vdw']['three_body'] else '.FALSE.'
        assert 'TYPE DFTD3(BJ)' in text and f'CALCULATE_C9_TERM {c9}' in text


def test_single_point_options_and_errors():
    scf = cp2k.single_point_parameters('fast', ['Na'], ignore_convergence_failure=True)['FORCE_EVAL']['DFT']['SCF']
    assert scf['IGNORE_CONVERGENCE_FAILURE'] is True
    with pytest.raises(ValueError, match='no chemical symbols'):
        cp2k.single_point_parameters('fast', [])
    with pytest.raises(ValueError, match="unknown CP2K protocol 'slow'"):
        cp2k.single_point_parameters('slow', ['Na'])
    bad = cp2k.deep_merge(cp2k.load_protocol('moderate'), {'vdw': {'type': 'XDM'}})
    with pytest.raises(ValueError, match="unsupported vdw type 'XDM': use one of DFTD3, DFTD3\\(BJ\\), rVV10"):
        cp2k.single_point_parameters(bad, ['Na'])


def test_committed_fixture_inputs_are_what_the_builders_write(tmp_path):
    """The fixtures were made by the current builders (regenerate them with make_fixtures.py otherwise)."""
    atoms = make_fixtures.nacl8()
    symbols = atoms.get_chemical_symbols()
    make_fixtures.write_input(tmp_path / 'sp', cp2k.single_point_parameters('fast', symbols), atoms)
    make_fixtures.write_input(tmp_path / 'md', cp2k.aimd_parameters('fast', symbols, **make_fixtures.AIMD), atoms)
    pairs = (('sp/aiida.inp', 'converged/aiida.inp'), ('sp/aiida.coords.xyz', 'converged/aiida.coords.xyz'),
             ('md/aiida.inp', 'aimd/aiida.inp'))
    for written, committed in pairs:
        assert (tmp_path / written).read_text() == (FIXTURES / 'cp2k' / committed).read_text(), committed


def test_aimd_parameters():
    parameters = cp2k.aimd_parameters('fast', ['Na', 'Cl'], temperature=1400, steps=10, timestep_fs=2.0, seed=3)
    assert parameters['GLOBAL'] == {'RUN_TYPE': 'MD', 'PRINT_LEVEL': 'LOW', 'SEED': 3}
    md = parameters['MOTION']['MD']
    assert md['ENSEMBLE'] == 'NVT' and md['STEPS'] == 10
    assert md['TIMESTEP'] == '[fs] 2.0' and md['TEMPERATURE'] == '[K] 1400'
    assert md['THERMOSTAT']['TYPE'] == 'CSVR' and md['THERMOSTAT']['CSVR'] == {'TIMECON': '[fs] 100.0'}
    printed = parameters['MOTION']['PRINT']
    for key in ('TRAJECTORY', 'FORCES', 'CELL', 'STRESS'):
        assert printed[key]['_'] == 'ON' and printed[key]['EACH'] == {'MD': 1}
    assert printed['TRAJECTORY']['FORMAT'] == printed['FORCES']['FORMAT'] == 'XYZ'
    assert printed['RESTART'] == {'_': 'ON', 'BACKUP_COPIES': 0, 'EACH': {'MD': 1}}  # a checkpoint every step
    every_5 = cp2k.aimd_parameters('fast', ['Na'], temperature=1400, steps=10, checkpoint_interval=5)
    assert every_5['MOTION']['PRINT']['RESTART']['EACH'] == {'MD': 5}
    with pytest.raises(ValueError, match='checkpoint_interval'):
        cp2k.aimd_parameters('fast', ['Na'], temperature=1400, steps=10, checkpoint_interval=0)
    assert parameters['FORCE_EVAL']['STRESS_TENSOR'] == 'ANALYTICAL'
    assert parameters['FORCE_EVAL']['PRINT'] == {'FORCES': {'_': 'OFF'}, 'STRESS_TENSOR': {'_': 'ON'}}
    text = Cp2kInput(parameters).render()
    assert 'ENSEMBLE NVT' in text and '&THERMOSTAT' in text and 'RUN_TYPE MD' in text
    nose = cp2k.aimd_parameters('fast', ['Na'], 300, 5, thermostat='nose', thermostat_timecon_fs=20)
    assert nose['MOTION']['MD']['THERMOSTAT']['NOSE'] == {'LENGTH': 3, 'TIMECON': '[fs] 20'}


@pytest.mark.parametrize('kwargs, match', [
    ({'temperature': 0, 'steps': 5}, 'temperature must be a finite number > 0 K, got 0'),
    ({'temperature': 300, 'steps': 0}, 'steps must be an integer >= 1, got 0'),
    ({'temperature': 300, 'steps': 2.5}, 'steps must be an integer >= 1, got 2.5'),
    ({'temperature': 300, 'steps': 5, 'timestep_fs': -1}, 'timestep_fs must be a finite number > 0 fs, got -1'),
    ({'temperature': 300, 'steps': 5, 'thermostat': 'BERENDSEN'}, "thermostat must be one of"),
    ({'temperature': 300, 'steps': 5, 'thermostat_timecon_fs': 0},
     'thermostat_timecon_fs must be a finite number > 0 fs, got 0'),
])
def test_aimd_parameters_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cp2k.aimd_parameters('fast', ['Na', 'Cl'], **kwargs)


def _restarts(parameters):
    sequence = []
    for attempt in range(1, cp2k.MAX_SCF_RESTARTS + 1):
        parameters, description = cp2k.scf_restart_changes(parameters, attempt)
        Cp2kInput(parameters).render()  # still a valid aiida-cp2k dict
        sequence.append((parameters['FORCE_EVAL']['DFT']['SCF'], description))
    return sequence


def test_scf_restart_changes_ot():
    original = cp2k.single_point_parameters('moderate', ['Na', 'Cl'])
    scf0 = original['FORCE_EVAL']['DFT']['SCF']
    (scf1, d1), (scf2, d2), (scf3, d3) = _restarts(original)
    assert original['FORCE_EVAL']['DFT']['SCF'] == scf0  # not modified
    assert scf1['MAX_SCF'] == 2 * scf0['MAX_SCF'] and scf1['OT']['PRECONDITIONER'] == 'FULL_ALL'
    assert scf2['OT']['MINIMIZER'] == 'CG' and scf2['MAX_SCF'] == scf1['MAX_SCF'] and scf2['OUTER_SCF']['MAX_SCF'] == 20
    assert 'OT' not in scf3 and 'OUTER_SCF' not in scf3 and scf3['DIAGONALIZATION']['_'] == 'ON'
    assert scf3['MIXING']['ALPHA'] == 0.1
    assert [d.split(':')[0] for d in (d1, d2, d3)] == ['SCF restart 1', 'SCF restart 2', 'SCF restart 3']
    assert 'FULL_ALL' in d1 and 'CG' in d2 and 'diagonalisation' in d3
    for attempt in (0, cp2k.MAX_SCF_RESTARTS + 1):
        with pytest.raises(ValueError, match='SCF restart attempt must be in 1..3'):
            cp2k.scf_restart_changes(original, attempt)
    with pytest.raises(ValueError, match='no FORCE_EVAL/DFT/SCF'):
        cp2k.scf_restart_changes({'GLOBAL': {}}, 1)


def test_scf_restart_changes_diagonalisation():
    original = cp2k.single_point_parameters('fast', ['Na', 'Cl'])
    scf0 = original['FORCE_EVAL']['DFT']['SCF']
    (scf1, d1), (scf2, d2), (scf3, d3) = _restarts(original)
    alpha = cp2k.load_protocol('fast')['scf']['mixing_alpha']
    assert scf1['MAX_SCF'] == 2 * scf0['MAX_SCF'] and scf1['MIXING']['ALPHA'] == pytest.approx(alpha / 2)
    assert scf2['MIXING']['ALPHA'] == pytest.approx(alpha / 4) and scf2['MIXING']['NBUFFER'] == 15
    assert f'{alpha / 4:g}' in d2
    assert 'DIAGONALIZATION' not in scf3 and 'MIXING' not in scf3 and scf3['OT']['MINIMIZER'] == 'CG'
    assert 'OT' in d3


def test_deep_merge():
    base = {'A': {'B': 1, 'C': {'D': 2}}, 'E': [1]}
    merged = cp2k.deep_merge(base, {'A': {'C': {'D': 3}, 'B': None}, 'E': [2], 'F': 'x'})
    assert merged == {'A': {'C': {'D': 3}}, 'E': [2], 'F': 'x'}
    assert base == {'A': {'B': 1, 'C': {'D': 2}}, 'E': [1]}
