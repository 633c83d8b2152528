"""What tests observe of the local cluster: its audit log, its nodes' lane state, and
the evidence folders the playbooks write."""

import json
import os
import re
import subprocess
import threading
import time

from localcluster import HARNESS_AGENT

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
# the ServiceAccounts that tests run playbooks as (conftest.Identity)
OPERATOR_USERS = "system:serviceaccount:homelab-operators:"


def audit_entries(cluster, since=0):
    """Audit events written after byte offset ``since`` of the audit log. The API server
    may be writing a line while we read or take an offset: a line cut by ``since`` belongs to
    before it, and a last line without its newline is left for the next read."""
    with open(cluster.audit_log, "rb") as f:
        f.seek(max(since - 1, 0))
        data = f.read()
    if since > 0:
        data = data[data.find(b"\n") + 1:] if data[:1] != b"\n" else data[1:]
    complete = data[:data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]


def audit_size(cluster):
    return os.path.getsize(cluster.audit_log)


def writes(cluster, since, resource=None):
    """Writes our code sent after ``since`` (as cluster-admin or as a family's
    ServiceAccount in homelab-operators; not kubectl or the test harness itself
    (LocalCluster.api_call), not a dry run),
    optionally only to ``resource`` itself (no subresource).

    A dry run is recognised by ``dryRun=All`` in the URL. A DELETE with a body takes its
    options from the body and ignores the URL's, so tests of deletes also assert that
    the object is still there."""
    return [e for e in audit_entries(cluster, since)
            if e["verb"] in WRITE_VERBS
            and "dryRun=All" not in e["requestURI"]
            and (e["user"]["username"] == "homelab-admin"
                 or e["user"]["username"].startswith(OPERATOR_USERS))
            and "kubectl" not in e.get("userAgent", "")
            and not e.get("userAgent", "").startswith(HARNESS_AGENT)
            and (resource is None or (e["objectRef"].get("resource") == resource
                                      and e["objectRef"].get("subresource") is None))]


def lane_snapshot(cluster):
    """Every node's labels, taints (without timeAdded) and unschedulable."""
    out = {}
    for n in cluster.get_json("nodes")["items"]:
        out[n["metadata"]["name"]] = {
            "labels": n["metadata"].get("labels", {}),
            "taints": [{k: t[k] for k in ("key", "value", "effect") if k in t}
                       for t in n["spec"].get("taints", [])],
            "unschedulable": bool(n["spec"].get("unschedulable"))}
    return out


def newest_evidence(evidence, playbook):
    """The newest evidence folder of ``playbook`` under ``evidence``."""
    return sorted(p for p in evidence.iterdir() if p.name.endswith("-" + playbook))[-1]


def _lane_model():
    """The lane model as the guardrails role defines it: its defaults, read, not copied."""
    import yaml
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "roles", "guardrails", "defaults", "main.yml")) as f:
        d = yaml.safe_load(f)
    return {"label": d["guardrails_lane_label"], "primary": d["guardrails_primary_lane"],
            "secondary": d["guardrails_secondary_lane"], "effect": d["guardrails_lane_taint_effect"],
            "primary_node": d["guardrails_primary_node"], "secondary_node": d["guardrails_secondary_node"]}


LANES = _lane_model()
LANE_TAINT = {"key": LANES["label"], "value": LANES["secondary"], "effect": LANES["effect"]}
LANE_TOLERATION = dict(LANE_TAINT, operator="Equal")


def set_lanes(cluster, uncordon=False):
    """Where runbook 000 leaves the cluster: lanes labelled, the secondary node tainted
    (and cordoned). ``uncordon``: where runbook 002 starts, the secondary node schedulable."""
    m = LANES
    cluster.kubectl("label", "node", m["primary_node"], "%s=%s" % (m["label"], m["primary"]), "--overwrite")
    cluster.kubectl("label", "node", m["secondary_node"], "%s=%s" % (m["label"], m["secondary"]), "--overwrite")
    cluster.kubectl("taint", "node", m["secondary_node"], "%s=%s:%s" % (m["label"], m["secondary"], m["effect"]),
                    "--overwrite")
    if uncordon:
        cluster.kubectl("uncordon", m["secondary_node"])


def clear_lanes(cluster):
    """Back to the fixture: the secondary node cordoned, no lane labels or taint."""
    m = LANES
    cluster.kubectl("cordon", m["secondary_node"])
    cluster.kubectl("label", "node", m["primary_node"], m["secondary_node"], m["label"] + "-", check=False)
    cluster.kubectl("taint", "node", m["secondary_node"], "%s:%s-" % (m["label"], m["effect"]), check=False)


def evidence_runner(run_playbook, cluster, evidence, playbook, inventory="local", **defaults):
    """``run(playbook=..., check=False, **extra)``: a playbook run whose evidence (and the
    rollback's search for it) stays under ``evidence``; ``defaults`` are extra vars."""
    def run(playbook=playbook, check=False, **extra):
        extra = dict(dict(defaults, evidence_root=str(evidence)), **extra)
        return run_playbook(cluster, playbook, inventory=inventory, extra_vars=extra, check=check)
    run.evidence = evidence
    return run


