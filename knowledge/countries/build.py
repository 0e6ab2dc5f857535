"""Build the bundled countries pack: ``data/countries.json`` (jsongraph) and ``data/flags/``.

    python knowledge/countries/build.py [--out DIR] [--no-images] [--force]

The facts come from the PyPI package ``countryinfo`` and the flag images from the npm package
``svg-country-flags`` (public domain PNG renders, fetched with ``npm pack`` into ``.cache/npm``
and reused). Nothing generated is committed: ``data/`` is git-ignored and rebuilt by
``make app`` / ``make test``. Without npm (or offline) the pack is built without images and
``data/NOTES.txt`` says so, because a KG without pictures is still a useful KG.

countryinfo merges two folders of hand-made JSON, so the data has quirks this script smooths
over and counts: records that describe one country under two names (Myanmar / Burma, two
Vatican records) are merged on their ISO code; capitals come as a string, a list or nothing;
region names differ in case; border codes may be ISO alpha-2 or unknown; a few language and
currency codes are outdated. Output is sorted, so two builds give byte-identical JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACK = Path(__file__).resolve().parent
REPO = PACK.parents[1]
FLAGS_PACKAGE = "svg-country-flags@1.2.10"
FLAGS_TARBALL = "svg-country-flags-1.2.10.tgz"
FLAGS_MEMBER = "package/png250px/{code}.png"
FORMAT_VERSION = 1  # bump when the output's shape changes, so stale builds are redone

RELATIONS = [
    {"id": "capital", "name": "capital", "inverse_name": "capital of"},
    {"id": "region", "name": "region", "inverse_name": "region includes"},
    {"id": "subregion", "name": "subregion", "inverse_name": "subregion includes"},
    {"id": "part_of_region", "name": "part of region", "inverse_name": "has subregion"},
    {"id": "borders", "name": "borders", "inverse_name": "borders"},
    {"id": "language", "name": "official language", "inverse_name": "spoken in"},
    {"id": "currency", "name": "currency", "inverse_name": "used in"},
    {"id": "population", "name": "population", "inverse_name": "population of"},
    {"id": "area", "name": "area in km²", "inverse_name": "area of"},
]

# Known slips in countryinfo's codes, mapped to what they mean.
LANGUAGE_FIXES = {"rs": "sr"}  # Serbia lists its country code instead of the language's
# Where pycountry's ISO name is not the usual English one (the ISO name stays an alias).
LANGUAGE_NAMES = {"el": "Greek", "to": "Tongan", "ky": "Kyrgyz", "ps": "Pashto", "pa": "Punjabi",
                  "ht": "Haitian Creole", "dv": "Dhivehi"}
# Withdrawn ISO 4217 codes still used by countryinfo (pycountry lists current codes only).
WITHDRAWN_CURRENCIES = {
    "BGN": "Bulgarian Lev", "BYR": "Belarusian Ruble (2000–2016)",
    "CSD": "Serbian Dinar (2003–2006)",
    "CUC": "Cuban Convertible Peso", "HRK": "Croatian Kuna", "MRO": "Ouguiya (1973–2017)",
    "SLL": "Leone (1964–2022)", "STD": "Dobra (1977–2017)", "USS": "US Dollar (Same day)",
    "VEF": "Bolívar Fuerte", "ZMK": "Zambian Kwacha (1968–2012)",
}
# Flags of records that have no ISO alpha-2 code of their own (svg-country-flags names them).
SUBDIVISION_FLAGS = {"scotland": "gb-sct", "wales": "gb-wls", "england": "gb-eng",
                     "northern ireland": "gb-nir"}
FACT_FIELDS = ("capital", "region", "subregion", "population", "area", "borders", "languages",
               "currencies", "altSpellings", "nativeName")


@dataclass
class Report:
    """Counts and oddities, printed at the end and summarised in NOTES.txt."""

    counts: Counter = field(default_factory=Counter)
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def note(self, kind: str, what: str) -> None:
        self.notes[kind].append(what)


# -- reading countryinfo ------------------------------------------------------------------

def load_records() -> list[dict[str, Any]]:
    """Every country record countryinfo has, each tagged with whether countryinfo's own ISO
    lookup resolves to it (the tie-breaker when two records share a code)."""
    from countryinfo import CountryInfo, CountryNotFoundError

    records = []
    for key, data in sorted(CountryInfo.all().items()):
        record = dict(data)
        alpha3 = _text((record.get("ISO") or {}).get("alpha3")).upper()
        record["_preferred"] = False
        if alpha3:
            try:
                record["_preferred"] = CountryInfo(alpha3).name() == record.get("name")
            except (CountryNotFoundError, ValueError):
                record["_preferred"] = False
        records.append(record)
    return records


def _text(value: Any) -> str:
    """A stripped string from a field that may be a string, a list of strings or null."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), "")
    return value.strip() if isinstance(value, str) else ""


