"""Figures (matplotlib, Agg backend): returned as PNG bytes so callers can store them as nodes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: Panels of the parity plot: key, axis label.
PARITY_PANELS = (
    ('energy', 'energy per atom (eV/atom)'),
    ('forces', 'force components (eV/Å)'),
    ('virial', 'virial per atom (eV/atom)'),
)


def figure_png(fig, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (after ``tight_layout``); closes the figure."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def parity_png(pairs: dict, metrics: dict | None = None, title: str = '') -> bytes:
    """Parity plot of predicted vs reference values, one panel per quantity present.

    :param pairs: ``{'energy': (reference, predicted), 'forces': (...), 'virial': (...)}``, arrays
        in the units of :data:`PARITY_PANELS`.
    :param metrics: optional ``{key: {'rmse': ...}}`` written into each panel (with ``offset`` and
        ``rmse_offset_removed`` where present, e.g. the energies of ``compare_labels``).
    :returns: PNG bytes.
    :raises ValueError: if ``pairs`` has none of the known quantities.
    """
    panels = [(k, label) for k, label in PARITY_PANELS if k in pairs]
    if not panels:
        raise ValueError(f'nothing to plot: pairs has keys {sorted(pairs)}')
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        ref, pred = (np.asarray(v, dtype=float).ravel() for v in pairs[key])
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color='0.6', lw=1)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel(f'reference {label}')
        ax.set_ylabel(f'GAP {label}')
        if metrics and key in metrics:
            m = metrics[key]
            text = f"RMSE {m['rmse']:.3g}\nMAE {m['mae']:.3g}\nmax {m['max']:.3g}"
            if 'offset' in m:  # energies: the constant offset and the RMSE without it
                text += f"\noffset {m['offset']:.3g}\nRMSE - offset {m['rmse_offset_removed']:.3g}"
            ax.text(0.04, 0.96, text, transform=ax.transAxes, va='top', fontsize=9)
    if title:
        fig.suptitle(title)
    return figure_png(fig)
