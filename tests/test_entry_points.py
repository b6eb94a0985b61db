"""Entry points: every target in pyproject.toml imports and is of its group's kind, and every WorkChain,
CalcJob and calcfunction the package defines is registered (stored nodes then name the entry point,
not the module, so archived runs stay loadable when modules move).

The check reads pyproject.toml itself (tomllib), so it tests this checkout whatever distribution is
installed; :func:`test_installed_entry_points_match_pyproject` compares the installed metadata too
when the installed distribution is this checkout.
"""

import importlib
import importlib.metadata
import inspect
import json
import os
import pkgutil
import tomllib
from pathlib import Path

import pytest
from aiida.engine import BaseRestartWorkChain, CalcJob, WorkChain
from aiida.engine.processes.functions import FunctionProcess
from aiida.orm import Data
from aiida.parsers import Parser

import aiida_mlfail

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ('aiida.calculations', 'aiida.workflows', 'aiida.parsers', 'aiida.data')


def _entry_points() -> dict[str, dict[str, str]]:
    with open(ROOT / 'pyproject.toml', 'rb') as handle:
        tables = tomllib.load(handle)['project']['entry-points']
    return {group: tables.get(group, {}) for group in GROUPS}


def _load(target: str):
    module, _, attribute = target.partition(':')
    obj = importlib.import_module(module)
    for name in attribute.split('.'):
        obj = getattr(obj, name)
    return obj


def _is_calcfunction(obj) -> bool:
    process_class = getattr(obj, 'process_class', None)
    return inspect.isclass(process_class) and issubclass(process_class, FunctionProcess)


def _is_abstract_restart(cls) -> bool:
    """A restart base class without a process to run (e.g. ``JobRestartWorkChain``): never launched."""
    return issubclass(cls, BaseRestartWorkChain) and getattr(cls, '_process_class', None) is None


def _defined_processes() -> dict[str, list]:
    """``{'aiida.calculations': [...], 'aiida.workflows': [...]}``: the CalcJobs, calcfunctions and
    WorkChains defined (not imported) in the modules of the package."""
    found = {'aiida.calculations': [], 'aiida.workflows': []}
    for info in pkgutil.walk_packages(aiida_mlfail.__path__, 'aiida_mlfail.'):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, '__module__', None) != module.__name__:
                continue
            if inspect.isclass(obj) and issubclass(obj, WorkChain) and not _is_abstract_restart(obj):
                found['aiida.workflows'].append((f'{info.name}:{name}', obj))
            elif (inspect.isclass(obj) and issubclass(obj, CalcJob)) or _is_calcfunction(obj):
                found['aiida.calculations'].append((f'{info.name}:{name}', obj))
    return found


@pytest.mark.parametrize('group', GROUPS)
def test_every_entry_point_imports_and_is_of_its_kind(group):
    kinds = {
        'aiida.calculations': lambda obj: (inspect.isclass(obj) and issubclass(obj, CalcJob)) or _is_calcfunction(obj),
        'aiida.workflows': lambda obj: inspect.isclass(obj) and issubclass(obj, WorkChain),
        'aiida.parsers': lambda obj: inspect.isclass(obj) and issubclass(obj, Parser),
        'aiida.data': lambda obj: inspect.isclass(obj) and issubclass(obj, Data),
    }
    entries = _entry_points()[group]
    assert entries, f'no {group} entry point in pyproject.toml'
    wrong = {}
    for name, target in entries.items():
        if not name.startswith('mlfail.'):
            wrong[name] = 'name does not start with mlfail.'
            continue
        obj = _load(target)
        if not kinds[group](obj):
            wrong[name] = f'{target} is {obj!r}, not a {group} plugin'
    assert not wrong, wrong


@pytest.mark.parametrize('group', ['aiida.calculations', 'aiida.workflows'])
def test_every_process_of_the_package_has_an_entry_point(group):
    registered = {id(_load(target)) for target in _entry_points()[group].values()}
    defined = _defined_processes()[group]
    assert len(defined) >= 5  # the walk found the package's processes
    missing = [path for path, obj in defined if id(obj) not in registered]
    assert not missing, f'not registered under {group} in pyproject.toml: {missing}'


def test_the_restart_wrappers_and_calcfunctions_are_registered():
    """Known members, so that the walk above cannot pass by finding nothing."""
    workflows = _entry_points()['aiida.workflows']
    calculations = _entry_points()['aiida.calculations']
    for name in ('mlfail.gap_fit.base', 'mlfail.quip.base', 'mlfail.explore.base', 'mlfail.lammps.base',
                 'mlfail.cp2k_single_point', 'mlfail.aimd'):
        assert name in workflows
    assert _load(workflows['mlfail.lammps.base']).__name__ == 'LammpsRestartWorkChain'
    for name in ('mlfail.merge_training_sets', 'mlfail.prepare_sampling', 'mlfail.parse_single_point',
                 'mlfail.screen_configurations'):
        assert _is_calcfunction(_load(calculations[name]))


def test_the_entry_point_names_the_node_process_type():
    """A registered calcfunction is stored as ``aiida.calculations:<entry point>`` once installed."""
    from aiida.plugins.entry_point import get_entry_point_names

    if 'mlfail.merge_training_sets' not in get_entry_point_names('aiida.calculations'):
        assert os.environ.get('CI') != 'true', 'CI: the installed entry points predate pyproject.toml'
        pytest.skip('the installed aiida-mlfail metadata predates these entry points (re-install to refresh)')
    from aiida_mlfail.calculations.functions import merge_training_sets

    assert merge_training_sets.process_class.build_process_type() == 'aiida.calculations:mlfail.merge_training_sets'


def _installed_root() -> Path | None:
    """The folder aiida-mlfail was pip-installed from (its ``direct_url.json``; a stale ``*.egg-info`` of the
    source tree on ``sys.path`` has none, so every distribution of that name is looked at)."""
    for dist in importlib.metadata.distributions(name='aiida-mlfail'):
        text = dist.read_text('direct_url.json')
        url = json.loads(text or '{}').get('url', '')
        if url.startswith('file://'):
            return Path(url.removeprefix('file://')).resolve()
    return None


def test_installed_entry_points_match_pyproject():
    """The installed metadata equals pyproject.toml (a stale install would load old paths)."""
    from aiida.plugins.entry_point import get_entry_point_names

    if _installed_root() != ROOT:
        assert os.environ.get('CI') != 'true', f'CI: aiida-mlfail is installed from {_installed_root()}, not {ROOT}'
        pytest.skip(f'the installed aiida-mlfail is {_installed_root()}, not this checkout {ROOT}')
    for group, entries in _entry_points().items():
        installed = {name for name in get_entry_point_names(group) if name.startswith('mlfail.')}
        assert installed == set(entries), group
