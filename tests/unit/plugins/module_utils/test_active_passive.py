import json

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import (
    conversion_fields,
    covering_pdbs,
    descheduler_objects,
    model_errors,
    pdb_for,
    pinned,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils import active_passive as ap
from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import fields_change, get_field

MODEL = {"pin": {"role": "primary"}, "priority_label": "workload-priority",
         "preferences": [{"value": "primary", "weight": 100}, {"value": "backup", "weight": 10}],
         "backup_taint": {"key": "role", "value": "backup", "effect": "PreferNoSchedule"},
         "toleration_seconds": 30}
SONARR = {"metadata": {"name": "sonarr", "namespace": "media"},
          "spec": {"selector": {"matchLabels": {"app": "sonarr"}}, "template": {
              "metadata": {"labels": {"app": "sonarr"}},
              "spec": {"nodeSelector": {"role": "primary"},
                       "tolerations": [{"key": "role", "operator": "Exists", "effect": "PreferNoSchedule"},
                                       {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                       "containers": [{"name": "sonarr", "image": "sonarr"}]}}}}


def test_the_runbook_fields_replace_the_pin_and_nothing_else():
    assert pinned(SONARR, MODEL["pin"]) and not pinned(SONARR, {"role": "backup"})
    fields = conversion_fields(SONARR, MODEL)
    assert fields["spec.template.spec.nodeSelector"] is None
    assert fields["spec.template.spec.affinity"] == {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "workload-priority", "operator": "In", "values": ["primary"]}]}},
        {"weight": 10, "preference": {"matchExpressions": [{"key": "workload-priority", "operator": "In", "values": ["backup"]}]}}]}}
    # the user's own toleration for another key stays; the one for the backup taint is replaced
    assert fields["spec.template.spec.tolerations"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "role", "operator": "Equal", "value": "backup", "effect": "PreferNoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]
    new, tracker, rollback = fields_change(SONARR, fields)
    assert sorted(rollback) == sorted(fields)
    assert rollback["spec.template.spec.nodeSelector"] == {"role": "primary"}
    assert rollback["spec.template.spec.affinity"] is None
    # the second run changes nothing; the rollback restores the object exactly
    assert not fields_change(new, conversion_fields(new, MODEL))[1].has_difference
    assert fields_change(new, rollback)[0] == SONARR
    # other nodeSelector keys are kept
    other = json.loads(json.dumps(SONARR))
    other["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"] = "linux"
    assert conversion_fields(other, MODEL)["spec.template.spec.nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert get_field(new, "spec.template.spec.containers") == SONARR["spec"]["template"]["spec"]["containers"]


def test_a_bad_model_names_the_field_and_what_is_allowed():
    bad = dict(MODEL, preferences=[{"value": "primary", "weight": 101}], toleration_seconds=-1,
               backup_taint={"key": "role", "effect": "Sometimes"})
    errors = model_errors(bad)
    assert errors == ["preferences[0]: value and an integer weight from 1 to 100 are required",
                      "backup_taint: key, value and effect (one of NoSchedule, PreferNoSchedule, NoExecute) are required",
                      "toleration_seconds: a whole number of seconds >= 0 is required"]
    with pytest.raises(ValueError, match="preferences"):
        conversion_fields(SONARR, bad)


def test_pdb_and_the_pdbs_that_already_cover_the_app():
    pdb = pdb_for(SONARR, 1)
    assert pdb["metadata"] == {"name": "sonarr-pdb", "namespace": "media"}
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "sonarr"}}}
    assert covering_pdbs(SONARR, [pdb, dict(pdb, metadata={"name": "x", "namespace": "other"})]) == ["sonarr-pdb"]


