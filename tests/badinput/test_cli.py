"""Bad input through the command line: ``aiida-mlfail launch|export|status|report`` and ``verdi data mlfail``.

Every case runs the command in-process (click's CliRunner) inside a :func:`tests.badinput.harness.sandbox`:
a non-zero exit, no traceback, a message naming the port / file / option, no node stored, no file created
outside ``allowed/`` and nothing changed inside it (the existing export targets keep their content, no
temporary file is left). A few cases run the installed ``aiida-mlfail`` console script as a subprocess
against the test profile. The positive tests at the end check that ``-f/--overwrite`` replaces a target.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
import types
from collections.abc import Callable

import ase
import ase.io
import pytest
from aiida import orm
from aiida.cmdline.commands.cmd_verdi import verdi
from click.testing import CliRunner

from aiida_mlfail.cli.main import cli
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from tests.badinput.harness import cli_refused, files_under, node_count, sandbox
from tests.helpers import FIXTURES, nacl_configurations

SAMPLE_YAML = """\
structure_spec: {system: nacl, n_ions: 32}
potential: {name: bmhtf_coul_long}
state_points:
  - {temperature: 1400.0, volume: 1175.0, label: nvt}
md: {equilibration_steps: 100, production_steps: 200, sampling_interval: 50, thermo_interval: 20, seed: 5}
"""

MLMD_PARAMETERS = 'parameters={ensemble: NVT, temperature: 1000.0, steps: 100, dump_interval: 10}'


@dataclasses.dataclass
class Case:
    """One bad input: ``args(ctx)`` of ``command`` (``'cli'``: aiida-mlfail, ``'verdi'``), the words the
    message must name (a tuple, or ``words(ctx)``)."""
    id: str
    command: str
    args: Callable
    words: tuple | Callable

    def __str__(self):
        return self.id


def _c(id, command, args, *words):
    return Case(id, command, args, words[0] if len(words) == 1 and callable(words[0]) else tuple(words))


def launch(*args):
    return lambda ctx: ['launch', *(a(ctx) if callable(a) else a for a in args)]


def inp(name):
    """The path of an input file of the case folder."""
    return lambda ctx: str(ctx.inp / name)


def kv(key, name):
    """``key=<path of input name>``."""
    return lambda ctx: f'{key}={ctx.inp / name}'


def pk(attr, key=None):
    return lambda ctx: f'{key}={getattr(ctx, attr).pk}' if key else str(getattr(ctx, attr).pk)


def target(name):
    return lambda ctx: str(ctx.allowed / name)


def _args(*parts):
    return lambda ctx: [p(ctx) if callable(p) else p for p in parts]


CASES = [
    # -- aiida-mlfail launch: reading the inputs ---------------------------------------------------------
    _c('launch-yaml-syntax-error-in-file', 'cli', launch('mlfail.sample', '-i', inp('bad.yaml')), 'bad.yaml', 'yaml'),
    _c('launch-yaml-not-utf8', 'cli', launch('mlfail.sample', '-i', inp('junk.bin')), 'junk.bin', 'yaml'),
    _c('launch-yaml-top-level-list', 'cli', launch('mlfail.sample', '-i', inp('list.yaml')), 'list.yaml', 'mapping'),
    _c('launch-yaml-syntax-error-in-key-value', 'cli', launch('mlfail.sample', 'md={seed: [1'), 'md', 'not valid yaml'),
    _c('launch-key-value-without-equals', 'cli', launch('mlfail.sample', 'md.seed'), 'md.seed', 'key=value'),
    _c('launch-key-value-empty-key-part', 'cli', launch('mlfail.sample', 'md..seed=1'), 'md..seed', 'key=value'),
    _c('launch-unknown-entry-point', 'cli', launch('mlfail.no_such_workflow'), 'mlfail.no_such_workflow',
       'neither a study'),
    _c('launch-unknown-port', 'cli', launch('mlfail.sample', 'bogus=1'), 'bogus', 'no such input'),
    _c('launch-unknown-nested-port', 'cli', launch('mlfail.active_learning', 'predict.bogus=1'), 'predict.bogus',
       'no such input'),
    _c('launch-namespace-given-a-scalar', 'cli', launch('mlfail.active_learning', 'gap=5'), 'gap', 'namespace'),
    _c('launch-file-name-as-port-key', 'cli',
       launch('mlfail.sample', '-i', inp('sample.yaml'),
              lambda ctx: f"potential_files={{Si.sw: {ctx.inp / 'bad.yaml'}}}"),
       'potential_files.Si.sw', 'not a port name', "'Si_sw'"),
    # -- conversion of values --------------------------------------------------------------------------
    _c('launch-dict-port-given-a-word', 'cli', launch('mlfail.sample', 'md=hello'), 'md', 'hello'),
    _c('launch-structure-given-a-list', 'cli', launch('mlfail.mlmd', 'structure=[1, 2]'), 'structure', 'StructureData'),
    _c('launch-structure-file-ase-cannot-read', 'cli', launch('mlfail.mlmd', kv('structure', 'junk.bin')),
       'structure', 'junk.bin', 'not a structure'),
    _c('launch-structure-missing-pk', 'cli', launch('mlfail.mlmd', 'structure=987654321'), 'structure', '987654321'),
    _c('launch-structure-huge-pk', 'cli', launch('mlfail.mlmd', 'structure=' + '9' * 30), 'structure', '9' * 30),
    _c('launch-structure-node-of-wrong-type', 'cli', launch('mlfail.mlmd', pk('training_set', 'structure')),
       'structure', 'TrainingSetData'),
    _c('launch-missing-code', 'cli', launch('mlfail.sample', 'lammps.job.code=no_such_code'), 'lammps.job.code',
       'no_such_code'),
    _c('launch-training-set-unreadable', 'cli', launch('mlfail.gap', kv('pool', 'junk.bin')), 'pool', 'junk.bin',
       'extxyz'),
    _c('launch-training-set-not-extxyz', 'cli', launch('mlfail.gap_fit', kv('training_set', 'text.xyz')),
       'training_set', 'text.xyz'),
    _c('launch-training-set-mapping-missing-file', 'cli', launch('mlfail.gap', 'pool={file: none.xyz}'), 'pool.file',
       'none.xyz'),
    _c('launch-training-set-mapping-bad-reference', 'cli',
       launch('mlfail.gap', lambda ctx: f"pool={{file: {ctx.inp / 'train.xyz'}, reference: 'cp2k:ultra'}}"),
       'pool.reference', 'ultra'),
    _c('launch-gap-folder-not-a-gap', 'cli', launch('mlfail.mlmd', kv('potential', 'notgap')), 'potential', 'notgap',
       'not a gap'),
    _c('launch-gap-file-not-a-gap', 'cli', launch('mlfail.mlmd', kv('potential', 'text.xyz')), 'potential', 'text.xyz'),
    # -- values AiiDA could not store: refused before anything is stored -------------------------------
    _c('launch-inf-in-dict', 'cli', launch('mlfail.mlmd', 'parameters={steps: .inf}'), 'parameters.steps', 'inf'),
    _c('launch-nan-in-list', 'cli', launch('mlfail.sample', '-i', inp('sample.yaml'),
                                           'state_points=[{temperature: .nan}]'),
       'state_points[0].temperature', 'nan'),
    _c('launch-inf-in-metadata', 'cli', launch('mlfail.sample', '-i', inp('sample.yaml'),
                                               'metadata.options.max_wallclock_seconds=-.inf'),
       'metadata.options.max_wallclock_seconds', 'inf'),
    _c('launch-yaml-date-value', 'cli', launch('mlfail.sample', '-i', inp('sample.yaml'), 'metadata.label=2020-01-01'),
       'metadata.label', 'quote'),
    _c('launch-metadata-given-a-scalar', 'cli', launch('mlfail.sample', '-i', inp('sample.yaml'), 'metadata=5'),
       'metadata'),
    # -- port validators and the validation of the whole namespace --------------------------------------
    _c('launch-port-validator-refuses', 'cli', launch('mlfail.mlmd', MLMD_PARAMETERS.replace('100,', '-100,')),
       'parameters', 'steps'),
    _c('launch-state-point-validator-refuses', 'cli',
       launch('mlfail.sample', '-i', inp('sample.yaml'), 'state_points=[{temperature: -5}]'), 'temperature'),
    _c('launch-required-port-missing', 'cli', launch('mlfail.mlmd', kv('structure', 'nacl.xyz'), MLMD_PARAMETERS),
       'potential', 'required'),
    _c('launch-namespace-validator-refuses', 'cli',
       launch('mlfail.mlmd', kv('structure', 'argon.xyz'), pk('potential', 'potential'), MLMD_PARAMETERS),
       'MLMDWorkChain', 'species', 'Ar'),
    _c('launch-namespace-validator-submit', 'cli',
       launch('mlfail.sample', '--submit', '-i', inp('sample.yaml'), kv('structure', 'nacl.xyz')),
       'invalid inputs', 'exactly one of'),
    _c('launch-gap-fit-without-parameters', 'cli', launch('mlfail.gap_fit', pk('training_set', 'training_set')),
       'parameters', 'required'),
    _c('launch-active-learning-bad-parameters', 'cli', launch('mlfail.active_learning', 'parameters=[1, 2]'),
       'parameters', 'Dict'),
    # -- launch ENTRY_POINT --protocol: the builder's arguments -----------------------------------------
    _c('launch-protocol-missing-structure', 'cli', launch('mlfail.sample', '--protocol', 'fast',
                                                          'reference={name: bmhtf_coul_long}'),
       'get_builder_from_protocol needs', 'structure'),
    _c('launch-protocol-unknown-reference', 'cli', launch('mlfail.sample', '--protocol', 'fast',
                                                          kv('structure', 'nacl.xyz'), 'reference={name: nosuch}'),
       'invalid inputs', 'nosuch'),
    _c('launch-protocol-codes-not-a-mapping', 'cli', launch('mlfail.sample', '--protocol', 'fast',
                                                            kv('structure', 'nacl.xyz'), 'codes=lammps'),
       'codes', 'mapping'),
    _c('launch-protocol-structure-preset-bad', 'cli', launch('mlfail.sample', '--protocol', 'fast',
                                                             'structure={system: nacl, n_ions: -4}',
                                                             'reference={name: bmhtf_coul_long}'),
       'structure', 'n_ions'),
    # -- aiida-mlfail export ---------------------------------------------------------------------------
    _c('export-training-set-existing-target', 'cli',
       _args('export', 'training-set', pk('training_set'), '-o', target('exists.xyz')), 'exists.xyz', '--overwrite'),
    _c('export-training-set-target-under-a-file', 'cli',
       _args('export', 'training-set', pk('training_set'), '-o', target('afile/x.xyz')), 'afile', 'not a folder'),
    _c('export-training-set-target-is-a-folder', 'cli',
       _args('export', 'training-set', pk('training_set'), '-o', target('existsdir'), '--overwrite'), 'existsdir'),
    _c('export-training-set-of-a-plain-node', 'cli',
       _args('export', 'training-set', pk('plain'), '-o', target('new.xyz')), 'Int', 'TrainingSetData'),
    _c('export-potential-existing-folder', 'cli',
       _args('export', 'potential', pk('potential'), '-o', target('existsdir')), 'existsdir', '--overwrite'),
    _c('export-potential-target-under-a-file', 'cli',
       _args('export', 'potential', pk('potential'), '-o', target('afile/gap')), 'afile', 'not a folder'),
    _c('export-potential-target-is-a-file', 'cli',
       _args('export', 'potential', pk('potential'), '-o', target('exists.xyz'), '-f'), 'exists.xyz'),
    _c('export-potential-crafted-file-name', 'cli',
       _args('export', 'potential', pk('crafted_potential'), '-o', target('gap_crafted')),
       'gap_crafted', 'nothing written', "'../escaped'"),
    _c('export-potential-of-a-training-set', 'cli',
       _args('export', 'potential', pk('training_set'), '-o', target('gap')), 'GapPotentialData'),
    _c('export-archive-existing-target', 'cli',
       _args('export', 'archive', pk('process'), '-o', target('exists.xyz')), 'exists.xyz', '--overwrite'),
    _c('export-archive-target-under-a-file', 'cli',
       _args('export', 'archive', pk('process'), '-o', target('afile/run.aiida')), 'afile', 'not a folder'),
    _c('export-archive-of-a-plain-node', 'cli', _args('export', 'archive', pk('plain'), '-o', target('run.aiida')),
       lambda ctx: [str(ctx.plain.pk)]),
    # -- aiida-mlfail status / report ----------------------------------------------------------------------
    _c('status-of-a-plain-node', 'cli', _args('status', pk('plain')), lambda ctx: [str(ctx.plain.pk)]),
    _c('status-of-a-missing-pk', 'cli', _args('status', '987654321'), '987654321'),
    _c('report-of-a-plain-node', 'cli', _args('report', pk('plain'), '-o', target('report')),
       lambda ctx: [str(ctx.plain.pk)]),
    _c('report-existing-folder', 'cli', _args('report', pk('process'), '-o', target('existsdir')),
       'existsdir', '--overwrite'),
    _c('report-target-is-a-file', 'cli', _args('report', pk('process'), '-o', target('exists.xyz'), '-f'),
       'exists.xyz', 'is a file'),
    # -- verdi data mlfail ---------------------------------------------------------------------------------
    _c('trainingset-import-binary-junk', 'verdi', _args('data', 'mlfail', 'trainingset', 'import', inp('junk.bin')),
       'junk.bin', 'extxyz'),
    _c('trainingset-import-empty-file', 'verdi', _args('data', 'mlfail', 'trainingset', 'import', inp('empty.xyz')),
       'empty.xyz', 'at least one configuration'),
    _c('trainingset-import-not-extxyz', 'verdi', _args('data', 'mlfail', 'trainingset', 'import', inp('text.xyz')),
       'text.xyz', 'extxyz'),
    _c('trainingset-import-no-labels', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'import', inp('unlabelled.xyz')), 'unlabelled.xyz', 'energy', 'forces'),
    _c('trainingset-import-no-forces', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'import', inp('energy_only.xyz')), 'energy_only.xyz', 'forces'),
    _c('trainingset-import-nan-energy', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'import', inp('nan.xyz')), 'nan.xyz', 'energy', 'not finite'),
    _c('trainingset-export-existing-target', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'export', pk('training_set'), '-o', target('exists.xyz')),
       'exists.xyz', '--overwrite'),
    _c('trainingset-export-target-under-a-file', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'export', pk('training_set'), '-o', target('afile/x.xyz')),
       'afile', 'not a folder'),
    _c('trainingset-export-unknown-format', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'export', pk('training_set'), '-o', target('x.out'), '-F', 'nosuch'),
       'nosuch', '--format'),
    _c('trainingset-export-write-fails-leaves-nothing', 'verdi',
       _args('data', 'mlfail', 'trainingset', 'export', pk('training_set'), '-o', target('POSCAR'), '-F', 'vasp'),
       'POSCAR', 'nothing written'),
    _c('potential-export-existing-folder', 'verdi',
       _args('data', 'mlfail', 'potential', 'export', pk('potential'), '-o', target('existsdir')),
       'existsdir', '--overwrite'),
    _c('potential-export-crafted-file-name', 'verdi',
       _args('data', 'mlfail', 'potential', 'export', pk('crafted_potential'), '-o', target('gap_crafted')),
       'gap_crafted', 'nothing written', "'../escaped'"),
    _c('potential-export-target-under-a-file', 'verdi',
       _args('data', 'mlfail', 'potential', 'export', pk('potential'), '-o', target('afile/gap')),
       'afile', 'not a folder'),
]


def _write_inputs(folder: pathlib.Path) -> None:
    """The input files of the cases (written before the sandbox takes its snapshot)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = nacl_configurations(3)
    (folder / 'bad.yaml').write_text('structure_spec: {system: nacl\nmd: [1, 2\n')
    (folder / 'list.yaml').write_text('- structure\n- code\n')
    (folder / 'sample.yaml').write_text(SAMPLE_YAML)
    (folder / 'junk.bin').write_bytes(bytes(range(256)) * 4)
    (folder / 'text.xyz').write_text('hello world\nthis is not a structure\n')
    (folder / 'empty.xyz').write_text('')
    ase.io.write(folder / 'nacl.xyz', frames[0])
    ase.io.write(folder / 'argon.xyz', ase.Atoms('Ar2', positions=[[0, 0, 0], [2, 2, 2]], cell=[6, 6, 6], pbc=True))
    TrainingSetData.from_atoms(frames).export(folder / 'train.xyz')
    bare = [ase.Atoms(a.get_chemical_symbols(), positions=a.positions, cell=a.cell, pbc=True) for a in frames]
    ase.io.write(folder / 'unlabelled.xyz', bare, format='extxyz')
    energy_only = [a.copy() for a in bare]
    for atoms in energy_only:
        atoms.info['energy'] = -100.0
    ase.io.write(folder / 'energy_only.xyz', energy_only, format='extxyz')
    text = (folder / 'train.xyz').read_text()
    (folder / 'nan.xyz').write_text(text.replace('energy=', 'energy=nan ignored=', 1))
    (folder / 'notgap').mkdir(exist_ok=True)
    (folder / 'notgap' / 'gap.xml').write_text('<potential><not_a_gap/></potential>\n')


