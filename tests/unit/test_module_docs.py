"""The collection's documentation as ansible-doc serves it (what AWX, Semaphore users and
``ansible-doc homelab.k8s_ha.<module>`` see), and meta/runtime.yml's action group.

One ansible-doc call for all modules and one for the filter list keep this quick.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".local" / "collections"
ANSIBLE_DOC = str(Path(sys.executable).parent / "ansible-doc")
PREFIX = "homelab.k8s_ha."
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTER_FILES = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py") if p.stem != "__init__")
OPTION_TYPES = {"str", "int", "bool", "float", "path", "raw", "list", "dict", "jsonarg", "json", "bytes", "bits", "sid"}


def _ansible_doc(*args):
    # tests/conftest.py links this checkout into .local/collections, as `make collection` does
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_DOC, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def module_docs():
    return _ansible_doc("-t", "module", "-j", *(PREFIX + name for name in MODULES))


def _text(value):
    """A description is a non-empty string or a list of non-empty strings."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)


def _option_problems(options, path=""):
    problems = []
    for name, spec in (options or {}).items():
        where = path + name
        if not _text(spec.get("description")):
            problems.append("%s: no description" % where)
        if spec.get("type") not in OPTION_TYPES:
            problems.append("%s: type %r" % (where, spec.get("type")))
        if spec.get("type") == "list" and not spec.get("elements"):
            problems.append("%s: a list without elements" % where)
        problems += _option_problems(spec.get("suboptions"), where + ".")
    return problems


def _return_problems(returns, path=""):
    problems = []
    for name, spec in (returns or {}).items():
        where = path + name
        for key in ("description", "returned", "type"):
            if not spec.get(key):
                problems.append("%s: no %s" % (where, key))
        problems += _return_problems(spec.get("contains"), where + ".")
    return problems


def test_ansible_doc_finds_every_module(module_docs):
    assert MODULES, "no modules found"
    assert sorted(module_docs) == [PREFIX + name for name in MODULES]


@pytest.mark.parametrize("name", MODULES)
def test_module_doc(module_docs, name):
    entry = module_docs[PREFIX + name]
    doc = entry["doc"]
    assert isinstance(doc.get("short_description"), str) and doc["short_description"].strip()
    assert _text(doc.get("description"))
    assert doc.get("author")
    assert _option_problems(doc.get("options")) == []
    assert entry.get("examples", "").strip(), "no EXAMPLES"
    assert _return_problems(entry.get("return")) == []


def test_action_group_lists_exactly_the_modules():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    groups = runtime.get("action_groups") or {}
    assert groups, "meta/runtime.yml has no action group"
    for group, members in groups.items():
        names = sorted(m[len(PREFIX):] if m.startswith(PREFIX) else m for m in members if isinstance(m, str))
        # every module that talks to the cluster (takes kubernetes.core's auth options), not
        # the controller-side action plugins (plugins/action), which would refuse them
        cluster_modules = [m for m in MODULES if not (ROOT / "plugins" / "action" / (m + ".py")).exists()]
        assert names == cluster_modules, "action group %s: missing %s, not a cluster module: %s" % (
            group, sorted(set(cluster_modules) - set(names)), sorted(set(names) - set(cluster_modules)))


def test_filters_load_and_documented_ones_are_complete():
    """Every filter the plugin files define is listed by ansible-doc (a plugin that fails to
    import drops out). The filters carry no docs yet; any that gets some is checked."""
    defined = set()
    for stem in FILTER_FILES:
        plugin = importlib.import_module("ansible_collections.homelab.k8s_ha.plugins.filter." + stem)
        defined |= {PREFIX + name for name in plugin.FilterModule().filters()}
    listed = _ansible_doc("-t", "filter", "-l", "-j", "homelab.k8s_ha")
    assert defined and set(listed) == defined
    documented = sorted(name for name, short in listed.items() if short != "UNDOCUMENTED")
    if documented:
        docs = _ansible_doc("-t", "filter", "-j", *documented)
        for name in documented:
            doc = docs[name]["doc"]
            assert _text(doc.get("short_description")), name
            assert _option_problems(doc.get("options")) == [], name
