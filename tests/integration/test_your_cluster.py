"""README.md's "Use it on your cluster", done as a person does it, on a cluster whose nodes
are not the runbooks' (node-a and node-b instead of miniserver and worker-1): a copy of
inventories/homelab-two-node in a folder of one's own, the node names and the kubeconfig set
in its group_vars, the read-only verification first, then Phase 0 check -> apply (the plan id
read from the check's output) -> rollback check -> rollback apply, with the evidence in
./evidence of that folder. And what a person reads when the node names are not set, the CA
is the wrong one, the token is refused, or the identity is bound to the wrong rbac/ role."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from localcluster import HARNESS_AGENT, _pki
from observe import LANES, audit_entries, audit_size, lane_snapshot, writes

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"miniserver": "node-a", "worker-1": "node-b"}  # the two-node fixture, renamed
PRIMARY, SECONDARY = NAMES["miniserver"], NAMES["worker-1"]
LANE_TAINT = {"key": LANES["label"], "value": LANES["secondary"], "effect": LANES["effect"]}


@pytest.fixture(scope="module")
def your_cluster(cluster, tmp_path_factory):
    """The two-node fixture with its nodes renamed everywhere (nodes, nodeName, affinities)."""
    folder = tmp_path_factory.mktemp("fixture") / "two-node-renamed"
    folder.mkdir()
    for f in sorted((ROOT / "tests" / "fixtures" / "two-node").glob("*.yaml")):
        text = f.read_text()
        for old, new in NAMES.items():
            text = re.sub(r"\b%s\b" % re.escape(old), new, text)
        (folder / f.name).write_text(text)
    cluster.load_fixture(folder)
    cluster.loaded = "two-node renamed to " + ", ".join(NAMES.values())
    assert sorted(n["metadata"]["name"] for n in cluster.get_json("nodes")["items"]) == [PRIMARY, SECONDARY]
    return cluster


@pytest.fixture
def home(tmp_path):
    """A folder of one's own with a copy of the inventory, as README.md says, unedited."""
    shutil.copytree(ROOT / "inventories" / "homelab-two-node", tmp_path / "inventories" / "my-cluster")
    return tmp_path


def set_vars(home, **values):
    """Edit the copy's group_vars/all.yml as a person does: the named variables get values."""
    path = home / "inventories" / "my-cluster" / "group_vars" / "all.yml"
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


def ansible_playbook(home, playbook, *args, env=None):
    """``ansible-playbook -i inventories/my-cluster <checkout>/playbooks/<playbook> ...`` started
    in ``home`` from a shell: no KUBECONFIG nor K8S_AUTH_* unless ``env`` gives them, no
    terminal (the gate takes approve_plan only)."""
    # a person's shell: none of the test run's ANSIBLE_* (make exports some), K8S_AUTH_*,
    # HOMELAB_* or KUBECONFIG
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("K8S_AUTH_", "HOMELAB_", "ANSIBLE_")) and k != "KUBECONFIG"}
    environ.update(PWD=str(home), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    environ.update(env or {})
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "inventories/my-cluster",
           str(ROOT / "playbooks" / playbook), *args]
    return subprocess.run(cmd, env=environ, cwd=home, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)


def failure(run):
    """The message of the first task (or loop item) that failed, as the person reads it."""
    m = re.search(r"(?:FAILED!|failed: \[localhost\] \(item=[^)]*\)) => (\{.*\})\s*$", run.stdout, re.M)
    assert m, run.stdout[-3000:]
    return json.loads(m.group(1))["msg"]


def first_request(msg):
    """A message of kube.py with the action of the first request the module makes made
    the same: discovery ("Cannot reach the Kubernetes API", when the client is made without
    a cached discovery) or the first LIST."""
    return re.sub(r"^Cannot (reach the Kubernetes API|list \w+):", "Cannot ...:", msg)


def plan_id(run):
    """The plan id the check run tells the person to approve."""
    ids = set(re.findall(r"-e approve_plan=([0-9a-f]+)", run.stdout))
    assert len(ids) == 1, run.stdout[-3000:]
    return ids.pop()


def evidence_folders(home, playbook):
    return sorted(p for p in (home / "evidence").iterdir() if p.name.endswith("-" + playbook))


