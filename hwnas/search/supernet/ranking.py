"""How far to trust a supernet's ranking: one-shot accuracy against training alone.

A supernet ranks architectures by the accuracy of their path with the shared weights
("one-shot" accuracy). Whether that ranking agrees with the architectures' accuracy when each is
trained on its own is the first question of weight sharing (Yu et al. 2020, "Evaluating the
search phase of neural architecture search"; Zela et al. 2020). This module measures one-shot
accuracy (batch norm on batch statistics, as single-path evaluations do, with the supernet's
buffers restored afterwards); comparing two rankings (Kendall's tau-b, the overlap of the top
k, what they mean in words) is :mod:`hwnas.objectives.ranking`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hwnas.objectives.ranking import kendall_tau, ranking_summary, top_k_overlap
from hwnas.types import Genotype

__all__ = ["kendall_tau", "oneshot_accuracies", "ranking_summary", "top_k_overlap"]


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
