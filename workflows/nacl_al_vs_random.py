#!/usr/bin/env python
"""Study: active learning against as many configurations added at random or uniformly in energy (thesis 13.3).

The thesis (section 13.3) repairs a single-density GAP by active learning and leaves open whether the
configurations the learner picked do better than the same number of configurations picked without it. Here,
molten NaCl at 1400 K with the BMHTF + PPPM reference (``common.BMHTF_PPPM``, labeller of every set):

1. classical NVT at the training volume (``training_volume``: the initial data, split 50/50 into the initial
   training and the fixed validation set, seed 3, as the demo ``nacl_active_learning.py`` does), classical NVT
   sampling at five volumes (``pool_volumes``, another seed: the *pool* of the random and uniform additions; it
   spans the densities the learner visits in NPT, which the summary records) and the classical NPT reference at
   1 bar (production as long as the verification runs);
2. ``ActiveLearningWorkChain`` built from its protocol as the demo builds it
   (``nacl_active_learning.active_learning_builder``): its first fit is the initial GAP; it adds N configurations;
3. N configurations of the pool chosen (a) at random and (b) uniformly in energy per atom
   (``science.selection``: flat-histogram draw, ``flat_histogram_weights``), seed :data:`PICK_SEED`, each added
   to the same initial training set and refit with the inputs of the learner's last fit (same gap_fit settings,
   same validation set; ``get_builder_restart``);
4. the four GAPs (initial, active learning, random, uniform) run the same NPT (1400 K, 1 bar, seed
   :data:`nacl_npt_failure.NPT_SEED`, same steps, from the last frame of the training NVT run); each equilibrium
   volume is the mean over the production window after its first ``skip`` fraction (before the break, if it
   breaks) with a block standard error, against the classical one; a run *breaks* at the first frame above
   1.5 x the classical volume (the guard halts it at 3 x).

The finding compares |V_eq / V_ref - 1| of the active-learning GAP with that of the random and uniform ones: a
difference within two combined standard errors is "inconclusive"; a GAP that breaks loses to one that does not.

Sizes: ``tiny`` (the integration test: 32 ions, a 2-volume pool, the fast protocols, one learner iteration with a
strict novelty threshold so that it adds something, 50 NPT steps; plumbing, not the finding), ``small`` (64 ions,
the demo's learner and data, 5-volume pool of 81 frames each, 5 ps NPT verification; about 40 minutes on 2 cores),
``large`` (200 ions, the precise protocols, 100 ps verification; for a cluster, ``--computer``).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_al_vs_random.py [--size tiny|small|large] [--out DIR]
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import nacl_active_learning as demo  # noqa: E402
import nacl_npt_failure as npt  # noqa: E402

STUDY = 'nacl_al_vs_random'
#: Seed of the random and the uniform-in-energy picks from the pool.
PICK_SEED = 17
#: Seed of the pool's classical sampling (not the training run's: the pool must not repeat its frames).
POOL_SEED = 101
#: The selection methods of the additions without active learning (``science.selection``).
PICKS = {'random': 'random', 'uniform in energy': 'uniform_energy'}

#: Per size: ions, training volume (Å^3), pool volumes, the sampling overrides of the training run (``training``)
#: and of the pool (``pool``), the learner's ``protocol`` and its ``overrides`` (of the ActiveLearningWorkChain
#: protocol; ``nacl_active_learning.study_overrides`` adds the state point), steps of the NPT verification runs and
#: of the classical NPT production (``md_steps``, 2 fs), averaging (``skip``), thermo and dump intervals.
SIZES = {
    # tiny: the CI budget (45 s) sets it: 11 frames per state point in 100 steps, a 2-volume pool, 50 NPT steps
    'tiny': {'n_ions': 32, 'training_volume': 1175.0, 'pool_volumes': [975, 1375],
             'training': {'equilibration_steps': 100, 'production_steps': 100, 'sampling_interval': 10},
             'pool': {'equilibration_steps': 100, 'production_steps': 100, 'sampling_interval': 10},
             'protocol': 'fast',
             # one iteration; a strict novelty threshold so that the 60-step exploration flags something
             'overrides': {'gap': common.gap_overrides(cutoff=4.5, soap_sparse=20, n_sparse_2b=10),
                           'explore': {'job': {'parameters': {'critical_similarity': 0.99999}}},
                           'parameters': {'max_iterations': 1}},
             'md_steps': 50, 'skip': 0.2, 'thermo': 5, 'dump': 10},
    'small': {'n_ions': 64, 'training_volume': 2350.0, 'pool_volumes': common.NACL_VOLUMES,
              'training': {}, 'pool': {'equilibration_steps': 2000, 'production_steps': 4000, 'sampling_interval': 50},
              'protocol': 'moderate', 'overrides': {},
              'md_steps': 2500, 'skip': 0.2, 'thermo': 25, 'dump': 50},
    'large': {'n_ions': 200, 'training_volume': 7500.0, 'pool_volumes': [6000, 6750, 7500, 8250, 9000],
              'training': {},
              'pool': {'equilibration_steps': 2000, 'production_steps': 50000, 'sampling_interval': 100},
              'protocol': 'precise', 'overrides': demo.SIZES['large']['overrides'],
              'md_steps': 50000, 'skip': 0.2, 'thermo': 25, 'dump': 100},
}


def sampling_builders(codes, s: dict, size: str) -> dict:
    """The three classical runs: the training NVT (one volume), the pool (NVT at ``pool_volumes``, seed
    :data:`POOL_SEED`) and the NPT reference (1 bar, production of ``md_steps``)."""
    training = [{'temperature': npt.TEMPERATURE, 'volume': s['training_volume'],
                 'label': f"nvt_1400K_V{s['training_volume']:.0f}"}]
    pool = [{'temperature': npt.TEMPERATURE, 'volume': float(v), 'label': f'nvt_V{v:.0f}'} for v in s['pool_volumes']]
    reference = [{'temperature': npt.TEMPERATURE, 'ensemble': 'NPT', 'pressure': npt.PRESSURE,
                  'volume': s['training_volume'], 'label': 'npt_1bar'}]
    equilibration = {k: v for k, v in s['pool'].items() if k == 'equilibration_steps'}
    return {
        'training NVT': common.sampling_builder(codes, training, size=size, n_ions=s['n_ions'], md=s['training']),
        'pool NVT': common.sampling_builder(codes, pool, size=size, n_ions=s['n_ions'],
                                            md={**s['pool'], 'seed': POOL_SEED}),
        'classical NPT': common.sampling_builder(
            codes, reference, size=size, n_ions=s['n_ions'],
            md={**equilibration, 'production_steps': s['md_steps'], 'sampling_interval': s['dump'],
                'thermo_interval': s['thermo'], 'seed': 99}),
    }


def picks(pool, n: int):
    """``{name: TrainingSetData}``: ``n`` configurations of ``pool`` per method of :data:`PICKS` (seed
    :data:`PICK_SEED`, ``select_configurations``: each keeps its ``pool_index``)."""
    from aiida import orm

    from aiida_mlfail.calculations.functions import select_configurations

    return {name: select_configurations(pool, orm.Dict({'method': method, 'n': n, 'seed': PICK_SEED}))
            for name, method in PICKS.items()}


def refit_builder(final_fit, training_set):
    """The learner's last ``GapWorkChain`` again (same gap_fit and quip inputs, same validation set) on
    ``training_set``."""
    builder = final_fit.get_builder_restart()
    builder.pool = training_set
    return builder


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``, ``explore``), print its tables,
    write the figures and ``nacl_al_vs_random_<size>.json`` into ``out`` and return the summary written there.

    Exits (``SystemExit`` 1) when a WorkChain ends with a status the study does not accept (the learner: 0, 701,
    702; the NPT runs: 0, 410).
    """
    from aiida import orm

    from aiida_mlfail.calculations.functions import merge_training_sets, split_training_set

    t0 = time.time()
    s = SIZES[size]
    print(f"== 1. classical BMHTF + PPPM ({s['n_ions']} ions, {npt.TEMPERATURE:.0f} K): NVT at "
          f"{s['training_volume']:.0f} Å^3 (initial data), NVT at {s['pool_volumes']} Å^3 (pool), NPT at 1 bar")
    runs = common.Runs()
    for name, builder in sampling_builders(codes, s, size).items():
        runs.start(name, builder)
    sampled = runs.wait('training NVT')['training NVT']
    data = sampled.outputs.pool
    parts = split_training_set(data, orm.Dict({'train_fraction': 0.5, 'seed': 3}))
    start = data.get_atoms()[-1]
    print(f"== 2. active learning from {parts['train'].n_configurations} training configurations "
          f"({parts['validation'].n_configurations} validation), protocol {s['protocol']}")
    runs.start('active learning', demo.active_learning_builder(codes, s, parts['train'], parts['validation'], start))
    learner = runs.wait('active learning', allowed=(0, 701, 702))['active learning']
    fits = sorted((n for n in learner.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    initial_fit, final_fit = fits[0], fits[-1]
    n_initial = initial_fit.outputs.training_set.n_configurations
    n_added = learner.outputs.training_set.n_configurations - n_initial
    pool = runs.wait('pool NVT')['pool NVT'].outputs.pool
    print(f'the learner added N = {n_added} configurations ({learner.outputs.summary.get_dict()["outcome"]})')

    gaps = {'initial': initial_fit, 'active learning': final_fit}
    picked = {}
    if n_added:
        print(f'== 3. N = {n_added} of the {pool.n_configurations} pool configurations at random and uniformly in '
              'energy, each added to the initial training set, refit with the learner\'s last fit\'s inputs')
        picked = picks(pool, n_added)
        for name, chosen in picked.items():
            merged = merge_training_sets(base=initial_fit.outputs.training_set, new=chosen)
            runs.start(f'GAP {name}', refit_builder(final_fit, merged))
    else:
        print('== 3. the learner added nothing: no random / uniform additions to compare')
    classical = runs.wait('classical NPT')['classical NPT']
    classical_thermo = classical.outputs.sampled.npt_1bar.thermo
    reference = npt.volume_statistics(classical_thermo, s['skip'], s['pool']['equilibration_steps'])
    v_ref = reference['mean']
    print(f"classical NPT equilibrium volume: {common.with_error(v_ref, reference['stderr'], '.0f')} Å^3")

    print(f"== 4. NPT of every GAP ({s['md_steps']} steps of {npt.TIMESTEP:.0f} fs, seed {npt.NPT_SEED}) from the "
          f'last training NVT frame; break at {npt.BREAK_FACTOR} x, guard at {npt.GUARD_FACTOR} x {v_ref:.0f} Å^3; '
          'the learner\'s GAPs start while the refits run')
    parameters = {'ensemble': 'NPT', 'temperature': npt.TEMPERATURE, 'pressure': npt.PRESSURE,
                  'timestep': npt.TIMESTEP, 'steps': s['md_steps'], 'dump_interval': s['dump'],
                  'thermo_interval': s['thermo'], 'seed': npt.NPT_SEED, 'reference_volume': v_ref,
                  'breaking_factor': npt.BREAK_FACTOR, 'guards': {'volume_factor': npt.GUARD_FACTOR}}
    structure = orm.StructureData(ase=start)

    def verify(name, fit):
        runs.start(f'NPT {name}', common.mlmd_builder(codes, fit.outputs.potential, structure, parameters, size=size,
                                                      equilibrium_thermo=classical_thermo))

    for name, fit in gaps.items():
        verify(name, fit)
    if picked:
        refits = runs.wait(*(f'GAP {name}' for name in picked))
        for name in picked:
            gaps[name] = refits[f'GAP {name}']
            verify(name, gaps[name])
    md = runs.wait(*(f'NPT {name}' for name in gaps), allowed=(0, 410))
    return report(s, size, out, command, t0, learner, gaps, picked, pool, md, classical_thermo, reference, n_added)


def verification(node, v_ref: float, reference: dict, skip: float) -> dict:
    """Stop, breaking step and equilibrium volume (before the break, if any) of one NPT run ``node``."""
    from aiida_mlfail.science.observables import breaking_step

    thermo = node.outputs.thermo
    steps, volume = thermo.get_array('step'), thermo.get_array('volume')
    stop = node.outputs.stop.get_dict()
    broke = breaking_step(steps, volume, v_ref, npt.BREAK_FACTOR)
    if broke is None and stop.get('stop_reason') == 'volume_blowup':  # halted between two thermo frames
        broke = stop.get('stop_step')
    stats = npt.volume_statistics(thermo, skip)
    if broke is not None:
        stats = {**npt.volume_statistics_until(thermo, skip, broke), 'note': 'mean up to the break'}
    deviation, error = npt.relative_deviation(stats, reference)
    return {'pk': node.pk, 'exit_status': node.exit_status, 'stop_reason': stop.get('stop_reason'),
            'stop_step': stop.get('stop_step'), 'breaking_step': broke, 'volume': stats,
            'deviation': deviation, 'deviation_stderr': error}


def report(s, size, out, command, t0, learner, gaps, picked, pool, md, classical_thermo, reference, n_added) -> dict:
    """Tables, figures and the JSON summary of :func:`run_study`."""
    from aiida_mlfail.science.plots import plt

    v_ref = reference['mean']
    n_initial = gaps['initial'].outputs.training_set.n_configurations
    added_atoms = learner.outputs.training_set.get_atoms()[n_initial:]
    added = {'active learning': added_atoms, **{name: node.get_atoms() for name, node in picked.items()}}
    gap_rows, volume_rows, results = [], [], {}
    for name, fit in gaps.items():
        metrics = fit.outputs.metrics.get_dict()
        training = fit.outputs.training_set
        run = verification(md[f'NPT {name}'], v_ref, reference, s['skip'])
        configurations = added.get(name, [])
        results[name] = {
            'fit_pk': fit.pk, 'training_configurations': training.n_configurations,
            'added': training.n_configurations - n_initial,
            'added_volumes_A3': [float(a.get_volume()) for a in configurations],
            'added_energies_eV_atom': [float(a.info['energy'] / len(a)) for a in configurations],
            'pool_indices': [int(a.info['pool_index']) for a in configurations] if name in picked else None,
            'gap_metrics': {q: metrics[q]['rmse'] for q in ('energy', 'forces', 'virial')}, 'npt': run}
        gap_rows.append([name, training.n_configurations, training.n_configurations - n_initial,
                         f"{1000 * metrics['energy']['rmse']:.2f}", f"{metrics['forces']['rmse']:.3f}",
                         f"{1000 * metrics['virial']['rmse']:.1f}"])
        volume_rows.append([f'GAP {name}', run['stop_reason'], npt.fmt_step(run['breaking_step']),
                            common.with_error(run['volume']['mean'], run['volume']['stderr'], '.0f'),
                            npt.percent(run['deviation'], run['deviation_stderr'])])
    volume_rows.append(['classical BMHTF + PPPM', 'completed', '-',
                        common.with_error(v_ref, reference['stderr'], '.0f'), '0'])
    gap_header = ['GAP', 'training configurations', 'added', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)',
                  'virial RMSE (meV/atom)']
    volume_header = ['run', 'stop', f'breaking step (V > {npt.BREAK_FACTOR} V_ref)', 'V_eq (Å^3)',
                     'V_eq / V_ref - 1']
    print()
    common.print_table(gap_header, gap_rows)
    print()
    common.print_table(volume_header, volume_rows)

    out.mkdir(parents=True, exist_ok=True)
    figures = [f'volume_traces_{size}.png', f'added_configurations_{size}.png']
    fig, ax = plt.subplots(figsize=(6.4, 4))
    steps, volume = classical_thermo.get_array('step'), classical_thermo.get_array('volume')
    production = steps >= s['pool']['equilibration_steps']
    ax.plot((steps[production] - steps[production][0]) * npt.TIMESTEP / 1000, volume[production], lw=1, color='k',
            label='classical NPT (production)')
    for name in gaps:
        thermo = md[f'NPT {name}'].outputs.thermo
        steps = thermo.get_array('step')
        ax.plot((steps - steps[0]) * npt.TIMESTEP / 1000, thermo.get_array('volume'), lw=1, label=f'GAP {name}')
    ax.axhline(v_ref, color='k', lw=0.8, ls=':', label='classical V_eq')
    ax.axhline(npt.BREAK_FACTOR * v_ref, color='red', ls='--', lw=1, label=f'{npt.BREAK_FACTOR} V_eq (break)')
    ax.set_xlabel('time in the NPT run (ps)')
    ax.set_ylabel('volume (Å$^3$)')
    ax.set_title(f"NaCl, {s['n_ions']} ions, {npt.TEMPERATURE:.0f} K, {npt.PRESSURE:.0f} bar; N = {n_added} added")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / figures[0], dpi=100)
    plt.close(fig)

    pool_atoms = pool.get_atoms()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter([a.get_volume() for a in pool_atoms], [a.info['energy'] / len(a) for a in pool_atoms], s=6,
               color='0.75', label=f'pool ({len(pool_atoms)})')
    for (name, configurations), marker in zip(added.items(), ('o', 's', '^')):
        ax.scatter([a.get_volume() for a in configurations], [a.info['energy'] / len(a) for a in configurations],
                   s=30, marker=marker, facecolors='none', edgecolors=f'C{list(added).index(name)}',
                   label=f'{name} ({len(configurations)})')
    ax.set_xlabel('volume (Å$^3$)')
    ax.set_ylabel('energy per atom (eV)')
    ax.set_title('added configurations (BMHTF + PPPM labels)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / figures[1], dpi=100)
    plt.close(fig)
    figures.append(common.export(learner.outputs.convergence_plot, out, f'active_learning_{size}.png').name)

    learner_volumes = results['active learning']['added_volumes_A3']
    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'training_volume_A3': s['training_volume'],
                  'initial_training_configurations': n_initial,
                  'validation_configurations': gaps['initial'].outputs.validation_set.n_configurations,
                  'pool_volumes_A3': s['pool_volumes'], 'pool_configurations': pool.n_configurations,
                  'added_configurations': n_added, 'learner_protocol': s['protocol'],
                  'npt_steps': s['md_steps'], 'npt_ps': s['md_steps'] * npt.TIMESTEP / 1000,
                  'averaged_from_fraction': s['skip'], 'blocks': npt.BLOCKS, 'temperature_K': npt.TEMPERATURE,
                  'pressure_bar': npt.PRESSURE, 'timestep_fs': npt.TIMESTEP, 'pick_seed': PICK_SEED},
        'learner': {'pk': learner.pk, 'exit_status': learner.exit_status,
                    'outcome': learner.outputs.summary.get_dict()['outcome'],
                    'added_volume_range_A3': [min(learner_volumes), max(learner_volumes)] if learner_volumes else None},
        'pool': {'pk': pool.pk, 'source': 'classical BMHTF + PPPM NVT at pool_volumes_A3 (seed '
                 f'{POOL_SEED}), the densities the learner visits in NPT'},
        'reference_volume': {**reference, 'source': 'classical BMHTF + PPPM NPT of this study, same window length'},
        'gaps': results,
        'tables': {'gaps': {'header': gap_header, 'rows': gap_rows},
                   'volumes': {'header': volume_header, 'rows': volume_rows}},
        'figures': figures,
    }
    summary['finding'] = finding(results, n_added)
    return common.finish_study(out, STUDY, size, summary)


