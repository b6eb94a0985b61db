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

Measured on 2026-11-30 on the shared 2-core machine under a load average of 15-23 (other engineers' runs), with
``benchmarks/active_learning.py --quick --walkers 1 2 4`` (the 1-walker run from a first invocation that stopped
after it, reused with ``--sampling 22 --reference 14 --run 1=77``): all three converged after 2 iterations;
1 walker 662 s, 1 label, 1 refit, overhead 80 s/iteration, final volume +6.4 % (2644 ± 37 vs 2484 ± 56 Å^3);
2 walkers 630 s (0.95 x), 2 labels, 1 refit, 71.5 s/iteration (0.89 x), +7.3 %; 4 walkers 720 s (1.09 x),
4 labels, 1 refit, 64.8 s/iteration (0.81 x), -4.6 %. With such a load the wall times say little about the
goal (2 walkers <= 60 % of 1 walker).

The full mode, measured on 2026-11-30 with ``AIIDA_PATH=<profile> python benchmarks/active_learning.py --walkers 1
2`` (1533 s in all; the daemon with 2 workers; the machine shared with single test runs, load average 3-4):
1 walker converged after 3 iterations, 2 added, 2 refits, 389 s, overhead 22.9 s/iteration, final volume -1.5 %
(2426 ± 38 vs 2462 ± 27 Å^3); 2 walkers converged after 5 iterations, 5 added, 4 refits, 822 s (2.12 x),
11.4 s/iteration (0.5 x), -7.7 % (2271 ± 35 Å^3). The goals are not met: the second walker flags configurations
the first would not have met, so the run labels and refits more and ends later, with a larger volume error; the
overhead per iteration is above 10 s with either.

4 walkers, measured on 2026-11-30 on a quiet machine (nothing else running) with ``AIIDA_PATH=<profile> python
benchmarks/active_learning.py --walkers 1 2 4 --sampling 4258 --reference 4250 --run 1=4313 --run 2=4501`` (the
sampling, reference and 1- and 2-walker runs above reused; their verification runs repeated, same volumes): converged
after 5 iterations, 8 labels, 8 added, 4 refits, 1138 s (2.93 x the 1-walker run), overhead 11.0 s/iteration
(0.48 x), final volume -3.5 % (2375 ± 28 Å^3). The four explorations of an iteration share 2 cores (3657 s of
exploration in 1138 s of wall time).

Needs a profile with a running daemon and the codes of ``scripts/setup-aiida.sh`` (``lammps``, ``gap_fit``,
``quip``, ``explore`` on ``--computer``). A run on the local SLURM cluster (``--computer slurm``) is possible
with those codes; it was not measured.
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


def walker_list(n: int) -> list[dict]:
    """N walkers at the builder's state point with seeds 11, 23, 35, ... (the first is the 1-walker baseline)."""
    return [{'seed': 11 + 12 * i} for i in range(n)]


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
            builder.walkers = orm.List(walker_list(n))
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
