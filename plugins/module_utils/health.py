# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an app serves after a stage, not only where its pods are (pure rules).

Four checks per app, each ``{"name", "passed", "detail"}``:

- every live pod of the app Ready (at least one pod);
- no container restarted since the baseline (a pod the baseline does not know, by uid,
  counts from zero), and none waiting in CrashLoopBackOff;
- each Service that selects the app's pods has ready endpoints, and every Ready pod of
  the app it selects is one of them (EndpointSlices, ``kubernetes.io/service-name``; an
  endpoint whose ``conditions.ready`` is unset counts as ready, as the API documents);
- optionally the runbook's "curl returns 200": an HTTP GET through the API server's
  service proxy, judged by its status.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROBE_FIELDS = ("service", "port", "path", "status", "scheme")
_PROBE_TEXT = re.compile(r"^(?:(https?):)?([a-z0-9]([-a-z0-9]*[a-z0-9])?):([0-9]+|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(/.*)?$")


def parse_probe(value, field="http_probe"):
    """An HTTP probe as ``{"service", "port", "path", "status", "scheme"}``, from a dict or
    from ``[scheme:]service:port[/path]`` (one string, as an AWX survey carries it);
    None when empty. Raises ValueError naming ``field``."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        m = _PROBE_TEXT.match(value.strip())
        if not m:
            raise ValueError("%s: %r is not [http:|https:]service:port[/path] (for example web:80/healthz)"
                             % (field, value))
        value = {"scheme": m.group(1) or "http", "service": m.group(2), "port": m.group(4),
                 "path": m.group(6) or "/"}
    if not isinstance(value, dict):
        raise ValueError("%s: a mapping with service, port, path, status and scheme, or a string"
                         " service:port/path; got %r" % (field, value))
    unknown = sorted(set(value) - set(PROBE_FIELDS))
    if unknown:
        raise ValueError("%s: unknown key %s; allowed: %s" % (field, ", ".join(unknown), ", ".join(PROBE_FIELDS)))
    service = value.get("service")
    if not service or not isinstance(service, str):
        raise ValueError("%s.service: the name of a Service of the app's namespace is required" % field)
    port = value.get("port")
    if port in (None, ""):
        raise ValueError("%s.port: the Service's port (number or name) is required" % field)
    port = "%s" % port
    if port.isdigit() and not 1 <= int(port) <= 65535:
        raise ValueError("%s.port: %s is not a port (1-65535)" % (field, port))
    path = value.get("path") or "/"
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError("%s.path: must start with / and hold no spaces (URL-encode them); got %r" % (field, path))
    scheme = value.get("scheme") or "http"
    if scheme not in ("http", "https"):
        raise ValueError("%s.scheme: %r; allowed: http, https" % (field, scheme))
    try:
        status = int(value.get("status", 200))
    except (TypeError, ValueError):
        status = 0
    if not 100 <= status <= 599:
        raise ValueError("%s.status: an HTTP status (100-599); got %r" % (field, value.get("status")))
    return {"service": service, "port": port, "path": path, "status": status, "scheme": scheme}


def probe_path(namespace, probe):
    """The API server's service proxy path of ``probe``."""
    prefix = "https:" if probe["scheme"] == "https" else ""
    return "/api/v1/namespaces/%s/services/%s%s:%s/proxy%s" % (
        namespace, prefix, probe["service"], probe["port"], probe["path"])


def _key(pod):
    return "%s/%s" % (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])


