"""LightGlue's dual-softmax assignment and mutual-nearest-neighbour selection.

One pass over contiguous rows, and a blocked, memory-bounded variant above a size, so
the N x M similarity of large keypoint sets is never stored whole.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def assign_matches(
    mdesc0: torch.Tensor,
    mdesc1: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    threshold: float,
    block_elements: int | None = None,
) -> tuple:
    """Select mutual nearest neighbours of the LightGlue dual-softmax assignment.

    ``mdesc0 (N, D)`` and ``mdesc1 (M, D)`` are the scaled final projections (similarity
    ``sim = mdesc0 @ mdesc1.T``), ``z0 (N,)`` and ``z1 (M,)`` the matchability logits. The
    log-assignment of the pair (i, j) is ``log_softmax_j(sim)_ij + log_softmax_i(sim)_ij +
    logsigmoid(z0_i) + logsigmoid(z1_j)``; a pair matches when it is the maximum of its row and
    of its column and its probability exceeds ``threshold``.

    When ``N * M`` exceeds ``block_elements``, ``sim`` is evaluated in blocks of rows with at
    most ``block_elements`` entries, twice (log-sum-exps, then maxima), so that no N x M matrix
    is ever stored; otherwise it is computed once.

    Return ``matches0 (N,)``, ``scores0 (N,)``, ``matches1 (M,)``, ``scores1 (M,)``, with -1 and
    0 where there is no match.
    """
    n, m = mdesc0.shape[0], mdesc1.shape[0]
    mdesc0, mdesc1 = mdesc0.float(), mdesc1.float()
    rows = n if block_elements is None or n * m <= block_elements else max(1, block_elements // m)
    lse0, lse1, sim = _dual_logsumexp(mdesc0, mdesc1, rows)
    # log_softmax_j(sim)_ij + log_softmax_i(sim)_ij + ls0_i + ls1_j
    #   = 2 sim_ij + (ls0_i - lse0_i) + (ls1_j - lse1_j)
    offset0 = F.logsigmoid(z0.float()) - lse0
    offset1 = F.logsigmoid(z1.float()) - lse1
    if sim is not None:
        scores = torch.add(offset1, sim, alpha=2.0, out=sim).add_(offset0[:, None])
        max0, arg0 = scores.max(1)
        max1 = scores.amax(0)  # column maxima without their indices: ~5x cheaper
    else:
        max0, arg0, max1 = _blocked_maxima(mdesc0, mdesc1, offset0, offset1, rows)
    return _mutual_matches_from_maxima(max0, arg0, max1, threshold)


# exp() of arguments below this (about the smallest normal float32) would give subnormal
# numbers, which the CPU computes with microcode assists, ~30x slower: distinctive matches
# make rows span over a hundred log units.
_EXP_FLOOR = -87.0
# A row (column) whose exponentials, shifted by the maximum of the whole block, sum to less than
# this lies too far below that maximum for the shared shift and gets its own.
_TINY_SUM = 1e-25


def _row_logsumexp(block: torch.Tensor) -> torch.Tensor:
    """``block.logsumexp(1)`` without subnormal intermediate values (see ``_EXP_FLOOR``)."""
    top = block.amax(1)
    shifted = torch.sub(block, top[:, None]).clamp_(min=_EXP_FLOOR).exp_()
    return shifted.sum(1).log_().add_(top)


def _dual_logsumexp(
    mdesc0: torch.Tensor, mdesc1: torch.Tensor, rows: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Row and column log-sum-exps of ``sim = mdesc0 @ mdesc1.T`` with one exp per entry.

    Each block of ``rows`` rows is shifted by its maximum; row sums are final per block, column
    sums are rescaled to the running maximum. The few rows and columns whose sums are too small
    for that shared shift (far below the maximum) are recomputed exactly. Returns ``lse0 (N,)``,
    ``lse1 (M,)`` and ``sim`` when a single block covered it (else None).
    """
    n, m = mdesc0.shape[0], mdesc1.shape[0]
    lse0 = mdesc0.new_empty(n)
    col_shift = mdesc0.new_full((), -math.inf)
    col_sum = mdesc0.new_zeros(m)
    sim = None
    for start in range(0, n, rows):
        sim = mdesc0[start : start + rows] @ mdesc1.T
        shift = sim.max()
        exps = torch.sub(sim, shift).clamp_(min=_EXP_FLOOR).exp_()
        row_sum = exps.sum(1)
        lse0[start : start + rows] = row_sum.log() + shift
        low = (row_sum < _TINY_SUM).nonzero().squeeze(1)
        if low.numel():
            lse0[start + low] = _row_logsumexp(sim[low])
        new_shift = torch.maximum(col_shift, shift)
        col_sum = col_sum * (col_shift - new_shift).exp() + exps.sum(0) * (shift - new_shift).exp()
        col_shift = new_shift
    lse1 = col_sum.log() + col_shift
    low = (col_sum < _TINY_SUM).nonzero().squeeze(1)
    if low.numel():
        lse1[low] = _row_logsumexp(mdesc1[low] @ mdesc0.T)
    return lse0, lse1, sim if rows >= n else None