_NODES: dict = {}


def _nodes():
    """Stored nodes the cases refer to (made once per profile, before any case counts nodes)."""
    from aiida.engine import calcfunction

    if not _NODES:
        @calcfunction
        def add_one(x):
            return orm.Int(x.value + 1)

        _NODES['training_set'] = TrainingSetData.from_atoms(nacl_configurations(3)).store().pk
        _NODES['potential'] = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok').store().pk
        crafted = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok')
        crafted.base.attributes.set('files', [*crafted.base.attributes.get('files'), '../escaped'])
        _NODES['crafted_potential'] = crafted.store().pk  # as an archive could carry it
        _NODES['plain'] = orm.Int(5).store().pk
        _NODES['process'] = add_one(orm.Int(1)).creator.pk
    return {key: orm.load_node(pk) for key, pk in _NODES.items()}  # (fresh: the commands reset the session)


def _allowed_state(allowed: pathlib.Path) -> dict:
    return {str(p.relative_to(allowed)): (p.read_bytes() if p.is_file() else None) for p in allowed.rglob('*')}


@pytest.fixture
def ctx(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code):
    """Input files, stored nodes and the existing export targets of a case (codes exist, so the node
    count of the case starts after them)."""
    inp = tmp_path / 'in'
    _write_inputs(inp)
    allowed = tmp_path / 'allowed'
    (allowed / 'existsdir').mkdir(parents=True)
    (allowed / 'existsdir' / 'keep.txt').write_text('old folder\n')
    (allowed / 'exists.xyz').write_text('old file\n')
    (allowed / 'afile').write_text('a file, not a folder\n')
    return types.SimpleNamespace(root=tmp_path, inp=inp, allowed=allowed, **_nodes())


