"""Family trees from a run store: ancestry of a trial, the front's tree, the CLI."""

import json

import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.config import RunConfig
from hwnas.lineage import ancestry, front_family, render_ancestry, render_tree
from hwnas.store import RunStore
from hwnas.types import Candidate, Genotype, Measurement, TrialState

WIDEN = {"name": "widen", "exact": True, "params": {"layer": 2, "channels": 32, "seed": 4}}
PRUNE = {"name": "prune", "exact": False, "params": {"layer": 1, "channels": 8, "seed": 1}}
DEEPEN = {"name": "deepen", "exact": True, "params": {"after": 1, "kernel": 3}}

# number: (spec, parent, steps, distill, error, params); None error: the trial failed.
FAMILY = {
    0: ("k3c16-k3c16", None, None, None, 30.0, 6000),
    1: ("k3c16-k3c32", 0, [WIDEN], None, 20.0, 8000),
    2: ("k3c8-k3c32", 1, [PRUNE], 0.5, 22.0, 5000),
    3: ("k1c8-k1c8", None, None, None, 60.0, 300),
    4: ("k1c8-k3c8-k1c8", 3, [DEEPEN], None, 50.0, 900),
    5: ("k3c8-k3c32-k3c32", 2, [DEEPEN], None, None, 14000),
}


@pytest.fixture
def run_dir(tmp_path):
    config = RunConfig(space="chain", strategy="lemonade", objectives=["error", "params"])
    with RunStore.create(tmp_path / "run", config.to_dict()) as store:
        for number, (spec, parent, steps, distill, error, params) in FAMILY.items():
            transfer = None
            if steps:
                transfer = {"kind": "morphism", "steps": steps, "seed": 0}
                if distill:
                    transfer["distill"] = distill
            candidate = Candidate(
                Genotype("chain", spec), parent=parent, transfer=transfer,
                fidelity=2.0 if parent is not None else None, info={"generation": number // 2 + 1},
            )  # fmt: skip
            (trial,) = store.add_candidates([candidate], {})
            if error is None:
                finished = trial.with_result(TrialState.FAILED, error="diverged", finished=1.0)
            else:
                measurements = {
                    "error": Measurement("error", error, "%"),
                    "params": Measurement("params", params, "count"),
                }
                finished = trial.with_result(TrialState.COMPLETE, measurements, finished=1.0)
            store.record([finished], {})
    return tmp_path / "run"


def test_ancestry_is_the_line_from_the_root_with_morphisms_and_scores(run_dir):
    line = ancestry(run_dir, 5)
    assert [a.trial for a in line] == [0, 1, 2, 5]
    root, widened, pruned, failed = line
    assert root.how == "from scratch" and root.exact is None and root.parent is None
    assert widened.how == "widen(layer=2, channels=32)" and widened.exact is True
    assert pruned.exact is False and pruned.distill == 0.5 and pruned.epochs == 2.0
    assert pruned.values == {"error": 22.0, "params": 5000.0}
    assert failed.state == "failed"
    text = render_ancestry(line, {"error": "%", "params": "count"})
    assert "widen(layer=2, channels=32) [exact]" in text
    assert "prune(layer=1, channels=8) [approximate, distilled 0.5]" in text
    assert "trial 2: error 22 %, params 5,000, 2 epochs" in text
    assert "seed" not in text


def test_front_family_holds_every_front_member_and_its_ancestors(run_dir):
    tree = front_family(run_dir)
    # Front of (error, params): 1 (20%, 8000), 2 (22%, 5000), 4 (50%, 900), 3 (60%, 300).
    assert tree.front == {1, 2, 3, 4}
    assert set(tree.nodes) == {0, 1, 2, 3, 4}
    assert tree.roots == [0, 3]
    assert dict(tree.children) == {0: [1], 1: [2], 3: [4]}
    text = render_tree(tree)
    assert "trial 2 *" in text and "trial 0:" in text  # 0 is an ancestor, not on the front
    lines = text.splitlines()
    indent = {
        n: next(len(s) - len(s.lstrip()) for s in lines if f"trial {n}" in s) for n in tree.nodes
    }
    assert indent[0] < indent[1] < indent[2] and indent[3] < indent[4]
    json.dumps(tree.to_json())


def test_lineage_command(run_dir):
    runner = CliRunner()
    text = runner.invoke(app, ["lineage", str(run_dir), "2"])
    assert text.exit_code == 0 and "prune(layer=1, channels=8)" in text.stdout
    as_json = runner.invoke(app, ["lineage", str(run_dir), "2", "--json"])
    assert [a["trial"] for a in json.loads(as_json.stdout)] == [0, 1, 2]
    tree = runner.invoke(app, ["lineage", str(run_dir)])
    assert tree.exit_code == 0 and "trial 4 *" in tree.stdout
    knee = runner.invoke(app, ["lineage", str(run_dir), "knee"])
    assert knee.exit_code == 0 and "trial" in knee.stdout
    missing = runner.invoke(app, ["lineage", str(run_dir), "99"])
    assert missing.exit_code == 2 and "has no trial 99" in missing.stderr
    bad = runner.invoke(app, ["lineage", str(run_dir), "first"])
    assert bad.exit_code == 2 and "trial number or 'knee'" in bad.stderr
    nothing = runner.invoke(app, ["lineage", str(run_dir.parent / "nope"), "1"])
    assert nothing.exit_code == 2 and "not a run directory" in nothing.stderr
