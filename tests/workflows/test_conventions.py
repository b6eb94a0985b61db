"""AiiDA plugin conventions every WorkChain of the package keeps (aiida-quantumespresso's):

* the outline starts with ``setup`` and ends with ``results``;
* every step that submits a process is named ``run_<what>`` and is followed by ``inspect_<what>``, in the
  same block or, when it ends a block (a ``while`` loop submitting batches), right after that block;
* an outer WorkChain submits its jobs through restart wrappers only (never a bare ``CalcJob``), and exposes
  each wrapper by role with the wrapper's own ``max_iterations``, ``handler_overrides`` and ``clean_workdir``.

Read from the classes registered under ``aiida.workflows`` (``mlfail.*``), so a new WorkChain is checked
without editing this file.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re

import pytest
from aiida.engine import BaseRestartWorkChain

WORKCHAINS = {ep.name: ep for ep in importlib.metadata.entry_points(group='aiida.workflows')
              if ep.name.startswith('mlfail.')}


def _name(item) -> str | None:
    """The step name of an outline item (without its docstring), ``None`` for a construct (if/while)."""
    return item.split('(', 1)[0] if isinstance(item, str) else None


def _blocks(description, after=None) -> list[tuple[list[str], str | None]]:
    """The step sequences of an outline description (``spec().get_outline().get_description()``), one per
    block (the top level first, then each ``if``/``else``/``while`` body), each with the step that follows
    its construct in the enclosing block (``None`` at the end), step names without their docstrings."""
    steps, nested = [], []
    for index, item in enumerate(description):
        if isinstance(item, str):
            steps.append(_name(item))
            continue
        following = next((_name(i) for i in description[index + 1:] if isinstance(i, str)), after)
        for body in item.values():
            nested.extend(_blocks(body, following))
    return [(steps, after), *nested]


def _submitting_steps(cls) -> set[str]:
    """Names of the methods of ``cls`` (and of its package bases) whose source calls ``self.submit``."""
    names = set()
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if member.__module__.startswith('aiida_mlfail') and 'self.submit(' in inspect.getsource(member):
            names.add(name)
    return names


@pytest.mark.parametrize('entry_point', sorted(WORKCHAINS))
def test_outline_steps_are_named_by_convention(entry_point):
    cls = WORKCHAINS[entry_point].load()
    blocks = _blocks(cls.spec().get_outline().get_description())
    top = blocks[0][0]
    assert top[0] == 'setup', f'{cls.__name__}: the outline starts with {top[0]!r}, not setup'
    assert top[-1] == 'results', f'{cls.__name__}: the outline ends with {top[-1]!r}, not results'
    steps = {step for block, _ in blocks for step in block}
    for name in _submitting_steps(cls) & steps:
        assert re.fullmatch(r'run_\w+', name), f'{cls.__name__}.{name} submits a process but is not named run_*'
    for block, after in blocks:
        for index, step in enumerate(block):
            if step.startswith('run_'):
                expected = 'inspect_' + step[len('run_'):]
                # the last step of a block (e.g. a while loop submitting batches) is inspected after the block
                following = block[index + 1] if index + 1 < len(block) else after
                assert following == expected, (f'{cls.__name__}: {step} is followed by {following!r}, '
                                               f'not {expected}')


#: Outer WorkChains that still submit a bare CalcJob, with the reason. Checked to be still true, so an entry
#: has to go when its WorkChain is fixed.
KNOWN_BARE: dict[str, str] = {}

#: The WorkChains that are not restart wrappers themselves.
OUTER = sorted(name for name, ep in WORKCHAINS.items() if not issubclass(ep.load(), BaseRestartWorkChain))


def test_outer_workchains_found():
    assert {'mlfail.active_learning', 'mlfail.gap', 'mlfail.label', 'mlfail.mlmd', 'mlfail.sample',
            'mlfail.config_space'} <= set(OUTER)


@pytest.mark.parametrize('entry_point', OUTER)
def test_outer_workchains_submit_no_bare_calcjob(entry_point):
    """The jobs of an outer WorkChain go through restart wrappers, each exposed with its restart settings."""
    cls = WORKCHAINS[entry_point].load()
    source = inspect.getsource(cls)
    submitted = set(re.findall(r'self\.submit\(\s*(\w+)', source))
    bare = sorted(name for name in submitted if name.endswith('Calculation'))
    if entry_point in KNOWN_BARE:
        assert bare, f'{cls.__name__} submits no bare CalcJob any more: remove it from KNOWN_BARE'
    else:
        assert not bare, f'{cls.__name__} submits bare CalcJobs {bare}'
    inputs = cls.spec().inputs
    for name in submitted:
        if not name.endswith('RestartWorkChain'):
            continue
        roles = [role for role, port in inputs.items()
                 if hasattr(port, 'keys') and {'job', 'max_iterations', 'handler_overrides', 'clean_workdir'}
                 <= set(port.keys())]
        assert roles, f'{cls.__name__} submits {name} but exposes no restart wrapper by role'
