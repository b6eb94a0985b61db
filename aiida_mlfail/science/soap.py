"""SOAP power spectra of configurations, normalised per atom, as the REMatch engine expects them.

The descriptor is ``dscribe.descriptors.SOAP`` (Himanen et al., Comput. Phys. Commun. 247, 106949
(2020); SOAP: Bartók, Kondor, Csányi, Phys. Rev. B 87, 184115 (2013)). Each configuration gives an
``(n_atoms, n_features)`` matrix whose rows are scaled to unit L2 norm, so that the local kernel
``k(i, j) = p_i . p_j`` is 1 for identical environments (docs: science/rematch).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aiida_mlfail.science import checks

#: Default SOAP parameters of the configuration comparison (the thesis's choice for molten NaCl:
#: n_max=6, l_max=4, r_cut=5 Å gives 390 features for two species).
SOAP_DEFAULTS = {'r_cut': 5.0, 'n_max': 6, 'l_max': 4, 'sigma': 1.0, 'rbf': 'gto', 'average': 'off'}
#: Largest ``l_max`` dscribe's SOAP accepts (``dscribe.descriptors.SOAP`` refuses l_max > 20).
MAX_L_MAX = 20
_ALLOWED = {'species', 'r_cut', 'n_max', 'l_max', 'sigma', 'rbf', 'average'}


def normalise_soap_parameters(parameters: dict, species=None) -> dict:
    """Merge with :data:`SOAP_DEFAULTS` and check.

    :param parameters: any of ``species`` (list of element symbols), ``r_cut`` (Å), ``n_max``,
        ``l_max``, ``sigma`` (Å, Gaussian width), ``rbf`` ('gto' or 'polynomial'); ``average`` must
        stay 'off' (REMatch needs per-atom spectra).
    :param species: species to use when ``parameters`` has none.
    :raises ValueError: naming the offending key or value.
    """
    checks.known_keys(parameters, _ALLOWED, 'SOAP parameter')
    merged = {**SOAP_DEFAULTS, **parameters}
    if merged.get('species') is None:
        merged['species'] = species
    if not merged['species']:
        raise ValueError('SOAP parameters need the species (a list of element symbols)')
    if isinstance(merged['species'], (str, dict)) or not isinstance(merged['species'], Iterable) \
            or not all(isinstance(s, str) for s in merged['species']):
        raise ValueError(f"SOAP species must be a list of element symbols, got {merged['species']!r}")
    merged['species'] = sorted(set(merged['species']))
    merged['r_cut'] = checks.number(merged['r_cut'], 'SOAP r_cut', gt=1.0, unit='Å')
    merged['n_max'] = checks.integer(merged['n_max'], 'SOAP n_max', ge=1)
    merged['l_max'] = checks.integer(merged['l_max'], 'SOAP l_max', ge=0, le=MAX_L_MAX)
    merged['sigma'] = checks.number(merged['sigma'], 'SOAP sigma', gt=0, unit='Å')
    checks.choice(merged['rbf'], 'SOAP rbf', ('gto', 'polynomial'))
    if merged['average'] != 'off':
        raise ValueError(f"SOAP average must be 'off' for REMatch (per-atom spectra), got {merged['average']!r}")
    return merged


def soap_descriptor(parameters: dict):
    """The ``dscribe.descriptors.SOAP`` object of normalised parameters (periodic, dense output)."""
    from dscribe.descriptors import SOAP  # noqa: PLC0415 (heavy import)

    p = parameters
    return SOAP(species=p['species'], r_cut=p['r_cut'], n_max=p['n_max'], l_max=p['l_max'], sigma=p['sigma'],
                rbf=p['rbf'], periodic=True, sparse=False)


def normalised_features(descriptor, configurations, n_jobs: int = 1) -> list[np.ndarray]:
    """Per-atom SOAP spectra of each configuration, rows scaled to unit L2 norm.

    :param descriptor: from :func:`soap_descriptor`.
    :param configurations: ``ase.Atoms`` or a list of them.
    :returns: list of ``(n_atoms_i, n_features)`` float64 arrays.
    :raises ValueError: if a configuration has a species the descriptor does not know, or an atom
        whose spectrum is zero (no neighbour within ``r_cut`` of the same species channels).
    """
    from ase import Atoms  # noqa: PLC0415

    if isinstance(configurations, Atoms):
        configurations = [configurations]
    configurations = list(configurations)
    known = set(descriptor.species)
    for index, atoms in enumerate(configurations):
        extra = set(atoms.get_chemical_symbols()) - known
        if extra:
            raise ValueError(f'configuration {index} has species {sorted(extra)} that the SOAP descriptor '
                             f'(species {sorted(known)}) does not describe')
    if not configurations:
        return []
    raw = descriptor.create(configurations, n_jobs=n_jobs)
    if len(configurations) == 1 and not isinstance(raw, list) and np.ndim(raw) == 2:
        raw = [raw]
    features = []
    for index, matrix in enumerate(raw):
        matrix = np.asarray(matrix, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1)
        if np.any(norms == 0):
            raise ValueError(f'configuration {index}: atom(s) {np.flatnonzero(norms == 0).tolist()} have an empty '
                             'SOAP spectrum (no neighbour within r_cut)')
        features.append(matrix / norms[:, None])
    return features
