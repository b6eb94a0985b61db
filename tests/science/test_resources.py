"""Job needs -> scheduler options (``science.resources``), and what ``core.slurm`` writes from them."""

import pytest

from aiida_mlfail.science.resources import MIN_MEMORY_MB, scheduler_options


def test_serial_job_with_a_memory_estimate_and_a_walltime():
    options = scheduler_options('gap_fit', memory_mb=1000.0, walltime_s=3600)
    assert options == {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'withmpi': False,
                       'max_memory_kb': 1300 * 1024, 'max_wallclock_seconds': 3600}


def test_without_needs_only_resources():
    assert scheduler_options('quip') == {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
                                         'withmpi': False}


def test_memory_safety_rounding_and_floor():
    assert scheduler_options('gap_fit', memory_mb=400.2, safety=1.0)['max_memory_kb'] == 401 * 1024
    assert scheduler_options('gap_fit', memory_mb=1000, safety=2.0)['max_memory_kb'] == 2000 * 1024
    assert scheduler_options('gap_fit', memory_mb=3.0)['max_memory_kb'] == MIN_MEMORY_MB * 1024


def test_walltime_rounded_up_to_minutes_with_a_floor():
    assert scheduler_options('lammps', walltime_s=61)['max_wallclock_seconds'] == 120
    assert scheduler_options('lammps', walltime_s=5)['max_wallclock_seconds'] == 60
    assert scheduler_options('lammps', walltime_s=1800.0)['max_wallclock_seconds'] == 1800


def test_mpi_ranks_for_lammps_and_cp2k():
    options = scheduler_options('cp2k', mpi_ranks=8, memory_mb=4000, safety=1.0)
    assert options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 8}
    assert options['withmpi'] is True and options['max_memory_kb'] == 4000 * 1024
    assert scheduler_options('lammps', mpi_ranks=1)['withmpi'] is False


def test_ranks_over_machines_split_memory_per_machine():
    options = scheduler_options('cp2k', mpi_ranks=200, mpiprocs_per_machine=128, memory_mb=8000, safety=1.0)
    assert options['resources'] == {'num_machines': 2, 'num_mpiprocs_per_machine': 100}
    assert options['max_memory_kb'] == 4000 * 1024  # --mem is per node
    options = scheduler_options('lammps', mpi_ranks=256, mpiprocs_per_machine=128)
    assert options['resources'] == {'num_machines': 2, 'num_mpiprocs_per_machine': 128}


@pytest.mark.parametrize('kind, kwargs, match', [
    ('vasp', {}, "unknown kind 'vasp'"),
    ('gap_fit', {'mpi_ranks': 4}, 'gap_fit runs serially here: mpi_ranks must be 1, got 4'),
    ('lammps', {'mpi_ranks': 0}, 'mpi_ranks must be a positive integer, got 0'),
    ('lammps', {'mpi_ranks': 2.0}, 'mpi_ranks must be a positive integer, got 2.0'),
    ('gap_fit', {'memory_mb': -1}, 'memory_mb must be a positive finite number, got -1'),
    ('gap_fit', {'memory_mb': float('nan')}, 'memory_mb must be a positive finite number'),
    ('gap_fit', {'walltime_s': 0}, 'walltime_s must be a positive finite number, got 0'),
    ('gap_fit', {'memory_mb': 10, 'safety': 0.5}, r'safety must be >= 1'),
    ('lammps', {'mpi_ranks': 4, 'mpiprocs_per_machine': 0}, 'mpiprocs_per_machine must be a positive integer'),
])
def test_invalid_needs(kind, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scheduler_options(kind, **kwargs)


def test_core_slurm_writes_them_as_sbatch_directives():
    """The options go through AiiDA's SLURM plugin unchanged: --mem in MB, --time, tasks per node."""
    from aiida.schedulers.datastructures import JobTemplate, JobTemplateCodeInfo
    from aiida.schedulers.plugins.slurm import SlurmScheduler

    options = scheduler_options('cp2k', mpi_ranks=4, memory_mb=2000, walltime_s=5400, safety=1.25)
    scheduler = SlurmScheduler()
    template = JobTemplate()
    template.job_resource = scheduler.create_job_resource(**options['resources'])
    template.max_memory_kb = options['max_memory_kb']
    template.max_wallclock_seconds = options['max_wallclock_seconds']
    template.queue_name = 'debug'
    template.codes_info = [JobTemplateCodeInfo(cmdline_params=['cp2k.psmp', '-i', 'aiida.inp'])]
    template.codes_run_mode = 0
    script = scheduler.get_submit_script(template)
    assert '#SBATCH --mem=2500' in script
    assert '#SBATCH --time=01:30:00' in script
    assert '#SBATCH --nodes=1' in script and '#SBATCH --ntasks-per-node=4' in script
    assert '#SBATCH --partition=debug' in script
