#!/usr/bin/env python
"""Study: an NVT active-learning run on energies and forces and its validation error per refit (thesis 13.3, 13.3.1).

The thesis (section 13.3) tests its active learner on an NVT GAP of molten NaCl trained on energies and forces:
160 initial training configurations, 15 added by the learner; the final GAP's parity on the validation set
(figure 13.2) is close. Section 13.3.1 (figure 13.5) computes the energy RMSE on the validation set, taken from
the same classical MD as the initial training data, after every refit: it fluctuates with the number of added
configurations and does not converge, because the learner adds configurations unlike the validation set.

Here, molten NaCl at 1400 K with the BMHTF + PPPM reference (``common.BMHTF_PPPM``, also the labeller):

1. classical NVT at the demo's state point (``training_volume``; ``nacl_active_learning.training_sampling_builder``
   with the size's sampling), split 50/50 (seed 3, as the demo) into the initial training set and the fixed
   validation set of every refit;
2. ``ActiveLearningWorkChain`` built from its protocol as the demo builds it
   (``nacl_active_learning.active_learning_builder``) with NVT walkers only (every walker and the explorer's own
   parameters ``ensemble: NVT`` at 1400 K and the training volume), GAPs trained on energy and forces only
   (``train_on: [energy, forces]``: gap_fit gets ``virial_parameter_name=__not_trained_virial``), the size's
   novelty threshold, batch and limits;
3. per refit (every ``GapWorkChain`` the learner ran, in order): the energy (eV/atom) and force (eV/Å) RMSE on
   the validation set, each ± a bootstrap standard error over the validation configurations
   (``science.gap.bootstrap_rmse``), against the number of added configurations; the figure of that curve and the
   parity plot of the last GAP.

The finding: the change of the energy RMSE from the initial to the last GAP against two standard errors of that
difference (paired bootstrap: the same resampled configurations for both GAPs); within them the answer is
"inconclusive". The thesis's claim is that the RMSE does not converge (fluctuates).

Sizes: ``tiny`` (the integration test: 32 ions, the fast protocols, one iteration with a strict novelty threshold
so that it adds something; plumbing, not the finding), ``small`` (64 ions, 160 + 161 initial configurations as in
the thesis, three NVT walkers, at most 3 additions per iteration and 15 in all, the moderate protocols), ``large``
(200 ions, the precise protocols, 250 + 251 initial configurations, four walkers; for a cluster, ``--computer``).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_nvt_active_learning.py [--size tiny|small|large] [--out DIR]
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import nacl_active_learning as demo  # noqa: E402

STUDY = 'nacl_nvt_active_learning'
#: The training quantities of every fit (thesis 13.3: energies and forces).
TRAIN_ON = ['energy', 'forces']
#: Seed of the bootstrap resampling of the validation configurations, and the number of resamples.
BOOTSTRAP_SEED, BOOTSTRAP_RESAMPLES = 0, 1000

#: Per size: ions, training volume (Å^3), the sampling overrides of the training NVT run (``training``), the learner's
#: ``protocol``, its NVT ``walkers`` (seeds), the explorer's novelty threshold (``critical_similarity``) and the loop
#: limits (``parameters``: ``max_iterations``, ``max_new_configurations``, ``max_batch``), the ``gap`` overrides
#: (besides ``train_on``).
SIZES = {
    'tiny': {'n_ions': 32, 'training_volume': 1175.0,
             'training': {'equilibration_steps': 100, 'production_steps': 200, 'sampling_interval': 20},
             'protocol': 'fast', 'walkers': [11],
             # a strict threshold so that the 60-step exploration flags something; one iteration, one refit
             'critical_similarity': 0.99999,
             'parameters': {'max_iterations': 1},
             'gap': common.gap_overrides(cutoff=4.5, soap_sparse=20, n_sparse_2b=10, train_on=TRAIN_ON)},
    'small': {'n_ions': 64, 'training_volume': 2350.0,
              # 321 frames 100 fs apart (32 ps): 160 training + 161 validation configurations (thesis: 160)
              'training': {'equilibration_steps': 2000, 'production_steps': 16000, 'sampling_interval': 50},
              'protocol': 'moderate', 'walkers': [11, 23, 37],
              # stricter than the demo's 0.999: NVT walkers at the training density stay at similarity 0.9999 to the
              # 160 training frames (measured with 0.9995: nothing flagged in 75 steps), so the learner adds the
              # first configuration that is not almost a training frame (the thesis's listing, section 13.2: 9999997)
              'critical_similarity': 0.99995,
              # at most 3 per iteration (one trigger per walker): 5 refits for the 15 additions
              'parameters': {'max_iterations': 12, 'max_new_configurations': 15, 'max_batch': 3},
              'gap': {}},
    'large': {'n_ions': 200, 'training_volume': 7500.0,
              'training': {'equilibration_steps': 2000, 'production_steps': 50000, 'sampling_interval': 100},
              'protocol': 'precise', 'walkers': [11, 23, 37, 53], 'critical_similarity': 0.99995,
              'parameters': {'max_iterations': 30, 'max_new_configurations': 15, 'max_batch': 4},
              'gap': demo.SIZES['large']['overrides']['gap']},
}


def learner_size(s: dict) -> dict:
    """The size dict of ``nacl_active_learning.active_learning_builder`` for a size ``s`` of :data:`SIZES`: its
    protocol and the overrides of the ActiveLearningWorkChain protocol (NVT explorer and walkers, E+F fits, the
    novelty threshold and limits); the state point (1400 K) is added by ``nacl_active_learning.study_overrides``."""
    from aiida_mlfail.workflows.protocols import recursive_merge

    overrides = {
        'gap': recursive_merge(s['gap'], {'fit': {'job': {'parameters': {'train_on': list(TRAIN_ON)}}}}),
        'explore': {'job': {'parameters': {'ensemble': 'NVT', 'critical_similarity': s['critical_similarity']}}},
        'walkers': [{'ensemble': 'NVT', 'seed': seed} for seed in s['walkers']],
        'parameters': dict(s['parameters']),
    }
    return {'protocol': s['protocol'], 'overrides': overrides}


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``, ``explore``), print its table,
    write the figures and ``nacl_nvt_active_learning_<size>.json`` into ``out`` and return the summary.

    Exits (``SystemExit`` 1) when the sampling fails or the learner ends with a status other than 0, 701 or 702.
    """
    from aiida import orm

    from aiida_mlfail.calculations.functions import split_training_set

    t0 = time.time()
    s = SIZES[size]
    print(f"== 1. classical BMHTF + PPPM NVT ({s['n_ions']} ions, {demo.TEMPERATURE:.0f} K, "
          f"V = {s['training_volume']:.0f} Å^3): initial training and validation data")
    # NVT (the default ensemble of a state point): the same LAMMPS inputs as the training run of nacl_al_vs_random.py
    # at the same size (a profile with caching, README "Caching", reuses that job)
    sampling = common.sampling_builder(codes, [{'temperature': demo.TEMPERATURE, 'volume': s['training_volume'],
                                                'label': f"nvt_1400K_V{s['training_volume']:.0f}"}],
                                       size=size, n_ions=s['n_ions'], md=s['training'])
    data = common.run_foreground('training NVT', sampling).outputs.pool
    parts = split_training_set(data, orm.Dict({'train_fraction': 0.5, 'seed': 3}))
    # the explorations start from a training configuration (not from the run's last frame, which the split may have
    # put into the validation set: flagged at step 0 it would move a validation configuration into the training set)
    start = parts['train'].get_atoms()[-1]
    print(f"== 2. active learning, NVT walkers (seeds {s['walkers']}), E+F fits, from "
          f"{parts['train'].n_configurations} training configurations ({parts['validation'].n_configurations} "
          f"validation), protocol {s['protocol']}")
    builder = demo.active_learning_builder(codes, {**s, **learner_size(s)}, parts['train'], parts['validation'], start)
    learner = common.run_foreground('active learning', builder, allowed=(0, 701, 702))
    return report(s, size, out, command, t0, learner)


