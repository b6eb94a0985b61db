"""What every parser of the package repeats: exit code 350 for any exception, reading retrieved files.

The parsing logic itself stays AiiDA-free in :mod:`aiida_mlfail.science.outputs` (and the other
``science`` modules it re-exports); a parser subclass only reads the retrieved files, calls those
functions, attaches outputs and returns an ``ExitCode`` (never raises one).
"""

from __future__ import annotations

from aiida.parsers import Parser


class MlfailParser(Parser):
    """Base parser: :meth:`parse` runs ``_parse`` and turns any exception into exit code 350.

    The CalcJob must define ``350 ERROR_PARSER_EXCEPTION`` with a ``{exception}`` placeholder
    (:func:`aiida_mlfail.calculations.common.define_job_defaults` does); the exception's ``repr`` is
    logged and goes into the exit message, so a crash of the parser is a failed process with the
    reason, not an excepted one.
    """

    def parse(self, **kwargs):
        try:
            return self._parse()
        except Exception as exc:  # noqa: BLE001 (any failure becomes exit code 350, never an uncaught raise)
            self.logger.error(f'parser exception: {exc!r}')
            return self.exit_codes.ERROR_PARSER_EXCEPTION.format(exception=repr(exc))

    def _parse(self):
        """Parse the retrieved files; return ``None`` on success or an ``ExitCode``."""
        raise NotImplementedError

    @property
    def retrieved_names(self) -> list[str]:
        """Names of the top-level objects of the ``retrieved`` folder."""
        return self.retrieved.base.repository.list_object_names()

    def read(self, name: str, mode: str = 'r') -> str | bytes | None:
        """Content of the retrieved file ``name`` (``str`` for ``mode='r'``, ``bytes`` for ``'rb'``),
        or ``None`` when it was not retrieved."""
        if name not in self.retrieved_names:
            return None
        return self.retrieved.base.repository.get_object_content(name, mode=mode)

    def last_line(self, name: str) -> str:
        """Last line of the retrieved text file ``name`` (e.g. the error a program printed on its
        standard error last), stripped; ``''`` when the file is absent or blank."""
        text = self.read(name)
        lines = text.strip().splitlines() if text else []
        return lines[-1] if lines else ''
