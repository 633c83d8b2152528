"""phase0_guardrails.yml end to end on the two-node fixture: plan in check mode with
zero writes, the gate bound to the plan id, apply, idempotence, the runbook's own
verification commands, evidence, and rollback to the before-snapshot."""

import json
import threading
import time
from pathlib import Path

import pytest

from golden import assert_golden
from observe import audit_size, custom_stats, lane_snapshot, newest_evidence as newest, writes
from proof import MATRIX, proof
from upstream_crds import fetch

APPLY = "playbooks/phase0_guardrails.yml"
ROLLBACK = "playbooks/phase0_guardrails_rollback.yml"
LANE_TAINT = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}
LANE_TOLERATION = {"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}
# the fixture's node agents: each runs on both nodes, none tolerates the lane taint
AGENTS = ("longhorn-system/engine-image-ei-db6c2b6f", "longhorn-system/longhorn-csi-plugin",
          "metallb-system/metallb-speaker")


def untolerate(c):
    """The fixture's node agents without the toleration an apply gave them (for a test
    that applied and did not roll back)."""
    for agent in AGENTS:
        ns, name = agent.split("/")
        c.kubectl("patch", "daemonset", name, "-n", ns, "--type=json", "-p",
                  '[{"op": "remove", "path": "/spec/template/spec/tolerations"}]', check=False)


def agents(c):
    """Each fixture DaemonSet's template tolerations and desiredNumberScheduled."""
    out = {}
    for agent in AGENTS:
        ns, name = agent.split("/")
        ds = c.get_json("daemonset", name, "-n", ns)
        out[agent] = (ds["spec"]["template"]["spec"].get("tolerations"), ds["status"].get("desiredNumberScheduled"))
    return out


def restart_every_agent(c):
    """What an upgrade does: a rollout restart of each fixture DaemonSet. Each must still
    want both nodes and run a pod on each."""
    for agent in AGENTS:
        ns, name = agent.split("/")
        c.kubectl("rollout", "restart", "daemonset/" + name, "-n", ns)
    for agent in AGENTS:
        ns, name = agent.split("/")
        c.kubectl("rollout", "status", "daemonset/" + name, "-n", ns, "--timeout=120s")
        c.wait(agent + " on both nodes", lambda: {
            p["spec"].get("nodeName") for p in c.get_json("pods", "-n", ns)["items"]
            if p["metadata"]["name"].startswith(name + "-") and not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running"} == {"miniserver", "worker-1"}, 60)
    assert dict((a, n) for a, (_t, n) in agents(c).items()) == dict((a, 2) for a in AGENTS)


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the guardrails family's ServiceAccount (rbac/guardrails.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("guardrails")


@pytest.fixture
def evidence(tmp_path):
    return tmp_path / "evidence"


@pytest.fixture
def phase0(two_node, run_playbook, evidence):
    def run(playbook=APPLY, check=False, **extra):
        extra.setdefault("evidence_root", str(evidence))
        return run_playbook(two_node, playbook, extra_vars=extra, check=check)
    run.evidence = evidence
    before, agents_before = lane_snapshot(two_node), agents(two_node)
    yield run
    two_node.kubectl("label", "node", "miniserver", "worker-1", "workload-lane-", check=False)
    two_node.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)
    untolerate(two_node)
    assert lane_snapshot(two_node) == before and agents(two_node) == agents_before


def test_plan_gate_apply_idempotent_rollback(two_node, phase0, evidence):
    c = two_node
    before = lane_snapshot(c)

    # 1. check mode: a plan, its id, the runbook's verification, zero writes
    offset = audit_size(c)
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert writes(c, offset) == []
    assert lane_snapshot(c) == before
    run_dir = newest(evidence, "phase0_guardrails")
    plan = json.loads((run_dir / "plan.json").read_text())
    # the lane changes, and the toleration that keeps each node agent on worker-1 under the
    # lane taint (the runbook does not say: without it the taint drops them from worker-1)
    assert [i["object"] for i in plan["items"]] == [
        "DaemonSet/engine-image-ei-db6c2b6f", "DaemonSet/longhorn-csi-plugin", "DaemonSet/metallb-speaker",
        "Node/miniserver", "Node/worker-1"]
    assert {i["object"]: i["after"] for i in plan["items"] if i["object"].startswith("DaemonSet/")} == dict(
        ("DaemonSet/" + a.split("/")[1], {"spec.template.spec.tolerations": [LANE_TOLERATION]}) for a in AGENTS)
    assert f"-e approve_plan={plan['id']}" in check.stdout
    # what an AWX workflow hands to the run after its approval node (set_stats)
    assert custom_stats(check.stdout) == {"approve_plan": plan["id"]}
    verify = json.loads((run_dir / "verify.json").read_text())
    assert verify["could_land_on_secondary"] == ["apps/qdrant"]  # the only one
    kept = [chk for chk in verify["checks"] if chk["name"].startswith("every DaemonSet on worker-1 stays there")][0]
    assert kept["finding"] and kept["detail"] == (
        "longhorn-system/engine-image-ei-db6c2b6f, longhorn-system/longhorn-csi-plugin, metallb-system/metallb-speaker"
        " would lose it; the plan gives each a toleration of the lane taint")
    report = (run_dir / "report.md").read_text()
    assert "check mode (nothing written to the cluster)" in report and plan["id"] in report
    assert 'labels.workload-lane: null -> "secondary"' in report

    # 2. the gate fails closed: a wrong id, an empty id, no answer without a terminal
    # and a Semaphore task or an AWX job without approve_plan is refused, not prompted
    for extra in ({"approve_plan": "0000000000000000"}, {"approve_plan": ""}, {},
                  {"semaphore_vars": {"task_details": {"id": 7}}}, {"awx_job_id": 42}):
        offset = audit_size(c)
        refused = phase0(**extra)
        assert refused.rc != 0, extra
        assert "Not approved" in refused.stdout, extra
        if "semaphore_vars" in extra or "awx_job_id" in extra:
            assert "gave no approve_plan" in refused.stdout, refused.stdout[-2000:]
        assert writes(c, offset) == [] and lane_snapshot(c) == before
        # on an AWX workflow's failure branch the rollback gets this run's folder, which
        # records nothing to undo: never an older run's
        assert custom_stats(refused.stdout) == {"rollback_from": str(newest(evidence, "phase0_guardrails"))}, extra

    # 3. apply exactly the plan; the safety proof's row phase0_guardrails (proof.py)
    with proof(phase0, c, "phase0_guardrails", APPLY, "phase0_guardrails", ROLLBACK,
               "phase0_guardrails_rollback") as p:
        assert p.plan["id"] == plan["id"]
        apply = p.apply
        after = lane_snapshot(c)
        assert after["miniserver"]["labels"]["workload-lane"] == "primary"
        assert after["worker-1"]["labels"]["workload-lane"] == "secondary"
        assert LANE_TAINT in after["worker-1"]["taints"] and after["worker-1"]["unschedulable"]
        run_dir = p.run_dir
        verify = json.loads((run_dir / "verify.json").read_text())
        assert verify["phase"] == "after" and all(chk["passed"] for chk in verify["checks"])
        assert verify["could_land_on_secondary"] == []  # the lane taint now guards worker-1
        rollback = json.loads((run_dir / "rollback.json").read_text())
        assert len(rollback["lane_changes"]) == 2
        assert sorted((r["namespace"] + "/" + r["name"], r["fields"]) for r in rollback["daemonset_changes"]) == [
            (a, {"spec.template.spec.tolerations": None}) for a in AGENTS]
        assert agents(c) == dict((a, ([LANE_TOLERATION], 2)) for a in AGENTS)
        # what an AWX workflow hands to the rollback on its failure branch (set_stats)
        assert custom_stats(apply.stdout) == {"rollback_from": str(run_dir)}

        # the runbook's own verification commands print what it expects
        cols = c.kubectl("get", "nodes", "-o",
                         "custom-columns=NAME:.metadata.name,TAINTS:.spec.taints,"
                         "UNSCHEDULABLE:.spec.unschedulable").stdout
        w1 = [line for line in cols.splitlines() if line.startswith("worker-1")][0]
        assert "key:workload-lane value:secondary" in w1 and w1.rstrip().endswith("true")
        pods = c.kubectl("get", "pods", "-A", "-o", "jsonpath={range .items[?(@.spec.nodeName!=\"\")]}"
                         "{.metadata.namespace}{\"\\t\"}{.metadata.name}{\"\\t\"}{.spec.nodeName}{\"\\t\"}"
                         "{.metadata.ownerReferences[0].kind}{\"\\n\"}{end}").stdout
        on_w1 = [row.split("\t") for row in pods.splitlines() if row.split("\t")[2] == "worker-1"]
        assert on_w1 and all(row[3] == "DaemonSet" for row in on_w1)

        # 4. the second apply changed nothing (an empty plan needs no approval)
        assert "changed=0" in p.again.stdout
        nothing = newest(evidence, "phase0_guardrails")
        assert custom_stats(p.again.stdout) == {"rollback_from": str(nothing)}
        # a rollback of a run that changed nothing stops before planning, writing nothing
        offset = audit_size(c)
        empty = phase0(ROLLBACK, rollback_from=str(nothing), approve_plan="0000000000000000")
        assert empty.rc != 0 and f"{nothing} records no change to undo" in empty.stdout, empty.stdout[-3000:]
        assert writes(c, offset) == []

    # 5. the rollback (planned, approved, applied by proof.py): the nodes equal the before-snapshot,
    # the node agents have their own tolerations again
    assert p.rollback_plan["items"]
    assert lane_snapshot(c) == before
    assert agents(c) == dict((a, (None, 2)) for a in AGENTS)


def test_the_node_agents_come_back_to_worker_1_after_a_restart_under_the_lane_taint(two_node, phase0, evidence):
    """What an upgrade of Longhorn or MetalLB does (a rollout restart of its DaemonSets) after
    Phase 0: each DaemonSet still wants both nodes and its pod comes back on worker-1. A
    DaemonSet the plan cannot keep (its manager, longhorn-manager here, undoes a live edit)
    stops the run before anything is written, by name, with what to do instead."""
    c = two_node
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    plan = json.loads((newest(evidence, "phase0_guardrails") / "plan.json").read_text())
    apply = phase0(approve_plan=plan["id"])
    assert apply.rc == 0, apply.stdout[-3000:]
    restart_every_agent(c)
    undo = phase0(ROLLBACK, check=True)
    assert undo.rc == 0, undo.stdout[-3000:]
    undo_plan = json.loads((newest(evidence, "phase0_guardrails_rollback") / "plan.json").read_text())
    undo = phase0(ROLLBACK, approve_plan=undo_plan["id"])
    assert undo.rc == 0, undo.stdout[-3000:]
    assert [t for t, _n in agents(c).values()] == [None] * len(AGENTS)

    # a node agent that longhorn-manager manages: the check run stops, naming it and what to do
    managed = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {
        "name": "longhorn-manager-agent", "namespace": "longhorn-system",
        "labels": {"longhorn.io/managed-by": "longhorn-manager", "app": "longhorn-manager-agent"}},
        "spec": {"selector": {"matchLabels": {"app": "longhorn-manager-agent"}}, "template": {
            "metadata": {"labels": {"app": "longhorn-manager-agent"}},
            "spec": {"containers": [{"name": "agent", "image": "registry.example/agent:test"}]}}}}
    c.kubectl("apply", "-f", "-", input=json.dumps(managed))
    try:
        offset = audit_size(c)
        refused = phase0(check=True)
        assert refused.rc != 0 and writes(c, offset) == []
        said = " ".join(refused.stdout.split())
        assert ("longhorn-system/longhorn-manager-agent (loses worker-1: managed by longhorn-manager, which undoes a"
                " live edit: add the toleration to Longhorn's taint-toleration setting (Longhorn applies it while no"
                " volume is attached))") in said, said[-3000:]
        assert "Failed: every DaemonSet on worker-1 stays there under the lane taint workload-lane=secondary:NoSchedule" \
            in said, said[-3000:]
    finally:
        c.kubectl("delete", "daemonset", "longhorn-manager-agent", "-n", "longhorn-system", "--wait=true")


LONGHORN_AGENTS = AGENTS[:2]  # longhorn-manager's own, once the Longhorn simulator runs


def detach_every_volume(sim):
    """As when every workload that mounts a Longhorn volume is stopped."""
    for name in sim.volumes():
        sim.cluster.kubectl("patch", "volumes.longhorn.io", name, "-n", "longhorn-system", "--type=merge",
                            "-p", json.dumps({"spec": {"nodeID": ""}}))
    sim.wait("every volume detached", lambda: all(
        v.get("status", {}).get("state") == "detached" for v in sim.volumes().values()))


def test_longhorn_keeps_its_own_daemonsets_through_taint_toleration(longhorn, phase0, evidence):
    """With Longhorn running, its CSI plugin and engine image are longhorn-manager's
    (label longhorn.io/managed-by): the plan keeps them on worker-1 through Longhorn's
    taint-toleration setting, not a live edit. Longhorn applies that setting only while
    every volume is detached, so with attached volumes the check stops before any write and
    names them; with all detached, the apply sets it, Longhorn writes the toleration into
    its DaemonSets, a restart of every fixture DaemonSet keeps both nodes, and the rollback
    puts the setting and the DaemonSets back."""
    c = longhorn.cluster
    offset = audit_size(c)
    refused = phase0(check=True)
    said = " ".join(refused.stdout.split())
    assert refused.rc != 0 and writes(c, offset) == [], said[-3000:]
    assert ("settings: nothing was changed; Longhorn applies taint-toleration to its components only while every"
            " volume is detached (longhorn-manager's setting controller), and 6 volume(s) are not: pvc-arr (attached),"
            in said), said[-3000:]

    detach_every_volume(longhorn)
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    plan = json.loads((newest(evidence, "phase0_guardrails") / "plan.json").read_text())
    assert "LonghornSettings/longhorn-system (homelab.k8s_ha.longhorn_settings):" in plan["report"], plan["report"]
    assert '  taint-toleration: "" -> "workload-lane=secondary:NoSchedule"' in plan["report"], plan["report"]
    # the plan edits only the DaemonSet no one else manages
    assert [i["object"] for i in plan["items"] if i["object"].startswith("DaemonSet/")] == ["DaemonSet/metallb-speaker"]
    apply = phase0(approve_plan=plan["id"])
    assert apply.rc == 0, apply.stdout[-3000:]
    assert longhorn.settings()["taint-toleration"] == "workload-lane=secondary:NoSchedule"
    for agent in AGENTS:
        assert agents(c)[agent][0] == [LANE_TOLERATION], agent
    for agent in LONGHORN_AGENTS:
        ns, name = agent.split("/")
        ds = c.get_json("daemonset", name, "-n", ns)
        assert json.loads(ds["metadata"]["annotations"]["longhorn.io/last-applied-tolerations"]) == [LANE_TOLERATION]

    # an upgrade of each (a rollout restart): every fixture DaemonSet keeps both nodes
    restart_every_agent(c)

    undo = phase0(ROLLBACK, check=True)
    assert undo.rc == 0, undo.stdout[-3000:]
    undo_plan = json.loads((newest(evidence, "phase0_guardrails_rollback") / "plan.json").read_text())
    assert '  taint-toleration: "workload-lane=secondary:NoSchedule" -> ""' in undo_plan["report"], undo_plan["report"]
    undo = phase0(ROLLBACK, approve_plan=undo_plan["id"])
    assert undo.rc == 0, undo.stdout[-3000:]
    assert longhorn.settings()["taint-toleration"] == ""
    assert [t for t, _n in agents(c).values()] == [None] * len(AGENTS)


def test_the_proof_fails_a_rollback_that_leaves_one_field_changed(two_node, phase0):
    """The matrix's negative case on the real cluster: the rollback of Phase 0 restores the
    labels and the taint it recorded (and verifies them), but an annotation somebody else
    put on worker-1 in the meantime stays, and the proof names exactly that field."""
    c = two_node
    with pytest.raises(AssertionError) as failed:
        with proof(phase0, c, "negative: one field left changed", APPLY, "phase0_guardrails", ROLLBACK,
                   "phase0_guardrails_rollback", again=False) as p:
            MATRIX.remove(p.row)  # not a row of the matrix: it is meant to fail
            c.kubectl("annotate", "node", "worker-1", "homelab.k8s-ha/left=behind")
    try:
        assert str(failed.value).startswith("negative: one field left changed: rollback diff: "), str(failed.value)
        assert 'nodes worker-1: metadata.annotations.homelab.k8s-ha/left was null, is "behind"' in str(failed.value)
        assert "workload-lane" not in str(failed.value)  # what the rollback restored is not named
    finally:
        c.kubectl("annotate", "node", "worker-1", "homelab.k8s-ha/left-")


def test_a_stale_plan_is_refused_naming_what_changed(two_node, phase0, evidence):
    """The cluster changed between the check and the apply: the refusal names the item and
    the field that differ from the approved plan, and nothing is written."""
    c = two_node
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    checked = newest(evidence, "phase0_guardrails")
    plan = json.loads((checked / "plan.json").read_text())
    c.kubectl("label", "node", "miniserver", "workload-lane=other")
    try:
        offset = audit_size(c)
        refused = phase0(approve_plan=plan["id"])
        assert refused.rc != 0 and writes(c, offset) == []
        said = " ".join(refused.stdout.split())
        assert "What differs from the approved plan (checked in %s): " % checked in said, said[-3000:]
        assert 'Node/miniserver: before labels.workload-lane: approved null, now "other"' in said, said[-3000:]
    finally:
        c.kubectl("label", "node", "miniserver", "workload-lane-")


def test_stop_condition_reports_new_pending_pods_and_the_rollback(two_node, phase0, evidence):
    c = two_node
    check = phase0(check=True)
    assert check.rc == 0, check.stdout[-3000:]
    plan = json.loads((newest(evidence, "phase0_guardrails") / "plan.json").read_text())
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cannot-schedule", "namespace": "apps"},
             "spec": {"nodeSelector": {"workload-lane": "nowhere"},
                      "containers": [{"name": "c", "image": "x"}]}}

    def during_the_watch():
        time.sleep(8)  # the playbook is past its plan by then, and watching
        c.kubectl("apply", "-f", "-", input=json.dumps(stray))

    helper = threading.Thread(target=during_the_watch)
    helper.start()
    try:
        run = phase0(approve_plan=plan["id"], guardrails_watch_seconds=25)
        helper.join()
        assert run.rc != 0
        assert "no pod newly Pending since the apply" in run.stdout
        assert "apps/cannot-schedule" in run.stdout
        assert "STOP: the change is applied" in run.stdout
        assert "playbooks/phase0_guardrails_rollback.yml --check" in run.stdout
        run_dir = newest(evidence, "phase0_guardrails")
        verify = json.loads((run_dir / "verify.json").read_text())
        failed = {chk["name"]: chk["detail"] for chk in verify["checks"] if not chk["passed"]}
        assert failed["no pod newly Pending since the apply"] == "apps/cannot-schedule"
        assert any(name.startswith("no FailedScheduling event") and "cannot-schedule" in detail
                   for name, detail in failed.items())
        # the rollback is recorded, so the documented command can undo the change
        assert len(json.loads((run_dir / "rollback.json").read_text())["lane_changes"]) == 2
    finally:
        helper.join()
        c.kubectl("delete", "pod", "cannot-schedule", "-n", "apps", "--ignore-not-found", "--wait=true")


