#!/usr/bin/env python
"""A Longhorn simulator for tests: longhorn-manager's behaviour for the fields this
collection reads and writes, against the real local API server.

No registry offers longhorn-manager as a program that runs without a kubelet, disks and
iSCSI, so this stands in for it. It follows the documented API shapes
(``longhorn.io/v1beta2`` settings, volumes, replicas, engines, nodes; Longhorn's own CRDs,
tests/cluster/upstream_crds.py) and does what longhorn-manager does with them:

- **Admission webhook** (HTTPS on 127.0.0.1, a serving certificate from the cluster CA,
  registered as ``longhorn-webhook-mutator`` / ``longhorn-webhook-validator``): the
  mutator stores ``default-replica-count`` as JSON per data engine ("2" becomes
  ``{"v1":"2","v2":"2"}``, as Longhorn 1.10+ does); the validator refuses bad setting
  values and replica counts with HTTP 422 and a message naming the setting. Both run on
  server-side dry runs too (sideEffects None), as the real ones do.
- **Volume controller**: replicas follow ``spec.numberOfReplicas``. A new volume gets its
  replicas at once; a replica added later is scheduled onto a Longhorn node (Ready,
  allowScheduling, not cordoned while ``disable-scheduling-on-cordoned-node`` is true;
  a node without a replica of the volume first, the same node again only when
  ``replica-soft-anti-affinity`` is true) and rebuilt: the engine shows it ``WO`` with
  ``rebuildStatus`` progress for ``--rebuild-seconds``, then ``RW``. At most
  ``concurrent-replica-rebuild-per-node-limit`` rebuilds run per node, counted on the
  replica's node across volumes (CanStartRebuildingReplica); with 0, or while one of its
  rebuilds is in flight, a volume that has replicas gets no new one (replenishReplicas).
  An extra healthy replica is removed only as cleanupExtraHealthyReplicas does. ``status.robustness`` is healthy / degraded / faulted from the
  ``RW`` count; ``status.kubernetesStatus`` comes from the PersistentVolume whose CSI
  volume handle is the volume.
- **Attachment** (Longhorn's CSI controller plugin behind the external-attacher): the real
  attach/detach controller in kube-controller-manager creates a storage.k8s.io
  VolumeAttachment for each volume a scheduled pod mounts on a node that carries the
  kubelet's ``volumes.kubernetes.io/controller-managed-attach-detach`` annotation, refuses
  a second node for an RWO volume (its Multi-Attach error event), and deletes the
  VolumeAttachment once no pod on that node mounts it. As the csi-attacher sidecar does
  (``csiHandler.SyncNewOrUpdatedVolumeAttachment``), the simulator puts its finalizer
  ``external-attacher/driver-longhorn-io`` on each VolumeAttachment of
  ``driver.longhorn.io``, attaches the volume (``ControllerPublishVolume``: ``attaching``
  for ``--attach-seconds``, then ``attached`` with ``spec.nodeID``) and sets
  ``status.attached``; a volume attached to another node is refused with
  ``status.attachError``. A deleted VolumeAttachment is detached
  (``ControllerUnpublishVolume``: ``detaching``, then ``detached``) before the finalizer
  goes, so the object stays until the volume is free. A volume no VolumeAttachment names
  keeps the attachment of its fixture.
- **Faults**, read from the ConfigMap ``longhorn-simulator`` in the Longhorn namespace
  (comma-separated names):
  ``fail-rebuild`` - the next rebuild of these volumes fails at 50 %; the replica is
  marked failed and, as in Longhorn (CheckAndReuseFailedReplica), reused in place at
  once: same name, failedAt cleared, ``rebuildRetryCount`` one up, rebuilt again (while
  a failed replica cannot be reused yet, e.g. its node is down, a degraded volume gets a
  new one only ``replica-replenishment-wait-interval`` after its ``status.lastDegradedAt``,
  as RequireNewReplica does: ``replacement_delay``);
  ``loop-rebuild`` - every rebuild of these volumes fails at 50 %, the replica is
  deleted and a new one starts at once (a rebuild storm);
  ``down-nodes`` - these Longhorn nodes are down: Ready False, their replicas fail;
  ``refuse-settings`` - the webhook refuses changes to these settings with HTTP 422, as
  Longhorn refuses some settings while volumes are attached;
  ``stuck-attached`` - these volumes never detach: ControllerUnpublishVolume fails, the
  VolumeAttachment keeps its finalizer and gets ``status.detachError``;
  ``detach-on-rebuild`` - these volumes detach as a rebuild of theirs starts (their
  workload stopped), which fails the rebuilding replica (closeVolumeDependentResources);
  a volume with replicas gets no new ones while detached (replenishReplicas).

The controller is event-driven, as longhorn-manager's informers are: a watch on each kind it
reads (its own CRs, the fault ConfigMap, Kubernetes nodes, PersistentVolumes,
VolumeAttachments) wakes
it when something changes. While a rebuild or an attachment runs it reconciles every tick
(0.2 s), so their durations hold; otherwise at least every second.

Every step is appended to ``<state-dir>/history.jsonl`` (one JSON object per line with
``t``, ``event``, ``volume``, ``replica``, ``node``), which tests read to prove, for
example, that no two rebuilds overlapped.

The simulator writes as its own user (``longhorn-manager-simulator``), so the audit log
tells its writes from those of the code under test.

Command line::

    longhorn_simulator.py [--cluster-dir .local/cluster] [--state-dir DIR]
                          [--namespace longhorn-system] [--rebuild-seconds 2]
                          [--attach-seconds 1]

It prints ``ready`` once the webhook is registered and runs until SIGTERM / SIGINT, then
removes its webhook registrations.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.server
import json
import os
import random
import re
import signal
import ssl
import string
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cluster"))

from localcluster import (  # noqa: E402  pylint: disable=wrong-import-position
    DEFAULT_DIR,
    free_port,
    issue_cert,
    write_kubeconfig,
)

GROUP, VERSION = "longhorn.io", "v1beta2"
FIXTURE_LABEL = "homelab.k8s-ha/fixture"
USER = "longhorn-sim"  # <pki>/longhorn-sim.crt, CN longhorn-manager-simulator
MUTATOR, VALIDATOR = "longhorn-webhook-mutator", "longhorn-webhook-validator"
FAULTS_CONFIGMAP = "longhorn-simulator"
DRIVER = "driver.longhorn.io"
# the csi-attacher's finalizer: "external-attacher/" + the driver name with every
# character outside [A-Za-z0-9-] replaced by "-" (external-attacher's GetFinalizerName)
ATTACHER_FINALIZER = "external-attacher/" + re.sub(r"[^A-Za-z0-9-]", "-", DRIVER)

# -- the setting definitions the webhook knows (Longhorn's types, written anew here) ----
ENGINE_SPECIFIC = {"default-replica-count"}
SETTINGS = {
    "default-replica-count": ("int", 1, 20),
    "replica-soft-anti-affinity": ("bool",),
    "replica-auto-balance": ("enum", "disabled", "least-effort", "best-effort"),
    "replica-replenishment-wait-interval": ("int", 0, None),
    "concurrent-replica-rebuild-per-node-limit": ("int", 0, None),
    "disable-scheduling-on-cordoned-node": ("bool",),
    "node-drain-policy": ("enum", "block-if-contains-last-replica", "block-for-eviction",
                          "block-for-eviction-if-contains-last-replica",
                          "allow-if-replica-is-stopped", "always-allow"),
    "taint-toleration": ("tolerations",),
}
MANAGED_BY = "longhorn.io/managed-by"  # types.GetBaseLabelsForSystemManagedComponent
LAST_APPLIED_TOLERATIONS = "longhorn.io/last-applied-tolerations"


def unmarshal_tolerations(value: str) -> list[dict]:
    """Longhorn's types.UnmarshalTolerations and parseToleration: spaces removed, ``;``
    between tolerations, each ``key=value:effect`` or ``key:effect``; raise ValueError."""
    value = value.replace(" ", "")
    out = []
    if not value:
        return out
    for part in value.split(";"):
        pieces = part.split(":")
        if len(pieces) != 2:
            raise ValueError(f"failed to parse toleration: {part}: missing key/value and effect pair")
        pair = pieces[0].split("=")
        if pieces[1] not in ("", "NoExecute", "NoSchedule", "PreferNoSchedule"):
            raise ValueError(f"failed to parse toleration: {part}: invalid effect: {pieces[1]}")
        toleration = {"key": pair[0], "operator": "Exists", "effect": pieces[1]}
        if len(pair) == 2:
            toleration.update(operator="Equal", value=pair[1])
        out.append(dict((k, v) for k, v in toleration.items() if v != ""))
    return out


def _toleration_key(t: dict) -> str:
    # util.TolerationListToMap keys a toleration by all of it
    return json.dumps(t, sort_keys=True)


SETTING_DEFAULTS = {
    "default-replica-count": '{"v1":"3","v2":"3"}',
    "replica-soft-anti-affinity": "false",
    "replica-auto-balance": "disabled",
    "replica-replenishment-wait-interval": "600",
    "concurrent-replica-rebuild-per-node-limit": "5",
    "disable-scheduling-on-cordoned-node": "true",
    "taint-toleration": "",
}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def setting_error(name: str, value) -> str | None:
    """Why ``value`` is not valid for setting ``name``, or None."""
    if name not in SETTINGS:
        return f"setting {name} is not supported"
    if not isinstance(value, str):
        return f"value of setting {name} must be a string"
    values, trim = [value], True
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):  # types.IsJSONFormat: the value unmarshals into a map
        if name not in ENGINE_SPECIFIC:
            return f"JSON-formatted value is not supported for non-data-engine-specific setting {name}"
        # types.ParseDataEngineSpecificSetting: map[DataEngineType]string, one entry for
        # each engine the default lists, values not trimmed
        if any(not isinstance(v, str) for v in parsed.values()):
            return f"failed to parse JSON-formatted value {value}: json: cannot unmarshal number into a string"
        unknown = sorted(set(parsed) - {"v1", "v2"})
        if unknown:
            return f"data engine {unknown[0]} is not supported for setting {name}"
        if set(parsed) != {"v1", "v2"}:
            return f"mismatched data engines for setting {name}"
        values, trim = list(parsed.values()), False
    definition = SETTINGS[name]
    for v in values:
        v = "%s" % (v,)
        if definition[0] == "tolerations":
            try:
                unmarshal_tolerations(v)
            except ValueError as e:
                return f"the value of {name} is invalid: {e}"
        if definition[0] == "bool" and v not in ("true", "false"):
            return f"value {v} of setting {name} is not a boolean (true or false)"
        if definition[0] == "enum" and v not in definition[1:]:
            return (f"value {v} of setting {name} is not one of the options: "
                    + ", ".join(definition[1:]))
        if definition[0] == "int":
            # parseSettingSingleInt: strings.TrimSpace (not inside JSON), then
            # strconv.ParseInt(v, 10, 64): a sign and ASCII digits, no "1_0", within int64
            text = v.strip() if trim else v
            n = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None
            if n is None or not -(1 << 63) <= n < (1 << 63):
                return (f"value {v} of settings {name} is invalid: failed to parse single int value {v}:"
                        f" strconv.ParseInt: parsing {json.dumps(text)}: invalid syntax")
            low, high = definition[1], definition[2]
            if n < low or (high is not None and n > high):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                return f"value {n} of setting {name} is invalid: it should be {bound}"
    return None


def normalised_setting(name: str, value: str) -> str:
    """What Longhorn 1.10+ stores: data-engine-specific settings as JSON."""
    if name in ENGINE_SPECIFIC and not value.strip().startswith("{"):
        return json.dumps({"v1": value, "v2": value}, separators=(",", ":"))
    return value


def _available_healthy(replica: dict) -> bool:
    # datastore.IsAvailableHealthyReplica
    spec = replica.get("spec") or {}
    return bool(spec.get("healthyAt")) and not spec.get("failedAt") and not spec.get("evictionRequested")


FAILED_REPLICA_MAX_RETRY_COUNT = 5  # scheduler.FailedReplicaMaxRetryCount


def potentially_reusable(replica: dict) -> bool:
    """scheduler.IsPotentiallyReusableReplica (v1.10.0): a failed replica that Longhorn may
    reuse later (its node or disk may come back): failed, on a node, retries not used up,
    no eviction asked. (The simulator has no disks, so ``diskID`` is not asked for.)"""
    spec = replica.get("spec") or {}
    return (spec.get("failedAt") not in (None, "", "deleted") and bool(spec.get("nodeID"))
            and int(spec.get("rebuildRetryCount") or 0) < FAILED_REPLICA_MAX_RETRY_COUNT
            and not spec.get("evictionRequested"))


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def replacement_delay(robustness: str, last_degraded_at: str, replicas: list, wait: int, now: float) -> float:
    """Seconds until Longhorn creates a replacement replica, 0 for now: the scheduler's
    RequireNewReplica with timeToReplacementReplica (v1.10.0, v1 data engine, no data
    locality). Only a degraded volume that has a potentially reusable failed replica waits,
    and it waits ``replica-replenishment-wait-interval`` from the volume's
    ``status.lastDegradedAt``, not from the replica's failure: a volume degraded for longer
    than the interval gets its replacement at once. A ``lastDegradedAt`` that does not
    parse replenishes at once, as upstream logs the error and goes on."""
    if robustness != "degraded":
        return 0
    if not any(potentially_reusable(r) for r in replicas):
        return 0
    since = _epoch(last_degraded_at)
    if since is None:
        return 0
    return max(0.0, since + wait - now)


def admission_response(review: dict, path: str, record, refuse=frozenset(), replicas_of=None) -> dict:
    """The AdmissionReview answer of the mutator (``/mutate``) or validator (``/validate``);
    settings named in ``refuse`` are refused as Longhorn refuses some settings while
    volumes are attached. ``replicas_of(volume)``: the volume's replicas, for a deletion."""
    req = review["request"]
    obj = req.get("object") or req.get("oldObject") or {}
    kind = req["kind"]["kind"]
    out = {"uid": req["uid"], "allowed": True}
    if kind == "Setting":
        name = obj.get("metadata", {}).get("name", "")
        value = obj.get("value", "")
        if path.endswith("/mutate"):
            if name in ENGINE_SPECIFIC and isinstance(value, str) and setting_error(name, value) is None:
                stored = normalised_setting(name, value)
                if stored != value:
                    patch = [{"op": "replace", "path": "/value", "value": stored}]
                    out["patchType"] = "JSONPatch"
                    out["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
                    record("webhook-mutated", setting=name, value=stored,
                           dry_run=bool(req.get("dryRun")))
            return out
        err = setting_error(name, value)
        if err is None and name in refuse and req.get("operation") == "UPDATE":
            err = f"cannot modify setting {name} while volumes are attached"
    elif kind == "Replica" and req.get("operation") == "DELETE" and replicas_of is not None:
        # webhook/resources/replica/validator.go validateReplicaDeletion: not the last
        # available healthy replica of its volume
        err = None
        volume = (obj.get("spec") or {}).get("volumeName")
        others = [r for r in replicas_of(volume) if r["metadata"]["name"] != obj["metadata"]["name"]]
        if _available_healthy(obj) and not any(_available_healthy(r) for r in others):
            err = (f"cannot delete replica {obj['metadata']['name']}: it is the only healthy replica"
                   f" of volume {volume}")
    elif kind == "Volume" and path.endswith("/validate"):
        n = (obj.get("spec") or {}).get("numberOfReplicas")
        err = None
        if not isinstance(n, int) or not 1 <= n <= 20:
            err = f"invalid numberOfReplicas {n} of volume {obj['metadata']['name']}: it should be between 1 and 20"
    else:
        err = None
    if err:
        out.update(allowed=False, status={"code": 422, "reason": "Invalid", "message": err})
        record("webhook-denied", kind=kind, name=obj.get("metadata", {}).get("name"),
               message=err, dry_run=bool(req.get("dryRun")))
    return out


class Simulator:
    """The webhook server and the controller loop of one simulated longhorn-manager."""

    def __init__(self, cluster_dir: Path, state_dir: Path, namespace: str,
                 rebuild_seconds: float, tick: float = 0.2, attach_seconds: float = 1.0,
                 idle_tick: float = 1.0):
        self.cluster_dir = Path(cluster_dir)
        self.attach_seconds = attach_seconds
        self.moving = {}  # volume -> {"state": "attaching"|"detaching", "node", "since"}
        self.state_dir = Path(state_dir)
        self.ns = namespace
        self.rebuild_seconds = rebuild_seconds
        self.tick = tick
        self.idle_tick = idle_tick
        self.changed = threading.Event()  # set by the watches: something to reconcile
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.history = self.state_dir / "history.jsonl"
        self.rebuilds = {}  # replica name -> {"start": t, "fail": bool}
        self.failed_once = set()  # volumes whose one fail-rebuild fault has fired
        self.backoff = {}  # replica -> (last reuse, seconds): the volume controller's flowcontrol.Backoff
        self.httpd = None
        self.api = None
        self.faults = {}  # the fault ConfigMap as last read (the webhook reads it too)
        self.tolerations_synced = None  # the taint-toleration value last applied

    # -- history ----------------------------------------------------------------------
    def record(self, event: str, **fields) -> None:
        line = dict(t=round(time.time(), 3), event=event, **fields)
        with self.lock, open(self.history, "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    # -- setup ------------------------------------------------------------------------
    def start(self) -> None:
        from kubernetes import client, config

        self.state_dir.mkdir(parents=True, exist_ok=True)
        pki = self.cluster_dir / "pki"
        state = json.loads((self.cluster_dir / "state.json").read_text())
        issue_cert(pki, USER, "longhorn-manager-simulator", "system:masters")
        issue_cert(pki, "longhorn-sim-webhook", "longhorn-admission-webhook", server=True)
        kubeconfig = self.state_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, state["server"], pki, USER)
        self.api = client.ApiClient(config.new_client_from_config(str(kubeconfig)).configuration)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.storage = client.StorageV1Api(self.api)
        self.admission = client.AdmissionregistrationV1Api(self.api)

        self._adopt_components()
        port = free_port()
        sim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                review = json.loads(body)
                answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                          "response": admission_response(review, self.path.split("?")[0], sim.record,
                                                         sim.faults.get("refuse-settings", set()),
                                                         sim.replicas_of)}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki / "longhorn-sim-webhook.crt"), str(pki / "longhorn-sim-webhook.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self._register(port, base64.b64encode((pki / "ca.crt").read_bytes()).decode())
        self._watch_all()

    def _watch_all(self) -> None:
        """One thread per kind reconcile reads, each setting ``changed`` on any event."""
        lists = [(self.core.list_namespaced_config_map, (self.ns,),
                  {"field_selector": "metadata.name=" + FAULTS_CONFIGMAP}),
                 (self.core.list_node, (), {}), (self.core.list_persistent_volume, (), {}),
                 (self.storage.list_volume_attachment, (), {})]
        lists += [(self.custom.list_namespaced_custom_object, (GROUP, VERSION, self.ns, plural), {})
                  for plural in ("settings", "nodes", "replicas", "engines", "volumes")]
        for fn, args, kwargs in lists:
            threading.Thread(target=self._watch, args=(fn, args, kwargs), daemon=True).start()

    def _watch(self, fn, args, kwargs) -> None:
        from kubernetes import watch
        while not self.stopping.is_set():
            try:
                # no resourceVersion: a (re)start replays the objects as ADDED, one extra reconcile
                for _event in watch.Watch().stream(fn, *args, timeout_seconds=60, deserialize=False, **kwargs):
                    self.changed.set()
                    if self.stopping.is_set():
                        return
            except Exception:  # pylint: disable=broad-except
                self.stopping.wait(0.5)  # the API server restarts or the CRD is not there yet

    def _register(self, port: int, ca_bundle: str) -> None:
        def hooks(name, path, resources, operations=("CREATE", "UPDATE")):
            return [{
                "name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Fail", "timeoutSeconds": 10,
                "clientConfig": {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle},
                "rules": [{"apiGroups": [GROUP], "apiVersions": [VERSION],
                           "operations": list(operations), "resources": resources,
                           "scope": "Namespaced"}]}]
        meta = {"labels": {FIXTURE_LABEL: "longhorn"}}
        self.unregister()
        self.admission.create_mutating_webhook_configuration({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": dict(meta, name=MUTATOR),
            "webhooks": hooks("mutator.longhorn.io", "/v1/webhook/mutate", ["settings"])})
        self.admission.create_validating_webhook_configuration({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": dict(meta, name=VALIDATOR),
            "webhooks": hooks("validator.longhorn.io", "/v1/webhook/validate", ["settings", "volumes"])
            + hooks("replica.validator.longhorn.io", "/v1/webhook/validate", ["replicas"], ["DELETE"])})

    def replicas_of(self, volume: str) -> list[dict]:
        return [r for r in self._list("replicas") if (r.get("spec") or {}).get("volumeName") == volume]

    def _adopt_components(self) -> None:
        """The DaemonSets longhorn-manager deploys itself (the CSI plugin through its driver
        deployer, the engine image through the engine image controller) carry the label
        longhorn.io/managed-by=longhorn-manager (types.GetBaseLabelsForSystemManagedComponent)
        and the tolerations last applied from taint-toleration. The fixture's DaemonSets in
        the namespace (all but the user-deployed longhorn-manager) get both, as if
        longhorn-manager had made them; Running.stop puts them back as they were."""
        for ds in self.apps.list_namespaced_daemon_set(self.ns).items:
            if ds.metadata.name == "longhorn-manager":
                continue
            self.apps.patch_namespaced_daemon_set(ds.metadata.name, self.ns, {"metadata": {
                "labels": {MANAGED_BY: "longhorn-manager"},
                "annotations": {LAST_APPLIED_TOLERATIONS: "[]"}}})

    def unregister(self) -> None:
        from kubernetes.client.exceptions import ApiException
        for delete, name in ((self.admission.delete_mutating_webhook_configuration, MUTATOR),
                             (self.admission.delete_validating_webhook_configuration, VALIDATOR)):
            try:
                delete(name)
            except ApiException as e:
                if e.status != 404:
                    raise

    # -- API helpers ------------------------------------------------------------------
    def _list(self, plural: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural)["items"]

    def _status(self, plural: str, obj: dict, status: dict) -> None:
        if obj.get("status") == status:
            return
        # a JSON patch replacing the whole status: a merge patch would keep map keys
        # (replicaModeMap, rebuildStatus entries) that are gone from ``status``
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.ns, plural, obj["metadata"]["name"],
            [{"op": "add", "path": "/status", "value": status}],
            _content_type="application/json-patch+json")
        obj["status"] = status

    def _spec(self, plural: str, obj: dict, spec: dict) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, obj["metadata"]["name"], {"spec": spec})
        obj["spec"].update(spec)

    def _create(self, plural: str, kind: str, name: str, labels: dict, spec: dict) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                "metadata": {"name": name, "namespace": self.ns,
                             "labels": dict(labels, **{FIXTURE_LABEL: "longhorn"})},
                "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def _delete(self, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def _faults(self) -> dict:
        from kubernetes.client.exceptions import ApiException
        try:
            data = self.core.read_namespaced_config_map(FAULTS_CONFIGMAP, self.ns).data or {}
        except ApiException as e:
            if e.status == 404:
                return {}
            raise
        return {k: {x.strip() for x in v.split(",") if x.strip()} for k, v in data.items()}

    # -- the controller ---------------------------------------------------------------
    def run(self) -> None:
        while not self.stopping.is_set():
            self.changed.clear()  # a change from here on wakes the next wait at once
            failed = False
            try:
                self.reconcile()
            except Exception as e:  # pylint: disable=broad-except
                # a conflict or a vanished object: the next tick starts from fresh reads
                print(f"[longhorn-sim] reconcile: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                failed = True
            if failed or self.moving or any(not str(k).startswith("failed-rebuild:") for k in self.rebuilds):
                self.stopping.wait(self.tick)  # a rebuild or an attachment runs: its clock ticks
            elif self.changed.wait(self.idle_tick):
                # events come in bursts (a write and the echoes of this pass's own writes):
                # one pass for a burst, not one per event
                self.stopping.wait(min(self.tick, 0.1))

    def reconcile(self) -> None:
        faults = self.faults = self._faults()
        settings = dict(SETTING_DEFAULTS)
        setting_objects = self._list("settings")
        settings.update({s["metadata"]["name"]: s.get("value", "") for s in setting_objects})
        kube_nodes = {n.metadata.name: n for n in self.core.list_node().items}
        pvs = {pv.spec.csi.volume_handle: pv for pv in self.core.list_persistent_volume().items
               if pv.spec.csi is not None and pv.spec.csi.driver == DRIVER}
        handles = {pv.metadata.name: handle for handle, pv in pvs.items()}
        attachments = {}  # volume -> its VolumeAttachments, oldest first
        for va in sorted(self.storage.list_volume_attachment().items,
                         key=lambda a: (a.metadata.creation_timestamp, a.metadata.name)):
            handle = handles.get(va.spec.source.persistent_volume_name)
            if va.spec.attacher == DRIVER and handle:
                attachments.setdefault(handle, []).append(va)
        nodes = self._list("nodes")
        usable = self._reconcile_nodes(nodes, kube_nodes, settings, faults.get("down-nodes", set()))
        replicas = self._list("replicas")
        engines = {e["spec"].get("volumeName"): e for e in self._list("engines")}
        volumes = self._list("volumes")
        self._sync_taint_toleration(settings, setting_objects, volumes)
        for volume in volumes:
            self._attachment(volume, attachments.get(volume["metadata"]["name"], []), faults)
            self._reconcile_volume(volume, [r for r in replicas
                                            if r["spec"].get("volumeName") == volume["metadata"]["name"]],
                                   engines.get(volume["metadata"]["name"]), replicas, engines,
                                   usable, settings, faults, pvs)

    def _reconcile_nodes(self, nodes, kube_nodes, settings, down) -> dict:
        """Set each Longhorn node's conditions; return node name -> can take replicas."""
        cordoned_blocks = _engine_value(settings["disable-scheduling-on-cordoned-node"]) == "true"
        usable = {}
        for node in nodes:
            name = node["metadata"]["name"]
            kube = kube_nodes.get(name)
            kube_ready = kube is not None and any(
                c.type == "Ready" and c.status == "True" for c in (kube.status.conditions or []))
            ready = kube_ready and name not in down
            cordoned = kube is not None and bool(kube.spec.unschedulable)
            schedulable = bool(node["spec"].get("allowScheduling", True)) and not (
                cordoned and cordoned_blocks)
            reason = ("" if schedulable else
                      "KubernetesNodeCordoned" if cordoned else "NodeSchedulingDisabled")
            self._status("nodes", node, {"conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "" if ready else ("NodeDown" if name in down else "KubernetesNodeNotReady")},
                {"type": "Schedulable", "status": "True" if schedulable else "False", "reason": reason}]})
            usable[name] = ready and schedulable
        return usable

    def _attachment(self, volume, attachments, faults) -> None:
        """The csi-attacher and Longhorn's CSI controller plugin for one volume's
        VolumeAttachments: detach for the deleted ones, then attach for the others."""
        vname = volume["metadata"]["name"]
        t = time.time()
        node = volume["spec"].get("nodeID") or ""
        moving = self.moving.get(vname)
        for va in [a for a in attachments if a.metadata.deletion_timestamp]:
            if ATTACHER_FINALIZER not in (va.metadata.finalizers or []):
                continue  # never ours: nothing to unpublish (csiHandler.SyncNewOrUpdatedVolumeAttachment)
            target = va.spec.node_name
            if node == target:
                if vname in faults.get("stuck-attached", set()):
                    # ControllerUnpublishVolume fails; the csi-attacher records it (markAsDetachFailed)
                    if not (va.status and va.status.detach_error):
                        self._va_status(va, {"detachError": {
                            "time": now_iso(), "message": "rpc error: code = DeadlineExceeded desc = "
                            "Failed to detach volume %s from node %s" % (vname, target)}})
                        self.record("detach-failed", volume=vname, node=target, attachment=va.metadata.name)
                    if moving and moving["state"] == "detaching":
                        self.moving.pop(vname)
                        moving = None
                    continue
                if moving is None or moving["state"] != "detaching" or moving["node"] != target:
                    moving = self.moving[vname] = {"state": "detaching", "node": target, "since": t}
                    self.record("detach-start", volume=vname, node=target, attachment=va.metadata.name)
                    continue
                if t - moving["since"] < self.attach_seconds:
                    continue
                self._spec("volumes", volume, {"nodeID": ""})
                self.moving.pop(vname)
                moving, node = None, ""
                self.record("detached", volume=vname, node=target, attachment=va.metadata.name)
            # unpublished (or never attached to that node): the csi-attacher lets the object go
            self._va_finalizers(va, [f for f in va.metadata.finalizers if f != ATTACHER_FINALIZER])
            self.record("attachment-released", volume=vname, node=target, attachment=va.metadata.name)
        for va in [a for a in attachments if not a.metadata.deletion_timestamp]:
            target = va.spec.node_name
            if ATTACHER_FINALIZER not in (va.metadata.finalizers or []):
                # the csi-attacher's finalizer goes on before ControllerPublishVolume (addVAFinalizer)
                self._va_finalizers(va, list(va.metadata.finalizers or []) + [ATTACHER_FINALIZER])
            if node and node != target:
                # Longhorn attaches a volume to one node at a time (its attachment tickets):
                # ControllerPublishVolume for another node times out waiting
                # (publishVolume's waitForVolumeState) and the csi-attacher records the error
                if not (va.status and va.status.attach_error):
                    self._va_status(va, {"attached": False, "attachError": {
                        "time": now_iso(), "message": "rpc error: code = DeadlineExceeded desc = "
                        "volume %s failed to attach to node %s with attachmentID %s" % (
                            vname, target, va.metadata.name)}})
                    self.record("attach-refused", volume=vname, node=target, attached=node)
                continue
            if node == target and not (moving and moving["state"] == "attaching"):
                if not (va.status and va.status.attached) or va.status.attach_error:
                    self._va_status(va, {"attached": True, "attachError": None})
                    self.record("attachment-attached", volume=vname, node=target, attachment=va.metadata.name)
                continue
            if moving is None or moving["state"] != "attaching" or moving["node"] != target:
                moving = self.moving[vname] = {"state": "attaching", "node": target, "since": t}
                self.record("attach-start", volume=vname, node=target, attachment=va.metadata.name)
            elif t - moving["since"] >= self.attach_seconds:
                self._spec("volumes", volume, {"nodeID": target})
                self.moving.pop(vname)
                moving, node = None, target
                self.record("attached", volume=vname, node=target)
                self._va_status(va, {"attached": True, "attachError": None})
        if moving is not None and not any(a.spec.node_name == moving["node"] for a in attachments):
            self.moving.pop(vname)  # its VolumeAttachment is gone: nothing attaches or detaches

    def _va_finalizers(self, va, finalizers: list) -> None:
        """Set a VolumeAttachment's finalizers: a JSON patch (the client's default for a
        dict is a strategic merge, which merges finalizer lists and removes nothing),
        guarded by the resourceVersion read."""
        self.storage.patch_volume_attachment(va.metadata.name, [
            {"op": "test", "path": "/metadata/resourceVersion", "value": va.metadata.resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": finalizers}])
        va.metadata.finalizers = finalizers

    def _va_status(self, va, status: dict) -> None:
        self.storage.patch_volume_attachment_status(va.metadata.name, {"status": status})

    def _reconcile_volume(self, volume, mine, engine, all_replicas, engines, usable, settings,
                          faults, pvs) -> None:
        vname = volume["metadata"]["name"]
        node_id = volume["spec"].get("nodeID") or ""
        wanted = int(volume["spec"].get("numberOfReplicas") or 1)
        t = time.time()
        if engine is None:
            engine = self._create("engines", "Engine", f"{vname}-e-0", {"longhornvolume": vname},
                                  {"volumeName": vname, "nodeID": node_id})
            engine["status"] = {}
        # the engine controller drops the entries of replicas that are gone from its
        # replicaModeMap (replenishReplicas waits for that: hasEngineStatusSynced)
        names = set(r["metadata"]["name"] for r in mine)
        modes = dict((k, v) for k, v in ((engine.get("status") or {}).get("replicaModeMap") or {}).items()
                     if k in names)
        rebuild = dict((engine.get("status") or {}).get("rebuildStatus") or {})
        down = faults.get("down-nodes", set())
        fresh = not mine and not modes  # a new volume: its replicas start in sync

        # replicas on a down node fail
        for r in mine:
            if r["spec"].get("nodeID") in down and not r["spec"].get("failedAt"):
                self._fail(r, modes, rebuild, "node down")
        # closeVolumeDependentResources: when the volume detaches, a replica that never became
        # healthy and has not failed (one being rebuilt) is marked failed
        if not node_id:
            for r in mine:
                if not r["spec"].get("healthyAt") and not r["spec"].get("failedAt") and modes.get(
                        r["metadata"]["name"]) == "WO":
                    self._fail(r, modes, rebuild, "the volume detached during the rebuild")
        # rebuild progress
        for r in mine:
            rname = r["metadata"]["name"]
            if modes.get(rname) != "WO" or r["spec"].get("failedAt"):
                continue
            job = self.rebuilds.setdefault(rname, {"start": t, "fail": False})
            progress = min(100, int((t - job["start"]) / self.rebuild_seconds * 100))
            if job["fail"] and progress >= 50:
                self._fail(r, modes, rebuild, "rebuild failed")
                if vname in faults.get("loop-rebuild", set()):
                    self._delete("replicas", rname)  # and the next tick starts another
                    modes.pop(rname, None)
                    self.record("replica-deleted", volume=vname, replica=rname, node=r["spec"]["nodeID"])
                    r["spec"]["failedAt"] = "deleted"
                continue
            if progress >= 100:
                modes[rname] = "RW"
                rebuild.pop(_address(rname), None)
                self.rebuilds.pop(rname, None)
                self._spec("replicas", r, {"healthyAt": now_iso()})
                self.record("rebuild-done", volume=vname, replica=rname, node=r["spec"]["nodeID"])
            else:
                rebuild[_address(rname)] = {"isRebuilding": True, "progress": progress,
                                            "state": "in_progress", "error": "",
                                            "fromReplicaAddress": _address(_source(modes, rname))}
        active = [r for r in mine if not r["spec"].get("failedAt")]

        # CheckAndReuseFailedReplica (replenishReplicas): while the volume is attached and no
        # rebuild is in flight, a failed replica on a usable node whose retries are not used up
        # (isFailedReplicaReusable, FailedReplicaMaxRetryCount 5) is reused in place, one at a
        # time, the latest failed first: failedAt and healthyAt cleared, rebuildRetryCount one
        # up when its rebuild failed; not while in its backoff (NewBackOff(1m, 3m): the first
        # reuse at once, the next after 1, 2, then 3 minutes)
        limit = int(_engine_value(settings["concurrent-replica-rebuild-per-node-limit"]) or 0)
        if node_id and len(active) < wanted and "WO" not in modes.values() and limit != 0:
            reusable = sorted((r for r in mine if r["spec"].get("failedAt") not in (None, "", "deleted")
                               and usable.get(r["spec"].get("nodeID"))
                               and int(r["spec"].get("rebuildRetryCount") or 0) < 5
                               and not r["spec"].get("evictionRequested")),
                              key=lambda r: r["spec"]["failedAt"], reverse=True)
            for r in reusable[:1]:
                rname = r["metadata"]["name"]
                last, delay = self.backoff.get(rname, (None, 0))
                if last is not None and t - last < delay:
                    continue
                self.backoff[rname] = (t, 60 if last is None else min(delay * 2, 180))
                retries = int(r["spec"].get("rebuildRetryCount") or 0) + (
                    1 if self.rebuilds.get("failed-rebuild:" + rname) else 0)
                self._spec("replicas", r, {"failedAt": "", "healthyAt": "", "rebuildRetryCount": retries})
                self._status("replicas", r, dict(r.get("status") or {}, currentState="running"))
                modes[rname] = "pending"
                self.rebuilds.pop("failed-rebuild:" + rname, None)
                active.append(r)
                self.record("replica-reused", volume=vname, replica=rname, node=r["spec"]["nodeID"],
                            retries=retries)

        # ReconcileEngineReplicaState, before replenishReplicas: the volume's robustness from
        # its RW replicas, and status.lastDegradedAt set when it becomes degraded (kept while
        # it stays degraded, cleared when it is not)
        rw_now = sum(1 for r in active if modes.get(r["metadata"]["name"]) == "RW")
        robustness_now = ("unknown" if not node_id else "healthy" if rw_now >= wanted
                          else "degraded" if rw_now else "faulted")
        last_degraded = ((volume.get("status") or {}).get("lastDegradedAt") or "") \
            if robustness_now == "degraded" else ""
        if robustness_now == "degraded" and (not last_degraded or (volume.get("status") or {}).get(
                "robustness") != "degraded"):
            last_degraded = now_iso()
        # too few: schedule and create; too many: remove
        wait = int(_engine_value(settings["replica-replenishment-wait-interval"]) or 0)
        scheduled = {"type": "Scheduled", "status": "True", "reason": "", "message": ""}
        for _i in range(wanted - len(active)):
            if mine and not node_id:
                break  # replenishReplicas: a volume with replicas gets more only while attached
            if mine and (limit == 0 or "WO" in modes.values()):
                break  # replenishReplicas: limit 0 disables rebuilds; none while one is in flight
            if mine and replacement_delay(robustness_now, last_degraded, mine, wait, t) > 0:
                break  # RequireNewReplica: a failed replica may come back; wait for it
            node = self._schedule(active, usable, settings)
            if node is None:
                scheduled = {"type": "Scheduled", "status": "False", "reason": "ReplicaSchedulingFailure",
                             "message": "no node can take a replica of %s: replica-soft-anti-affinity is "
                                        "%s and every usable node has one" % (
                                            vname, settings["replica-soft-anti-affinity"])}
                break
            rname = f"{vname}-r-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
            r = self._create("replicas", "Replica", rname, {"longhornvolume": vname, "longhornnode": node},
                             {"volumeName": vname, "nodeID": node, "failedAt": "", "healthyAt": ""})
            self._status("replicas", r, {"currentState": "running", "storageIP": "127.0.0.1", "port": 10000})
            self.record("replica-created", volume=vname, replica=rname, node=node)
            active.append(r)
            if fresh:
                modes[rname] = "RW"
                self._spec("replicas", r, {"healthyAt": now_iso()})
            else:
                modes[rname] = "pending"
        extra = self._extra_healthy_replica(volume, active, modes, settings)
        if extra is not None:
            self._delete("replicas", extra["metadata"]["name"])
            modes.pop(extra["metadata"]["name"], None)
            rebuild.pop(_address(extra["metadata"]["name"]), None)
            self.rebuilds.pop(extra["metadata"]["name"], None)
            self.record("replica-deleted", volume=vname, replica=extra["metadata"]["name"],
                        node=extra["spec"]["nodeID"], why="extra healthy replica")
            active.remove(extra)

        # start waiting rebuilds within the per-node limit (CanStartRebuildingReplica)
        for r in active:
            rname = r["metadata"]["name"]
            if modes.get(rname) != "pending":
                continue
            node = r["spec"]["nodeID"]
            busy = sum(1 for other in all_replicas
                       if other["spec"].get("volumeName") != vname and other["spec"].get("nodeID") == node
                       and _mode_of(engines, other) == "WO")
            busy += sum(1 for x in active if x["spec"]["nodeID"] == node and modes.get(x["metadata"]["name"]) == "WO")
            if (limit > 0 and busy >= limit) or not any(m == "RW" for m in modes.values()) or not node_id:
                continue
            fail = (vname in faults.get("loop-rebuild", set())
                    or (vname in faults.get("fail-rebuild", set()) and vname not in self.failed_once))
            if fail and vname in faults.get("fail-rebuild", set()):
                self.failed_once.add(vname)
            self.rebuilds[rname] = {"start": t, "fail": fail}
            modes[rname] = "WO"
            rebuild[_address(rname)] = {"isRebuilding": True, "progress": 0, "state": "in_progress",
                                        "error": "", "fromReplicaAddress": _address(_source(modes, rname))}
            self.record("rebuild-start", volume=vname, replica=rname, node=node)
            if vname in faults.get("detach-on-rebuild", set()):
                # its workload stops right then: the volume detaches (as _attachment does)
                self._spec("volumes", volume, {"nodeID": ""})
                node_id = ""
                self.record("detached", volume=vname, node=volume["status"].get("currentNodeID") if volume.get(
                    "status") else None, why="fault detach-on-rebuild")

        # a healthy volume drops its failed replicas
        rw = sum(1 for r in active if modes.get(r["metadata"]["name"]) == "RW")
        if node_id and rw >= wanted:
            for r in mine:
                if r["spec"].get("failedAt") not in (None, "", "deleted"):
                    self._delete("replicas", r["metadata"]["name"])
                    modes.pop(r["metadata"]["name"], None)
                    self.record("replica-deleted", volume=vname, replica=r["metadata"]["name"],
                                node=r["spec"]["nodeID"])

        # status of the engine and the volume
        engine_status = {"currentState": "running" if node_id else "stopped",
                         "replicaModeMap": {k: v for k, v in modes.items() if v in ("RW", "WO", "ERR")},
                         "rebuildStatus": rebuild}
        self._status("engines", engine, engine_status)
        engines[vname] = engine
        if not node_id:
            state, robustness = "detached", "unknown"
        else:
            state = "attached"
            robustness = "healthy" if rw >= wanted else "degraded" if rw else "faulted"
        if vname in self.moving:
            state = self.moving[vname]["state"]
        status = {"state": state, "robustness": robustness, "currentNodeID": node_id,
                  "conditions": [scheduled],
                  "lastDegradedAt": (last_degraded or now_iso()) if robustness == "degraded" else ""}
        pv = pvs.get(vname)
        if pv is not None and pv.spec.claim_ref is not None:
            status["kubernetesStatus"] = {"namespace": pv.spec.claim_ref.namespace,
                                          "pvcName": pv.spec.claim_ref.name, "pvName": pv.metadata.name}
        self._status("volumes", volume, status)

    def _sync_taint_toleration(self, settings, setting_objects, volumes) -> None:
        """longhorn-manager's SettingController.updateTaintToleration: the system-managed
        DaemonSets (label longhorn.io/managed-by=longhorn-manager) whose
        last-applied-tolerations annotation differs from the setting get the setting's
        tolerations (getFinalTolerations: their own, less the last applied, plus the new),
        and only while every volume is detached (AreAllVolumesDetachedState); until then
        the setting's ``status.applied`` is false ("It will be eventually applied")."""
        value = settings.get("taint-toleration", "")
        if value == self.tolerations_synced:
            return
        try:
            new = unmarshal_tolerations(value)
        except ValueError:
            return  # the webhook refuses such a value; a stored one stays unapplied
        wanted = dict((_toleration_key(t), t) for t in new)
        stale = []
        for ds in self.apps.list_namespaced_daemon_set(self.ns, label_selector=MANAGED_BY + "=longhorn-manager").items:
            last = json.loads((ds.metadata.annotations or {}).get(LAST_APPLIED_TOLERATIONS) or "[]")
            if dict((_toleration_key(t), t) for t in last) != wanted:
                stale.append((ds, last))
        applied = True
        if stale and any((v.get("status") or {}).get("state") != "detached" for v in volumes):
            applied = False
        else:
            for ds, last in stale:
                own = [self.api.sanitize_for_serialization(t) for t in ds.spec.template.spec.tolerations or []]
                final = dict((_toleration_key(t), t) for t in own)
                for t in last:
                    final.pop(_toleration_key(t), None)
                final.update(wanted)
                body = {"metadata": {"resourceVersion": ds.metadata.resource_version,
                                     "annotations": {LAST_APPLIED_TOLERATIONS: json.dumps(new)}},
                        "spec": {"template": {"spec": {"tolerations": [final[k] for k in sorted(final)]}}}}
                self.apps.patch_namespaced_daemon_set(ds.metadata.name, self.ns, body)
                self.record("tolerations-applied", daemonset=ds.metadata.name, value=value)
            self.tolerations_synced = value
        for setting in setting_objects:
            if setting["metadata"]["name"] == "taint-toleration":
                self._status("settings", setting, {"applied": applied})

    @staticmethod
    def _extra_healthy_replica(volume, active, modes, settings):
        """The one extra healthy replica longhorn-manager removes in this pass, or None.

        Mirrors the volume controller's cleanupExtraHealthyReplicas: only when more replicas
        are healthy (``RW``) than ``numberOfReplicas``, and only for an eviction
        (``spec.evictionRequested``, cleanupEvictionRequestedReplicas), data locality (the
        volume's ``dataLocality`` is not ``disabled`` and a healthy replica is on the
        engine's node: a non-local one goes, cleanupDataLocalityReplicas) or replica
        auto-balance (the volume's ``replicaAutoBalance``, else the setting, is not
        ``disabled``: cleanupAutoBalancedReplicas, here a replica sharing a node with
        another first, then by name). Anything else, a lowered ``numberOfReplicas``
        included, leaves every healthy replica in place: removing one is the user's."""
        wanted = int(volume["spec"].get("numberOfReplicas") or 1)
        healthy = [r for r in active if modes.get(r["metadata"]["name"]) == "RW"]
        if len(healthy) <= wanted:
            return None
        by_name = sorted(healthy, key=lambda r: r["metadata"]["name"])
        for r in by_name:
            if r["spec"].get("evictionRequested"):
                return r
        node_id = volume["spec"].get("nodeID") or ""
        locality = volume["spec"].get("dataLocality") or "disabled"
        if locality != "disabled" and any(r["spec"].get("nodeID") == node_id for r in healthy):
            for r in by_name:
                if r["spec"].get("nodeID") != node_id:
                    return r
        balance = volume["spec"].get("replicaAutoBalance") or "ignored"
        if balance == "ignored":
            balance = _engine_value(settings.get("replica-auto-balance", "disabled"))
        if balance != "disabled":
            nodes = [r["spec"].get("nodeID") for r in healthy]
            shared = [r for r in by_name if nodes.count(r["spec"].get("nodeID")) > 1]
            return (shared or by_name)[-1]
        return None

    def _fail(self, r, modes, rebuild, why) -> None:
        rname = r["metadata"]["name"]
        was = modes.get(rname)
        modes[rname] = "ERR"
        rebuild.pop(_address(rname), None)
        self.rebuilds.pop(rname, None)
        if was == "WO":  # datastore.IsReplicaRebuildingFailed: a reuse counts a retry
            self.rebuilds["failed-rebuild:" + rname] = True
        self._spec("replicas", r, {"failedAt": now_iso()})
        self._status("replicas", r, dict(r.get("status") or {}, currentState="error"))
        self.record("rebuild-failed" if was == "WO" else "replica-failed", volume=r["spec"]["volumeName"],
                    replica=rname, node=r["spec"].get("nodeID"), why=why)

    @staticmethod
    def _schedule(active, usable, settings):
        """Longhorn's replica scheduler for these fields: a usable node without a replica of
        the volume, else (soft anti-affinity only) the usable node with the fewest."""
        taken = [r["spec"].get("nodeID") for r in active]
        free = sorted(n for n, ok in usable.items() if ok and n not in taken)
        if free:
            return free[0]
        if _engine_value(settings["replica-soft-anti-affinity"]) == "true":
            candidates = sorted((taken.count(n), n) for n, ok in usable.items() if ok)
            if candidates:
                return candidates[0][1]
        return None

    def stop(self) -> None:
        self.stopping.set()
        self.changed.set()  # wake the controller's idle wait
        if self.httpd is not None:
            self.httpd.shutdown()
        if self.api is not None:
            self.unregister()


def _engine_value(value: str) -> str:
    """The v1 data engine's value of a setting stored plain or as per-engine JSON."""
    if value.strip().startswith("{"):
        return "%s" % (json.loads(value).get("v1", ""),)
    return value


def _address(replica_name: str) -> str:
    return f"tcp://{replica_name}:10000"


def _source(modes: dict, rname: str) -> str:
    return next((k for k, v in sorted(modes.items()) if v == "RW" and k != rname), "")


def _mode_of(engines: dict, replica: dict) -> str | None:
    engine = engines.get(replica["spec"].get("volumeName"))
    if engine is None:
        return None
    return ((engine.get("status") or {}).get("replicaModeMap") or {}).get(replica["metadata"]["name"])


class Running:
    """The simulator as a child process of a test, with the helpers tests need.

    ``Running(cluster).start()`` loads the CRDs, starts the simulator (webhook first),
    then the ``longhorn-two-node`` objects, and waits until every volume is healthy.
    ``stop()`` stops it, removes its webhooks and deletes every Longhorn object."""

    OBJECTS = HERE.parent / "fixtures" / "longhorn-two-node"

    def __init__(self, cluster, namespace="longhorn-system", rebuild_seconds=1.5, attach_seconds=1.0):
        self.cluster = cluster
        self.attach_seconds = attach_seconds
        self.ns = namespace
        self.rebuild_seconds = rebuild_seconds
        self.state_dir = Path(cluster.dir) / "longhorn-sim"
        self.history_file = self.state_dir / "history.jsonl"
        self.proc = None

    def start(self):
        import subprocess
        c = self.cluster
        from upstream_crds import fetch  # pylint: disable=import-outside-toplevel

        c.kubectl("apply", "--server-side", "-f", str(fetch("longhorn")))
        c.wait_established("-l", FIXTURE_LABEL + "=longhorn-crds")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.history_file.unlink(missing_ok=True)
        # the DaemonSets the simulator adopts as longhorn-manager's, to put back on stop
        self.daemonsets = [(d["metadata"]["name"], d["metadata"].get("labels") or {},
                            d["metadata"].get("annotations") or {},
                            d["spec"]["template"]["spec"].get("tolerations") or [])
                           for d in c.get_json("daemonsets", "-n", self.ns)["items"]]
        self.log = open(self.state_dir / "simulator.log", "w")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, str(Path(__file__).resolve()), "--cluster-dir", str(c.dir),
             "--state-dir", str(self.state_dir), "--namespace", self.ns,
             "--rebuild-seconds", str(self.rebuild_seconds), "--attach-seconds", str(self.attach_seconds)],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        try:
            line = self.proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError("the Longhorn simulator did not start: "
                                   + (self.state_dir / "simulator.log").read_text()[-2000:])
            c.kubectl("apply", "-f", str(self.OBJECTS))
            self.wait("every volume healthy", lambda: self.volumes() and all(
                v.get("status", {}).get("robustness") == "healthy" for v in self.volumes().values()))
        except BaseException:
            self.stop()  # a fixture whose setup fails gets no teardown
            raise
        return self

    def stop(self):
        c = self.cluster
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
            self.log.close()
        # (from this process, not one kubectl each: a test with the simulator starts and
        # stops it, and these were a dozen kubectl processes of every such test)
        for name, labels, annotations, tolerations in getattr(self, "daemonsets", []):
            c.patch("daemonset", name, [
                {"op": "add", "path": "/metadata/labels", "value": labels},
                {"op": "add", "path": "/metadata/annotations", "value": annotations},
                {"op": "add", "path": "/spec/template/spec/tolerations", "value": tolerations}], namespace=self.ns)
        # the csi-attacher is gone with it: its finalizer would hold what is left for ever
        for va in c.get_json("volumeattachments")["items"]:
            if va["spec"]["attacher"] == DRIVER and ATTACHER_FINALIZER in va["metadata"].get("finalizers", []):
                c.patch("volumeattachment", va["metadata"]["name"], [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": va["metadata"]["resourceVersion"]},
                    {"op": "replace", "path": "/metadata/finalizers",
                     "value": [f for f in va["metadata"]["finalizers"] if f != ATTACHER_FINALIZER]}], check=False)
        c.delete("mutatingwebhookconfiguration", MUTATOR)
        c.delete("validatingwebhookconfiguration", VALIDATOR)
        for kind in ("volumes.longhorn.io", "replicas.longhorn.io", "engines.longhorn.io",
                     "nodes.longhorn.io", "settings.longhorn.io"):
            c.delete_all(kind, namespace=self.ns)
        c.delete("configmap", FAULTS_CONFIGMAP, namespace=self.ns)
        c.delete_all("pvc", namespace="*", selector=FIXTURE_LABEL + "=longhorn")
        c.delete_all("pv", selector=FIXTURE_LABEL + "=longhorn")
        c.delete_all("csidriver", selector=FIXTURE_LABEL + "=longhorn")

    # -- what tests drive and observe --------------------------------------------------
    def set_faults(self, **faults):
        """Set the fault ConfigMap (fail_rebuild, loop_rebuild, down_nodes,
        refuse_settings, stuck_attached, detach_on_rebuild: lists of names) and wait until the simulator has read it."""
        data = {k.replace("_", "-"): ",".join(v) for k, v in faults.items()}
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": FAULTS_CONFIGMAP, "namespace": self.ns}, "data": data}
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
        time.sleep(1)  # a few reconcile ticks: the webhook answers from the last read

    def history(self):
        if not self.history_file.exists():
            return []
        return [json.loads(line) for line in self.history_file.read_text().splitlines() if line]

    def max_concurrent_rebuilds(self):
        """The most rebuilds that were in flight at one time, from the history."""
        running, most = set(), 0
        for e in self.history():
            if e["event"] == "rebuild-start":
                running.add(e["replica"])
            elif e["event"] in ("rebuild-done", "rebuild-failed", "replica-deleted", "replica-failed"):
                running.discard(e["replica"])
            most = max(most, len(running))
        return most

    def _items(self, plural):
        return self.cluster.get_json(plural + ".longhorn.io", "-n", self.ns)["items"]

    def volumes(self):
        return {v["metadata"]["name"]: v for v in self._items("volumes")}

    def attachments(self, pv):
        """The VolumeAttachments (any attacher) of the PersistentVolume ``pv``, by name."""
        return sorted((a for a in self.cluster.get_json("volumeattachments")["items"]
                       if a["spec"]["source"].get("persistentVolumeName") == pv),
                      key=lambda a: a["metadata"]["name"])

    def replica_nodes(self):
        """volume -> sorted nodes of its replicas that have not failed."""
        out = {}
        for r in self._items("replicas"):
            if not r["spec"].get("failedAt"):
                out.setdefault(r["spec"]["volumeName"], []).append(r["spec"]["nodeID"])
        return {k: sorted(v) for k, v in out.items()}

    def settings(self):
        return {s["metadata"]["name"]: s.get("value") for s in self._items("settings")}

    def wait(self, what, cond, timeout=60):
        self.cluster.wait("longhorn simulator: " + what, cond, timeout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--cluster-dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--state-dir", type=Path, default=None)
    p.add_argument("--namespace", default="longhorn-system")
    p.add_argument("--rebuild-seconds", type=float, default=2.0)
    p.add_argument("--attach-seconds", type=float, default=1.0)
    args = p.parse_args(argv)
    sim = Simulator(args.cluster_dir, args.state_dir or args.cluster_dir / "longhorn-sim",
                    args.namespace, args.rebuild_seconds, attach_seconds=args.attach_seconds)

    def stop(_signum, _frame):
        sim.stopping.set()
        sim.changed.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sim.start()
    print("ready", flush=True)
    try:
        sim.run()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
