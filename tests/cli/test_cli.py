"""``aiida-mlfail`` and ``verdi data mlfail`` through click's CliRunner on the test profile.

The fast tests build their nodes from committed fixtures; the integration tests run real programs:
a ClassicalSamplingWorkChain launched from YAML in the foreground and through the daemon, and the
shared tiny active-learning run + guard-stopped MLMD run of :mod:`tests.cli.shared`.
"""

import json
import re

import ase.io
import pytest
from aiida import orm
from aiida.cmdline.commands.cmd_verdi import verdi

from aiida_mlfail.cli import launch as launch_module
from aiida_mlfail.cli.main import cli
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.provenance import added_configurations
from tests.cli import shared
from tests.helpers import FIXTURES, nacl_configurations

invoke = shared.invoke

SAMPLE_YAML = """\
structure_spec: {system: nacl, n_ions: 32}
potential: {name: bmhtf_coul_long, parameters: {kspace_accuracy: 1.0e-4}}
state_points:
  - {temperature: 1400.0, volume: 1175.0, label: nvt}
md: {equilibration_steps: 100, production_steps: 200, sampling_interval: 50, thermo_interval: 20, seed: 5}
"""


@pytest.fixture
def runs(aiida_profile, started_daemon_client, lammps_code, gap_fit_code, quip_code, explore_code):
    return shared.real_runs(aiida_profile, lammps_code, gap_fit_code, quip_code, explore_code)


# -- fast: help, parsing, errors, verdi data mlfail ---------------------------------------------------


@pytest.mark.parametrize('args', [[], ['launch'], ['status'], ['report'], ['export'], ['export', 'training-set'],
                                  ['export', 'potential'], ['export', 'archive']])
def test_help_of_every_command(args):
    result = invoke(cli, [*args, '--help'])
    assert result.exit_code == 0, result.output
    assert 'Usage: ' in result.output


def test_launch_help_says_how_protocols_map_to_sizes():
    text = ' '.join(invoke(cli, ['launch', '--help']).output.split())
    assert 'fast and moderate run --size small, precise runs --size large' in text
    assert launch_module.PROTOCOL_SIZES == {'fast': 'small', 'moderate': 'small', 'precise': 'large'}
    assert {'nacl_active_learning', 'nacl_gap', 'config_space'} <= set(launch_module.study_names())


def test_overrides_are_yaml_values_under_dotted_keys():
    tree = {'md': {'seed': 1}}
    for text in ('md.seed=7', 'md.production_steps=400', 'state_points=[{temperature: 1400.0}]', 'a.b.c=x'):
        launch_module.apply_override(tree, *launch_module.parse_override(text))
    assert tree == {'md': {'seed': 7, 'production_steps': 400}, 'state_points': [{'temperature': 1400.0}],
                    'a': {'b': {'c': 'x'}}}
    with pytest.raises(Exception, match='key=value'):
        launch_module.parse_override('no_equals_sign')


def test_inputs_are_converted_against_the_ports(lammps_code, tmp_path):
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    structure_file = tmp_path / 'start.xyz'
    ase.io.write(structure_file, nacl_configurations(1)[0])
    spec = ClassicalSamplingWorkChain.spec().inputs
    inputs = launch_module.convert_inputs({'structure': str(structure_file), 'potential': {'name': 'bmhtf_coul_long'},
                                           'state_points': [{'temperature': 1400.0}],
                                           'lammps': {'job': {'code': 'lammps'}},
                                           'metadata': {'label': 'x'}}, spec, 'localhost')
    assert isinstance(inputs['structure'], orm.StructureData) and len(inputs['structure'].sites) == 64
    assert isinstance(inputs['potential'], orm.Dict) and isinstance(inputs['state_points'], orm.List)
    assert inputs['lammps']['job']['code'].uuid == lammps_code.uuid and inputs['metadata'] == {'label': 'x'}
    filled = launch_module.fill_default_codes({}, spec, 'mlfail.sample', 'localhost')
    assert filled == ['lammps.job.code: lammps@localhost']  # the code of the restart wrapper's job, by its role


