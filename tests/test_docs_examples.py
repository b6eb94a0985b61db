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
    assert len(PAGES) == 8
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


def _attribute_path(node) -> list[str] | None:
    """``builder.a.b.c`` -> ``['a', 'b', 'c']`` (``None`` for anything not rooted at the name ``builder``)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return parts[::-1] if isinstance(node, ast.Name) and node.id == 'builder' else None


@pytest.mark.parametrize('page', PAGES, ids=[p.stem for p in PAGES])
def test_builder_assignments_name_real_ports(page):
    """``builder.lammps.job.metadata.options.queue_name = ...`` in an example is a port of the WorkChain (e.g. the
    ports of an exposed restart wrapper), so a renamed port cannot stay in the docs."""
    for block in _blocks(page.read_text()):
        tree = ast.parse(block)
        classes = _imported_classes(tree)
        owners = {classes[node.func.value.id] for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == 'get_builder_from_protocol' and isinstance(node.func.value, ast.Name)}
        paths = [path for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 for target in node.targets if (path := _attribute_path(target))]
        if not paths:
            continue
        (cls,) = owners
        for path in paths:
            port = cls.spec().inputs
            for part in path:
                assert part in port, f'{page.name}: builder.{".".join(path)}: no port {part!r} of {cls.__name__}'
                port = port[part]
