# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``kubectl drain NODE --ignore-daemonsets --delete-emptydir-data --force`` would do
to each pod of a node, pure. The adapter asks the API server (server-side dry-run
evictions) for the pods this says would be evicted."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MIRROR = "kubernetes.io/config.mirror"


def classify(pod, ignore_daemonsets=True, delete_emptydir_data=True, force=True):
    """("skip" | "evict" | "refuse", why) for one pod, as kubectl drain decides."""
    meta = pod.get("metadata", {})
    owners = meta.get("ownerReferences") or []
    controller = [o for o in owners if o.get("controller")]
    phase = pod.get("status", {}).get("phase")
    if MIRROR in (meta.get("annotations") or {}):
        return "skip", "static (mirror) pod"
    if phase in ("Succeeded", "Failed"):
        return "evict", "finished pod (%s)" % phase
    if controller and controller[0].get("kind") == "DaemonSet":
        if ignore_daemonsets:
            return "skip", "DaemonSet pod (--ignore-daemonsets)"
        return "refuse", "DaemonSet pod (needs --ignore-daemonsets)"
    notes = []
    if not controller:
        if not force:
            return "refuse", "not managed by a controller (needs --force)"
        notes.append("not managed by a controller: deleted for good (--force)")
    if any("emptyDir" in v for v in pod.get("spec", {}).get("volumes") or []):
        if not delete_emptydir_data:
            return "refuse", "uses emptyDir (needs --delete-emptydir-data)"
        notes.append("its emptyDir data is lost (--delete-emptydir-data)")
    return "evict", "; ".join(notes)


def summary(node, rows, cordon_refusal):
    """Report lines and the verdict from the per-pod rows."""
    blocked = [r for r in rows if r["outcome"] in ("blocked", "refused")]
    lines = ["Drain of %s (dry run, nothing written): cordon %s" % (
        node, "refused: " + cordon_refusal if cordon_refusal else "accepted")]
    for r in rows:
        lines.append("  %s/%s: %s%s" % (r["namespace"], r["name"], r["outcome"],
                                        ": " + r["detail"] if r["detail"] else ""))
    lines.append("%d pod(s) would be evicted, %d skipped, %d blocked" % (
        sum(1 for r in rows if r["outcome"] == "evicted"),
        sum(1 for r in rows if r["outcome"] == "skipped"), len(blocked)))
    return lines, not blocked and not cordon_refusal
