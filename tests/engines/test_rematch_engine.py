"""``mlfail-rematch`` end to end: the console script as a subprocess on tiny NaCl sets, checked against
``science.rematch.rematch_kernel`` computed directly on the same SOAP features."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from aiida_mlfail.engines.rematch import normalise_parameters, parse_rematch_output
from aiida_mlfail.science import extxyz
from aiida_mlfail.science.rematch import n_threads, rematch_distance, rematch_kernel
from aiida_mlfail.science.soap import normalise_soap_parameters, normalised_features, soap_descriptor
from aiida_mlfail.science.structures import molten_nacl

SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}
EXECUTABLE = pathlib.Path(sys.executable).parent / 'mlfail-rematch'


def _trajectory(n, sigma, seed, n_ions=16):
    """``n`` NaCl configurations: random displacements (Gaussian, ``sigma`` Å) of a rock-salt cell, md_step 10 i."""
    rng = np.random.default_rng(seed)
    base = molten_nacl(n_ions)
    frames = []
    for i in range(n):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        atoms.wrap()
        atoms.info['md_step'] = 10 * i
        frames.append(atoms)
    return frames


@pytest.fixture(scope='module')
def sets():
    x = _trajectory(5, 0.3, seed=1)
    y = x[:2] + _trajectory(2, 0.3, seed=2)  # Y holds x[0], x[1] and two other configurations
    descriptor = soap_descriptor(normalise_soap_parameters(SOAP, species=['Na', 'Cl']))
    return {'x': x, 'y': y, 'fx': normalised_features(descriptor, x), 'fy': normalised_features(descriptor, y)}


def _run(tmp_path, x, y=None, env=None, **parameters):
    (tmp_path / 'x.xyz').write_text(extxyz.to_text(x))
    if y is not None:
        (tmp_path / 'y.xyz').write_text(extxyz.to_text(y))
    parameters = {'alpha': 0.1, 'threshold': 1e-6, 'soap': SOAP, 'x': 'x.xyz', 'y': 'y.xyz' if y is not None else None,
                  **parameters}
    (tmp_path / 'parameters.json').write_text(json.dumps(parameters))
    done = subprocess.run([str(EXECUTABLE), 'parameters.json'], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    if done.returncode:
        return done, None, None
    arrays, results = parse_rematch_output((tmp_path / 'rematch.npz').read_bytes(),
                                           (tmp_path / 'results.json').read_text())
    return done, arrays, results


def test_distance_to_first_of_both_sets(tmp_path, sets):
    done, arrays, results = _run(tmp_path, sets['x'], sets['y'], mode='distance_to_first')
    assert done.returncode == 0, done.stderr
    expected = rematch_kernel(sets['fx'], [sets['fx'][0]], alpha=0.1)[:, 0]
    np.testing.assert_allclose(arrays['kernel'], expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(arrays['distance'], rematch_distance(expected), atol=1e-7)
    assert arrays['distance'][0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(arrays['distance'][1:] > 1e-3)  # displaced frames differ from the first
    expected_y = rematch_distance(rematch_kernel(sets['fy'], [sets['fy'][0]], alpha=0.1)[:, 0])
    np.testing.assert_allclose(arrays['distance_y'], expected_y, atol=1e-7)
    np.testing.assert_array_equal(arrays['md_step'], [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(arrays['md_step_y'], [0, 10, 0, 10])
    assert (results['n_x'], results['n_y'], results['y_is_x']) == (5, 4, False)
    assert results['max_distance'] == pytest.approx(arrays['distance'].max())
    assert results['max_distance_y'] == pytest.approx(arrays['distance_y'].max())
    assert results['soap']['species'] == ['Cl', 'Na'] and results['n_features'] > 0
    assert '[mlfail-rematch] SOAP 5/5 configurations of X' in done.stdout
    assert 'distance to first 4/4 configurations of Y' in done.stdout


def test_threads_follow_the_slurm_allocation(tmp_path, sets, monkeypatch):
    """Inside a SLURM job (``SLURM_CPUS_ON_NODE``) the engine uses no more threads than allocated."""
    done, _arrays, results = _run(tmp_path, sets['x'], None, env={**os.environ, 'SLURM_CPUS_ON_NODE': '1'},
                                  mode='nearest_neighbour')
    assert done.returncode == 0, done.stderr
    assert results['threads'] == 1
    monkeypatch.delenv('SLURM_CPUS_ON_NODE', raising=False)
    done, _arrays, results = _run(tmp_path, sets['x'], None, mode='nearest_neighbour')
    assert done.returncode == 0, done.stderr
    assert results['threads'] == n_threads()


def test_nearest_neighbour_against_other_set_and_itself(tmp_path, sets):
    done, arrays, results = _run(tmp_path, sets['x'], sets['y'], mode='nearest_neighbour', alpha=0.5)
    assert done.returncode == 0, done.stderr
    full = rematch_kernel(sets['fx'], sets['fy'], alpha=0.5)
    np.testing.assert_array_equal(arrays['nearest_index'], full.argmax(axis=1))
    np.testing.assert_allclose(arrays['kernel'], full.max(axis=1), atol=1e-10)
    assert arrays['nearest_index'][:2].tolist() == [0, 1]  # x[0], x[1] are in Y
    assert arrays['distance'][:2] == pytest.approx([0, 0], abs=1e-6)
    assert np.all(arrays['distance'][2:] > 1e-3)  # the others are not
    assert results['alpha'] == 0.5 and results['median_distance'] == pytest.approx(np.median(arrays['distance']))
    assert 'nearest neighbour 5/5' in done.stdout

    done, arrays, results = _run(tmp_path, sets['x'], None, mode='nearest_neighbour')
    assert done.returncode == 0, done.stderr
    assert arrays['nearest_index'].tolist() == list(range(5))
    assert arrays['distance'] == pytest.approx(np.zeros(5), abs=1e-6)
    assert results['y_is_x'] and results['n_y'] == 5


def test_matrix_symmetric_for_one_set_and_rectangular_for_two(tmp_path, sets):
    done, arrays, results = _run(tmp_path, sets['x'], None, mode='matrix')
    assert done.returncode == 0, done.stderr
    k = arrays['kernel']
    assert k.shape == (5, 5)
    np.testing.assert_allclose(k, k.T, atol=1e-12)
    np.testing.assert_allclose(k, rematch_kernel(sets['fx'], alpha=0.1), atol=1e-10)
    assert np.diag(arrays['distance']) == pytest.approx(np.zeros(5), abs=1e-6)
    off = arrays['distance'][np.triu_indices(5, 1)]
    assert results['min_distance'] == pytest.approx(off.min()) and results['min_distance'] > 1e-3

    done, arrays, results = _run(tmp_path, sets['x'], sets['y'], mode='matrix')
    assert done.returncode == 0, done.stderr
    assert arrays['distance'].shape == (5, 4)
    np.testing.assert_allclose(arrays['kernel'], rematch_kernel(sets['fx'], sets['fy'], alpha=0.1), atol=1e-10)


@pytest.mark.parametrize('parameters, soap, message', [
    ({'mode': 'nearest'}, SOAP, "unknown mode 'nearest'"),
    ({'mode': 'matrix', 'alpha': -0.2}, SOAP, 'alpha must be a finite number > 0, got -0.2'),
    ({'mode': 'matrix', 'threshold': 2}, SOAP, 'threshold must be a finite number > 0 and < 1, got 2'),
    ({'mode': 'matrix'}, {**SOAP, 'n_max': 0}, 'SOAP n_max must be an integer >= 1, got 0'),
    ({'mode': 'matrix'}, {**SOAP, 'species': ['Na']}, r"species \['Cl'\] of the configurations are not in the SOAP"),
])
def test_bad_input_is_reported_with_exit_status_1(tmp_path, sets, parameters, soap, message):
    done, _, _ = _run(tmp_path, sets['x'][:2], None, soap=soap, **parameters)
    assert done.returncode == 1
    assert done.stderr.startswith('mlfail-rematch: ValueError:')
    assert re.search(message, done.stderr), done.stderr
    assert not (tmp_path / 'rematch.npz').exists()


def test_missing_file_and_inconsistent_output(tmp_path, sets):
    (tmp_path / 'parameters.json').write_text(json.dumps({'mode': 'matrix', 'x': 'nowhere.xyz'}))
    done = subprocess.run([str(EXECUTABLE)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and 'nowhere.xyz' in done.stderr
    with pytest.raises(ValueError, match="unknown mode 'nearest'"):
        normalise_parameters({'mode': 'nearest'})
    done, arrays, results = _run(tmp_path, sets['x'][:3], None, mode='distance_to_first')
    npz = (tmp_path / 'rematch.npz').read_bytes()
    with pytest.raises(ValueError, match=r"array '\w+' has shape \(3,\), expected \(4,\)"):
        parse_rematch_output(npz, json.dumps({**results, 'n_x': 4}))
    with pytest.raises(ValueError, match=r"lacks the array\(s\) \['nearest_index'\]"):
        parse_rematch_output(npz, json.dumps({**results, 'mode': 'nearest_neighbour'}))
    with pytest.raises(ValueError, match='not valid JSON'):
        parse_rematch_output(npz, '{')
    done, arrays, results = _run(tmp_path, sets['x'][:3], sets['y'][:2], mode='nearest_neighbour')
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, 'nearest_index': np.array([0, 2, 1])})
    with pytest.raises(ValueError, match=r'nearest_index holds indices outside \[0, 2\)'):
        parse_rematch_output(buffer.getvalue(), json.dumps(results))