def refits(learner) -> list:
    """The ``GapWorkChain`` nodes the learner ran, in order (the initial fit first)."""
    return sorted((n for n in learner.called if n.process_label == 'GapWorkChain'), key=lambda n: n.ctime)


def validation_errors(fits: list) -> dict:
    """Energy and force RMSE of every fit on the (shared) validation set, with bootstrap standard errors over the
    validation configurations (``science.gap.bootstrap_rmse``, :data:`BOOTSTRAP_RESAMPLES` resamples, seed
    :data:`BOOTSTRAP_SEED`).

    :returns: ``energy`` / ``forces``: ``rmse`` and ``stderr`` lists (eV/atom, eV/Å; one per fit) and
        ``last_minus_initial`` / ``last_minus_initial_stderr`` (the paired difference of the last and the first
        fit's RMSE and the standard deviation of that difference over the same resamples), ``steps`` /
        ``steps_stderr`` (the same for each fit against the one before); ``n`` (configurations).
    :raises ValueError: when the fits were not validated on the same validation set.
    """
    from aiida_mlfail.science.gap import bootstrap_rmse

    validation = fits[0].inputs.validation_set
    if any(f.inputs.validation_set.uuid != validation.uuid for f in fits):
        raise ValueError('the refits were validated on different validation sets')
    reference = validation.get_atoms()
    energy_sq, forces_sq = [], []
    for fit in fits:
        predicted = fit.outputs.predictions.get_atoms()
        energy_sq.append([((p.info['energy'] - r.info['energy']) / len(r)) ** 2 for r, p in zip(reference, predicted)])
        forces_sq.append([np.sum((p.arrays['forces'] - r.arrays['forces']) ** 2) for r, p in zip(reference, predicted)])
    counts = {'energy': None, 'forces': [r.arrays['forces'].size for r in reference]}
    result = {'n': len(reference)}
    for key, sq in (('energy', energy_sq), ('forces', forces_sq)):
        boot = bootstrap_rmse(np.array(sq), counts[key], n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
        difference = boot['resamples'][-1] - boot['resamples'][0]
        steps = np.diff(boot['resamples'], axis=0)
        result[key] = {'rmse': boot['rmse'].tolist(), 'stderr': boot['stderr'].tolist(),
                       'last_minus_initial': float(boot['rmse'][-1] - boot['rmse'][0]),
                       'last_minus_initial_stderr': float(np.std(difference, ddof=1)),
                       'steps': np.diff(boot['rmse']).tolist(),
                       'steps_stderr': (np.std(steps, axis=1, ddof=1) if len(fits) > 1 else np.zeros(0)).tolist()}
    return result


def report(s: dict, size: str, out: pathlib.Path, command: str, t0: float, learner) -> dict:
    """Table, figures and the JSON summary of :func:`run_study`."""
    fits = refits(learner)
    n_initial = fits[0].outputs.training_set.n_configurations
    errors = validation_errors(fits)
    summary_rows = learner.outputs.summary.get_dict()['iterations']
    rows, per_refit = [], []
    for index, fit in enumerate(fits):
        metrics = fit.outputs.metrics.get_dict()
        n_train = fit.outputs.training_set.n_configurations
        e, e_se = errors['energy']['rmse'][index], errors['energy']['stderr'][index]
        f, f_se = errors['forces']['rmse'][index], errors['forces']['stderr'][index]
        per_refit.append({'fit_pk': fit.pk, 'training_configurations': n_train, 'added': n_train - n_initial,
                          'energy_rmse_eV_atom': e, 'energy_rmse_stderr': e_se,
                          'forces_rmse_eV_A': f, 'forces_rmse_stderr': f_se,
                          'energy_offset_eV_atom': metrics['energy']['offset']})
        rows.append([index, n_train - n_initial, n_train, common.with_error(1000 * e, 1000 * e_se, '.2f'),
                     common.with_error(f, f_se, '.3f'), f"{1000 * metrics['energy']['offset']:+.2f}"])
    header = ['refit', 'added', 'training configurations', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)',
              'E offset (meV/atom)']
    print()
    print(f"learner <{learner.pk}>: {learner.outputs.summary.get_dict()['outcome']} after {len(summary_rows)} "
          f'iteration(s); validation errors per refit ({errors["n"]} validation configurations, bootstrap '
          'standard errors):')
    common.print_table(header, rows)

    # the added configurations against the validation set (the thesis's explanation: they are unlike it)
    validation = fits[0].inputs.validation_set.get_atoms()
    added = learner.outputs.training_set.get_atoms()[n_initial:]
    validation_energies = np.array([a.info['energy'] / len(a) for a in validation])
    added_energies = np.array([a.info['energy'] / len(a) for a in added])

    out.mkdir(parents=True, exist_ok=True)
    figures = [f'validation_rmse_{size}.png', f'parity_final_{size}.png']
    plot_curve(per_refit, out / figures[0], s, errors['n'])
    common.export(fits[-1].outputs.parity_plot, out, figures[1])

    walkers = [w for row in summary_rows for w in row['walkers']]
    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'training_volume_A3': s['training_volume'],
                  'temperature_K': demo.TEMPERATURE, 'training_sampling': s['training'],
                  'initial_training_configurations': n_initial, 'validation_configurations': errors['n'],
                  'added_configurations': learner.outputs.training_set.n_configurations - n_initial,
                  'refits': len(fits) - 1, 'iterations': len(summary_rows), 'learner_protocol': s['protocol'],
                  'walkers': learner_size(s)['overrides']['walkers'], 'critical_similarity': s['critical_similarity'],
                  'learner_parameters': s['parameters'], 'train_on': TRAIN_ON,
                  'bootstrap_resamples': BOOTSTRAP_RESAMPLES},
        'learner': {'pk': learner.pk, 'exit_status': learner.exit_status,
                    'outcome': learner.outputs.summary.get_dict()['outcome'],
                    'exploration_steps': [w['steps'] for w in walkers],
                    'stop_reasons': [w['stop_reason'] for w in walkers]},
        'refits': per_refit,
        'differences': {key: {k: errors[key][k] for k in ('last_minus_initial', 'last_minus_initial_stderr', 'steps',
                                                          'steps_stderr')}
                        for key in ('energy', 'forces')},
        'energies_eV_atom': {'validation_mean': float(validation_energies.mean()),
                             'validation_std': float(validation_energies.std(ddof=1)),
                             'validation_range': [float(validation_energies.min()), float(validation_energies.max())],
                             'added': added_energies.tolist()},
        'tables': {'refits': {'header': header, 'rows': rows}},
        'figures': figures,
    }
    summary['finding'] = finding(per_refit, errors)
    return common.finish_study(out, STUDY, size, summary)


