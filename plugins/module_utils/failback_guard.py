# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O of module failback_guard: read the apps, nodes and pods once, let the pure
``failback.failback_plan`` decide, evict through the Eviction API (one pod per app),
and wait until each evicted app runs on its preferred node again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker
from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback import decision_text, failback_plan
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import field


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Guard(object):
    def __init__(self, module):
        self.m = module
        self.apps = []

    def read_apps(self):
        apps, missing = [], []
        for w in self.m.params["workloads"]:
            d = self.m.get("Deployment", "apps/v1", w["name"], namespace=w["namespace"])
            if d is None:
                missing.append("%s/%s" % (w["namespace"], w["name"]))
                continue
            selector = field(d, "spec", "selector", "matchLabels")
            if not selector:
                self.m.fail_json(msg="workloads: %s/%s has no spec.selector.matchLabels" % (w["namespace"], w["name"]))
            apps.append({"namespace": w["namespace"], "name": w["name"], "selector": selector})
        if missing:
            self.m.fail_json(msg="workloads: no Deployment %s. Nothing was evicted." % ", ".join(missing))
        self.apps = apps

    def plan(self, apps=None):
        """(decisions, every pod): one LIST of nodes and one of pods per call."""
        nodes = self.m.list("Node")
        pods = self.m.list("Pod")
        return failback_plan(apps or self.apps, nodes, pods, _utcnow(), self.m.params["window_seconds"]), pods

    def placed(self, decision):
        """Whether the app now runs, settled, on the node it was evicted towards; judged
        from the same read as the guard's own decision."""
        app = [a for a in self.apps if "%s/%s" % (a["namespace"], a["name"]) == decision["app"]][0]
        (again,), pods = self.plan([app])
        mine = [p for p in pods if field(p, "metadata", "namespace") == app["namespace"]
                and all((field(p, "metadata", "labels") or {}).get(k) == v for k, v in app["selector"].items())]
        live = [p for p in mine if not field(p, "metadata", "deletionTimestamp")]
        on_target = [p for p in live if field(p, "spec", "nodeName") == decision["to"]
                     and field(p, "status", "phase") == "Running"]
        settled = all(field(p, "status", "phase") == "Running" for p in live)
        return bool(on_target) and settled and again["action"] == "none", [
            "%s %s on %s" % (p["metadata"]["name"], field(p, "status", "phase"), field(p, "spec", "nodeName") or "-")
            for p in sorted(mine, key=lambda p: p["metadata"]["name"])]


def run_failback_guard(module):
    p = module.params
    if p["window_seconds"] < 0:
        module.fail_json(msg="window_seconds: %s is negative; allowed: a whole number of seconds >= 0"
                         % p["window_seconds"])
    for i, w in enumerate(p["workloads"]):
        if not w.get("namespace") or not w.get("name"):
            module.fail_json(msg="workloads[%d]: namespace and name are required" % i)
    g = Guard(module)
    g.read_apps()
    tracker = DifferenceTracker()
    result = {"decisions": [], "evicted": [], "events": [], "passes": 0}
    t0 = time.monotonic()
    repeat = p["until_released"] and not module.check_mode
    last = None
    while True:
        started, mark = round(time.monotonic() - t0, 1), len(result["events"])
        decisions = one_pass(module, g, tracker, result, t0)
        result["passes"] += 1
        result["decisions"] = decisions
        held = [d for d in decisions if d["action"] == "hold"]
        if repeat:
            text = "; ".join(decision_text(d) for d in decisions)
            if text != last:  # before the pass's own evictions and waits
                result["events"].insert(mark, {"t": started, "app": None,
                                               "message": "pass %d: %s" % (result["passes"], text)})
                last = text
        if not repeat or not held:
            break
        if result["passes"] * p["repeat_interval"] > p["repeat_timeout"]:  # the next pass would start too late
            module.fail_json(msg="still held after %d pass(es) in %s s (repeat_timeout): %s"
                             % (result["passes"], p["repeat_timeout"], "; ".join(decision_text(d) for d in held)),
                             held=held, **result)
        time.sleep(p["repeat_interval"])
    result["held"] = [d for d in result["decisions"] if d["action"] == "hold"]
    module.exit_with(tracker, **result)


def one_pass(module, g, tracker, result, t0):
    """One pass of the guard: decide, evict (one pod per app), wait for each evicted app."""
    p = module.params
    decisions, _pods = g.plan()
    for d in decisions:
        if d["action"] != "evict":
            continue
        ns = d["app"].split("/", 1)[0]
        refused = module.evict(d["pod"], ns, dry_run=module.check_mode)
        if refused:
            # a PodDisruptionBudget (429) or the API refused it: nothing moved, say why
            d.update(action="hold", reasons=["eviction refused: %s" % refused])
            continue
        tracker.add("%s.node" % d["app"], d["from"], d["to"])
        result["evicted"].append({"app": d["app"], "pod": d["pod"], "from": d["from"], "to": d["to"]})
        result["events"].append({"t": round(time.monotonic() - t0, 1), "app": d["app"],
                                 "message": "%s %s from %s towards %s" % (
                                     "would evict" if module.check_mode else "evicted", d["pod"], d["from"], d["to"])})
        if module.check_mode or not p["wait"]:
            continue
        started, last = time.monotonic(), None
        while True:
            done, state = g.placed(d)
            text = "; ".join(state)
            if text != last:
                result["events"].append({"t": round(time.monotonic() - t0, 1), "app": d["app"], "message": text})
                last = text
            if done:
                break
            if time.monotonic() - started >= p["wait_timeout"]:
                module.fail_json(msg="%s: evicted %s, but the app is not Running on %s within wait_timeout %ss: %s"
                                 % (d["app"], d["pod"], d["to"], p["wait_timeout"], text),
                                 decisions=decisions, **dict((k, v) for k, v in result.items() if k != "decisions"))
            time.sleep(p["poll_interval"])
    return decisions
