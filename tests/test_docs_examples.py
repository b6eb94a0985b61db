"""The ``get_builder_from_protocol`` examples of the user guide (docs/source/user_guide/*.md) call the real
builders: every call binds to the builder's signature, names a protocol that exists, and the page states
the signature the code has. (The examples are not executed: they name pks of the reader's nodes.)"""

import ast
import importlib
import inspect
import pathlib
import re

import pytest

GUIDE = pathlib.Path(__file__).resolve().parents[1] / 'docs' / 'source' / 'user_guide'
PAGES = sorted(p for p in GUIDE.glob('*.md') if p.stem != 'index')


def _blocks(text: str) -> list[str]:
    return re.findall(r'```python\n(.*?)```', text, flags=re.S)


def _imported_classes(tree: ast.Module) -> dict:
    classes = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('aiida_mlfail'):
            module = importlib.import_module(node.module)
            for alias in node.names:
                classes[alias.asname or alias.name] = getattr(module, alias.name)
    return classes


def _builder_calls(page: pathlib.Path):
    calls = []
    for block in _blocks(page.read_text()):
        tree = ast.parse(block)
        classes = _imported_classes(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == 'get_builder_from_protocol' and isinstance(node.func.value, ast.Name)):
                calls.append((classes[node.func.value.id], node))
    return calls


def test_every_workchain_page_has_an_example():
    assert len(PAGES) == 9
    for page in PAGES:
        assert _builder_calls(page), f'{page.name} has no get_builder_from_protocol example'


@pytest.mark.parametrize('page', PAGES, ids=[p.stem for p in PAGES])
def test_examples_bind_to_the_builder_signature(page):
    for cls, call in _builder_calls(page):
        signature = inspect.signature(cls.get_builder_from_protocol)
        arguments = [object() for _ in call.args]
        keywords = {k.arg: (k.value.value if isinstance(k.value, ast.Constant) else object()) for k in call.keywords}
        signature.bind(*arguments, **keywords)  # raises TypeError for a call the builder does not take
        if 'protocol' in keywords:
            assert keywords['protocol'] in cls.get_available_protocols(), (page.name, keywords['protocol'])
        assert f'{cls.__name__}.get_builder_from_protocol{signature}' in page.read_text(), page.name


def _assigned_paths(page: pathlib.Path):
    """``(class, ['fit', 'job', 'metadata', 'options', 'max_wallclock_seconds'])`` for every ``builder.a.b = ...``
    of the page's examples, the class being the one whose ``get_builder_from_protocol`` made ``builder``."""
    found = []
    for block in _blocks(page.read_text()):
        tree = ast.parse(block)
        classes = _imported_classes(tree)
        owner = None
        for node in tree.body:
            if not isinstance(node, ast.Assign):
                continue
            value = node.value
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr == 'get_builder_from_protocol' and isinstance(value.func.value, ast.Name)):
                owner = classes[value.func.value.id]
                continue
            for target in node.targets:
                path = []
                while isinstance(target, ast.Attribute):
                    path.insert(0, target.attr)
                    target = target.value
                if isinstance(target, ast.Name) and target.id == 'builder' and path:
                    found.append((owner, path))
    return found


@pytest.mark.parametrize('page', PAGES, ids=[p.stem for p in PAGES])
def test_builder_paths_of_the_examples_are_ports(page):
    """Every ``builder.<path> = ...`` of an example names an input port of the WorkChain (e.g. the restart wrapper
    paths ``fit.max_iterations``, ``explore.job.metadata.options.max_wallclock_seconds``)."""
    from aiida.engine.processes.ports import PortNamespace

    for cls, path in _assigned_paths(page):
        assert cls is not None, f'{page.name}: builder.{".".join(path)} before any get_builder_from_protocol'
        port = cls.spec().inputs
        for i, name in enumerate(path):
            assert isinstance(port, PortNamespace) and name in port, \
                f'{page.name}: {cls.__name__} has no input {".".join(path[:i + 1])}'
            port = port[name]
        assert not isinstance(port, PortNamespace), f'{page.name}: {".".join(path)} is a namespace, not a port'
