"""RobustDARTS's early stopping: the dominant Hessian eigenvalue and the stopping rule."""

import pytest
import torch
from supernet_helpers import cell_trainer

from hwnas.search.supernet.hessian import EarlyStop, dominant_eigenvalue


def _quadratic(eigenvalues):
    """0.5 x^T A x over two parameter tensors, A = Q diag(eigenvalues) Q^T for a random Q."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(3)))
    a = q @ torch.diag(torch.tensor(eigenvalues)) @ q.T
    x = torch.randn(n, generator=torch.Generator().manual_seed(4))
    params = [x[:2].clone().requires_grad_(True), x[2:].clone().requires_grad_(True)]

    def loss():
        v = torch.cat(params)
        return 0.5 * v @ a @ v

    return loss, params


@pytest.mark.parametrize(
    ("eigenvalues", "dominant"),
    [([4.0, -1.5, 0.5, 2.0, 1.0], 4.0), ([2.0, -6.0, 1.0, 0.25], -6.0)],
)
def test_power_iteration_finds_the_dominant_eigenvalue_of_a_quadratic(eigenvalues, dominant):
    loss, params = _quadratic(eigenvalues)
    value = dominant_eigenvalue(
        loss, params, iterations=200, tolerance=1e-9, generator=torch.Generator().manual_seed(0)
    )
    assert value == pytest.approx(dominant, rel=1e-4)
    assert all(p.grad is None for p in params)  # no gradient left behind on the parameters


def test_a_zero_hessian_has_eigenvalue_zero():
    x = torch.ones(3, requires_grad=True)
    assert dominant_eigenvalue(lambda: (2 * x).sum(), [x]) == 0.0


def test_the_rule_stops_when_the_windowed_eigenvalue_grows_and_returns_the_earlier_logits():
    stop = EarlyStop(heads=2, window=2, ratio=0.75)
    theta = lambda e: [[[float(e), 0.0]], [[0.0, float(e)]]]  # noqa: E731 - [head][layer]
    # Head 0: flat (1, 1, 1.1, 1.1): 1 / 1.1 > 0.75, never stops. Head 1: (1, 1, 2, 2): 0.5.
    for epoch, values in zip((2, 3, 4), ([1.0, 1.0], [1.0, 1.0], [1.1, 2.0])):
        assert stop.observe(epoch, values, theta(epoch)) == {}
    stops = stop.observe(5, [1.1, 2.0], theta(5))
    assert stops == {1: [[0.0, 3.0]]}  # the logits after epoch 3 = 5 - window
    assert stop.stopped[1] == {"epoch": 5, "restored_epoch": 3, "ratio": 0.5}
    assert stop.active == [0] and not stop.all_stopped
    # A stopped head is not judged again (its eigenvalue is no longer measured).
    assert stop.observe(6, [1.1, None], theta(6)) == {}
    again = EarlyStop.from_json(stop.to_json())
    assert again == stop
    with pytest.raises(ValueError, match="ratio"):
        EarlyStop(heads=1, ratio=1.5)


def _trainer(digits, tmp_path, epochs, **settings):
    log: list = []
    options = {"epochs": epochs, "warmup_epochs": 1, "theta_lr": 0.5, "robust": "hessian-es",
               **settings}  # fmt: skip
    _, trainer = cell_trainer(
        digits, lambdas=(0.0, 1.0), checkpoint_dir=tmp_path / "supernet",
        log=lambda kind, **data: log.append((kind, data)), **options,
    )  # fmt: skip
    return trainer, log


def test_the_trainers_eigenvalue_is_the_dominant_one_of_the_full_hessian(digits, tmp_path):
    trainer, _ = _trainer(digits, tmp_path, epochs=2)
    trainer.train()
    fixed = trainer.settings.seed * 100_003 + 7
    x, y = next(trainer.task.batches(trainer.arch_part, seed=fixed, device=trainer.device))
    buffers = {k: v.clone() for k, v in trainer.model.named_buffers()}
    shapes = [t.shape for t in trainer.theta[1]]
    for p in trainer.model.parameters():
        p.requires_grad_(False)

    def loss(flat):
        logits = torch.split(flat, [s.numel() for s in shapes])
        mix = [torch.softmax(t, dim=0) for t in logits]
        return trainer.task.loss(trainer.model(x, mix, [list(range(5))] * 6), y)

    flat = torch.cat([t.detach().flatten() for t in trainer.theta[1]])
    hessian = torch.autograd.functional.hessian(loss, flat)
    eig = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T).double())
    expected = float(eig[eig.abs().argmax()])
    with torch.no_grad():
        for k, v in trainer.model.named_buffers():
            v.copy_(buffers[k])
    for p in trainer.model.parameters():
        p.requires_grad_(True)
    measured = trainer._early_stop(trainer.epoch)[1]
    assert measured == pytest.approx(expected, rel=0.05)


def test_a_stopped_head_keeps_its_earlier_logits_and_a_resume_keeps_the_rule(digits, tmp_path):
    # ratio 0.999: a head stops as soon as its eigenvalue grows at all (window 1).
    trainer, log = _trainer(digits, tmp_path, epochs=5, es_window=1, es_ratio=0.999)
    trainer.train()
    epochs = [d for k, d in log if k == "supernet_epoch"]
    searched = [e for e in epochs if e["phase"] == "search"]
    assert searched and all(len(e["hessian_eigenvalues"]) == 2 for e in searched)
    stops = [d for k, d in log if k == "supernet_early_stop"]
    assert trainer.early is not None and stops  # (seeded: both heads stop in this run)
    for event in stops:
        h = event["head"]
        assert trainer.early.stopped[h]["restored_epoch"] == event["epoch"] - 1
        index = [e for e, _ in trainer.early.history].index(event["restored_epoch"])
        saved = trainer.early.snapshots[index][h]
        assert [t.tolist() for t in trainer.theta[h]] == saved  # exactly, and not moved since
        # Not measured (nor searched) after it stopped.
        later = [e["hessian_eigenvalues"][h] for e in searched if e["epoch"] > event["epoch"]]
        assert all(v is None for v in later)
    if trainer.stopped_early:  # no epoch is trained after the last head stopped
        assert trainer.done and trainer.epoch == max(e["epoch"] for e in stops)
    again, _ = _trainer(digits, tmp_path, epochs=5, es_window=1, es_ratio=0.999)
    assert again.epoch == trainer.epoch and again.early == trainer.early
