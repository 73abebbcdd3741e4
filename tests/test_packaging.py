"""The README's two commands are what CI runs; the wheel's package list is complete."""

import re
from pathlib import Path

from hwnas.config import loads_toml

REPO = Path(__file__).resolve().parents[1]


def _readme_setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Set up and test", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.strip().splitlines()]


def test_ci_runs_the_readme_commands():
    install, test = _readme_setup_commands()
    ci = (REPO / ".ci" / "run").read_text()
    # CI makes its own fresh environment; the rest of the install line must be run as written.
    pip_part = install.split("&&")[-1].strip()
    assert pip_part.startswith("pip install") and pip_part in ci.splitlines()
    assert test in [line.strip() for line in ci.splitlines()]


def test_every_package_is_listed_for_the_wheel():
    config = loads_toml((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "hwnas").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= listed, (
        f"add to pyproject.toml [tool.setuptools] packages: {on_disk - listed}"
    )
    assert config["package-dir"]["hwnas.device_profiles"] == "device_profiles"
    assert any((REPO / "device_profiles").glob("*.toml"))