def live(pods):
    """Pods not being deleted and not finished."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def _statuses(pod):
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def restart_counts(pods):
    """``{"ns/pod": {"uid", "containers": {name: restartCount}}}``: the baseline."""
    return dict((_key(p), {"uid": p["metadata"].get("uid"),
                           "containers": dict((s["name"], int(s.get("restartCount") or 0)) for s in _statuses(p))})
                for p in pods)


def pod_ready(pod):
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def ready_check(app, pods):
    pods = live(pods)
    waiting = sorted(p["metadata"]["name"] for p in pods if not pod_ready(p))
    if not pods:
        return {"name": "%s: its pods Ready" % app, "passed": False, "detail": "no live pod"}
    return {"name": "%s: its pods Ready" % app, "passed": not waiting,
            "detail": ("not Ready: %s" % ", ".join(waiting)) if waiting else "%d of %d" % (len(pods), len(pods))}


def restart_check(app, pods, before):
    """Restarts since ``before`` (restart_counts of an earlier read)."""
    before = before or {}
    found = []
    for p in sorted(pods, key=_key):
        known = before.get(_key(p)) or {}
        base = known.get("containers", {}) if known.get("uid") == p["metadata"].get("uid") else {}
        for s in _statuses(p):
            grew = int(s.get("restartCount") or 0) - int(base.get(s["name"], 0))
            reason = ((s.get("state") or {}).get("waiting") or {}).get("reason")
            if grew > 0:
                found.append("%s/%s restarted %d time%s" % (p["metadata"]["name"], s["name"], grew, "" if grew == 1 else "s"))
            elif reason == "CrashLoopBackOff":
                found.append("%s/%s in CrashLoopBackOff" % (p["metadata"]["name"], s["name"]))
    # final: waiting cannot undo a restart (app_health_info stops waiting on it)
    return {"name": "%s: no container restarted since the run began" % app, "passed": not found,
            "detail": "; ".join(found) or "none", "final": True}


def selects(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def services_of(services, pods):
    """The Services (with a selector) that select at least one of ``pods``."""
    return [s for s in services
            if (s.get("spec") or {}).get("type") != "ExternalName"
            and any(selects((s.get("spec") or {}).get("selector"), p["metadata"].get("labels")) for p in pods)]


def endpoints_check(app, service, slices, pods):
    name = service["metadata"]["name"]
    mine = [s for s in slices if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name]
    ready = set()
    count = 0
    for s in mine:
        for e in s.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready") is False:
                continue
            count += 1
            ref = e.get("targetRef") or {}
            if ref.get("kind", "Pod") == "Pod" and ref.get("name"):
                ready.add(ref["name"])
    selected = [p for p in live(pods) if selects(service["spec"].get("selector"), p["metadata"].get("labels")) and pod_ready(p)]
    missing = sorted(p["metadata"]["name"] for p in selected if p["metadata"]["name"] not in ready)
    check = {"name": "%s: Service %s has ready endpoints" % (app, name)}
    if count == 0:
        return dict(check, passed=False, detail="no ready endpoint (%d EndpointSlice%s)" % (len(mine), "" if len(mine) == 1 else "s"))
    if missing:
        return dict(check, passed=False, detail="Ready but not a ready endpoint: %s" % ", ".join(missing))
    return dict(check, passed=True, detail="%d ready: %s" % (count, ", ".join(sorted(ready)) or "not pods"))


def probe_check(app, namespace, probe, status, body):
    """``status``: the HTTP status the GET returned (None: no answer)."""
    detail = "%s" % (status,) if status is not None else "no answer"
    text = " ".join(("%s" % (body or "")).split())
    if text:
        detail += ": " + (text[:160] + "..." if len(text) > 160 else text)
    return {"name": "%s: GET %s returns %d" % (app, probe_path(namespace, probe), probe["status"]),
            "passed": status == probe["status"], "detail": detail}


def app_checks(app, namespace, pods, services, slices, before=None, probe=None, probe_result=None):
    """The checks of one app. ``before`` None skips the restart check (a baseline read)."""
    checks = [ready_check(app, pods)]
    if before is not None:
        checks.append(restart_check(app, pods, before))
    checks += [endpoints_check(app, s, slices, pods) for s in sorted(services_of(services, live(pods)),
                                                                     key=lambda s: s["metadata"]["name"])]
    if probe:
        checks.append(probe_check(app, namespace, probe, *(probe_result or (None, ""))))
    return checks
