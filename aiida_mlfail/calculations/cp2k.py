"""calcfunctions of the CP2K (DFT) reference: parse steps, structures of a set, labels, reference parity.

The parsing itself is :mod:`aiida_mlfail.science.outputs.cp2k` (AiiDA-free); these wrap it so every
labelled configuration and every refused output is a node in the graph. The CP2K jobs are aiida-cp2k's
``Cp2kCalculation`` (``cp2k`` entry point) whose own parser (``cp2k_base_parser``) only sorts out
aborts and wall-time stops; the parse steps here read the energy, forces and stress.

Exit codes of the parse steps (docs: reliability): 320 CP2K aborted, 321 truncated output, 322 output
missing or without energy / forces / stress, 420 SCF not converged (CP2K 2023.1 ends such a run
normally, so only the parse step can tell).
"""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_mlfail.calculations.functions import with_labels
from aiida_mlfail.data.training_set import TrainingSetData, check_same_reference
from aiida_mlfail.science import cp2k as cp2k_science
from aiida_mlfail.science.outputs.cp2k import (
    Cp2kOutputError,
    join_md_segments,
    parse_cp2k_md,
    parse_cp2k_output,
    unconverged_scf_count,
)
from aiida_mlfail.science.references import cp2k_reference, unknown_reference

#: CP2K's standard output as aiida-cp2k names it.
OUTPUT = 'aiida.out'
#: Exit status of a parse step per :class:`~aiida_mlfail.science.outputs.cp2k.Cp2kOutputError` reason.
PARSE_EXIT_STATUS = {'aborted': 320, 'truncated': 321, 'missing': 322, 'scf_not_converged': 420}
#: Exit status of the parse steps for a NaN / infinite energy, force or stress in CP2K's output.
NON_FINITE_STATUS = 323


def read_retrieved(retrieved: orm.FolderData, name: str) -> str | None:
    """The text of the file ``name`` of a job's retrieved folder, or ``None`` when it is not there."""
    try:
        return retrieved.base.repository.get_object_content(name, mode='r')
    except (FileNotFoundError, OSError):
        return None


@calcfunction
def parse_single_point(retrieved: orm.FolderData, structure: orm.StructureData, protocol: orm.Str,
                       overrides: orm.Dict | None = None):
    """The DFT labels of one CP2K single point (``Cp2kSinglePointWorkChain``'s parse step).

    :param retrieved: the job's retrieved folder (``aiida.out``).
    :param structure: the structure the job computed (positions, cell and order of the atoms).
    :param protocol: the protocol name, recorded as ``label_reference`` ``cp2k_<protocol>``.
    :param overrides: the job's ``overrides`` (if any): with ``protocol`` they make the set's reference
        (``science.references.cp2k_reference``).
    :returns: ``training_set``: one configuration with ``energy`` (eV), ``forces`` ((N, 3) eV/Å),
        ``virial`` ((3, 3) eV, ``-stress x V`` with the structure's volume) and ``scf_steps``; or an
        exit code: 420 SCF not converged, 320 aborted, 321 truncated, 322 missing output / values,
        323 a NaN / infinite energy, force or stress.
    """
    text = read_retrieved(retrieved, OUTPUT)
    if text is None:
        return ExitCode(322, f'no {OUTPUT} in the retrieved folder')
    try:
        result = parse_cp2k_output(text)
    except Cp2kOutputError as exc:
        return ExitCode(PARSE_EXIT_STATUS[exc.reason], str(exc))
    if not result['scf_converged']:
        return ExitCode(420, f"SCF not converged after {result['scf_steps']} steps")
    atoms = structure.get_ase()
    if result['n_atoms'] != len(atoms):
        return ExitCode(322, f"CP2K output has {result['n_atoms']} atoms, the structure {len(atoms)}")
    if result['stress'] is None:
        return ExitCode(322, 'CP2K output has no stress tensor (FORCE_EVAL/STRESS_TENSOR, PRINT/STRESS_TENSOR)')
    non_finite = [name for name in ('energy', 'forces', 'stress') if not np.all(np.isfinite(result[name]))]
    if non_finite:
        return ExitCode(NON_FINITE_STATUS, f"CP2K returned a non-finite {', '.join(non_finite)} (NaN or inf; "
                                           'overlapping atoms or a diverged SCF?)')
    atoms.info = {'energy': result['energy'], 'virial': -result['stress'] * atoms.get_volume(),
                  'label_reference': f'cp2k_{protocol.value}', 'scf_steps': int(result['scf_steps'])}
    atoms.arrays['forces'] = result['forces']
    reference = cp2k_reference(protocol.value, overrides.get_dict() if overrides is not None else None)
    return {'training_set': TrainingSetData.from_atoms([atoms], reference=reference)}