def test_phase0_on_a_cluster_with_other_node_names(your_cluster, home):
    c = your_cluster
    set_vars(home, homelab_primary_node=PRIMARY, homelab_secondary_node=SECONDARY,
             homelab_kubeconfig=str(c.kubeconfig))
    before = lane_snapshot(c)
    try:
        # the read-only verification first: it names the user's nodes, writes nothing
        offset = audit_size(c)
        verify = ansible_playbook(home, "phase0_verify.yml")
        assert verify.returncode == 0, verify.stdout[-3000:]
        assert f"{SECONDARY} runs no pod that a DaemonSet does not own" in verify.stdout
        assert "miniserver" not in verify.stdout and "worker-1" not in verify.stdout
        assert writes(c, offset) == [] and lane_snapshot(c) == before

        # Phase 0: check, then apply the plan id the check printed
        check = ansible_playbook(home, "phase0_guardrails.yml", "--check", "--diff")
        assert check.returncode == 0, check.stdout[-3000:]
        assert writes(c, offset) == [] and lane_snapshot(c) == before
        plan = json.loads((evidence_folders(home, "phase0_guardrails")[-1] / "plan.json").read_text())
        assert [i["object"] for i in plan["items"]] == [
            "DaemonSet/engine-image-ei-db6c2b6f", "DaemonSet/longhorn-csi-plugin", "DaemonSet/metallb-speaker",
            f"Node/{PRIMARY}", f"Node/{SECONDARY}"]
        apply = ansible_playbook(home, "phase0_guardrails.yml", "-e", "approve_plan=" + plan_id(check))
        assert apply.returncode == 0, apply.stdout[-3000:]
        after = lane_snapshot(c)
        assert after[PRIMARY]["labels"][LANES["label"]] == LANES["primary"]
        assert LANE_TAINT not in after[PRIMARY]["taints"] and not after[PRIMARY]["unschedulable"]
        assert after[SECONDARY]["labels"][LANES["label"]] == LANES["secondary"]
        assert LANE_TAINT in after[SECONDARY]["taints"] and after[SECONDARY]["unschedulable"]

        # rollback: check (it finds the apply in ./evidence by itself), then apply its plan id
        rb_check = ansible_playbook(home, "phase0_guardrails_rollback.yml", "--check")
        assert rb_check.returncode == 0, rb_check.stdout[-3000:]
        assert lane_snapshot(c) == after
        rollback = ansible_playbook(home, "phase0_guardrails_rollback.yml", "-e", "approve_plan=" + plan_id(rb_check))
        assert rollback.returncode == 0, rollback.stdout[-3000:]
        assert lane_snapshot(c) == before
        assert len(evidence_folders(home, "phase0_guardrails_rollback")) == 2
    finally:
        c.kubectl("label", "node", PRIMARY, SECONDARY, LANES["label"] + "-", check=False)
        c.kubectl("taint", "node", SECONDARY, LANES["label"] + ":" + LANES["effect"] + "-", check=False)


def test_node_names_not_set_stop_before_any_request(your_cluster, home):
    set_vars(home, homelab_kubeconfig=str(your_cluster.kubeconfig))
    offset = audit_size(your_cluster)
    for playbook in ("phase0_verify.yml", "phase0_guardrails.yml"):
        run = ansible_playbook(home, playbook, "--check")
        assert run.returncode != 0
        assert "homelab_primary_node is not set: give the name of your server-1 node (kubectl get nodes), " \
               "the one that runs everything today, in your inventory (group_vars/all.yml) or as " \
               "HOMELAB_PRIMARY_NODE in the environment" in failure(run)
    assert [e for e in audit_entries(your_cluster, offset)
            if e["user"]["username"] == "homelab-admin"
            and not e.get("userAgent", "").startswith(("kubectl", HARNESS_AGENT))] == []
    # the environment variables name them as well as the inventory does
    run = ansible_playbook(home, "phase0_verify.yml",
                           env={"HOMELAB_PRIMARY_NODE": PRIMARY, "HOMELAB_SECONDARY_NODE": SECONDARY})
    assert run.returncode == 0, run.stdout[-3000:]


def token_env(cluster, token, ca):
    """What AWX's Kubernetes credential or a Semaphore environment sets."""
    return {"K8S_AUTH_HOST": cluster.server, "K8S_AUTH_API_KEY": token, "K8S_AUTH_SSL_CA_CERT": str(ca),
            "K8S_AUTH_VERIFY_SSL": "true"}


