"""Raw, AiiDA-free output parsers: one module per program, each ``parse_*`` callable on the plain
text of a file (parsing logic callable on a plain file). The AiiDA ``Parser`` classes of
:mod:`aiida_mlfail.parsers` and the CP2K calcfunctions call these.

* :mod:`.cp2k` -- CP2K single points and AIMD trajectories (``parse_cp2k_output``, ``parse_cp2k_md``);
* :mod:`.lammps` -- LAMMPS screen/log errors, dump, labels, thermo, failure-guard stop line;
* :mod:`.gap_fit` -- gap_fit standard output, dry run, memory preflight, GAP XML;
* :mod:`.quip` -- ``quip`` predictions;
* :mod:`.explore` -- ``mlfail-explore`` results, similarity and thermo tables.

The outputs of ``mlfail-rematch`` are read by
:func:`aiida_mlfail.engines.rematch.parse_rematch_output`, next to the engine that writes them
(``science`` may not import ``engines``).
"""
