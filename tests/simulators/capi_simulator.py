"""A Cluster API + Talos control plane simulator for tests: what the CAPI core
controllers and the Talos control plane provider do with the objects runbook 004 reads
and deletes, against the real local API server.

No registry offers the CAPI controllers without a management cluster, infrastructure
and Talos machines, so this stands in for them, following the documented shapes (see
REFERENCE.md section 6), against CAPI's and the Talos control plane provider's own CRDs
(tests/cluster/upstream_crds.py, sources ``capi`` and ``talos-controlplane``), so what it
writes passes the same schemas the real controllers' writes do:

- **Machine status**: a Machine with the annotations ``sim.homelab.k8s-ha/node`` and
  ``sim.homelab.k8s-ha/ip`` gets ``status.phase`` Running, ``status.nodeRef``,
  ``status.addresses`` (InternalIP) and a ``NodeHealthy`` condition that follows its
  Node's Ready condition. Conditions others set (HealthCheckSucceeded, as a
  MachineHealthCheck would) are kept.
- **Machine deletion** (``reconcileDelete``, see ``_deleting``): while another control
  plane Machine remains, the node is cordoned and drained through the Eviction API
  (PodDisruptionBudgets hold it), its volumes must detach, and the Node object is
  deleted; then the finalizer is removed and the Machine is gone. The host's kubelet
  registers a new Node on its next start (``localcluster.node_up``), without the
  labels and taints the old one had. Its owner
  (the TalosControlPlane, or the MachineSet named by ``cluster.x-k8s.io/set-name``)
  creates a replacement Machine at once, phase Provisioning, without a node. In this
  no-spare topology the replacement takes the same host: once that node has been
  rebooted (seen NotReady after the deletion, then Ready), the replacement gets the nodeRef, is
  Running, and the node is uncordoned (as a fresh registration is).
- **Status of the owners**: TalosControlPlane ``readyReplicas`` and ``unavailableReplicas``
  (v1alpha3); MachineDeployment ``readyReplicas``, ``availableReplicas`` and
  ``upToDateReplicas`` (v1beta2, where ``unavailableReplicas`` is only a deprecated field).
- **CAPI's own remediation**: a MachineHealthCheck marks the Machines it selects that fail its
  checks, and the MachineSet deletes such a worker at once (``_health_checks``).
- **Faults** (``set_fault``): ``stuck-deleting`` - these Machines keep their finalizer
  (a drain or volume detach that never ends).

Every step is recorded in ``history`` (``t``, ``event``, ``machine``, ``node``); the
simulator writes as its own user (``capi-controller-simulator``), so the audit log
tells its writes from the module's.
"""

from __future__ import annotations

import datetime
import json
import random
import string
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cluster"))

from kubernetes.client.rest import ApiException  # noqa: E402  pylint: disable=wrong-import-position
from localcluster import issue_cert, write_kubeconfig  # noqa: E402  pylint: disable=wrong-import-position

GROUP, VERSION = "cluster.x-k8s.io", "v1beta2"
TCP_GROUP, TCP_VERSION = "controlplane.cluster.x-k8s.io", "v1alpha3"
NODE_ANN, IP_ANN = "sim.homelab.k8s-ha/node", "sim.homelab.k8s-ha/ip"
CP_LABEL, SET_LABEL, MD_LABEL = "cluster.x-k8s.io/control-plane", "cluster.x-k8s.io/set-name", \
    "cluster.x-k8s.io/deployment-name"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
PAUSED, SKIP_REMEDIATION = "cluster.x-k8s.io/paused", "cluster.x-k8s.io/skip-remediation"
REMEDIATE_ANN = "cluster.x-k8s.io/remediate-machine"
EXCLUDE_DRAIN = "machine.cluster.x-k8s.io/exclude-node-draining"
EXCLUDE_VOLUMES = "machine.cluster.x-k8s.io/exclude-wait-for-node-volume-detach"
FIXTURES = HERE.parent / "fixtures"
USER = "capi-sim"


def _ready(node):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _unreachable(node):
    """``noderefutil.IsNodeUnreachable``: its Ready condition is Unknown."""
    return any(c.get("type") == "Ready" and c.get("status") == "Unknown"
               for c in (node.get("status") or {}).get("conditions") or [])


