"""core_platform.yml and its rollback end to end, on the two-node fixture after runbook
000's guardrails, with the Longhorn simulator: check mode with zero writes, the gate,
apply, verification, the dry-run drain, idempotence, evidence, and the rollback."""

import json
import re

import pytest

from observe import audit_size, clear_lanes, evidence_runner, newest_evidence as newest, set_lanes, writes
from proof import proof
from upstream_crds import fetch

APPLY = "playbooks/core_platform.yml"
ROLLBACK = "playbooks/core_platform_rollback.yml"
COMPONENTS = {"coredns": "kube-system", "haproxy-kubernetes-ingress": "haproxy-controller"}
VOLUMES = ["pvc-arr", "pvc-arr-lts", "pvc-arr-lts2", "pvc-elasticsearch", "pvc-homarr", "pvc-qdrant"]


def progress(stdout):
    """The volumes' progress lines: the task header each batch prints before it waits."""
    return re.findall(r"^TASK \[[^\]]*: Replicas of (.*)\] \**$", stdout, re.M)


def deployment(c, name):
    return c.get_json("deployment", name, "-n", COMPONENTS[name])


def pod_nodes(c, name):
    d = deployment(c, name)
    sel = ",".join("%s=%s" % kv for kv in d["spec"]["selector"]["matchLabels"].items())
    pods = c.get_json("pods", "-n", COMPONENTS[name], "-l", sel)["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods
                  if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the core-platform family's ServiceAccount (rbac/core-platform.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("core-platform")


@pytest.fixture
def platform(longhorn, run_playbook, tmp_path):
    c = longhorn.cluster
    # where runbook 000 leaves the cluster: lanes labelled, worker-1 tainted and cordoned
    set_lanes(c)
    originals = {}
    for name in COMPONENTS:
        d = deployment(c, name)
        originals[name] = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": d["spec"],
                           "metadata": {k: d["metadata"][k] for k in ("name", "namespace", "labels")}}
    # the lease sampling and volume polling of the local cluster come from inventories/local
    run = evidence_runner(run_playbook, c, tmp_path / "evidence", APPLY, core_platform_volume_wait_timeout=60)
    run.originals = originals
    yield run
    # whatever the test left, the fixture's Deployments again, in the collection's own order
    # (spread.rollback_order): a left required anti-affinity first, or the old pod that
    # carries it keeps the fixture's pod, pinned to the same node, Pending for good
    for name, body in originals.items():
        c.kubectl("patch", "deployment", name, "-n", COMPONENTS[name], "--type=json", "-p",
                  '[{"op": "remove", "path": "/spec/template/spec/affinity/podAntiAffinity"}]', check=False)
        c.kubectl("rollout", "status", "deployment/" + name, "-n", COMPONENTS[name], "--timeout=90s", check=False)
        c.kubectl("replace", "-f", "-", input=json.dumps(body))
        c.kubectl("rollout", "status", "deployment/" + name, "-n", COMPONENTS[name], "--timeout=90s")
    clear_lanes(c)


