import datetime

from ansible_collections.homelab.k8s_ha.plugins.module_utils.migration import (
    app_ref,
    classify,
    image_name,
    pdb_verdict,
    safety_gates,
    strategy_refusal,
)

NOW = datetime.datetime(2026, 11, 21, 12, 0, 0, tzinfo=datetime.timezone.utc)
PROBES = {"readinessProbe": {"httpGet": {"path": "/", "port": 80}},
          "livenessProbe": {"httpGet": {"path": "/", "port": 80}}}
REQUESTS = {"resources": {"requests": {"cpu": "10m", "memory": "64Mi"}}}


def deploy(image="ghcr.io/x/homarr:1", claims=(), replicas=1, **container):
    return {"metadata": {"name": "app"},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [dict({"name": "main", "image": image}, **container)],
                         "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}}}


def pvc(name, *modes):
    return {"metadata": {"name": name}, "spec": {"accessModes": list(modes)}}


def pod(name="app-1", ready=True, waiting=None, restarts=0, finished=None):
    status = {"name": "main", "restartCount": restarts, "state": {"waiting": {"reason": waiting}} if waiting else {}}
    if finished:
        status["lastState"] = {"terminated": {"finishedAt": finished}}
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [status]}}


def pdb(**spec):
    return {"metadata": {"name": "app"}, "spec": dict(spec, selector={"matchLabels": {"app": "app"}})}


def test_image_names():
    assert image_name("registry:5000/library/postgres:16@sha256:abc") == "postgres"
    assert image_name("qdrant/qdrant") == "qdrant"


def test_classification_with_reasons():
    assert classify(deploy(), []) == {"class": "stateless", "reason": "mounts no PersistentVolumeClaim"}
    assert classify(deploy(claims=["c"]), [pvc("c", "ReadWriteMany")])["class"] == "rwx_shareable"
    rwo = classify(deploy(claims=["c"]), [pvc("c", "ReadWriteOnce")])
    assert rwo == {"class": "rwo_single_writer", "reason": "single-writer storage: c (ReadWriteOnce)"}
    db = classify(deploy(image="postgres:16", claims=["c"]), [pvc("c", "ReadWriteOnce")])
    assert db["class"] == "fragile_db" and db["reason"].startswith("runs postgres, a database")
    sts = deploy()
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
    assert classify(sts, [])["reason"] == "single-writer storage: data-* (ReadWriteOnce)"
    assert "claim not found" in classify(deploy(claims=["gone"]), [])["reason"]


def test_strategy_must_fit_the_class():
    rwo = classify(deploy(claims=["c"]), [pvc("c", "ReadWriteOnce")])
    refusal = strategy_refusal("active_active", rwo, "apps/arr")
    assert refusal == ("strategy active_active runs two replicas writing at once; apps/arr is rwo_single_writer "
                       "(single-writer storage: c (ReadWriteOnce)). Allowed for it: controlled_failover, hybrid")
    assert strategy_refusal("controlled_failover", rwo, "apps/arr") is None
    assert strategy_refusal("active_active", {"class": "stateless", "reason": ""}, "x") is None
    assert strategy_refusal("yolo", rwo, "x") == "strategy: 'yolo'; allowed: active_active, controlled_failover, hybrid"


def test_pdb_verdicts():
    assert pdb_verdict([], {"app": "app"}, 1, True) == (False, "no PodDisruptionBudget selects the app's pods")
    assert pdb_verdict([pdb(maxUnavailable=0)], {"app": "app"}, 1, True)[0] is True
    ok, text = pdb_verdict([pdb(maxUnavailable=1)], {"app": "app"}, 1, True)
    assert not ok and text.endswith("a single stateful replica needs maxUnavailable 0")
    assert pdb_verdict([pdb(minAvailable=1)], {"app": "app"}, 2, False)[0] is True
    assert pdb_verdict([pdb(minAvailable=2)], {"app": "app"}, 2, False)[0] is False  # allows none
    assert pdb_verdict([pdb(maxUnavailable="50%")], {"app": "app"}, 2, False)[0] is True
    assert pdb_verdict([pdb(maxUnavailable="100%")], {"app": "app"}, 2, False)[0] is False  # all at once
    assert pdb_verdict([pdb(maxUnavailable=0)], {"app": "other"}, 1, True)[0] is False


