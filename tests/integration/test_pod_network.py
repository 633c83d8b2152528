"""The pod network simulator (tests/simulators/pod_network_simulator.py) behind the real API
server's service proxy: a GET through ``services/<svc>:<port>/proxy`` reaches a pod only as
it would reach a real one, and a test can make a pod answer an error."""

import json
import time

import pytest

ANNOTATION = "pod-network-simulator.homelab.k8s-ha/http-status"
LABELS = {"homelab.k8s-ha/test": "pod-network"}


def app(name, ports):
    container = {"name": name, "image": "registry.example/%s:1" % name}
    if ports:
        container["ports"] = [{"name": "http", "containerPort": 8080}]
    return [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": name, "namespace": "apps", "labels": LABELS},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "apps", "labels": LABELS},
             "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}]


@pytest.fixture
def apps(two_node):
    c = two_node
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                   "items": app("served", True) + app("undeclared", False)}))
    for name in ("served", "undeclared"):
        c.kubectl("rollout", "status", "-n", "apps", "deployment/" + name, "--timeout=60s")
    yield c
    c.kubectl("delete", "deployment,service", "-n", "apps", "-l", "homelab.k8s-ha/test=pod-network", "--wait=true")


def proxied(c, service, path="/healthz", attempts=30):
    """kubectl get --raw through the service proxy, once the Service has its endpoint."""
    for _attempt in range(attempts):
        r = c.kubectl("get", "--raw", "/api/v1/namespaces/apps/services/%s:80/proxy%s" % (service, path), check=False)
        if "no endpoints available" not in r.stderr:
            return r
        time.sleep(0.5)
    return r


def test_the_service_proxy_reaches_a_pod_through_the_simulated_network(apps):
    c = apps
    pod = c.get_json("pods", "-n", "apps", "-l", "app=served")["items"][0]["metadata"]["name"]
    ok = proxied(c, "served")
    assert ok.returncode == 0 and ok.stdout == "apps/%s /healthz\n" % pod, (ok.stdout, ok.stderr)
    # a fault a test injects: the pod answers 500, and the API server passes it on
    c.kubectl("annotate", "pod", pod, "-n", "apps", "%s=500" % ANNOTATION)
    sick = proxied(c, "served")
    assert sick.returncode != 0 and "apps/%s /healthz" % pod in sick.stderr, sick.stderr
    # stricter than a real pod: nothing listens on a port no container declares
    refused = proxied(c, "undeclared")
    assert refused.returncode != 0
    assert "error trying to reach service" in refused.stderr and "connection refused on port 8080" in refused.stderr