def _list(value: Any) -> list[str]:
    return [v.strip() for v in value if isinstance(v, str) and v.strip()] if isinstance(
        value, list) else []


def _richness(record: dict[str, Any]) -> int:
    return sum(1 for f in FACT_FIELDS if record.get(f) not in (None, "", [], 0))


def _spellings(record: dict[str, Any]) -> set[str]:
    return {s.casefold() for s in [_text(record.get("name")), _text(record.get("nativeName")),
                                   *_list(record.get("altSpellings"))] if s}


def same_country(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records sharing an ISO code name the same country (Burma is listed among
    Myanmar's spellings), rather than a part of it (Wales carries the UK's code)."""
    name_a, name_b = _text(a["name"]).casefold(), _text(b["name"]).casefold()
    return (name_a in _spellings(b) or name_b in _spellings(a)
            or name_a in name_b or name_b in name_a)


def merge_records(records: list[dict[str, Any]], report: Report) -> list[dict[str, Any]]:
    """One record per country: duplicates sharing an ISO alpha-3 code are folded into the
    richest record (its names become aliases, its empty fields are filled); a record that
    shares a code without being the same country keeps its own node without the code."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[_text((record.get("ISO") or {}).get("alpha3")).upper()].append(record)
    merged = []
    for code, group in sorted(groups.items()):
        if not code:
            for record in group:
                report.note("without an ISO code (kept, id from the name)", record["name"])
                merged.append(record | {"_id": "country:" + _slug(record["name"])})
            continue
        group.sort(key=lambda r: (-_richness(r), not r["_preferred"], r["name"]))
        primary = dict(group[0], _id=code, _also=[])
        for other in group[1:]:
            if same_country(primary, other):
                report.note("merged (same ISO code)", f"{other['name']} → {primary['name']}")
                primary["_also"] += [other["name"], *_list(other.get("altSpellings")),
                                     _text(other.get("nativeName"))]
                for name in FACT_FIELDS:
                    if primary.get(name) in (None, "", [], 0) and other.get(name):
                        primary[name] = other[name]
            else:
                report.note("shares an ISO code with another country (kept, id from the name)",
                            f"{other['name']} ({code}, {primary['name']})")
                merged.append(other | {"_id": "country:" + _slug(other["name"]), "ISO": {}})
        merged.append(primary)
    return sorted(merged, key=lambda r: r["_id"])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


# -- building the graph -------------------------------------------------------------------

class Graph:
    """Nodes and edges being built, keyed so repeated mentions collapse."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: set[tuple[str, str, str]] = set()

    def node(self, node_id: str, name: str, kind: str, **extra: Any) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"id": node_id, "name": name, "type": kind, **extra}
        return node_id

    def edge(self, source: str, relation: str, target: str) -> None:
        self.edges.add((source, relation, target))

    def to_json(self, description: str) -> dict[str, Any]:
        nodes = [self.nodes[k] for k in sorted(self.nodes)]
        edges = [{"source": s, "relation": r, "target": t} for s, r, t in sorted(self.edges)]
        return {"name": "countries", "description": description, "relations": RELATIONS,
                "nodes": nodes, "edges": edges}


TYPED_ABBREVIATIONS = frozenset({"UK", "UAE", "USA", "DRC", "RSA"})


def aliases(record: dict[str, Any]) -> list[str]:
    """Other names of a country: alternative spellings and native names, without its ISO
    codes and other bare codes (they would match every "FR" or "IT" in a question) except the
    abbreviations people type (:data:`TYPED_ABBREVIATIONS`), and without its own name."""
    iso = record.get("ISO") or {}
    codes = {str(v).upper() for v in iso.values() if v}
    name = record["name"].casefold()
    seen: dict[str, str] = {}
    for alias in [*_list(record.get("altSpellings")), _text(record.get("nativeName")),
                  *record.get("_also", [])]:
        alias = alias.strip()
        if not alias or alias.casefold() == name:
            continue
        bare_code = alias.upper() in codes or re.fullmatch(r"[A-Z]{2,3}", alias)
        if bare_code and alias not in TYPED_ABBREVIATIONS:
            continue  # the abbreviations people type stay, "USA" though it is an ISO code
        seen.setdefault(alias.casefold(), alias)
    return sorted(seen.values())


def canonical_names(records: list[dict[str, Any]], field_name: str) -> dict[str, str]:
    """casefolded → most common spelling, so "South-Eastern Asia" joins "South-eastern Asia"."""
    spellings: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        value = _text(record.get(field_name))
        if value:
            spellings[value.casefold()][value] += 1
    return {k: max(sorted(c), key=c.__getitem__) for k, c in spellings.items()}


def capital_ids(records: list[dict[str, Any]]) -> dict[str, str]:
    """Country id → capital node id; a capital name used by several countries (Kingston in
    Jamaica and in Norfolk Island) gets the country code in its id, its name stays readable."""
    names = {r["_id"]: _text(r.get("capital")) for r in records}
    used = Counter(n for n in names.values() if n)
    return {cid: f"city:{n}" if used[n] == 1 else f"city:{n} ({cid.split(':')[-1]})"
            for cid, n in names.items() if n}


def language(code: str) -> tuple[str, str, list[str]] | None:
    """(node id, English name, aliases) for an ISO 639-1/639-3 code or a language name."""
    import pycountry

    code = LANGUAGE_FIXES.get(code, code)
    found = (pycountry.languages.get(alpha_2=code.lower()) if len(code) == 2 else
             pycountry.languages.get(alpha_3=code.lower()) if len(code) == 3 else None)
    if found is None and len(code) > 3:
        try:
            found = pycountry.languages.lookup(code)
        except LookupError:
            found = None
    if found is None:
        return None
    key = getattr(found, "alpha_2", None) or found.alpha_3
    iso_name = re.sub(r"\s*\(.*\)$", "", found.name)
    name = LANGUAGE_NAMES.get(key, iso_name)
    return "language:" + key, name, [iso_name] if iso_name != name else []


def currency(code: str) -> tuple[str, str] | None:
    import pycountry

    found = pycountry.currencies.get(alpha_3=code.upper())
    name = found.name if found else WITHDRAWN_CURRENCIES.get(code.upper())
    return ("currency:" + code.upper(), name) if name else None


def number(value: Any, kind: type) -> int | float | None:
    """A positive number as ``kind`` (population int, area float), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return kind(value)


def build_graph(records: list[dict[str, Any]], flags: dict[str, str],
                report: Report) -> Graph:
    graph = Graph()
    by_code = {}
    for r in records:
        iso = r.get("ISO") or {}
        for key in ("alpha3", "alpha2"):
            code = _text(iso.get(key)).upper()
            if code and not r["_id"].startswith("country:"):
                by_code.setdefault(code, r["_id"])
    regions = canonical_names(records, "region")
    subregions = canonical_names(records, "subregion")
    capitals = capital_ids(records)
    subregion_regions: dict[str, Counter] = defaultdict(Counter)
    listed: set[tuple[str, str]] = set()
    for r in records:
        cid = r["_id"]
        extra: dict[str, Any] = _aliases(aliases(r))
        if cid in flags:
            extra["image"] = flags[cid]
        attributes = {k: v for k, v in (("population", number(r.get("population"), int)),
                                         ("area", number(r.get("area"), float))) if v is not None}
        for k in ("population", "area"):
            if k not in attributes:
                report.counts[f"countries without {k}"] += 1
        if attributes:
            extra["attributes"] = attributes
        graph.node(cid, r["name"], "country", **extra)
        report.counts["countries"] += 1
        if cid in capitals:
            capital = _text(r.get("capital"))
            cap_extra = _aliases([] if capitals[cid] == f"city:{capital}" else
                                 [f"{capital}, {r['name']}"])
            graph.edge(cid, "capital", graph.node(capitals[cid], capital, "city", **cap_extra))
        else:
            report.note("no capital", r["name"])
        region = regions.get(_text(r.get("region")).casefold())
        subregion = subregions.get(_text(r.get("subregion")).casefold())
        if region:
            graph.edge(cid, "region", graph.node("region:" + region, region, "region"))
        if subregion:
            graph.edge(cid, "subregion",
                       graph.node("subregion:" + subregion, subregion, "subregion"))
            if region:
                subregion_regions[subregion][region] += 1
        if not region and not subregion:
            report.note("no region", r["name"])
        for code in _list(r.get("borders")):
            target = by_code.get(code.upper())
            if target and target != cid:
                listed.add((cid, target))
                graph.edge(cid, "borders", target)
                graph.edge(target, "borders", cid)  # borders are mutual; the data not always
            else:
                report.note("unknown border code (skipped)", f"{code} in {r['name']}")
        for code in _list(r.get("languages")):
            found = language(code)
            if found:
                graph.edge(cid, "language", graph.node(found[0], found[1], "language",
                                                           **_aliases(found[2])))
            else:
                report.note("unknown language code (skipped)", f"{code} in {r['name']}")
        for code in _list(r.get("currencies")):
            found = currency(code)
            if found:
                graph.edge(cid, "currency", graph.node(found[0], found[1], "currency"))
            else:
                report.note("unknown currency code (skipped)", f"{code} in {r['name']}")
    for a, b in sorted(listed):
        if (b, a) not in listed:
            report.note("border listed by one side only (made mutual)", f"{a}–{b}")
    for subregion, counts in sorted(subregion_regions.items()):
        region = max(sorted(counts), key=counts.__getitem__)
        graph.edge("subregion:" + subregion, "part_of_region", "region:" + region)
        if len(counts) > 1:
            report.note("subregion in several regions (majority kept)",
                        f"{subregion}: {dict(counts)}")
    _count(graph, report)
    return graph


def _aliases(names: list[str]) -> dict[str, list[str]]:
    """The ``aliases`` field, left out when there are none."""
    return {"aliases": names} if names else {}


def _count(graph: Graph, report: Report) -> None:
    for node in graph.nodes.values():
        if node["type"] != "country":
            report.counts[node["type"] + " entities"] += 1
    for _, relation, _ in graph.edges:
        report.counts[relation + " edges"] += 1
    report.counts["flags"] = sum(1 for n in graph.nodes.values() if "image" in n)


# -- flags ----------------------------------------------------------------------------------

def fetch_flags_tarball(cache: Path) -> tuple[Path | None, str]:
    """The svg-country-flags tarball from the cache, else from ``npm pack``; (None, why) when
    npm is missing or fails."""
    tarball = cache / FLAGS_TARBALL
    if tarball.is_file() and tarfile.is_tarfile(tarball):
        return tarball, "cached"
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm not found"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([npm, "pack", FLAGS_PACKAGE, "--silent"], cwd=cache,
                              check=False, capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"npm pack {FLAGS_PACKAGE} failed: {exc}"
    if done.returncode != 0 or not tarball.is_file():
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no tarball"]
        return None, f"npm pack {FLAGS_PACKAGE} failed: {why[0]}"
    return tarball, "downloaded with npm pack"


def extract_flags(tarball: Path, records: list[dict[str, Any]], flags_dir: Path,
                  report: Report) -> dict[str, str]:
    """Write each country's 250 px PNG to ``flags_dir``; country id → path relative to data/."""
    wanted: dict[str, str] = {}
    for r in records:
        code = _text((r.get("ISO") or {}).get("alpha2")).lower()
        if r["_id"].startswith("country:"):
            code = SUBDIVISION_FLAGS.get(r["name"].casefold(), "")
        if code:
            wanted[r["_id"]] = code
    if flags_dir.exists():
        shutil.rmtree(flags_dir)
    flags_dir.mkdir(parents=True)
    found: dict[str, str] = {}
    with tarfile.open(tarball) as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        for cid, code in sorted(wanted.items()):
            member = members.get(FLAGS_MEMBER.format(code=code))
            if member is None:
                report.note("no flag image", f"{cid} ({code})")
                continue
            target = flags_dir / f"{code}.png"
            if not target.exists():
                target.write_bytes(archive.extractfile(member).read())
            found[cid] = f"flags/{code}.png"
    missing = {r["_id"] for r in records} - set(wanted)
    for cid in sorted(missing):
        report.note("no flag image", f"{cid} (no ISO alpha-2 code)")
    return found


# -- driver -----------------------------------------------------------------------------------

def stamp(images: bool) -> str:
    """What the output depends on: this script, the package versions, the image mode."""
    from importlib.metadata import version

    parts = [Path(__file__).read_bytes(), str(FORMAT_VERSION).encode(), str(images).encode()]
    for package in ("countryinfo", "pycountry"):
        parts.append(f"{package}=={version(package)}".encode())
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def up_to_date(data: Path, images: bool) -> bool:
    stamp_file = data / ".build-stamp"
    if not (stamp_file.is_file() and (data / "countries.json").is_file()):
        return False
    try:
        recorded = json.loads(stamp_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    flags = len(list((data / "flags").glob("*.png"))) if (data / "flags").is_dir() else 0
    return (recorded.get("stamp") == stamp(images) and recorded.get("complete", False)
            and recorded.get("flags", 0) == flags)


def write_notes(path: Path, report: Report, images_status: str) -> None:
    lines = [images_status]
    for kind, items in sorted(report.notes.items()):
        shown = ", ".join(items[:8]) + (f", … ({len(items)} in all)" if len(items) > 8 else "")
        lines.append(f"{kind}: {shown}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build(out: Path, images: bool = True, force: bool = False,
          cache: Path = REPO / ".cache" / "npm") -> Report | None:
    """Build the pack into ``out`` (a pack folder); None when it was already up to date."""
    data = out / "data"
    if out.resolve() != PACK:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACK / "manifest.json", out / "manifest.json")
    if not force and up_to_date(data, images):
        return None
    data.mkdir(parents=True, exist_ok=True)
    (data / ".build-stamp").unlink(missing_ok=True)
    report = Report()
    records = merge_records(load_records(), report)
    flags: dict[str, str] = {}
    complete = True
    if not images:
        status = "flag images not built (--no-images); the pack loads without images"
        shutil.rmtree(data / "flags", ignore_errors=True)
    else:
        tarball, how = fetch_flags_tarball(cache)
        if tarball is None:
            complete = False  # retried on the next run, when npm may work
            status = f"flag images unavailable: {how}; the pack loads without images"
            shutil.rmtree(data / "flags", ignore_errors=True)
        else:
            flags = extract_flags(tarball, records, data / "flags", report)
            status = (f"flag images: {len(flags)} of {len(records)} countries, from "
                      f"{FLAGS_PACKAGE} (public domain), png250px")
    graph = build_graph(records, flags, report)
    description = ("Countries of the world with their capitals, regions, neighbours, official "
                   "languages, currencies, population and area (from the countryinfo package)"
                   + (", with flag images (svg-country-flags)." if flags else "."))
    write_atomic(data / "countries.json",
                 json.dumps(graph.to_json(description), ensure_ascii=False, indent=1) + "\n")
    write_notes(data / "NOTES.txt", report, status)
    report.notes["images"] = [status]
    (data / ".build-stamp").write_text(json.dumps({
        "stamp": stamp(images), "complete": complete, "flags": len(set(flags.values()))}),
        encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACK,
                        help="pack folder to build (default: this folder); data goes to "
                             "OUT/data and manifest.json is copied, so OUT is a loadable pack")
    parser.add_argument("--no-images", action="store_true", help="skip the flag images")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "npm",
                        help="where the npm tarball is kept (default: .cache/npm)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = build(args.out, images=not args.no_images, force=args.force, cache=args.cache)
    target = args.out / "data" / "countries.json"
    if report is None:
        print(f"{target}: up to date (use --force to rebuild)")
        return 0
    print(f"built {target} in {time.perf_counter() - started:.1f}s")
    for key, value in sorted(report.counts.items()):
        print(f"  {key}: {value}")
    for kind, items in sorted(report.notes.items()):
        print(f"  {kind} ({len(items)}): {'; '.join(items)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