def _blocked_maxima(
    mdesc0: torch.Tensor,
    mdesc1: torch.Tensor,
    offset0: torch.Tensor,
    offset1: torch.Tensor,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row maxima and argmax, and column maxima, of ``2 sim + offset0_i + offset1_j`` by blocks."""
    n, m = mdesc0.shape[0], mdesc1.shape[0]
    max0 = mdesc0.new_empty(n)
    arg0 = torch.empty(n, dtype=torch.long, device=mdesc0.device)
    max1 = mdesc0.new_full((m,), -math.inf)
    for start in range(0, n, rows):
        sim = mdesc0[start : start + rows] @ mdesc1.T
        scores = torch.add(offset1, sim, alpha=2.0, out=sim).add_(
            offset0[start : start + rows, None]
        )
        max0[start : start + rows], arg0[start : start + rows] = scores.max(1)
        torch.maximum(max1, scores.amax(0), out=max1)
    return max0, arg0, max1


def _mutual_matches_from_maxima(
    max0: torch.Tensor, arg0: torch.Tensor, max1: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, ...]:
    """:func:`mutual_matches` from the column maxima instead of the column argmax.

    Row i and column ``arg0_i`` are mutual nearest neighbours when the row's maximum is also the
    column's; on an exact tie of rows, the first keeps the column, as an argmax would.
    """
    n, m = max0.shape[0], max1.shape[0]
    rows = torch.arange(n, device=arg0.device)
    mutual0 = max0 == max1.gather(0, arg0)
    first = torch.full((m,), n, dtype=torch.long, device=arg0.device).scatter_reduce_(
        0, arg0[mutual0], rows[mutual0], 'amin'
    )
    mutual0 &= first.gather(0, arg0) == rows
    scores0 = torch.where(mutual0, max0.exp(), max0.new_zeros(()))
    valid0 = mutual0 & (scores0 > threshold)
    matches0 = torch.where(valid0, arg0, arg0.new_full((), -1))
    matches1 = arg0.new_full((m,), -1)
    matches1[arg0[valid0]] = rows[valid0]
    scores1 = max0.new_zeros(m)
    scores1[arg0[mutual0]] = scores0[mutual0]
    return matches0, scores0, matches1, scores1


def mutual_matches(
    max0: torch.Tensor, arg0: torch.Tensor, arg1: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, ...]:
    """Keep mutual nearest neighbours above ``threshold`` (probability); export graph."""
    mutual0 = arg1.gather(0, arg0) == torch.arange(arg0.shape[0], device=arg0.device)
    mutual1 = arg0.gather(0, arg1) == torch.arange(arg1.shape[0], device=arg1.device)
    scores0 = torch.where(mutual0, max0.exp(), max0.new_zeros(()))
    scores1 = torch.where(mutual1, scores0.gather(0, arg1), max0.new_zeros(()))
    valid0 = mutual0 & (scores0 > threshold)
    valid1 = mutual1 & valid0.gather(0, arg1)
    matches0 = torch.where(valid0, arg0, arg0.new_full((), -1))
    matches1 = torch.where(valid1, arg1, arg1.new_full((), -1))
    return matches0, scores0, matches1, scores1
