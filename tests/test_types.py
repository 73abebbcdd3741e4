import json
import math

from hwnas.types import Candidate, Genotype, Measurement, Trial, TrialState


def test_genotype_json_round_trip_and_stable_key():
    g = Genotype("macro", "02012100")
    assert Genotype.from_json(json.loads(json.dumps(g.to_json()))) == g
    assert g.key() == "macro:02012100"
    import hashlib

    # The digest is a pure function of the key (no per-process hash seed).
    assert g.digest() == hashlib.sha1(b"macro:02012100").hexdigest()[:16]
    assert Genotype("macro", "02012100").digest() == g.digest()
    assert Genotype("macro", "02012101").digest() != g.digest()
    assert hash(g) == hash(Genotype("macro", "02012100"))


def test_measurement_round_trip_keeps_unit_stats_env():
    m = Measurement(
        "latency", 3.2, "ms", device="cpu", stats={"p10": 3.0, "n": 30}, env={"threads": 1}
    )
    back = Measurement.from_json(json.loads(json.dumps(m.to_json())))
    assert back == m


def test_trial_value_and_states():
    c = Candidate(Genotype("macro", "00000000"), parent=3, info={"generation": 2})
    assert Candidate.from_json(json.loads(json.dumps(c.to_json()))) == c
    t = Trial(0, c, TrialState.QUEUED)
    assert math.isnan(t.value("params"))
    done = t.with_result(TrialState.COMPLETE, {"params": Measurement("params", 10.0, "count")})
    assert done.value("params") == 10.0
    assert (
        done.state.finished and not TrialState.RUNNING.finished and not TrialState.QUEUED.finished
    )