def test_launch_rejects_bad_names_inputs_and_protocols(tmp_path, lammps_code):
    path = tmp_path / 'sample.yaml'
    path.write_text(SAMPLE_YAML)
    n_processes = orm.QueryBuilder().append(orm.ProcessNode).count()
    result = invoke(cli, ['launch', 'no_such_thing'])
    assert result.exit_code == 2 and 'neither a study' in result.output
    result = invoke(cli, ['launch', 'mlfail.sample', '-i', path, 'bogus=1'])
    assert result.exit_code == 2 and 'bogus: no such input' in result.output
    result = invoke(cli, ['launch', 'mlfail.sample', '-i', path, '--protocol', 'fast'])
    assert result.exit_code == 2 and "get_builder_from_protocol needs ['structure']" in result.output
    result = invoke(cli, ['launch', 'mlfail.sample', '-i', path, 'lammps.job.code=no_such_code'])
    assert result.exit_code == 2 and "no code 'no_such_code@localhost'" in result.output
    result = invoke(cli, ['launch', 'mlfail.sample', '-i', path, 'state_points=[{temperature: -5}]'])
    assert result.exit_code == 1
    assert 'invalid inputs' in result.output and 'temperature must be a finite number > 0 K, got -5' in result.output
    result = invoke(cli, ['launch', 'nacl_gap', '--submit'])
    assert result.exit_code == 2 and '--submit applies to workflow entry points' in result.output
    result = invoke(cli, ['launch', 'nacl_gap', '--computer', 'cluster'])
    assert result.exit_code == 2 and 'has no --computer option' in result.output
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == n_processes  # nothing was launched
    result = invoke(cli, ['launch', 'nacl_gap', '--protocol', 'precise', '--', '--help'])
    assert result.exit_code == 0 and 'running workflows/nacl_gap.py --size large --help' in result.output


def test_verdi_data_mlfail_trainingset_show_and_export(tmp_path):
    node = TrainingSetData.from_atoms(nacl_configurations(4)).store()
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'show', node.pk])
    assert result.exit_code == 0, result.output
    rows = dict(re.split(r'\s{2,}', line.strip(), maxsplit=1) for line in result.output.splitlines() if line.strip())
    assert rows['configurations'] == '4' and rows['species'] == 'Cl Na' and rows['atoms per configuration'] == '64'
    assert rows['labels'] == ' '.join(node.labels) and rows['config_type'] == 'fixture x4'
    assert rows['labelled by'] == 'unknown reference [unknown unknown]'
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'show', '--configurations', node.pk])
    assert result.exit_code == 0 and 'config_type' in result.output and len(result.output.splitlines()) > 10
    target = tmp_path / 'set.xyz'
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'export', node.pk, '-o', target])
    assert result.exit_code == 0, result.output
    frames = ase.io.read(target, ':')
    assert len(frames) == 4 and frames[0].get_forces().shape == (64, 3)
    assert frames[2].get_potential_energy() == pytest.approx(node.get_atoms()[2].info['energy'])
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'export', node.pk, '-o', tmp_path / 'set.pdb', '-F',
                            'proteindatabank'])
    assert result.exit_code == 0 and len(ase.io.read(tmp_path / 'set.pdb', ':')) == 4


def test_verdi_data_mlfail_trainingset_import_names_the_reference(tmp_path):
    from aiida_mlfail.science.references import cp2k_reference, named_reference

    path = tmp_path / 'dft.xyz'
    TrainingSetData.from_atoms(nacl_configurations(3)).export(path)
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'import', path, '--reference', 'PBE-D3 VASP 2019'])
    assert result.exit_code == 0, result.output
    node = orm.load_node(int(re.search(r'TrainingSetData <(\d+)>', result.output).group(1)))
    assert node.n_configurations == 3 and node.reference == named_reference('PBE-D3 VASP 2019')
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'import', path, '-r', 'cp2k:fast', '-L', 'dft'])
    assert result.exit_code == 0, result.output
    node = orm.load_node(int(re.search(r'TrainingSetData <(\d+)>', result.output).group(1)))
    assert node.reference == cp2k_reference('fast') and node.label == 'dft'
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'import', path])  # no reference: unknown, said so
    assert result.exit_code == 0 and 'unknown reference' in result.output and 'no --reference given' in result.output
    n_nodes = orm.QueryBuilder().append(orm.Node).count()
    result = invoke(verdi, ['data', 'mlfail', 'trainingset', 'import', path, '--reference', 'cp2k:ultra'])
    assert result.exit_code == 2 and "unknown CP2K protocol 'ultra'" in result.output
    assert orm.QueryBuilder().append(orm.Node).count() == n_nodes


