"""A user's own classical reference through the daemon (issue 15): copper with a model EAM table (a potential
file) sampled by ``mlfail.sample``, and labelled by ``mlfail.label`` with a Morse reference (no file)."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import FIXTURES, lammps_jobs

pytestmark = pytest.mark.integration

EAM_FILE = FIXTURES / 'eam_cu' / 'Cu_model.eam'
EAM = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
       'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_model.eam'],
       'files': {'Cu_model.eam': str(EAM_FILE)}}
MORSE = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
         'commands': ['pair_style morse 6.0', 'pair_coeff 1 1 0.3429 1.3588 2.866']}


def test_copper_sampled_with_an_eam_file_and_labelled_with_morse(submit_and_await, lammps_code):
    structure = bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(2)  # 32 atoms
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(
        lammps_code, structure, reference=EAM,
        state_points=[{'temperature': 900.0, 'volume': structure.get_volume(), 'label': 'hot'}],
        overrides={'md': {'timestep': 2.0, 'equilibration_steps': 100, 'production_steps': 200,
                          'sampling_interval': 50, 'thermo_interval': 50, 'seed': 5}})
    sampling = submit_and_await(builder, timeout=600)
    assert sampling.is_finished_ok, sampling.exit_message
    pool = sampling.outputs.pool
    assert pool.n_configurations == 5  # steps 100, 150, ..., 300
    frames = pool.get_atoms()
    energies = np.array([a.info['energy'] for a in frames])
    forces = np.concatenate([a.arrays['forces'] for a in frames])
    assert np.all(np.isfinite(energies)) and np.all(np.isfinite(forces))
    assert -7.0 < energies.mean() / 32 < -5.0  # the model table binds copper at about -6.4 eV/atom
    assert 0.05 < np.abs(forces).mean() < 5.0  # eV/Å: a hot solid, not a broken table
    # the file is an input of the WorkChain and of the LAMMPS job, written under its name
    file_node = sampling.inputs.potential_files.Cu_model_eam
    assert file_node.filename == 'Cu_model.eam' and file_node.get_content() == EAM_FILE.read_text()
    jobs = lammps_jobs(sampling)
    assert jobs and all(job.inputs.files.potential_Cu_model_eam.uuid == file_node.uuid for job in jobs)
    assert 'pair_coeff 1 1 Cu_model.eam' in jobs[0].inputs.script.get_content()
    # the reference id of the sampled frames hashes the file content
    assert pool.reference['label'] == 'lammps Cu (pair_style eam; files Cu_model.eam)'

    label_builder = LabelWorkChain.get_builder_from_protocol(lammps_code, pool, reference=MORSE)
    labelled = submit_and_await(label_builder, timeout=600)
    assert labelled.is_finished_ok, labelled.exit_message
    morse = labelled.outputs.training_set.get_atoms()
    assert len(morse) == 5
    morse_energies = np.array([a.info['energy'] for a in morse])
    assert np.all(np.isfinite(morse_energies)) and not np.allclose(morse_energies, energies)
    assert labelled.outputs.training_set.reference['label'] == 'lammps Cu (pair_style morse 6.0)'


#: The input of docs/source/tutorials/own_system.md ("Your own classical reference"), verbatim.
OWN_REFERENCE_YAML = """\
structure: cu32.xyz
reference:
  name: lammps
  species: [Cu]
  atom_style: atomic
  commands:
    - pair_style eam
    - pair_coeff 1 1 Cu_model.eam
  files: {Cu_model.eam: Cu_model.eam}
temperatures: [900.0]
md: {equilibration_steps: 100, production_steps: 200, sampling_interval: 50}
"""


def launch_in(tmp_path, monkeypatch, yaml_name: str, yaml_text: str, *options):
    """``aiida-mlfail launch mlfail.sample [options] -i yaml_name`` in the foreground, in ``tmp_path`` holding the
    EAM file and the 32-atom copper ``cu32.xyz``; asserts it finished OK and returns the WorkChain node."""
    import re
    import shutil
    import time

    from aiida import orm

    from aiida_mlfail.cli.main import cli
    from tests.cli.shared import invoke

    monkeypatch.chdir(tmp_path)
    shutil.copy(EAM_FILE, tmp_path / 'Cu_model.eam')
    bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(2).write(tmp_path / 'cu32.xyz')
    (tmp_path / yaml_name).write_text(yaml_text)
    args = ['launch', 'mlfail.sample', *options, '-i', yaml_name]
    start = time.perf_counter()
    result = invoke(cli, args)
    print(f"{' '.join(args)}: {time.perf_counter() - start:.1f} s")
    assert result.exit_code == 0, result.output
    return orm.load_node(int(re.search(r'ClassicalSamplingWorkChain <(\d+)> finished \[0\]', result.output).group(1)))


def test_the_documented_yaml_runs_from_the_command_line(tmp_path, monkeypatch, lammps_code):
    """``aiida-mlfail launch mlfail.sample --protocol fast -i cu_eam.yaml`` in the foreground (as the tutorial)."""
    node = launch_in(tmp_path, monkeypatch, 'cu_eam.yaml', OWN_REFERENCE_YAML, '--protocol', 'fast')
    assert node.outputs.pool.n_configurations == 5
    assert node.inputs.potential_files.Cu_model_eam.get_content() == EAM_FILE.read_text()


#: The same run without ``--protocol``: the ports of ``mlfail.sample`` as they are (the reference's ``files`` a
#: list of names, the files under ``potential_files``, the MD settings and state points in full).
OWN_REFERENCE_PORTS_YAML = """\
structure: cu32.xyz
potential:
  name: lammps
  species: [Cu]
  atom_style: atomic
  commands:
    - pair_style eam
    - pair_coeff 1 1 Cu_model.eam
  files: [Cu_model.eam]
potential_files: {Cu_model_eam: Cu_model.eam}
state_points: [{temperature: 900.0, volume: 377.9, label: hot}]
md: {equilibration_steps: 0, production_steps: 20, sampling_interval: 10, thermo_interval: 10}
"""


def test_the_ports_yaml_with_a_potential_file_runs_without_a_protocol(tmp_path, monkeypatch, lammps_code):
    """``aiida-mlfail launch mlfail.sample -i cu_eam_ports.yaml`` (no ``--protocol``) in the foreground."""
    node = launch_in(tmp_path, monkeypatch, 'cu_eam_ports.yaml', OWN_REFERENCE_PORTS_YAML)
    assert node.outputs.pool.n_configurations == 3  # steps 0, 10, 20
    file_node = node.inputs.potential_files.Cu_model_eam
    assert file_node.filename == 'Cu_model.eam' and file_node.get_content() == EAM_FILE.read_text()
    assert node.outputs.pool.reference['label'] == 'lammps Cu (pair_style eam; files Cu_model.eam)'