def compare(a: dict, b: dict) -> str:
    """``'better'``, ``'worse'`` or ``'inconclusive'``: the NPT run ``a`` against ``b`` (entries of the summary's
    ``gaps[...]['npt']``): a run that breaks loses to one that does not; otherwise the smaller |V_eq / V_ref - 1|
    wins when the difference exceeds two combined standard errors."""
    broke_a, broke_b = a['breaking_step'] is not None, b['breaking_step'] is not None
    if broke_a != broke_b:
        return 'worse' if broke_a else 'better'
    if a['deviation'] is None or b['deviation'] is None:
        return 'inconclusive'
    difference = abs(b['deviation']) - abs(a['deviation'])
    margin = 2 * np.hypot(a['deviation_stderr'] or 0.0, b['deviation_stderr'] or 0.0)
    if abs(difference) <= margin:
        return 'inconclusive'
    return 'better' if difference > 0 else 'worse'


def finding(results: dict, n_added: int) -> str:
    """One sentence: the thesis's open question and this run's answer per alternative."""
    question = ('Thesis 13.3 leaves open whether active learning beats adding the same number of configurations '
                'at random or uniformly in energy')
    if not n_added:
        return f'{question}; here the learner added none: no comparison.'
    al = results['active learning']['npt']
    parts = []
    for name in PICKS:
        verdict = compare(al, results[name]['npt'])
        parts.append(f'against {name}: {verdict}' + (' (within two standard errors)' if verdict == 'inconclusive'
                                                      else ''))

    def describe(run):
        if run['breaking_step'] is not None:
            return f"breaks at step {run['breaking_step']}"
        return f"{100 * run['deviation']:+.1f} ± {100 * (run['deviation_stderr'] or 0):.1f} %"
    volumes = '; '.join(f'{name} {describe(r["npt"])}' for name, r in results.items())
    return f'{question}; here, at N = {n_added} (V_eq vs classical: {volumes}), active learning {"; ".join(parts)}.'


def main(argv=None) -> int:
    return common.study_main(STUDY, __doc__.splitlines()[0], run_study, argv, extra_codes=('explore',))


if __name__ == '__main__':
    sys.exit(main())
