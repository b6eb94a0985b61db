"""REMatch kernel engine: agreement with dscribe, limits, index queries with pruning, errors."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from ase.build import bulk
from dscribe.descriptors import SOAP
from dscribe.kernels import REMatchKernel

from aiida_mlfail.science import rematch as rm
from aiida_mlfail.science.rematch import (
    RematchIndex,
    average_kernel,
    best_match_kernel,
    rematch_distance,
    rematch_kernel,
)

# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------


def _nacl_like(n_atoms: int, seed: int, *, sigma: float = 0.35, one_species: bool = False, scale: float = 1.0):
    """Small molten-NaCl-like periodic configuration: rocksalt 8- or 16-atom cell, randomly
    displaced (Gaussian, ``sigma`` Å), atoms removed down to ``n_atoms``."""
    rng = np.random.default_rng(seed)
    atoms = bulk('NaCl', 'rocksalt', a=5.64 * scale, cubic=True)
    if n_atoms > 8:
        atoms = atoms.repeat((2, 1, 1))
    drop = sorted(rng.choice(len(atoms), size=len(atoms) - n_atoms, replace=False), reverse=True)
    for i in drop:
        del atoms[int(i)]
    atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
    atoms.wrap()
    if one_species:
        atoms.set_chemical_symbols(['Na'] * len(atoms))
    return atoms


def _soap_features(configurations, species):
    soap = SOAP(species=list(species), r_cut=4.0, n_max=3, l_max=2, periodic=True, sparse=False)
    out = []
    for atoms in configurations:
        x = soap.create(atoms)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


@pytest.fixture(scope='module')
def soap_sets():
    """{(species, sizes): (A, B)} of normalised SOAP features."""
    sets = {}
    for one_species in (False, True):
        species = ('Na',) if one_species else ('Na', 'Cl')
        for label, sizes_a, sizes_b in (('equal', [16, 16, 16], [16, 16]), ('unequal', [16, 13, 9], [12, 16, 8])):
            a = [_nacl_like(n, 10 + k, one_species=one_species) for k, n in enumerate(sizes_a)]
            b = [_nacl_like(n, 50 + k, one_species=one_species) for k, n in enumerate(sizes_b)]
            sets[len(species), label] = (_soap_features(a, species), _soap_features(b, species))
    return sets


def _random_features(sizes, n_features=10, seed=0, positive=False):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        x = rng.normal(size=(n, n_features))
        if positive:
            x = np.abs(x)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def _dscribe(a, b, alpha, threshold):
    return REMatchKernel(metric='linear', alpha=alpha, threshold=threshold, normalize_kernel=True).create(a, b)


# ------------------------------------------------------------------------------------------------
# agreement with dscribe
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('n_species', [1, 2])
@pytest.mark.parametrize('sizes', ['equal', 'unequal'])
@pytest.mark.parametrize('alpha', [0.01, 0.1, 1.0])
def test_matches_dscribe_on_soap_features(soap_sets, n_species, sizes, alpha):
    a, b = soap_sets[n_species, sizes]
    reference = _dscribe(a, b, alpha, 1e-10)
    ours = rematch_kernel(a, b, alpha=alpha, threshold=1e-10)
    assert ours.shape == (len(a), len(b))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    # the symmetric (features_b=None) path as well
    np.testing.assert_allclose(rematch_kernel(a, alpha=alpha, threshold=1e-10),
                               _dscribe(a, None, alpha, 1e-10), rtol=0, atol=1e-6)


def test_same_stopping_rule_as_dscribe_at_default_threshold(soap_sets):
    """dscribe's residual and check schedule are reproduced, so even a loose threshold agrees to
    rounding (loosely converged values differ from tightly converged ones by ~1e-6)."""
    a, b = soap_sets[2, 'unequal']
    for alpha in (0.05, 0.5):
        loose = rematch_kernel(a, b, alpha=alpha, threshold=1e-3)
        np.testing.assert_allclose(loose, _dscribe(a, b, alpha, 1e-3), rtol=0, atol=1e-12)
        assert np.abs(loose - rematch_kernel(a, b, alpha=alpha, threshold=1e-12)).max() > 1e-9
    np.testing.assert_allclose(rematch_kernel(a, b), _dscribe(a, b, 0.1, 1e-6), rtol=0, atol=1e-12)


@pytest.mark.parametrize('alpha', [0.01, 0.1, 1.0])
def test_matches_dscribe_on_random_features(alpha):
    a = _random_features([7, 12, 3], seed=1)
    b = _random_features([12, 5, 9, 16], seed=2)
    np.testing.assert_allclose(rematch_kernel(a, b, alpha=alpha, threshold=1e-9),
                               _dscribe(a, b, alpha, 1e-9), rtol=0, atol=1e-6)


def test_small_alpha_is_stable_and_exact():
    """alpha = 0.001: exp(-(1 - C)/alpha) underflows for dissimilar pairs; the stabilised kernel
    (and the log-domain fallback) reproduce dscribe's iteration exactly."""
    a = _random_features([6, 4], n_features=8, seed=3)
    b = _random_features([5, 7], n_features=8, seed=4)
    alpha, threshold = 0.001, 1e-7
    ours = rematch_kernel(a, b, alpha=alpha, threshold=threshold)
    assert np.isfinite(ours).all()

    def log_domain(x, y):
        return rm._sinkhorn_log(x @ y.T, alpha, threshold, rm.DEFAULT_MAX_ITER)[0]

    raw = np.array([[log_domain(x, y) for y in b] for x in a])
    norm = np.sqrt(np.outer([log_domain(x, x) for x in a], [log_domain(y, y) for y in b]))
    np.testing.assert_allclose(ours, raw / norm, rtol=0, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # dscribe overflows to NaN here
        with np.errstate(all='ignore'):
            reference = _dscribe(a, b, alpha, threshold)
    assert np.isnan(reference).any()  # ... which is why the stabilisation is needed


def test_log_domain_fallback_on_extreme_scalings():
    """alpha = 3e-4: the scalings leave the float range, the pairs go to the log-domain solver."""
    a = _random_features([7, 5], n_features=6, seed=5)
    b = _random_features([6], n_features=6, seed=6)
    engine = rm._Engine(3e-4, 1e-6, 5_000, rm.DEFAULT_CHUNK_BYTES)
    c = a[0] @ b[0].T
    value = engine.solve(c[None, None])[0][0]
    assert engine.n_fallback == 1
    assert value == pytest.approx(rm._sinkhorn_log(c, 3e-4, 1e-6, 5_000)[0], abs=1e-12)


def test_soap_small_alpha_matches_dscribe(soap_sets):
    a, b = soap_sets[2, 'unequal']
    np.testing.assert_allclose(rematch_kernel(a, b, alpha=0.002, threshold=1e-8),
                               _dscribe(a, b, 0.002, 1e-8), rtol=0, atol=1e-6)


def test_chunking_and_array_input_do_not_change_results(soap_sets):
    a, b = soap_sets[2, 'unequal']
    big = rematch_kernel(a, b, threshold=1e-10)
    tiny = rematch_kernel(a, b, threshold=1e-10, chunk_bytes=1)  # one pair per chunk
    np.testing.assert_allclose(tiny, big, rtol=0, atol=1e-13)
    x, y = soap_sets[2, 'equal']
    np.testing.assert_allclose(rematch_kernel(np.stack(x), np.stack(y)), rematch_kernel(x, y), rtol=0, atol=1e-13)
    sym = rematch_kernel(a + b, threshold=1e-10, chunk_bytes=3 * 16 * 16 * 8)
    np.testing.assert_allclose(sym, rematch_kernel(a + b, threshold=1e-10), rtol=0, atol=1e-13)


# ------------------------------------------------------------------------------------------------
# properties and limits
# ------------------------------------------------------------------------------------------------


def test_symmetry_and_unit_self_similarity(soap_sets):
    a, b = soap_sets[2, 'unequal']
    k = rematch_kernel(a + b, alpha=0.1)
    assert np.array_equal(k, k.T)
    np.testing.assert_allclose(np.diagonal(k), 1.0, rtol=0, atol=1e-14)
    assert (k <= 1 + 1e-12).all() and (k > 0).all()
    # explicit features_b equal to features_a: the same pairs in the same orientation (i <= j) give
    # the same values; the mirrored ones (rows from j) agree to the convergence level
    explicit = rematch_kernel(a + b, a + b, alpha=0.1)
    upper = np.triu_indices(len(k))
    np.testing.assert_allclose(explicit[upper], k[upper], rtol=0, atol=1e-12)
    np.testing.assert_allclose(explicit, k, rtol=0, atol=1e-4)
    np.testing.assert_allclose(rematch_kernel(a + b, a + b, alpha=0.1, threshold=1e-12),
                               rematch_kernel(a + b, alpha=0.1, threshold=1e-12), rtol=0, atol=1e-7)
    np.testing.assert_allclose(rematch_distance(k)[np.diag_indices(len(k))], 0.0, atol=1e-6)


def test_large_alpha_gives_average_kernel(soap_sets):
    a, b = soap_sets[2, 'unequal']
    avg = average_kernel(a, b)
    means_a = np.array([x.mean(axis=0) for x in a])
    means_b = np.array([y.mean(axis=0) for y in b])
    cos = means_a @ means_b.T / np.outer(np.linalg.norm(means_a, axis=1), np.linalg.norm(means_b, axis=1))
    np.testing.assert_allclose(avg, cos, rtol=0, atol=1e-14)
    err = [np.abs(rematch_kernel(a, b, alpha=alpha, threshold=1e-12) - avg).max() for alpha in (1.0, 10.0, 1e5)]
    assert err[0] > err[1] > err[2]
    assert err[2] < 1e-6


def test_small_alpha_gives_best_match(soap_sets):
    for key in ((2, 'equal'), (2, 'unequal')):
        a, b = soap_sets[key]
        bm = best_match_kernel(a, b)
        err = [np.abs(rematch_kernel(a, b, alpha=alpha, threshold=1e-9) - bm).max() for alpha in (0.1, 0.01, 0.001)]
        assert err[0] > err[1] > err[2]
        assert err[2] < 2e-3
    # square case: the optimal assignment
    x, y = soap_sets[2, 'equal'][0][:2]
    from scipy.optimize import linear_sum_assignment

    c = x @ y.T
    rows, cols = linear_sum_assignment(-c)
    assert best_match_kernel([x], [y])[0, 0] == pytest.approx(c[rows, cols].mean(), abs=1e-12)


def test_unnormalised_rematch_between_average_and_best_match(soap_sets):
    """mean(C) <= K^alpha(A, B) <= BM(A, B) <= (1/N) sum_i max_j C_ij (basis of the pruning bound)."""
    a, b = soap_sets[2, 'unequal']
    engine = rm._Engine(0.05, 1e-10, rm.DEFAULT_MAX_ITER, rm.DEFAULT_CHUNK_BYTES)
    for x in a:
        for y in b:
            c = x @ y.T
            value = engine.solve(c[None, None])[0][0]
            bm = rm._best_match_value(c)
            assert c.mean() - 1e-9 <= value <= bm + 1e-9
            assert bm <= c.max(axis=1).mean() + 1e-12


def test_distance():
    assert rematch_distance(1.0) == 0.0
    assert rematch_distance(1.0 + 1e-15) == 0.0  # rounding above 1 is clipped, not NaN
    np.testing.assert_allclose(rematch_distance(np.array([0.5, -1.0])), [1.0, 2.0])


# ------------------------------------------------------------------------------------------------
# novelty queries
# ------------------------------------------------------------------------------------------------


def test_index_matches_full_computation(soap_sets):
    a, b = soap_sets[2, 'unequal']
    refs = a + b + soap_sets[2, 'equal'][0]
    candidate = soap_sets[2, 'equal'][1][0]
    for alpha in (0.05, 0.5):
        index = RematchIndex(refs, alpha=alpha, threshold=1e-10, chunk_bytes=2 * 16 * 16 * 8)
        full = rematch_kernel([candidate], refs, alpha=alpha, threshold=1e-10)[0]
        np.testing.assert_allclose(index.similarities(candidate), full, rtol=0, atol=1e-12)
        value, position = index.max_similarity(candidate)
        assert position == int(np.argmax(full))
        assert value == pytest.approx(full.max(), abs=1e-12)
        assert index.max_similarity(candidate, prune=False) == (value, position)
        unnormalised_self = [rm._sinkhorn_log(r @ r.T, alpha, 1e-10, rm.DEFAULT_MAX_ITER)[0] for r in refs]
        np.testing.assert_allclose(index.self_similarities, unnormalised_self, rtol=0, atol=1e-9)
    # and with dscribe itself
    dscribe_row = _dscribe([candidate], refs, 0.5, 1e-10)[0]
    assert index.max_similarity(candidate)[1] == int(np.argmax(dscribe_row))
    assert index.max_similarity(candidate)[0] == pytest.approx(dscribe_row.max(), abs=1e-6)


def test_index_pruning_is_exact_on_diverse_references():
    """References from distinct 'phases' (compressed/expanded, hot/cold, one/two species): the
    row-max bound skips many Sinkhorn solves without changing the maximum or its index."""
    configurations = []
    for k in range(24):
        scale = (0.8, 1.0, 1.25)[k % 3]
        sigma = (0.05, 0.5)[k // 3 % 2]
        configurations.append(_nacl_like((16, 12, 8)[k % 3], 100 + k, sigma=sigma, scale=scale))
    refs = _soap_features(configurations, ('Na', 'Cl'))
    candidates = _soap_features([_nacl_like(16, 7, sigma=0.05), _nacl_like(12, 8, sigma=0.5, scale=1.25)],
                                ('Na', 'Cl'))
    pruned = 0
    for alpha in (0.01, 0.1):
        index = RematchIndex(refs, alpha=alpha, threshold=1e-9, chunk_bytes=16 * 16 * 8 * 4, n_seeds=2)
        for x in candidates:
            full = index.similarities(x)
            assert index.last_stats['pruned'] == 0
            np.testing.assert_allclose(full, rematch_kernel([x], refs, alpha=alpha, threshold=1e-9)[0],
                                       rtol=0, atol=1e-12)
            value, position = index.max_similarity(x)
            assert (value, position) == (full.max(), int(np.argmax(full)))
            pruned += index.last_stats['pruned']
            assert index.last_stats['solved'] + index.last_stats['pruned'] == len(refs)
    assert pruned > 0


def test_index_ties_return_first_index(soap_sets):
    a, _b = soap_sets[2, 'equal']
    refs = [a[1], a[0], a[1], a[0]]
    index = RematchIndex(refs, n_seeds=3)
    value, position = index.max_similarity(a[0])
    assert position == 1
    assert value == pytest.approx(1.0, abs=1e-12)


@pytest.fixture(scope='module')
def liquid_soap():
    """Molten-NaCl-like frames with the benchmark's SOAP (n_max=6, l_max=4, r_cut=5 Å: 390
    correlated features): 30 references and 3 candidates of 16 atoms."""
    soap = SOAP(species=['Na', 'Cl'], r_cut=5.0, n_max=6, l_max=4, periodic=True, sparse=False)
    frames = [_nacl_like(16, 200 + k, sigma=0.4) for k in range(33)]
    x = soap.create(frames, n_jobs=1)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return list(x[:30]), list(x[30:])


def test_index_leading_axes_bound_and_recheck(liquid_soap):
    """The query on the leading principal axes: the Cauchy-Schwarz bound holds for every kernel
    entry, the answer is the full computation's, and a candidate outside the references' span
    gets every axis."""
    refs, candidates = liquid_soap
    n_features = refs[0].shape[1]
    index = RematchIndex(refs, alpha=0.1, threshold=1e-9)
    exact = RematchIndex(refs, alpha=0.1, threshold=1e-9, kernel_tolerance=0)
    assert exact.axes is None
    np.testing.assert_allclose(index.axes.T @ index.axes, np.eye(n_features), rtol=0, atol=1e-12)
    for x in candidates:
        full = rematch_kernel([x], refs, alpha=0.1, threshold=1e-9)[0]
        value, position = index.max_similarity(x)
        stats = index.last_stats
        assert 0 < stats['axes'] < n_features  # the shortcut is taken on these features
        assert 0 < stats['kernel_error_bound'] <= index.kernel_tolerance
        assert stats['rechecked'] >= 1
        assert position == int(np.argmax(full))
        assert value == pytest.approx(full.max(), abs=1e-13)
        assert exact.max_similarity(x) == pytest.approx((value, position), abs=1e-13)
        assert exact.last_stats['axes'] == n_features and exact.last_stats['rechecked'] == 0
        # the bound: every environment kernel from the leading axes is within it of the exact one
        r = stats['axes']
        xr = x @ index.axes
        for ref in refs:
            truncated = xr[:, :r] @ (ref @ index.axes)[:, :r].T
            assert np.abs(truncated - x @ ref.T).max() <= stats['kernel_error_bound'] * (1 + 1e-9)
    # a candidate with components the references do not have: every axis is kept
    outsider = _random_features([16], n_features=n_features, seed=3, positive=True)[0]
    value, position = index.max_similarity(outsider)
    assert index.last_stats['axes'] == n_features and index.last_stats['kernel_error_bound'] == 0
    full = rematch_kernel([outsider], refs, alpha=0.1, threshold=1e-9)[0]
    assert (position, value) == (int(np.argmax(full)), pytest.approx(full.max(), abs=1e-13))
    with pytest.raises(ValueError, match=r'kernel_tolerance must be a finite number >= 0, got -1'):
        RematchIndex(refs, kernel_tolerance=-1)


@pytest.mark.parametrize('alpha', [0.002, 0.1, 10.0])  # 0.002: the stabilised kernel
def test_values_on_leading_axes_stay_within_the_kernel_bound(liquid_soap, alpha):
    """With a loose tolerance (many axes dropped) every value from the leading axes is within the
    kernel error bound of the exact one (the premise of the recheck margin), and the returned
    maximum is still exact."""
    refs, candidates = liquid_soap
    index = RematchIndex(refs, alpha=alpha, threshold=1e-8, kernel_tolerance=1e-4)
    for x in candidates:
        full = index.similarities(x)
        approximate = index._query(x, prune=True)
        stats = index.last_stats
        assert stats['axes'] < refs[0].shape[1] // 2 and stats['kernel_error_bound'] > 1e-6
        solved = np.isfinite(approximate)  # pruned references are -inf
        assert solved.sum() == stats['solved']
        error = np.abs(approximate - full)[solved]
        assert 0 < error.max() <= stats['kernel_error_bound'], (error.max(), stats)
        assert (full[~solved] < full.max() - 1e-6).all()
        value, position = index.max_similarity(x)
        assert position == int(np.argmax(full)) and value == pytest.approx(full.max(), abs=1e-13)


def test_threads_do_not_change_results(liquid_soap, soap_sets):
    """Serial and threaded runs give the same numbers (chunks differ, pairs do not)."""
    refs, candidates = liquid_soap
    a, b = soap_sets[2, 'unequal']
    for x, y in ((refs[:7], refs[7:]), (a, b)):
        serial = rematch_kernel(x, y, threads=1)
        np.testing.assert_allclose(rematch_kernel(x, y, threads=2), serial, rtol=0, atol=1e-14)
        np.testing.assert_allclose(rematch_kernel(x, y, threads=3, chunk_bytes=3 * 16 * 16 * 8), serial,
                                   rtol=0, atol=1e-14)
    sym = rematch_kernel(refs, threads=1)
    np.testing.assert_allclose(rematch_kernel(refs, threads=2, chunk_bytes=5 * 16 * 16 * 8), sym, rtol=0, atol=1e-14)
    one = RematchIndex(refs, threads=1, chunk_bytes=4 * 16 * 16 * 8)
    two = RematchIndex(refs, threads=2, chunk_bytes=4 * 16 * 16 * 8)
    np.testing.assert_allclose(two.self_similarities, one.self_similarities, rtol=0, atol=1e-14)
    for x in candidates:
        assert two.max_similarity(x) == pytest.approx(one.max_similarity(x), abs=1e-14)
        np.testing.assert_allclose(two.similarities(x), one.similarities(x), rtol=0, atol=1e-14)


def test_thread_count_follows_blas_and_slurm(monkeypatch):
    from threadpoolctl import threadpool_limits

    monkeypatch.delenv('SLURM_CPUS_ON_NODE', raising=False)
    with threadpool_limits(limits=1, user_api='blas'):
        assert rm.n_threads() == 1
        assert rm._Engine(0.1, 1e-6, 10, 1024).threads == 1
    assert 1 <= rm.n_threads() <= len(__import__('os').sched_getaffinity(0))
    monkeypatch.setenv('SLURM_CPUS_ON_NODE', '1')
    assert rm.n_threads() == 1


# ------------------------------------------------------------------------------------------------
# errors and warnings
# ------------------------------------------------------------------------------------------------


def test_nan_and_inf_name_the_configuration():
    a = _random_features([4, 5, 6], seed=7)
    bad = [x.copy() for x in a]
    bad[1][2, 3] = np.nan
    with pytest.raises(ValueError, match=r'configuration 1 of features_a contains NaN or inf \(first at atom 2\)'):
        rematch_kernel(bad)
    with pytest.raises(ValueError, match=r'configuration 1 of features_b contains NaN or inf'):
        rematch_kernel(a, bad)
    inf = [x.copy() for x in a]
    inf[2][0, 0] = np.inf
    with pytest.raises(ValueError, match=r'configuration 2 of reference_features contains NaN or inf'):
        RematchIndex(inf)
    with pytest.raises(ValueError, match=r'candidate features contains NaN or inf'):
        RematchIndex(a).max_similarity(bad[1])


def test_unnormalised_rows_are_rejected():
    a = _random_features([4, 5], seed=8)
    raw = [x * 3.0 for x in a]
    with pytest.raises(ValueError, match=r'configuration 0 of features_a, atom 0: feature row has L2 norm 3 '):
        rematch_kernel(raw)
    b = [x.copy() for x in a]
    b[1][4] *= 1.01
    with pytest.raises(ValueError, match=r'configuration 1 of features_b, atom 4: feature row has L2 norm 1\.01'):
        rematch_kernel(a, b)
    with pytest.raises(ValueError, match=r'L2 norm'):
        average_kernel(raw)
    with pytest.raises(ValueError, match=r'atom 4'):
        RematchIndex(a).similarities(b[1])


def test_bad_shapes_and_parameters():
    a = _random_features([4, 5], seed=9)
    with pytest.raises(ValueError, match='single 2-D array'):
        rematch_kernel(a[0])
    with pytest.raises(ValueError, match='empty'):
        rematch_kernel([])
    with pytest.raises(ValueError, match='features per atom'):
        rematch_kernel(a, _random_features([4], n_features=7))
    with pytest.raises(ValueError, match='alpha'):
        rematch_kernel(a, alpha=0.0)
    with pytest.raises(ValueError, match='threshold'):
        rematch_kernel(a, threshold=1.0)
    with pytest.raises(ValueError, match='2-D'):
        RematchIndex(a).max_similarity(a[0][0])


def test_iteration_cap_warns_with_pair_and_residual(soap_sets):
    a, b = soap_sets[2, 'unequal']
    with pytest.warns(RuntimeWarning, match=r'did not reach threshold=1e-14 within max_iter=3 sweeps for 15 '
                                            r'pair\(s\) \(alpha=0.01\): (self )?pair \(\d, \d\)( of features_[ab])?: '
                                            r'residual [0-9.e+-]+ after 3 sweeps'):
        capped = rematch_kernel(a, b, alpha=0.01, threshold=1e-14, max_iter=3)
    assert np.isfinite(capped).all()
    # the capped values are exactly those of the third Sinkhorn iterate
    def third(x, y):
        return rm._sinkhorn_log(x @ y.T, 0.01, 1e-14, 3)[0]

    expected = np.array([[third(x, y) / np.sqrt(third(x, x) * third(y, y)) for y in b] for x in a])
    np.testing.assert_allclose(capped, expected, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        rematch_kernel(a, b, alpha=0.01, threshold=1e-6)  # converges: no warning
    with pytest.warns(RuntimeWarning, match=r'self pair \(1, 1\) of reference_features: residual'):
        index = RematchIndex(b, alpha=0.01, threshold=1e-14, max_iter=3)
    with pytest.warns(RuntimeWarning, match=r'candidate vs reference 1: residual'):
        index.similarities(a[0])


def test_memory_is_bounded_by_the_chunk_size():
    """Working memory does not grow with the number of pairs (here 60 x 60 pairs of 16 x 16 kernels
    would need 7.4 MB at once; the run stays far below)."""
    a = _random_features([16] * 60, n_features=20, seed=10, positive=True)
    chunk = 64 * 1024
    rematch_kernel(a[:4], a[:4], chunk_bytes=chunk)  # warm-up (imports, caches)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        k = rematch_kernel(a, a, chunk_bytes=chunk)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    all_pairs = 60 * 60 * 16 * 16 * 8
    assert peak < all_pairs / 4, (peak, all_pairs)
    assert k.shape == (60, 60)
