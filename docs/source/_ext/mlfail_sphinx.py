"""Sphinx directives of the aiida-mlfail documentation, rendering what the process classes declare.

aiida-core's ``aiida-workchain`` directive (:mod:`aiida.sphinxext`) renders the inputs, outputs and
outline of a process; it does not render exit codes or protocols. These two directives add them as tables:

``mlfail-exit-codes``  ``.. mlfail-exit-codes:: aiida_mlfail.workflows.gap.GapWorkChain``:
                       status, label and message of every exit code of ``Process.spec().exit_codes``,
                       sorted by status.
``mlfail-protocols``   ``.. mlfail-protocols:: aiida_mlfail.workflows.gap.GapWorkChain``: name and
                       description of every protocol of the class's protocol YAML
                       (``get_available_protocols()``, ``get_default_protocol()``).
"""

from __future__ import annotations

from aiida.common.utils import get_object_from_string
from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _table(headers: list[str], rows: list[list[str]], widths: list[int], literal: tuple[int, ...] = ()) -> nodes.table:
    """A docutils table of plain-text cells; the columns whose index is in ``literal`` are set as code."""
    table = nodes.table(classes=['mlfail-table'])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)

    def row_of(cells, literal_columns):
        row = nodes.row()
        for i, cell in enumerate(cells):
            paragraph = nodes.paragraph()
            paragraph += nodes.literal(text=cell) if i in literal_columns else nodes.Text(cell)
            entry = nodes.entry()
            entry += paragraph
            row += entry
        return row

    head = nodes.thead()
    head += row_of(headers, ())
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += row_of(cells, literal)
    group += body
    return table


class _ProcessDirective(SphinxDirective):
    required_arguments = 1
    has_content = False

    def process_class(self):
        return get_object_from_string(self.arguments[0].strip())


class ExitCodesDirective(_ProcessDirective):
    """Table of the exit codes of a process class (status, label, message)."""

    def run(self):
        exit_codes = self.process_class().spec().exit_codes
        rows = [[str(code.status), label, code.message]
                for label, code in sorted(exit_codes.items(), key=lambda item: item[1].status)]
        return [_table(['status', 'label', 'message'], rows, [8, 30, 62], literal=(1,))]


class ProtocolsDirective(_ProcessDirective):
    """Table of the protocols of a WorkChain's protocol YAML, the default one marked."""

    def run(self):
        cls = self.process_class()
        try:
            default = cls.get_default_protocol()
            protocols = cls.get_available_protocols()
        except (AttributeError, NotImplementedError):  # no ProtocolMixin, or no _protocol_file
            paragraph = nodes.paragraph()
            paragraph += nodes.Text(f'{cls.__name__} has no protocol file in this version.')
            return [paragraph]
        rows = [[name, 'yes' if name == default else '', values.get('description', '')]
                for name, values in protocols.items()]
        return [_table(['protocol', 'default', 'description'], rows, [15, 10, 75], literal=(0,))]


def setup(app):
    app.add_directive('mlfail-exit-codes', ExitCodesDirective)
    app.add_directive('mlfail-protocols', ProtocolsDirective)
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