def _delete_node_allowed(machines):
    """``isDeleteNodeAllowed`` (v1.11), given a nodeRef: at least one control plane Machine
    of the cluster that is not being deleted (``errNoControlPlaneNodes``); so the only
    control plane Machine's Node is neither drained nor deleted."""
    return any(CP_LABEL in (x["metadata"].get("labels") or {}) and not x["metadata"].get("deletionTimestamp")
               for x in machines)


def _stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _epoch(stamp):
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _condition(ctype, ok, reason, message, old):
    """A metav1.Condition; its lastTransitionTime kept while its status stays."""
    status = "True" if ok else "False"
    before = old.get(ctype) or {}
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": before["lastTransitionTime"] if before.get("status") == status
            and before.get("lastTransitionTime") else _stamp()}


def _selects(selector, labels):
    """metav1.LabelSelectorAsSelector's match (an unknown operator selects nothing)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        ok = {"In": key in labels and labels.get(key) in values,
              "NotIn": key not in labels or labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False)
        if not ok:
            return False
    return True


class CapiSimulator:
    def __init__(self, cluster, namespace="homelab", tick=0.3):
        self.cluster = cluster
        self.ns = namespace
        self.tick = tick
        self.history = []
        self.faults = {}
        self.pending = {}  # replacement machine -> {"node", "ip", "seen_down"}
        self.drained = set()
        self._stop = threading.Event()
        self._thread = None
        self.errors = []

    # ---- setup -------------------------------------------------------------------------
    def start(self):
        from kubernetes import client, config

        c = self.cluster
        from upstream_crds import fetch  # pylint: disable=import-outside-toplevel

        for source in ("capi", "talos-controlplane", "argo-workflows"):
            c.kubectl("apply", "--server-side", "-f", str(fetch(source)))
        c.wait_established("-l", "homelab.k8s-ha/fixture=capi-crds")
        pki = Path(c.dir) / "pki"
        issue_cert(pki, USER, "capi-controller-simulator", "system:masters")
        kubeconfig = Path(c.dir) / "capi-sim.kubeconfig"
        write_kubeconfig(kubeconfig, c.server, pki, USER)
        api = config.new_client_from_config(str(kubeconfig))
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        c.kubectl("apply", "-f", str(FIXTURES / "talos-capi-objects"))
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        self.wait("every machine Running", lambda: all(
            (m.get("status") or {}).get("phase") == "Running" for m in self.machines()) and self.machines())
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        c = self.cluster
        c.kubectl("delete", "machinehealthchecks.%s" % GROUP, "--all", "-n", self.ns, check=False)
        for kind in ("machines", "machinesets", "machinedeployments", "clusters"):
            names = c.kubectl("get", "%s.%s" % (kind, GROUP), "-n", self.ns, "-o", "name", check=False).stdout.split()
            for name in names:
                c.kubectl("patch", name, "-n", self.ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                          check=False)
            c.kubectl("delete", "%s.%s" % (kind, GROUP), "--all", "-n", self.ns, "--wait=false", check=False)
        c.kubectl("delete", "taloscontrolplanes.%s" % TCP_GROUP, "--all", "-n", self.ns, check=False)
        for n in ("cp-1", "worker-1", "worker-2"):
            c.kubectl("uncordon", n, check=False)

    def set_fault(self, **faults):
        for k, v in faults.items():
            self.faults[k.replace("_", "-")] = v

    def record(self, event, **fields):
        fields.update(t=round(time.time(), 3), event=event)
        self.history.append(fields)

    def wait(self, what, cond, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            time.sleep(0.2)
        raise TimeoutError("CAPI simulator: %s not reached in %ss; errors: %s" % (what, timeout, self.errors[-3:]))

    # ---- reads ---------------------------------------------------------------------------
    def machines(self):
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, "machines")["items"]

    def machine(self, name):
        return next((m for m in self.machines() if m["metadata"]["name"] == name), None)

    def _status(self, plural, obj, status, group=GROUP, version=VERSION):
        """Replace the status, only if the object is still the one read (a JSON patch
        ``test`` of its resourceVersion: a concurrent writer makes it fail, and the next
        pass reads again)."""
        if obj.get("status") == status:
            return
        self.custom.patch_namespaced_custom_object_status(
            group, version, self.ns, plural, obj["metadata"]["name"],
            [{"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
             {"op": "add", "path": "/status", "value": status}], _content_type="application/json-patch+json")

    # ---- the loop ------------------------------------------------------------------------
    def _loop(self):
        while not self._stop.wait(self.tick):
            try:
                self.reconcile()
            except Exception as e:  # pylint: disable=broad-except
                self.errors.append(repr(e))

    def reconcile(self):
        nodes = {n.metadata.name: self.core.api_client.sanitize_for_serialization(n)
                 for n in self.core.list_node().items}
        machines = self.machines()
        for m in machines:
            meta = m["metadata"]
            name = meta["name"]
            if meta.get("deletionTimestamp"):
                self._deleting(m, machines, nodes)
                continue
            status = dict(m.get("status") or {})
            ann = meta.get("annotations") or {}
            node_name = (status.get("nodeRef") or {}).get("name") or ann.get(NODE_ANN)
            if name in self.pending:
                p = self.pending[name]
                ready = _ready(nodes.get(p["node"], {}))
                p["seen_down"] = p.get("seen_down") or not ready
                if not (ready and p["seen_down"]):
                    if status.get("phase") != "Provisioning":
                        self._status("machines", m, {"phase": "Provisioning"})
                    continue
                del self.pending[name]
                node_name = p["node"]
                ann = {IP_ANN: p["ip"]}
                self.core.patch_node(node_name, {"spec": {"unschedulable": None}})
                self.record("machine-running", machine=name, node=node_name)
            if not node_name:
                continue
            ready = _ready(nodes.get(node_name, {}))
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "NodeHealthy"]
            # metav1.Condition, as v1beta2 requires: type, status, reason, message, lastTransitionTime
            conds.append({"type": "NodeHealthy", "status": "True" if ready else "False",
                          "reason": "NodeReady" if ready else "NodeNotReady",
                          "message": "" if ready else "Node %s is not Ready" % node_name,
                          "lastTransitionTime": next((c.get("lastTransitionTime") for c in status.get(
                              "conditions") or [] if c.get("type") == "NodeHealthy" and c.get("status") == (
                              "True" if ready else "False")), _stamp())})
            ip = ann.get(IP_ANN) or next((a["address"] for a in status.get("addresses") or []
                                          if a.get("type") == "InternalIP"), None)
            want = dict(status, phase="Running", nodeRef={"name": node_name},  # v1beta2: the name only
                        addresses=[{"type": "Hostname", "address": node_name}, {"type": "InternalIP", "address": ip}],
                        conditions=conds)
            self._status("machines", m, want)
        self._health_checks(nodes)
        self._owners(self.machines(), nodes)

    # ---- CAPI's own remediation ----------------------------------------------------------
    def _health_checks(self, nodes):
        """MachineHealthChecks and what the MachineSet does with their verdict, for the rules
        runbook 004 meets (CAPI v1.11):

        - targets: the Machines the MHC's selector plus the cluster-name label select
          (getMachinesFromMHC), minus those annotated ``cluster.x-k8s.io/paused`` or
          ``cluster.x-k8s.io/skip-remediation`` (shouldSkipRemediation); nothing while the
          MHC is paused or the Cluster's ``spec.paused`` is true (IsPaused);
        - unhealthy (healthCheckTarget.needsRemediation): the ``remediate-machine``
          annotation, a nodeRef whose Node is gone, a node condition in
          ``spec.checks.unhealthyNodeConditions`` held past its ``timeoutSeconds``, no node
          after ``spec.checks.nodeStartupTimeoutSeconds``; HealthCheckSucceeded False with
          that reason, else True;
        - an unhealthy target gets OwnerRemediated False (WaitingForRemediation) unless a
          remediation template is set (then ExternallyRemediated False and no deletion here)
          (patchUnhealthyTargets). The RemediationAllowed short-circuit (triggerIf) is not
          modelled: every unhealthy target is remediated, which is stricter;
        - the MachineSet (reconcileUnhealthyMachines) deletes a worker Machine with
          HealthCheckSucceeded False and OwnerRemediated False at once (maxInFlight not
          modelled: unlimited, CAPI's default), and drops OwnerRemediated from a Machine whose
          HealthCheckSucceeded is True again. The Talos control plane provider remediates
          nothing, so a control plane Machine keeps its OwnerRemediated False."""
        mhcs = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, "machinehealthchecks")["items"]
        if not mhcs:
            return
        clusters = {c["metadata"]["name"]: c for c in self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.ns, "clusters")["items"]}
        now = time.time()
        for m in self.machines():
            meta = m["metadata"]
            ann = meta.get("annotations") or {}
            labels = meta.get("labels") or {}
            if meta.get("deletionTimestamp") or PAUSED in ann or SKIP_REMEDIATION in ann:
                continue
            watching = [h for h in mhcs if PAUSED not in (h["metadata"].get("annotations") or {})
                        and h["spec"].get("clusterName") in clusters
                        and not clusters[h["spec"]["clusterName"]]["spec"].get("paused")
                        and labels.get(CLUSTER_LABEL) == h["spec"]["clusterName"]
                        and _selects(h["spec"].get("selector") or {}, labels)]
            if not watching:
                continue
            status = dict(m.get("status") or {})
            conds = {c["type"]: c for c in status.get("conditions") or []}
            reason, message = self._unhealthy(m, watching[0], nodes, now)
            want = dict(conds)
            want["HealthCheckSucceeded"] = _condition(
                "HealthCheckSucceeded", reason is None, reason or "HealthCheckSucceeded",
                "" if reason is None else "Health check failed: %s" % message, conds)
            template = ((watching[0]["spec"].get("remediation") or {}).get("templateRef") or {}).get("name")
            if reason is not None and template:
                want.setdefault("ExternallyRemediated", _condition(
                    "ExternallyRemediated", False, "WaitingForRemediation", "", conds))
            elif reason is not None and want.get("OwnerRemediated", {}).get("status") != "False":
                want["OwnerRemediated"] = _condition("OwnerRemediated", False, "WaitingForRemediation",
                                                     "Waiting for remediation", conds)
            elif reason is None:
                want.pop("OwnerRemediated", None)
            if want != conds:
                self._status("machines", m, dict(status, conditions=list(want.values())))
                if reason is not None and "OwnerRemediated" not in conds:
                    self.record("mhc-unhealthy", machine=meta["name"], reason=reason,
                                mhc=watching[0]["metadata"]["name"])
            worker = SET_LABEL in labels or MD_LABEL in labels
            if worker and reason is not None and not template:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, "machines", meta["name"])
                self.record("machineset-remediated", machine=meta["name"],
                            node=(status.get("nodeRef") or {}).get("name"))

    @staticmethod
    def _unhealthy(machine, mhc, nodes, now):
        """healthCheckTarget.needsRemediation: (reason, message) of why ``machine`` fails
        ``mhc``'s checks (CAPI's condition reasons), or (None, None)."""
        if REMEDIATE_ANN in (machine["metadata"].get("annotations") or {}):
            return "HasRemediateAnnotation", "marked for remediation via %s annotation" % REMEDIATE_ANN
        checks = mhc["spec"].get("checks") or {}
        node_name = ((machine.get("status") or {}).get("nodeRef") or {}).get("name")
        if node_name and node_name not in nodes:
            return "NodeDeleted", "Node %s has been deleted" % node_name
        if not node_name:
            startup = checks.get("nodeStartupTimeoutSeconds")
            created = _epoch(machine["metadata"].get("creationTimestamp"))
            if startup and created is not None and now - created > startup:
                return "NodeStartupTimeout", "Node failed to report startup in %ss" % startup
            return None, None
        for want in checks.get("unhealthyNodeConditions") or []:
            got = next((c for c in (nodes[node_name].get("status") or {}).get("conditions") or []
                        if c.get("type") == want.get("type")), None)
            since = _epoch((got or {}).get("lastTransitionTime"))
            if got is not None and got.get("status") == want.get("status") and since is not None \
                    and now - since > (want.get("timeoutSeconds") or 0):
                return "UnhealthyNode", "Condition %s on Node is reporting status %s for more than %ss" % (
                    want["type"], want["status"], want.get("timeoutSeconds") or 0)
        return None, None

    def _deleting(self, m, machines, nodes):
        """``machine_controller.reconcileDelete`` (v1.11), without hooks and timeouts: when
        ``isDeleteNodeAllowed`` (a nodeRef, and not the cluster's last control plane
        Machine), drain the node (``drainNode``: cordon, evict through the Eviction API,
        so PodDisruptionBudgets hold it, again each pass until no pod is left), wait for
        its volumes to detach (``shouldWaitForNodeVolumes``), and delete the Node
        (``deleteNode``); then remove the finalizer. The Machine annotations
        ``exclude-node-draining`` and ``exclude-wait-for-node-volume-detach`` skip a
        step, as upstream; an unreachable node skips the volume wait, and its pods
        already terminating longer than 1 s no longer hold the drain."""
        name = m["metadata"]["name"]
        node = ((m.get("status") or {}).get("nodeRef") or {}).get("name")
        ann = m["metadata"].get("annotations") or {}
        if name not in self.drained:
            self.drained.add(name)
            self.record("machine-deleting", machine=name, node=node)
        if name in (self.faults.get("stuck-deleting") or []):
            return
        n = nodes.get(node) if node is not None and _delete_node_allowed(machines) else None
        if n is not None:
            if EXCLUDE_DRAIN not in ann and not self._drain(name, n):
                return
            if EXCLUDE_VOLUMES not in ann and not _unreachable(n) and self._attached(n):
                self._once("volumes-attached", machine=name, node=node)
                return
            try:
                self.core.delete_node(node)
            except ApiException as e:
                if e.status != 404:
                    raise
            self.record("node-deleted", machine=name, node=node)
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "machines", name,
                                                   {"metadata": {"finalizers": None}})
        self.record("machine-deleted", machine=name, node=node)
        labels = dict(m["metadata"].get("labels") or {})
        prefix = labels.get(SET_LABEL) or name.rsplit("-", 1)[0]
        new = "%s-%s" % (prefix, "".join(random.choices(string.ascii_lowercase + string.digits, k=5)))
        ip = next((a["address"] for a in (m.get("status") or {}).get("addresses") or []
                   if a.get("type") == "InternalIP"), None)
        # the owner makes the new Machine its own bootstrap config and infrastructure machine
        spec = json.loads(json.dumps(m.get("spec") or {}))
        spec["bootstrap"] = {"configRef": dict(spec["bootstrap"]["configRef"], name=new),
                             "dataSecretName": new + "-bootstrap-data"}
        spec["infrastructureRef"] = dict(spec["infrastructureRef"], name=new)
        body = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "Machine",
                "metadata": {"name": new, "namespace": self.ns, "labels": labels,
                             "finalizers": ["machine.cluster.x-k8s.io"]},
                "spec": spec}
        self.pending[new] = {"node": node, "ip": ip, "seen_down": False}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, "machines", body)
        self.record("replacement-created", machine=new, replaces=name, node=node)

    def _drain(self, machine, node):
        """One pass of ``drainNode``: cordon, then evict every pod on the node except
        DaemonSet and mirror pods (``GetPodsForEviction``); True once none is left."""
        name = node["metadata"]["name"]
        if not (node.get("spec") or {}).get("unschedulable"):
            self.core.patch_node(name, {"spec": {"unschedulable": True}})
            self.record("node-cordoned", machine=machine, node=name)
        unreachable = _unreachable(node)
        left = []
        for pod in self.core.list_pod_for_all_namespaces(field_selector="spec.nodeName=" + name).items:
            meta = pod.metadata
            if any(o.kind == "DaemonSet" for o in meta.owner_references or []) or \
                    "kubernetes.io/config.mirror" in (meta.annotations or {}):
                continue
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            if meta.deletion_timestamp is not None:
                age = (datetime.datetime.now(datetime.timezone.utc) - meta.deletion_timestamp).total_seconds()
                if not (unreachable and age > 1):
                    left.append("%s/%s (terminating)" % (meta.namespace, meta.name))
                continue
            body = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": meta.name, "namespace": meta.namespace}}
            if unreachable:
                body["deleteOptions"] = {"gracePeriodSeconds": 1}
            try:
                self.core.create_namespaced_pod_eviction(meta.name, meta.namespace, body)
                self.record("pod-evicted", machine=machine, node=name, pod="%s/%s" % (meta.namespace, meta.name))
            except ApiException as e:
                if e.status == 404:
                    continue
                # 429: a PodDisruptionBudget allows no disruption now; drainNode retries later
                self._once("eviction-refused", machine=machine, node=name,
                           pod="%s/%s" % (meta.namespace, meta.name), status=e.status)
            left.append("%s/%s" % (meta.namespace, meta.name))
        if left:
            return False
        self._once("node-drained", machine=machine, node=name)
        return True

    def _attached(self, node):
        """``getAttachedVolumeInformation``: the node's ``status.volumesAttached`` and the
        VolumeAttachments for it that are attached."""
        name = node["metadata"]["name"]
        if (node.get("status") or {}).get("volumesAttached"):
            return True
        return any(va.spec.node_name == name and va.status is not None and va.status.attached
                   for va in self.storage.list_volume_attachment().items)

    def _once(self, event, **fields):
        if not any(e["event"] == event and all(e.get(k) == v for k, v in fields.items()) for e in self.history):
            self.record(event, **fields)

    def _owners(self, machines, nodes):
        def counts(selected):
            ready = sum(1 for m in selected if not m["metadata"].get("deletionTimestamp")
                        and (m.get("status") or {}).get("phase") == "Running"
                        and _ready(nodes.get(((m.get("status") or {}).get("nodeRef") or {}).get("name"), {})))
            return ready

        for tcp in self.custom.list_namespaced_custom_object(TCP_GROUP, TCP_VERSION, self.ns,
                                                             "taloscontrolplanes")["items"]:
            cps = [m for m in machines if CP_LABEL in (m["metadata"].get("labels") or {})]
            ready, want = counts(cps), tcp["spec"].get("replicas", 1)
            self._status("taloscontrolplanes", tcp, {"replicas": len(cps), "readyReplicas": ready,
                                                     "unavailableReplicas": max(0, want - ready)},
                         TCP_GROUP, TCP_VERSION)
        for md in self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, "machinedeployments")["items"]:
            ws = [m for m in machines if (m["metadata"].get("labels") or {}).get(MD_LABEL) == md["metadata"]["name"]]
            ready = counts(ws)
            # v1beta2 status: unavailableReplicas moved to status.deprecated.v1beta1
            self._status("machinedeployments", md, {"replicas": len(ws), "readyReplicas": ready,
                                                    "availableReplicas": ready, "upToDateReplicas": len(ws)})

    # ---- for tests -----------------------------------------------------------------------
    def mark_unhealthy(self, machine, reason="UnhealthyNode", healthy=False):
        """What a MachineHealthCheck does: HealthCheckSucceeded False (or, with
        ``healthy``, the condition removed again)."""
        for _attempt in range(20):
            m = self.machine(machine)
            status = dict(m.get("status") or {})
            status["conditions"] = [c for c in status.get("conditions") or []
                                    if c.get("type") != "HealthCheckSucceeded"]
            if not healthy:
                status["conditions"].append({"type": "HealthCheckSucceeded", "status": "False", "reason": reason,
                                             "message": "Node failed its health check (%s)" % reason,
                                             "lastTransitionTime": _stamp()})
            try:
                self._status("machines", m, status)
                return
            except ApiException:
                time.sleep(0.1)
        raise RuntimeError("could not mark %s unhealthy" % machine)

    def adopt_replacements(self):
        """Let every pending replacement take its host now, as if the host had been
        rebooted (for a test that stopped before the reboot)."""
        for p in list(self.pending.values()):
            p["seen_down"] = True
            if self.cluster.api_get("/api/v1/nodes/" + p["node"])[0] == 404:
                # the Node went with its Machine: the host's reboot registers it again
                try:
                    self.cluster.node_down(p["node"])
                except ValueError:
                    pass  # its kwok was not running
                self.cluster.node_up(p["node"])
        self.wait("every machine Running", lambda: all(
            (m.get("status") or {}).get("phase") == "Running" for m in self.machines()), timeout=30)

    def events(self, *kinds):
        return [e for e in self.history if not kinds or e["event"] in kinds]

    def dump(self):
        return json.dumps(self.history, indent=1)