def check_then_apply(run, c, playbook, name, **args):
    """The check run (zero writes), then the run that approves its plan id; returns the
    plan and the apply's evidence folder."""
    offset = audit_size(c)
    check = run(playbook, check=True, **args)
    assert check.rc == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert writes(c, offset) == [], "a check run wrote"
    plan = json.loads((newest_evidence(run.evidence, name) / "plan.json").read_text())
    apply = run(playbook, approve_plan=plan["id"], **args)
    assert apply.rc == 0, apply.stdout[-4000:]
    return plan, newest_evidence(run.evidence, name)


class PodWatch(object):
    """Every change of the pods ``selector`` picks in ``namespace``, from a watch (no polling gaps): the most pods that
    were Running at one time (Terminating ones count) and when each pod appeared and went.
    A connection the API server or the loopback drops is resumed from the last
    resourceVersion seen, so no event is lost; a resume the server refuses (410 Gone)
    would lose events and fails the test."""

    def __init__(self, cluster, namespace, selector):
        from kubernetes import client, config, watch
        self.namespace, self.selector = namespace, selector
        self.core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        self.watch = watch.Watch()
        self.pods, self.most, self.timeline, self.error, self.resumed = {}, 0, [], None, 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self._follow()
        except Exception as e:  # pylint: disable=broad-except
            self.error = e  # a broken watch must fail the test, not go unseen

    def _follow(self):
        from urllib3.exceptions import HTTPError
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        for pod in listed.items:
            self._see("LISTED", pod)
        version = listed.metadata.resource_version
        while not self.stopping:
            try:
                for ev in self.watch.stream(self.core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                                            resource_version=version, allow_watch_bookmarks=True):
                    if ev["type"] != "BOOKMARK":
                        self._see(ev["type"], ev["object"])
                    version = self.watch.resource_version or version
                return
            except HTTPError:
                if self.stopping:
                    return
                self.resumed += 1
                version = self.watch.resource_version or version
                time.sleep(0.2)

    def _see(self, kind, pod):
        name = pod.metadata.name
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = pod.status.phase
        self.timeline.append((time.time(), kind, name, pod.spec.node_name, pod.status.phase))
        self.most = max(self.most, sum(1 for phase in self.pods.values() if phase == "Running"))

    def __enter__(self):
        self.thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.watch.stop()
        assert self.error is None, "the pod watch broke: %r" % (self.error,)

    def first(self, kind, prefix):
        return min(t for t, ev, name, _n, _p in self.timeline if ev == kind and name.startswith(prefix))

    def last(self, kind, prefix):
        return max(t for t, ev, name, _n, _p in self.timeline if ev == kind and name.startswith(prefix))

    def placements(self, prefix=""):
        """The node of every pod (name starting with ``prefix``) in the order they were
        bound: a pod that moves shows up as a new pod on another node."""
        out, seen = [], set()
        for _t, _ev, name, node, _p in self.timeline:
            if node and name.startswith(prefix) and name not in seen:
                seen.add(name)
                out.append(node)
        return out


class Descheduler(object):
    """The CronJob's stand-in (kwok runs no containers): the real descheduler binary, one
    pass per ``run()``, with the policy the role put in its ConfigMap and the token of the
    ServiceAccount the role bound, so the deployed policy and RBAC are what is tested.
    ``policy`` (a dict) replaces the deployed policy, to show what another one does."""

    EVICTED = re.compile(r'"Evicted pod"[^\n]*?pod="([^"]+)"')

    def __init__(self, cluster, workdir, namespace="kube-system", name="descheduler", policy=None):
        self.cluster, self.passes = cluster, []
        workdir.mkdir(parents=True, exist_ok=True)
        self.policy = workdir / "policy.yaml"
        if policy is None:
            cm = cluster.get_json("configmap", "-n", namespace, name + "-policy")
            self.policy.write_text(cm["data"]["policy.yaml"])
        else:
            self.policy.write_text(json.dumps(policy))
        token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()
        server = cluster.server
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "d",
            "clusters": [{"name": "c", "cluster": {"server": server,
                                                   "certificate-authority": str(cluster.pki / "ca.crt")}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "d", "context": {"cluster": "c", "user": name}}]}))
        self._thread, self._stop = None, threading.Event()

    def run(self):
        """One pass; returns the pods it evicted ("namespace/name")."""
        proc = subprocess.run([self.cluster.binary("descheduler"), "--kubeconfig=%s" % self.kubeconfig,
                               "--policy-config-file=%s" % self.policy, "--secure-port=0", "--v=3"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        evicted = self.EVICTED.findall(proc.stderr)
        self.passes.append((time.time(), evicted))
        return evicted

    def every(self, seconds):
        """Run a pass every ``seconds`` in the background until ``stop()``."""
        def loop():
            while not self._stop.is_set():
                self.run()
                self._stop.wait(seconds)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(150)


def custom_stats(stdout):
    """The set_stats data a run published (what AWX hands to the next workflow nodes), as
    the default callback prints it with ANSIBLE_SHOW_CUSTOM_STATS: ``RUN: {...}`` after
    ``CUSTOM STATS``, in JSON or YAML."""
    import yaml
    tail = stdout.rsplit("CUSTOM STATS", 1)
    if len(tail) < 2:
        return None
    text = tail[1].split("RUN:", 1)[1].strip() if "RUN:" in tail[1] else ""
    data = yaml.safe_load(text) if text else {}
    return {k: str(v) for k, v in data.items()}  # a plan id of digits only stays a string
