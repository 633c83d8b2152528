"""Every command the README and docs/ tell a person to run, run verbatim on the local
control plane (tests/doc_commands.py says how blocks are marked and placeholders filled).

A scenario is the cluster state a page starts from; each test runs the blocks marked
with its scenario in the order of the pages (README.md first), and then checks what a
person would look at: the nodes are as before, the evidence says what happened. The
commands run as cluster-admin through the inventory's kubeconfig, as after `make demo`.

The tests are ordered by the fixture cluster they load (two-node ones first, then the
renamed two-node, then three-worker, then talos-capi): a module-scoped fixture loads once
per module."""

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from golden import assert_golden, task_message
from observe import audit_size, lane_snapshot, writes
from test_app_migration import migration  # noqa: F401  pylint: disable=unused-import
from test_app_migration_failover import failover  # noqa: F401  pylint: disable=unused-import
from test_capi_rollout import rig  # noqa: F401  pylint: disable=unused-import
from test_your_cluster import your_cluster  # noqa: F401  pylint: disable=unused-import

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doc_commands import ROOT, Session, all_blocks, commands  # noqa: E402  pylint: disable=wrong-import-position

RAN = Counter()


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """Prints how many documented commands ran per file (and fails nothing by itself)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    marked = Counter(b.path for b in all_blocks() if b.scenario)
    skipped = Counter(b.path for b in all_blocks() if b.not_run_reason)
    lines = ["documented commands run verbatim: %d" % sum(RAN.values())]
    for path in sorted(set(marked) | set(skipped) | set(RAN)):
        lines.append("  %-32s %3d command(s) run; %d block(s) marked not run" % (path, RAN[path], skipped[path]))
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)


@pytest.fixture
def person_evidence(tmp_path):
    """The commands write ./evidence in the checkout, as a person's would; a folder that
    was there before the test is put aside and back."""
    folder = ROOT / "evidence"
    aside = tmp_path / "evidence-before"
    if folder.exists():
        shutil.move(str(folder), str(aside))
    yield folder
    if folder.exists():
        shutil.move(str(folder), str(tmp_path / "evidence-of-the-docs"))
    if aside.exists():
        shutil.move(str(aside), str(folder))


def run_scenario(scenario, session, cluster=None):
    """Runs the scenario's blocks; with ``cluster``, a command with --check must send no
    write to the API server (the audit log; a server-side dry run is no write)."""
    blocks = [b for b in all_blocks() if b.scenario == scenario]
    assert blocks, "no documented block is marked doc-test: %s" % scenario
    for block in blocks:
        for command in commands(block.text):
            offset = audit_size(cluster) if cluster is not None else None
            session.run(command)
            if offset is not None and " --check" in command:
                assert writes(cluster, offset) == [], "the check wrote: %s" % command
            RAN[block.path] += 1
    return blocks


def run_printed_pair(session, cluster, pair):
    """A report's printed check and apply, run as printed (the session pastes the plan id the
    check printed); the check writes nothing."""
    offset = audit_size(cluster)
    session.run(pair[0])
    assert writes(cluster, offset) == [], "the check wrote: %s" % pair[0]
    session.run(pair[1])


def newest(evidence, playbook):
    return sorted(evidence.glob("*-" + playbook))[-1]


def test_two_node_commands(two_node, person_evidence):
    """README (make demo, kubectl, Phase 0 in three commands) and the Phase 0 page:
    each apply is undone by the rollback the page names, nodes back to the snapshot."""
    c = two_node
    before = lane_snapshot(c)
    session = Session()
    run_scenario("two-node", session, c)
    assert lane_snapshot(c) == before
    # make demo ends by telling the next command, and the demo's report lists the finding
    demo = session.outputs[0]
    assert "ansible-playbook -i inventories/local playbooks/phase0_guardrails.yml --check --diff" in demo
    assert "[FINDING] workloads that could land on worker-1 if it were uncordoned: apps/qdrant" in demo
    # the last rollback names the run it undid and the verification it ran
    rollback = newest(person_evidence, "phase0_guardrails_rollback")
    report = (rollback / "report.md").read_text()
    undone = newest(person_evidence, "phase0_guardrails")
    assert "- Undoes: the run recorded in `%s`" % undone in report
    assert "| miniserver equals its before-snapshot | pass | equal |" in report
    assert "No verification ran" not in report
    assert json.loads((rollback / "verify.json").read_text())["checks"]
    # what a person reads, as text: the demo's report, the plan, both reports
    assert_golden("phase0_verify.demo", task_message(demo, "Show the Phase 0 verification report"))
    check = [out for out in session.outputs if "Show the plan" in out][0]
    assert_golden("phase0_guardrails.plan", task_message(check, "Show the plan"))
    assert_golden("phase0_guardrails.report", (undone / "report.md").read_text())
    assert_golden("phase0_guardrails_rollback.report", report)
    # the apply's report tells the way back; that is the rollback this page ran
    from doc_commands import report_commands  # pylint: disable=import-outside-toplevel
    assert [c.split(" -e rollback_from=")[1].split()[0] for c in report_commands(undone / "report.md")] == \
        [str(undone)] * 2


def test_the_rollback_a_report_prints_runs_as_it_stands(two_node, person_evidence):
    """An apply's report.md ends with its rollback's check and apply: run verbatim (the plan
    id the check printed pasted in), they put the nodes back as they were."""
    from doc_commands import report_commands  # pylint: disable=import-outside-toplevel

    c = two_node
    before = lane_snapshot(c)
    session = Session()
    readme = [b for b in all_blocks() if b.path == "README.md" and "phase0_guardrails.yml --check" in b.text][0]
    check, apply = [cmd for cmd in commands(readme.text) if "phase0_guardrails.yml" in cmd][:2]
    session.run(check)
    session.run(apply)
    assert lane_snapshot(c) != before
    applied = newest(person_evidence, "phase0_guardrails")
    printed = report_commands(applied / "report.md")
    assert len(printed) == 2 and "--check" in printed[0] and "<plan id>" in printed[1]
    run_printed_pair(session, c, printed)
    assert lane_snapshot(c) == before
    report = (newest(person_evidence, "phase0_guardrails_rollback") / "report.md").read_text()
    assert "- Undoes: the run recorded in `%s`" % applied in report


def test_two_node_gitops_commands(two_node, person_evidence, tmp_path):
    """The Phase 0 page's GitOps variant: the overlay committed on its branch, and the
    rollback puts the files back."""
    from test_phase0_overlay import make_checkout  # pylint: disable=import-outside-toplevel

    c = two_node
    before = lane_snapshot(c)
    repo = tmp_path / "k8s-homelab"
    make_checkout(repo)
    for key, value in (("user.name", "A Person"), ("user.email", "person@example.invalid")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    session = Session()
    session.values["<your gitops checkout>"] = str(repo)
    run_scenario("two-node-gitops", session, c)
    assert lane_snapshot(c) == before
    log = subprocess.run(["git", "-C", str(repo), "log", "--all", "--format=%s"], capture_output=True, text=True,
                         check=True).stdout
    assert "route qdrant through the primary-lane overlay" in log
    assert not (repo / "apps/overlays/primary-lane/qdrant/kustomization.yaml").exists()


def test_rbac_commands(two_node, person_evidence):
    """rbac/README.md: the family's ClusterRole, a ServiceAccount bound to it and its
    token, from a cluster that has none of them yet (after README's export)."""
    c = two_node
    c.kubectl("delete", "clusterrolebinding", "homelab-guardrails", "--ignore-not-found")
    c.kubectl("delete", "namespace", "homelab-operators", "--ignore-not-found", "--wait=true", "--timeout=120s")
    session = Session()
    session.run("export KUBECONFIG=$PWD/.local/cluster/kubeconfig")  # README, after make demo
    run_scenario("rbac", session)
    token = session.outputs[-1].strip()
    assert token.count(".") == 2 and len(token) > 100  # a JWT, what the credential takes
    who = "--as=system:serviceaccount:homelab-operators:homelab-guardrails"
    assert c.kubectl("auth", "can-i", "patch", "nodes", who).stdout.strip() == "yes"
    assert c.kubectl("auth", "can-i", "delete", "pods", who, check=False).stdout.strip() == "no"


def test_no_cluster_commands(person_evidence):
    """docs/execution_environment.md: the collection tarball and the image's build context."""
    session = Session()
    run_scenario("no-cluster", session)
    built = sorted((ROOT / ".local/dist").glob("homelab-k8s_ha-*.tar.gz"))
    assert built
    # the build context carries that tarball, and the image's galaxy stage installs it
    assert (ROOT / ".local/ee/_build/collections" / built[-1].name).is_file()
    assert "collections/%s" % built[-1].name in (ROOT / ".local/ee/_build/requirements.yml").read_text()
    assert "ansible-galaxy collection install" in (ROOT / ".local/ee/Containerfile").read_text()


def test_two_node_longhorn_commands(longhorn, person_evidence):
    """docs/core_platform.md from where runbook 000 leaves the cluster, with the Longhorn
    simulator: the apply and the rollback the page names; CoreDNS, the ingress, the
    settings and the node as they were."""
    from test_core_platform import COMPONENTS, deployment  # pylint: disable=import-outside-toplevel
    from observe import clear_lanes, set_lanes  # pylint: disable=import-outside-toplevel

    c = longhorn.cluster
    set_lanes(c)
    try:
        specs = {name: deployment(c, name)["spec"]["template"]["spec"] for name in COMPONENTS}
        settings = longhorn.settings()
        nodes = lane_snapshot(c)
        run_scenario("two-node-longhorn", Session(), c)
        assert longhorn.settings() == settings
        assert lane_snapshot(c) == nodes
        for name in COMPONENTS:
            now = deployment(c, name)["spec"]["template"]["spec"]
            for key in ("affinity", "tolerations", "topologySpreadConstraints"):
                assert now.get(key) == specs[name].get(key), (name, key)
        report = (newest(person_evidence, "core_platform_rollback") / "report.md").read_text()
        assert "| every recorded field equals its value before the apply | pass | all restored |" in report
    finally:
        clear_lanes(c)


def test_two_node_web_commands(migration, two_node, person_evidence):
    """docs/app_migration.md, strategy A: stage 1 applied as the page says, then undone by
    the rollback it names; the Deployment, its HPA and its Argo CD Application as before."""
    from test_app_migration import holds, web_spec  # pylint: disable=import-outside-toplevel

    c = two_node
    spec, held = web_spec(c), holds(c)
    session = Session()
    run_scenario("two-node-web", session, c)
    assert web_spec(c)["template"]["spec"] == spec["template"]["spec"]
    assert web_spec(c)["replicas"] == spec["replicas"]
    assert holds(c) == held
    report = (newest(person_evidence, "app_migration_rollback") / "report.md").read_text()
    assert "| every recorded change is undone | pass | all restored |" in report


def test_the_release_and_rollback_a_stage_report_prints_run_as_they_stand(migration, two_node, person_evidence):
    """A verified stage's report.md lists the holds in force and prints the release's check
    and apply, then the rollback's: run verbatim (plan ids pasted in), the release gives the
    HPA and the Argo CD Application back exactly and the rollback the Deployment."""
    from doc_commands import report_commands  # pylint: disable=import-outside-toplevel
    from test_app_migration import holds, web_spec  # pylint: disable=import-outside-toplevel

    c = two_node
    spec, held = web_spec(c), holds(c)
    session = Session()
    page = [b for b in all_blocks() if b.scenario == "two-node-web"][0]
    check, apply = [cmd for cmd in commands(page.text) if "app_migration.yml" in cmd][:2]
    session.run(check)
    session.run(apply)
    assert holds(c) != held
    applied = newest(person_evidence, "app_migration")
    printed = report_commands(applied / "report.md")
    release = [cmd for cmd in printed if "app_migration_release.yml" in cmd]
    assert len(release) == 2 and "--check" in release[0] and "<plan id>" in release[1], printed
    run_printed_pair(session, c, release)
    assert holds(c) == held
    released = (newest(person_evidence, "app_migration_release") / "report.md").read_text()
    assert "- Undoes: the run recorded in `%s`" % applied in released
    rollback = [cmd for cmd in printed if "app_migration_rollback.yml" in cmd]
    assert len(rollback) == 2, printed
    session.run(rollback[0])
    session.run(rollback[1])
    assert web_spec(c)["template"]["spec"] == spec["template"]["spec"] and holds(c) == held


def test_two_node_notes_db_commands(failover, longhorn, person_evidence):
    """docs/app_migration.md, strategies B and C: the checks plan and write nothing."""
    c = longhorn.cluster
    spec = c.get_json("deployment", "notes-db", "-n", "apps")["spec"]
    session = Session()
    run_scenario("two-node-notes-db", session, c)
    assert c.get_json("deployment", "notes-db", "-n", "apps")["spec"] == spec
    plans = [json.loads((d / "plan.json").read_text()) for d in sorted(person_evidence.glob("*-app_migration"))]
    assert len(plans) == 2 and all(p["items"] for p in plans)
    assert "Deployment/notes-db-standby" in [i["object"] for i in plans[0]["items"]]


# last in this module: its module-scoped fixture loads the renamed two-node fixture
def test_your_cluster_commands(your_cluster, person_evidence, tmp_path):
    """README, "Use it on your cluster", on a cluster whose nodes have other names than the
    runbooks' (node-a, node-b): the copied inventory, the names and the kubeconfig given as
    the README says, the verification, Phase 0 and its rollback; the nodes as before."""
    from test_your_cluster import PRIMARY, SECONDARY  # pylint: disable=import-outside-toplevel

    c = your_cluster
    mine = ROOT / "inventories" / "my-cluster"
    aside = tmp_path / "my-cluster-before"
    if mine.exists():
        shutil.move(str(mine), str(aside))
    before = lane_snapshot(c)
    try:
        session = Session()
        session.values.update({"<server-1>": PRIMARY, "<server-2>": SECONDARY,
                               "<your kubeconfig>": str(c.kubeconfig)})
        run_scenario("your-cluster", session, c)
        assert lane_snapshot(c) == before
        apply = json.loads((newest(person_evidence, "phase0_guardrails") / "plan.json").read_text())
        assert [i["object"] for i in apply["items"]] == [
            "DaemonSet/engine-image-ei-db6c2b6f", "DaemonSet/longhorn-csi-plugin", "DaemonSet/metallb-speaker",
            "Node/" + PRIMARY, "Node/" + SECONDARY]
    finally:
        shutil.rmtree(mine, ignore_errors=True)
        if aside.exists():
            shutil.move(str(aside), str(mine))


def test_three_worker_commands(three_worker, person_evidence):
    """docs/active_passive.md on the three-worker fixture: the apply, the drill with its own
    gate (w1 down and back), a guarded failback pass, the rollback; the apps on k3s-w1 and
    the nodes as before."""
    from test_active_passive import W1, wait_settled  # pylint: disable=import-outside-toplevel

    c = three_worker
    wait_settled(c, W1, "the apps on k3s-w1", 60)
    nodes = lane_snapshot(c)
    specs = {d["metadata"]["name"]: d["spec"]["template"]["spec"]
             for d in c.get_json("deployments", "-n", "media")["items"]}
    try:
        run_scenario("three-worker", Session(), c)
        drill = json.loads((newest(person_evidence, "failover_drill") / "verify.json").read_text())
        # the four scenarios, then the workloads' health after scenarios 2 and 3: every check passed
        assert [ch["name"] for ch in drill["checks"]][:4] == [
            "1. normal placement", "2. failover", "3. failback", "4. pod restart stays"], drill
        assert all(ch["passed"] for ch in drill["checks"]) and len(drill["checks"]) > 4, drill
        wait_settled(c, W1, "the apps back on k3s-w1", 90)
        assert lane_snapshot(c) == nodes
        assert {d["metadata"]["name"]: d["spec"]["template"]["spec"]
                for d in c.get_json("deployments", "-n", "media")["items"]} == specs
        report = (newest(person_evidence, "active_passive_rollback") / "report.md").read_text()
        assert "| every recorded change is undone | pass | all restored |" in report
    finally:
        if W1 in c._state().get("down", []):  # pylint: disable=protected-access
            c.node_up(W1)


def _talos_session(rig, tmp_path):
    """A person's shell for docs/capi_rollout.md: talosctl on PATH (here the stand-in, with
    the talosconfig the rig wrote), the LINSTOR controller's URL and the overlay at hand."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    talosctl = bin_dir / "talosctl"
    talosctl.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, ROOT / "tests/simulators/talosctl_simulator.py"))
    talosctl.chmod(0o755)
    session = Session()
    session.env["PATH"] = "%s:%s" % (bin_dir, session.env["PATH"])
    session.values.update({"<your talosconfig>": str(tmp_path / "talosconfig.json"), "<linstor url>": rig.linstor.url,
                           "<your overlay folder>": str(ROOT / "tests/fixtures/gitops-capi/good")})
    return session


def test_talos_capi_commands(rig, person_evidence, tmp_path):
    """docs/capi_rollout.md on the talos-capi fixture with the CAPI and LINSTOR simulators:
    the check, the approved remediation of worker-1's unhealthy Machine, the GitOps check."""
    from test_capi_rollout import IPS, on_node  # pylint: disable=import-outside-toplevel

    sim, c, linstor = rig.sim, rig.c, rig.linstor
    unhealthy = on_node(sim, "worker-1")
    sim.mark_unhealthy(unhealthy)
    run_scenario("talos-capi", _talos_session(rig, tmp_path), c)
    assert on_node(sim, "worker-1") != unhealthy
    assert linstor.nodes["worker-1"]["flags"] == []
    assert [call["argv"][call["argv"].index("-n") + 1] for call in rig.talos_calls()] == [
        ip for ip, node in IPS.items() if node == "worker-1"]
    # the page's three runs: the check, the apply (verified), the GitOps check
    check, apply, gitops = sorted(person_evidence.glob("*-capi_rollout"))
    verify = json.loads((apply / "verify.json").read_text())
    assert verify["checks"] and all(ch["passed"] for ch in verify["checks"]), verify
    assert json.loads((check / "plan.json").read_text())["id"] == json.loads((apply / "plan.json").read_text())["id"]
    assert json.loads((gitops / "plan.json").read_text())


def test_talos_capi_stopped_commands(rig, person_evidence, tmp_path):
    """docs/capi_rollout.md, a run stopped after the evacuation (worker-2's evacuation
    blocked): the rollback the page and that run's report name restores the node."""
    from test_capi_rollout import on_node, plan_of  # pylint: disable=import-outside-toplevel

    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-2"))
    linstor.set_fault(block_evacuation=["worker-2"])
    plan = plan_of(run, run(check=True, capi_rollout_linstor_evacuation_timeout="3s"))
    stopped = run(approve_plan=plan["id"], capi_rollout_linstor_evacuation_timeout="3s",
                  evidence_root=str(person_evidence))
    assert stopped.rc != 0 and linstor.nodes["worker-2"]["flags"] == ["EVACUATE"], stopped.stdout[-3000:]
    from doc_commands import report_commands  # pylint: disable=import-outside-toplevel
    printed = report_commands(newest(person_evidence, "capi_rollout") / "report.md")
    assert len(printed) == 2 and all("-e capi_rollout_linstor_controller_url=%s" % linstor.url in p for p in printed)
    run_scenario("talos-capi-stopped", _talos_session(rig, tmp_path), c)
    assert linstor.nodes["worker-2"]["flags"] == []
    report = (newest(person_evidence, "capi_rollout_rollback") / "report.md").read_text()
    assert "| LINSTOR node worker-2 restored | pass | flags: none |" in report
