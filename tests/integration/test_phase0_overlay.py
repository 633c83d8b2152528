"""The overlay step: rendered into a GitOps checkout, bound into the plan, committed on
a branch, rolled back; and qdrant deployed through the overlay stays on miniserver while
the base lets the real scheduler put it on worker-1."""

import json
import subprocess

from observe import audit_size, newest_evidence

APPLY = "playbooks/phase0_guardrails.yml"
ROLLBACK = "playbooks/phase0_guardrails_rollback.yml"
OVERLAY = "apps/overlays/primary-lane/qdrant"
APP = "platform/gitops/argocd/apps/qdrant-app.yaml"

BASE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: qdrant
  namespace: apps
spec:
  replicas: 6
  selector:
    matchLabels: {app: qdrant}
  template:
    metadata:
      labels: {app: qdrant}
    spec:
      containers:
        - name: qdrant
          image: registry.example/qdrant:test
"""
ARGO_APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: qdrant
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://git.example/k8s-homelab.git
    targetRevision: main
    path: apps/base/qdrant
  destination:
    server: https://kubernetes.default.svc
    namespace: apps
"""


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def make_checkout(root):
    (root / "apps/base/qdrant").mkdir(parents=True)
    (root / "apps/base/qdrant/deployment.yaml").write_text(BASE_DEPLOYMENT)
    (root / "apps/base/qdrant/kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    (root / "platform/gitops/argocd/apps").mkdir(parents=True)
    (root / APP).write_text(ARGO_APP)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init")


def qdrant_nodes(c):
    return sorted(p["spec"].get("nodeName") for p in
                  c.get_json("pods", "-n", "apps", "-l", "app=qdrant")["items"]
                  if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def test_overlay_rendered_planned_committed_and_rolled_back(two_node, run_playbook, tmp_path):
    c = two_node
    repo = tmp_path / "k8s-homelab"
    make_checkout(repo)
    evidence = tmp_path / "evidence"
    common = {"gitops_repo_dir": str(repo), "evidence_root": str(evidence)}

    def newest(name):
        return newest_evidence(evidence, name)

    try:
        # check: the files are in the plan, the checkout is untouched
        check = run_playbook(c, APPLY, extra_vars=common, check=True)
        assert check.rc == 0, check.stdout[-3000:]
        plan = json.loads((newest("phase0_guardrails") / "plan.json").read_text())
        assert [i["object"] for i in plan["items"]] == [
            "DaemonSet/engine-image-ei-db6c2b6f", "DaemonSet/longhorn-csi-plugin", "DaemonSet/metallb-speaker",
            "Node/miniserver", "Node/worker-1",
            "File/" + OVERLAY + "/kustomization.yaml", "File/" + OVERLAY + "/patch-affinity.yaml",
            "File/" + APP]
        assert git(repo, "status", "--porcelain") == ""
        report = (newest("phase0_guardrails") / "report.md").read_text()
        assert "+    path: apps/overlays/primary-lane/qdrant" in report

        # apply with a commit on a branch (never pushed: the checkout has no remote)
        apply = run_playbook(c, APPLY, extra_vars=dict(common, approve_plan=plan["id"],
                                                       guardrails_gitops_commit=True))
        assert apply.rc == 0, apply.stdout[-3000:]
        assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "guardrails/primary-lane-overlays"
        assert "route qdrant through the primary-lane overlay" in git(repo, "log", "-1", "--format=%s")
        assert git(repo, "status", "--porcelain") == ""
        assert "path: apps/overlays/primary-lane/qdrant" in (repo / APP).read_text()
        rendered = c.kubectl("kustomize", str(repo / OVERLAY)).stdout
        assert "key: workload-lane" in rendered and "- primary" in rendered

        # the real scheduler, with worker-1 uncordoned and without the lane taint
        c.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-")
        c.kubectl("uncordon", "worker-1")
        c.kubectl("apply", "-k", str(repo / OVERLAY))
        c.kubectl("rollout", "status", "deployment/qdrant", "-n", "apps", "--timeout=90s")
        c.wait("6 qdrant pods via the overlay", lambda: len(qdrant_nodes(c)) == 6, 90)
        assert set(qdrant_nodes(c)) == {"miniserver"}
        c.kubectl("apply", "-k", str(repo / "apps/base/qdrant"))  # without the overlay
        c.kubectl("rollout", "status", "deployment/qdrant", "-n", "apps", "--timeout=90s")
        c.wait("6 qdrant pods via the base", lambda: len(qdrant_nodes(c)) == 6, 90)
        assert "worker-1" in qdrant_nodes(c)  # as the audit predicted
        c.kubectl("cordon", "worker-1")
        c.kubectl("taint", "node", "worker-1", "workload-lane=secondary:NoSchedule")

        # rollback: the nodes and the files as they were
        offset = audit_size(c)
        rb_check = run_playbook(c, ROLLBACK, extra_vars=common, check=True)
        assert rb_check.rc == 0, rb_check.stdout[-3000:]
        rb_plan = json.loads((newest("phase0_guardrails_rollback") / "plan.json").read_text())
        assert "File/" + APP in [i["object"] for i in rb_plan["items"]]
        assert git(repo, "status", "--porcelain") == ""  # the check wrote nothing
        assert offset <= audit_size(c)
        rb = run_playbook(c, ROLLBACK, extra_vars=dict(common, approve_plan=rb_plan["id"]))
        assert rb.rc == 0, rb.stdout[-3000:]
        assert (repo / APP).read_text() == ARGO_APP
        assert not (repo / OVERLAY / "kustomization.yaml").exists()
        assert not (repo / OVERLAY).exists()
        lanes = {n["metadata"]["name"]: n["metadata"]["labels"].get("workload-lane")
                 for n in c.get_json("nodes")["items"]}
        assert lanes == {"miniserver": None, "worker-1": None}
    finally:
        c.kubectl("cordon", "worker-1", check=False)
        c.kubectl("label", "node", "miniserver", "worker-1", "workload-lane-", check=False)
        c.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)
        c.loaded = None  # qdrant was changed: the next module reloads the fixture
