"""How far to trust a supernet's ranking: one-shot accuracy against training alone.

A supernet ranks architectures by the accuracy of their path with the shared weights
("one-shot" accuracy). Whether that ranking agrees with the architectures' accuracy when each is
trained on its own is the first question of weight sharing (Yu et al. 2020, "Evaluating the
search phase of neural architecture search"; Zela et al. 2020). This module measures one-shot
accuracy (batch norm on batch statistics, as single-path evaluations do, with the supernet's
buffers restored afterwards) and compares two rankings: Kendall's tau-b and the overlap of the
top k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hwnas.types import Genotype

__all__ = ["kendall_tau", "oneshot_accuracies", "ranking_summary", "top_k_overlap"]


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


def top_k_overlap(a: Sequence[float], b: Sequence[float], k: int = 5) -> float:
    """Share (0..1) of the k best items by ``a`` that are also among the k best by ``b``
    (higher is better in both)."""
    k = min(k, len(a))
    if k == 0:
        return float("nan")
    best_a = set(np.argsort(-np.asarray(a, dtype=float), kind="stable")[:k].tolist())
    best_b = set(np.argsort(-np.asarray(b, dtype=float), kind="stable")[:k].tolist())
    return len(best_a & best_b) / k


def ranking_summary(
    oneshot: Sequence[float], standalone: Sequence[float], *, k: int = 5
) -> dict[str, Any]:
    """Kendall tau and top-k overlap of the one-shot against the stand-alone scores."""
    tau = kendall_tau(oneshot, standalone)
    return {
        "n": len(oneshot),
        "kendall_tau": None if np.isnan(tau) else round(tau, 4),
        "top_k": min(k, len(oneshot)),
        "top_k_overlap": round(top_k_overlap(oneshot, standalone, k), 4),
    }


@torch.no_grad()
def oneshot_accuracies(
    trainer: Any, genotypes: Sequence[Genotype], *, batches: int = 4, seed: int = 0
) -> list[float]:
    """Accuracy (%) of each genotype's path of the trained supernet on ``batches`` batches of
    the architecture part of the data (held out from the weight steps)."""
    model = trainer.model
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    was_training = model.training
    stream = trainer.task.batches(trainer.arch_part, seed=seed, device=trainer.device)
    data = [next(stream) for _ in range(max(1, min(batches, trainer.arch_steps_per_epoch)))]
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout
        try:
            model.train()  # batch statistics: the shared running averages fit no single path
            for genotype in genotypes:
                weights, active = model.one_hot(genotype)
                correct = total = 0
                for x, y in data:
                    logits = model(x, weights, active)
                    correct += int((logits.argmax(1) == y).sum())
                    total += int(y.numel())
                out.append(100.0 * correct / max(1, total))
        finally:
            model.load_state_dict(saved)
            model.train(was_training)
    return out