def test_descheduler_manifests_today_format():
    objs = descheduler_objects({"name": "descheduler", "namespace": "kube-system", "image": "img:v0.36.0",
                                "mode": "cronjob", "interval_minutes": 2, "namespaces": ["media", "media"],
                                "node_fit": True, "max_pods_per_node": 1})
    assert [o["kind"] for o in objs] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "CronJob"]
    policy = json.loads(objs[3]["data"]["policy.yaml"])
    assert policy["apiVersion"] == "descheduler/v1alpha2" and policy["maxNoOfPodsToEvictPerNode"] == 1
    profile = policy["profiles"][0]
    assert profile["plugins"] == {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}}
    assert profile["pluginConfig"][1]["args"]["namespaces"] == {"include": ["media"]}
    assert objs[4]["spec"]["schedule"] == "*/2 * * * *"
    rules = objs[1]["rules"]
    assert any("namespaces" in r["resources"] for r in rules) and any("pods/eviction" in r["resources"] for r in rules)
    dep = descheduler_objects({"name": "d", "namespace": "kube-system", "image": "i", "mode": "deployment",
                               "interval_minutes": 5})[-1]
    assert dep["kind"] == "Deployment" and "--descheduling-interval=5m" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    with pytest.raises(ValueError, match="mode: 'daemonset' is not one of cronjob, deployment"):
        descheduler_objects({"name": "d", "namespace": "n", "image": "i", "mode": "daemonset", "interval_minutes": 5})
    with pytest.raises(ValueError, match="interval_minutes"):
        descheduler_objects({"name": "d", "namespace": "n", "image": "i", "mode": "cronjob", "interval_minutes": 0})


