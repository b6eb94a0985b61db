"""The ``aiida-mlfail`` command: launch studies and processes, follow active-learning runs, export results.

Built on aiida's command-line machinery (``VerdiCommandGroup``, the ``-p/--profile`` option that loads
the profile, ``with_dbenv``, the ``PROCESS``/``NODE`` arguments), so it takes the same profile and
verbosity options as ``verdi``.
"""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types

from aiida_mlfail.cli.calibrate import calibrate
from aiida_mlfail.cli.export import export
from aiida_mlfail.cli.launch import launch
from aiida_mlfail.cli.runs import report, status


@click.group('aiida-mlfail', cls=VerdiCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
def cli():
    """aiida-mlfail: launch studies, follow active-learning runs, export results.

    \b
    aiida-mlfail launch nacl_active_learning --protocol fast     a study (workflows/*.py)
    aiida-mlfail launch mlfail.sample -i sample.yaml            a process from YAML + key=value
    aiida-mlfail calibrate 1234 'reference={name: bmhtf_wolf}'   failure signals of a GAP
    aiida-mlfail status 1859                                     iteration table so far
    aiida-mlfail report 1859 -o report_1859                      tables and figures to a folder
    aiida-mlfail export training-set 1859 -o train.xyz           extxyz with per-frame provenance
    aiida-mlfail export potential 1859 -o gap                    GAP XML + sparseX files
    aiida-mlfail export archive 1859 -o run.aiida                AiiDA archive of the run
    verdi data mlfail trainingset|potential show|export         the data types
    """


cli.add_command(launch)
cli.add_command(calibrate)
cli.add_command(status)
cli.add_command(report)
cli.add_command(export)
