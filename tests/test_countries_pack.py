"""The bundled countries pack: knowledge/countries/build.py and what it produces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("countryinfo", reason="countryinfo is not installed (pip install -e .)")
pytest.importorskip("pycountry", reason="pycountry is not installed (pip install -e .)")

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "knowledge" / "countries" / "build.py"


def build(out: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the build script as a user would; its stdout."""
    done = subprocess.run([sys.executable, str(BUILD), "--out", str(out), *args],
                          check=False, capture_output=True, text=True, timeout=300,
                          env=env if env is not None else os.environ.copy())
    assert done.returncode == 0, done.stderr
    return done.stdout


class Pack:
    """The built JSON, indexed for the assertions below."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.text = (folder / "data" / "countries.json").read_text(encoding="utf-8")
        self.data: dict[str, Any] = json.loads(self.text)
        self.nodes = {n["id"]: n for n in self.data["nodes"]}
        self.notes = (folder / "data" / "NOTES.txt").read_text(encoding="utf-8")

    def country(self, name: str) -> dict[str, Any]:
        found = [n for n in self.data["nodes"] if n["name"] == name and n["type"] == "country"]
        assert len(found) == 1, f"{len(found)} countries named {name}"
        return found[0]

    def targets(self, name: str, relation: str) -> set[str]:
        source = self.country(name)["id"]
        return {self.nodes[e["target"]]["name"] for e in self.data["edges"]
                if e["source"] == source and e["relation"] == relation}


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    out = tmp_path_factory.mktemp("countries")
    build(out)
    return Pack(out)


def test_france(pack: Pack) -> None:
    france = pack.country("France")
    assert pack.targets("France", "capital") == {"Paris"}
    assert pack.targets("France", "region") == {"Europe"}
    assert pack.targets("France", "subregion") == {"Western Europe"}
    assert {"Germany", "Spain", "Belgium"} <= pack.targets("France", "borders")
    assert "French" in pack.targets("France", "language")
    assert pack.targets("France", "currency") == {"Euro"}
    assert isinstance(france["attributes"]["population"], int)
    assert france["attributes"]["population"] > 10_000_000
    assert isinstance(france["attributes"]["area"], float)
    assert "French Republic" in france["aliases"]
    assert "FR" not in france["aliases"] and "FRA" not in france["aliases"]


def test_common_abbreviations_are_aliases_even_when_they_are_the_iso_code(pack: Pack) -> None:
    # "USA" is the United States' own ISO alpha-3 code; people type it, so it stays an alias
    assert {"USA", "US"} & set(pack.country("United States")["aliases"]) == {"USA"}
    assert "UK" in pack.country("United Kingdom")["aliases"]
    assert "GBR" not in pack.country("United Kingdom")["aliases"]


def test_graph_is_well_formed(pack: Pack) -> None:
    data = pack.data
    assert data["name"] == "countries" and data["description"]
    ids = [n["id"] for n in data["nodes"]]
    assert len(ids) == len(set(ids))
    relations = {r["id"] for r in data["relations"]}
    assert all(r["name"] and r["inverse_name"] for r in data["relations"])
    for edge in data["edges"]:
        assert edge["source"] in pack.nodes and edge["target"] in pack.nodes, edge
        assert edge["relation"] in relations
    for node in data["nodes"]:
        assert set(node.get("attributes", {})) <= relations
        assert node["name"].strip() and node["type"] in {
            "country", "city", "region", "subregion", "language", "currency"}
    countries = [n for n in data["nodes"] if n["type"] == "country"]
    assert len(countries) >= 240
    # borders are stored both ways
    borders = {(e["source"], e["target"]) for e in data["edges"] if e["relation"] == "borders"}
    assert all((t, s) in borders for s, t in borders)


def test_quirks_are_smoothed(pack: Pack) -> None:
    # Burma and Myanmar are one country; Burma is an alias
    assert "Burma" in pack.country("Myanmar")["aliases"]
    assert not [n for n in pack.data["nodes"] if n["name"] == "Burma"]
    # two Kingstons (Jamaica, Norfolk Island) stay apart, both named Kingston
    kingstons = [n for n in pack.data["nodes"] if n["type"] == "city" and n["name"] == "Kingston"]
    assert len(kingstons) == 2
    assert pack.targets("Jamaica", "capital") == {"Kingston"}
    capital_ids = {pack.country(name)["id"]: set() for name in ("Jamaica", "Norfolk Island")}
    for edge in pack.data["edges"]:
        if edge["relation"] == "capital" and edge["source"] in capital_ids:
            capital_ids[edge["source"]].add(edge["target"])
    jamaica, norfolk = capital_ids.values()
    assert jamaica and norfolk and jamaica != norfolk
    # one spelling per subregion, and each subregion belongs to one region
    subregions = [n["name"].casefold() for n in pack.data["nodes"] if n["type"] == "subregion"]
    assert len(subregions) == len(set(subregions))
    assert pack.targets("France", "subregion")
    part_of = [e for e in pack.data["edges"] if e["relation"] == "part_of_region"]
    assert len(part_of) == len(subregions)
    # languages and currencies have readable names, never bare codes
    for node in pack.data["nodes"]:
        if node["type"] in ("language", "currency"):
            assert node["name"] != node["id"].split(":", 1)[1], node
    assert "Antarctica" in pack.notes  # a country without a capital is reported


def test_flag_images(pack: Pack) -> None:
    countries = [n for n in pack.data["nodes"] if n["type"] == "country"]
    with_image = [n for n in countries if "image" in n]
    if "unavailable" in pack.notes:  # no npm or no network here: said, and still a valid pack
        assert not with_image
        assert "without images" in pack.notes
        return
    assert len(with_image) >= 0.95 * len(countries)
    for node in with_image:
        path = pack.folder / "data" / node["image"]
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert pack.country("France")["image"] == "flags/fr.png"
    assert "flag images:" in pack.notes


def test_rebuild_is_quick_and_deterministic(pack: Pack, tmp_path: Path) -> None:
    assert "up to date" in build(pack.folder)
    build(tmp_path, "--force")
    assert (tmp_path / "data" / "countries.json").read_text(encoding="utf-8") == pack.text
    assert (tmp_path / "manifest.json").is_file()


def test_without_images(tmp_path: Path) -> None:
    build(tmp_path, "--no-images")
    built = Pack(tmp_path)
    assert not [n for n in built.data["nodes"] if "image" in n]
    assert not (tmp_path / "data" / "flags").exists()
    assert "without images" in built.notes
    assert built.targets("France", "capital") == {"Paris"}


def test_without_npm(tmp_path: Path) -> None:
    """No npm on PATH and nothing cached: the pack is built without images and says why."""
    env = os.environ.copy()
    env["PATH"] = str(tmp_path / "empty-bin")
    out = tmp_path / "pack"
    build(out, "--cache", str(tmp_path / "cache"), env=env)
    built = Pack(out)
    assert "flag images unavailable: npm not found" in built.notes
    assert not [n for n in built.data["nodes"] if "image" in n]


def test_manifest_points_at_the_build() -> None:
    manifest = json.loads((REPO / "knowledge" / "countries" / "manifest.json").read_text())
    assert manifest["name"] == "countries"
    assert manifest["files"] == [{"path": "data/countries.json", "format": "jsongraph"}]
    assert manifest["notes_file"] == "data/NOTES.txt"
    assert "build.py" in manifest["build_hint"]


def test_loads_with_the_jsongraph_loader(pack: Pack) -> None:
    from kqa.load import parse_source
    from kqa.plugins import get_plugins

    if "jsongraph" not in get_plugins().loaders():
        pytest.skip("jsongraph loader not available")
    docs = parse_source(pack.folder)
    assert len(docs) == 1
    doc = docs[0]
    assert len(doc.entities) >= len(pack.data["nodes"]) - 5
    france = doc.entities[pack.country("France")["id"]]
    assert france.name == "France"
    if "image" in pack.country("France"):
        assert france.image is not None and Path(france.image).is_file()
    population = [t for t in doc.triples
                  if t.subject == france.key and t.relation == "population"]
    assert len(population) == 1 and not isinstance(population[0].object, str)
