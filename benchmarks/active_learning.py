"""Active learning with 1, 2 and 4 walkers on the demo-sized problem (``workflows/nacl_active_learning.py --size
small``, the ``make demo`` job): wall time to the end of the loop, labels, refits, the final GAP's equilibrium
volume error and the orchestration overhead per iteration, with ratios against the 1-walker baseline. Not a test.

The initial data (the single-density NVT sampling) and the classical NPT reference are made once and shared; then
one ``ActiveLearningWorkChain`` per walker count runs alone through the daemon (the demo's builder, the
``moderate`` protocol, with ``walkers`` = N walkers at the state point with seeds 11, 23, 35, ...), and the final
GAP of each runs NPT from the same start (the demo's verification run) for the equilibrium volume.

Orchestration overhead = wall time of the run minus the time during which at least one of its programs ran (the
union of the jobs' intervals; a job's interval runs from the mtime of its ``_aiidasubmit.sh`` to the newest mtime
in its working directory, read from the job node's ``remote_folder``; so the time of uploads, scheduler polls,
retrieval, parsing, calcfunctions and the daemon's steps is overhead; the wait between the upload and the
scheduler's start of a job counts as program time, so the overhead is a lower bound), divided by the number of
explorations (iterations; the initial fit is in the wall time too). ``--quick``: explorations of 500 steps
(instead of 2000), at most 6 iterations, a 4000-step classical NPT reference and 1000-step verification runs.

    AIIDA_PATH=... python benchmarks/active_learning.py [--walkers 1 2 4] [--quick] [--computer localhost]

``--split-steps``: each of N walkers explores ``max_steps`` / N steps, so an iteration explores as many steps as the
1-walker run's, in 1/N of the time when there are N cores. ``--first-seed``: another draw of the same problem.

Measured on 2026-11-30 on this 2-core machine, the daemon with 2 workers, nothing else running unless noted;
classical NPT reference 2462 ± 27 Å^3; every run with ``--split-steps`` (2000, 1000, 500 steps per walker):

    AIIDA_PATH=<profile> python benchmarks/active_learning.py --walkers 1 2 4 --split-steps [--first-seed 101]
        [--computer slurm] --sampling 4258 --reference 4250   # the shared sampling and reference of a first run

======  =======  ======  ==========  =====  ========  ===========  ================  =============
draw    walkers  run     iterations  added  wall (s)  vs 1 walker  overhead/it (s)   volume error
======  =======  ======  ==========  =====  ========  ===========  ================  =============
A (11)  1        7248    3           2      236       1            9.0               -1.5 %
A (11)  2        5375    5           5      439       1.86         8.4               -7.7 %
A (11)  4        5723    2           4      171       0.72         11.5              -1.4 %
B (101) 1        6460    6           5      413       1            9.4               -4.3 %
B (101) 2        6813    2           2      153       0.37         8.5               -0.7 %
B (101) 4        6966    3           4      272       0.66         10.0              -5.1 %
======  =======  ======  ==========  =====  ========  ===========  ================  =============

Draw A's 2-walker run shared the machine with about a minute of unit tests. Draw A's 1-walker run 7248 is run
4313 repeated alone (``--walkers 1``): 4313 had taken 389 s at a load average of 3-4, with the same iterations,
labels and volume. On the local SLURM cluster
(``--computer slurm --walkers 1 2``, draw A): 1 walker 270 s (run 5920), 12.2 s overhead per iteration, -1.5 %;
2 walkers 437 s (1.62 x, run 6108), 14.8 s per iteration, -7.7 % (the same 5 configurations as on localhost).

- **2 walkers in at most 60 % of the 1-walker time at an equal or smaller volume error:** met in draw B (0.37 x,
  -0.7 % against -4.3 %), not in draw A (1.86 x, -7.7 % against -1.5 %). Over both draws 2 walkers took 592 s
  against 649 s (0.91 x), 4 walkers 443 s (0.68 x). Which run ends first depends on when the novelty check flags,
  and one draw per walker count is one sample.
- **Orchestration overhead at most 10 s per iteration:** met by 1 and 2 walkers on localhost (8.4-9.4 s), not
  by 4 walkers (10.0-11.5 s) or on SLURM (12.2-14.8 s; each job goes through ``sbatch`` and ``squeue``, polled
  every 2 s).
- Without ``--split-steps`` (every walker 2000 steps; draw A, earlier the same day, the 1- and 2-walker runs at a
  load average of 3-4): 1 walker 389 s (run 4313), 2 walkers 822 s (run 4501), 4 walkers 1138 s (run 4901), with
  -1.5 / -7.7 / -3.5 %: every walker must run its 2000 steps without a flag in the same iteration.

Needs a profile with a running daemon and the codes of ``scripts/setup-aiida.sh`` (``lammps``, ``gap_fit``,
``quip``, ``explore`` on ``--computer``; ``--computer slurm`` needs the local SLURM cluster of
``scripts/slurm-cluster.sh`` up when ``setup-aiida.sh`` ran).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'workflows'))
sys.path.insert(0, str(ROOT))

#: Overrides of ``--quick`` (explore job parameters, loop limits) and the study's run lengths.
QUICK = {'explore': {'job': {'parameters': {'max_steps': 500}}}, 'parameters': {'max_iterations': 6}}
QUICK_STEPS = {'npt_steps': 4000, 'verification_steps': 1000}


def walker_list(n: int, first_seed: int = 11) -> list[dict]:
    """N walkers at the builder's state point with seeds ``first_seed`` + 0, 12, 24, ... (default 11, 23, 35, ...;
    the first is the 1-walker baseline's)."""
    return [{'seed': first_seed + 12 * i} for i in range(n)]


