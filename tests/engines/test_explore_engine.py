"""The ``mlfail-explore`` engine on a tiny system (no AiiDA, no mocks).

8-ion rock-salt NaCl driven by the tiny committed GAP of ``tests/fixtures/bridge`` (through the
``fix external`` + quippy bridge), small SOAP (n_max 3, l_max 2, r_cut 3.5 Å). The engine's
``main`` runs in-process in a temporary directory; one test runs the installed console script.
The inputs are written with ``science.explore.job_files``, as the CalcJob does.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from aiida_mlfail.engines.explore import main
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import mlmd

BRIDGE = pathlib.Path(__file__).resolve().parents[1] / 'fixtures' / 'bridge'
PAIR_COMMANDS = ['pair_style quip', 'pair_coeff * * gap.xml "IP GAP" 11 17']
SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}


def crystal():
    """The perfect 8-ion rock-salt cell (a = 5.64 Å) the runs start from."""
    return bulk('NaCl', 'rocksalt', a=5.64, cubic=True)


def prepare(directory, parameters: dict, references=None, start=None) -> pathlib.Path:
    """Write the explorer's inputs (JSON, data file, reference SOAP, GAP files) into ``directory``."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path in BRIDGE.glob('gap.xml*'):
        shutil.copy(path, directory / path.name)
    parameters = {'soap': SOAP, **parameters}
    files = sx.job_files(start or crystal(), ['Na', 'Cl'], PAIR_COMMANDS, parameters, references or [crystal()])
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def explore(directory, monkeypatch) -> dict:
    """Run the engine in ``directory``; returns the parsed results."""
    monkeypatch.chdir(directory)
    assert main([]) == 0
    return sx.parse_explore_results((directory / sx.RESULTS_FILE).read_text())


#: A hot run of the tiny GAP leaves the crystal: novel w.r.t. a crystal-only reference set.
HOT = {'temperature': 1500.0, 'max_steps': 300, 'comparison_step': 20, 'critical_similarity': 0.95}


@pytest.fixture(scope='module')
def hot_run(tmp_path_factory):
    directory = prepare(tmp_path_factory.mktemp('hot'), HOT)
    with pytest.MonkeyPatch.context() as monkeypatch:
        results = explore(directory, monkeypatch)
    return directory, results


def test_novel_configuration_is_flagged_with_a_narrow_reference_set(hot_run):
    directory, results = hot_run
    assert results['stop_reason'] == 'novel'
    step = results['stop_step']
    assert 0 < step < HOT['max_steps'] and step % HOT['comparison_step'] == 0
    assert results['steps_run'] == step
    assert results['similarity'] < HOT['critical_similarity'] and results['reference_index'] == 0
    series = sx.parse_similarity((directory / sx.SIMILARITY_FILE).read_text())
    np.testing.assert_array_equal(series['step'], np.arange(0, step + 1, HOT['comparison_step']))
    assert (series['similarity'][:-1] >= HOT['critical_similarity']).all()  # nothing novel before the stop
    assert series['similarity'][0] == pytest.approx(1.0, abs=1e-9)  # the start is the reference itself
    assert series['similarity'][-1] == results['similarity'] == results['min_similarity']
    assert results['n_checks'] == len(series['step'])
    trigger = read(directory / sx.TRIGGER_FILE, format='extxyz')
    assert trigger.info['md_step'] == step and trigger.info['stop_reason'] == 'novel'
    assert trigger.info['similarity'] == pytest.approx(results['similarity'], abs=1e-12)
    assert not (directory / sx.PREVIOUS_FILE).exists()
    # the reported similarity is that of the written configuration (recomputed independently)
    from aiida_mlfail.science.rematch import rematch_kernel
    from aiida_mlfail.science.soap import normalise_soap_parameters, normalised_features, soap_descriptor

    descriptor = soap_descriptor(normalise_soap_parameters(SOAP, ['Na', 'Cl']))
    kernel = rematch_kernel(normalised_features(descriptor, [trigger]), normalised_features(descriptor, [crystal()]))
    assert kernel[0, 0] == pytest.approx(results['similarity'], abs=1e-6)
    thermo = sx.parse_thermo_table((directory / sx.THERMO_FILE).read_text())
    np.testing.assert_array_equal(thermo['step'], np.arange(0, step + 1, 10))
    assert thermo['temperature'][0] == pytest.approx(HOT['temperature'], rel=1e-6)
    np.testing.assert_allclose(thermo['total_energy'], thermo['potential_energy'] + thermo['kinetic_energy'])
    np.testing.assert_allclose(thermo['volume'], crystal().get_volume())  # NVT
    assert thermo['temperature'][-1] > 1.5 * HOT['temperature']  # the tiny GAP heats up: that is what is novel
    assert not (directory / sx.RAW_THERMO_FILE).exists()