def _md_segment(folder: orm.FolderData, cell, *, continuation: bool, stopped: bool, name: str):
    """Frames of one AIMD job (:func:`~aiida_mlfail.science.outputs.cp2k.parse_cp2k_md`), or an ``ExitCode``."""
    output = read_retrieved(folder, OUTPUT)
    files = {key: read_retrieved(folder, name) for key, name in cp2k_science.AIMD_FILES.items()}
    needed = ('positions', 'forces', 'energies')
    absent = [cp2k_science.AIMD_FILES[key] for key in needed if files[key] is None]
    restart = read_retrieved(folder, cp2k_science.AIMD_RESTART_FILE) if stopped else None
    if stopped and restart is None:
        absent.append(cp2k_science.AIMD_RESTART_FILE)
    if output is None or absent:
        return ExitCode(322, f'missing in {name}: {([OUTPUT] if output is None else []) + absent}')
    try:
        until_step = cp2k_science.restart_step(restart) if stopped else None
        frames = parse_cp2k_md(files['positions'], files['forces'], output, cell, files['energies'],
                               continuation=continuation, until_step=until_step)
    except ValueError as exc:  # Cp2kOutputError or a checkpoint without its step
        return ExitCode(PARSE_EXIT_STATUS[getattr(exc, 'reason', 'missing')], f'{name}: {exc}')
    unconverged = unconverged_scf_count(output)
    if unconverged:
        return ExitCode(420, f'the SCF did not converge in {unconverged} force evaluation(s) of the MD run ({name})')
    return frames


@calcfunction
def parse_aimd(retrieved: orm.FolderData, structure: orm.StructureData, info: orm.Dict,
               protocol: orm.Str | None = None, overrides: orm.Dict | None = None, **segments):
    """The frames of a CP2K NVT AIMD run as a ``trajectory`` TrainingSetData (``Cp2kAimdWorkChain``).

    Reads ``aiida-pos-1.xyz``, ``aiida-frc-1.xyz``, ``aiida-1.ener`` and the ``STRESS|`` blocks of
    ``aiida.out`` with :func:`aiida_mlfail.science.outputs.cp2k.parse_cp2k_md`; the cell is the structure's
    (NVT). Each frame carries ``energy`` (eV), ``forces`` (eV/Å), ``virial`` (eV), ``md_step``,
    ``time_fs``, ``config_type`` ``cp2k_aimd`` and the items of ``info`` (e.g. temperature, protocol).
    The set's reference is ``science.references.cp2k_reference(protocol, overrides)`` (unknown without
    ``protocol``).

    :param retrieved: the retrieved folder of the job that finished the run.
    :param segments: ``segment_00``, ``segment_01`` ...: the retrieved folders of the jobs before it, in
        order, each stopped (wall time) and continued by the next from its checkpoint
        (``aiida-1.restart``, whose step ends the segment). The frames of all are joined
        (:func:`~aiida_mlfail.science.outputs.cp2k.join_md_segments`): one trajectory without gap or repeat.
    :returns: ``trajectory``, or exit 420 if an SCF of the run did not converge (CP2K 2023.1 goes on with
        the unconverged forces; the SCF that ``GLOBAL/WALLTIME`` cut short is not counted), 320 / 321 /
        322 for an aborted, truncated or incomplete run (or segments that do not join), 323 for a NaN /
        infinite energy, force or virial.
    """
    names = sorted(segments)
    folders = [(segments[name], name) for name in names] + [(retrieved, 'retrieved')]
    parts = []
    for index, (folder, name) in enumerate(folders):
        part = _md_segment(folder, structure.cell, continuation=index > 0, stopped=index < len(folders) - 1,
                           name=name)
        if isinstance(part, ExitCode):
            return part
        parts.append(part)
    try:
        frames = join_md_segments(parts)
    except Cp2kOutputError as exc:
        return ExitCode(PARSE_EXIT_STATUS[exc.reason], str(exc))
    for atoms in frames:
        atoms.info.update({'config_type': 'cp2k_aimd', **info.get_dict()})
    reference = (cp2k_reference(protocol.value, overrides.get_dict() if overrides is not None else None)
                 if protocol is not None else unknown_reference())
    try:
        return {'trajectory': TrainingSetData.from_atoms(frames, reference=reference)}
    except ValueError as exc:  # a NaN / infinite energy, force or virial, named by TrainingSetData
        return ExitCode(NON_FINITE_STATUS, f'the AIMD trajectory cannot be stored: {exc}')


@calcfunction
def structures_of(configurations: TrainingSetData):
    """One ``StructureData`` per configuration (``c0000``, ``c0001`` ... in set order), for per-configuration jobs."""
    return {f'c{index:04d}': orm.StructureData(ase=atoms) for index, atoms in enumerate(configurations.get_atoms())}


