"""Parser of ``mlfail.explore`` jobs; the file formats and their parsing live in ``science.explore``."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm

from aiida_mlfail.calculations.explore import STDERR
from aiida_mlfail.parsers.base import MlfailParser
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science.lammps_md import first_non_finite_thermo, json_safe
from aiida_mlfail.science.signals import SIGNAL_COLUMNS, SIGNALS_FILE, parse_signals


def configuration_node(text: str, stop_reason: str | None = None) -> orm.StructureData:
    """A ``StructureData`` of the one-frame extxyz ``text`` written by ``mlfail-explore``, with the
    attributes ``md_step``, ``similarity`` and ``reference_index`` (``None`` when absent) and ``stop_reason``.

    :raises ValueError: if the text is not one extxyz frame with an ``md_step``.
    """
    from ase.io import read  # noqa: PLC0415

    try:
        frames = read(io.StringIO(text), index=':', format='extxyz')
    except Exception as exc:  # noqa: BLE001 (ASE raises XYZError, IndexError ... on malformed text)
        raise ValueError(f'not an extxyz frame: {exc}') from None
    if len(frames) != 1 or 'md_step' not in frames[0].info:
        raise ValueError(f'expected one extxyz frame with md_step, got {len(frames)} frame(s)')
    atoms = frames[0]
    node = orm.StructureData(ase=atoms)
    attributes = node.base.attributes
    attributes.set('md_step', int(atoms.info['md_step']))
    similarity = atoms.info.get('similarity')
    attributes.set('similarity', None if similarity is None else float(similarity))
    index = atoms.info.get('reference_index')
    attributes.set('reference_index', None if index is None else int(index))
    attributes.set('stop_reason', stop_reason or str(atoms.info.get('stop_reason')))
    return node


class ExploreParser(MlfailParser):
    """Results, stop configuration(s), similarity and thermo series of ``mlfail-explore``.

    Every output is attached before the exit code of the stop reason is returned: 0 for ``novel``
    and ``max_steps``, 410 for a guard stop, 411 for lost atoms, 412 for another LAMMPS error, 413 for a
    NaN or infinite thermo value in a run that otherwise ended normally (NaN in ``results`` become ``None``).
    """

    def _missing(self, filename: str, names):
        error = self.last_line(STDERR) if STDERR in names else ''
        return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=filename, error=error or 'no error message')

    def _parse(self):
        repository = self.retrieved.base.repository
        names = repository.list_object_names()
        for filename in (sx.RESULTS_FILE, sx.SIMILARITY_FILE, sx.THERMO_FILE):
            if filename not in names:
                return self._missing(filename, names)
        try:
            results = sx.parse_explore_results(repository.get_object_content(sx.RESULTS_FILE, mode='r'))
            similarity = sx.parse_similarity(repository.get_object_content(sx.SIMILARITY_FILE, mode='r'))
            thermo = sx.parse_thermo_table(repository.get_object_content(sx.THERMO_FILE, mode='r'))
        except ValueError as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(error=str(exc))
        reason = results['stop_reason']
        self.out('results', orm.Dict(json_safe(results)))  # NaN (e.g. a guard value) as None: JSON has no NaN

        series = orm.ArrayData()
        for name, values in similarity.items():
            series.set_array(name, np.asarray(values))
        series.base.attributes.set('critical_similarity', results.get('critical_similarity'))
        self.out('similarity', series)
        array = orm.ArrayData()
        for name, values in thermo.items():
            array.set_array(name, np.asarray(values))
        array.base.attributes.set('units', dict(sx.THERMO_COLUMNS))
        self.out('thermo', array)
        if SIGNALS_FILE in names:  # (jobs of earlier versions wrote none)
            try:
                signals = parse_signals(repository.get_object_content(SIGNALS_FILE, mode='r'))
            except ValueError as exc:
                return self.exit_codes.ERROR_OUTPUT_INVALID.format(error=str(exc))
            node = orm.ArrayData()
            for name, values in signals.items():
                node.set_array(name, np.asarray(values))
            node.base.attributes.set('units', dict(SIGNAL_COLUMNS))
            node.base.attributes.set('oracle', bool(results.get('oracle', False)))
            self.out('signals', node)

        for filename, port, label in ((sx.TRIGGER_FILE, 'configuration', reason),
                                      (sx.PREVIOUS_FILE, 'previous_configuration', 'previous')):
            if filename not in names:
                continue
            try:
                node = configuration_node(repository.get_object_content(filename, mode='r'), label)
            except ValueError as exc:
                return self.exit_codes.ERROR_OUTPUT_INVALID.format(error=f'{filename}: {exc}')
            self.out(port, node)
        if sx.TRIGGER_FILE not in names and reason not in ('lost_atoms', 'lammps_error'):
            return self._missing(sx.TRIGGER_FILE, names)

        step, message = results['stop_step'], results['message']
        if reason in sx.GUARD_REASONS:
            return self.exit_codes.ERROR_MD_EXPLODED.format(reason=reason, step=step, message=message)
        if reason == 'lost_atoms':
            return self.exit_codes.ERROR_LOST_ATOMS.format(step=step, message=message)
        if reason == 'lammps_error':
            return self.exit_codes.ERROR_LAMMPS.format(step=step, message=message)
        non_finite = first_non_finite_thermo(thermo)
        if non_finite:
            return self.exit_codes.ERROR_NON_FINITE.format(**non_finite)
        return None