def plot_curve(per_refit: list, path: pathlib.Path, s: dict, n_validation: int) -> None:
    """Energy (meV/atom) and force (eV/Å) RMSE on the validation set against the number of added configurations,
    with the bootstrap standard errors as error bars (thesis figure 13.5 shows the energy)."""
    from aiida_mlfail.science.plots import plt

    added = [r['added'] for r in per_refit]
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(9.0, 3.8))
    ax_e.errorbar(added, [1000 * r['energy_rmse_eV_atom'] for r in per_refit],
                  yerr=[1000 * r['energy_rmse_stderr'] for r in per_refit], marker='o', capsize=3)
    ax_e.set_ylabel('energy RMSE (meV/atom)')
    ax_f.errorbar(added, [r['forces_rmse_eV_A'] for r in per_refit], yerr=[r['forces_rmse_stderr'] for r in per_refit],
                  marker='s', capsize=3, color='C1')
    ax_f.set_ylabel('force RMSE (eV/Å)')
    for ax in (ax_e, ax_f):
        ax.set_xlabel('configurations added by the active learner')
    fig.suptitle(f"NVT active learning on E+F, NaCl {s['n_ions']} ions, {demo.TEMPERATURE:.0f} K: validation set of "
                 f'{n_validation} classical NVT configurations', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def finding(per_refit: list, errors: dict) -> str:
    """One sentence: the thesis's claim (13.3.1) and this run's energy RMSE from the first to the last GAP, with the
    verdict "falls" / "rises" (beyond two standard errors of the paired difference) or "inconclusive"."""
    claim = ('Thesis 13.3.1 (fig. 13.5): the validation energy RMSE of the NVT E+F GAP fluctuates with the '
             'configurations the learner adds and does not converge')
    if len(per_refit) < 2:
        return f'{claim}; here the learner added none: inconclusive (one GAP only).'
    first, last = per_refit[0], per_refit[-1]
    d, d_se = errors['energy']['last_minus_initial'], errors['energy']['last_minus_initial_stderr']
    verdict = 'inconclusive (within two standard errors)' if abs(d) <= 2 * d_se else ('falls' if d < 0 else 'rises')
    values = [1000 * r['energy_rmse_eV_atom'] for r in per_refit]
    return (f"{claim}; here, over {len(per_refit) - 1} refit(s) adding {last['added']} configurations, it goes from "
            f"{1000 * first['energy_rmse_eV_atom']:.2f} ± {1000 * first['energy_rmse_stderr']:.2f} to "
            f"{1000 * last['energy_rmse_eV_atom']:.2f} ± {1000 * last['energy_rmse_stderr']:.2f} meV/atom "
            f'(difference {1000 * d:+.2f} ± {1000 * d_se:.2f}, paired bootstrap; refits range '
            f'{min(values):.2f}-{max(values):.2f}): {verdict}.')


def main(argv=None) -> int:
    return common.study_main(STUDY, __doc__.splitlines()[0], run_study, argv, extra_codes=('explore',))


if __name__ == '__main__':
    sys.exit(main())
