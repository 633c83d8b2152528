"""The safety proof matrix on the local cluster (issue 18): every mutating playbook, one row
per scenario, each row run by ``proof``:

  check (0 writes) -> apply -> no surprise pod -> the same apply again (0 writes, an empty
  plan) -> [the scenario's own steps] -> rollback check (0 writes) -> rollback -> every object
  the apply or the rollback wrote equal to its snapshot from before the check, and every
  file of the GitOps checkout as before.

Proofs nest: a stage 2 is proved inside stage 1's, and compared with the state stage 1 left.
The rows are collected for the session; conftest prints them as a table at the end and
writes it to .local/safety-matrix.md (docs/testing.md has a copy). The comparison itself is
tests/safety_proof.py, pure, unit tested."""

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from observe import audit_size, newest_evidence, writes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from safety_proof import (  # noqa: E402  pylint: disable=wrong-import-position
    Row, files_not_restored, not_restored, off_limits, pod_names, surprise_pods, table)

MATRIX = []
# What a rollback does not restore by design: pods (controllers make new ones), what
# controllers and the lock write, and the events.
NOT_RESTORED = {("", "pods"), ("", "events"), ("events.k8s.io", "events"), ("coordination.k8s.io", "leases"),
                ("", "endpoints"), ("discovery.k8s.io", "endpointslices"), ("apps", "replicasets"),
                ("apps", "controllerrevisions"), ("batch", "jobs"), ("", "secrets"),
                ("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews"),
                ("authorization.k8s.io", "selfsubjectaccessreviews"), ("authorization.k8s.io", "selfsubjectrulesreviews")}


def _group(api_version):
    """The API group of ``v1`` or ``apps/v1`` ("" for the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


class Objects(object):
    """Every object the cluster serves of a kind a playbook could write (one kubectl get),
    keyed by (group, resource, namespace, name), as the audit log names them."""

    def __init__(self, cluster):
        self.c = cluster
        self.kinds = {}  # (group, Kind) -> resource
        listed = []
        for line in cluster.kubectl("api-resources", "--verbs=list,update", "--no-headers").stdout.splitlines():
            parts = line.split()
            resource, group, kind = parts[0], _group(parts[-3]), parts[-1]
            if (group, resource) in NOT_RESTORED:
                continue
            self.kinds[(group, kind)] = resource
            listed.append(resource + ("." + group if group else ""))
        self.listed = ",".join(sorted(listed))

    def snapshot(self):
        out = {}
        for obj in self.c.get_json(self.listed, "-A")["items"]:
            group, meta = _group(obj["apiVersion"]), obj["metadata"]
            out[(group, self.kinds.get((group, obj["kind"]), obj["kind"]), meta.get("namespace", ""), meta["name"])] = obj
        return out

    @staticmethod
    def written(entries):
        """The objects that ``entries`` (audit write events) wrote, as snapshot keys."""
        out = set()
        for e in entries:
            ref = e["objectRef"]
            group = ref.get("apiGroup", "")
            if ref.get("subresource") or (group, ref.get("resource")) in NOT_RESTORED or not ref.get("name"):
                continue
            out.add((group, ref["resource"], ref.get("namespace", ""), ref["name"]))
        return out


def _tree(folder):
    if not folder or not Path(folder).is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_text(errors="replace") for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and ".git" not in p.parts}


def off_limits_now(c):
    """The pods off limits now (safety_proof.off_limits), for ``surprise_pods``."""
    return off_limits(c.get_json("pods", "-A")["items"], c.get_json("nodes")["items"])


def pods_now(c):
    """``ns/pod`` of every pod now (safety_proof.pod_names), for ``surprise_pods``."""
    return pod_names(c.get_json("pods", "-A")["items"])


def said(result):
    """What a failed run says: each failed task with the lines after it, then the tail."""
    out = result.stdout
    starts = [m.start() for m in re.finditer(r"^(?:fatal|failed): ", out, re.M)]
    return "\n...\n".join([out[i:i + 3000] for i in starts[:3]] + [out[-2000:]])


def described(entries):
    """Audit write events as the matrix lists them: ``verb resource namespace/name``."""
    return ["%s %s %s/%s" % (e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("namespace", ""),
                             e["objectRef"].get("name", "")) for e in entries]


def _named(keys):
    """name -> key, the name as a row shows it: ``deployments kube-system/coredns``."""
    return dict(("%s %s/%s" % (k[1], k[2], k[3]) if k[2] else "%s %s" % (k[1], k[3]), k) for k in keys)


class Proof(object):
    """What a scenario's body can read: the check's plan, the apply's run and evidence folder."""

    def __init__(self, row):
        self.row = row
        self.plan = None
        self.check = None
        self.check_dir = None
        self.apply = None
        self.run_dir = None
        self.again = None
        self.rollback_plan = None
        self.undo = None