@pytest.mark.parametrize("bad, message", [
    ({"guardrails_secondary_node": "worker-9"}, "node: no node named 'worker-9'; nodes are: miniserver, worker-1"),
    # the audit judges the node agents under the lane taint first, so it is the first to refuse it
    ({"guardrails_secondary_lane": "second ary!"}, "daemonset_taints[worker-1]: taints[0].value 'second ary!' must consist of"),
    ({"guardrails_lane_taint_effect": "NoScheduling"},
     "daemonset_taints[worker-1]: taints[0].effect 'NoScheduling' must be one of NoSchedule, PreferNoSchedule, NoExecute"),
])
def test_bad_input_stops_before_any_write(two_node, phase0, bad, message):
    c = two_node
    before = lane_snapshot(c)
    offset = audit_size(c)
    for check in (True, False):
        run = phase0(check=check, approve_plan="0000000000000000", **bad)
        assert run.rc != 0
        assert message in run.stdout
    assert writes(c, offset) == [] and lane_snapshot(c) == before


def _run_in_terminal(argv, env, answer, timeout=180):
    """Run argv under a pseudo-terminal; type ``answer`` at the gate's prompt."""
    import fcntl
    import os
    import pty
    import select
    import subprocess
    import termios

    leader, follower = pty.openpty()

    def controlling_terminal():  # after setsid: the pty becomes the session's terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, env=env, stdin=follower, stdout=follower, stderr=follower,
                            cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True,
                            preexec_fn=controlling_terminal)  # pylint: disable=subprocess-popen-preexec-fn
    os.close(follower)
    out, deadline = b"", time.monotonic() + timeout
    prompt_at, typed_at, typed_len = None, None, 0
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
        if prompt_at is None and b"to apply it; anything else stops" in out:
            prompt_at = time.monotonic()
        # pause discards input typed before it reads the terminal: type once it is
        # waiting, and again if nothing followed the answer
        if prompt_at and time.monotonic() - prompt_at > 1.5 and (
                typed_at is None or (len(out) == typed_len and time.monotonic() - typed_at > 5)):
            os.write(leader, answer.encode() + b"\r")
            typed_at, typed_len = time.monotonic(), len(out)
    proc.wait(timeout=30)
    os.close(leader)
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("answer, approved", [("apply", True), ("yes", False), ("", False)])
def test_interactive_gate_wants_the_exact_word(two_node, evidence, answer, approved):
    import sys

    c = two_node
    before = lane_snapshot(c)
    env = dict(c.env(), ANSIBLE_COLLECTIONS_PATH=str(Path(__file__).resolve().parents[2] / ".local" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    root = Path(__file__).resolve().parents[2]
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(root / "inventories" / "local"),
            str(root / APPLY), "-e", json.dumps({"evidence_root": str(evidence)})]
    try:
        rc, out = _run_in_terminal(argv, env, answer)
        assert "Plan " in out and "type 'apply' to apply it" in out
        # the prompt an approver reads: the plan, one item per line, then the question
        lines = out.replace("\r\n", "\n").splitlines()
        first = lines.index("[homelab.k8s_ha.gate : Ask for approval of the plan]") + 1
        last = next(i for i in range(first, len(lines)) if "anything else stops" in lines[i])
        assert_golden("gate.prompt", "\n".join(lines[first:last + 1]))
        if approved:
            assert rc == 0, out[-3000:]
            assert "approved at the prompt" in out
            assert lane_snapshot(c)["worker-1"]["labels"]["workload-lane"] == "secondary"
        else:
            assert rc != 0
            assert "Not approved" in out
            assert lane_snapshot(c) == before
    finally:
        c.kubectl("label", "node", "miniserver", "worker-1", "workload-lane-", check=False)
        c.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)
        untolerate(c)