@calcfunction
def attach_cp2k_labels(configurations: TrainingSetData, failures: orm.Dict, **labelled):
    """The ``configurations`` carrying the DFT labels of their single points (one set per configuration).

    :param configurations: the configurations sent to the labeller (their metadata, e.g. ``candidate``,
        ``md_step``, ``structure_uuid``, is kept; old labels are replaced).
    :param failures: ``{index (str): reason}`` of the configurations whose single point failed.
    :param labelled: ``c<index>`` -> one-configuration ``TrainingSetData`` of ``parse_single_point``.
    :returns: ``training_set`` (with the reference of the labelled sets) and ``excluded`` (Dict
        ``{'excluded': [{'index', 'candidate', 'reason'}]}``), as ``attach_labels`` of the classical reference.
    :raises ValueError: if nothing was labelled, a labelled configuration's positions differ from
        its original's (modulo lattice vectors, 1e-6 fractional), or the labelled sets have different
        references (naming them).
    """
    reference = check_same_reference(**{key: labelled[key] for key in sorted(labelled)}) if labelled else None
    originals = configurations.get_atoms()
    reasons = failures.get_dict()
    out, excluded = [], []
    for index, atoms in enumerate(originals):
        key = f'c{index}'
        if key not in labelled:
            excluded.append({'index': index, 'candidate': atoms.info.get('candidate'),
                             'reason': reasons.get(str(index), 'no labelled configuration came back')})
            continue
        (frame,) = labelled[key].get_atoms()
        out.append(with_labels(atoms, frame, frame.info.get('label_reference', 'cp2k'), index))
    if not out:
        raise ValueError(f'none of the {len(originals)} configurations was labelled')
    return {'training_set': TrainingSetData.from_atoms(out, reference=reference),
            'excluded': orm.Dict({'excluded': excluded})}


def reference_differences(first, second) -> dict:
    """Differences between two references' labels of the same configurations (same order).

    Energies are compared per atom after removing each reference's mean over the set: two references
    (e.g. DFT and a classical potential) have different zeros of energy, so only energy differences
    between configurations are comparable. Forces are compared component by component.

    :param first: ``ase.Atoms`` list labelled by the first reference (energy eV, forces eV/Å).
    :param second: the same configurations labelled by the second reference.
    :returns: ``energy`` ((first, second) per-atom energies minus their means, eV/atom), ``forces``
        ((first, second) force components, eV/Å), ``offset`` (mean per-atom energy difference
        second - first, eV/atom), ``rmsd_energy`` (eV/atom), ``rmsd_forces`` (eV/Å), ``n``.
    :raises ValueError: if the lists differ in length or atom counts.
    """
    if len(first) != len(second) or any(len(a) != len(b) for a, b in zip(first, second)):
        raise ValueError('the two references must label the same configurations in the same order')
    e1 = np.array([a.info['energy'] / len(a) for a in first])
    e2 = np.array([a.info['energy'] / len(a) for a in second])
    f1 = np.concatenate([a.arrays['forces'].ravel() for a in first])
    f2 = np.concatenate([a.arrays['forces'].ravel() for a in second])
    d1, d2 = e1 - e1.mean(), e2 - e2.mean()
    return {'energy': (d1, d2), 'forces': (f1, f2), 'offset': float(e2.mean() - e1.mean()),
            'rmsd_energy': float(np.sqrt(np.mean((d1 - d2) ** 2))),
            'rmsd_forces': float(np.sqrt(np.mean((f1 - f2) ** 2))),
            'n': len(first)}


@calcfunction
def compare_references(first: TrainingSetData, second: TrainingSetData, names: orm.List):
    """Parity of two references on the same configurations (:func:`reference_differences`) and its plot.

    :param names: ``[name of first, name of second]`` for the axes (e.g. ``['BMHTF', 'PBE (CP2K)']``).
    :returns: ``metrics`` (Dict: rmsd_energy eV/atom, rmsd_forces eV/Å, offset eV/atom, n, max_force
        of each reference eV/Å) and ``parity_plot`` (SinglefileData ``parity.png``).
    """
    from aiida_mlfail.science.plots import figure_png, plt

    a, b = first.get_atoms(), second.get_atoms()
    d = reference_differences(a, b)
    label_a, label_b = names.get_list()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.0))
    panels = [('energy', 'energy - mean (eV/atom)', d['rmsd_energy']),
              ('forces', 'force component (eV/Å)', d['rmsd_forces'])]
    for ax, (key, unit, rmsd) in zip(axes, panels):
        x, y = d[key]
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color='0.6', lw=1)
        ax.scatter(x, y, s=8, alpha=0.6)
        ax.set_xlabel(f'{label_a} {unit}')
        ax.set_ylabel(f'{label_b} {unit}')
        ax.text(0.04, 0.96, f'RMSD {rmsd:.3g}', transform=ax.transAxes, va='top', fontsize=9)
    fig.suptitle(f'{label_b} vs {label_a}, {d["n"]} configurations (energies offset-removed)')
    metrics = {key: d[key] for key in ('rmsd_energy', 'rmsd_forces', 'offset', 'n')}
    metrics['max_force'] = {label_a: float(np.abs(d['forces'][0]).max()), label_b: float(np.abs(d['forces'][1]).max())}
    return {'metrics': orm.Dict(metrics),
            'parity_plot': orm.SinglefileData(io.BytesIO(figure_png(fig)), filename='parity.png')}
