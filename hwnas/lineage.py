"""Family trees of a run: which trial each network came from, and by which morphisms.

Strategies that build on earlier trials (LEMONADE, hill climbing) record each child's parent
trial and weight transfer in its candidate; this module reads them back from the run store.
No torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import RunError
from hwnas.types import Trial

__all__ = ["Ancestor", "FamilyTree", "ancestry", "describe_transfer", "front_family"]


@dataclass(frozen=True)
class Ancestor:
    """One trial in a family tree: its network, how it was made and what it scored."""

    trial: int
    spec: str
    parent: int | None
    state: str
    how: str  # "from scratch", "widen(layer=2, channels=32) + deepen(...)", "shape_match" ...
    exact: bool | None  # whether every morphism kept the parent's function (None: no morphism)
    distill: float | None  # knowledge-distillation weight from the parent, if any
    epochs: float | None  # the trial's own training epochs (None: the run's default)
    generation: int | None
    values: Mapping[str, float] = field(default_factory=dict)  # objective -> value

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "spec": self.spec,
            "parent": self.parent,
            "state": self.state,
            "how": self.how,
            "exact": self.exact,
            "distill": self.distill,
            "epochs": self.epochs,
            "generation": self.generation,
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class FamilyTree:
    """The ancestors of some trials: ``children`` maps a trial to its children in the tree,
    ``roots`` are trials without a (known) parent; ``front`` the trials the tree is about."""

    nodes: Mapping[int, Ancestor]
    children: Mapping[int, Sequence[int]]
    roots: Sequence[int]
    front: frozenset[int]
    units: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": {str(k): v.to_json() for k, v in self.nodes.items()},
            "children": {str(k): list(v) for k, v in self.children.items()},
            "roots": list(self.roots),
            "front": sorted(self.front),
        }


def describe_transfer(transfer: Mapping[str, Any] | None) -> str:
    """A transfer in words: ``widen(layer=2, channels=32) + add_skip(layer=3, source=1)``."""
    if not transfer:
        return "from scratch"
    if transfer.get("kind") != "morphism":
        return str(transfer.get("kind", "shape_match"))
    parts = []
    for step in transfer.get("steps", []):
        params = ", ".join(f"{k}={v}" for k, v in step.get("params", {}).items() if k != "seed")
        parts.append(f"{step.get('name', '?')}({params})")
    return " + ".join(parts) or "morphism"


def _ancestor(trial: Trial, objectives: Sequence[str]) -> Ancestor:
    candidate = trial.candidate
    transfer = dict(candidate.transfer or {}) if trial.parent is not None else {}
    steps = transfer.get("steps") if transfer.get("kind") == "morphism" else None
    distill = transfer.get("distill")
    generation = candidate.info.get("generation", candidate.info.get("round"))
    return Ancestor(
        trial=trial.number,
        spec=trial.genotype.spec,
        parent=trial.parent,
        state=trial.state.value,
        how=describe_transfer(transfer) if trial.parent is not None else "from scratch",
        exact=all(bool(s.get("exact")) for s in steps) if steps else None,
        distill=float(distill) if distill not in (None, False) else None,
        epochs=candidate.fidelity,
        generation=int(generation) if generation is not None else None,
        values={m: trial.value(m) for m in objectives},
    )


def _load(run_dir: str | os.PathLike[str]) -> tuple[dict[int, Trial], Any]:
    from hwnas.results import read_run

    result = read_run(Path(run_dir))
    return {t.number: t for t in result.trials}, result.front


def ancestry(run_dir: str | os.PathLike[str], trial: int) -> list[Ancestor]:
    """The line from ``trial``'s oldest recorded ancestor down to ``trial`` (root first)."""
    trials, front = _load(run_dir)
    if trial not in trials:
        raise RunError(
            f"run '{run_dir}' has no trial {trial} (it has 0 to {max(trials, default=-1)})"
        )
    objectives = [o.metric for o in front.objectives]
    line: list[Ancestor] = []
    number: int | None = trial
    while number is not None and number in trials and all(a.trial != number for a in line):
        line.append(_ancestor(trials[number], objectives))
        number = trials[number].parent
    return line[::-1]


def front_family(run_dir: str | os.PathLike[str]) -> FamilyTree:
    """The family tree of every front member: the members and all their ancestors."""
    trials, front = _load(run_dir)
    objectives = [o.metric for o in front.objectives]
    members = frozenset(t.number for t in front.members)
    nodes: dict[int, Ancestor] = {}
    for number in sorted(members):
        current: int | None = number
        while current is not None and current in trials and current not in nodes:
            nodes[current] = _ancestor(trials[current], objectives)
            current = trials[current].parent
    children: dict[int, list[int]] = {}
    roots = []
    for number in sorted(nodes):
        parent = nodes[number].parent
        if parent in nodes:
            children.setdefault(parent, []).append(number)
        else:
            roots.append(number)
    return FamilyTree(nodes, children, roots, members, dict(front.units))


# -- text -----------------------------------------------------------------------------------
def _values(ancestor: Ancestor, units: Mapping[str, str]) -> str:
    parts = []
    for metric, value in ancestor.values.items():
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        unit = units.get(metric, "")
        parts.append(f"{metric} {text}{' ' + unit if unit and unit != 'count' else ''}")
    return ", ".join(parts) if ancestor.state == "complete" else ancestor.state


def _line(ancestor: Ancestor, units: Mapping[str, str], mark: str = "") -> str:
    how = ancestor.how
    if ancestor.exact:
        how += " [exact]"
    elif ancestor.exact is False:
        distilled = f", distilled {ancestor.distill:g}" if ancestor.distill else ""
        how += f" [approximate{distilled}]"
    epochs = f", {ancestor.epochs:g} epochs" if ancestor.epochs is not None else ""
    head = f"trial {ancestor.trial}{mark}: {_values(ancestor, units)}{epochs}  {ancestor.spec}"
    return f"{head}\n    {how}"


def render_ancestry(line: Sequence[Ancestor], units: Mapping[str, str] | None = None) -> str:
    """The line of descent as text, one ancestor per paragraph, root first."""
    units = units or {}
    out = []
    for depth, ancestor in enumerate(line):
        text = _line(ancestor, units)
        out.append("\n".join("  " * depth + part for part in text.splitlines()))
    return "\n".join(out)


def render_tree(tree: FamilyTree) -> str:
    """The family tree as indented text; front members are marked with ``*``."""
    out: list[str] = []

    def walk(number: int, depth: int) -> None:
        mark = " *" if number in tree.front else ""
        text = _line(tree.nodes[number], tree.units, mark)
        out.extend("  " * depth + part for part in text.splitlines())
        for child in tree.children.get(number, []):
            walk(child, depth + 1)

    for root in tree.roots:
        walk(root, 0)
    return "\n".join(out)
