"""Every registered space: samples, builds, runs forward, mutates, crosses over, round-trips."""

import itertools
import json

import numpy as np
import pytest
import torch

from hwnas.errors import GenotypeError
from hwnas.spaces import SPACES, make_space
from hwnas.types import Genotype

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", SPACES.names())
def test_space_contract(name):
    space = make_space(name)
    assert space.name == name
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(3)]
    for g in genotypes:
        space.validate(g)
        assert Genotype.from_json(json.loads(json.dumps(g.to_json()))) == g
        assert space.parse(g.spec) == g
        vector = space.encode(g)
        assert vector.shape == (space.encoding_size,) and np.isfinite(vector).all()
        child = space.mutate(g, rng)
        assert child != g
        space.validate(child)
    for a, b in itertools.pairwise(genotypes):
        space.validate(space.crossover(a, b, rng))
    model = space.build(genotypes[0], num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10) and torch.isfinite(out).all()
    # A space's settings recreate it.
    assert make_space(name, space.config()).config() == space.config()


@pytest.mark.parametrize("name", SPACES.names())
def test_space_rejects_malformed_and_foreign_genotypes(name):
    space = make_space(name)
    with pytest.raises(GenotypeError):
        space.parse("definitely not an architecture")
    other = next(n for n in SPACES.names() if n != name)
    foreign = make_space(other).sample(np.random.default_rng(0))
    with pytest.raises(GenotypeError, match="belongs to space"):
        space.validate(foreign)


def test_space_imports_do_not_need_torch():
    import subprocess
    import sys

    code = "import sys, hwnas.spaces as s\nfor n in s.SPACES.names(): s.make_space(n)\nassert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
