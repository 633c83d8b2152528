"""rbac/: one ClusterRole per playbook family of operate/catalog.yml, read-only where it
must be, and no wildcard anywhere. The integration tests prove the roles suffice (the
playbooks run as these ServiceAccounts) and that the audit role is refused writes."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
READ = {"get", "list", "watch"}


def roles():
    out = {}
    for p in sorted((ROOT / "rbac").glob("*.yml")):
        docs = [d for d in yaml.safe_load_all(p.read_text()) if d]
        assert len(docs) == 1 and docs[0]["kind"] == "ClusterRole", p
        out[p.stem] = docs[0]
    return out


def test_every_family_of_the_catalog_has_its_cluster_role_and_no_other():
    catalog = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
    families = {e["family"] for e in catalog["homelab_operate_playbooks"]}
    found = roles()
    assert set(found) == families
    for family, role in found.items():
        assert role["metadata"]["name"] == "homelab-k8s-ha-" + family
        assert role["metadata"]["labels"]["homelab.k8s-ha/family"] == family


def test_no_wildcards_and_the_audit_role_only_reads():
    for family, role in roles().items():
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (family, rule)
    for rule in roles()["audit"]["rules"]:
        assert set(rule["verbs"]) <= READ, rule


def test_only_the_families_that_need_them_may_write_nodes_or_delete():
    def verbs(family, group, resource):
        return set().union(*[set(r["verbs"]) for r in roles()[family]["rules"]
                             if group in r["apiGroups"] and resource in r["resources"]])
    assert "patch" in verbs("guardrails", "", "nodes")
    # capi-rollout puts the remediated node's labels and taints back (a patch), and never
    # creates or deletes a Node (CAPI deletes it with the Machine)
    assert verbs("capi-rollout", "", "nodes") == READ | {"patch"}
    assert verbs("capi-rollout", "cluster.x-k8s.io", "machines") == READ | {"delete"}
    assert verbs("guardrails", "apps", "deployments") <= READ
    # the node agents' toleration of the lane taint: patch, never create or delete
    assert verbs("guardrails", "apps", "daemonsets") == READ | {"patch"}
    assert not [r for f, role in roles().items() for r in role["rules"] if "escalate" in r["verbs"]]
    escalate = [r for r in roles()["active-passive"]["rules"] if "bind" in r["verbs"]]
    # the descheduler's ClusterRole and the failback CronJob's, by the names the role gives
    # them (its defaults, read, not copied)
    defaults = yaml.safe_load((ROOT / "roles" / "active_passive" / "defaults" / "main.yml").read_text())
    names = [defaults["active_passive_descheduler"]["name"], defaults["active_passive_failback_cronjob"]["name"]]
    assert escalate and all(r.get("resourceNames") == names for r in escalate)


def _covers(rules, group, resource, verb, name=None):
    """Whether ``rules`` grant ``verb`` on ``group/resource`` (named ``name``), as RBAC
    matches them: a rule with resourceNames grants only those names."""
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               and (not r.get("resourceNames") or name in r["resourceNames"]) for r in rules)


def test_the_active_passive_role_holds_every_permission_of_the_roles_it_creates():
    """The API server lets a subject create a ClusterRole only with permissions it holds (a 403
    "attempting to grant RBAC permissions not currently held" otherwise): the descheduler's
    and the guarded failback CronJob's."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.active_passive import (
        FAILBACK_RUNNER_RULES, descheduler_rbac_rules)
    mine = roles()["active-passive"]["rules"]
    missing = [(g, res, v, n) for rule in descheduler_rbac_rules() + FAILBACK_RUNNER_RULES
               for g in rule["apiGroups"] for res in rule["resources"]
               for v in rule["verbs"] for n in (rule.get("resourceNames") or [None])
               if not _covers(mine, g, res, v, n)]
    assert missing == []
    # and the check itself can fail: without the namespaces read, it is missing
    trimmed = [dict(r, resources=[x for x in r["resources"] if x != "namespaces"]) for r in mine]
    assert not _covers(trimmed, "", "namespaces", "list")


