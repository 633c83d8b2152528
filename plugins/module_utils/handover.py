# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A single writer handed from one Deployment to another, pure (runbook 002, strategy B).

The order is what keeps an RWO volume to one writer: the giving side is scaled to 0;
its pods must be gone (Terminating ones still write) and every RWO volume they mount
detached before the taking side is scaled up. Nothing here reads the cluster; the
adapter (deployment_handover.py) passes what it read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.health import pod_ready
from ansible_collections.homelab.k8s_ha.plugins.module_utils.migration import claims_of


def owned_pods(deployment, replicasets, pods):
    """The pods of ``deployment``: those whose controller is one of its ReplicaSets.

    Selectors may overlap (a ``<app>-primary`` pod carries the original's ``app`` label),
    so ownership, not the selector, decides."""
    uid = deployment["metadata"].get("uid")
    mine = set(rs["metadata"]["name"] for rs in replicasets
               if any(o.get("controller") and o.get("kind") == "Deployment"
                      and (o.get("uid") == uid if uid else o.get("name") == deployment["metadata"]["name"])
                      for o in rs["metadata"].get("ownerReferences") or []))
    return sorted((p for p in pods
                   if any(o.get("controller") and o.get("kind") == "ReplicaSet" and o.get("name") in mine
                          for o in p["metadata"].get("ownerReferences") or [])),
                  key=lambda p: p["metadata"]["name"])


def pod_line(pod):
    """``name (phase[, Terminating], node)``."""
    status = pod.get("status", {}).get("phase", "Pending")
    if pod["metadata"].get("deletionTimestamp"):
        status += ", Terminating"
    return "%s (%s, %s)" % (pod["metadata"]["name"], status, pod.get("spec", {}).get("nodeName") or "unscheduled")


def rwo_claims(deployment, pvcs):
    """The claims the pod template mounts that are ReadWriteOnce or ReadWriteOncePod."""
    modes = dict((p["metadata"]["name"], p.get("spec", {}).get("accessModes") or []) for p in pvcs)
    return sorted(c for c in claims_of(deployment)
                  if not c.endswith("-*") and "ReadWriteMany" not in modes.get(c, ["ReadWriteOnce"])
                  and "ReadOnlyMany" not in modes.get(c, ["ReadWriteOnce"]))


def refusal(giver, taker, giver_pods, taker_pods, pvcs, replicas):
    """None when the handover may start, else why not (nothing is written then)."""
    gname, tname = giver["metadata"]["name"], taker["metadata"]["name"]
    rwo = sorted(set(rwo_claims(giver, pvcs)) | set(rwo_claims(taker, pvcs)))
    if replicas < 0:
        return "replicas: %d; allowed: 0 or more" % replicas
    if rwo and replicas > 1:
        return ("replicas: %d; %s mounts ReadWriteOnce claims (%s), which take one writer: allowed 0 or 1"
                % (replicas, tname, ", ".join(rwo)))
    gclaims, tclaims = set(claims_of(giver)), set(claims_of(taker))
    if gclaims != tclaims:
        return ("%s mounts %s but %s mounts %s: the other side would not take the data along"
                % (gname, ", ".join(sorted(gclaims)) or "no claim", tname, ", ".join(sorted(tclaims)) or "no claim"))
    want_g = int(giver.get("spec", {}).get("replicas", 1))
    want_t = int(taker.get("spec", {}).get("replicas", 1))
    if want_t > 0 and want_g > 0:
        return ("%s and %s both want pods (replicas %d and %d): that is two writers already; "
                "scale one to 0 by hand after checking the data, then run again" % (gname, tname, want_g, want_t))
    if want_t > 0 and want_t != replicas:
        return ("%s already runs with replicas %d, not %d; nothing was changed" % (tname, want_t, replicas))
    if want_t == 0 and taker_pods:
        return ("%s has replicas 0 but pods left: %s; wait until they are gone"
                % (tname, ", ".join(pod_line(p) for p in taker_pods)))
    return None


def is_done(giver, taker, giver_pods, taker_pods, replicas):
    """The handover is complete: the giver at 0 with no pod, the taker at ``replicas``, all Ready."""
    return (int(giver.get("spec", {}).get("replicas", 1)) == 0
            and phase(giver_pods, [], taker, taker_pods, replicas)[0] == "done")


def volumes_in_use(volumes, attachments):
    """Lines for the volumes still attached anywhere, [] when all are free.

    ``volumes``: [{"name", "state", "node"}] (Longhorn volumes of the claims; ``state``
    as Longhorn reports it). ``attachments``: [{"name", "pv", "node", "attached"}]
    (storage.k8s.io VolumeAttachments of the claims' PersistentVolumes)."""
    busy = ["Longhorn volume %s is %s on %s" % (v["name"], v["state"], v["node"] or "no node")
            for v in volumes if v["state"] != "detached"]
    busy += ["VolumeAttachment %s of %s on %s (attached: %s)" % (a["name"], a["pv"], a["node"], a["attached"])
             for a in attachments]
    return busy


def phase(giver_pods, busy, taker, taker_pods, replicas):
    """Where a running handover stands: (phase, text) with phase one of
    ``stopping``, ``detaching``, ``starting``, ``done``."""
    if giver_pods:
        return "stopping", "waiting for the old writer to go: " + ", ".join(pod_line(p) for p in giver_pods)
    if busy:
        return "detaching", "waiting for the volumes to detach: " + "; ".join(busy)
    ready = [p for p in taker_pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
    if int(taker.get("spec", {}).get("replicas", 1)) != replicas or len(ready) != replicas or len(taker_pods) != replicas:
        return "starting", "%s: %d of %d Ready%s" % (
            taker["metadata"]["name"], len(ready), replicas,
            (": " + ", ".join(pod_line(p) for p in taker_pods)) if taker_pods else "")
    return "done", "%s Ready: %s" % (taker["metadata"]["name"], ", ".join(pod_line(p) for p in taker_pods) or "no pod")
