# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of app_health_info: each app's pods, Services and EndpointSlices, and the
optional GET through the API server's service proxy; the verdicts are health.py's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.health import (
    app_checks,
    parse_probe,
    probe_path,
    restart_counts,
    services_of,
    live,
)


def _targets(module):
    """The apps as given, each checked before anything is read: bad input names its field."""
    out = []
    for i, app in enumerate(module.params["apps"]):
        field = "apps[%d]" % i
        selector = app.get("selector") or {}
        if not isinstance(selector, dict) or not selector:
            module.fail_json(msg="%s.selector: the app pods' labels (a non-empty mapping, the workload's"
                             " spec.selector.matchLabels); got %r" % (field, app.get("selector")))
        try:
            probe = parse_probe(app.get("http_probe"), field + ".http_probe")
        except ValueError as e:
            module.fail_json(msg="%s" % e)
        out.append({"namespace": app["namespace"], "selector": selector, "probe": probe,
                    "name": app.get("name") or "%s/%s" % (app["namespace"], ",".join(
                        "%s=%s" % kv for kv in sorted(selector.items())))})
    return out


def _read(module, target, before, listed):
    """One read of ``target``; ``listed`` keeps this round's namespace-wide LISTs, so apps
    that share a namespace share its Services and EndpointSlices."""
    ns = target["namespace"]

    def in_namespace(kind, api_version="v1"):
        if (kind, ns) not in listed:
            listed[(kind, ns)] = module.list(kind, api_version, namespace=ns)
        return listed[(kind, ns)]

    pods = module.list("Pod", namespace=ns, label_selector=",".join(
        "%s=%s" % kv for kv in sorted(target["selector"].items())))
    services = services_of(in_namespace("Service"), live(pods))
    slices = in_namespace("EndpointSlice", "discovery.k8s.io/v1") if services else []
    result = None
    if target["probe"]:
        result = module.proxy_get(probe_path(ns, target["probe"]))
    checks = app_checks(target["name"], ns, pods, services, slices, before=before,
                        probe=target["probe"], probe_result=result)
    return pods, checks


def run_app_health_info(module, clock=time.monotonic, sleep=time.sleep):
    p = module.params
    targets = _targets(module)
    before = p["restarts_before"]
    deadline = clock() + p["wait_timeout"]
    reads = 0
    while True:
        reads += 1
        pods, checks, listed = [], [], {}
        for t in targets:
            mine, found = _read(module, t, before, listed)
            pods += mine
            checks += found
        failed = [c for c in checks if not c["passed"]]
        # a restart is never undone by waiting: only readiness, endpoints and the probe are waited for
        final = [c for c in failed if c.get("final")]
        if not failed or final or clock() >= deadline:
            break
        sleep(min(max(1, p["poll_interval"]), max(0.0, deadline - clock())))
    module.exit_json(changed=False, checks=[dict((k, v) for k, v in c.items() if k != "final") for c in checks],
                     passed=not failed, restarts=restart_counts(pods), reads=reads)
