"""Latency lookup tables: distinct entries, sums, files, cache keys and table-backed devices."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwnas.devices import load_device
from hwnas.errors import ConfigError, DeviceError
from hwnas.hardware import fingerprint
from hwnas.profilers.base import SpreadWarning
from hwnas.profilers.latency import measure_torch_latencies
from hwnas.profilers.lut import LatencyTable, LutEntry, table_path
from hwnas.profilers.lut_parts import network_plan
from hwnas.spaces.blocks import make_block
from hwnas.spaces.mobilenet import MobileNetSpace
from hwnas.spaces.nb201 import NB201Space

TWO_SLOTS = [[16, 1, 1], [24, 2, 1]]


@pytest.fixture
def small_space() -> MobileNetSpace:
    return MobileNetSpace(stages=TWO_SLOTS)


@pytest.fixture
def table(small_space, fast_cpu) -> LatencyTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        return LatencyTable.build(small_space, fast_cpu, num_classes=10)


def test_every_distinct_block_is_measured_once(table, small_space, fast_cpu) -> None:
    slots = small_space.slot_specs()
    blocks = {table.plan.slot_key(s, c) for s in slots for c in s.choices}
    assert len(blocks) == sum(len(s.choices) for s in slots) == 9 + 8
    assert set(table.entries) == blocks | {table.plan.stem_key, table.plan.head_key, "overhead"}
    assert table.plan.stem_key == "stem|3>16|s1|32x32"
    assert table.plan.head_key == "head|24>256|c10|16x16"
    assert "ir_k5_e6|16>24|s2|32x32" in table.entries
    for entry in table.entries.values():
        assert entry.ms >= 0 and entry.stats["n"] == 7
    # Heavier blocks cost more: expansion 6 against expansion 1 at the same place.
    first = slots[0]
    ms = dict(zip(first.choices, table.slot_ms(first)))
    assert ms["ir_k5_e6"] > ms["ir_k3_e1"] > ms["skip"]
    assert table.meta["fingerprint"] == fingerprint(fast_cpu)


def test_lut_sum_of_single_block_network_is_entry_plus_fixed(fast_cpu) -> None:
    space = MobileNetSpace(stages=[[16, 1, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        table = LatencyTable.build(space, fast_cpu, num_classes=10)
    (slot,) = space.slot_specs()
    for choice in slot.choices:
        g = space.parse(choice)
        entry = table.entries[f"{choice}|16>16|s1|32x32"].ms
        fixed = (
            table.entries[table.plan.stem_key].ms
            + table.entries[table.plan.head_key].ms
            + table.entries["overhead"].ms
        )
        assert table.predict(g) == pytest.approx(entry + fixed)
        assert table.fixed_ms == pytest.approx(fixed)


def test_lut_sum_tracks_measured_latency(table, small_space, fast_cpu) -> None:
    # Orderings, not absolute times: the heaviest network predicts and measures slower.
    light = small_space.parse("skip-ir_k3_e1")
    heavy = small_space.parse("ir_k5_e6-ir_k5_e6")
    models = [small_space.build(g, num_classes=10) for g in (light, heavy)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        fast, slow = measure_torch_latencies(models, (3, 32, 32), profile=fast_cpu)
    # 4.3x the MACs; eager mode's fixed cost per module narrows the latency ratio.
    assert table.predict(heavy) > 1.5 * table.predict(light)
    # The fastest of the timed runs: other processes on a shared machine only ever add time.
    assert slow.stats["min"] > 1.5 * fast.stats["min"]


def test_per_slot_queries_for_the_supernet(table, small_space) -> None:
    matrix = table.choice_matrix()
    slots = small_space.slot_specs()
    assert [len(row) for row in matrix] == [len(s.choices) for s in slots]
    g = small_space.parse("ir_k3_e3-ir_k5_e1_g2")
    specs = small_space.layer_specs(g)
    by_layer = [table.layer_ms(s) for s in specs]
    by_choice = [table.choice_ms(slots[i], specs[i].choice) for i in range(2)]
    assert by_layer == by_choice
    assert table.predict(g) == pytest.approx(table.fixed_ms + sum(by_layer))
    m = table.measurement(g, device="cpu")
    assert m.metric == "latency" and m.unit == "ms" and m.env["method"] == "lut"


def test_save_load_round_trip(table, small_space, tmp_path: Path) -> None:
    path = table.save(tmp_path / "t.json")
    again = LatencyTable.load(path)
    assert again.space.config() == small_space.config()
    assert again.entries == table.entries
    g = small_space.parse("ir_k3_e6-ir_k3_e3")
    assert again.predict(g) == table.predict(g)
    with pytest.raises(DeviceError, match="not a latency table"):
        path.write_text("{}")
        LatencyTable.load(path)


def test_cache_path_depends_on_device_and_space(small_space, fast_cpu) -> None:
    a = table_path(fast_cpu, small_space, num_classes=10)
    assert fingerprint(fast_cpu) in a.name and a.suffix == ".json"
    assert table_path(replace(fast_cpu, batch_size=4), small_space, num_classes=10) != a
    assert table_path(fast_cpu, MobileNetSpace(), num_classes=10) != a
    assert table_path(fast_cpu, small_space, num_classes=100) != a
    assert table_path(fast_cpu, small_space, num_classes=10, input_shape=(3, 64, 64)) != a


def test_input_shape_changes_resolutions(small_space) -> None:
    plan = network_plan(small_space, num_classes=10, input_shape=(1, 28, 20))
    assert plan.slot_hw == ((28, 20), (28, 20))
    assert plan.head_hw == (14, 10) and plan.stem_key == "stem|1>16|s1|28x20"


def test_spaces_without_blocks_are_refused(fast_cpu) -> None:
    with pytest.raises(ConfigError, match="--latency measured"):
        LatencyTable.build(NB201Space(), fast_cpu)


def test_onnxruntime_table(small_space, fast_ort) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpreadWarning)
        table = LatencyTable.build(small_space, fast_ort, num_classes=10)
    assert table.meta["profile"]["runtime"] == "onnxruntime"
    heavy, light = small_space.parse("ir_k5_e6-ir_k5_e6"), small_space.parse("skip-ir_k3_e1")
    assert table.predict(heavy) > table.predict(light) > 0


def test_table_backed_device(table, small_space, tmp_path: Path) -> None:
    # A device hwnas cannot run on: its table (with energy) was measured there.
    data = table.to_json()
    for i, entry in enumerate(data["entries"].values()):
        entry["energy_mj"] = 0.5 + i
    (tmp_path / "phone-table.json").write_text(json.dumps(data))
    (tmp_path / "phone.toml").write_text('runtime = "table"\ntable = "phone-table.json"\n')
    profile = load_device(tmp_path / "phone.toml")
    from hwnas.hardware import availability

    assert availability(profile).usable and availability(profile).energy
    loaded = LatencyTable.load(profile.table_path())
    g = small_space.parse("ir_k3_e1-ir_k3_e1")
    assert loaded.predict(g) == pytest.approx(table.predict(g))
    assert loaded.predict_energy(g) > 0
    other = loaded.for_space(MobileNetSpace(), num_classes=10)
    with pytest.raises(DeviceError, match="has no entry"):
        other.predict(MobileNetSpace().sample(np.random.default_rng(0)))


def test_entries_are_standalone_blocks(table, small_space) -> None:
    # The table's key names the module make_block builds for it.
    block = make_block("ir_k3_e6", 16, 24, 2)
    assert block.expand[0].out_channels == 96 and block.depthwise[0].stride == (2, 2)
    assert isinstance(table.entries["ir_k3_e6|16>24|s2|32x32"], LutEntry)
