"""``LabelWorkChain`` (``mlfail.label``): reference energy, forces and virial for a set of configurations.

The labeller of the active learner (DOMAIN.md section 7, role 3). References:

* ``lammps``: classical single points of all configurations in one LAMMPS job (``rerun`` of a dump
  with one frame per configuration, ``science.mlmd.rerun_script``);
* ``cp2k`` (DFT) plugs into the same inputs and outputs (issue 6).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_mlfail.calculations.functions import attach_labels, collect_structures, prepare_single_points
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.common import DEFAULT_OPTIONS


def _validate_inputs(value, ctx=None):
    """Configurations xor structures; one reference; the reference must describe every species."""
    has_set, structures = 'configurations' in value, dict(value.get('structures', {}))
    if has_set == bool(structures):
        return 'give either `configurations` (TrainingSetData) or `structures` (StructureData namespace), not both or none'
    if 'lammps' not in value or 'potential' not in value['lammps']:
        return 'no reference given: set `lammps.potential` and `lammps.code` (classical single points)'
    if has_set:
        atoms_list = value['configurations'].get_atoms()
    else:
        atoms_list = [structures[key].get_ase() for key in sorted(structures)]
    symbols = {tuple(a.get_chemical_symbols()) for a in atoms_list}
    try:
        ReferencePotential.from_dict(value['lammps']['potential'].get_dict()).check_species(
            set().union(*(set(s) for s in symbols)))
    except ValueError as exc:
        return f'lammps.potential: {exc}'
    if len(symbols) != 1:
        return (f'the lammps reference labels configurations with one atom sequence per job; got {len(symbols)} '
                'different compositions / atom orders')
    return None


class LabelWorkChain(WorkChain):
    """Label configurations with a reference: ``training_set`` (energy eV, forces eV/Å, virial eV).

    Inputs: ``configurations`` (TrainingSetData) or ``structures`` (namespace of StructureData; their
    attributes ``md_step``, ``similarity``, ``stop_reason`` and their keys travel with the labelled
    configurations as ``md_step``, ``similarity``, ``stop_reason``, ``candidate``, ``structure_uuid``),
    and one reference namespace (``lammps``: ``potential`` Dict as for ``ReferencePotential``, ``code``,
    ``options``). Outputs: ``training_set`` and ``excluded`` (Dict: ``{'excluded': [{'index', 'candidate',
    'reason'}]}``, the configurations that could not be labelled). Exit 402 if none could be labelled.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('configurations', valid_type=TrainingSetData, required=False)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, required=False)
        spec.input_namespace('lammps', required=False, help='Classical reference: LAMMPS single points.')
        spec.input('lammps.potential', valid_type=orm.Dict, required=False,
                   help="ReferencePotential dict, e.g. {'name': 'bmhtf_coul_long'}.")
        spec.input('lammps.code', valid_type=orm.AbstractCode, required=False)
        spec.input('lammps.options', valid_type=orm.Dict, default=lambda: orm.Dict(DEFAULT_OPTIONS))
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.collect, if_(cls.is_lammps)(cls.run_lammps, cls.inspect_lammps), cls.results)
        spec.output('training_set', valid_type=TrainingSetData)
        spec.output('excluded', valid_type=orm.Dict)
        spec.exit_code(402, 'ERROR_ALL_FAILED', message='no configuration could be labelled: {message}')

    def collect(self):
        if 'configurations' in self.inputs:
            self.ctx.configurations = self.inputs.configurations
        else:
            self.ctx.configurations = collect_structures(**self.inputs.structures)

    def is_lammps(self):
        return 'lammps' in self.inputs and 'potential' in self.inputs.lammps

    def run_lammps(self):
        prepared = prepare_single_points(self.ctx.configurations, self.inputs.lammps.potential)
        node = self.submit(LammpsCalculation, code=self.inputs.lammps.code, script=prepared['script'],
                           files={'structure': prepared['structure_file'], 'ml_frames': prepared['dump_file']},
                           settings=prepared['settings'],
                           metadata={'options': self.inputs.lammps.options.get_dict(),
                                     'call_link_label': 'single_points'})
        self.report(f'submitted LAMMPS single points <{node.pk}> of {self.ctx.configurations.n_configurations} '
                    f"configuration(s) with {self.inputs.lammps.potential['name']}")
        return ToContext(single_points=node)

    def inspect_lammps(self):
        node = self.ctx.single_points
        if not node.is_finished_ok or 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_ALL_FAILED.format(
                message=f'LAMMPS single points <{node.pk}> failed: [{node.exit_status}] {node.exit_message}')
        result = attach_labels(self.ctx.configurations, node.outputs.training_set)
        self.ctx.labelled, self.ctx.excluded = result['training_set'], result['excluded']
        return None

    def results(self):
        labelled = self.ctx.labelled
        self.out('training_set', labelled)
        self.out('excluded', self.ctx.excluded)
        for item in self.ctx.excluded['excluded']:
            self.report(f"excluded configuration {item['index']} ({item['candidate']}): {item['reason']}")
        energies = ', '.join(f"{a.info['energy'] / len(a):.4f}" for a in labelled.get_atoms()[:8])
        self.report(f'labelled {labelled.n_configurations} configuration(s); energy per atom (eV): {energies}')