METALLB_APP = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "metallb", "namespace": "argocd"},
               "spec": {"project": "default",
                        "source": {"repoURL": "https://git.example/homelab.git", "path": "platform/metallb",
                                   "targetRevision": "main"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "metallb-system"},
                        "syncPolicy": {"automated": {"selfHeal": True}}}}
TRACKING_KEY = "argocd.argoproj.io/tracking-id"
TRACKING = TRACKING_KEY + "=metallb:apps/DaemonSet:metallb-system/metallb-speaker"


def test_a_node_agent_argo_cd_would_revert_is_refused_or_its_application_suspended(two_node, phase0, evidence):
    """MetalLB's speaker from an Argo CD Application with selfHeal: its toleration of the lane
    taint, written live, would be synced away within seconds and the taint then evict the
    speaker from worker-1. The plan refuses it, writing nothing; with guardrails_managed
    {argocd: suspend} it plans the Application's automated sync off as an item of its own
    (docs/managed_objects.md)."""
    c = two_node
    crds = str(fetch("argocd"))
    c.kubectl("apply", "--server-side", "-f", crds)
    c.wait_established("applications.argoproj.io")
    c.kubectl("create", "namespace", "argocd", check=False)
    c.kubectl("apply", "-f", "-", input=json.dumps(METALLB_APP))
    c.kubectl("annotate", "-n", "metallb-system", "daemonset/metallb-speaker", TRACKING)
    try:
        offset = audit_size(c)
        refused = phase0(check=True)
        assert refused.rc != 0
        assert ("(metallb-system/metallb-speaker): managed: a live edit would not last: Argo CD Application "
                "argocd/metallb (annotation argocd.argoproj.io/tracking-id): syncs automatically and puts the edit "
                "back within seconds (selfHeal)") in " ".join(refused.stdout.split()), refused.stdout[-3000:]
        planned = phase0(check=True, guardrails_managed={"argocd": "suspend"})
        assert planned.rc == 0, planned.stdout[-3000:]
        assert writes(c, offset) == []
        items = dict((i["object"], i) for i in json.loads((newest(evidence, "phase0_guardrails") / "plan.json")
                                                          .read_text())["items"])
        assert items["Application/metallb"]["after"] == {"spec.syncPolicy.automated": None}
        assert items["DaemonSet/metallb-speaker"]["manager"].endswith(
            "held by this run (its automated sync off until this run's rollback)")
    finally:
        c.kubectl("annotate", "-n", "metallb-system", "daemonset/metallb-speaker", TRACKING_KEY + "-")
        c.kubectl("delete", "-f", crds, "--wait=true")
        c.kubectl("delete", "namespace", "argocd", "--wait=true")
