import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils import app_health
from ansible_collections.homelab.k8s_ha.plugins.module_utils.health import (
    app_checks,
    endpoints_check,
    parse_probe,
    probe_path,
    restart_check,
    restart_counts,
    services_of,
)


def pod(name, uid=None, ready=True, restarts=0, labels=None, deleting=False, waiting=None, phase="Running"):
    meta = {"name": name, "namespace": "apps", "uid": uid or "uid-" + name, "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
              "containerStatuses": [{"name": "web", "restartCount": restarts,
                                     "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}]}
    return {"metadata": meta, "status": status}


def service(name="web", selector=None, kind="ClusterIP"):
    return {"metadata": {"name": name}, "spec": {"type": kind, "selector": {"app": "web"} if selector is None else selector}}


def slice_of(svc, *endpoints):
    return {"metadata": {"name": svc + "-abc", "labels": {"kubernetes.io/service-name": svc}},
            "endpoints": [{"addresses": ["10.0.0.%d" % i], "conditions": {} if ready is None else {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": name}}
                          for i, (name, ready) in enumerate(endpoints)]}


def by_name(checks):
    return dict((c["name"], c) for c in checks)


def test_a_probe_from_a_string_or_a_mapping():
    assert parse_probe("web:80/healthz") == {"service": "web", "port": "80", "path": "/healthz", "status": 200,
                                             "scheme": "http"}
    assert parse_probe("https:web:https") == {"service": "web", "port": "https", "path": "/", "status": 200,
                                              "scheme": "https"}
    assert parse_probe({"service": "web", "port": 80, "status": 204})["status"] == 204
    assert parse_probe(None) is None and parse_probe("") is None and parse_probe({}) is None


@pytest.mark.parametrize("value, message", [
    ("web", "http_probe: 'web' is not [http:|https:]service:port[/path]"),
    ({"port": 80}, "http_probe.service: the name of a Service"),
    ({"service": "web"}, "http_probe.port: the Service's port"),
    ({"service": "web", "port": 80, "path": "healthz"}, "http_probe.path: must start with /"),
    ({"service": "web", "port": 80, "path": "/a b"}, "http_probe.path: must start with / and hold no spaces"),
    ({"service": "web", "port": 99999}, "http_probe.port: 99999 is not a port (1-65535)"),
    ({"service": "web", "port": 80, "scheme": "ftp"}, "http_probe.scheme: 'ftp'; allowed: http, https"),
    ({"service": "web", "port": 80, "status": "ok"}, "http_probe.status: an HTTP status"),
    ({"service": "web", "port": 80, "url": "x"}, "http_probe: unknown key url; allowed: service, port, path"),
    (["web"], "http_probe: a mapping"),
])
def test_a_bad_probe_names_its_field(value, message):
    with pytest.raises(ValueError) as e:
        parse_probe(value)
    assert message in str(e.value)


def test_the_service_proxy_path():
    assert probe_path("apps", parse_probe("web:80/a/b")) == "/api/v1/namespaces/apps/services/web:80/proxy/a/b"
    assert probe_path("apps", parse_probe("https:web:443")) == "/api/v1/namespaces/apps/services/https:web:443/proxy/"


def test_restarts_count_from_the_baseline_and_a_new_pod_from_zero():
    before = restart_counts([pod("web-a", restarts=2)])
    assert restart_check("web", [pod("web-a", restarts=2)], before)["passed"]
    assert restart_check("web", [], before)["final"]  # waiting cannot undo a restart
    grew = restart_check("web", [pod("web-a", restarts=3), pod("web-b", restarts=1)], before)
    assert not grew["passed"]
    assert grew["detail"] == "web-a/web restarted 1 time; web-b/web restarted 1 time"
    # the same name, another pod (a StatefulSet's): its count starts at zero
    assert not restart_check("web", [pod("web-a", uid="other", restarts=2)], before)["passed"]
    loop = restart_check("web", [pod("web-a", restarts=2, waiting="CrashLoopBackOff")], before)
    assert not loop["passed"] and loop["detail"] == "web-a/web in CrashLoopBackOff"


def test_services_that_select_the_app():
    pods = [pod("web-a")]
    found = services_of([service("web"), service("db", {"app": "db"}), service("ext", kind="ExternalName"),
                         service("all", {})], pods)
    assert [s["metadata"]["name"] for s in found] == ["web"]


def test_endpoints_every_ready_pod_is_a_ready_endpoint():
    pods = [pod("web-a"), pod("web-b"), pod("web-c", ready=False)]
    ok = endpoints_check("web", service(), [slice_of("web", ("web-a", True), ("web-b", None))], pods)
    assert ok["passed"] and ok["detail"] == "2 ready: web-a, web-b"
    lag = endpoints_check("web", service(), [slice_of("web", ("web-a", True), ("web-b", False))], pods)
    assert not lag["passed"] and lag["detail"] == "Ready but not a ready endpoint: web-b"
    none = endpoints_check("web", service(), [slice_of("other", ("web-a", True))], pods)
    assert not none["passed"] and none["detail"] == "no ready endpoint (0 EndpointSlices)"


def test_app_checks_with_a_probe_and_without_a_baseline():
    pods = [pod("web-a"), pod("old", deleting=True, ready=False)]
    probe = parse_probe("web:80/")
    checks = by_name(app_checks("apps/web", "apps", pods, [service()], [slice_of("web", ("web-a", True))],
                                probe=probe, probe_result=(200, "apps/web-a /\n")))
    assert sorted(checks) == ["apps/web: GET /api/v1/namespaces/apps/services/web:80/proxy/ returns 200",
                              "apps/web: Service web has ready endpoints", "apps/web: its pods Ready"]
    assert all(c["passed"] for c in checks.values())
    failed = app_checks("apps/web", "apps", pods, [], [], before={}, probe=probe, probe_result=(500, "boom"))
    assert [(c["name"].split(": ")[1], c["passed"], c["detail"]) for c in failed] == [
        ("its pods Ready", True, "1 of 1"),
        ("no container restarted since the run began", True, "none"),
        ("GET /api/v1/namespaces/apps/services/web:80/proxy/ returns 200", False, "500: boom")]
    assert not app_checks("apps/web", "apps", [], [], [])[0]["passed"]  # no pod at all


class FakeModule(object):
    def __init__(self, reads, apps):
        self.reads, self.params = reads, {"apps": apps, "restarts_before": {}, "wait_timeout": 10,
                                          "poll_interval": 1}
        self.calls, self.result = [], None

    def list(self, kind, api_version="v1", namespace=None, **params):
        self.calls.append(kind)
        return self.reads[0][kind]

    def proxy_get(self, path):
        self.calls.append(path)
        return self.reads.pop(0)["probe"]

    def fail_json(self, **kw):
        raise AssertionError(kw)

    def exit_json(self, **kw):
        self.result = kw


def test_the_module_waits_for_the_probe_and_stops_on_a_restart():
    base = {"Pod": [pod("web-a")], "Service": [service()], "EndpointSlice": [slice_of("web", ("web-a", True))]}
    apps = [{"namespace": "apps", "selector": {"app": "web"}, "name": "apps/web", "http_probe": "web:80"}]
    m = FakeModule([dict(base, probe=(503, "no endpoints")), dict(base, probe=(200, "ok"))], apps)
    clock = iter(range(100))
    app_health.run_app_health_info(m, clock=lambda: next(clock), sleep=lambda s: None)
    assert m.result["passed"] and m.result["reads"] == 2
    restarted = dict(base, Pod=[pod("web-a", restarts=1)])
    m = FakeModule([dict(restarted, probe=(503, "x")), dict(restarted, probe=(200, "ok"))], apps)
    app_health.run_app_health_info(m, clock=lambda: next(clock), sleep=lambda s: None)
    assert not m.result["passed"] and m.result["reads"] == 1  # waiting cannot undo a restart


def test_the_filters_name_a_bad_probe_and_build_the_apps():
    from ansible_collections.homelab.k8s_ha.plugins.filter.health import health_apps, http_probe_errors
    assert http_probe_errors("") == [] and http_probe_errors("web:80/") == []
    assert http_probe_errors({"service": "web", "port": 80}) == []
    assert http_probe_errors("web") == [
        "http_probe: 'web' is not [http:|https:]service:port[/path] (for example web:80/healthz)"]
    # one probe where one is expected: a per-workload mapping is not a probe
    assert http_probe_errors({"apps/web": "web:80/"}) == [
        "http_probe: unknown key apps/web; allowed: service, port, path, status, scheme"]
    drill = ["media/radarr", "media/sonarr"]
    assert http_probe_errors({"media/sonarr": "sonarr:8989/", "media/radarr": "radarr"}, "active_passive_http_probes",
                             True, drill) == [
        "active_passive_http_probes[media/radarr]: 'radarr' is not [http:|https:]service:port[/path]"
        " (for example web:80/healthz)"]
    # a single probe where a mapping per workload is expected; a workload the drill does not watch
    assert http_probe_errors({"service": "web", "port": 80}, "p", True, drill)[0] == \
        "p: port is not a workload of the drill; they are: media/radarr, media/sonarr"
    assert http_probe_errors({"media/sonar": "sonarr:8989/"}, "p", True, drill) == [
        "p: media/sonar is not a workload of the drill; they are: media/radarr, media/sonarr"]
    assert http_probe_errors("sonarr:8989/", "p", True) == ["p: a mapping of namespace/workload to a probe; got 'sonarr:8989/'"]
    sonarr = {"metadata": {"namespace": "media", "name": "sonarr"}, "spec": {"selector": {"matchLabels": {"app": "sonarr"}}}}
    assert health_apps([sonarr], {"media/sonarr": "sonarr:8989/"}) == [
        {"namespace": "media", "name": "media/sonarr", "selector": {"app": "sonarr"}, "http_probe": "sonarr:8989/"}]
    assert health_apps([sonarr]) == [{"namespace": "media", "name": "media/sonarr", "selector": {"app": "sonarr"}}]