def test_launch_takes_a_training_set_file_with_its_reference(tmp_path):
    from aiida_mlfail.science.references import lammps_reference
    from aiida_mlfail.workflows.gap import GapWorkChain

    path = tmp_path / 'set.xyz'
    TrainingSetData.from_atoms(nacl_configurations(3)).export(path)
    spec = GapWorkChain.spec().inputs
    inputs = launch_module.convert_inputs({'pool': {'file': str(path), 'reference': 'lammps:bmhtf_coul_long'},
                                           'validation_set': str(path)}, spec, 'localhost')
    assert inputs['pool'].reference == lammps_reference({'name': 'bmhtf_coul_long'})
    assert inputs['validation_set'].reference['kind'] == 'unknown'
    with pytest.raises(Exception, match='takes `file` and `reference`'):
        launch_module.convert_inputs({'pool': {'path': str(path)}}, spec, 'localhost')
    with pytest.raises(Exception, match='pool.file: no file'):
        launch_module.convert_inputs({'pool': {'file': str(tmp_path / 'none.xyz')}}, spec, 'localhost')


def test_verdi_data_mlfail_potential_show_and_export(tmp_path):
    node = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok').store()
    result = invoke(verdi, ['data', 'mlfail', 'potential', 'show', node.pk])
    assert result.exit_code == 0, result.output
    assert node.label in result.output and 'descriptor 0' in result.output and 'cutoff (Å)' in result.output
    result = invoke(verdi, ['data', 'mlfail', 'potential', 'export', node.pk, '-o', tmp_path / 'gap'])
    assert result.exit_code == 0, result.output
    for name in node.base.attributes.get('files'):
        assert (tmp_path / 'gap' / name).read_bytes() == (FIXTURES / 'gap_fit_ok' / name).read_bytes()
    # a training set is not a potential: a clear error, not a traceback
    other = TrainingSetData.from_atoms(nacl_configurations(1)).store()
    result = invoke(verdi, ['data', 'mlfail', 'potential', 'show', other.pk])
    assert result.exit_code == 2 and 'no GapPotentialData found' in result.output


def test_export_of_plain_data_and_wrong_node_types(tmp_path):
    node = TrainingSetData.from_atoms(nacl_configurations(3)).store()
    result = invoke(cli, ['export', 'training-set', node.pk, '-o', tmp_path / 'x.xyz'])
    assert result.exit_code == 0, result.output
    frames = ase.io.read(tmp_path / 'x.xyz', ':')
    # not from a run, no sampling job among its ancestors: initial data of unknown origin
    assert [(f.info['iteration'], f.info['trigger'], f.info['labelling_job_uuid']) for f in frames] == \
        [(0, 'initial', 'unknown')] * 3
    result = invoke(cli, ['export', 'potential', node.pk, '-o', tmp_path / 'gap'])
    assert result.exit_code == 2 and 'give a GapPotentialData' in result.output


# -- integration: real programs ----------------------------------------------------------------------


