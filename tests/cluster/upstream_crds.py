#!/usr/bin/env python
"""Upstream CRDs for the test fixtures, from the projects' published Go modules.

The API server then validates what the playbooks and the simulators write with the real
schemas, not with hand-written stand-ins. Each source names a Go module at the version
pinned in versions.env and the CRD files in its zip (``go mod download -json`` gives the
folder); the CRDs are copied into the cache outside the repository, one folder per source
and version, with the fixture label the tests select and delete them by.

    tests/cluster/upstream_crds.py argocd     print the folder (fetched once per version)
    tests/cluster/upstream_crds.py --all      every source
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from localcluster import FIXTURE_LABEL as LABEL, read_versions


# name -> (Go module, versions.env key, CRD files in the module, fixture label value, CRD names
# to keep; None keeps all)
SOURCES = {
    "argocd": ("github.com/argoproj/argo-cd/v3", "ARGOCD_VERSION",
               ["manifests/crds/application-crd.yaml"], "argocd-crds", None),
    "longhorn": ("github.com/longhorn/longhorn-manager", "LONGHORN_VERSION",
                 ["k8s/crds.yaml"], "longhorn-crds",
                 ["settings.longhorn.io", "volumes.longhorn.io", "replicas.longhorn.io", "engines.longhorn.io",
                  "nodes.longhorn.io"]),
    # config/crd/bases: the CRDs as generated, without the conversion webhook the
    # kustomization adds (no CAPI controller runs here to serve it): strategy None
    "capi": ("sigs.k8s.io/cluster-api", "CAPI_VERSION",
             ["config/crd/bases/cluster.x-k8s.io_%s.yaml" % k
              for k in ("clusters", "machines", "machinesets", "machinedeployments", "machinehealthchecks")],
             "capi-crds", None),
    "capi-v1beta1-machinedeployments": ("sigs.k8s.io/cluster-api", "CAPI_V1BETA1_VERSION",
                                        ["config/crd/bases/cluster.x-k8s.io_machinedeployments.yaml"],
                                        "capi-crds", None),
    # runbook 004's own serialisation: the remediation WorkflowTemplate's Workflows, as Argo
    # Workflows installs them (manifests/cluster-install/kustomization.yaml takes
    # base/crds/minimal: spec and status are preserved unknown fields)
    "argo-workflows": ("github.com/argoproj/argo-workflows/v3", "ARGO_WORKFLOWS_VERSION",
                       ["manifests/base/crds/minimal/argoproj.io_%s.yaml" % k for k in ("workflows", "workflowtemplates")],
                       "capi-crds", None),
    # Flux (runbook 003's cluster): the Kustomization and the HelmRelease, whose labels and
    # spec.suspend say whether a live edit lasts (plugins/module_utils/managers.py)
    "flux-kustomize": ("github.com/fluxcd/kustomize-controller", "FLUX_KUSTOMIZE_VERSION",
                       ["config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"], "flux-crds", None),
    "flux-helm": ("github.com/fluxcd/helm-controller", "FLUX_HELM_VERSION",
                  ["config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml"], "flux-crds", None),
    "talos-controlplane": ("github.com/siderolabs/cluster-api-control-plane-provider-talos",
                           "TALOS_CONTROLPLANE_VERSION",
                           ["config/crd/bases/controlplane.cluster.x-k8s.io_taloscontrolplanes.yaml"],
                           "capi-crds", None),
}


# longhorn-manager's k8s/crds.yaml is the Helm chart's template: its one template action is
# the chart's labels before the CRD's own (the lines after it), rendered here as none; the
# fixture label is added below.
HELM_LABELS = re.compile(r'\{\{-? include "longhorn\.labels" \. \| nindent \d+ \}\}')


# sources whose files are Helm templates (the others are plain YAML, whose descriptions may
# quote "{{ }}")
HELM_TEMPLATES = {"longhorn"}


def _text(path: Path, helm: bool) -> str:
    if not helm:
        return path.read_text()
    text = HELM_LABELS.sub("", path.read_text())
    if "{{" in text:
        raise SystemExit("upstream_crds: %s has a template action this script does not render" % path)
    return text


def cache_dir() -> Path:
    base = os.environ.get("HOMELAB_K8S_HA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "homelab-k8s-ha")
    return Path(base) / "crds"


def module_dir(module: str, version: str) -> Path:
    """The module's folder in the Go module cache (downloaded from the proxy if missing)."""
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    r = subprocess.run(["go", "mod", "download", "-json", "%s@%s" % (module, version)],
                       capture_output=True, text=True, env=env, check=False)
    info = json.loads(r.stdout or "{}")
    if r.returncode or "Dir" not in info:
        raise SystemExit("upstream_crds: go mod download %s@%s failed: %s"
                         % (module, version, info.get("Error") or r.stderr.strip()))
    return Path(info["Dir"])


def _write(tmp: Path, name: str, src: Path, module: str, version: str, files, label: str, keep) -> None:
    """The CRDs of ``files`` in the module folder ``src`` into ``tmp``, labelled."""
    n = 0
    for f in files:
        for doc in yaml.safe_load_all(_text(src / f, name in HELM_TEMPLATES)):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            if keep is not None and doc["metadata"]["name"] not in keep:
                continue
            doc["metadata"].setdefault("labels", {})[LABEL] = label
            doc["metadata"].setdefault("annotations", {})["homelab.k8s-ha/source"] = "%s@%s %s" % (module, version, f)
            (tmp / ("%02d-%s.yaml" % (n, doc["metadata"]["name"]))).write_text(yaml.safe_dump(doc, sort_keys=False))
            n += 1
    if keep is not None and n != len(keep):
        raise SystemExit("upstream_crds: %s@%s has %d of the CRDs %s" % (module, version, n, ", ".join(keep)))


def fetch(name: str) -> Path:
    """The folder with ``name``'s upstream CRDs, labelled for the fixtures; fetched once."""
    if name not in SOURCES:
        raise SystemExit("upstream_crds: unknown source %r; known: %s" % (name, ", ".join(sorted(SOURCES))))
    module, key, files, label, keep = SOURCES[name]
    version = read_versions()[key]
    out = cache_dir() / ("%s-%s" % (name, version))
    if (out / ".complete").exists():
        return out
    src = module_dir(module, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a folder of this process's own: two test workers may fetch the same source at once
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        _write(tmp, name, src, module, version, files, label, keep)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".complete").write_text("%s@%s\n" % (module, version))
    if out.exists() and not (out / ".complete").exists():
        shutil.rmtree(out)  # left half-written by an interrupted older version of this script
    try:
        tmp.rename(out)
    except OSError:
        shutil.rmtree(tmp)  # another worker renamed its complete copy first
        if not (out / ".complete").exists():
            raise
    return out


def main(argv: list[str]) -> int:
    names = sorted(SOURCES) if argv == ["--all"] else argv
    if not names:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for name in names:
        print("%s=%s" % (name, fetch(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
