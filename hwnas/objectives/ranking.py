"""How far to trust a one-shot ranking: Kendall tau, top-k overlap, their uncertainty, in words.

A supernet ranks architectures by the accuracy of their path with the shared weights
("one-shot" accuracy); whether that agrees with each architecture's accuracy after training is
the first question of weight sharing (Yu et al. 2020; Zela et al. 2020). These functions compare
two scorings of the same architectures (numpy only: the console and the report use them without
torch). The one-shot accuracies themselves are measured in
:mod:`hwnas.search.supernet.ranking`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "RANKING_EVENT",
    "chance_standard_error",
    "kendall_tau",
    "ranking_line",
    "ranking_summary",
    "tau_standard_error",
    "top_k_overlap",
    "trust_hint",
]

#: The event a supernet strategy logs (and updates as results come in) with its in-run ranking.
RANKING_EVENT = "supernet_ranking"
#: Fewer graded candidates than this say nothing about a ranking.
MIN_GRADED = 5


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b of two scorings of the same items (ties allowed); nan below 2 items
    or when one scoring is constant."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"need two scorings of the same items, got {x.shape} and {y.shape}")
    n = x.size
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant = float((dx * dy).sum())
    untied_x, untied_y = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return concordant / float(np.sqrt(untied_x * untied_y))


def tau_standard_error(a: Sequence[float], b: Sequence[float]) -> float:
    """Jackknife standard error of :func:`kendall_tau` (leave one item out); nan below 3
    items or when a leave-one-out tau is undefined."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = x.size
    if n < 3:
        return float("nan")
    keep = ~np.eye(n, dtype=bool)
    taus = np.array([kendall_tau(x[keep[i]], y[keep[i]]) for i in range(n)])
    if not np.isfinite(taus).all():
        return float("nan")
    return float(np.sqrt((n - 1) / n * np.sum((taus - taus.mean()) ** 2)))


def chance_standard_error(n: int) -> float:
    """Standard error of Kendall's tau of ``n`` items when the two scorings are independent
    (Kendall 1938: variance 2(2n+5) / (9n(n-1))): how far chance alone moves tau."""
    if n < 2:
        return float("nan")
    return math.sqrt(2.0 * (2 * n + 5) / (9.0 * n * (n - 1)))


def top_k_overlap(a: Sequence[float], b: Sequence[float], k: int = 5) -> float:
    """Share (0..1) of the k best items by ``a`` that are also among the k best by ``b``
    (higher is better in both)."""
    k = min(k, len(a))
    if k == 0:
        return float("nan")
    best_a = set(np.argsort(-np.asarray(a, dtype=float), kind="stable")[:k].tolist())
    best_b = set(np.argsort(-np.asarray(b, dtype=float), kind="stable")[:k].tolist())
    return len(best_a & best_b) / k


def _rounded(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 4)


def ranking_summary(
    oneshot: Sequence[float], standalone: Sequence[float], *, k: int = 5
) -> dict[str, Any]:
    """Kendall tau (with its jackknife standard error) and top-k overlap of the one-shot
    against the trained scores (higher is better in both)."""
    tau = kendall_tau(oneshot, standalone)
    # With one scoring constant, which items are its "top k" is arbitrary: no overlap either.
    overlap = top_k_overlap(oneshot, standalone, k) if math.isfinite(tau) else float("nan")
    return {
        "n": len(oneshot),
        "kendall_tau": _rounded(tau),
        "tau_se": _rounded(tau_standard_error(oneshot, standalone)),
        "top_k": min(k, len(oneshot)),
        "top_k_overlap": _rounded(overlap),
    }


def trust_hint(summary: Mapping[str, Any]) -> str:
    """What a ranking summary means for the user, in plain words. Agreement must stand out of
    chance (one-sided 5%: tau above 1.645 chance standard errors) before it counts at all."""
    n, tau = int(summary.get("n") or 0), summary.get("kendall_tau")
    if tau is None and n >= MIN_GRADED:
        return (
            "the candidates' one-shot or trained accuracies are all equal, so the one-shot "
            "ranking cannot be judged: the supernet or the training is too short to tell them apart"
        )
    if tau is None or n < MIN_GRADED:
        return (
            f"too few candidates graded ({n}) to judge the one-shot ranking; "
            "judge the candidates by their trained results only"
        )
    if tau < 1.645 * chance_standard_error(n):
        return (
            "one-shot ranking agrees with training no better than chance; do not trust the "
            "supernet's choice, compare candidates by their trained results only"
        )
    if tau >= 0.7:
        return "one-shot ranking agrees strongly with training; the front's order can be trusted"
    if tau >= 0.4:
        return "one-shot ranking agrees moderately with training; trust the front's order loosely"
    return (
        "one-shot ranking agrees only weakly with training; treat the supernet's choice as a "
        "rough guide and the front as incomplete"
    )


def ranking_line(summary: Mapping[str, Any]) -> str:
    """One line for the console and the report: tau with its standard error, top-k overlap,
    n, what the trained accuracy was, and :func:`trust_hint`."""
    n, tau, se = summary.get("n"), summary.get("kendall_tau"), summary.get("tau_se")
    figures = "Kendall tau " + ("n/a" if tau is None else f"{tau:.2f}")
    if se is not None:
        figures += f" ± {se:.2f}"
    overlap, k = summary.get("top_k_overlap"), summary.get("top_k")
    if overlap is not None and k:
        figures += f", top-{k} overlap {round(overlap * k)}/{k}"
    basis = f"accuracy {summary['basis']}" if summary.get("basis") else "trained accuracy"
    return f"one-shot ranking: {figures} over n={n} candidates (vs {basis}): {trust_hint(summary)}"
