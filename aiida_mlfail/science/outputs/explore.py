"""Raw outputs of ``mlfail-explore`` (results JSON, similarity and thermo tables), AiiDA-free.

The readers live next to the engine's file names and writers in
:mod:`aiida_mlfail.science.explore` and are re-exported here.
"""

from __future__ import annotations

from aiida_mlfail.science.explore import parse_explore_results, parse_similarity, parse_thermo_table

__all__ = ['parse_explore_results', 'parse_similarity', 'parse_thermo_table']