@pytest.mark.integration
def test_launch_sample_from_yaml_in_the_foreground_and_submitted(tmp_path, lammps_code, started_daemon_client):
    path = tmp_path / 'sample.yaml'
    path.write_text(SAMPLE_YAML)
    result = invoke(cli, ['launch', 'mlfail.sample', '--inputs', path, 'md.seed=3', 'metadata.label=cli foreground'])
    assert result.exit_code == 0, result.output
    assert 'default code lammps.job.code: lammps@localhost' in result.output
    assert re.search(r'\[\s+\d+\.\d s\] \[\d+\|ClassicalSamplingWorkChain\|results\]: pool of 5 configurations',
                     result.output), result.output  # the progress display: reports with elapsed time
    pk = int(re.search(r'ClassicalSamplingWorkChain <(\d+)> finished \[0\]', result.output).group(1))
    node = orm.load_node(pk)
    assert node.label == 'cli foreground' and node.outputs.pool.n_configurations == 5
    assert node.inputs.md['seed'] == 3 and node.inputs.lammps.job.code.uuid == lammps_code.uuid
    assert len(orm.Log.collection.get_logs_for(node)) >= 3  # reports still reach the database

    result = invoke(cli, ['launch', 'mlfail.sample', '-i', path, 'md.seed=4', '--submit'])
    assert result.exit_code == 0, result.output
    pk = int(re.search(r'submitted ClassicalSamplingWorkChain <(\d+)>', result.output).group(1))
    node = shared.wait(orm.load_node(pk), timeout=300)
    assert node.is_finished_ok and node.inputs.md['seed'] == 4


@pytest.mark.integration
def test_launch_entry_point_with_a_protocol_runs_its_builder(tmp_path, lammps_code):
    """``launch mlfail.sample --protocol fast structure=FILE reference={...}``: the builder's arguments by name,
    the rest (``md.seed``) an override of the protocol inputs; the run finishes with the protocol's frames."""
    structure_file = tmp_path / 'start.xyz'
    ase.io.write(structure_file, nacl_configurations(1)[0])
    result = invoke(cli, ['launch', 'mlfail.sample', '--protocol', 'fast', f'structure={structure_file}',
                          'reference={name: bmhtf_coul_long}', 'md.seed=11'])
    assert result.exit_code == 0, result.output
    pk = int(re.search(r'ClassicalSamplingWorkChain <(\d+)> finished \[0\]', result.output).group(1))
    node = orm.load_node(pk)
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    md = ClassicalSamplingWorkChain.get_protocol_inputs('fast')['md']
    assert node.inputs.md['seed'] == 11 and node.inputs.md['production_steps'] == md['production_steps']
    assert node.inputs.lammps.job.code.uuid == lammps_code.uuid and len(node.inputs.structure.sites) == 64
    assert node.outputs.pool.n_configurations == md['production_steps'] // md['sampling_interval'] + 1


def table_iterations(output: str) -> list[int]:
    """The iteration numbers of the iteration table in a status output."""
    lines = output.splitlines()
    header = next((i for i, line in enumerate(lines) if line.strip().startswith('it  train')), None)
    if header is None:
        return []
    found = []
    for line in lines[header + 1:]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        found.append(int(line.split()[0]))
    return found


@pytest.mark.integration
def test_status_while_running_and_when_finished(runs):
    assert runs.while_running, 'status was never called while the run was running'
    first = runs.while_running[0]
    assert f'ActiveLearningWorkChain <{runs.run.pk}>: ' in first
    assert re.search(r': (created|waiting|running)', first) and 'running now:' in first
    assert all('outcome:' not in out for out in runs.while_running)
    result = invoke(cli, ['status', runs.run.pk])
    assert result.exit_code == 0, result.output
    rows = runs.run.outputs.summary['iterations']
    assert f'finished [{runs.run.exit_status}]' in result.output and 'outcome: ' in result.output
    assert table_iterations(result.output) == [r['iteration'] for r in rows]
    # while running, the table so far (from the extras) is a prefix of the final one
    for out in runs.while_running:
        so_far = table_iterations(out)
        assert so_far == [r['iteration'] for r in rows][:len(so_far)]
    listing = invoke(cli, ['status'])
    assert re.search(rf'^\s*{runs.run.pk}\s', listing.output, re.M), listing.output
    other = invoke(cli, ['status', runs.mlmd.pk])
    assert 'finished [410]' in other.output and 'output forensics_plot' in other.output