def test_a_wrong_ca_is_named_with_the_options_that_fix_it(your_cluster, home, identity, tmp_path):
    c = your_cluster
    set_vars(home, homelab_primary_node=PRIMARY, homelab_secondary_node=SECONDARY)
    _pki(tmp_path / "another-cluster")  # a CA that did not sign this API server's certificate
    wrong_ca = tmp_path / "another-cluster" / "ca.crt"
    run = ansible_playbook(home, "phase0_verify.yml", env=token_env(c, identity("audit").token, wrong_ca))
    assert run.returncode != 0
    # the first request that meets it: discovery (when the client makes it) or the first LIST;
    # OpenSSL's reason: the same issuer name signed by another key, or an unknown issuer
    msg, reasons = re.subn(r"\((certificate signature failure|unable to get local issuer certificate)\); trusted:",
                           "(<reason>); trusted:", failure(run))
    assert reasons == 1, msg
    assert first_request(msg) == (
        f"Cannot ...: the server's certificate could not be verified at {c.server} "
        f"(<reason>); trusted: the CA file {wrong_ca} (K8S_AUTH_SSL_CA_CERT). "
        "Give the CA that signed the API server's certificate: K8S_AUTH_SSL_CA_CERT=<ca.crt> (the ca_cert "
        "option), or certificate-authority in the kubeconfig. Only on a test cluster: validate_certs: false "
        "(K8S_AUTH_VERIFY_SSL=false) turns the check off.")


def test_a_refused_token_names_the_credential_in_use(your_cluster, home):
    c = your_cluster
    set_vars(home, homelab_primary_node=PRIMARY, homelab_secondary_node=SECONDARY)
    # the token of a ServiceAccount deleted since: the API server no longer accepts it
    c.kubectl("create", "namespace", "homelab-operators", check=False)
    c.kubectl("create", "serviceaccount", "homelab-gone", "-n", "homelab-operators", check=False)
    token = c.kubectl("create", "token", "homelab-gone", "-n", "homelab-operators").stdout.strip()
    c.kubectl("delete", "serviceaccount", "homelab-gone", "-n", "homelab-operators")
    run = ansible_playbook(home, "phase0_verify.yml", env=token_env(c, token, c.pki / "ca.crt"))
    assert run.returncode != 0
    msg = failure(run)
    assert first_request(msg) == (
        f"Cannot ...: the API server at {c.server} refused the credential (HTTP 401 Unauthorized). "
        f"In use: the bearer token in K8S_AUTH_API_KEY for K8S_AUTH_HOST {c.server}. A token may have expired "
        "(those of kubectl create token do, after --duration): make a new one, and check that it belongs to "
        "this cluster."), msg
    assert token not in run.stdout + run.stderr


def test_the_wrong_rbac_role_names_who_what_and_the_binding(your_cluster, home, identity):
    c = your_cluster
    set_vars(home, homelab_primary_node=PRIMARY, homelab_secondary_node=SECONDARY)
    audit = identity("audit")  # bound to the read-only role, running the guardrails playbook
    before = lane_snapshot(c)
    run = ansible_playbook(home, "phase0_guardrails.yml", "--check", "--diff",
                           env=token_env(c, audit.token, c.pki / "ca.crt"))
    assert run.returncode != 0
    msg = failure(run)
    assert msg.startswith(
        f"nodes[0] ({PRIMARY}): Cannot update Node {PRIMARY}: forbidden (HTTP 403): {audit.username} may not patch nodes at the "
        "cluster scope. Bind it to the ClusterRole of the family of the playbook you run, from rbac/ "
        "(homelab-k8s-ha-<family> in rbac/<family>.yml; families: audit, guardrails, core-platform, "
        "app-migration, active-passive, capi-rollout; operate/catalog.yml names each playbook's family, "
        "rbac/README.md shows how): kubectl apply -f rbac/<family>.yml, then kubectl create clusterrolebinding "
        f"{audit.sa}-<family> --clusterrole=homelab-k8s-ha-<family> "
        f"--serviceaccount=homelab-operators:{audit.sa}. The API server said: "), msg
    assert lane_snapshot(c) == before
