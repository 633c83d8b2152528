"""A GitOps drift-reverter simulator for tests: the part of Flux's kustomize-controller and
Argo CD's application controller that puts a live edit back, against the real local API
server and the managers' own CRDs (tests/cluster/upstream_crds.py: flux-kustomize,
argocd).

No registry serves these controllers as something to run here (they need a Git server, a
source controller, a repo server), so this stands in for them with "Git" given as manifests
per manager object (``source``). Every ``tick`` seconds, one pass:

- **Flux Kustomization** (kustomize-controller ``KustomizationReconciler.Reconcile``): skipped
  while ``spec.suspend`` is true; otherwise each of its objects gets its Git ``spec`` back and
  the owner labels ``kustomize.toolkit.fluxcd.io/name`` and ``/namespace``. An object annotated
  ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` is left alone (the controller's
  ``ssa`` exclusion).
- **Argo CD Application** (``SyncPolicy.IsAutomatedSyncEnabled`` and ``selfHeal``): only
  while ``spec.syncPolicy.automated`` is set, not ``enabled: false``, with ``selfHeal``, and
  the Application is not annotated ``argocd.argoproj.io/skip-reconcile: "true"``; each
  object gets its Git ``spec`` back.

Stricter than the controllers, never more lenient: a real pass comes every ``spec.interval``
(Flux) or after a refresh (Argo CD) and applies server-side, leaving fields other field
managers own; here a pass comes every ``tick`` and replaces the whole ``spec``, so any live
edit of a managed object is gone within a tick. Writes carry ``resourceVersion`` (a 409 is
retried on the next pass) and go as cluster-admin from the test process
(``LocalCluster.api_call``, which ``observe.writes`` does not count). ``reverts`` records each
pass that changed an object (its ``metadata.generation`` went up): ``(t, "Kind ns/name")``.
"""

from __future__ import annotations

import copy
import threading
import time

KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
PATHS = {"Kustomization": "/apis/%s/v1/namespaces/{ns}/kustomizations/{name}" % KUSTOMIZE,
         "Application": "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications/{name}",
         "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}"}


class GitOpsSimulator:
    def __init__(self, cluster, tick=1.0):
        self.cluster = cluster
        self.tick = tick
        self.sources = {}  # (kind, namespace, name) of the manager -> [manifests]
        self.reverts = []
        self.passes = 0
        self.errors = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = None

    def source(self, kind, namespace, name, manifests):
        """The "Git" state of the manager object ``kind`` ``namespace/name``."""
        self.sources[(kind, namespace, name)] = [copy.deepcopy(m) for m in manifests]
        return self

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_passes(self, n, timeout=60):
        """Until ``n`` more passes have run (each pass reads every manager once)."""
        with self._lock:
            target = self.passes + n
            if not self._lock.wait_for(lambda: self.passes >= target or self.errors, timeout):
                raise AssertionError("the GitOps simulator ran %d of %d passes in %ss" % (self.passes, target, timeout))
        assert not self.errors, self.errors

    # ---- the controllers' part ---------------------------------------------------------
    def _loop(self):
        while not self._stop.is_set():
            try:
                for (kind, ns, name), manifests in list(self.sources.items()):
                    if self._reconciles(kind, ns, name):
                        for manifest in manifests:
                            self._apply(kind, ns, name, manifest)
            except Exception as e:  # pylint: disable=broad-except
                self.errors.append(repr(e))
            with self._lock:
                self.passes += 1
                self._lock.notify_all()
            self._stop.wait(self.tick)

    def _get(self, kind, ns, name):
        status, body = self.cluster.api_call("GET", PATHS[kind].format(ns=ns, name=name))
        return body if status == 200 else None

    def _reconciles(self, kind, ns, name):
        owner = self._get(kind, ns, name)
        if owner is None:
            return False
        spec = owner.get("spec") or {}
        if kind == "Kustomization":
            return spec.get("suspend") is not True
        annotations = owner["metadata"].get("annotations") or {}
        automated = (spec.get("syncPolicy") or {}).get("automated")
        return (automated is not None and automated.get("enabled") is not False and bool(automated.get("selfHeal"))
                and str(annotations.get("argocd.argoproj.io/skip-reconcile", "")).lower() != "true")

    def _apply(self, kind, ns, name, manifest):
        meta = manifest["metadata"]
        live = self._get(manifest["kind"], meta["namespace"], meta["name"])
        if live is None:
            return
        annotations = live["metadata"].get("annotations") or {}
        if kind == "Kustomization" and annotations.get(KUSTOMIZE + "/reconcile") == "disabled":
            return
        new = copy.deepcopy(live)
        new["spec"] = copy.deepcopy(manifest["spec"])
        if kind == "Kustomization":
            new["metadata"].setdefault("labels", {}).update({KUSTOMIZE + "/name": name, KUSTOMIZE + "/namespace": ns})
        status, answer = self.cluster.api_call(
            "PUT", PATHS[manifest["kind"]].format(ns=meta["namespace"], name=meta["name"]), new)
        if status == 409:
            return  # changed meanwhile: the next pass reads it again
        if status != 200:
            raise RuntimeError("GitOps simulator: PUT %s %s/%s: %s %s" % (
                manifest["kind"], meta["namespace"], meta["name"], status, answer.get("message")))
        if answer["metadata"].get("generation") != live["metadata"].get("generation"):
            self.reverts.append((time.monotonic(), "%s %s/%s" % (manifest["kind"], meta["namespace"], meta["name"])))
