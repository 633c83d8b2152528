"""Runbook 003 on the three-worker fixture (k3s-w1 primary, k3s-w2 backup, k3s-w3 GPU),
with the real node-lifecycle controller taking w1 down and the real descheduler binary
failing back. Before the change, w1 down leaves sonarr Pending (the runbook's problem);
after active_passive.yml, sonarr and prowlarr fail over to w2 and back to w1, each pod
moving exactly twice. With w1 Ready but cordoned the plain descheduler policy evicts on
every pass; the guarded failback evicts nothing until w1 can take the pods."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from observe import (WRITE_VERBS, Descheduler, PodWatch, audit_entries, audit_size, check_then_apply, evidence_runner,
                     newest_evidence, writes)
from proof import off_limits_now, pods_now, proof, record, surprise_pods

APPLY = "playbooks/active_passive.yml"
ROLLBACK = "playbooks/active_passive_rollback.yml"
FAILBACK = "playbooks/failback.yml"
APPS = ("sonarr", "prowlarr")
W1, W2, W3 = "k3s-w1", "k3s-w2", "k3s-w3"
ROOT = Path(__file__).resolve().parents[2]
FAILBACK_SA = "system:serviceaccount:kube-system:homelab-failback"
TOLERATION_SECONDS = 15
PASS_SECONDS = 10  # the descheduler's interval in these tests (the CronJob's, shortened)


def live(c, app):
    """Nodes of the app's Running pods that are not being deleted."""
    return [p["spec"]["nodeName"] for p in c.get_json("pods", "-n", "media", "-l", "app=" + app)["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def settled_on(c, node):
    """Every app has exactly one pod, Running on ``node``, and no pod of it is left elsewhere."""
    for app in APPS:
        pods = c.get_json("pods", "-n", "media", "-l", "app=" + app)["items"]
        if [(p["spec"].get("nodeName"), p["status"].get("phase"), bool(p["metadata"].get("deletionTimestamp")))
                for p in pods] != [(node, "Running", False)]:
            return False
    return True


def apps_state(c):
    """Each app's pods as ``name@node phase [deleting]``, and the nodes' taints: what a
    wait on the apps saw when it timed out."""
    pods = ["%s@%s %s%s" % (p["metadata"]["name"], p["spec"].get("nodeName") or "-", p["status"].get("phase"),
                            " deleting" if p["metadata"].get("deletionTimestamp") else "")
            for p in c.get_json("pods", "-n", "media", "-l", "app in (%s)" % ",".join(APPS))["items"]]
    taints = ["%s: %s" % (n["metadata"]["name"], ",".join("%s:%s" % (t["key"], t["effect"])
                                                          for t in n["spec"].get("taints", [])) or "none")
              for n in c.get_json("nodes")["items"]]
    return "pods " + "; ".join(pods) + " | taints " + "; ".join(taints)


def wait_settled(c, node, what, timeout):
    c.wait(what, lambda: settled_on(c, node), timeout, state=lambda: apps_state(c))


def node_is(c, node, status):
    return any(x["type"] == "Ready" and x["status"] == status
               for x in c.get_json("node", node)["status"]["conditions"])


def terminating_on(c, node):
    pods = c.get_json("pods", "-n", "media", "--field-selector", "spec.nodeName=" + node)["items"]
    return [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]


def bring_back(c, node):
    """``node`` up and Ready, and the pods evicted while it was down gone from it. Its kubelet
    (kwok) finishes deleting them when it comes back; if one is still terminating after
    30 s, it is force-deleted, as a person would, and said in the log (a test's cleanup
    must not leave the next test a pod that never goes)."""
    if node in c._state().get("down", []):  # pylint: disable=protected-access
        c.node_up(node)
    c.wait(node + " Ready", lambda: node_is(c, node, "True"), 60)
    try:
        c.wait("the pods evicted from %s gone" % node, lambda: not terminating_on(c, node), 30,
               state=lambda: ", ".join(terminating_on(c, node)))
    except TimeoutError as e:
        print("bring_back: %s; force-deleting them" % e)
        for name in terminating_on(c, node):
            c.kubectl("delete", "pod", name, "-n", "media", "--force", "--grace-period=0", check=False)


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the active-passive family's ServiceAccount (rbac/active-passive.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("active-passive")


@pytest.fixture
def ap(three_worker, run_playbook, tmp_path):
    c = three_worker
    wait_settled(c, W1, "the apps on k3s-w1", 60)
    run = evidence_runner(run_playbook, c, tmp_path / "evidence", APPLY, inventory="local-three-worker",
                          active_passive_toleration_seconds=TOLERATION_SECONDS, active_passive_rollout_timeout=60)
    yield run
    bring_back(c, W1)
    c.kubectl("uncordon", W1)
    if run.evidence.exists() and any(p.name.endswith("-active_passive") for p in run.evidence.iterdir()):
        undo = run(ROLLBACK, check=True)
        plan = json.loads((newest_evidence(run.evidence, "active_passive_rollback") / "plan.json").read_text())
        if plan["items"]:
            undo = run(ROLLBACK, approve_plan=plan["id"])
        assert undo.rc == 0, undo.stdout[-3000:]
    wait_settled(c, W1, "the apps back on k3s-w1", 90)


def test_before_the_change_w1_down_leaves_sonarr_pending(ap, three_worker):
    """The runbook's problem statement: with `nodeSelector: role: primary`, no node can take
    sonarr while w1 is down. (The pod gets NoExecute tolerations of 15 s only, so that
    the eviction that takes 5 min by default comes within the test.)"""
    c = three_worker
    c.kubectl("patch", "deployment", "sonarr", "-n", "media", "--type", "json", "-p", json.dumps([
        {"op": "add", "path": "/spec/template/spec/tolerations", "value": [
            {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECONDS}
            for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]}]))
    try:
        c.kubectl("rollout", "status", "deployment/sonarr", "-n", "media", "--timeout=60s")
        c.node_down(W1)
        c.wait("sonarr's replacement Pending", lambda: [
            p for p in c.get_json("pods", "-n", "media", "-l", "app=sonarr")["items"]
            if p["status"].get("phase") == "Pending" and not p["spec"].get("nodeName")], c.grace + 60)
        time.sleep(5)  # it stays Pending: w2 has role=backup, w3 the GPU taint
        pending = [p for p in c.get_json("pods", "-n", "media", "-l", "app=sonarr")["items"]
                   if not p["metadata"].get("deletionTimestamp")]
        assert [(p["status"]["phase"], p["spec"].get("nodeName")) for p in pending] == [("Pending", None)]
        events = c.get_json("events", "-n", "media", "--field-selector",
                            "reason=FailedScheduling,involvedObject.name=" + pending[0]["metadata"]["name"])["items"]
        assert events and "didn't match Pod's node affinity/selector" in events[-1]["message"], events
    finally:
        bring_back(c, W1)
        c.kubectl("patch", "deployment", "sonarr", "-n", "media", "--type", "json", "-p",
                  json.dumps([{"op": "remove", "path": "/spec/template/spec/tolerations"}]))


def test_failover_to_w2_and_failback_by_the_descheduler(ap, three_worker, tmp_path):
    c = three_worker
    with proof(ap, c, "active_passive, descheduler failback", APPLY, "active_passive", ROLLBACK,
               "active_passive_rollback", active_passive_failback="descheduler") as p:
        plan, run_dir = p.plan, p.run_dir
        objects = sorted(i["object"] for i in plan["items"])
        assert objects == sorted(["Node/k3s-w1", "Node/k3s-w2", "Deployment/sonarr", "Deployment/prowlarr",
                                  "PodDisruptionBudget/sonarr-pdb", "PodDisruptionBudget/prowlarr-pdb",
                                  "ServiceAccount/descheduler", "ClusterRole/descheduler", "ClusterRoleBinding/descheduler",
                                  "ConfigMap/descheduler-policy", "CronJob/descheduler"])
        # phase 3's diff is exactly the runbook's fields
        sonarr = [i for i in plan["items"] if i["object"] == "Deployment/sonarr"][0]
        assert sorted(sonarr["after"]) == ["spec.template.spec.affinity", "spec.template.spec.nodeSelector",
                                           "spec.template.spec.tolerations"]
        assert sonarr["before"]["spec.template.spec.nodeSelector"] == {"role": "primary"}
        assert sonarr["after"]["spec.template.spec.nodeSelector"] is None
        verify = json.loads((run_dir / "verify.json").read_text())
        assert verify["placement"] == {"media/prowlarr": [W1], "media/sonarr": [W1]} and verify["gpu_intruders"] == []
        w2 = c.get_json("node", W2)
        assert {"key": "role", "value": "backup", "effect": "PreferNoSchedule"} in w2["spec"]["taints"]
        assert w2["metadata"]["labels"]["workload-priority"] == "backup" and w2["metadata"]["labels"]["role"] == "backup"

        # the same apply again (proof.py) changed nothing: an empty plan
        assert json.loads((newest_evidence(ap.evidence, "active_passive") / "plan.json").read_text())["items"] == []

        desched = Descheduler(c, tmp_path / "descheduler")
        with PodWatch(c, "media", "") as watch:
            desched.every(PASS_SECONDS)
            try:
                t_down = time.time()
                c.node_down(W1)
                c.wait("w1 NotReady", lambda: not node_is(c, W1, "True"), c.grace + 30)
                t_notready = time.time()
                c.wait("both apps Running on w2", lambda: all(live(c, a) == [W2] for a in APPS),
                       c.grace + TOLERATION_SECONDS + 60)
                t_failover = time.time()
                c.node_up(W1)
                c.wait("w1 Ready", lambda: node_is(c, W1, "True"), 60)
                t_ready = time.time()
                wait_settled(c, W1, "both apps back on w1", PASS_SECONDS + TOLERATION_SECONDS + 60)
                t_back = time.time()
                n = len(desched.passes)
                c.wait("3 more descheduler passes", lambda: len(desched.passes) >= n + 3, 3 * PASS_SECONDS + 90)
            finally:
                desched.stop()
        print("failover: NotReady after %.1f s, Running on w2 after %.1f s; failback: back on w1 %.1f s after Ready"
              % (t_notready - t_down, t_failover - t_down, t_back - t_ready))
        assert t_failover - t_down <= c.grace + TOLERATION_SECONDS + 10
        assert t_back - t_ready <= PASS_SECONDS + TOLERATION_SECONDS
        for app in APPS:  # each pod moved exactly twice: w1 -> w2 -> w1
            assert watch.placements(app + "-") == [W1, W2, W1], watch.timeline
        evictions = [e for _t, evicted in desched.passes for e in evicted]
        assert sorted(e.split("/")[1].rsplit("-", 2)[0] for e in evictions) == sorted(APPS), desched.passes
        assert [e for _t, evicted in desched.passes[n:] for e in evicted] == []
        # nothing but the GPU workload ever landed on w3
        on_w3 = {name for _t, _ev, name, node, _p in watch.timeline if node == W3}
        assert on_w3 and all(name.startswith("clusterplex-worker-") for name in on_w3)

    # the rollback (proof.py: its check writes nothing; every written object as before)
    assert len(p.rollback_plan["items"]) == len(plan["items"])
    for app in APPS:
        spec = c.get_json("deployment", app, "-n", "media")["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"role": "primary"} and "affinity" not in spec and "tolerations" not in spec
    for node in (W1, W2):
        n = c.get_json("node", node)
        assert "workload-priority" not in n["metadata"]["labels"] and not n["spec"].get("taints")
    assert c.get_json("pdb,cronjob,configmap,serviceaccount", "-n", "kube-system", "-l",
                      "app.kubernetes.io/name=descheduler")["items"] == []
    assert c.get_json("pdb", "-n", "media")["items"] == []
    assert c.kubectl("get", "clusterrole", "descheduler", check=False).returncode != 0


def test_cordoned_primary_plain_descheduler_flaps_guarded_failback_holds(ap, three_worker, tmp_path):
    c = three_worker
    with proof(ap, c, "active_passive, guarded failback", APPLY, "active_passive", ROLLBACK,
               "active_passive_rollback", active_passive_failback="guarded", active_passive_failback_window=5):
        assert c.kubectl("get", "cronjob", "descheduler", "-n", "kube-system", check=False).returncode != 0
        # w1 fails and comes back cordoned (maintenance): the pods wait on w2
        c.node_down(W1)
        c.wait("both apps Running on w2", lambda: all(live(c, a) == [W2] for a in APPS), c.grace + TOLERATION_SECONDS + 60)
        c.kubectl("cordon", W1)
        bring_back(c, W1)
        wait_settled(c, W2, "the old pods gone from w1", 60)
        time.sleep(6)  # longer than the window: only the cordon holds the pods now

        # the runbook's Helm values, in today's format: no nodeFit, the plain plugin
        c.kubectl("create", "serviceaccount", "descheduler", "-n", "kube-system")
        c.kubectl("create", "clusterrolebinding", "descheduler-probe", "--clusterrole=cluster-admin",
                  "--serviceaccount=kube-system:descheduler")
        try:
            plain = Descheduler(c, tmp_path / "plain", policy={
                "apiVersion": "descheduler/v1alpha2", "kind": "DeschedulerPolicy", "profiles": [{
                    "name": "plain", "pluginConfig": [
                        {"name": "DefaultEvictor", "args": {}},
                        {"name": "RemovePodsViolatingNodeAffinity", "args": {
                            "nodeAffinityType": ["preferredDuringSchedulingIgnoredDuringExecution"],
                            "namespaces": {"include": ["media"]}}}],
                    "plugins": {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}}}]})
            flaps = []
            for _pass in range(3):
                flaps.append(sorted(e.split("/")[1].rsplit("-", 2)[0] for e in plain.run()))
                wait_settled(c, W2, "the evicted pods back on w2 (w1 is cordoned)", 60)
            assert flaps == [sorted(APPS)] * 3  # evicted on every pass, and back on w2 every time
        finally:
            c.kubectl("delete", "clusterrolebinding", "descheduler-probe")
            c.kubectl("delete", "serviceaccount", "descheduler", "-n", "kube-system")

        # the guarded failback: nothing evicted, held because w1 is cordoned
        offset = audit_size(c)
        held = ap(FAILBACK, active_passive_failback_window=5)
        assert held.rc == 0, held.stdout[-3000:]
        assert writes(c, offset) == [], (writes(c, offset), held.stdout[-3000:])
        decisions = json.loads((newest_evidence(ap.evidence, "failback") / "verify.json").read_text())["decisions"]
        assert sorted((d["app"], d["action"], d["from"], d["to"]) for d in decisions) == [
            ("media/prowlarr", "hold", W2, W1), ("media/sonarr", "hold", W2, W1)], decisions
        assert all("k3s-w1: node is unschedulable (cordoned)" in d["reasons"] for d in decisions), decisions
        assert settled_on(c, W2), c.get_json("pods", "-n", "media")["items"]

        # uncordoned: the guard fails back, one pod per app, through the Eviction API
        c.kubectl("uncordon", W1)
        pods = pods_now(c)
        offset = audit_size(c)
        check = ap(FAILBACK, check=True, active_passive_failback_window=5)
        assert check.rc == 0 and settled_on(c, W2)
        check_writes = writes(c, offset)
        offset = audit_size(c)
        back = ap(FAILBACK, active_passive_failback_window=5)
        assert back.rc == 0, back.stdout[-3000:]
        assert settled_on(c, W1)
        assert sorted((w["objectRef"].get("subresource"), w["objectRef"]["name"].rsplit("-", 2)[0])
                      for w in writes(c, offset)) == [("eviction", "prowlarr"), ("eviction", "sonarr")]
        # a further pass has nothing to do
        offset = audit_size(c)
        assert ap(FAILBACK, active_passive_failback_window=5).rc == 0
        record("failback, one guarded pass", "no gate and no rollback: a pass only evicts pods back to the "
               "primary, under the policy approved with active_passive.yml", check_writes=check_writes,
               again_writes=writes(c, offset), surprise=surprise_pods(pods, off_limits_now(c)))


def test_the_in_cluster_failback_cronjob_runs_a_pass_as_its_own_service_account(ap, three_worker, tmp_path):
    """active_passive_failback_runner cronjob: the apply creates the CronJob, its ServiceAccount,
    ClusterRole and binding, and the API server takes them (server-side validation, RBAC's
    escalation check as the active-passive family). The exact command of its container, run
    here with that ServiceAccount's token (what the pod's in-cluster configuration would give
    it), fails the apps back to w1 through the Eviction API; the rollback deletes all four."""
    c = three_worker
    image = "registry.example.lan/homelab/k8s-ha-ee:0.1.0"
    runner = dict(active_passive_failback="guarded", active_passive_failback_runner="cronjob",
                  active_passive_failback_cronjob={"name": "homelab-failback", "namespace": "kube-system", "image": image})
    plan, applied = check_then_apply(ap, c, APPLY, "active_passive", **runner)
    assert {"CronJob/homelab-failback", "ClusterRole/homelab-failback"} <= {i["object"] for i in plan["items"]}, plan
    cron = c.get_json("cronjob", "homelab-failback", "-n", "kube-system")
    assert (cron["spec"]["schedule"], cron["spec"]["concurrencyPolicy"]) == ("*/5 * * * *", "Forbid")
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image
    who = "--as=" + FAILBACK_SA
    assert c.kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "media", who,
                     check=False).stdout.strip() == "yes"
    for verb, what in (("delete", "pods"), ("patch", "nodes"), ("patch", "deployments")):
        assert c.kubectl("auth", "can-i", verb, what, "-A", who, check=False).stdout.strip() == "no", (verb, what)

    # the apps on w2 while w1 is cordoned; w1 schedulable again for longer than the window
    c.kubectl("cordon", W1)
    c.kubectl("delete", "pods", "-n", "media", "-l", "app in (%s)" % ",".join(APPS), "--wait=true")
    wait_settled(c, W2, "the apps on w2 (w1 cordoned)", 60)
    c.kubectl("uncordon", W1)
    time.sleep(6)  # the local inventory's window is 5 s (the CronJob's pass carries it)

    # one runner at a time: a pass from outside and an apply for the external runner refuse
    offset = audit_size(c)
    outside = ap(FAILBACK)
    assert outside.rc != 0 and ("The guarded failback runs in the cluster: the CronJob kube-system/homelab-failback"
                                " exists") in " ".join(outside.stdout.split()), outside.stdout[-3000:]
    again = ap(APPLY, check=True, active_passive_failback="guarded")
    assert again.rc != 0 and ("The guarded failback's CronJob kube-system/homelab-failback exists"
                              in " ".join(again.stdout.split())), again.stdout[-3000:]
    assert writes(c, offset) == [] and settled_on(c, W2), apps_state(c)

    token = c.kubectl("create", "token", "homelab-failback", "-n", "kube-system").stdout.strip()
    # the container's environment, its /tmp (the pod's emptyDir) here under tmp_path; the
    # image's PATH and collections; the pod's in-cluster credentials as K8S_AUTH_*
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("K8S_AUTH_", "KUBECONFIG", "ANSIBLE_")) and k != "HOME"}
    env.update({e["name"]: re.sub("^/tmp/", str(tmp_path) + "/", e["value"]) for e in container["env"]})
    assert env["HOME"] == str(tmp_path / "home") and env["ANSIBLE_REMOTE_TMP"].startswith(str(tmp_path))
    env.update(K8S_AUTH_HOST=c.server, K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=str(c.pki / "ca.crt"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
               PATH="%s:%s" % (Path(sys.executable).parent, env.get("PATH", "")))
    offset = audit_size(c)
    argv = container["command"] + container["args"]
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert settled_on(c, W1), apps_state(c)
    sent = [e for e in audit_entries(c, offset) if e["user"]["username"] == FAILBACK_SA and e["verb"] in WRITE_VERBS]
    assert sorted((e["objectRef"].get("subresource"), e["objectRef"]["name"].rsplit("-", 2)[0]) for e in sent) == [
        ("eviction", app) for app in sorted(APPS)], sent
    assert "evict" in done.stdout and token not in done.stdout + done.stderr

    undo = ap(ROLLBACK, check=True, rollback_from=str(applied))
    rollback = json.loads((newest_evidence(ap.evidence, "active_passive_rollback") / "plan.json").read_text())
    assert ap(ROLLBACK, approve_plan=rollback["id"], rollback_from=str(applied)).rc == 0, undo.stdout[-3000:]
    for kind, name in (("cronjob", "-n kube-system homelab-failback"), ("serviceaccount", "-n kube-system homelab-failback"),
                       ("clusterrole", "homelab-failback"), ("clusterrolebinding", "homelab-failback")):
        assert c.kubectl("get", kind, *name.split(), check=False).returncode != 0, kind


def test_failover_drill_times_the_four_scenarios(ap, three_worker):
    """failover_drill.yml with its own gate: check run (the drill and its id, zero writes),
    then the approved drill takes w1 down with the inventory's command, times failover and
    the guarded failback it runs itself, and writes the timings into the evidence report."""
    c = three_worker
    drill_vars = dict(active_passive_failback_window=3, active_passive_drill_pass_seconds=5,
                      active_passive_drill_timeout=120,
                      # the runbook's "curl returns 200" for sonarr, through the API server's service proxy
                      active_passive_http_probes={"media/sonarr": "sonarr:8989/"})
    check_then_apply(ap, c, APPLY, "active_passive", active_passive_failback="guarded", **drill_vars)
    refused = ap("playbooks/failover_drill.yml", approve_plan="0", **drill_vars)
    assert refused.rc != 0 and "Not approved" in refused.stdout and c.node_ready(W1)
    pods = pods_now(c)
    offset = audit_size(c)
    check = ap("playbooks/failover_drill.yml", check=True, **drill_vars)
    check_writes = writes(c, offset)
    assert check.rc == 0 and check_writes == [] and c.node_ready(W1), check.stdout[-3000:]
    drill = json.loads((newest_evidence(ap.evidence, "failover_drill") / "plan.json").read_text())
    assert drill["items"][0]["workloads"] == ["media/prowlarr", "media/sonarr"]
    with PodWatch(c, "media", "") as watch:
        run = ap("playbooks/failover_drill.yml", approve_plan=drill["id"], **drill_vars)
    assert run.rc == 0, run.stdout[-5000:]
    record("failover_drill", "no repeat and no rollback: a drill takes w1 down each time it runs, and "
           "brings it back itself (the drill's own checks: w1 Ready, the apps back on it)", check_writes=check_writes,
           surprise=surprise_pods(pods, off_limits_now(c)))
    # progress: a line per change of state, not a line per read (no until loop's RETRYING flood)
    assert "FAILED - RETRYING" not in run.stdout and "RETRYING" not in run.stdout
    # each wait's changes are printed as lines of text, one per change: "<what>: +<t> s <state>"
    # (-v prints each wait's result too, as a list: those items are not counted)
    changes = list(dict.fromkeys(re.findall(r"^\s+([^'\"\s-][^:\n]*?): \+(\d+\.\d) s (.*)$", run.stdout, re.M)))
    notready = [(float(t), state) for what, t, state in changes if what == W1 + " NotReady"]
    assert [state for _t, state in notready] == ["%s Ready=True" % W1, "%s Ready=Unknown" % W1], run.stdout[-5000:]
    assert [state for what, _t, state in changes if what == W1 + " Ready"][-1] == "%s Ready=True" % W1
    assert any("Running on %s" % W2 in state for what, _t, state in changes if what.startswith("every workload Running"))
    assert len(changes) < 40, changes  # a few per wait, where 1-s reads would print hundreds
    assert re.search(r"pass \d+: media/prowlarr: evict", run.stdout), run.stdout[-5000:]
    folder = newest_evidence(ap.evidence, "failover_drill")
    result = json.loads((folder / "verify.json").read_text())
    assert [ch["name"] for ch in result["checks"] if ch["passed"]] == [ch["name"] for ch in result["checks"]], result
    # the four scenarios, then after the failover and after the failback: the workloads serve
    names = [ch["name"] for ch in result["checks"]]
    assert names[:4] == ["1. normal placement", "2. failover", "3. failback", "4. pod restart stays"], names
    for scenario in ("2. failover", "3. failback"):
        for app in ("media/prowlarr", "media/sonarr"):
            assert "%s: %s: its pods Ready" % (scenario, app) in names
            assert "%s: %s: no container restarted since the run began" % (scenario, app) in names
        assert "%s: media/sonarr: Service sonarr has ready endpoints" % scenario in names
        assert "%s: media/sonarr: GET /api/v1/namespaces/media/services/sonarr:8989/proxy/ returns 200" % scenario in names
    probed = [ch["detail"] for ch in result["checks"] if "proxy" in ch["name"]]
    assert len(probed) == 2 and all(d.startswith("200: media/sonarr-") for d in probed), probed
    t = result["timings"]
    print("drill timings:", t)
    assert t["notready"] <= c.grace + 5
    assert t["failover"] <= c.grace + TOLERATION_SECONDS + 10
    assert t["back"] <= 5 + TOLERATION_SECONDS
    report = (folder / "report.md").read_text()
    assert "| failover: pods Running on the backup node | %.1f s after down |" % t["failover"] in report
    # the table renders as a Markdown table: it stands outside any code fence
    assert report.split("| step | measured | runbook |")[0].count("```") % 2 == 0, report
    # prowlarr (the first workload by name) w1 -> w2 -> w1, then scenario 4's replacement on
    # w1 again; sonarr moved exactly twice
    assert watch.placements("prowlarr-") == [W1, W2, W1, W1], watch.timeline
    assert watch.placements("sonarr-") == [W1, W2, W1], watch.timeline
    assert c.node_ready(W1)


def test_a_backup_taint_that_would_drop_a_node_agent_stops_before_any_write(ap, three_worker, tmp_path):
    """The runbook's backup taint is PreferNoSchedule, which the DaemonSet controller
    ignores. Set to NoSchedule (a person may), it would take every node agent that does not
    tolerate it off k3s-w2 at its next restart: the check stops before anything is written
    and names them; with the runbook's taint the same check goes on."""
    c = three_worker
    agent = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {
        "name": "node-exporter", "namespace": "kube-system", "labels": {"app": "node-exporter"}},
        "spec": {"selector": {"matchLabels": {"app": "node-exporter"}}, "template": {
            "metadata": {"labels": {"app": "node-exporter"}},
            "spec": {"containers": [{"name": "node-exporter", "image": "registry.example/node-exporter:test"}]}}}}
    c.kubectl("apply", "-f", "-", input=json.dumps(agent))
    try:
        offset = audit_size(c)
        # (check runs only: their evidence aside, so the fixture finds no apply to undo)
        refused = ap(check=True, evidence_root=str(tmp_path / "checks"),
                     active_passive_backup_taint={"key": "role", "value": "backup", "effect": "NoSchedule"})
        said = " ".join(refused.stdout.split())
        assert refused.rc != 0 and writes(c, offset) == [], said[-3000:]
        assert ('active_passive_backup_taint {"key": "role", "value": "backup", "effect": "NoSchedule"} would drop'
                ' kube-system/node-exporter from k3s-w2: a DaemonSet that does not tolerate a NoSchedule taint leaves'
                ' the node') in said, said[-3000:]
        assert "Nothing was changed." in said
        plain = ap(check=True, evidence_root=str(tmp_path / "checks"))
        assert plain.rc == 0, plain.stdout[-3000:]
    finally:
        c.kubectl("delete", "daemonset", "node-exporter", "-n", "kube-system", "--wait=true")
