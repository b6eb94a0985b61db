"""The bad-input suite has at least 80 cases (issue 13), counted over its modules' ``CASES`` lists."""

import importlib
import pathlib


def test_suite_has_at_least_80_cases():
    counts = {}
    for path in sorted(pathlib.Path(__file__).parent.glob('test_*.py')):
        if path.stem == 'test_count':
            continue
        module = importlib.import_module(f'tests.badinput.{path.stem}')
        counts[path.stem] = len(module.CASES)
    print(counts)
    assert sum(counts.values()) >= 80, counts
