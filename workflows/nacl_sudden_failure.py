#!/usr/bin/env python
"""Study: the sudden failure of a multi-density E+F+V GAP in NPT and its repair by the active learner (thesis 11, 13.3).

The thesis (section 11, figure 11.1) trains a GAP on energies, forces and virials of 147 configurations from five NVT
runs at densities around the liquid's; in NPT it runs stably for about 150 000 steps (0.3 ns) and then its volume
explodes. The forensics (temperature with its running mean, velocity and force histograms before and after the break,
AFM, P and P_virial; figures 11.2-11.5) show no predictor. The active learner (section 13.3) adds 33 configurations
(180 in all) and the repaired GAP's NPT run does not explode (figure 13.4).

Here, molten NaCl at 1400 K with the BMHTF + PPPM reference (``common.BMHTF_PPPM``):

1. the five-density E+F+V GAP of ``nacl_npt_failure`` (classical NVT at the five ``volumes``, ``n_select``
   configurations uniform in force from their pool, half of them for validation) and the classical NPT reference
   (1 bar; production as long as the GAP NPT runs): ``nacl_npt_failure.sampling_builders`` and
   ``common.gap_builder``;
2. NPT runs of that GAP (1400 K, 1 bar, ``md_steps`` of 2 fs) with every seed of ``seeds``, from the last frame of
   the liquid NVT run. A run *breaks* at the first frame above 1.5 x the classical equilibrium volume (thesis section
   11; the guard halts it later, at 3 x, so that the forensics show frames after the break). A break is *sudden*
   (the thesis's case) when the frames before it that lie within :data:`STABLE_BAND` (15 %) of the classical
   volume make up at least :data:`STABLE_FRACTION` (20 %) of the planned run's frames: the run held the volume for
   a while, then failed;
3. the forensics of the chosen run (the first sudden break in seed order, else the first break, else none): the
   ``MLMDWorkChain`` forensics figure with the break step marked;
4. the repair: ``ActiveLearningWorkChain`` (``nacl_active_learning.active_learning_builder``; protocol of the size,
   NPT walkers at 1400 K and 1 bar) started from that GAP's training and validation sets, with its gap_fit
   parameters (the learner's first fit refits the same set); it runs while the NPT runs do. The repaired GAP (the
   learner's last) then runs the chosen run's NPT again (same seed, same length, same start): does it break? Its
   equilibrium volume (before the break, if it breaks) against the classical one, with block standard errors
   (``nacl_al_vs_random.verification``).

Sizes (``SIZES``): ``tiny`` (the integration test: 32 ions, 100 NPT steps, one learner iteration with a strict novelty
threshold; plumbing, not the finding), ``small`` (64 ions, the ``nacl_npt_failure`` small GAP of 40 training
configurations, two seeds of 15 ps NPT, the demo's learner; about 45 minutes on 2 cores), ``large`` (the thesis's
size: 200 ions, 147 training configurations, three seeds of 0.3 ns; for a cluster, ``--computer``).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_sudden_failure.py [--size tiny|small|large] [--out DIR]

Prints the tables and writes ``<out>/nacl_sudden_failure_<size>.json`` and the figures (volume traces, forensics of
the chosen run and of the repaired GAP's run, the learner's convergence, the parity plot of the initial GAP).
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import nacl_active_learning as demo  # noqa: E402
import nacl_al_vs_random as avr  # noqa: E402
import nacl_npt_failure as npt  # noqa: E402

STUDY = 'nacl_sudden_failure'
#: A frame is *stable* when its volume is within this fraction of the classical equilibrium volume.
STABLE_BAND = 0.15
#: A break is *sudden* when the stable frames before it make up at least this fraction of the planned run's frames.
STABLE_FRACTION = 0.2

#: Per size: the keys of ``nacl_npt_failure.SIZES`` (ions, NVT volumes, the liquid one, sampling, ``n_select``, GAP
#: descriptors, NPT ``md_steps``, ``skip``, ``thermo``, ``dump``), the NPT ``seeds``, the learner's ``protocol`` and
#: ``overrides`` (of the ActiveLearningWorkChain protocol; ``nacl_active_learning.study_overrides`` adds 1400 K, 1 bar).
SIZES = {
    'tiny': {**npt.SIZES['tiny'], 'seeds': [npt.NPT_SEED], 'protocol': 'fast',
             # one iteration; a strict novelty threshold so that the 60-step exploration flags something
             'overrides': avr.SIZES['tiny']['overrides']},
    'small': {**npt.SIZES['small'], 'md_steps': 7500, 'seeds': [npt.NPT_SEED, npt.NPT_SEED + 1],
              'protocol': 'moderate', 'overrides': {}},
    # the thesis's 147 training configurations (294 selected, half for validation) and 0.3 ns
    'large': {**npt.SIZES['large'], 'n_select': 294, 'md_steps': 150000,
              'seeds': [npt.NPT_SEED, npt.NPT_SEED + 1, npt.NPT_SEED + 2],
              'protocol': 'precise', 'overrides': demo.SIZES['large']['overrides']},
}


def npt_parameters(s: dict, v_ref: float, seed: int) -> dict:
    """The MD parameters of every GAP NPT run of the study (1400 K, 1 bar, 2 fs, ``s['md_steps']``, ``seed``; break
    at 1.5 x and guard at 3 x ``v_ref``, Å^3)."""
    return {'ensemble': 'NPT', 'temperature': npt.TEMPERATURE, 'pressure': npt.PRESSURE, 'timestep': npt.TIMESTEP,
            'steps': s['md_steps'], 'dump_interval': s['dump'], 'thermo_interval': s['thermo'], 'seed': seed,
            'reference_volume': v_ref, 'breaking_factor': npt.BREAK_FACTOR,
            'guards': {'volume_factor': npt.GUARD_FACTOR}}


def stable_stretch(steps, volume, v_ref: float, breaking_step, planned_steps: int) -> dict:
    """How long a GAP NPT run held the volume before its break.

    :param steps: thermo steps of the run (MD steps; ``(n,)``).
    :param volume: volumes (Å^3; ``(n,)``).
    :param v_ref: the classical equilibrium volume (Å^3).
    :param breaking_step: the first step above 1.5 x ``v_ref`` or ``None`` (then the whole run counts).
    :param planned_steps: steps the run was meant to have (its frames count the planned run's length).
    :returns: ``{'stable_frames', 'planned_frames', 'stable_fraction', 'sudden'}``: frames before the break within
        :data:`STABLE_BAND` of ``v_ref``, frames of the planned run (``planned_steps`` over the thermo interval, + 1),
        their ratio, and whether the break (if any) is sudden (ratio >= :data:`STABLE_FRACTION`).
    """
    steps, volume = np.asarray(steps), np.asarray(volume)
    before = steps < breaking_step if breaking_step is not None else np.ones(len(steps), bool)
    stable = int(np.count_nonzero(before & (np.abs(volume / v_ref - 1.0) <= STABLE_BAND)))
    interval = int(steps[1] - steps[0]) if len(steps) > 1 else 1
    planned = planned_steps // interval + 1
    fraction = stable / planned
    return {'stable_frames': stable, 'planned_frames': planned, 'stable_fraction': fraction,
            'sudden': breaking_step is not None and fraction >= STABLE_FRACTION}


def choose(runs: dict) -> str | None:
    """The run whose forensics the study shows and whose NPT the repaired GAP repeats: the first sudden break in seed
    order, else the first break; ``None`` when no run broke."""
    for wanted in ('sudden', 'broke'):
        for name, run in runs.items():
            if (run['sudden'] if wanted == 'sudden' else run['breaking_step'] is not None):
                return name
    return None


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``, ``explore``), print its tables,
    write the figures and ``nacl_sudden_failure_<size>.json`` into ``out`` and return the summary written there.

    Exits (``SystemExit`` 1) when a WorkChain ends with a status the study does not accept (0; the GAP NPT runs also
    410, a guard stop; the learner also 701 and 702, its limits).
    """
    from aiida import orm

    t0 = time.time()
    s = SIZES[size]
    liquid = f"nvt_V{s['liquid_volume']:.0f}"
    print(f"== 1. classical BMHTF + PPPM: NVT at {s['volumes']} Å^3 and NPT at {npt.PRESSURE:.0f} bar "
          f"({s['n_ions']} ions, {npt.TEMPERATURE:.0f} K)")
    runs = common.Runs()
    for name, builder in npt.sampling_builders(codes, s, size).items():
        runs.start(name, builder)
    nvt = runs.wait('NVT sampling')['NVT sampling']
    print(f"== 2. the five-density E+F+V GAP from {s['n_select']} configurations (uniform in force, half for "
          'validation)')
    runs.start('GAP five densities', common.gap_builder(codes, nvt.outputs.pool, size=size, n_select=s['n_select'],
                                                        **s['gap']))
    classical_thermo = runs.wait('classical NPT')['classical NPT'].outputs.sampled.npt_1bar.thermo
    reference = npt.volume_statistics(classical_thermo, s['skip'], s['sampling']['equilibration_steps'])
    v_ref = reference['mean']
    print(f"classical NPT equilibrium volume: {common.with_error(v_ref, reference['stderr'], '.0f')} Å^3")
    fit = runs.wait('GAP five densities')['GAP five densities']
    start = nvt.outputs.sampled[liquid].training_set.get_atoms()[-1]
    structure = orm.StructureData(ase=start)

    print(f"== 3. GAP NPT ({s['md_steps']} steps of {npt.TIMESTEP:.0f} fs, seeds {s['seeds']}) from the last liquid "
          f'NVT frame; break at {npt.BREAK_FACTOR} x, guard at {npt.GUARD_FACTOR} x {v_ref:.0f} Å^3; the active '
          f"learner (protocol {s['protocol']}) starts from the GAP's {fit.outputs.training_set.n_configurations} "
          'training configurations at the same time')
    for seed in s['seeds']:
        runs.start(f'NPT seed {seed}', common.mlmd_builder(codes, fit.outputs.potential, structure,
                                                           npt_parameters(s, v_ref, seed), size=size,
                                                           equilibrium_thermo=classical_thermo))
    learner_builder = demo.active_learning_builder(codes, s, fit.outputs.training_set, fit.outputs.validation_set,
                                                   start)
    learner_builder.gap.fit.job.parameters = fit.inputs.fit.job.parameters  # the same gap_fit settings
    runs.start('active learning', learner_builder)
    md = runs.wait(*(f'NPT seed {seed}' for seed in s['seeds']), allowed=(0, 410))
    results = {}
    for seed in s['seeds']:
        run = avr.verification(md[f'NPT seed {seed}'], v_ref, reference, s['skip'])
        thermo = md[f'NPT seed {seed}'].outputs.thermo
        run.update(stable_stretch(thermo.get_array('step'), thermo.get_array('volume'), v_ref, run['breaking_step'],
                                  s['md_steps']))
        results[f'seed {seed}'] = {'seed': seed, **run}
    chosen = choose(results)
    seed = results[chosen]['seed'] if chosen else s['seeds'][0]
    print(f'chosen run: {chosen or "none broke"}; the repaired GAP repeats the NPT of seed {seed}')

    learner = runs.wait('active learning', allowed=(0, 701, 702))['active learning']
    print(f"== 4. the repaired GAP (the learner's last) in the NPT of seed {seed}")
    runs.start('NPT repaired', common.mlmd_builder(codes, learner.outputs.potential, structure,
                                                   npt_parameters(s, v_ref, seed), size=size,
                                                   equilibrium_thermo=classical_thermo))
    md['NPT repaired'] = runs.wait('NPT repaired', allowed=(0, 410))['NPT repaired']
    repaired = avr.verification(md['NPT repaired'], v_ref, reference, s['skip'])
    thermo = md['NPT repaired'].outputs.thermo
    repaired.update(stable_stretch(thermo.get_array('step'), thermo.get_array('volume'), v_ref,
                                   repaired['breaking_step'], s['md_steps']))
    results['repaired'] = {'seed': seed, **repaired}
    return report(s, size, out, command, t0, fit, learner, md, results, chosen, classical_thermo, reference)


def report(s, size, out, command, t0, fit, learner, md, results, chosen, classical_thermo, reference) -> dict:
    """Tables, figures and the JSON summary of :func:`run_study`."""
    from aiida_mlfail.science.plots import plt

    v_ref = reference['mean']
    fits = sorted((n for n in learner.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    n_initial = fit.outputs.training_set.n_configurations
    n_final = learner.outputs.training_set.n_configurations
    iterations = len(learner.outputs.summary.get_dict()['iterations'])
    gaps = {'five densities (initial)': fit, "learner's first fit (same set)": fits[0], 'repaired': fits[-1]}
    gap_rows = []
    for name, node in gaps.items():
        metrics = node.outputs.metrics.get_dict()
        gap_rows.append([name, node.outputs.training_set.n_configurations, f"{1000 * metrics['energy']['rmse']:.2f}",
                         f"{metrics['forces']['rmse']:.3f}", f"{1000 * metrics['virial']['rmse']:.1f}"])
    volume_rows = []
    for name, run in results.items():
        gap = 'repaired' if name == 'repaired' else 'five densities'
        kind = ('-' if run['breaking_step'] is None else 'sudden' if run['sudden'] else 'early')
        volume_rows.append([f"GAP {gap}, seed {run['seed']}", run['stop_reason'], npt.fmt_step(run['breaking_step']),
                            kind, f"{100 * run['stable_fraction']:.0f} %",
                            common.with_error(run['volume']['mean'], run['volume']['stderr'], '.0f'),
                            npt.percent(run['deviation'], run['deviation_stderr'])])
    volume_rows.append(['classical BMHTF + PPPM', 'completed', '-', '-', '-',
                        common.with_error(v_ref, reference['stderr'], '.0f'), '0'])
    gap_header = ['GAP', 'training configurations', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)', 'virial RMSE (meV/atom)']
    volume_header = ['run', 'stop', f'breaking step (V > {npt.BREAK_FACTOR} V_ref)', 'break',
                     f'stable before the break (±{100 * STABLE_BAND:.0f} %, of the planned frames)', 'V_eq (Å^3)',
                     'V_eq / V_ref - 1']
    learner_header = ['learner', 'iterations', 'added', 'training configurations', 'outcome']
    outcome = learner.outputs.summary.get_dict()['outcome']
    learner_rows = [[f'<{learner.pk}> protocol {s["protocol"]}', iterations, n_final - n_initial,
                     f'{n_initial} -> {n_final}', outcome]]
    print()
    common.print_table(gap_header, gap_rows)
    print()
    common.print_table(learner_header, learner_rows)
    print()
    common.print_table(volume_header, volume_rows)

    out.mkdir(parents=True, exist_ok=True)
    figures = [f'volume_traces_{size}.png']
    fig, ax = plt.subplots(figsize=(6.4, 4))
    steps, volume = classical_thermo.get_array('step'), classical_thermo.get_array('volume')
    production = steps >= s['sampling']['equilibration_steps']
    ax.plot((steps[production] - steps[production][0]) * npt.TIMESTEP / 1000, volume[production], lw=1, color='k',
            label='classical NPT (production)')
    for name, run in results.items():
        thermo = md['NPT repaired' if name == 'repaired' else f'NPT {name}'].outputs.thermo
        steps = thermo.get_array('step')
        ax.plot((steps - steps[0]) * npt.TIMESTEP / 1000, thermo.get_array('volume'), lw=1,
                label=f"GAP {'repaired' if name == 'repaired' else 'five densities'}, seed {run['seed']}")
        if run['breaking_step'] is not None:
            ax.axvline(run['breaking_step'] * npt.TIMESTEP / 1000, color=ax.lines[-1].get_color(), lw=0.8, ls='-.')
    ax.axhspan((1 - STABLE_BAND) * v_ref, (1 + STABLE_BAND) * v_ref, color='0.9', zorder=0,
               label=f'±{100 * STABLE_BAND:.0f} % (stable)')
    ax.axhline(v_ref, color='k', lw=0.8, ls=':', label='classical V_eq')
    ax.axhline(npt.BREAK_FACTOR * v_ref, color='red', ls='--', lw=1, label=f'{npt.BREAK_FACTOR} V_eq (break)')
    ax.set_xlabel('time in the NPT run (ps)')
    ax.set_ylabel('volume (Å$^3$)')
    ax.set_title(f"NaCl, {s['n_ions']} ions, {npt.TEMPERATURE:.0f} K, {npt.PRESSURE:.0f} bar; "
                 f'{n_final - n_initial} added by the learner')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / figures[0], dpi=100)
    plt.close(fig)
    exports = {f'forensics_{(chosen or "seed " + str(results["repaired"]["seed"])).replace(" ", "_")}':
               md[f'NPT {chosen}' if chosen else f'NPT seed {results["repaired"]["seed"]}'].outputs.forensics_plot,
               'forensics_repaired': md['NPT repaired'].outputs.forensics_plot,
               'active_learning': learner.outputs.convergence_plot, 'parity_initial': fit.outputs.parity_plot}
    for prefix, node in exports.items():
        figures.append(common.export(node, out, f'{prefix}_{size}.png').name)

    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'nvt_volumes_A3': s['volumes'], 'liquid_volume_A3': s['liquid_volume'],
                  'sampling_steps_per_volume': s['sampling']['production_steps'],
                  'configurations_selected': s['n_select'], 'initial_training_configurations': n_initial,
                  'validation_configurations': fit.outputs.validation_set.n_configurations,
                  'npt_seeds': s['seeds'], 'npt_steps': s['md_steps'], 'npt_ps': s['md_steps'] * npt.TIMESTEP / 1000,
                  'averaged_from_fraction': s['skip'], 'blocks': npt.BLOCKS, 'gap': s['gap'],
                  'learner_protocol': s['protocol'], 'stable_band': STABLE_BAND, 'stable_fraction': STABLE_FRACTION,
                  'breaking_factor': npt.BREAK_FACTOR, 'guard_factor': npt.GUARD_FACTOR,
                  'temperature_K': npt.TEMPERATURE, 'pressure_bar': npt.PRESSURE, 'timestep_fs': npt.TIMESTEP},
        'reference_volume': {**reference, 'source': 'classical BMHTF + PPPM NPT of this study, same production '
                                                    'length'},
        'gap': {'fit_pk': fit.pk, 'training_set_uuid': fit.outputs.training_set.uuid,
                'validation_set_uuid': fit.outputs.validation_set.uuid,
                'metrics': {q: fit.outputs.metrics.get_dict()[q]['rmse'] for q in ('energy', 'forces', 'virial')}},
        'learner': {'pk': learner.pk, 'exit_status': learner.exit_status, 'outcome': outcome,
                    'iterations': iterations, 'added': n_final - n_initial, 'training_configurations': n_final,
                    'first_fit_pk': fits[0].pk, 'final_fit_pk': fits[-1].pk},
        'runs': results, 'chosen': chosen,
        'tables': {'gaps': {'header': gap_header, 'rows': gap_rows},
                   'learner': {'header': learner_header, 'rows': learner_rows},
                   'volumes': {'header': volume_header, 'rows': volume_rows}},
        'figures': figures,
    }
    summary['finding'] = finding(results, chosen, n_final - n_initial, iterations)
    return common.finish_study(out, STUDY, size, summary)