def test_the_guarded_failbacks_cronjob_runs_one_pass_as_its_own_service_account():
    cfg = {"name": "homelab-failback", "namespace": "kube-system", "image": "registry.lan/k8s-ha-ee:0.1.0",
           "interval_minutes": 5, "vars": {"active_passive_failback_window": 120, "evidence_root": "/tmp/evidence"}}
    sa, role, binding, cron = ap.failback_runner_objects(cfg)
    assert [o["kind"] for o in (sa, role, binding, cron)] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                                              "CronJob"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "homelab-failback", "namespace": "kube-system"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "homelab-failback"
    # only what a pass reads and evicts: no write but the eviction
    writes = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
              for v in rule["verbs"] if v not in ("get", "list", "watch")}
    assert writes == {("", "pods/eviction", "create")}
    spec = cron["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["jobTemplate"]["spec"]["backoffLimit"]) == (
        "*/5 * * * *", "Forbid", 0)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "homelab-failback" and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "registry.lan/k8s-ha-ee:0.1.0"
    assert container["command"] + container["args"][:2] == ["ansible-playbook", "homelab.k8s_ha.failback", "-e"]
    assert json.loads(container["args"][2]) == cfg["vars"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {e["name"]: e["value"] for e in container["env"]}["ANSIBLE_HOME"].startswith("/tmp/")
    for bad, words in (({"image": ""}, "active_passive_failback_cronjob.image: empty"),
                       ({"interval_minutes": 60}, "active_passive_failback_interval: 60 is not"),
                       ({"interval_minutes": True}, "active_passive_failback_interval: True is not"),
                       ({"namespace": " "}, "active_passive_failback_cronjob.namespace: empty")):
        with pytest.raises(ValueError, match=words):
            ap.failback_runner_objects(dict(cfg, **bad))


def _pod(name, node, phase="Running", deleting=False, app="sonarr"):
    meta = {"name": name, "namespace": "media", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T12:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def test_drill_conditions_read_where_the_pods_are():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import drill_check, drill_state
    apps = [SONARR]
    home = [_pod("sonarr-a", "w1")]
    assert drill_check(home, apps, "settled", "w1") and not drill_check(home, apps, "evicted", "w1")
    # w1 down: the old pod is being deleted there, the replacement still Pending
    moving = [_pod("sonarr-a", "w1", deleting=True), _pod("sonarr-b", None, phase="Pending")]
    assert drill_state(moving, apps) == {"running": {"media/sonarr": []}, "terminating": {"media/sonarr": ["w1"]},
                                         "pending": {"media/sonarr": 1}}
    assert drill_check(moving, apps, "evicted", "w1") and not drill_check(moving, apps, "running", "w2")
    away = [_pod("sonarr-a", "w1", deleting=True), _pod("sonarr-b", "w2")]
    assert drill_check(away, apps, "running", "w2") and not drill_check(away, apps, "settled", "w2")
    # another app's pods do not count
    assert drill_check(home + [_pod("other-x", "w2", app="other")], apps, "settled", "w1")
    with pytest.raises(ValueError, match="test: 'gone' is not one of settled, evicted, running"):
        drill_check(home, apps, "gone", "w1")


def test_drill_report_puts_the_runbook_beside_the_numbers():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import drill_report
    marks = {"down": 100.0, "notready": 112.4, "evicted": 128.0, "failover": 129.1, "up": 140.0, "ready": 141.0,
             "back": 146.5, "deleted": 150.0, "restart": 151.2}
    r = drill_report(marks, 15, True)
    assert r["timings"] == {"notready": 12.4, "evicted": 28.0, "failover": 29.1, "ready": 1.0, "back": 5.5, "restart": 1.2}
    assert [c["passed"] for c in r["checks"]] == [True] * 4
    assert "| failover: pods Running on the backup node | 29.1 s after down | T+6m00s; about 1 min tuned |" in r["report"]
    # the whole table as a person reads it in report.md (a Markdown table, one row a step)
    assert "\n".join(r["report"]) == """tolerationSeconds 15

| step | measured | runbook |
|---|---|---|
| failover: node NotReady | 12.4 s after down | T+40s |
| failover: pods evicted from the node | 28.0 s after down | T+5m00s (default toleration); about 1 min tuned (30 s) |
| failover: pods Running on the backup node | 29.1 s after down | T+6m00s; about 1 min tuned |
| failback: node Ready | 1.0 s after up | T+1m after power-on |
| failback: pods back on the primary node (from Ready) | 5.5 s after Ready | about 5-5.5 min after Ready (T+6m30s after \
power-on; 6-7 min in all) |
| restart: a deleted pod Running again on the primary node | 1.2 s after the delete | immediately, on w1 (no detour to w2) |"""
    # a drill that stopped during the failover: the later steps are not reached, and fail
    stopped = drill_report({"down": 100.0, "notready": 112.0}, 15, True)
    assert [c["passed"] for c in stopped["checks"]] == [True, False, False, False]
    assert "| failback: pods back on the primary node (from Ready) | not reached |" in " ".join(stopped["report"])


def _node(name, ready):
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_drill_observe_says_whether_the_condition_holds_and_the_state_as_one_line():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import drill_observe
    assert drill_observe("node_not_ready", "w1", node=_node("w1", "True")) == (False, "w1 Ready=True")
    assert drill_observe("node_not_ready", "w1", node=_node("w1", "Unknown")) == (True, "w1 Ready=Unknown")
    assert drill_observe("node_ready", "w1", node=_node("w1", "True")) == (True, "w1 Ready=True")
    assert drill_observe("node_ready", "w1", node=None) == (False, "w1 gone")
    moving = [_pod("sonarr-a", "w1", deleting=True), _pod("sonarr-b", None, phase="Pending")]
    assert drill_observe("evicted", "w1", pods=moving, workloads=[SONARR]) == (
        True, "media/sonarr: no pod Running, terminating on w1, 1 Pending")
    away = [_pod("sonarr-b", "w2")]
    assert drill_observe("running", "w2", pods=away, workloads=[SONARR]) == (True, "media/sonarr: Running on w2")
    assert drill_observe("settled", "w1", pods=away, workloads=[SONARR])[0] is False
    with pytest.raises(ValueError, match="condition: 'gone'"):
        drill_observe("gone", "w1")


def test_transitions_keep_only_the_reads_that_changed_the_state():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import Transitions
    seen = Transitions()
    reads = ["w1 Ready=True"] * 12 + ["w1 Ready=Unknown"] * 3
    new = [seen.see(float(i), 1000.0 + i, text) for i, text in enumerate(reads)]
    assert new.count(True) == 2 and len(seen.items) == 2
    assert seen.items[1] == {"t": 12.0, "at": 1012.0, "state": "w1 Ready=Unknown"}
    assert seen.lines("w1 NotReady") == ["w1 NotReady: +0.0 s w1 Ready=True", "w1 NotReady: +12.0 s w1 Ready=Unknown"]


class _Exit(Exception):
    pass


class _FakeModule(object):
    """Enough of K8sHaModule for run_drill_wait: a Node that turns NotReady at the 4th read."""

    def __init__(self, flip_at=4, **params):
        self.params = dict(dict(condition="node_not_ready", node="w1", workloads=[], label=None, timeout=30,
                                poll_interval=1), **params)
        self.reads, self.flip_at = 0, flip_at
        self.result = None

    def get(self, kind, api_version, name, namespace=None):
        self.reads += 1
        return _node(name, "True" if self.reads < self.flip_at else "Unknown")

    def exit_json(self, **kw):
        self.result = kw
        raise _Exit()

    def fail_json(self, **kw):
        self.result = dict(kw, failed=True)
        raise _Exit()


def _run_wait(module):
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.drill_wait import run_drill_wait
    clock = [0.0]

    def sleep(s):
        clock[0] += s
    with pytest.raises(_Exit):
        run_drill_wait(module, clock=lambda: clock[0], wall=lambda: 5000.0 + clock[0], sleep=sleep)
    return module.result


def test_drill_wait_returns_the_changes_and_when_the_condition_was_met():
    r = _run_wait(_FakeModule(label="w1 NotReady"))
    assert not r.get("failed") and r["met"] is True and r["changed"] is False
    assert r["reached_at"] == 5003.0 and r["elapsed"] == 3.0
    assert [x["state"] for x in r["transitions"]] == ["w1 Ready=True", "w1 Ready=Unknown"]
    assert r["lines"] == ["w1 NotReady: +0.0 s w1 Ready=True", "w1 NotReady: +3.0 s w1 Ready=Unknown"]


def test_drill_wait_fails_at_the_timeout_saying_since_when_nothing_changed():
    r = _run_wait(_FakeModule(flip_at=1, timeout=10, condition="node_ready"))
    assert r["failed"] is True and r["met"] is False
    assert r["msg"] == "node_ready: not met within 10 s; the state since +0.0 s: w1 Ready=Unknown"
    assert len(r["transitions"]) == 1 and r["elapsed"] == 10.0
    r = _run_wait(_FakeModule(condition="running", node="w2"))
    assert r["failed"] is True and r["msg"] == "workloads: required for condition running"


def test_read_targets_pairs_each_target_with_its_deployment_as_a_loop_of_reads_would():
    def dep(ns, name):
        return {"metadata": {"namespace": ns, "name": name}}
    listed = [dep("media", "sonarr"), dep("media", "prowlarr"), dep("other", "sonarr")]
    targets = [{"namespace": "media", "name": "sonarr"}, {"namespace": "media", "name": "radarr"}]
    assert ap.read_targets(targets, listed) == [
        {"item": targets[0], "resources": [dep("media", "sonarr")]},
        {"item": targets[1], "resources": []}]  # not there: the plan's assert names it


def test_drill_report_keeps_the_health_checks_after_each_scenario():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import drill_report
    marks = {"down": 100.0, "failover": 129.1, "up": 140.0, "ready": 141.0, "back": 146.5, "deleted": 150.0,
             "restart": 151.2}
    sick = {"name": "media/sonarr: GET /api/v1/namespaces/media/services/sonarr:8989/proxy/ returns 200",
            "passed": False, "detail": "503: no endpoints available"}
    r = drill_report(marks, 15, True, {"3. failback": [sick], "2. failover": [dict(sick, passed=True, detail="200")]})
    assert [(c["name"][:40], c["passed"]) for c in r["checks"][4:]] == [
        ("2. failover: media/sonarr: GET /api/v1/n", True), ("3. failback: media/sonarr: GET /api/v1/n", False)]
    assert r["checks"][5]["detail"] == "503: no endpoints available"
