# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure Cluster API rules of runbook 004: the rollout guards, which machine to
remediate, and where it runs. No I/O here.

Both CAPI API versions are read (CAPI v1.11+ serves v1beta1 and v1beta2 and their field
paths differ):

- MachineDeployment rolling update: v1beta1 ``spec.strategy.rollingUpdate``, v1beta2
  ``spec.rollout.strategy.rollingUpdate``;
- Machine conditions: v1beta1 ``status.conditions`` (plus ``status.v1beta2.conditions``),
  v1beta2 ``status.conditions`` (plus ``status.deprecated.v1beta1.conditions``);
- Cluster ``spec.controlPlaneRef``: ``{kind, name, apiVersion}`` or ``{apiGroup, kind, name}``.

TalosControlPlane (``controlplane.cluster.x-k8s.io/v1alpha3``):
``spec.rolloutStrategy.rollingUpdate.maxSurge`` (0 or 1; 1 when not set).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import requirement_matches

CP_LABEL = "cluster.x-k8s.io/control-plane"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
MD_LABEL = "cluster.x-k8s.io/deployment-name"
REMEDIATE_ANNOTATION = "cluster.x-k8s.io/remediate-machine"
SCOPES = ("all", "control_plane", "workers")
REBOOT_MODES = ("default", "powercycle", "force")
UNHEALTHY_CONDITIONS = ("HealthCheckSucceeded", "NodeHealthy", "NodeReady")


def _get(obj, *path):
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def version_of(obj):
    return (obj.get("apiVersion") or "").rsplit("/", 1)[-1]


def int_or_percent(value):
    """An intstr as (number, is_percent); None stays None."""
    if value is None:
        return None
    text = "%s" % value
    if text.endswith("%"):
        return int(text[:-1] or 0), True
    return int(text), False


# ---- guards ------------------------------------------------------------------------------
def md_rolling_update(md):
    """(path, maxSurge, maxUnavailable) of a MachineDeployment, for its API version."""
    if version_of(md) == "v1beta1":
        path = "spec.strategy.rollingUpdate"
        ru = _get(md, "spec", "strategy", "rollingUpdate") or {}
    else:
        path = "spec.rollout.strategy.rollingUpdate"
        ru = _get(md, "spec", "rollout", "strategy", "rollingUpdate") or {}
    return path, ru.get("maxSurge"), ru.get("maxUnavailable")


def _is(value, want):
    try:
        parsed = int_or_percent(value)
    except ValueError:
        return False
    return parsed is not None and parsed[0] == want and (want == 0 or not parsed[1])


def guard_errors(tcp, mds):
    """The runbook's static guards: TalosControlPlane maxSurge=0; each MachineDeployment
    maxSurge=0 and maxUnavailable=1. A message per violation, naming the field path."""
    errors = []
    if tcp is not None:
        surge = _get(tcp, "spec", "rolloutStrategy", "rollingUpdate", "maxSurge")
        if not _is(surge, 0):
            errors.append("TalosControlPlane %s: spec.rolloutStrategy.rollingUpdate.maxSurge is %s; the"
                          " no-spare rollout needs 0 (a surge machine has nowhere to go)"
                          % (tcp["metadata"]["name"], "not set (defaults to 1)" if surge is None else surge))
    for md in mds or []:
        path, surge, unavailable = md_rolling_update(md)
        name = md["metadata"]["name"]
        if not _is(surge, 0):
            errors.append("MachineDeployment %s (%s): %s.maxSurge is %s; needs 0" % (
                name, version_of(md), path, "not set (defaults to 1)" if surge is None else surge))
        if not _is(unavailable, 1):
            errors.append("MachineDeployment %s (%s): %s.maxUnavailable is %s; needs 1" % (
                name, version_of(md), path, "not set (defaults to 0)" if unavailable is None else unavailable))
    return errors


def control_plane_ref(cluster):
    ref = _get(cluster, "spec", "controlPlaneRef") or {}
    return ref.get("kind"), ref.get("name")


# ---- machines ----------------------------------------------------------------------------
def conditions(machine):
    """Every condition of a Machine, whatever the version put it, by type (first wins)."""
    found = {}
    for path in (("status", "conditions"), ("status", "v1beta2", "conditions"),
                 ("status", "deprecated", "v1beta1", "conditions")):
        for c in _get(machine, *path) or []:
            found.setdefault(c.get("type"), c)
    return found


