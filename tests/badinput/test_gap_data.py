"""Bad-input suite: untrusted GAP potentials (XML files, crafted nodes as from an archive) and gap_fit
descriptor settings (issue 13).

Every case: refused with a message naming the key, attribute or file; no node stored; no file created
outside the sandbox's ``allowed/`` folder (the payloads aim at ``<sandbox>/pwned`` or ``<sandbox>/x``).
Crafted nodes get their attributes set directly, as an AiiDA archive could carry them (such a node
never went through ``GapPotentialData.from_folder``).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

import pytest
from aiida import orm

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.calculations.quip import QuipPredictCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import gap
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from tests.badinput.harness import api_refused, assert_words, sandbox
from tests.helpers import FIXTURES, nacl_configurations

SOURCE = FIXTURES / 'gap_fit_ok'
XML = (SOURCE / 'gap.xml').read_text()
LABEL = gap.parse_gap_xml(XML)['label']
SPARSE = sorted(p.name for p in SOURCE.glob('gap.xml.sparseX.*'))
INIT = f'init_args="IP GAP label={LABEL}"'
D2B = {'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}

# --- crafted GAP XML files, read with GapPotentialData.from_folder -----------------------------------------
# (id, XML text with ROOT standing for the sandbox root, filename given to from_folder, words of the message)
XML_CASES = [
    ('xml-init-args-quote-newline-shell',
     XML.replace(INIT, f'init_args="IP GAP label={LABEL} 11 17\nshell touch ROOT/pwned\n#"'), 'gap.xml',
     ['init_args', 'shell touch', 'not a QUIP init string']),
    ('xml-label-newline-shell', XML.replace(f'<Potential label="{LABEL}"',
                                            '<Potential label="L\nshell touch ROOT/pwned"'),
     'gap.xml', ['<Potential label>', 'shell touch']),
    ('xml-init-args-unknown-keyword', XML.replace(INIT, f'init_args="IP GAP label={LABEL} minimise_bulk=T"'), 'gap.xml',
     ["unknown keyword 'minimise_bulk'", 'allowed: label']),
    ('xml-init-args-other-label', XML.replace(INIT, 'init_args="IP GAP label=OTHER"'), 'gap.xml',
     ["label 'OTHER' is not the GAP label"]),
    ('xml-sparse-dotdot', XML.replace(f'sparseX_filename="{SPARSE[0]}"', 'sparseX_filename="../secret"'), 'gap.xml',
     ['sparseX_filename', "'../secret'"]),
    ('xml-sparse-absolute', XML.replace(f'sparseX_filename="{SPARSE[0]}"', 'sparseX_filename="/etc/hostname"'),
     'gap.xml', ['sparseX_filename', "'/etc/hostname'"]),
    ('xml-sparse-space', XML.replace(f'sparseX_filename="{SPARSE[0]}"', 'sparseX_filename="a b"'), 'gap.xml',
     ['sparseX_filename', "'a b'"]),
    ('xml-filename-carries-payload', XML, 'gap.xml" 11 17\nshell touch pwned\n#', ['GAP filename', 'shell touch']),
    ('xml-filename-traversal', XML, '../input/gap.xml', ['GAP filename', "'../input/gap.xml'"]),
    ('xml-sparse-symlink-outside', XML, 'gap.xml', ['resolves to', 'outside the folder']),
]

# --- crafted nodes: attributes as an archive could carry them ---------------------------------------------
# (id, attributes, use, words); use is one of: pairs, calculator, write, explore, lammps, quip, mlmd
NODE_CASES = [
    ('node-init-args-pair-commands', {'init_args': f'IP GAP label={LABEL}" 11 17\nshell touch ROOT/pwned\n#'},
     'pairs', ['init_args', 'not a QUIP init string']),
    ('node-init-args-calculator', {'init_args': f'IP GAP label={LABEL} $(touch)'}, 'calculator', ['init_args']),
    ('node-files-dotdot-write', {'files': ['gap.xml', '../x']}, 'write', ['GAP file name', "'../x'"]),
    ('node-files-absolute-write', {'files': ['gap.xml', 'ROOT/x']}, 'write', ['GAP file name', '/x']),
    ('node-files-dotdot-calculator', {'files': ['gap.xml', '../x']}, 'calculator', ["'../x'"]),
    ('node-filename-payload-pairs', {'filename': 'gap.xml "IP GAP" 11 17\nshell touch pwned\n#'}, 'pairs',
     ['GAP filename', 'shell touch']),
    ('node-label-bad-pairs', {'label': 'L;x'}, 'pairs', ['GAP label', "'L;x'"]),
    ('node-files-not-in-repository-write', {'files': ['gap.xml', 'other.sparseX']}, 'write',
     ["['other.sparseX'] are listed but not in the repository"]),
    ('node-init-args-explore-port', {'init_args': f'IP GAP label={LABEL}"\nshell touch ROOT/pwned\n"'}, 'explore',
     ['potential', 'init_args']),
    ('node-files-lammps-port', {'files': ['gap.xml', '../x']}, 'lammps', ['potential', "'../x'"]),
    ('node-filename-quip-port', {'filename': '/tmp/gap.xml'}, 'quip', ['potential', 'GAP filename', '/tmp/gap.xml']),
    ('node-init-args-mlmd-port', {'init_args': 'IP GAP label=OTHER'}, 'mlmd', ['potential', "label 'OTHER'"]),
    ('node-species-explore-port', {'species': ['Na', 'Cl"\nshell x']}, 'explore', ['potential', 'chemical symbols']),
]

# --- gap_fit descriptor settings ---------------------------------------------------------------------------
# (id, descriptor, entry point: normalise | arguments | calcjob, words)
DESCRIPTOR_CASES = [
    ('descriptor-print-sparse-index', {**D2B, 'print_sparse_index': 'ROOT/x'}, 'normalise',
     ['print_sparse_index', 'allowed']),
    ('descriptor-brace-in-value', {**D2B, 'sparse_method': 'uniform} at_file=/etc/passwd {'}, 'arguments',
     ['sparse_method', 'uniform}']),
    ('descriptor-sparse-file', {**D2B, 'sparse_method': 'file', 'sparse_file': 'ROOT/x'}, 'normalise',
     ['sparse_file']),
    ('descriptor-soap-key-on-2b', {**D2B, 'l_max': 4}, 'arguments', ["['l_max']", 'distance_2b']),
    ('descriptor-inf-cutoff', {**D2B, 'cutoff': float('inf')}, 'arguments', ['cutoff', 'inf']),
    ('descriptor-string-species', {'type': 'soap', 'n_max': 2, 'l_max': 2, 'atom_sigma': 0.5, 'cutoff': 4.0,
                                   'delta': 0.1, 'n_sparse': 5, 'species_Z': '11 17} x={'}, 'calcjob',
     ['species_Z', 'list of atomic numbers']),
    ('descriptor-unknown-key-calcjob', {**D2B, 'lengthscale_file': 'ROOT/x'}, 'calcjob',
     ['parameters', 'lengthscale_file']),
]

CASES = ([('xml', *case) for case in XML_CASES] + [('node', *case) for case in NODE_CASES]
         + [('descriptor', *case) for case in DESCRIPTOR_CASES])


def _crafted_folder(base: pathlib.Path, text: str, root: pathlib.Path) -> pathlib.Path:
    folder = base / 'input'
    folder.mkdir(parents=True)
    (base / 'secret').write_text('secret')
    (folder / 'gap.xml').write_text(text.replace('ROOT', str(root)))
    for name in SPARSE:
        (folder / name).write_bytes((SOURCE / name).read_bytes())
    return folder


def _crafted_node(attributes: dict, root: pathlib.Path, store: bool = False) -> GapPotentialData:
    node = GapPotentialData.from_folder(SOURCE)
    for key, value in attributes.items():
        if isinstance(value, str):
            value = value.replace('ROOT', str(root))
        elif isinstance(value, list):
            value = [v.replace('ROOT', str(root)) for v in value]
        node.base.attributes.set(key, value)
    return node.store() if store else node


def _structure():
    return orm.StructureData(ase=nacl_configurations(1)[0])


def _process_inputs(use: str, node, codes) -> tuple[type, dict]:
    if use == 'explore':
        return ExploreCalculation, {
            'code': codes['explore'], 'potential': node, 'structure': _structure(),
            'training_set': TrainingSetData.from_atoms(nacl_configurations(2)), 'parameters': orm.Dict({})}
    if use == 'lammps':
        return LammpsCalculation, {'code': codes['lammps'], 'potential': node,
                                   'script': orm.SinglefileData.from_string('run 0\n', filename='input.in')}
    if use == 'quip':
        return QuipPredictCalculation, {'code': codes['quip'], 'potential': node,
                                        'configurations': TrainingSetData.from_atoms(nacl_configurations(2))}
    if use == 'mlmd':
        return MLMDWorkChain, {'md': {'job': {'code': codes['lammps']}}, 'potential': node, 'structure': _structure(),
                               'parameters': orm.Dict({})}
    raise AssertionError(use)


@pytest.fixture
def codes(lammps_code, explore_code, quip_code):
    return {'lammps': lammps_code, 'explore': explore_code, 'quip': quip_code}


@pytest.mark.parametrize('case', CASES, ids=[case[1] for case in CASES])
def test_gap_data_refused(case, tmp_path, codes, monkeypatch):
    group, _, payload, how, words = case
    root = tmp_path / 'box'
    if group == 'xml':
        xml, filename = payload, how
        folder = _crafted_folder(tmp_path, xml, root)
        if case[1] == 'xml-sparse-symlink-outside':
            (folder / SPARSE[0]).unlink()
            (folder / SPARSE[0]).symlink_to(tmp_path / 'secret')
        with sandbox(root):
            api_refused(lambda: GapPotentialData.from_folder(folder, filename), words)
        return
    if group == 'node':
        attributes, use = payload, how
        node = _crafted_node(attributes, root)
        process, inputs = _process_inputs(use, node, codes) if use in ('explore', 'lammps', 'quip', 'mlmd') else (None,
                                                                                                                  None)
        with sandbox(root) as box:
            if use == 'pairs':
                api_refused(lambda: node.lammps_pair_commands(['Na', 'Cl']), words)
            elif use == 'calculator':
                monkeypatch.setattr(tempfile, 'tempdir', str(box.work))  # get_calculator's folder is watched too
                api_refused(node.get_calculator, words)
            elif use == 'write':
                api_refused(lambda: node.write_files(box.allowed), words)
                assert list(box.allowed.iterdir()) == []
            else:
                error = process.spec().inputs.validate(inputs)
                assert error is not None, f'{process.__name__} accepted a crafted potential'
                assert_words(str(error), words)
            assert not (root / 'pwned').exists() and not (root / 'x').exists()
        return
    descriptor, entry = payload, how
    descriptor = {k: (v.replace('ROOT', str(root)) if isinstance(v, str) else v) for k, v in descriptor.items()}
    with sandbox(root):
        if entry == 'normalise':
            api_refused(lambda: gap.normalise_fit_parameters({'descriptors': [descriptor]}), words)
        elif entry == 'arguments':
            api_refused(lambda: gap.gap_fit_arguments({**gap.FIT_DEFAULTS, 'sigma': gap.DEFAULT_SIGMA,
                                                       'descriptors': [descriptor]}, 'train.xyz', 'gap.xml'), words)
        else:
            error = GapFitCalculation.spec().inputs.validate({
                'code': codes['lammps'], 'training_set': TrainingSetData.from_atoms(nacl_configurations(2)),
                'parameters': orm.Dict({'descriptors': [descriptor]})})
            assert error is not None, 'GapFitCalculation accepted a bad descriptor'
            assert_words(str(error), words)


def test_crafted_potential_refused_at_submit(tmp_path, lammps_code, started_daemon_client):
    """Real submission: a LAMMPS job with a crafted potential (stored, as imported from an archive) is
    refused by ``submit`` before anything is stored or uploaded."""
    from aiida.engine import submit

    root = tmp_path / 'box'
    node = _crafted_node({'init_args': f'IP GAP label={LABEL}" 11 17\nshell touch ROOT/pwned\n#'}, root, store=True)
    script = orm.SinglefileData.from_string('units metal\nrun 0\n', filename='input.in')
    builder = LammpsCalculation.get_builder()
    with sandbox(root):
        api_refused(lambda: setattr(builder, 'potential', node), ['potential', 'init_args'])  # the builder refuses
        api_refused(lambda: submit(LammpsCalculation, code=lammps_code, potential=node, script=script),
                    ['potential', 'init_args', 'not a QUIP init string'])
    assert not (root / 'pwned').exists()


def test_bridge_subprocess_refuses_injected_pair_coeff(tmp_path):
    """Real run of ``mlfail-lmp``: a script whose quip ``pair_coeff`` init string is outside the GAP grammar,
    followed by a ``shell`` command, is refused before the shell command runs."""
    from ase.io import write

    root = tmp_path / 'box'
    folder = tmp_path / 'job'
    folder.mkdir()
    for path in (FIXTURES / 'bridge').glob('gap.xml*'):
        (folder / path.name).write_bytes(path.read_bytes())
    label = gap.parse_gap_xml((folder / 'gap.xml').read_text())['label']
    write(folder / 'frame.data', nacl_configurations(1)[0], format='lammps-data', specorder=['Na', 'Cl'],
          masses=True, atom_style='atomic')
    (folder / 'in.lmp').write_text('units metal\natom_style atomic\nread_data frame.data\npair_style quip\n'
                                   f'pair_coeff * * gap.xml "IP GAP label={label} shell=touch" 11 17\n'
                                   f'shell touch {root}/pwned\nrun 0\n')
    exe = pathlib.Path(sys.executable).parent / 'mlfail-lmp'
    with sandbox(root):
        done = subprocess.run([str(exe), '-in', 'in.lmp', '-log', 'none', '-screen', 'none'], cwd=folder,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "unknown keyword 'shell'" in done.stderr, done.stderr
    assert not (root / 'pwned').exists()
