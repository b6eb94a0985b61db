#!/usr/bin/env python
"""Study 1 (thesis sections 10.5, 10.6 and chapter 11): a GAP trained at one density vs one trained at five, run in NPT.

Both GAPs get the same number of training configurations, selected uniformly in force magnitude
from NVT BMHTF + PPPM sampling at 1400 K: from the one liquid density, or from five densities
spanning it. Each GAP runs NPT (1400 K, 1 bar) from the same start next to a classical NPT
reference; the volume traces, the equilibrium volumes and their deviation from the reference,
and the breaking step (first V > 1.5 V_ref) are reported. The five-density GAP also runs NVT at
the liquid density, and its RDFs and diffusion coefficients are compared with the classical run.

The sampling and GAP MD runs are builders from the protocols (``--size small``: ``moderate``, ``large``:
``precise``; ``common.PROTOCOL_OF_SIZE``) with the study's overrides below (``SIZES``).

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_npt_failure.py [--size small|large]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: Per size: the system, the GAP settings, and the overrides of the sampling protocol (``sampling``: 12 ps
#: sampled every 100 fs for small; ``npt_sampling``: the classical NPT reference) and of the GAP MD
#: (``md_steps``, 2 fs each).
SIZES = {
    'small': {'n_ions': 64, 'volumes': common.NACL_VOLUMES, 'liquid_volume': 2350, 'n_select': 120,
              'soap_sparse': 200, 'cutoff': 6.0, 'md_steps': 1500,
              'sampling': {'production_steps': 6000, 'sampling_interval': 50},
              'npt_sampling': {'production_steps': 10000, 'sampling_interval': 50, 'seed': 99}},
    'large': {'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000], 'liquid_volume': 7500, 'n_select': 500,
              'soap_sparse': 1000, 'cutoff': 8.0, 'md_steps': 150000,
              'sampling': {'production_steps': 50000, 'sampling_interval': 50},
              'npt_sampling': {'production_steps': 100000, 'sampling_interval': 50, 'seed': 99}},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--output', default='results/nacl_npt_failure')
    args = parser.parse_args(argv)

    from aiida import load_profile, orm


    load_profile()
    s = SIZES[args.size]
    codes = common.load_codes()
    size = args.size
    out = pathlib.Path(args.output).resolve()
    liquid = f"nvt_V{s['liquid_volume']}"
    nvt_points = [{'temperature': 1400.0, 'volume': float(v), 'label': f'nvt_V{v}'} for v in s['volumes']]
    npt_point = [{'temperature': 1400.0, 'ensemble': 'NPT', 'pressure': 1.0, 'volume': float(s['liquid_volume']),
                  'label': 'npt_1bar'}]

    print('== classical BMHTF + PPPM sampling (NVT, five densities) and the classical NPT reference')
    sampled = common.submit_all({
        'NVT sampling': common.sampling_builder(codes, nvt_points, size=size, n_ions=s['n_ions'], md=s['sampling']),
        'NPT reference': common.sampling_builder(codes, npt_point, size=size, n_ions=s['n_ions'],
                                                 md=s['npt_sampling']),
    })
    nvt, npt = sampled['NVT sampling'], sampled['NPT reference']
    npt_thermo = npt.outputs.sampled.npt_1bar.thermo
    v_npt = npt_thermo.get_array('volume')
    v_ref = float(np.mean(v_npt[len(v_npt) // 2:]))
    print(f'classical NPT equilibrium volume: {v_ref:.0f} Å^3')

    print('== GAPs: single density vs five densities (same training-set size)')
    fit = {'size': args.size, 'n_select': s['n_select'], 'cutoff': s['cutoff'], 'soap_sparse': s['soap_sparse']}
    gaps = common.submit_all({
        'single density': common.gap_builder(codes, nvt.outputs.sampled[liquid].training_set, **fit),
        'five densities': common.gap_builder(codes, nvt.outputs.pool, **fit),
    })

    print('== GAP MD: NPT for both GAPs, NVT at the liquid density for the five-density GAP')
    start = orm.StructureData(ase=nvt.outputs.sampled[liquid].training_set.get_atoms()[-1])
    npt_parameters = {'ensemble': 'NPT', 'temperature': 1400.0, 'pressure': 1.0, 'steps': s['md_steps'],
                      'dump_interval': 10, 'thermo_interval': 10, 'reference_volume': v_ref,
                      # the guard halts at 3 x V_ref; the breaking step is at 1.5 x the classical NPT volume
                      # (equilibrium_thermo), so the forensics show the frames after the break
                      'guards': {'volume_factor': 3.0, 'min_distance': 1.2}}
    jobs = {
        f'NPT {name}': common.mlmd_builder(codes, gaps[name].outputs.potential, start, npt_parameters, size=size,
                                           reference=common.BMHTF_PPPM, training_thermo=npt_thermo,
                                           equilibrium_thermo=npt_thermo)
        for name in gaps
    }
    jobs['NVT five densities'] = common.mlmd_builder(
        codes, gaps['five densities'].outputs.potential, start, size=size,
        parameters={'ensemble': 'NVT', 'temperature': 1400.0, 'steps': s['md_steps'], 'dump_interval': 25,
                    'thermo_interval': 25})
    md = common.submit_all(jobs, allowed=(0, 410))

    print('== structure and dynamics, ML NVT vs classical NVT at the liquid density')
    from aiida_mlfail.calculations.functions import structure_and_dynamics

    ml_sd = structure_and_dynamics(md['NVT five densities'].outputs.trajectory,
                                   orm.Dict({'timestep': 2.0, 'label': 'GAP (five densities) NVT'}))
    cl_sd = structure_and_dynamics(nvt.outputs.sampled[liquid].training_set,
                                   orm.Dict({'timestep': 2.0, 'label': 'BMHTF NVT'}))

    print()
    rows = []
    traces = {'classical NPT': (npt_thermo.get_array('time'), v_npt)}
    for name in gaps:
        node = md[f'NPT {name}']
        thermo = node.outputs.thermo
        volume = thermo.get_array('volume')
        traces[f'GAP {name}'] = (thermo.get_array('time'), volume)
        v_eq = float(np.mean(volume[len(volume) // 2:]))
        summary = node.outputs.summary.get_dict()
        rows.append([f'GAP {name}', f"{gaps[name].outputs.metrics['virial']['rmse']:.4f}",
                     node.outputs.stop['stop_reason'], f'{v_eq:.0f}', f'{100 * (v_eq / v_ref - 1):+.1f} %',
                     summary.get('breaking_step')])
    rows.append(['classical BMHTF', '-', 'completed', f'{v_ref:.0f}', '0 %', None])
    common.print_table(['model', 'virial RMSE eV/atom', 'NPT stop', 'V_eq Å^3', 'dV vs ref', 'breaking step'], rows)
    print()
    diffusion_rows = []
    for symbol in ('Na', 'Cl'):
        ml, cl = ml_sd['diffusion'][symbol], cl_sd['diffusion'][symbol]
        diffusion_rows.append([symbol, common.with_error(ml.get('D_m2_s'), ml.get('D_stderr_m2_s')),
                               common.with_error(cl.get('D_m2_s'), cl.get('D_stderr_m2_s'))])
    common.print_table(['species', 'D GAP NVT (m^2/s)', 'D BMHTF NVT (m^2/s)'], diffusion_rows)
    g_ml, g_cl = ml_sd['rdf'].get_array('g_Cl_Na'), cl_sd['rdf'].get_array('g_Cl_Na')
    n = min(len(g_ml), len(g_cl))
    print(f'Na-Cl RDF: first peak GAP {ml_sd["rdf"].get_array("r")[np.argmax(g_ml)]:.2f} Å vs BMHTF '
          f'{cl_sd["rdf"].get_array("r")[np.argmax(g_cl)]:.2f} Å; '
          f'RMS difference of g(r) {np.sqrt(np.mean((g_ml[:n] - g_cl[:n])**2)):.3f}')

    from aiida_mlfail.science.plots import plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (t, v) in traces.items():
        ax.plot(t - t[0], v, label=name)
    ax.axhline(1.5 * v_ref, color='red', ls='--', lw=1, label='1.5 V_ref (break)')
    ax.set_xlabel('time (ps)')
    ax.set_ylabel('volume (Å$^3$)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / 'volume_traces.png', dpi=100)
    print()
    print(f"figures: {out / 'volume_traces.png'}")
    for name in gaps:
        filename = 'forensics_' + name.replace(' ', '_') + '.png'
        print(f'         {common.export(md["NPT " + name].outputs.forensics_plot, out, filename)}')
    print(f"         {common.export(ml_sd['plot'], out, 'structure_dynamics_gap.png')}")
    print(f"         {common.export(cl_sd['plot'], out, 'structure_dynamics_bmhtf.png')}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
