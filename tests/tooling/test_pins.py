"""constraints.txt pins everything `make setup` installs, within pyproject.toml's bounds, and is what runs."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("pip", "setuptools", "Cython")  # installed by the Makefile before the package


def _pins() -> dict[NormalizedName, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lines = project["build-system"]["requires"] + project["project"]["dependencies"]
    lines += [line for extra in project["project"]["optional-dependencies"].values() for line in extra]
    return [Requirement(line) for line in lines]


def _needed(root: Requirement) -> set[NormalizedName]:
    """Every distribution `root` pulls in, transitively, as installed (extras and markers honoured)."""
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo = [root]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dependency)
    return {name for name, _ in seen}


def test_every_installed_dependency_is_pinned() -> None:
    pins = _pins()
    needed = _needed(Requirement("mini-llm[test]")) - {"mini-llm"}
    needed |= {canonicalize_name(tool) for tool in BUILD_TOOLS}
    assert sorted(needed - pins.keys()) == []


def test_the_pins_meet_the_lower_bounds_in_pyproject() -> None:
    pins = _pins()
    for requirement in _declared():
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not pinned"
        assert requirement.specifier.contains(version, prereleases=True), f"{requirement} excludes the pin {version}"


def test_the_venv_runs_the_pinned_versions() -> None:
    """What the suite runs on is what was pinned: `make setup` installed with the constraints."""
    wrong = {}
    for name, version in _pins().items():
        installed = metadata.version(name)
        if installed != version:
            wrong[name] = f"{installed} installed, {version} pinned"
    assert wrong == {}, "run `make setup` (it reinstalls when constraints.txt changes)"