def node_ready(node):
    for c in _get(node, "status", "conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return "Unknown"


def is_control_plane(machine):
    return CP_LABEL in (_get(machine, "metadata", "labels") or {})


def node_name(machine):
    return _get(machine, "status", "nodeRef", "name")


def deleting(machine):
    return bool(_get(machine, "metadata", "deletionTimestamp")) or _get(machine, "status", "phase") == "Deleting"


def unhealthy_reasons(machine, nodes):
    """Why a Machine needs remediation (empty when healthy)."""
    why = []
    phase = _get(machine, "status", "phase")
    if phase == "Failed":
        why.append("phase Failed")
    if REMEDIATE_ANNOTATION in (_get(machine, "metadata", "annotations") or {}):
        why.append("annotated %s" % REMEDIATE_ANNOTATION)
    conds = conditions(machine)
    for ctype in UNHEALTHY_CONDITIONS:
        c = conds.get(ctype)
        if c is not None and c.get("status") in ("False", "Unknown"):
            why.append("%s %s%s" % (ctype, c["status"], " (%s)" % c["reason"] if c.get("reason") else ""))
    name = node_name(machine)
    if name:
        node = (nodes or {}).get(name)
        if node is None:
            why.append("node %s is gone" % name)
        elif node_ready(node) != "True":
            why.append("node %s Ready=%s" % (name, node_ready(node)))
    return why


def unavailable(machines, nodes):
    """{machine: reason} of the machines that are deleting, unhealthy or not Running."""
    out = {}
    for m in machines:
        name = m["metadata"]["name"]
        if deleting(m):
            out[name] = "deleting"
            continue
        why = unhealthy_reasons(m, nodes)
        if why:
            out[name] = ", ".join(why)
        elif _get(m, "status", "phase") != "Running":
            out[name] = "phase %s" % (_get(m, "status", "phase") or "unknown")
    return out


def in_scope(machine, scope):
    if scope == "control_plane":
        return is_control_plane(machine)
    if scope == "workers":
        return not is_control_plane(machine)
    return True


def waiting(machines, nodes, scope, chosen):
    """The other unhealthy machines of the scope, in the order they would come."""
    return [m["metadata"]["name"] for m in sorted(machines, key=lambda x: (not is_control_plane(x), x["metadata"]["name"]))
            if in_scope(m, scope) and not deleting(m) and m["metadata"]["name"] != chosen
            and unhealthy_reasons(m, nodes)]


def select(machines, nodes, scope="all", wanted=None, max_unavailable=1):
    """The one machine to remediate now: ``(machine, reasons, errors)``.

    Control plane machines come before workers; one machine at a time. ``errors``
    (a list of messages) refuse the remediation; with no error and no machine,
    nothing needs remediation. ``max_unavailable`` is the runbook's
    maxConcurrentUnavailable, counted in the chosen machine's scope (control plane or
    workers) with the chosen machine included."""
    errors = []
    candidates = []
    for m in sorted(machines, key=lambda x: (not is_control_plane(x), x["metadata"]["name"])):
        if deleting(m) or not in_scope(m, scope):
            continue
        why = unhealthy_reasons(m, nodes)
        if why:
            candidates.append((m, why))
    if wanted:
        names = [m["metadata"]["name"] for m in machines]
        if wanted not in names:
            return None, [], ["machine: %r is not a Machine of this cluster; machines: %s"
                              % (wanted, ", ".join(sorted(names)) or "none")]
        chosen = [c for c in candidates if c[0]["metadata"]["name"] == wanted]
        if not chosen:
            target = next(m for m in machines if m["metadata"]["name"] == wanted)
            state = "deleting" if deleting(target) else "healthy" if not unhealthy_reasons(target, nodes) \
                else "outside scope %s" % scope
            return None, [], ["machine: %s is %s; nothing to remediate" % (wanted, state)]
        if candidates[0][0]["metadata"]["name"] != wanted and is_control_plane(candidates[0][0]) \
                and not is_control_plane(chosen[0][0]):
            return None, [], ["machine: %s is a worker, but control plane machine %s is unhealthy too;"
                              " the control plane goes first" % (wanted, candidates[0][0]["metadata"]["name"])]
        candidates = chosen
    if not candidates:
        return None, [], []
    machine, why = candidates[0]
    cp = is_control_plane(machine)
    peers = [m for m in machines if is_control_plane(m) == cp]
    down = unavailable(peers, nodes)
    down.setdefault(machine["metadata"]["name"], ", ".join(why))
    if len(down) > max_unavailable:
        errors.append("%d %s machines are unavailable or deleting (%s); max_concurrent_unavailable is %d,"
                      " so remediating %s now could take one more down. Wait until the others are back"
                      % (len(down), "control plane" if cp else "worker",
                         "; ".join("%s: %s" % kv for kv in sorted(down.items())), max_unavailable,
                         machine["metadata"]["name"]))
    if cp:
        errors += etcd_quorum_errors(machine, peers, nodes)
    return machine, why, errors


def etcd_quorum_errors(machine, control_plane, nodes):
    """Whether removing ``machine``'s etcd member keeps etcd's quorum, as the
    KubeadmControlPlane's ``canSafelyRemoveEtcdMember`` (v1.11) asks before it remediates
    (the Talos control plane provider has no such rule): with the member gone, the healthy
    members left must be at least a quorum of the members left, ``(n - 1) // 2 + 1``.

    Every control plane Machine counts as one member (Talos runs etcd on each control
    plane node); deleting, unhealthy and not Running ones count as unhealthy. A
    single-member etcd has no quorum to keep: the no-spare remediation brings its one
    member back on the same host."""
    members = list(control_plane or [])
    if len(members) < 2:
        return []
    name = machine["metadata"]["name"]
    down = unavailable(members, nodes)
    healthy = sorted(m["metadata"]["name"] for m in members if m["metadata"]["name"] != name
                     and m["metadata"]["name"] not in down)
    left = len(members) - 1
    quorum = left // 2 + 1
    if len(healthy) >= quorum:
        return []
    return ["removing control plane machine %s would leave etcd %d member(s), %d of them healthy (%s), below"
            " its quorum of %d (KubeadmControlPlane's canSafelyRemoveEtcdMember): etcd would stop. Bring back"
            " %s first" % (name, left, len(healthy), ", ".join(healthy) or "none", quorum,
                           ", ".join("%s (%s)" % kv for kv in sorted(down.items()) if kv[0] != name))]


# ---- CAPI's own remediation ---------------------------------------------------------------
# A MachineHealthCheck whose checks fail marks the Machine (HealthCheckSucceeded False, then
# OwnerRemediated False) and the Machine's owner acts on it: the MachineSet deletes it
# (machineset_controller.reconcileUnhealthyMachines), a KubeadmControlPlane replaces it, a
# remediation template's controller does what it does. None of them evacuates LINSTOR first,
# so on this no-spare topology CAPI's remediation of the run's machine races the run.
# CAPI v1.11: machinehealthcheck_controller.patchUnhealthyTargets, machinehealthcheck_targets
# getMachinesFromMHC (the selector plus the cluster-name label) and shouldSkipRemediation.
SKIP_REMEDIATION = "cluster.x-k8s.io/skip-remediation"
PAUSED = "cluster.x-k8s.io/paused"
OWNER_REMEDIATED = "OwnerRemediated"
EXTERNALLY_REMEDIATED = "ExternallyRemediated"
# The Talos control plane provider (v0.5.x) has no remediation: an OwnerRemediated False on
# its Machines waits for an owner that never acts.
NON_REMEDIATING_CONTROL_PLANES = ("TalosControlPlane",)


def label_selects(selector, labels):
    """metav1.LabelSelectorAsSelector: an empty selector selects everything (label-selector
    expressions share In / NotIn / Exists / DoesNotExist with node selectors)."""
    selector, labels = selector or {}, labels or {}
    return (all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
            and all(requirement_matches(e, labels) for e in selector.get("matchExpressions") or []))


def remediation_template(mhc):
    """The MachineHealthCheck's external remediation template's name, or None
    (v1beta2 ``spec.remediation.templateRef``, v1beta1 ``spec.remediationTemplate``)."""
    ref = _get(mhc, "spec", "remediation", "templateRef") or _get(mhc, "spec", "remediationTemplate") or {}
    return ref.get("name") or None


def capi_remediation_errors(machine, mhcs, cluster, control_plane_kind):
    """Why CAPI's own remediation could act on ``machine`` while the run evacuates it,
    as refusals; empty when it cannot.

    ``mhcs`` are the MachineHealthChecks of the machine's namespace, ``cluster`` the
    Cluster object, ``control_plane_kind`` the kind its controlPlaneRef names."""
    name = machine["metadata"]["name"]
    ns = machine["metadata"].get("namespace") or ""
    cluster_name = _get(cluster, "metadata", "name")
    owner_acts = not (is_control_plane(machine) and control_plane_kind in NON_REMEDIATING_CONTROL_PLANES)
    conds = conditions(machine)
    errors = []
    owner = conds.get(OWNER_REMEDIATED)
    if owner_acts and owner is not None and owner.get("status") == "False":
        errors.append("machine %s: CAPI is remediating it itself (OwnerRemediated False%s): its owner deletes the"
                      " Machine without the LINSTOR evacuation, and this run would race it. Let CAPI's"
                      " remediation finish (or pause the Cluster), then run again"
                      % (name, ", %s" % owner["reason"] if owner.get("reason") else ""))
    external = conds.get(EXTERNALLY_REMEDIATED)
    if external is not None and external.get("status") == "False":
        errors.append("machine %s: an external remediation request is in flight (ExternallyRemediated False%s);"
                      " let it finish, then run again"
                      % (name, ", %s" % external["reason"] if external.get("reason") else ""))
    annotations = _get(machine, "metadata", "annotations") or {}
    if errors or _get(cluster, "spec", "paused") is True or PAUSED in annotations or SKIP_REMEDIATION in annotations:
        return errors
    labels = dict(_get(machine, "metadata", "labels") or {})
    for mhc in sorted(mhcs or [], key=lambda x: x["metadata"]["name"]):
        if _get(mhc, "spec", "clusterName") != cluster_name or PAUSED in (_get(mhc, "metadata", "annotations") or {}):
            continue
        selector = dict(_get(mhc, "spec", "selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{CLUSTER_LABEL: cluster_name})
        if not label_selects(selector, labels):
            continue
        template = remediation_template(mhc)
        if template is None and not owner_acts:
            continue
        errors.append(
            "machine %s is watched by MachineHealthCheck %s/%s: when its checks fail, %s replaces the Machine"
            " without the LINSTOR evacuation, racing this run. Take the machine out of CAPI's remediation"
            " for the run (the run deletes it; its replacement is watched again): kubectl -n %s annotate"
            " machine %s %s=" % (
                name, ns, mhc["metadata"]["name"],
                "remediation template %s" % template if template else
                "its control plane (%s)" % control_plane_kind if is_control_plane(machine) else "its MachineSet",
                ns, name, SKIP_REMEDIATION))
    return errors


# --- CAPI's drain before it deletes the Machine -------------------------------------------
EXCLUDE_NODE_DRAINING = "machine.cluster.x-k8s.io/exclude-node-draining"


def node_deletion_allowed(machine, machines):
    """``machine_controller.isDeleteNodeAllowed`` (v1.11): CAPI drains and deletes the
    Machine's Node only when it has a nodeRef and another control plane Machine of the
    cluster is not being deleted (with none, ``errNoControlPlaneNodes``)."""
    name = machine["metadata"]["name"]
    return bool(node_name(machine)) and any(
        is_control_plane(m) and not deleting(m) and m["metadata"]["name"] != name for m in machines or [])


def drain_errors(machine, machines, pods, pdbs):
    """Pods on the Machine's node that CAPI's drain (``drainNode``: the Eviction API, so
    PodDisruptionBudgets hold) could not evict now: a budget that selects the pod allows
    no disruption. The drain would retry until ``nodeDrainTimeout`` (none by default)
    with the node already evacuated in LINSTOR, so the run refuses before any write.

    ``pods`` are the pods on the node, ``pdbs`` the cluster's PodDisruptionBudgets.
    DaemonSet and mirror pods, finished pods and pods already terminating are not evicted
    (``GetPodsForEviction``); nothing is drained when the Machine carries
    ``exclude-node-draining`` or CAPI does not delete its Node."""
    annotations = _get(machine, "metadata", "annotations") or {}
    if EXCLUDE_NODE_DRAINING in annotations or not node_deletion_allowed(machine, machines):
        return []
    errors = []
    for pod in sorted(pods or [], key=lambda p: (p["metadata"].get("namespace"), p["metadata"]["name"])):
        meta = pod["metadata"]
        if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []) \
                or "kubernetes.io/config.mirror" in (meta.get("annotations") or {}) \
                or meta.get("deletionTimestamp") or _get(pod, "status", "phase") in ("Succeeded", "Failed"):
            continue
        for pdb in pdbs or []:
            if pdb["metadata"].get("namespace") != meta.get("namespace"):
                continue
            selector = _get(pdb, "spec", "selector")
            if selector is None or not label_selects(selector, meta.get("labels")):
                continue  # a budget without a selector selects no pod (policy/v1)
            if (_get(pdb, "status", "disruptionsAllowed") or 0) < 1:
                errors.append(
                    "CAPI drains node %s before it deletes Machine %s, and PodDisruptionBudget %s/%s allows no"
                    " disruption of pod %s/%s now (disruptionsAllowed 0): the drain would wait with the node"
                    " already evacuated. Let the budget allow one (another replica Ready elsewhere, or a lower"
                    " minAvailable), then run again" % (
                        node_name(machine), machine["metadata"]["name"], meta["namespace"], pdb["metadata"]["name"],
                        meta["namespace"], meta["name"]))
    return errors


def address(machine, node):
    """The node IP talosctl should use: the Machine's InternalIP, else ExternalIP, else
    the Node's InternalIP."""
    for source in (_get(machine, "status", "addresses") or [], _get(node, "status", "addresses") or []):
        for kind in ("InternalIP", "ExternalIP"):
            for a in source:
                if a.get("type") == kind and a.get("address"):
                    return a["address"]
    return None


def resolve(machine, nodes):
    """``(node name, node IP, error)`` of a Machine."""
    name = node_name(machine)
    mname = machine["metadata"]["name"]
    if not name:
        return None, None, "machine %s has no status.nodeRef: its node cannot be found" % mname
    ip = address(machine, (nodes or {}).get(name))
    if not ip:
        return name, None, "machine %s (node %s) has no InternalIP or ExternalIP address" % (mname, name)
    return name, ip, None


# --- what a Node loses when CAPI deletes it ---------------------------------------------
# machine_controller.reconcileDelete deletes the Machine's Node (deleteNode) once it is
# drained, unless no other control plane Machine is left (isDeleteNodeAllowed). The host's
# kubelet then registers a new Node object of the same name, with only the labels it sets
# itself, and CAPI syncs the labels of its own domains from the Machine
# (machine_controller_noderef.getManagedLabels). Every other label and taint - a lane, a
# role, a GPU taint a person or this collection put there - is gone, and the scheduler
# may place pods on the bare node. So a remediation records them before the delete and
# puts them back once the node is registered again.

# the labels a kubelet sets on the Node it registers (kubelet's initialNode,
# k8s.io/api/core/v1 well_known_labels.go)
KUBELET_LABELS = ("kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
                  "beta.kubernetes.io/os", "beta.kubernetes.io/arch", "node.kubernetes.io/instance-type",
                  "beta.kubernetes.io/instance-type", "topology.kubernetes.io/region",
                  "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
                  "failure-domain.beta.kubernetes.io/zone")
# label domains CAPI syncs from the Machine (NodeRoleLabelPrefix, NodeRestrictionLabelDomain,
# ManagedNodeLabelDomain, and their subdomains)
CAPI_LABEL_DOMAINS = ("node-role.kubernetes.io", "node-restriction.kubernetes.io", "node.cluster.x-k8s.io")
# taint domains controllers own (the node lifecycle controller's not-ready, unreachable,
# unschedulable...; the cloud provider's; CAPI's uninitialized and outdated-revision)
CONTROLLER_TAINT_DOMAINS = ("node.kubernetes.io", "node.cloudprovider.kubernetes.io", "node.cluster.x-k8s.io")


def _domain(key):
    return key.split("/", 1)[0] if "/" in key else ""


def _in_domains(key, domains):
    d = _domain(key)
    return any(d == x or d.endswith("." + x) for x in domains)


def node_carry(node):
    """The labels and taints of ``node`` that a new registration of it would not bring
    back: ``{"labels": {key: value}, "taints": [taint]}`` (taints without timeAdded)."""
    meta = (node or {}).get("metadata") or {}
    labels = dict((k, v) for k, v in sorted((meta.get("labels") or {}).items())
                  if k not in KUBELET_LABELS and not _in_domains(k, CAPI_LABEL_DOMAINS))
    taints = [dict((k, t[k]) for k in ("key", "value", "effect") if t.get(k) not in (None, ""))
              for t in ((node or {}).get("spec") or {}).get("taints") or []
              if not _in_domains(t.get("key", ""), CONTROLLER_TAINT_DOMAINS)]
    return {"labels": labels, "taints": taints}


def _same_taint(a, b):
    return (a.get("key"), a.get("value") or "", a.get("effect")) == (b.get("key"), b.get("value") or "", b.get("effect"))


def carry_missing(node, carry):
    """What of ``carry`` (node_carry of the old Node) ``node`` lacks: the same shape."""
    meta = (node or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return {"labels": dict((k, v) for k, v in sorted(((carry or {}).get("labels") or {}).items())
                           if labels.get(k) != v),
            "taints": [t for t in (carry or {}).get("taints") or [] if not any(_same_taint(t, x) for x in taints)]}


def with_carry(node, carry):
    """``node`` with ``carry``'s labels set and its missing taints added (pure; the
    mutate of a read-modify-write). A taint of the same key and effect but another value
    is replaced, as ``kubectl taint --overwrite`` does."""
    missing = carry_missing(node, carry)
    meta = node.setdefault("metadata", {})
    meta["labels"] = dict(meta.get("labels") or {}, **missing["labels"])
    spec = node.setdefault("spec", {})
    taints = [t for t in spec.get("taints") or []
              if not any((t.get("key"), t.get("effect")) == (m["key"], m["effect"]) for m in missing["taints"])]
    spec["taints"] = taints + [dict(t) for t in missing["taints"]]
    return node


def carry_text(carry):
    """``carry`` as a person reads it: ``labels a=b, c=d; taints k=v:NoSchedule``."""
    labels = ", ".join("%s=%s" % kv for kv in sorted(((carry or {}).get("labels") or {}).items()))
    taints = ", ".join("%s%s:%s" % (t["key"], ("=" + t["value"]) if t.get("value") else "", t["effect"])
                       for t in (carry or {}).get("taints") or [])
    parts = (["labels " + labels] if labels else []) + (["taints " + taints] if taints else [])
    return "; ".join(parts) or "nothing"


def talosctl_argv(talosctl, ip, mode, timeout, talosconfig=None):
    """The reboot command of the runbook's step 5."""
    if mode not in REBOOT_MODES:
        raise ValueError("reboot_mode: %r; use one of %s" % (mode, ", ".join(REBOOT_MODES)))
    argv = [talosctl]
    if talosconfig:
        argv += ["--talosconfig", talosconfig]
    return argv + ["-n", ip, "reboot", "--mode=%s" % mode, "--wait=true", "--timeout", timeout]


def talosctl_probe_argv(argv):
    """The read-only call that shows talosctl runs and reaches the node of the reboot
    command ``argv`` (talosctl_argv): ``talosctl [--talosconfig F] -n <ip> version``, which
    asks the node's apid for its version."""
    cut = argv.index("-n") + 2
    return argv[:cut] + ["version"]


# ---- remediation one step per call -------------------------------------------------------
# ``all`` is the whole remediation in one call; the others are its steps, in this order, so
# that a playbook prints a line per step. A step after ``delete`` cannot read the Machine
# (it is gone): it is told the node, the address and the scope the delete step returned.
STEPS = ("all", "delete", "reboot", "node_ready", "rollout")
STEP_NEEDS = {"reboot": ("node", "ip"), "node_ready": ("node",), "rollout": ("machine", "node", "control_plane")}


def step_errors(action, step, given):
    """What a call of ``step`` lacks: ``given`` maps the options machine, node, ip and
    control_plane to their values (None when not given)."""
    if step not in STEPS:
        return ["step: %r; use one of %s" % (step, ", ".join(STEPS))]
    if step != "all" and action != "remediate":
        return ["step: %s is a step of action=remediate, not of action=%s" % (step, action)]
    missing = [o for o in STEP_NEEDS.get(step, ()) if given.get(o) is None or given.get(o) == ""]
    if missing:
        return ["step %s needs %s (from the delete step's result: %s)" % (
            step, ", ".join(missing), ", ".join({"machine": "machine.name", "node": "node", "ip": "ip",
                                                 "control_plane": "machine.control_plane"}[o] for o in missing))]
    return []


def rollout_state(machines, nodes, control_plane, node, old_machine):
    """The rollout step's view: ``(unavailable peers {name: why}, the replacement's name or
    None)``. Peers are the machines of the remediated machine's kind (control plane or
    workers); the replacement is a machine other than the deleted one on its node."""
    peers = [m for m in machines if is_control_plane(m) == bool(control_plane)]
    new = sorted(m["metadata"]["name"] for m in peers if node_name(m) == node and m["metadata"]["name"] != old_machine)
    return unavailable(peers, nodes), (new[0] if new else None)


def steps_result(results, names=None):
    """The registered results of the phases a role ran one task each (linstor_evacuate's
    evacuate and wait_evacuated; capi_machine_remediate's delete, reboot, node_ready and
    rollout) as one: every event tagged with its phase, the phases run (a skipped or
    never-run one is left out), whether one stopped, and the rollout's replacement."""
    out = {"events": [], "phases": [], "stopped": False, "replacement": None}
    for i, r in enumerate(results or []):
        if not r or r.get("skipped"):
            continue
        name = names[i] if names and i < len(names) else r.get("step") or str(i + 1)
        failed = bool(r.get("failed"))
        out["phases"].append({"phase": name, "changed": bool(r.get("changed")), "failed": failed})
        out["events"].extend(dict(e, phase=name) for e in (r.get("events") or []))
        out["stopped"] = out["stopped"] or failed
        if r.get("replacement"):
            out["replacement"] = r["replacement"]
    return out


# ---- GitOps sync waves -------------------------------------------------------------------
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
REQUIRED_WAVES = {"TalosConfigTemplate": "-2", "MachineDeployment": "-1", "TalosControlPlane": "0"}


def sync_wave_errors(docs, required=None):
    """Each TalosConfigTemplate, MachineDeployment and TalosControlPlane of the rendered
    overlays must carry its Argo CD sync wave (-2, -1, 0), so a single commit changing
    both applies the template and workers before the control plane rollout starts."""
    required = required or REQUIRED_WAVES
    errors, seen = [], {}
    for d in docs or []:
        if not isinstance(d, dict):
            continue
        kind = d.get("kind")
        if kind not in required:
            continue
        name = _get(d, "metadata", "name")
        seen.setdefault(kind, []).append(name)
        wave = "%s" % ((_get(d, "metadata", "annotations") or {}).get(SYNC_WAVE, "")).strip()
        if wave != required[kind]:
            errors.append("%s %s: annotation %s is %s; needs \"%s\"" % (
                kind, name, SYNC_WAVE, '"%s"' % wave if wave else "missing", required[kind]))
    return errors, seen


# ---- the rollout's plan ------------------------------------------------------------------
def rollout_plan(cluster, target, waiting, linstor, pool, evacuate=None):
    """The remediation plan of one machine as items (what the plan id binds) and the
    report lines a person approves.

    ``target`` is capi_machine_remediate's select result (machine, node, ip, talosctl),
    ``waiting`` the other unhealthy machines' names (informational), ``linstor`` the
    LINSTOR guard on or off, ``evacuate`` linstor_evacuate's check-mode result (the
    node's resources of ``pool``)."""
    machine = target.get("machine")
    if not machine:
        return [], ["Cluster %s: no machine needs remediation; nothing to do" % cluster]
    node, ip = target["node"], target["ip"]
    items, report = [], ["Cluster %s: remediate %s machine %s (node %s, %s): %s" % (
        cluster, "control plane" if machine.get("control_plane") else "worker", machine["name"], node, ip,
        ", ".join(machine.get("reasons") or []))]
    step = 1
    if linstor:
        resources = sorted(r["resource"] for r in (evacuate or {}).get("remaining") or [])
        items.append({"step": "linstor-evacuate", "node": node, "storage_pool": pool, "resources": resources})
        report.append("  %d. LINSTOR: assert no faulty resource; node evacuate %s; wait until its %d resource(s)"
                      " of %s are gone%s" % (step, node, len(resources), pool,
                                             (": " + ", ".join(resources)) if resources else ""))
        step += 1
    items.append({"step": "delete-machine", "machine": machine["name"], "uid": machine.get("uid")})
    report.append("  %d. delete Machine %s and wait until it is gone" % (step, machine["name"]))
    carry = target.get("carry") or {"labels": {}, "taints": []}
    items.append({"step": "reboot", "node": node, "command": target["talosctl"], "carry": carry})
    report.append("  %d. reboot: %s; wait until %s is Ready, and put back on it what a Node CAPI deleted with"
                  " its Machine lacks when it registers again: %s"
                  % (step + 1, " ".join(target["talosctl"]), node, carry_text(carry)))
    step += 2
    if linstor:
        items.append({"step": "linstor-restore-settle", "node": node})
        report.append("  %d. LINSTOR: node restore %s; wait until nothing is Connecting, syncing or DELETING;"
                      " assert no faulty resource" % (step, node))
        step += 1
    report.append("  %d. wait until every machine of the scope is Running and healthy (the rollout goes on)" % step)
    if waiting:
        report.append("  next, in a new run (one machine at a time): %s" % ", ".join(waiting))
    return items, report


# --- the runbook's own serialisation: the Argo Workflows mutex --------------------------
# The runbook serialises remediation with the WorkflowTemplate's mutex
# capi-rollout-<namespace>-<cluster>, held inside the Argo workflow controller, where
# the collection's Lease cannot see it. So a run refuses while a Workflow of the
# remediation WorkflowTemplate for the same cluster has not finished.

# WorkflowPhase.Completed() (argo-workflows pkg/apis/workflow/v1alpha1/workflow_phase.go):
# only these end a Workflow; "" (not yet seen by the controller), Pending and Running do not.
WORKFLOW_FINISHED = ("Succeeded", "Failed", "Error")


def argo_mutex_keys(namespace, mutex):
    """How the workflow controller names ``mutex`` of a Workflow in ``namespace`` in
    ``status.synchronization.mutex`` (lockName.String() in argo-workflows
    workflow/sync/lock_name.go: ``<namespace>/Mutex/<name>``, ``Database`` for a
    database mutex)."""
    return ("%s/Mutex/%s" % (namespace, mutex), "%s/Database/%s" % (namespace, mutex))


def remediation_workflows(workflows, namespace, template, mutex):
    """The Workflows that hold or may take the runbook's mutex ``mutex`` of ``namespace``
    (where the remediation WorkflowTemplate runs; a mutex is namespaced): not finished and
    either holding or waiting for it (``status.synchronization.mutex``), or submitted from
    WorkflowTemplate ``template`` of ``namespace`` without having taken a mutex yet (its mutex name, made
    from its parameters, is not known before the controller takes it: counted, not
    guessed). A Workflow of the template that holds or waits only for other mutexes (another
    cluster's) does not count. Returns ``[{name, phase, why}]`` sorted by name."""
    found = []
    keys = argo_mutex_keys(namespace, mutex)
    for wf in workflows or []:
        meta = wf.get("metadata") or {}
        status = wf.get("status") or {}
        phase = status.get("phase") or ""
        if phase in WORKFLOW_FINISHED:
            continue
        ns = meta.get("namespace") or ""
        sync = (status.get("synchronization") or {}).get("mutex") or {}
        holding = [h.get("mutex") for h in sync.get("holding") or []]
        waiting = [h.get("mutex") for h in sync.get("waiting") or []]
        ref = ((wf.get("spec") or {}).get("workflowTemplateRef") or {})
        of_template = ns == namespace and ref.get("name") == template and not ref.get("clusterScope")
        why = None
        if any(k in keys for k in holding):
            why = "holds the mutex %s" % mutex
        elif any(k in keys for k in waiting):
            why = "waits for the mutex %s" % mutex
        elif of_template and not holding and not waiting:
            why = "runs WorkflowTemplate %s and has taken no mutex yet" % template
        if why:
            found.append({"name": "%s/%s" % (ns, meta.get("name")), "phase": phase or "(not started)", "why": why})
    return sorted(found, key=lambda f: f["name"])


def workflow_guard_message(found, template, mutex):
    """One line: why this run refuses, and what to do."""
    return ("runbook 004's own remediation is in flight: %s. Its WorkflowTemplate %s serialises on the Argo mutex %s,"
            " which this playbook's Lease cannot see; wait until it has finished (argo list --running), or stop it"
            " (argo stop <name>), then run again"
            % ("; ".join("Workflow %s (%s) %s" % (f["name"], f["phase"], f["why"]) for f in found), template, mutex))
