"""``hwnas profile torchvision:NAME`` counts the network that is deployed: no auxiliary heads."""

from __future__ import annotations

import pytest

from hwnas.devices import load_device
from hwnas.profilers.profile import profile_model, resolve_model


@pytest.mark.timeout(300)
def test_googlenet_counts_the_deployed_network_as_torchvision_publishes_it():
    ref = resolve_model("torchvision:googlenet")
    assert getattr(ref.module, "aux1", None) is None and getattr(ref.module, "aux2", None) is None
    results = profile_model(ref, load_device("cpu-eager"), metrics=["params"])
    assert results["params"].value == 6_624_904  # torchvision's published figure
