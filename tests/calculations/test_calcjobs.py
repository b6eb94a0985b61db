"""prepare_for_submission and submit-time validation of the CalcJobs (no program is run here)."""

import pytest
from aiida import orm
from aiida.common.folders import Folder
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager

from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.calculations.quip import QuipPredictCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from tests.helpers import FIXTURES, nacl_configurations

TWO_BODY = {'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]}


def _prepare(cls, tmp_path, **inputs):
    process = instantiate_process(get_manager().get_runner(), cls, **inputs)
    folder = Folder(str(tmp_path))
    return process.prepare_for_submission(folder), folder


def test_gap_fit_prepare_writes_training_set_and_preflight(tmp_path, gap_fit_code):
    training_set = TrainingSetData.from_atoms(nacl_configurations(3))
    calcinfo, folder = _prepare(GapFitCalculation, tmp_path, code=gap_fit_code, training_set=training_set,
                                parameters=orm.Dict(TWO_BODY),
                                metadata={'options': {'max_memory_kb': 2_000_000}})
    assert 'training_set.xyz' in folder.get_content_list()
    (codeinfo,) = calcinfo.codes_info
    assert 'gp_file=gap.xml' in codeinfo.cmdline_params
    assert any(p.startswith('gap={distance_2b') for p in codeinfo.cmdline_params)
    assert 'dryrun=T > gap_fit_dryrun.out' in calcinfo.prepend_text
    assert 'mlfail_limit_kb=2000000' in calcinfo.prepend_text
    assert 'gap.xml.sparseX.*' in calcinfo.retrieve_list


@pytest.mark.parametrize('parameters, match', [
    ({**TWO_BODY, 'train_on': ['energy', 'virial']}, r"lacks the label\(s\) \['virial'\]"),
    ({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 100000}]},
     'n_sparse=100000 is larger than'),
    ({**TWO_BODY, 'sigma': {'energy': -1.0}}, 'sigma.energy must be a finite number > 0 eV/atom, got -1.0'),
    ({'descriptors': [{'type': 'distance_2b', 'cutoff': -5.0, 'delta': 0.5, 'n_sparse': 10}]},
     'cutoff must be a finite number > 0'),
])
def test_gap_fit_rejects_bad_input_at_submit(gap_fit_code, parameters, match):
    configurations = nacl_configurations(3)
    if 'virial' in str(parameters.get('train_on')):
        for atoms in configurations:
            del atoms.info['virial']
    training_set = TrainingSetData.from_atoms(configurations)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        instantiate_process(get_manager().get_runner(), GapFitCalculation, code=gap_fit_code,
                            training_set=training_set, parameters=orm.Dict(parameters))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing half-stored


def test_quip_prepare_strips_labels_and_checks_species(tmp_path, quip_code):
    potential = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok')
    configurations = TrainingSetData.from_atoms(nacl_configurations(2))
    calcinfo, folder = _prepare(QuipPredictCalculation, tmp_path, code=quip_code, potential=potential,
                                configurations=configurations)
    content = folder.get_content_list()
    assert 'gap.xml' in content and 'configurations.xyz' in content
    text = (tmp_path / 'configurations.xyz').read_text()
    assert 'energy=' not in text and 'forces' not in text
    assert calcinfo.codes_info[0].cmdline_params[:3] == ['E=T', 'F=T', 'V=T']
    from ase.build import bulk

    argon = TrainingSetData.from_atoms([bulk('Ar', 'fcc', a=5.26, cubic=True)])
    with pytest.raises(ValueError, match=r"species \['Ar'\] of the configurations are not described"):
        instantiate_process(get_manager().get_runner(), QuipPredictCalculation, code=quip_code,
                            potential=potential, configurations=argon)
