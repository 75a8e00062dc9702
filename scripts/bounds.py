"""Check that the dependency bounds in pyproject.toml are the ones that were tested.

    python scripts/bounds.py extras      # the optional extras, comma-separated (for make)
    python scripts/bounds.py lowest      # in the lowest venv: every direct dependency is
                                         # installed at its lower bound, and
                                         # constraints-lowest.txt says the same
    python scripts/bounds.py locked      # in the locked venv: every direct dependency is
                                         # installed at the version requirements.lock pins

"Direct dependencies" are [project] dependencies plus every optional extra's. `extras`
needs only the standard library; the others need `packaging` (matplotlib brings it).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints-lowest.txt"
LOCK = ROOT / "requirements.lock"


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def extras() -> list[str]:
    return sorted(_project().get("optional-dependencies", {}))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct():
    """Every direct requirement that applies here (markers evaluated), by normalised name."""
    from packaging.requirements import Requirement

    project = _project()
    lines = list(project.get("dependencies", []))
    for reqs in project.get("optional-dependencies", {}).values():
        lines += reqs
    out = {}
    for line in lines:
        req = Requirement(line)
        if _norm(req.name) == _norm(project["name"]):  # an extra that names other extras
            continue
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ["", *extras()]):
            out.setdefault(_norm(req.name), []).append(req)
    return out


def _pins(path: Path) -> dict[str, str]:
    """The name == version lines of a requirements file whose markers hold here."""
    from packaging.markers import Marker

    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;\\]+)", line)
        marker = line.partition(";")[2].rstrip(" \\").strip()
        if m and (not marker or Marker(marker).evaluate()):
            pins[_norm(m.group(1))] = m.group(3)
    return pins


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def lowest() -> list[str]:
    from packaging.version import Version

    problems = []
    pins = _pins(CONSTRAINTS)
    for name, reqs in direct().items():
        lows = [Version(s.version) for r in reqs for s in r.specifier if s.operator in (">=", "==")]
        if not lows:
            problems.append(f"{name}: give it a lower bound (>=) in pyproject.toml")
            continue
        low = max(lows)
        if name not in pins or Version(pins[name]) != low:
            problems.append(f"{name}: constraints-lowest.txt must say {name}=={low}")
        have = _installed(name)
        if have is None or Version(have) != low:
            problems.append(f"{name}: installed {have}, lower bound {low}")
    for name in sorted(set(pins) - set(direct())):
        problems.append(f"{name}: in constraints-lowest.txt but not a direct dependency")
    return problems


def locked() -> list[str]:
    from packaging.version import Version

    problems = []
    pins = _pins(LOCK)
    for name, reqs in direct().items():
        have = _installed(name)
        if name not in pins:
            problems.append(f"{name}: not in requirements.lock; run `make lock`")
        elif have is None or Version(have) != Version(pins[name]):
            problems.append(f"{name}: installed {have}, requirements.lock pins {pins[name]}")
        for r in reqs:
            if name in pins and not r.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{name}: the lock's {pins[name]} is outside {r}; run `make lock`")
    return problems


def main(argv: list[str]) -> int:
    if argv == ["extras"]:
        print(",".join(extras()))
        return 0
    if argv in (["lowest"], ["locked"]):
        problems = lowest() if argv == ["lowest"] else locked()
        for p in problems:
            print(f"bounds: {p}", file=sys.stderr)
        if not problems:
            print(f"bounds: {len(direct())} direct dependencies at the {argv[0]} versions")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
