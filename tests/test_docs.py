"""The README stays a short overview whose links work, and the docs site builds with no warnings."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 300
# [text](target) outside code; the target ends at whitespace or ')'.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _readme_links() -> list[str]:
    text = re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    return LINK.findall(text)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_relative_links_point_to_files() -> None:
    links = _readme_links()
    assert any(link.startswith("docs/") for link in links), "README.md should link into docs/"
    missing = []
    for link in links:
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            continue  # web addresses; in-page anchors are checked by the strict site build
        path = link.split("#", 1)[0]
        if not (ROOT / path).is_file():
            missing.append(link)
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install '.[docs]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the banner is not a warning
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "getting-started" / "index.html").is_file()
