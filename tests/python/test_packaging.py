"""pyproject.toml is the one list of Python dependencies; requirements-dev.txt
(what ./dev.sh installs) must mirror it."""
import re

import pytest

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")


def names(reqs):
    return {re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for r in reqs if r.strip() and not r.strip().startswith("#")}


def test_requirements_dev_mirrors_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = names(meta["build-system"]["requires"] + meta["project"]["dependencies"]
                     + meta["project"]["optional-dependencies"]["test"])
    dev = names((ROOT / "requirements-dev.txt").read_text().splitlines())
    assert dev == declared, (f"only in requirements-dev.txt: {sorted(dev - declared)}; "
                             f"only in pyproject.toml: {sorted(declared - dev)}")
