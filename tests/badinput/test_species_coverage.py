"""Species that nothing describes (issue 15), refused by the submit-time port validation naming them: GAP descriptors
that give no energy term to a species of the training data (``mlfail.gap_fit``, ``mlfail.gap``) or of the MD
structure (``mlfail.mlmd``), and an element the CP2K protocol's data files cannot describe
(``mlfail.cp2k_single_point``).

The other species cases of issue 15 are in ``test_reference_potential.py`` (a species of the structure the
reference does not list: ``sample-species-not-described``; a command naming a file not given:
``sample-command-names-unlisted-file``, ``sample-file-without-node``; charges missing for ``atom_style charge``:
``sample-charge-without-charges``) and ``test_cli.py`` (a structure species the GAP lacks:
``launch-namespace-validator-refuses``).

``CASES``: ``(case id, entry point, words)``; the entry's inputs are valid but for the case (the valid twin of each
is checked by :func:`test_the_covered_twin_is_accepted`).
"""

from __future__ import annotations

import os

import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import cp2k_library
from aiida_mlfail.science.gap_descriptors import default_descriptors
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from tests.badinput.harness import assert_words, sandbox
from tests.helpers import FIXTURES, nacl_configurations

CASES = [
    ('gap-fit-descriptors-miss-a-species', 'mlfail.gap_fit', ["['Cl']", 'no energy term', 'training set']),
    ('gap-descriptors-miss-a-species', 'mlfail.gap', ['fit.job.parameters', "['Cl']", 'no energy term', 'pool']),
    ('mlmd-gap-descriptors-miss-a-species', 'mlfail.mlmd', ["['Cl']", 'no descriptor of their own']),
    ('cp2k-element-the-protocol-cannot-describe', 'mlfail.cp2k_single_point', ['Ce', 'no basis set']),
]


def _descriptors(species):
    return {'descriptors': default_descriptors(species, 4.0, n_sparse_2b=5, n_sparse_soap=5),
            'train_on': ['energy', 'forces']}


def _gap(covered: bool) -> GapPotentialData:
    """The committed NaCl GAP; uncovered: its descriptors attribute keeps only the Na-centred and Na-Na ones,
    so Cl is a neighbour species (``species_Z``) but has no descriptor of its own."""
    node = GapPotentialData.from_folder(FIXTURES / 'bridge')
    if not covered:
        kept = [d for d in node.base.attributes.get('descriptors') if 'Z=11 ' in d or 'Z1=11 Z2=11' in d]
        assert kept and len(kept) < len(node.base.attributes.get('descriptors'))
        node.base.attributes.set('descriptors', kept)
    return node


@pytest.fixture
def entries(request, lammps_code, gap_fit_code, quip_code):
    def gap_fit(covered):
        return GapFitCalculation, {
            'code': gap_fit_code, 'training_set': TrainingSetData.from_atoms(nacl_configurations(4)),
            'parameters': orm.Dict(_descriptors(['Na', 'Cl'] if covered else ['Na']))}

    def gap(covered):
        return GapWorkChain, {
            'pool': TrainingSetData.from_atoms(nacl_configurations(4)),
            'fit': {'job': {'code': gap_fit_code,
                            'parameters': orm.Dict(_descriptors(['Na', 'Cl'] if covered else ['Na']))}},
            'predict': {'job': {'code': quip_code}}}

    def mlmd(covered):
        return MLMDWorkChain, {
            'md': {'job': {'code': lammps_code}}, 'potential': _gap(covered),
            'structure': orm.StructureData(ase=bulk('NaCl', 'rocksalt', a=5.64, cubic=True)),
            'parameters': orm.Dict({'steps': 100})}

    def cp2k_single_point(covered):
        if cp2k_library.data_dir() is None:
            if os.environ.get('CI'):
                pytest.fail('no CP2K data directory, and CI is set: this check must run in CI')
            pytest.skip('no CP2K data directory on this machine')
        code = request.getfixturevalue('cp2k_code')
        structure = bulk('Si', 'diamond', a=5.43, cubic=True) if covered else bulk('Ce', 'fcc', a=5.16)
        return Cp2kSinglePointWorkChain, {'structure': orm.StructureData(ase=structure), 'code': code,
                                          'protocol': orm.Str('moderate')}

    return {'mlfail.gap_fit': gap_fit, 'mlfail.gap': gap, 'mlfail.mlmd': mlmd,
            'mlfail.cp2k_single_point': cp2k_single_point}


@pytest.mark.parametrize('entry', ['mlfail.gap_fit', 'mlfail.gap', 'mlfail.mlmd', 'mlfail.cp2k_single_point'])
def test_the_covered_twin_is_accepted(entries, entry):
    process, inputs = entries[entry](True)
    assert process.spec().inputs.validate(inputs) is None


@pytest.mark.parametrize('case, entry, words', CASES, ids=[c[0] for c in CASES])
def test_an_undescribed_species_is_refused_naming_it(entries, tmp_path, case, entry, words):
    process, inputs = entries[entry](False)
    with sandbox(tmp_path):
        error = process.spec().inputs.validate(inputs)
    assert error is not None, f'{case} accepted'
    assert_words(str(error), words)


def _soap_only(species):
    """SOAP alone (thesis 10.1), one SOAP per centre species of ``species``, no distance_2b."""
    descriptors = default_descriptors(species, 4.0, n_sparse_2b=5, n_sparse_soap=5)
    return {'descriptors': [d for d in descriptors if d['type'] == 'soap'], 'train_on': ['energy', 'forces']}


@pytest.mark.parametrize('entry', ['mlfail.gap_fit', 'mlfail.gap'])
def test_soap_alone_is_accepted_but_not_without_a_species_own_soap(tmp_path, entry, gap_fit_code, quip_code):
    """A GAP of SOAP descriptors only is a valid choice (every species has its SOAP centre); SOAP on Na alone is
    refused at submit time naming Cl, as the 2-body + SOAP case above (the check is not weakened)."""
    def inputs(species):
        parameters = orm.Dict(_soap_only(species))
        pool = TrainingSetData.from_atoms(nacl_configurations(4))
        if entry == 'mlfail.gap_fit':
            return GapFitCalculation, {'code': gap_fit_code, 'training_set': pool, 'parameters': parameters}
        return GapWorkChain, {'pool': pool, 'fit': {'job': {'code': gap_fit_code, 'parameters': parameters}},
                              'predict': {'job': {'code': quip_code}}}

    assert [d['type'] for d in _soap_only(['Na', 'Cl'])['descriptors']] == ['soap', 'soap']
    process, valid = inputs(['Na', 'Cl'])
    assert process.spec().inputs.validate(valid) is None
    process, invalid = inputs(['Na'])
    with sandbox(tmp_path):
        error = process.spec().inputs.validate(invalid)
    assert error is not None, f'{entry}: SOAP on Na only accepted'
    assert_words(str(error), ["['Cl']", 'no energy term'])