# The modules that, finding no Longhorn object at all, GET the Namespace to tell a
# namespace that does not exist from an empty one (plugins/module_utils/longhorn.py,
# missing_namespace): every family whose playbooks run one may get namespaces.
ASK_ABOUT_THE_NAMESPACE = {"longhorn_settings", "longhorn_volume_replicas", "app_gates_info", "deployment_handover"}


def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _modules_run(playbook):
    """The collection's modules a playbook runs: its included roles' task files (tasks_from),
    and the files those include (a templated name matches every file it can be)."""
    import glob
    import re
    plays = yaml.safe_load((ROOT / "playbooks" / (playbook + ".yml")).read_text())
    todo = []
    for play in plays:
        for task in _tasks(play.get("tasks")):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                spec = task.get(key)
                if spec and spec["name"].startswith("homelab.k8s_ha."):
                    role = spec["name"].split(".")[-1]
                    todo.append(ROOT / "roles" / role / "tasks" / (spec.get("tasks_from", "main") + ".yml"))
    seen, modules = set(), set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        for task in _tasks(yaml.safe_load(path.read_text())):
            modules |= {k.split(".")[-1] for k in task if k.startswith("homelab.k8s_ha.")}
            spec = task.get("ansible.builtin.include_tasks") or task.get("ansible.builtin.import_tasks")
            if spec:
                name = spec["file"] if isinstance(spec, dict) else spec
                todo += [Path(p) for p in glob.glob(str(path.parent / re.sub(r"\{\{.*?\}\}", "*", name)))]
    return modules


def test_the_families_that_run_a_longhorn_module_may_get_namespaces():
    catalog = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
    needs = {}
    for entry in catalog["homelab_operate_playbooks"]:
        if _modules_run(entry["playbook"]) & ASK_ABOUT_THE_NAMESPACE:
            needs.setdefault(entry["family"], []).append(entry["playbook"])
    # the walk finds them (the check itself can fail)
    assert {"guardrails", "core-platform", "app-migration"} <= set(needs), needs
    for family in needs:
        assert _covers(roles()[family]["rules"], "", "namespaces", "get"), (family, needs[family])
    # and only get: a namespace is never listed, created or changed for this
    for family in ("guardrails", "core-platform", "app-migration"):
        assert set().union(*[set(r["verbs"]) for r in roles()[family]["rules"]
                             if "" in r["apiGroups"] and "namespaces" in r["resources"]]) == {"get"}


def test_every_family_that_edits_live_may_read_who_manages_the_objects():
    """workload_fields reads each target's manager (managers.MANAGER_READS) before planning:
    every family whose playbooks call it holds those reads, and only reads."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.managers import MANAGER_READS
    users = sorted({p.parts[-3].replace("_", "-") for p in (ROOT / "roles").glob("*/tasks/*.yml")
                    if "homelab.k8s_ha.workload_fields:" in p.read_text()})
    assert users == ["active-passive", "app-migration", "core-platform", "guardrails"]
    for family in users:
        rules = roles()[family]["rules"]
        missing = [(g, res) for rule in MANAGER_READS for g in rule["apiGroups"] for res in rule["resources"]
                   if not _covers(rules, g, res, "get")]
        assert missing == [], family


def test_the_families_that_may_suspend_managers_patch_them_and_only_patch():
    """<role>_managed: suspend writes the managers' own objects (managers.SUSPENDS): every
    family whose role has that variable patches them, and nothing else of theirs."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.managers import MANAGER_READS, SUSPENDS
    families = sorted(p.parts[-3].replace("_", "-") for p in (ROOT / "roles").glob("*/defaults/main.yml")
                      if "%s_managed:" % p.parts[-3] in p.read_text())
    assert families == ["active-passive", "core-platform", "guardrails"]
    suspendable = [r for r in MANAGER_READS if r["resources"][0].rstrip("s").lower() in
                   [k.lower() for k in SUSPENDS]]
    assert len(suspendable) == len(SUSPENDS)
    for family in families:
        rules = roles()[family]["rules"]
        for rule in suspendable:
            group, resource = rule["apiGroups"][0], rule["resources"][0]
            assert _covers(rules, group, resource, "patch"), (family, resource)
            assert not any(_covers(rules, group, resource, v) for v in ("create", "update", "delete")), resource
