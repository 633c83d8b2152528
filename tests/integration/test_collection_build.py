"""`ansible-galaxy collection build` gives a tarball that installs offline beside
kubernetes.core, and the installed copy's modules load (no cluster needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SITE = Path(sys.prefix) / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"


def test_tarball_installs_offline_and_documents_its_modules(tmp_path):
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert "kubernetes.core" in galaxy["dependencies"]
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--force",
                    "--output-path", tmp_path, ROOT], check=True, capture_output=True)
    tarball = tmp_path / f"homelab-k8s_ha-{galaxy['version']}.tar.gz"
    assert tarball.exists()

    target = tmp_path / "collections"
    # kubernetes.core is found where ansible (the PyPI package) installed it.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{target}:{SITE}")
    r = subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline",
                        "-p", target, tarball], env=env, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = target / "ansible_collections" / "homelab" / "k8s_ha"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["dependencies"] == galaxy["dependencies"]
    # nothing of the working tree leaks into the artifact
    for unwanted in (".venv", ".local", ".git", "evidence"):
        assert not (installed / unwanted).exists()

    doc = subprocess.run([BIN / "ansible-doc", "--json", "homelab.k8s_ha.placement_audit_info"],
                         env=dict(env, ANSIBLE_COLLECTIONS_PATH=f"{target}:{SITE}"),
                         capture_output=True, text=True, check=True)
    options = json.loads(doc.stdout)["homelab.k8s_ha.placement_audit_info"]["doc"]["options"]
    assert {"node", "namespaces", "kubeconfig", "api_key"} <= set(options)