def split_steps(parameters: dict, n: int) -> dict:
    """Explorer ``parameters`` with ``max_steps`` divided among ``n`` walkers (``--split-steps``): every walker runs
    ``max_steps // n`` steps, so an iteration of n walkers explores as many steps as one of the 1-walker run."""
    return {**parameters, 'max_steps': parameters['max_steps'] // n}


def job_interval(job) -> tuple[float, float] | None:
    """(start, end) epoch seconds of a job's program: mtime of ``_aiidasubmit.sh`` to the newest mtime in its
    working directory (``remote_folder``, local or mounted); ``None`` when the folder is not readable here."""
    if 'remote_folder' not in job.outputs:
        return None
    path = pathlib.Path(job.outputs.remote_folder.get_remote_path())
    script = path / '_aiidasubmit.sh'
    if not script.exists():
        return None
    start = script.stat().st_mtime
    end = max((p.stat().st_mtime for p in path.rglob('*') if p.is_file()), default=start)
    return start, end


def union_length(intervals) -> float:
    """Total length (s) of the union of (start, end) intervals."""
    total, current = 0.0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    return total + (current[1] - current[0] if current else 0.0)


def run_figures(run, wall: float) -> dict:
    """Iterations, labels, refits, program time by kind and the overhead of a finished run."""
    from aiida import orm
    from aiida.common.links import LinkType

    summary = run.outputs.summary.get_dict()
    iterations = len(summary['iterations'])
    links = run.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all()
    labels = sum(len(link.node.base.links.get_incoming(link_label_filter='structures__%').all())
                 for link in links if link.link_label.startswith('label_iteration_'))
    refits = sum(1 for link in links if link.link_label.startswith('fit_iteration_') and
                 not link.link_label.endswith('_0'))
    jobs = [n for n in run.called_descendants if isinstance(n, orm.CalcJobNode)]
    intervals, by_kind = [], {}
    for job in jobs:
        interval = job_interval(job)
        if interval is None:
            continue
        intervals.append(interval)
        by_kind[job.process_label] = by_kind.get(job.process_label, 0.0) + interval[1] - interval[0]
    inside = union_length(intervals)
    return {'outcome': summary['outcome'], 'iterations': iterations, 'labels': labels, 'refits': refits,
            'added': run.outputs.training_set.n_configurations - summary['iterations'][0]['training_set_size'],
            'wall': wall, 'inside': inside, 'overhead_per_iteration': (wall - inside) / max(iterations, 1),
            'jobs': len(jobs), 'timed_jobs': len(intervals), 'by_kind': by_kind}


def wait_for(node, poll: float = 1.0) -> float:
    """Wall time (s) of ``node``, from its creation to its last change (its termination), after waiting for it."""
    while not node.is_terminated:
        time.sleep(poll)
    return (node.mtime - node.ctime).total_seconds()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--walkers', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--quick', action='store_true', help='shorter explorations and verification runs')
    parser.add_argument('--computer', default='localhost')
    parser.add_argument('--sampling', type=int, help='PK of a finished NVT sampling of this benchmark to reuse')
    parser.add_argument('--reference', type=int, help='PK of a finished classical NPT reference to reuse')
    parser.add_argument('--split-steps', action='store_true',
                        help="each of N walkers explores max_steps / N steps (the 1-walker run's exploration per "
                             'iteration, shared), instead of max_steps each')
    parser.add_argument('--first-seed', type=int, default=11,
                        help='seed of walker 0; walker i gets first_seed + 12 i (another draw of the same problem)')
    parser.add_argument('--run', action='append', default=[], metavar='N=PK',
                        help='reuse the finished ActiveLearningWorkChain PK as the run with N walkers')
    args = parser.parse_args(argv)
    reuse = {int(n): int(pk) for n, pk in (item.split('=') for item in args.run)}

    import common
    import nacl_active_learning as study
    from aiida import load_profile, orm
    from aiida.engine import submit
    from tabulate import tabulate

    from aiida_mlfail.calculations.functions import split_training_set
    from aiida_mlfail.workflows.protocols import recursive_merge

    load_profile()
    s = dict(study.SIZES['small'])
    if args.quick:
        s.update(QUICK_STEPS, overrides=recursive_merge(s['overrides'], QUICK))
    codes = common.load_codes(args.computer, extra=('explore',))
    print(f"== benchmark: active learning with walkers {args.walkers} ({'quick' if args.quick else 'full'}; "
          f'{os.cpu_count()} cores, computer {args.computer})')
    npt_point = [{'temperature': study.TEMPERATURE, 'ensemble': 'NPT', 'pressure': study.PRESSURE,
                  'volume': s['training_volume'], 'label': 'npt_1bar'}]
    reference = orm.load_node(args.reference) if args.reference else submit(study.sampling_builder(
        codes, s, npt_point, md={'production_steps': s['npt_steps'], 'seed': 99}))
    sampled = {'sampling': orm.load_node(args.sampling)} if args.sampling else \
        common.submit_all({'single-density NVT sampling': study.training_sampling_builder(codes, s)})
    common.wait({'classical NPT reference': reference})
    print(f"reference <{reference.pk}>, sampling <{next(iter(sampled.values())).pk}>")
    pool = next(iter(sampled.values())).outputs.pool
    parts = split_training_set(pool, orm.Dict({'train_fraction': 0.5, 'seed': 3}))
    start_structure = pool.get_atoms()[-1]
    v_ref, e_ref = study.mean_volume(reference.outputs.sampled.npt_1bar.thermo)
    print(f'classical NPT reference volume {v_ref:.0f} ± {e_ref:.0f} Å^3')

    results = {}
    for n in args.walkers:
        if n in reuse:
            run = orm.load_node(reuse[n])
            print(f'reusing ActiveLearningWorkChain <{run.pk}> with {n} walker(s)')
        else:
            builder = study.active_learning_builder(codes, s, parts['train'], parts['validation'], start_structure)
            builder.walkers = orm.List(walker_list(n, args.first_seed))
            if args.split_steps:
                builder.explore.job.parameters = orm.Dict(split_steps(builder.explore.job.parameters.get_dict(), n))
            run = submit(builder)
            print(f'submitted ActiveLearningWorkChain <{run.pk}> with {n} walker(s)')
        wall = wait_for(run)
        if run.exit_status not in (0, 701, 702):
            print(f'  failed [{run.exit_status}] {run.exit_message}: verdi process report {run.pk}', file=sys.stderr)
            return 1
        figures = run_figures(run, wall)
        check = common.submit_all({f'final GAP of {n} walker(s), NPT': study.verification_builder(
            codes, run.outputs.potential, run.inputs.explore.job.structure, s)}, allowed=(0, 410))
        node = next(iter(check.values()))
        volume, error = study.mean_volume(node.outputs.thermo)
        figures.update(pk=run.pk, volume=volume, volume_error=100 * (volume - v_ref) / v_ref,
                       stop=node.outputs.stop.get_dict()['stop_reason'])
        results[n] = figures
        kinds = ', '.join(f'{k} {v:.0f} s' for k, v in figures['by_kind'].items())
        print(f"  {n} walker(s): {figures['outcome']} after {figures['iterations']} iterations, {wall:.0f} s; "
              f"programs {figures['inside']:.0f} s ({kinds}; {figures['timed_jobs']} of {figures['jobs']} jobs "
              f'timed); volume {volume:.0f} ± {error:.0f} Å^3')

    base = results[args.walkers[0]]
    rows = []
    for n, r in results.items():
        rows.append((n, r['pk'], r['outcome'], r['iterations'], r['labels'], r['added'], r['refits'],
                     f"{r['wall']:.0f}", f"{r['wall'] / base['wall']:.2f}", f"{r['overhead_per_iteration']:.1f}",
                     f"{r['overhead_per_iteration'] / base['overhead_per_iteration']:.2f}",
                     f"{r['volume_error']:+.1f} %", r['stop']))
    print()
    print(tabulate(rows, headers=('walkers', 'run', 'outcome', 'iterations', 'labels', 'added', 'refits', 'wall (s)',
                                  f'wall / {args.walkers[0]} walker', 'overhead/it (s)',
                                  f'overhead / {args.walkers[0]} walker', 'volume error', 'verification stop')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
