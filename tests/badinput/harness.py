"""Harness of the table-driven bad-input suite (``tests/badinput/test_*.py``).

Every case must show, for one bad input through one entry point:

* a refusal: a non-zero exit (CLI) or a ``ValueError``/``click`` error (Python API), never a traceback
  on the terminal;
* a message naming the offending key, value or file (``words``, all matched case-insensitively);
* nothing stored: the number of nodes of the profile is the same before and after (no ProcessNode,
  no orphan Data);
* nothing written outside the expected folder: :class:`Sandbox` lists a folder tree before and after.

Each test module holds a list of cases and one parametrised test; ``tests/badinput/test_count.py``
counts the cases of all modules.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import traceback

from click.testing import CliRunner


def node_count() -> int:
    """Number of nodes in the loaded profile."""
    from aiida import orm

    return orm.QueryBuilder().append(orm.Node).count()


def files_under(root: pathlib.Path) -> set[str]:
    """Relative paths of every file and folder under ``root``."""
    root = pathlib.Path(root)
    return {str(p.relative_to(root)) for p in root.rglob('*')}


class Sandbox:
    """A folder tree watched for new files: ``root/work`` is the working directory of the case, ``root/allowed``
    the folder the case may write into (an export target); anything new elsewhere under ``root`` fails."""

    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root)
        self.work = self.root / 'work'
        self.allowed = self.root / 'allowed'
        self.work.mkdir(parents=True, exist_ok=True)
        self.allowed.mkdir(parents=True, exist_ok=True)
        self._before: set[str] = set()

    def __enter__(self):
        self._before = files_under(self.root)
        self._nodes = node_count()
        self._cwd = os.getcwd()
        os.chdir(self.work)
        return self

    def __exit__(self, *exc):
        os.chdir(self._cwd)
        return False

    def new_files(self) -> set[str]:
        """Files created under the root since ``__enter__``, outside ``allowed/``."""
        return {p for p in files_under(self.root) - self._before if not p.startswith('allowed')}

    def check_clean(self):
        """Assert no node was stored and no file created outside ``allowed/``."""
        stored = node_count() - self._nodes
        assert stored == 0, f'{stored} node(s) stored by a refused input'
        assert not self.new_files(), f'files created outside the allowed folder: {sorted(self.new_files())}'


def assert_words(message: str, words) -> None:
    """Every one of ``words`` is in ``message`` (case-insensitive)."""
    low = ' '.join(message.split()).lower()
    missing = [w for w in words if w.lower() not in low]
    assert not missing, f'message does not name {missing}:\n{message}'


def cli_refused(command, args, words, *, input=None) -> str:
    """Invoke a click command in-process; assert it exits non-zero with a message naming ``words`` and
    without a traceback. :returns: the output."""
    result = CliRunner().invoke(command, [str(a) for a in args], input=input, catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = ''.join(traceback.format_exception(result.exception))
        raise AssertionError(f'exception escaped the command (a traceback for the user):\n{trace}\n{output}')
    assert result.exit_code != 0, f'exit code 0 for a bad input:\n{output}'
    assert 'Traceback' not in output, output
    assert_words(output, words)
    return output


def api_refused(function, words, *, errors=(ValueError,)) -> str:
    """Call ``function()``; assert it raises one of ``errors`` with a message naming ``words``.
    :returns: the message."""
    try:
        function()
    except errors as exc:
        message = str(exc)
        assert_words(message, words)
        return message
    raise AssertionError(f'{function} accepted a bad input')


def validation_refused(process, inputs, words, root, what: str) -> str:
    """Validate ``inputs`` against ``process``'s input spec (the submit-time check) inside ``sandbox(root)``;
    assert a refusal whose message names ``words``. ``what`` names the case in the failure message.
    :returns: the message."""
    with sandbox(root):
        error = process.spec().inputs.validate(inputs)
    assert error is not None, f'{what} accepted'
    assert_words(str(error), words)
    return str(error)


@contextlib.contextmanager
def sandbox(root):
    """``with sandbox(tmp_path) as box: ...; box.check_clean()`` on success."""
    box = Sandbox(root)
    with box:
        yield box
    box.check_clean()