@contextmanager
def proof(run, c, scenario, playbook, name, rollback=None, rollback_name=None, repo=None, again=True,
          exception="", before_apply=None, **args):
    """Prove ``playbook`` (evidence folders named ``name``) with ``args`` on ``c``; the body
    of the ``with`` runs with the change applied. ``rollback`` None: the scenario has no
    rollback (a documented exception, ``exception`` says why). ``again`` False: the
    repeat is the scenario's own (the drill, a failback pass). ``before_apply(proof)``
    runs between the check and the apply (a refused approval, for example)."""
    row = Row(scenario, exception)
    MATRIX.append(row)  # in the order the scenarios start; a row that fails shows what it saw
    objects = Objects(c)  # the kinds served now (a test may add or remove CRDs)
    before, files_before, pods_before = objects.snapshot(), _tree(repo), pods_now(c)
    start = audit_size(c)
    p = Proof(row)

    p.check = run(playbook, check=True, **args)
    assert p.check.rc == 0, said(p.check) + p.check.stderr[-2000:]
    row.check_writes = described(writes(c, start))
    p.check_dir = newest_evidence(run.evidence, name)
    p.plan = json.loads((p.check_dir / "plan.json").read_text())
    if before_apply:
        before_apply(p)
    p.apply = run(playbook, approve_plan=p.plan["id"], **args)
    assert p.apply.rc == 0, said(p.apply)
    p.run_dir = newest_evidence(run.evidence, name)
    row.surprise = surprise_pods(pods_before, off_limits_now(c))
    if again:
        offset = audit_size(c)
        p.again = repeat = run(playbook, approve_plan=p.plan["id"], **args)
        assert repeat.rc == 0, "the same apply again failed:\n" + said(repeat)
        repeat_plan = json.loads((newest_evidence(run.evidence, name) / "plan.json").read_text())
        row.again_writes = described(writes(c, offset)) + ["planned again: " + i["object"] for i in repeat_plan["items"]]
    ok = False
    try:
        yield p
        ok = True
    finally:
        if rollback and ok:
            offset = audit_size(c)
            undo_check = run(rollback, check=True, rollback_from=str(p.run_dir))
            assert undo_check.rc == 0, said(undo_check)
            row.rollback_check_writes = described(writes(c, offset))
            p.rollback_plan = json.loads((newest_evidence(run.evidence, rollback_name) / "plan.json").read_text())
            p.undo = run(rollback, rollback_from=str(p.run_dir), approve_plan=p.rollback_plan["id"])
            assert p.undo.rc == 0, said(p.undo)
            written = _named(Objects.written(writes(c, start)))  # name -> snapshot key
            after = objects.snapshot()
            row.rollback_diff = not_restored(
                dict((n, before[k]) for n, k in written.items() if k in before),
                dict((n, after[k]) for n, k in written.items() if k in after), written)
            row.rollback_diff += files_not_restored(files_before, _tree(repo))
        if ok:
            assert not row.failures(), "%s: %s" % (scenario, "; ".join(row.failures()))


def markdown():
    """The session's rows as docs/testing.md shows them, by scenario (the workers of a
    parallel run finish theirs in any order)."""
    return table(sorted(MATRIX, key=lambda r: r.scenario))


def record(scenario, exception="", **counts):
    """A row for a scenario whose steps are its own (the drill, a failback pass, a CAPI
    remediation that replaces a Machine): ``counts`` are the lists Row has
    (check_writes, again_writes, rollback_check_writes, rollback_diff, surprise); a step
    left out shows as n/a, and ``exception`` says why."""
    row = Row(scenario, exception)
    for name, value in counts.items():
        if not hasattr(row, name):
            raise TypeError("record: no column %s" % name)
        setattr(row, name, value)
    MATRIX.append(row)
    assert not row.failures(), "%s: %s" % (scenario, "; ".join(row.failures()))
    return row
