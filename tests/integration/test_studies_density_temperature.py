"""The density/temperature study (issue 17, thesis 10.6) at ``tiny`` size with the real programs (LAMMPS, gap_fit,
quip), in this process against the test profile: the summary's keys, that each GAP was trained on the state points
its name says (provenance of its pool), and that the tables are the energies of the stored NVT frames and the
metrics and volumes of the stored fits and NPT runs. The finding's direction (the temperature-varied GAP's NPT
volume, the energy distribution's shift with T) is not checked: at 32 ions, 11 frames per state point and 50 NPT
steps it is within the errors. The recorded ``small`` run is in ``docs/source/results/nacl_density_temperature/``."""

import json

import numpy as np
import pytest

from tests.helpers import assert_npt_run_recorded, load_study

pytestmark = pytest.mark.integration


def test_density_temperature_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code):
    from aiida import orm

    from aiida_mlfail.science.observables import mean_and_standard_error

    study = load_study('nacl_density_temperature')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code}
    summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_density_temperature.py --size tiny')
    written = json.loads((tmp_path / 'nacl_density_temperature_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'} <= set(written)
    assert (written['study'], written['size'], written['sizes']['ions']) == ('nacl_density_temperature', 'tiny', 32)
    assert written['sizes']['nvt_volumes_A3'] == [1175, 1375]
    assert written['sizes']['temperatures_K'] == [1400.0, 1600.0]
    assert written['finding'].startswith('Thesis 10.6') and written['finding'].endswith('.')
    s = study.SIZES['tiny']

    # each GAP's pool is the merge of the NVT runs of its temperatures at every volume
    runs = written['runs']
    assert list(runs) == list(s['gaps']) == ['two volumes, 1400 K', 'two volumes, 1400-1600 K']
    merged = {}
    for name, temperatures in s['gaps'].items():
        fit = orm.load_node(runs[name]['fit_pk'])
        merge = fit.inputs.pool.creator
        assert set(merge.inputs) == {study.label(v, t) for t in temperatures for v in s['volumes']}, name
        assert runs[name]['training_configurations'] == fit.outputs.training_set.n_configurations == s['n_select'] // 2
        merged.update({key: merge.inputs[key] for key in merge.inputs})

    # the energy table: the potential energies of the stored NVT frames at the liquid volume, per temperature
    rows = written['tables']['energy_distributions']['rows']
    assert [row[0] for row in rows] == ['1400', '1600']
    for d, row in zip(written['energy_distributions'], rows):
        frames = merged[study.label(s['liquid_volume'], d['temperature_K'])].get_atoms()
        u = [a.info['energy'] / len(a) for a in frames]
        assert d['energies_eV_atom'] == pytest.approx(u) and d['frames'] == row[1] == len(u) == 11
        mean, stderr = mean_and_standard_error(np.array(u), blocks=5)
        assert row[2] == f'{mean:.4f} ± {stderr:.4f}'
        assert row[3] == f'{1000 * np.std(u, ddof=1):.2f}'
        c = 32 * np.var(u, ddof=1) / (study.KB * d['temperature_K']) ** 2
        assert row[4] == f'{c:.2f}'

    # the volume table: the metrics of the stored fits, the volumes of the stored NPT runs (break at 1.5 x, guard at
    # 3 x the classical volume, which the runs were given)
    reference = written['reference_volume']
    volume_rows = {row[0]: row for row in written['tables']['volumes']['rows']}
    assert volume_rows['classical BMHTF + PPPM'][5].startswith(f"{reference['mean']:.0f} ± ")
    for name, run in runs.items():
        metrics = orm.load_node(run['fit_pk']).outputs.metrics.get_dict()
        assert volume_rows[name][1:3] == [f"{1000 * metrics['energy']['rmse']:.2f}", f"{metrics['forces']['rmse']:.3f}"]
        node = orm.load_node(run['pk'])
        parameters = node.inputs.parameters.get_dict()
        assert parameters['reference_volume'] == pytest.approx(reference['mean'])
        assert (parameters['breaking_factor'], parameters['guards']['volume_factor']) == (1.5, 3.0)
        assert parameters['steps'] == s['md_steps'] == 50 and node.inputs.potential.uuid == \
            orm.load_node(run['fit_pk']).outputs.potential.uuid
        assert_npt_run_recorded(run, node, reference['mean'], name)
        if run['breaking_step'] is None:
            assert volume_rows[name][5].startswith(f"{run['volume']['mean']:.0f} ± "), name
    for figure in written['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure
    print(f"nacl_density_temperature tiny: {written['seconds']} s; {written['finding']}")
