"""Export targets of the command line: refuse an existing target without ``--overwrite``, write atomically.

A file is written to a hidden temporary file next to the target and moved over it with ``os.replace``;
a folder is written into a hidden temporary folder next to the target and renamed to it (an old folder
is moved aside first and removed only once the new one is in place). A failed export leaves neither a
partial target nor a temporary file, and removes the parent folders it created.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import shutil

import click

OVERWRITE_HELP = 'Replace an existing target (without it an existing target is refused).'


def overwrite_option(help_text: str = OVERWRITE_HELP):
    """The ``-f/--overwrite`` flag of every export command."""
    return click.option('-f', '--overwrite', is_flag=True, help=help_text)


def check_target(path: pathlib.Path, overwrite: bool, kind: str, param_hint: str = '--output') -> pathlib.Path:
    """Refuse a target that cannot be written: it exists (without ``overwrite``), it is of the other
    kind (a folder where a file goes, or the reverse), or a parent on its path is a file.

    :param kind: ``'file'`` or ``'folder'``.
    :raises click.BadParameter: naming the path (and ``--overwrite`` for an existing target).
    :returns: ``path`` (absolute).
    """
    path = pathlib.Path(path).expanduser().absolute()
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise click.BadParameter(f'{path} exists: give -f/--overwrite to replace it', param_hint=param_hint)
        if kind == 'file' and path.is_dir():
            raise click.BadParameter(f'{path} is a folder, not a file', param_hint=param_hint)
        if kind == 'folder' and not path.is_dir():
            raise click.BadParameter(f'{path} is a file, not a folder', param_hint=param_hint)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise click.BadParameter(f'{parent} is a file, not a folder: cannot write {path}',
                                         param_hint=param_hint)
            break
    return path


def _make_parents(path: pathlib.Path) -> list[pathlib.Path]:
    """Create the missing parent folders of ``path``; :returns: those created, deepest first."""
    missing = [p for p in path.parents if not p.exists()]
    for parent in reversed(missing):
        parent.mkdir()
    return missing


def _remove_created(created: list[pathlib.Path]) -> None:
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _temporary_name(path: pathlib.Path, tag: str) -> pathlib.Path:
    return path.with_name(f'.{path.name}.{tag}-{secrets.token_hex(4)}')


@contextlib.contextmanager
def atomic_file(path: pathlib.Path, overwrite: bool):
    """``with atomic_file(target, overwrite) as tmp: write(tmp)``: the target appears complete or not at all.

    :raises click.BadParameter: see :func:`check_target`.
    :raises click.ClickException: (exit code 1) naming the target when writing fails; nothing is left.
    """
    path = check_target(path, overwrite, 'file')
    created = _make_parents(path)
    tmp = _temporary_name(path, 'tmp')
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _remove_created(created)
        if isinstance(exc, Exception) and not isinstance(exc, click.ClickException):
            raise click.ClickException(f'writing {path} failed, nothing written: {type(exc).__name__}: {exc}') from exc
        raise


@contextlib.contextmanager
def atomic_folder(path: pathlib.Path, overwrite: bool):
    """``with atomic_folder(target, overwrite) as tmp: write files into tmp``: renamed to the target at the end
    (an existing target is replaced as a whole with ``overwrite``).

    :raises click.BadParameter: see :func:`check_target`.
    :raises click.ClickException: (exit code 1) naming the target when writing fails; nothing is left.
    """
    path = check_target(path, overwrite, 'folder')
    created = _make_parents(path)
    tmp = _temporary_name(path, 'tmp')
    tmp.mkdir()
    old = None
    try:
        yield tmp
        if path.exists():
            old = _temporary_name(path, 'old')
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:
                os.replace(old, path)
                old = None
            raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        if isinstance(exc, Exception) and not isinstance(exc, click.ClickException):
            raise click.ClickException(f'writing {path} failed, nothing written: {type(exc).__name__}: {exc}') from exc
        raise
    if old is not None:
        if old.is_symlink():  # (a link to a folder was replaced: remove the link, not what it points to)
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)