def test_healthy_app_passes_every_gate():
    gates = safety_gates(deploy(**dict(PROBES, **REQUESTS)), [pod()], [pdb(maxUnavailable=0)], NOW,
                         volumes=[{"name": "pvc-app", "robustness": "healthy", "nodes": ["m", "w"]}],
                         guardrails={"tainted": True, "strays": []}, stateful=True)
    assert [g["name"] for g in gates if not g["passed"]] == []
    assert len(gates) == 7


def test_each_gate_fails_with_its_evidence():
    gates = safety_gates(deploy(), [pod(ready=False, waiting="CrashLoopBackOff", restarts=9,
                                        finished="2026-11-21T11:30:00Z")], [], NOW,
                         volumes=[{"name": "pvc-app", "robustness": "degraded", "nodes": ["m"]}],
                         guardrails={"tainted": False, "strays": ["apps/qdrant-1"]})
    by = dict((g["name"], g) for g in gates)
    assert all(not g["passed"] for g in gates)
    assert by["no CrashLoopBackOff"]["evidence"] == "app-1/main"
    assert by["restarts in the last hour at most 3"]["evidence"] == "app-1/main restarted 9 times, the last within the hour"
    assert by["probes present and green"]["evidence"] == "no main (readinessProbe, livenessProbe); not Ready: app-1"
    assert by["resource requests set"]["evidence"] == "no requests: main (cpu, memory)"
    assert by["Longhorn volumes healthy, one replica per node"]["evidence"] == "pvc-app is degraded on m"
    assert by["guardrails intact"]["evidence"] == "the secondary lane is not tainted; not opted in: apps/qdrant-1"


def test_old_restarts_do_not_count():
    gates = safety_gates(deploy(**dict(PROBES, **REQUESTS)), [pod(restarts=9, finished="2026-11-21T09:00:00Z")],
                         [pdb(maxUnavailable=0)], NOW, stateful=True)
    assert all(g["passed"] for g in gates)


def test_window_holds_pause_the_apps_autoscalers_and_its_automated_argo_sync():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.migration import window_holds
    hpas = [{"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                                   "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}}},
            {"metadata": {"name": "other"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "other"}}}]
    apps = [{"metadata": {"name": "web", "namespace": "argocd"}, "spec": {"syncPolicy": {"automated": {"prune": True}}}},
            {"metadata": {"name": "manual", "namespace": "argocd"}, "spec": {"syncPolicy": {}}}]
    holds = window_holds(hpas, apps, ["web", "web-primary"], "apps")
    assert holds == [
        {"kind": "HorizontalPodAutoscaler", "api_version": "autoscaling/v2", "name": "web", "namespace": "apps",
         "wait": False, "fields": {"spec.behavior": {
             "scaleUp": {"selectPolicy": "Disabled"},
             "scaleDown": {"stabilizationWindowSeconds": 600, "selectPolicy": "Disabled"}}}},
        {"kind": "Application", "api_version": "argoproj.io/v1alpha1", "name": "web", "namespace": "argocd",
         "wait": False, "fields": {"spec.syncPolicy.automated": None}}]
    assert window_holds([], [apps[1]], ["web"], "apps") == []


def test_app_ref_takes_a_dict_or_namespace_slash_workload():
    assert app_ref({"namespace": "apps", "workload": "web"}) == {"namespace": "apps", "workload": "web"}
    assert app_ref("apps/web") == {"namespace": "apps", "workload": "web"}
    assert app_ref(" apps / web ") == {"namespace": "apps", "workload": "web"}
    for bad in ("web", "apps/", "/web", "a/b/c", "", None, 3):
        assert app_ref(bad) == {}, bad