def test_not_flagged_when_the_candidate_is_in_the_set(hot_run, tmp_path, monkeypatch):
    """The same (deterministic) run with the novel configuration added to the references: at its step
    it is now found in the set (similarity 1 to the added reference), and the run ends at max_steps."""
    first, first_results = hot_run
    step = first_results['stop_step']
    trigger = read(first / sx.TRIGGER_FILE, format='extxyz')
    directory = prepare(tmp_path, {**HOT, 'max_steps': step}, references=[crystal(), trigger])
    results = explore(directory, monkeypatch)
    assert results['stop_reason'] == 'max_steps' and results['stop_step'] == step == results['steps_run']
    assert results['similarity'] == pytest.approx(1.0, abs=1e-6) and results['reference_index'] == 1
    assert results['min_similarity'] >= HOT['critical_similarity']
    final = read(directory / sx.TRIGGER_FILE, format='extxyz')
    assert final.info['stop_reason'] == 'max_steps' and final.info['md_step'] == step
    np.testing.assert_allclose(final.positions, trigger.positions, atol=1e-6)
    assert not (directory / sx.PREVIOUS_FILE).exists()


GUARDS = {
    'volume_blowup': ({'ensemble': 'NPT', 'pressure': -20000.0, 'barostat_damping': 100.0,
                       'guards': {'volume_factor': 1.02}}, lambda v: v > 1.02 * crystal().get_volume()),
    'too_close_atoms': ({'guards': {'min_distance': 2.7}}, lambda v: v < 2.7),
    'temperature_runaway': ({'guards': {'temperature_factor': 1.2}}, lambda v: v > 1.2 * 300.0),
    # the tiny GAP's potential energy changes by more than 0.01 eV/atom within a few steps at 300 K
    'energy_runaway': ({'guards': {'max_energy_change_per_atom': 0.01}}, lambda v: 0.01 < v < 1.0),
}


@pytest.mark.parametrize('reason', list(GUARDS))
def test_each_guard_fires(tmp_path, monkeypatch, reason):
    extra, check_value = GUARDS[reason]
    parameters = {'temperature': 300.0, 'max_steps': 200, 'comparison_step': 20, 'critical_similarity': 0.5, **extra}
    results = explore(prepare(tmp_path, parameters), monkeypatch)
    assert results['stop_reason'] == reason, results['message']
    step = results['stop_step']
    assert 0 < step < 200 and results['steps_run'] == step
    assert f'fix-id {mlmd.GUARD_FIX_IDS[reason]} met on step {step}' in results['message']
    assert check_value(results['guard_value'])
    trigger = read(tmp_path / sx.TRIGGER_FILE, format='extxyz')
    assert trigger.info['md_step'] == step and trigger.info['stop_reason'] == reason
    previous = read(tmp_path / sx.PREVIOUS_FILE, format='extxyz')
    assert previous.info['md_step'] == results['previous']['step'] < step
    assert previous.info['md_step'] % 20 == 0 and previous.info['similarity'] >= 0.5
    thermo = sx.parse_thermo_table((tmp_path / sx.THERMO_FILE).read_text())
    assert thermo['step'][0] == 0 and thermo['step'][-1] <= step
    if reason == 'volume_blowup':
        assert trigger.get_volume() == pytest.approx(results['guard_value'], rel=1e-6)