@pytest.mark.integration
def test_report_exports_tables_and_figures(runs, tmp_path):
    folder = tmp_path / 'report'
    result = invoke(cli, ['report', runs.run.pk, '-o', folder])
    assert result.exit_code == 0, result.output
    names = {p.name for p in folder.iterdir()}
    assert {'summary.txt', 'summary.json', 'convergence.png', 'process_report.txt'} <= names
    assert {f'parity_iteration_{i}.png' for i in range(len(runs.fits))} <= names
    assert f'forensics_mlmd_{runs.mlmd.pk}.png' in names
    for name in names:
        if name.endswith('.png'):
            assert (folder / name).read_bytes()[:4] == b'\x89PNG'
    data = json.loads((folder / 'summary.json').read_text())
    assert data['iterations'] == runs.run.outputs.summary['iterations']
    assert len(data['potentials']) == len(runs.fits) and data['potentials'][-1]['final']
    assert [r['uuid'] for r in data['failed_md_runs']].count(runs.mlmd.uuid) == 1
    assert len(data['added_configurations']) == sum(r['added'] for r in data['iterations'])
    text = (folder / 'summary.txt').read_text()
    assert 'too_close_atoms' in text and runs.run.outputs.summary['table'].splitlines()[0] in text


@pytest.mark.integration
def test_export_training_set_with_per_frame_provenance(runs, tmp_path):
    target = tmp_path / 'train.xyz'
    result = invoke(cli, ['export', 'training-set', runs.run.pk, '-o', target])
    assert result.exit_code == 0, result.output
    frames = ase.io.read(target, ':')
    final = runs.run.outputs.training_set
    assert len(frames) == final.n_configurations
    for frame in frames:
        assert {'iteration', 'md_step', 'trigger', 'labelling_job_uuid'} <= set(frame.info)
    records = {r['structure'].uuid: r for r in added_configurations(runs.run)}
    added = [f for f in frames if f.info['iteration'] > 0]
    assert len(added) == len(records) >= 1
    for frame in added:
        record = records[frame.info['structure_uuid']]
        assert frame.info['iteration'] == record['iteration'] and frame.info['md_step'] == record['md_step']
        assert frame.info['trigger'] == record['candidate']
        assert frame.info['labelling_job_uuid'] == record['labelling_jobs'][0].uuid
        assert frame.info['potential_uuid'] == record['potential'].uuid
    sampling_job = next(n for n in runs.sampling.called_descendants if n.process_label == "LammpsCalculation")
    initial = [f for f in frames if f.info['iteration'] == 0]
    assert initial and all(f.info['trigger'] == 'initial' for f in initial)
    assert {f.info['labelling_job_uuid'] for f in initial} == {sampling_job.uuid}
    assert frames[0].get_forces().shape == (32, 3)
    # the same fields from the node itself (the run is found from the set)
    result = invoke(cli, ['export', 'training-set', final.pk, '-o', tmp_path / 'same.xyz'])
    assert result.exit_code == 0 and (tmp_path / 'same.xyz').read_text() == target.read_text()


@pytest.mark.integration
def test_export_potential_and_archive(runs, tmp_path):
    result = invoke(cli, ['export', 'potential', runs.run.pk, '-o', tmp_path / 'gap'])
    assert result.exit_code == 0, result.output
    potential = runs.run.outputs.potential
    for name in potential.base.attributes.get('files'):
        assert (tmp_path / 'gap' / name).read_bytes() == potential.base.repository.get_object_content(name, mode='rb')
    assert GapPotentialData.from_folder(tmp_path / 'gap').label == potential.label

    from aiida.tools.archive import import_archive
    from aiida.tools.archive.abstract import get_format

    archive = tmp_path / 'run.aiida'
    result = invoke(cli, ['export', 'archive', runs.run.pk, '-o', archive])
    assert result.exit_code == 0, result.output
    with get_format().open(archive, 'r') as reader:
        uuids = set(reader.querybuilder().append(orm.Node, project='uuid').all(flat=True))
    expected = {runs.run.uuid, potential.uuid, runs.run.outputs.training_set.uuid, *(f.uuid for f in runs.fits)}
    assert expected <= uuids
    assert runs.mlmd.uuid not in uuids  # a later run that used its GAP is not part of the run
    import_archive(archive)  # importable (into the same profile: nothing new)
    result = invoke(cli, ['export', 'archive', runs.run.pk, '-o', archive])
    assert result.exit_code == 2 and '--overwrite' in result.output
    assert invoke(cli, ['export', 'archive', runs.run.pk, '-o', archive, '--overwrite']).exit_code == 0
