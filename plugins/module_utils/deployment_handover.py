# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of deployment_handover: read both sides, their pods and volumes; scale the
giver to 0, wait, scale the taker. The decisions are handover.py's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker
from ansible_collections.homelab.k8s_ha.plugins.module_utils.handover import (
    is_done,
    owned_pods,
    phase,
    refusal,
    rwo_claims,
    volumes_in_use,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictRetriesExhausted,
    ObjectNotFound,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import LONGHORN_API as LONGHORN, LONGHORN_CSI, missing_namespace


class Handover(object):
    def __init__(self, module):
        self.m = module
        p = module.params
        self.ns, self.giver_name, self.taker_name = p["namespace"], p["giver"], p["name"]
        self.replicas = p["replicas"]
        self.longhorn = module.served("Volume", LONGHORN)
        self.result = {}
        self.pv_names, self.handles = [], set()
        self.pods_version = None

    def read(self):
        """(giver, taker, giver pods, taker pods); taker None when it does not exist."""
        m = self.m
        giver = m.get("Deployment", "apps/v1", self.giver_name, namespace=self.ns)
        taker = m.get("Deployment", "apps/v1", self.taker_name, namespace=self.ns)
        replicasets = m.list("ReplicaSet", "apps/v1", namespace=self.ns)
        pods, self.pods_version = m.list_at("Pod", namespace=self.ns)
        return (giver, taker, owned_pods(giver, replicasets, pods) if giver else [],
                owned_pods(taker, replicasets, pods) if taker else [])

    def bind(self, claims, pvcs):
        """The claims' PersistentVolumes and Longhorn volume names: fixed for the whole
        handover, so read once, not on every poll."""
        by_name = dict((p["metadata"]["name"], p) for p in pvcs)
        self.pv_names = [n for n in (by_name[c]["spec"].get("volumeName") for c in claims if c in by_name) if n]
        pvs = dict((pv["metadata"]["name"], pv) for pv in self.m.list("PersistentVolume")) if self.pv_names else {}
        self.handles = set((pvs[n]["spec"].get("csi") or {}).get("volumeHandle") for n in self.pv_names if n in pvs)
        longhorn = [n for n in self.pv_names if n in pvs and (pvs[n]["spec"].get("csi") or {}).get("driver") == LONGHORN_CSI]
        if self.longhorn and longhorn:
            # before the first write: in a namespace that does not exist the volumes list as
            # none, and the wait would go by the VolumeAttachments alone
            namespace = self.m.params["longhorn_namespace"]
            if not self.m.list("Volume", LONGHORN, namespace=namespace) and not self.m.namespace_exists(namespace):
                self.m.fail_json(msg=missing_namespace("longhorn_namespace", namespace))

    def busy(self):
        """Lines for the claims' volumes still attached (handover.volumes_in_use)."""
        m = self.m
        if not self.pv_names:
            return []
        volumes = []
        if self.longhorn:
            for v in m.list("Volume", LONGHORN, namespace=m.params["longhorn_namespace"]):
                if v["metadata"]["name"] in self.handles:
                    st = v.get("status") or {}
                    volumes.append({"name": v["metadata"]["name"], "state": st.get("state") or "unknown",
                                    "node": st.get("currentNodeID") or v["spec"].get("nodeID") or ""})
        attachments = [{"name": a["metadata"]["name"], "pv": a["spec"]["source"]["persistentVolumeName"],
                        "node": a["spec"].get("nodeName"), "attached": (a.get("status") or {}).get("attached")}
                       for a in m.list("VolumeAttachment", "storage.k8s.io/v1")
                       if (a["spec"].get("source") or {}).get("persistentVolumeName") in self.pv_names]
        return volumes_in_use(volumes, attachments)

    def scale(self, name, replicas):
        def mutate(obj):
            obj["spec"]["replicas"] = replicas
            return obj
        try:
            return self.m.update("Deployment", "apps/v1", name, mutate, namespace=self.ns)
        except (ConflictRetriesExhausted, ObjectNotFound) as e:
            self.m.fail_json(msg=str(e), **self.result)


def run_deployment_handover(module):
    p = module.params
    h = Handover(module)
    ns = h.ns
    giver, taker, giver_pods, taker_pods = h.read()
    if giver is None:
        module.fail_json(msg="giver: no Deployment %s in namespace %s" % (h.giver_name, ns))
    if taker is None and not module.check_mode:
        module.fail_json(msg="name: no Deployment %s in namespace %s" % (h.taker_name, ns))
    if h.giver_name == h.taker_name:
        module.fail_json(msg="giver and name are both %s: a handover needs two Deployments" % h.giver_name)
    stand_in = taker or {"metadata": {"name": h.taker_name}, "spec": dict(giver["spec"], replicas=0)}
    pvcs = module.list("PersistentVolumeClaim", namespace=ns)
    why = refusal(giver, stand_in, giver_pods, taker_pods, pvcs, h.replicas)
    if why:
        module.fail_json(msg="Refused before any write: " + why)
    claims = rwo_claims(giver, pvcs)
    tracker = DifferenceTracker()
    tracker.add("%s.spec.replicas" % h.giver_name, int(giver["spec"].get("replicas", 1)), 0)
    tracker.add("%s.spec.replicas" % h.taker_name,
                int(taker["spec"].get("replicas", 1)) if taker else None, h.replicas)
    h.result = result = dict(rollback={"giver": h.taker_name, "name": h.giver_name,
                                       "replicas": int(giver["spec"].get("replicas", 1))},
                             claims=claims, events=[])
    if is_done(giver, stand_in, giver_pods, taker_pods, h.replicas):
        result["rollback"] = {}
        module.exit_with(DifferenceTracker(), **result)
    if module.check_mode:
        result["steps"] = ["scale %s to 0" % h.giver_name, "wait until its pods are gone",
                           "wait until %s detached" % (", ".join(claims) or "no claim needs to be"),
                           "scale %s to %d and wait until Ready" % (h.taker_name, h.replicas)]
        module.exit_with(tracker, **result)

    h.bind(claims, pvcs)
    t0 = time.monotonic()
    deadlines = {"stopping": p["stop_timeout"], "detaching": p["detach_timeout"], "starting": p["start_timeout"]}
    started = {}
    last = None
    h.scale(h.giver_name, 0)
    result["events"].append({"t": 0.0, "phase": "stopping", "message": "%s scaled to 0" % h.giver_name})
    scaled_up = False
    while True:
        giver, taker, giver_pods, taker_pods = h.read()
        # once the taker is up, the volume is attached again, to the new writer
        busy = h.busy() if not giver_pods and not scaled_up else []
        now, text = phase(giver_pods, busy, taker, taker_pods, h.replicas)
        if now == "starting" and not scaled_up:
            h.scale(h.taker_name, h.replicas)
            scaled_up = True
            result["events"].append({"t": round(time.monotonic() - t0, 1), "phase": "starting",
                                     "message": "%s scaled to %d" % (h.taker_name, h.replicas)})
            continue
        if text != last:
            result["events"].append({"t": round(time.monotonic() - t0, 1), "phase": now, "message": text})
            last = text
        if now == "done":
            break
        started.setdefault(now, time.monotonic())
        if time.monotonic() - started[now] >= deadlines[now]:
            left = ("%s is at 0 and %s was not scaled up: no writer runs. Roll back (scale %s back to %d) "
                    "or fix and run again" % (h.giver_name, h.taker_name, h.giver_name, result["rollback"]["replicas"])
                    if now != "starting" else
                    "%s is at %d but not Ready" % (h.taker_name, h.replicas))
            option = {"stopping": "stop", "detaching": "detach", "starting": "start"}[now]
            module.fail_json(msg="%s/%s: %s not done within %s_timeout %ss: %s. %s"
                             % (ns, h.taker_name, now, option, deadlines[now], text, left),
                             stopped_at=now, **result)
        # stopping and starting are pods going and coming: read again when a pod changes
        module.wait_for_change("Pod", "v1", h.pods_version, p["poll_interval"], namespace=ns)
    module.exit_with(tracker, **result)