def test_lost_atoms_still_write_results(tmp_path, monkeypatch):
    """A 20 fs step at 1e8 K with the guards out of the way: LAMMPS loses atoms; no trigger, a previous."""
    parameters = {'temperature': 1e8, 'timestep': 20.0, 'max_steps': 100, 'comparison_step': 20,
                  'critical_similarity': 0.5,
                  'guards': {'min_distance': 1e-6, 'temperature_factor': 100.0, 'volume_factor': 100.0,
                             'max_energy_change_per_atom': 1e9}}
    results = explore(prepare(tmp_path, parameters), monkeypatch)
    assert results['stop_reason'] == 'lost_atoms' and 'Lost atoms' in results['message']
    assert not (tmp_path / sx.TRIGGER_FILE).exists()
    assert read(tmp_path / sx.PREVIOUS_FILE, format='extxyz').info['md_step'] == 0
    assert results['previous']['step'] == 0


def test_console_script_setup_failures(tmp_path):
    """The installed ``mlfail-explore``: missing references / a bad GAP file -> status 1 and the reason."""
    exe = pathlib.Path(sys.executable).parent / 'mlfail-explore'
    directory = prepare(tmp_path, {'max_steps': 20, 'comparison_step': 20})
    (directory / sx.REFERENCE_FILE).unlink()
    done = subprocess.run([str(exe)], cwd=directory, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'reference file' in done.stderr and sx.REFERENCE_FILE in done.stderr
    directory = prepare(tmp_path / 'bad_gap', {'max_steps': 20, 'comparison_step': 20})
    (directory / 'gap.xml').unlink()
    done = subprocess.run([str(exe), sx.INPUT_FILE], cwd=directory, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'GAP set-up failed' in done.stderr and "'gap.xml' not found" in done.stderr
    assert not (directory / sx.RESULTS_FILE).exists()
    config = json.loads((directory / sx.INPUT_FILE).read_text())
    config['parameters']['critical_similarity'] = 2.0
    (directory / sx.INPUT_FILE).write_text(json.dumps(config))
    done = subprocess.run([str(exe)], cwd=directory, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'critical_similarity must be a finite number > 0 and <= 1, got 2.0' in done.stderr


def test_per_pair_distance_guard_names_the_pair_and_reports_its_thresholds(tmp_path, monkeypatch):
    """A Na-Cl guard of 2.7 Å (the crystal's Na-Cl distance is 2.82 Å) with the other pairs at their defaults
    from the reference (0.35 x the crystal's 3.99 Å): the stop names Na-Cl with its distance; the halt value is
    the number of close contacts; the thresholds used are in the results."""
    parameters = {'temperature': 300.0, 'max_steps': 200, 'comparison_step': 20, 'critical_similarity': 0.5,
                  'guards': {'min_distance': {'Cl-Na': 2.7}}}
    results = explore(prepare(tmp_path, parameters), monkeypatch)
    assert results['stop_reason'] == 'too_close_atoms', results['message']
    like = mlmd.GUARD_DISTANCE_FRACTION * 5.64 / 2**0.5
    assert results['guard_distances'] == pytest.approx({'Na-Na': like, 'Na-Cl': 2.7, 'Cl-Cl': like})
    assert results['guard_value'] >= 1 and results['guard_value'] == int(results['guard_value'])
    (closest, *_) = results['close_pairs']
    assert closest['pair'] == 'Na-Cl' and closest['distance'] < closest['limit'] == 2.7
    assert f"Na-Cl {closest['distance']:.3f} Å < 2.700 Å" in results['message']
    trigger = read(tmp_path / sx.TRIGGER_FILE, format='extxyz')
    assert min(trigger.get_all_distances(mic=True)[trigger.numbers == 11][:, trigger.numbers == 17].ravel()) == \
        pytest.approx(closest['distance'])