def test_check_apply_verify_idempotent_rollback(platform, longhorn):
    """The safety proof's row core_platform (proof.py: check with no write, apply, no
    surprise pod, the same apply again with no write, rollback check, rollback restoring
    every object written to its snapshot, CoreDNS's ``resources: {}`` included), with the
    runbook's outcomes read between."""
    c = longhorn.cluster
    settings_before = longhorn.settings()

    def the_check_and_a_refused_id(p):
        # 1. the whole playbook in check mode: a plan (and, proof.py asserts, not one write)
        plan = p.plan
        assert [i["object"] for i in plan["items"]] == [
            "LonghornSettings/longhorn-system", "Node/worker-1",
            "Deployment/coredns", "Deployment/haproxy-kubernetes-ingress", "LonghornVolumes/longhorn-system"]
        assert plan["volumes"][0] == "pvc-arr (apps/arr-config): 1 -> 2 replicas; now on miniserver; adds 1 on worker-1"
        assert f"-e approve_plan={plan['id']}" in p.check.stdout
        before = json.loads((p.check_dir / "before.json").read_text())
        assert before["posture"]["datastore"] == "sqlite"  # k3s server labels, no etcd role
        assert all(lease["renewing"] for lease in before["posture"]["leases"].values())
        assert longhorn.settings() == settings_before
        # 2. the gate: a wrong id applies nothing
        offset = audit_size(c)
        refused = platform(approve_plan="0000000000000000")
        assert refused.rc != 0 and "Not approved" in refused.stdout
        assert writes(c, offset) == []

    # 3. apply exactly the plan; 4. a second run finds nothing to change
    with proof(platform, c, "core_platform", APPLY, "core_platform", ROLLBACK, "core_platform_rollback",
               before_apply=the_check_and_a_refused_id) as p:
        for name in COMPONENTS:
            assert pod_nodes(c, name) == ["miniserver", "worker-1"], name
        coredns = deployment(c, "coredns")["spec"]["template"]["spec"]
        container = coredns["containers"][0]
        assert container["resources"] == {"requests": {"cpu": "50m", "memory": "128Mi"},
                                          "limits": {"cpu": "200m", "memory": "256Mi"}}
        assert container["readinessProbe"]["httpGet"]["port"] == 8181
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "HTTP"}
        assert coredns["topologySpreadConstraints"][0]["maxSkew"] == 1
        ingress = deployment(c, "haproxy-kubernetes-ingress")["spec"]["template"]["spec"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" in ingress["affinity"]["podAntiAffinity"]
        # no surprise scheduling: on worker-1 only DaemonSets and the two components
        on_w1 = [p for p in c.get_json("pods", "-A", "--field-selector", "spec.nodeName=worker-1")["items"]
                 if p["metadata"]["ownerReferences"][0]["kind"] != "DaemonSet"]
        assert sorted(p["metadata"]["namespace"] for p in on_w1) == ["haproxy-controller", "kube-system"]
        assert longhorn.settings()["default-replica-count"] == '{"v1":"2","v2":"2"}'
        assert longhorn.replica_nodes() == {v: ["miniserver", "worker-1"] for v in VOLUMES}
        assert longhorn.max_concurrent_rebuilds() == 1
        verify = json.loads((p.run_dir / "verify.json").read_text())
        assert all(chk["passed"] for chk in verify["checks"]) and len(verify["checks"]) == 5
        after = json.loads((p.run_dir / "after.json").read_text())
        assert after["drain_preview"]["drainable"] is True
        assert {(p["namespace"], p["outcome"]) for p in after["drain_preview"]["pods"]} >= {
            ("kube-system", "evicted"), ("haproxy-controller", "evicted"), ("longhorn-system", "skipped")}
        rollback = json.loads((p.run_dir / "rollback.json").read_text())
        assert rollback["volumes"] == {v: 1 for v in VOLUMES}
        # progress: one task per volume, named before its wait starts, in the plan's order
        lines = progress(p.apply.stdout)
        assert [line.split(" ")[0] for line in lines] == VOLUMES, p.apply.stdout[-4000:]
        assert all(" (apps/" in line and line.endswith(": 1 -> 2 replicas") for line in lines), lines
        assert {e["volume"] for e in after["volume_events"]} == set(VOLUMES)
        assert sorted({e["batch"] for e in after["volume_events"]}) == list(range(1, len(VOLUMES) + 1))
        assert sorted(r["name"] for r in rollback["components"]) == sorted(COMPONENTS)
        assert rollback["secondary_node"] == [{"name": "worker-1", "cordon": True}]
        assert "changes nothing; nothing to approve" in p.again.stdout

        # 5. a PodDisruptionBudget that forbids evicting the ingress blocks the (dry-run) drain
        c.kubectl("create", "poddisruptionbudget", "ingress", "-n", "haproxy-controller",
                  "--selector=app=haproxy-kubernetes-ingress", "--min-available=2")
        try:
            blocked = platform(check=True)
            drain = json.loads((newest(platform.evidence, "core_platform") / "after.json").read_text())["drain_preview"]
            assert blocked.rc == 0 and drain["drainable"] is False
            assert [p["outcome"] for p in drain["pods"] if p["namespace"] == "haproxy-controller"] == ["blocked"]
            assert "disruption budget" in [p["detail"] for p in drain["pods"]
                                           if p["namespace"] == "haproxy-controller"][0]
        finally:
            c.kubectl("delete", "poddisruptionbudget", "ingress", "-n", "haproxy-controller")

    # 6. the rollback (proof.py: check mode writes nothing; every written object as before)
    for name in COMPONENTS:
        assert pod_nodes(c, name) == ["miniserver"]
    assert deployment(c, "coredns")["spec"]["template"]["spec"]["containers"][0]["resources"] == \
        platform.originals["coredns"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert longhorn.settings() == settings_before
    assert longhorn.replica_nodes() == {v: ["miniserver"] for v in VOLUMES}
    lines = progress(p.undo.stdout)
    assert [line.split(" ")[0] for line in lines] == VOLUMES and all(x.endswith(": 2 -> 1 replicas") for x in lines)
    # Longhorn leaves an extra healthy replica in place: the rollback's plan, as a person
    # reads it, names the one it keeps (on the primary node) and the one it deletes
    report = p.rollback_plan["report"]
    for v in VOLUMES:
        line = [x for x in report if x.startswith("  %s replicas: " % v)]
        assert len(line) == 1, report
        before, after = line[0].split(": ", 1)[1].split(" -> ")
        assert json.loads(after)[0].endswith(" on miniserver") and len(json.loads(after)) == 1, line
        assert sorted(x.split(" on ")[1] for x in json.loads(before)) == ["miniserver", "worker-1"], line
    assert c.get_json("node", "worker-1")["spec"].get("unschedulable") is True


def test_posture_reads_server_1s_files_when_a_host_is_given(platform, tmp_path):
    """2.1 with an inventory host for server-1 (here the local connection, the files laid
    out as on a k3s server): its config.yaml and db/ decide the datastore."""
    k3s = tmp_path / "k3s"
    (k3s / "db" / "etcd").mkdir(parents=True)
    (k3s / "config.yaml").write_text("cluster-init: true\nwrite-kubeconfig-mode: '0644'\n")
    run = platform(check=True, core_platform_k3s_host="localhost", core_platform_k3s_become=False,
                   core_platform_k3s_config_path=str(k3s / "config.yaml"),
                   core_platform_k3s_db_dir=str(k3s / "db"))
    assert run.rc == 0, run.stdout[-4000:]
    posture = json.loads((newest(platform.evidence, "core_platform") / "before.json").read_text())["posture"]
    assert posture["datastore"] == "embedded etcd"
    assert posture["datastore_from_api"]["datastore"] == "sqlite"
    assert posture["datastore_from_host"]["evidence"] == ["config.yaml: cluster-init true", "db/etcd exists"]
    assert "Decision: embedded etcd with 1 server(s): quorum needs three servers" in "\n".join(posture["report"])


def test_a_failed_rebuild_stops_the_volumes_and_the_rollback_record_keeps_the_patched_ones(platform, longhorn):
    """One task per volume: the volume whose rebuild fails stops the run (the rebuild-storm
    guard), no later volume is started, and rollback.json has the prior counts of the two
    patched volumes, the failed one included."""
    c = longhorn.cluster
    check = platform(check=True)
    assert check.rc == 0, check.stdout[-4000:]
    plan = json.loads((newest(platform.evidence, "core_platform") / "plan.json").read_text())
    longhorn.set_faults(fail_rebuild=["pvc-arr-lts"])
    offset = audit_size(c)
    apply = platform(approve_plan=plan["id"])
    assert apply.rc != 0
    assert "a rebuild failed: replica pvc-arr-lts-r-" in apply.stdout, apply.stdout[-4000:]
    assert [line.split(" ")[0] for line in progress(apply.stdout)] == ["pvc-arr", "pvc-arr-lts"]
    assert sorted({e["objectRef"]["name"] for e in writes(c, offset, "volumes")}) == ["pvc-arr", "pvc-arr-lts"]
    run_dir = newest(platform.evidence, "core_platform")
    rollback = json.loads((run_dir / "rollback.json").read_text())
    assert rollback["volumes"] == {"pvc-arr": 1, "pvc-arr-lts": 1}
    assert rollback["secondary_node"] == [{"name": "worker-1", "cordon": True}]
    events = json.loads((run_dir / "after.json").read_text())["volume_events"]
    assert {e["volume"] for e in events} == {"pvc-arr", "pvc-arr-lts"}


K3S_ADDON = {"objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon",
             "objectset.rio.cattle.io/owner-name": "coredns",
             "objectset.rio.cattle.io/owner-namespace": "kube-system"}
INGRESS = "haproxy-kubernetes-ingress"
FLUX_HELM = {"helm.toolkit.fluxcd.io/name": INGRESS, "helm.toolkit.fluxcd.io/namespace": "haproxy-controller"}
HELM_RELEASE = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": INGRESS, "namespace": "haproxy-controller"},
                "spec": {"interval": "10m", "chart": {"spec": {
                    "chart": "kubernetes-ingress",
                    "sourceRef": {"kind": "HelmRepository", "name": "haproxytech", "namespace": "flux-system"}}}}}


def test_k3s_coredns_is_refused_and_a_flux_helmrelease_is_suspended_by_the_plan(platform, longhorn):
    """CoreDNS as k3s deploys it: an Addon of the server's manifests folder, which k3s
    re-writes and re-applies at every server start, so runbook 001's live edit of its
    replicas and spread would be undone by the next restart; the ingress from a Flux
    HelmRelease (the upstream CRD), which would put the chart's values back. By default the
    plan refuses both, writing nothing; core_platform_managed {flux: suspend} plans the
    HelmRelease's suspension as an item of its own, and k3s's CoreDNS stays refused: it has
    nothing to suspend (plugins/module_utils/managers.py, docs/managed_objects.md)."""
    c = longhorn.cluster
    crds = str(fetch("flux-helm"))
    c.kubectl("apply", "--server-side", "-f", crds)
    c.wait_established("helmreleases.helm.toolkit.fluxcd.io")
    c.kubectl("apply", "-f", "-", input=json.dumps(HELM_RELEASE))
    c.kubectl("annotate", "-n", "kube-system", "deployment/coredns", *["%s=%s" % kv for kv in K3S_ADDON.items()])
    c.kubectl("label", "-n", "haproxy-controller", "deployment/" + INGRESS, *["%s=%s" % kv for kv in FLUX_HELM.items()])
    k3s = ("(kube-system/coredns): managed: a live edit would not last: k3s Addon kube-system/coredns "
           "(annotation objectset.rio.cattle.io/owner-gvk): k3s re-writes and re-applies the manifest at "
           "every server start; change it through k3s: start the servers with --disable=coredns and deploy "
           "your own manifest, then run again")
    flux = ("(haproxy-controller/haproxy-kubernetes-ingress): managed: a live edit would not last: Flux HelmRelease "
            "haproxy-controller/haproxy-kubernetes-ingress (label helm.toolkit.fluxcd.io/name): reconciles and puts "
            "the edit back at its next upgrade; make the change in Git, or suspend it and run again: `kubectl -n "
            "haproxy-controller patch helmreleases.helm.toolkit.fluxcd.io haproxy-kubernetes-ingress --type=merge "
            "-p '{\"spec\":{\"suspend\":true}}'`")
    try:
        offset = audit_size(c)
        refused = platform(check=True)
        assert refused.rc != 0
        said = re.sub(r"\s*\n\s*", " ", refused.stdout)
        assert k3s in said and flux in said, refused.stdout[-3000:]
        suspend = platform(check=True, core_platform_managed={"flux": "suspend"})
        assert suspend.rc != 0
        said = re.sub(r"\s*\n\s*", " ", suspend.stdout)
        assert k3s in said and "haproxy-kubernetes-ingress): managed" not in said, suspend.stdout[-3000:]
        assert writes(c, offset) == []

        c.kubectl("annotate", "-n", "kube-system", "deployment/coredns", *["%s-" % k for k in K3S_ADDON])
        planned = platform(check=True, core_platform_managed={"flux": "suspend"})
        assert planned.rc == 0, planned.stdout[-3000:]
        assert writes(c, offset) == []
        items = dict((i["object"], i) for i in json.loads(
            (newest(platform.evidence, "core_platform") / "plan.json").read_text())["items"])
        release = items["HelmRelease/" + INGRESS]
        assert (release["before"], release["after"]) == ({"spec.suspend": None}, {"spec.suspend": True})
        assert items["Deployment/" + INGRESS]["manager"] == (
            "Flux HelmRelease haproxy-controller/haproxy-kubernetes-ingress (label helm.toolkit.fluxcd.io/name): "
            "held by this run (suspended until this run's rollback)")
        assert "manager" not in items["Deployment/coredns"]
    finally:
        c.kubectl("annotate", "-n", "kube-system", "deployment/coredns", *["%s-" % k for k in K3S_ADDON], check=False)
        c.kubectl("label", "-n", "haproxy-controller", "deployment/" + INGRESS, *["%s-" % k for k in FLUX_HELM])
        c.kubectl("delete", "-f", crds, "--wait=true")
