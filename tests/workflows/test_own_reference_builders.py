"""Builders with a generic reference (issue 15): the files become ``SinglefileData`` inputs next to the reference
Dict of every WorkChain that runs it, and the built inputs pass the submit-time validation."""

from aiida import orm
from ase.build import bulk

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from tests.helpers import FIXTURES

EAM_FILE = FIXTURES / 'eam_cu' / 'Cu_model.eam'
EAM = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
       'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_model.eam'], 'files': {'Cu_model.eam': str(EAM_FILE)}}


def copper(rattle=0.0, seed=1):
    atoms = bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(2)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def _valid(process, builder):
    assert process.spec().inputs.validate(builder._inputs(prune=True)) is None


def test_label_builder_makes_the_file_node(lammps_code):
    pool = TrainingSetData.from_atoms([copper(0.05, 1), copper(0.05, 2)])
    builder = LabelWorkChain.get_builder_from_protocol(lammps_code, pool, reference=EAM)
    assert builder.lammps.potential.get_dict()['files'] == ['Cu_model.eam']
    assert builder.lammps.potential_files['Cu_model_eam'].filename == 'Cu_model.eam'
    _valid(LabelWorkChain, builder)


def test_mlmd_builder_puts_the_files_next_to_the_rerun_reference(lammps_code, tmp_path):
    table = tmp_path / 'NaCl.eam.alloy'
    table.write_text('# a table the validation does not read\n')
    reference = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
                 'commands': ['pair_style eam/alloy', 'pair_coeff * * NaCl.eam.alloy Na Cl'],
                 'files': {'NaCl.eam.alloy': str(table)}}
    builder = MLMDWorkChain.get_builder_from_protocol(
        lammps_code, GapPotentialData.from_folder(FIXTURES / 'bridge'),
        bulk('NaCl', 'rocksalt', a=5.64, cubic=True), reference=reference)
    assert builder.reference.potential_files['NaCl_eam_alloy'].filename == 'NaCl.eam.alloy'
    _valid(MLMDWorkChain, builder)


def test_active_learning_builder_gives_the_files_to_sampling_and_labeller(lammps_code, gap_fit_code, quip_code,
                                                                          explore_code):
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code}
    builder = ActiveLearningWorkChain.get_builder_from_protocol(codes, copper(), reference=EAM)
    sampled = builder.sampling.potential_files['Cu_model_eam']
    labelled = builder.label.lammps.potential_files['Cu_model_eam']
    assert sampled.filename == labelled.filename == 'Cu_model.eam'
    assert sampled.get_content() == labelled.get_content() == EAM_FILE.read_text()
    inputs = builder._inputs(prune=True)
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    # a labeller without the file is refused at submit, naming it
    inputs['label']['lammps']['potential_files'] = {}
    error = ActiveLearningWorkChain.spec().inputs.validate(inputs)
    assert error is not None and 'Cu_model.eam' in str(error)
    assert isinstance(sampled, orm.SinglefileData)