def finding(results: dict, chosen: str | None, added: int, iterations: int) -> str:
    """One sentence: the thesis's claim (a five-density E+F+V GAP runs stably, then breaks; the learner repairs it)
    and this run's answer: "reproduced" (a sudden break, and the repaired GAP runs the same NPT through), "partly
    reproduced" (a break that is not sudden, or a sudden break the repaired GAP does not survive), or "not reproduced
    at this size" (no run broke: the repair cannot be shown)."""
    claim = ('Thesis 11/13.3: a five-density E+F+V GAP runs NPT stably and then breaks (0.3 ns, 147 configurations); '
             'the active learner adds 33 and the repaired GAP does not break')
    described = '; '.join(
        f"{name}: " + (f"breaks at step {r['breaking_step']} after {100 * r['stable_fraction']:.0f} % stable"
                       if r['breaking_step'] is not None else
                       f"no break, V_eq {npt.percent(r['deviation'], r['deviation_stderr'])} off the classical one")
        for name, r in results.items())
    learner = f'the learner added {added} in {iterations} iteration(s)'
    repaired_holds = results['repaired']['breaking_step'] is None
    if chosen is None:
        verdict = 'not reproduced at this size (no run broke, so the repair cannot be shown)'
    elif results[chosen]['sudden'] and repaired_holds:
        verdict = 'reproduced'
    elif results[chosen]['sudden']:
        verdict = 'the sudden failure reproduced, the repair not (the repaired GAP breaks too)'
    else:
        verdict = ('partly reproduced: the GAP breaks without a stable stretch first'
                   + ('; the repaired GAP does not break' if repaired_holds else '; the repaired GAP breaks too'))
    return f'{claim}; here {described}; {learner}: {verdict}.'


def main(argv=None) -> int:
    return common.study_main(STUDY, __doc__.splitlines()[0], run_study, argv, extra_codes=('explore',))


if __name__ == '__main__':
    sys.exit(main())
