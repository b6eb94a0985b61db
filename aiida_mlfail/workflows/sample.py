"""``ClassicalSamplingWorkChain`` (``mlfail.sample``): classical MD at several state points, frames as training data."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from aiida_mlfail.calculations.functions import (
    build_structure,
    check_structure_spec,
    merge_training_sets,
    prepare_sampling,
)
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import lammps_md, structures
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.common import (
    data_file_message,
    define_potential_files,
    dict_validator,
    expose_job,
    job_potential_files,
    potential_files_message,
    structure_validator,
    wrapper_inputs,
)
from aiida_mlfail.workflows.protocols import (
    ProtocolMixin,
    as_structure,
    classical_reference_inputs,
    resolve_codes,
    wrapper_inputs_from_protocol,
)
from aiida_mlfail.workflows.restart import LammpsRestartWorkChain


def _validate_inputs(value, ctx=None):
    """Structure xor builder spec; species known to the potential; every state point valid."""
    has_structure, has_spec = 'structure' in value, 'structure_spec' in value
    if has_structure == has_spec:
        return 'give exactly one of `structure` and `structure_spec`'
    if has_spec:
        spec = value['structure_spec'].get_dict()
        message = check_structure_spec(spec)
        if message:
            return message
        atoms = structures.from_spec(spec)  # the structure build_structure will make
        try:
            structures.check_structure(atoms, where=f'structure_spec {spec!r}: the built structure')
        except ValueError as exc:
            return str(exc)
        symbols = atoms.get_chemical_symbols()
    else:
        symbols = value['structure'].get_ase().get_chemical_symbols()
    if 'potential' in value:
        try:
            ReferencePotential.from_dict(value['potential'].get_dict()).check_species(symbols)
        except ValueError as exc:
            return f'potential: {exc}'
        message = potential_files_message(value['potential'], value.get('potential_files'), 'potential_files') \
            or data_file_message(value['potential'], value.get('potential_files'), symbols, 'potential_files')
        if message:
            return message
    points = value['state_points'].get_list() if 'state_points' in value else []
    if not points:
        return 'state_points: give at least one state point'
    labels = []
    for index, point in enumerate(points):
        if not isinstance(point, dict):
            return f'state_points[{index}] must be a dict, got {point!r}'
        try:
            labels.append(lammps_md.normalise_state_point(point, symbols)['label'])
        except ValueError as exc:
            return f'state_points[{index}]: {exc}'
    if len(set(labels)) != len(labels):
        return f'state point labels are not unique: {labels}; give each a distinct `label`'
    return None


def default_state_points(inputs: dict, structure) -> list[dict]:
    """State points of a sampling protocol: one per ``inputs['temperatures']`` (K), NVT at the volume of
    ``structure`` (Å^3), or NPT at ``inputs['pressure']`` (bar) starting from that volume when it is not None.

    :raises ValueError: when ``temperatures`` is not a non-empty list.
    """
    temperatures = inputs.get('temperatures')
    if not isinstance(temperatures, list) or not temperatures:
        raise ValueError(f'sampling protocol: temperatures must be a non-empty list of K, got {temperatures!r}')
    volume = float(structure.get_cell_volume())
    pressure = inputs.get('pressure')
    points = []
    for temperature in temperatures:
        point = {'temperature': temperature, 'ensemble': 'NVT', 'volume': volume}
        if pressure is not None:
            point.update(ensemble='NPT', pressure=pressure)
        points.append(point)
    return points


class ClassicalSamplingWorkChain(ProtocolMixin, WorkChain):
    """Sample labelled configurations with a classical reference potential at several state points.

    One LAMMPS job (``mlfail.lammps``, i.e. aiida-lammps ``lammps.raw`` with a generated script) per
    state point, all running concurrently, each in a :class:`~aiida_mlfail.workflows.restart.LammpsRestartWorkChain`
    exposed as ``lammps`` (its ``max_iterations``, ``restart``, ``handler_overrides``, ``clean_workdir``, and
    of the job ``lammps.job.code`` and ``lammps.job.metadata.options``; the script, structure file and
    settings are made here). Outputs per state point a ``TrainingSetData`` (energy eV, forces eV/Å,
    virial eV, per-atom energies eV) and the thermo ``ArrayData``, plus the merged pool.

    Steps: ``setup`` (the structure, built from ``structure_spec`` when given), ``run_lammps`` /
    ``inspect_lammps``, ``results``.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, required=False,
                   validator=structure_validator('structure'),
                   help='Start structure (periodic, no overlapping atoms: science.structures.check_structure).')
        spec.input('structure_spec', valid_type=orm.Dict, required=False,
                   help="Builder spec instead of a structure, e.g. {'system': 'nacl', 'n_ions': 64}.")
        spec.input('potential', valid_type=orm.Dict,
                   validator=dict_validator(ReferencePotential.from_dict, 'potential'),
                   help="Reference potential, e.g. {'name': 'bmhtf_coul_long', "
                        "'parameters': {'kspace_accuracy': 1e-5}} or {'name': 'lammps', 'species': [...], "
                        "'atom_style': ..., 'commands': [...], 'files': [...], 'charges': {...}, "
                        "'data_file': ... (atom_style full)}.")
        define_potential_files(spec, 'potential_files')
        spec.input('state_points', valid_type=orm.List,
                   help="List of {'temperature': K, 'ensemble': 'NVT'|'NPT', 'volume': Å^3 | 'density': g/cm^3, "
                        "'pressure': bar, 'label': str}.")
        spec.input('md', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   validator=dict_validator(lammps_md.normalise_md, 'md'),
                   help='timestep (fs), equilibration_steps, production_steps, sampling_interval, thermo_interval, '
                        'seed, thermostat_damping (fs), barostat_damping (fs).')
        expose_job(spec, LammpsRestartWorkChain, 'lammps',
                   help='The LAMMPS jobs (one per state point) with restarts: `job.code` (lmp or mlfail-lmp), '
                        '`job.metadata.options`, `max_iterations`, `restart` ...')
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            cls.run_lammps,
            cls.inspect_lammps,
            cls.results,
        )
        spec.output_namespace('sampled', dynamic=True, help='Per state point: training_set and thermo.')
        spec.output('pool', valid_type=TrainingSetData, help='All sampled frames of all state points.')
        spec.exit_code(401, 'ERROR_SAMPLING_FAILED', message='the sampling job(s) {labels} failed')

    _protocol_file = 'sample.yaml'

    @classmethod
    def get_builder_from_protocol(cls, codes, structure, *, protocol=None, overrides=None, options=None,
                                  reference=None, state_points=None):
        """A builder with every input set from ``protocols/sample.yaml``.

        :param codes: the LAMMPS code, or a mapping with the role ``lammps``.
        :param structure: start structure (``StructureData`` or ``ase.Atoms``; 8-64 atoms for ``fast``).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``temperatures``,
            ``pressure``, ``md``, ``lammps`` (the restart wrapper: ``max_iterations``, ``restart``,
            ``job.metadata.options`` ...).
        :param options: scheduler options of the LAMMPS jobs (merged over ``lammps.job.metadata.options``).
        :param reference: the classical reference potential: a preset ``{'name': ..., 'parameters': {...}}`` or
            a generic ``{'name': 'lammps', 'species', 'atom_style', 'commands', 'files': {name: path or
            SinglefileData}, 'charges'}`` (required; the files become the ``potential_files`` nodes).
        :param state_points: list of state point dicts (as the ``state_points`` port); default: one per
            protocol temperature at the structure's volume (:func:`default_state_points`).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad reference.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        code = resolve_codes(codes, ('lammps',), cls.__name__)['lammps']
        potential, files = classical_reference_inputs(reference, cls.__name__)
        structure = as_structure(structure, cls.__name__)
        builder = cls.get_builder()
        builder.structure = structure
        builder.potential = orm.Dict(potential)
        if files:
            builder.potential_files = files
        builder.state_points = orm.List(list(state_points) if state_points is not None
                                        else default_state_points(inputs, structure))
        builder.md = orm.Dict(inputs['md'])
        builder.lammps = wrapper_inputs_from_protocol(inputs['lammps'], code, options, cls.__name__)
        return builder

    def setup(self):
        """The start structure (built from ``structure_spec`` by a calcfunction when given) and the state
        point labels."""
        if 'structure_spec' in self.inputs:
            self.ctx.structure = build_structure(self.inputs.structure_spec)
        else:
            self.ctx.structure = self.inputs.structure
        symbols = self.ctx.structure.get_ase().get_chemical_symbols()
        self.ctx.points = {lammps_md.normalise_state_point(point, symbols)['label']: point
                           for point in self.inputs.state_points.get_list()}
        self.report(f'{len(self.ctx.points)} state point(s) of {self.ctx.structure.get_formula()}: '
                    f"{', '.join(self.ctx.points)}")

    def run_lammps(self):
        jobs = {}
        for label, point in self.ctx.points.items():
            potential_files = dict(self.inputs.get('potential_files', {}))
            prepared = prepare_sampling(self.ctx.structure, self.inputs.potential, orm.Dict(point), self.inputs.md,
                                        **potential_files)
            inputs = wrapper_inputs(self, LammpsRestartWorkChain, 'lammps', call_link_label=f'sample_{label}',
                                    label=label, script=prepared['script'], settings=prepared['settings'],
                                    files={'structure': prepared['structure_file'],
                                           **job_potential_files(potential_files)})
            jobs[label] = self.submit(LammpsRestartWorkChain, **inputs)
            self.report(f'submitted LAMMPS sampling <{jobs[label].pk}> for state point {label}')
        return ToContext(**{f'job_{label}': job for label, job in jobs.items()})

    def inspect_lammps(self):
        failed = []
        for key, node in self.ctx.items():
            if not key.startswith('job_'):
                continue
            label = key[4:]
            if not node.is_finished_ok:
                failed.append(label)
                self.report(f'sampling {label} <{node.pk}> failed: [{node.exit_status}] {node.exit_message}')
            else:
                results = node.outputs.results.get_dict()
                self.report(f"sampling {label} <{node.pk}>: {node.outputs.training_set.n_configurations} frames, "
                            f"mean T over the last half "
                            f"{results.get('mean_temperature_last_half', float('nan')):.0f} K, "
                            f"mean volume {results.get('mean_volume', float('nan')):.0f} Å^3")
        if failed:
            return self.exit_codes.ERROR_SAMPLING_FAILED.format(labels=', '.join(failed))
        return None

    def results(self):
        sets = {}
        for key, node in self.ctx.items():
            if key.startswith('job_'):
                label = key[4:]
                self.out(f'sampled.{label}.training_set', node.outputs.training_set)
                self.out(f'sampled.{label}.thermo', node.outputs.thermo)
                sets[label] = node.outputs.training_set
        pool = merge_training_sets(**sets)
        self.out('pool', pool)
        self.report(f'pool of {pool.n_configurations} configurations from {len(sets)} state points')