@pytest.mark.parametrize('case', CASES, ids=str)
def test_cli_refuses(case, ctx):
    command = {'cli': cli, 'verdi': verdi}[case.command]
    args = case.args(ctx)
    words = case.words(ctx) if callable(case.words) else case.words
    before = _allowed_state(ctx.allowed)
    with sandbox(ctx.root):
        cli_refused(command, args, words)
    assert _allowed_state(ctx.allowed) == before, 'a refused command changed the export folder'


# -- the installed console script, as a user runs it --------------------------------------------------

SUBPROCESS_CASES = [
    ('launch-validator-error', lambda ctx: ['launch', 'mlfail.sample', '-i', str(ctx.inp / 'sample.yaml'),
                                           'state_points=[{temperature: -5}]'], ('temperature',)),
    ('launch-inf-in-dict', lambda ctx: ['launch', 'mlfail.mlmd', 'parameters={steps: .inf}'], ('parameters.steps',)),
    ('export-existing-target', lambda ctx: ['export', 'training-set', str(ctx.training_set.pk), '-o',
                                            str(ctx.allowed / 'exists.xyz')], ('exists.xyz', '--overwrite')),
]


@pytest.mark.parametrize('name, args, words', SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_console_script_refuses(name, args, words, ctx, aiida_profile, aiida_config):
    """``aiida-mlfail -p <test profile> ...`` in a subprocess: exit code != 0, no traceback, the words named."""
    script = pathlib.Path(sys.executable).parent / 'aiida-mlfail'
    env = dict(os.environ, AIIDA_PATH=str(aiida_config.dirpath))
    before = _allowed_state(ctx.allowed)
    with sandbox(ctx.root):
        result = subprocess.run([str(script), '-p', aiida_profile.name, *args(ctx)], capture_output=True, text=True,
                                env=env, timeout=120, cwd=ctx.root / 'work')
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'Traceback' not in result.stderr, result.stderr
    low = ' '.join(output.split()).lower()
    assert all(w.lower() in low for w in words), output
    assert _allowed_state(ctx.allowed) == before


# -- positive: --overwrite replaces the target, new targets are written ------------------------------------

def test_overwrite_replaces_the_targets(ctx):

    def ok(command, args):
        result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    n_nodes = node_count()
    ts, gap, process = ctx.training_set, ctx.potential, ctx.process
    exists = ctx.allowed / 'exists.xyz'
    ok(cli, ['export', 'training-set', ts.pk, '-o', exists, '--overwrite'])
    assert len(ase.io.read(exists, ':')) == 3
    exists.write_text('old file\n')
    ok(verdi, ['data', 'mlfail', 'trainingset', 'export', ts.pk, '-o', exists, '-f'])
    assert exists.read_text() == ts.get_text()
    folder = ctx.allowed / 'existsdir'
    ok(cli, ['export', 'potential', gap.pk, '-o', folder, '--overwrite'])
    assert sorted(p.name for p in folder.iterdir()) == sorted(gap.base.attributes.get('files'))  # replaced as a whole
    (folder / 'keep.txt').write_text('old folder\n')
    ok(verdi, ['data', 'mlfail', 'potential', 'export', gap.pk, '-o', folder, '-f'])
    assert not (folder / 'keep.txt').exists()
    assert GapPotentialData.from_folder(folder).label == gap.label
    archive = ctx.allowed / 'run.aiida'
    ok(cli, ['export', 'archive', process.pk, '-o', archive])
    first = archive.stat().st_size
    ok(cli, ['export', 'archive', process.pk, '-o', archive, '-f'])
    assert archive.stat().st_size == first > 0
    # new targets in folders that do not exist yet
    ok(cli, ['export', 'training-set', ts.pk, '-o', ctx.allowed / 'new' / 'deeper' / 'set.xyz'])
    ok(cli, ['export', 'potential', gap.pk, '-o', ctx.allowed / 'new' / 'gap'])
    assert (ctx.allowed / 'new' / 'gap' / gap.filename).is_file()
    # no temporary file or folder left next to the targets
    assert not [p for p in ctx.allowed.rglob('.*') if '.tmp-' in p.name or '.old-' in p.name]
    assert node_count() == n_nodes
    assert not files_under(ctx.root / 'work')


# -- validators that raise instead of returning a message ---------------------------------------------------

def _raises(value, ctx=None):
    raise ValueError(f'validator exploded on {value!r}')


def _raises_type_error(value, ctx=None):
    raise TypeError('namespace validator exploded')


def _raising_work_chain():
    from aiida.engine import WorkChain

    class RaisingWorkChain(WorkChain):
        """Ports whose validators raise: ``x`` (port validator), ``sub`` (namespace validator)."""

        @classmethod
        def define(cls, spec):
            super().define(spec)
            spec.input('x', valid_type=orm.Dict, required=False, validator=_raises)
            spec.input_namespace('sub', required=False, validator=_raises_type_error)
            spec.input('sub.y', valid_type=orm.Int, required=False)
            spec.outline(cls.step)

        def step(self):
            pass

    return RaisingWorkChain


@pytest.mark.parametrize('args, words', [
    (['x={a: 1}'], ('invalid inputs', 'x:', 'validator exploded')),
    (['sub.y=3'], ('invalid inputs', 'sub:', 'namespace validator exploded')),
], ids=['port-validator-raises', 'namespace-validator-raises'])
def test_launch_names_the_port_of_a_raising_validator(args, words, ctx, monkeypatch):
    """A validator that raises ``ValueError``/``TypeError`` is reported as invalid input naming the port."""
    from aiida_mlfail.cli import launch as launch_module

    process_class = _raising_work_chain()
    monkeypatch.setattr(launch_module, '_process_class', lambda name: process_class)
    with sandbox(ctx.root):
        output = cli_refused(cli, ['launch', 'raising', *args], words)
    assert 'Traceback' not in output


def test_converted_inputs_are_not_stored(ctx):
    """Files become unstored nodes (only nodes given by pk/uuid and codes are loaded, stored already)."""
    from aiida_mlfail.cli import launch as launch_module
    from aiida_mlfail.workflows.gap import GapWorkChain
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain

    n_nodes = node_count()
    inputs = launch_module.convert_inputs({'structure': str(ctx.inp / 'nacl.xyz'),
                                           'potential': str(FIXTURES / 'gap_fit_ok'),
                                           'parameters': {'steps': 10}, 'md': {'job': {'code': 'lammps'}}},
                                          MLMDWorkChain.spec().inputs, 'localhost')
    assert [k for k in ('structure', 'potential', 'parameters') if inputs[k].is_stored] == []
    inputs = launch_module.convert_inputs({'pool': str(ctx.inp / 'train.xyz'), 'validation_set': ctx.training_set.pk},
                                          GapWorkChain.spec().inputs, 'localhost')
    assert not inputs['pool'].is_stored and inputs['validation_set'].uuid == ctx.training_set.uuid
    assert node_count() == n_nodes


def test_report_keeps_a_crafted_output_file_name_inside_the_folder(ctx):
    """A process whose ``SinglefileData`` output has a file name with ``../`` (an imported archive is not
    validated, so its attributes are arbitrary) writes nothing outside the ``-o`` folder: the repository
    has no object of that name, so the report is refused whole and nothing is written at all."""
    import io

    from aiida.common.links import LinkType
    from sqlalchemy.orm.attributes import flag_modified

    figure = orm.SinglefileData(io.BytesIO(b'not really a png'), filename='plot.png')
    process = orm.CalcFunctionNode()
    process.set_process_state('finished')
    process.set_exit_status(0)
    process.store()
    figure.base.links.add_incoming(process, link_type=LinkType.CREATE, link_label='figure')
    figure.store()
    model = figure.backend_entity.bare_model  # below the ORM, as an archive import writes it
    model.attributes = {**model.attributes, 'filename': '../../escaped.png'}
    flag_modified(model, 'attributes')
    figure.backend_entity.backend.get_session().commit()
    assert orm.load_node(figure.pk).filename == '../../escaped.png'
    out = ctx.allowed / 'report_crafted'
    with sandbox(ctx.root):
        cli_refused(cli, ['report', process.pk, '-o', out], ['report_crafted', 'nothing written', 'escaped.png'])
    assert not out.exists() and not list(ctx.root.rglob('*escaped*'))


def test_report_file_names_are_one_path_component():
    from aiida_mlfail.cli.runs import _file_name

    assert _file_name('figure_../../escaped.png') == 'figure_.._.._escaped.png'
    assert _file_name('../x') == '_x'
    assert _file_name('.hidden') == 'hidden'
    assert _file_name('a b/c\nd') == 'a_b_c_d'
