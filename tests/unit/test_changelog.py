"""The changelog fragments: antsibull-changelog lint passes, every fragment parses into
known sections, and a release of galaxy.yml's version, made in a throw-away copy, renders
every fragment and every module (nothing is released or deleted in the checkout).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHANGELOGS = ROOT / "changelogs"
BIN = Path(sys.executable).parent
ANTSIBULL_CHANGELOG = str(BIN / "antsibull-changelog")
CONFIG = yaml.safe_load((CHANGELOGS / "config.yaml").read_text(encoding="utf-8"))
FRAGMENT_DIR = CHANGELOGS / CONFIG.get("notesdir", "fragments")
FRAGMENTS = sorted(p for p in FRAGMENT_DIR.iterdir() if not p.name.startswith("."))
PRELUDE = CONFIG.get("prelude_section_name", "release_summary")
TRIVIAL = CONFIG.get("trivial_section_name", "trivial")
SECTIONS = {name for name, _title in CONFIG["sections"]} | {PRELUDE, TRIVIAL}


def _run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _flat(text):
    return re.sub(r"\s+", " ", text).strip()


def _entries(fragment):
    """``(section, text)`` for every entry of a fragment file."""
    data = yaml.safe_load(fragment.read_text(encoding="utf-8"))
    for section, value in data.items():
        for text in [value] if isinstance(value, str) else value or []:
            yield section, text


def test_antsibull_changelog_lint_passes():
    result = _run([ANTSIBULL_CHANGELOG, "lint"], cwd=ROOT)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=[p.name for p in FRAGMENTS])
def test_fragment_parses_to_known_sections(fragment):
    # with ignore_other_fragment_extensions, a fragment named *.md or *.yml.txt is skipped silently
    assert fragment.suffix in (".yml", ".yaml"), "antsibull-changelog would ignore %s" % fragment.name
    data = yaml.safe_load(fragment.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data, "not a mapping of sections"
    assert set(data) <= SECTIONS, "unknown sections: %s" % sorted(set(data) - SECTIONS)
    for section, value in data.items():
        if section == PRELUDE:
            assert isinstance(value, str) and value.strip(), section
        else:
            assert isinstance(value, list) and value, "%s: a list of entries" % section
            assert all(isinstance(text, str) and text.strip() for text in value), section


def test_release_preview_renders_every_fragment_and_module(tmp_path):
    """``antsibull-changelog release`` in a copy: the real fragments stay where they are."""
    copy = tmp_path / "ansible_collections" / "homelab" / "k8s_ha"
    copy.mkdir(parents=True)
    for name in ("galaxy.yml", "meta", "plugins", "changelogs"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", ".plugin-cache.yaml"))
        else:
            shutil.copy(source, copy / name)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    result = _run([ANTSIBULL_CHANGELOG, "release", "--version", str(version), "--date", "2000-01-01",
                   "--ansible-doc-bin", str(BIN / "ansible-doc")], cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = [entry["file"] for entry in CONFIG.get("output", [{"file": "CHANGELOG.rst"}])]
    rendered = _flat((copy / outputs[0]).read_text(encoding="utf-8"))
    assert "v%s" % version in rendered
    for fragment in FRAGMENTS:
        for section, text in _entries(fragment):
            if section != TRIVIAL:
                assert _flat(text) in rendered, "%s (%s) is not in the rendered changelog" % (fragment.name, section)
    # every module that no earlier release lists is a new module of this one
    releases = yaml.safe_load((copy / "changelogs" / CONFIG.get("changes_file", "changelog.yaml")).read_text(encoding="utf-8"))["releases"]
    earlier = {m["name"] for v, rel in releases.items() if str(v) != str(version) for m in rel.get("modules", [])}
    listed = {m["name"] for m in releases[str(version)].get("modules", [])}
    modules = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert modules - earlier <= listed, "not listed as new modules: %s" % sorted(modules - earlier - listed)
    for module in sorted(modules - earlier):
        assert "homelab.k8s_ha.%s - " % module in rendered
