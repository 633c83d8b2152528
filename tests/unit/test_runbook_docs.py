"""docs/<runbook>.md: each page maps every step of its runbook to the code and says how to
operate it. The table under "## Runbook steps in the code" must name playbooks and role
task files that exist, task names that exist in those files, and role task files the
playbook really reaches; every ansible-playbook command under "## Operate it" must name
an existing playbook and inventory. The runbooks themselves live outside the repository,
so the step labels each page must cover are written down here, taken from the runbooks."""

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import doc_commands  # noqa: E402  pylint: disable=wrong-import-position
HEADER = ["Runbook step", "Playbook", "Role tasks", "Task"]
NOT_AUTOMATED = re.compile(r"^\(not automated: .+\)$")
BLOCK_KEYS = ("block", "rescue", "always")
INCLUDE_ROLE = ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role")
INCLUDE_TASKS = ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "include_tasks", "import_tasks")

# doc -> (runbook, least number of rows, the runbook's step labels a row must start with)
DOCS = {
    "phase0_guardrails.md": ("000", 12, [
        "Evidence: nodes", "Evidence: zero non-DaemonSet pods", "Evidence: scan for tolerations",
        "1) Lane labels", "2) Lane taint", "3) Overlay", "4) Route the Argo CD app", "Stop conditions",
        "Verification after any approved apply", "PR plan, commits 1 and 2", "PR plan, commit 3"]),
    "core_platform.md": ("001", 14, [
        "Preconditions", "2.1 Detect the datastore", "2.1 Decision tree", "2.1 Health checks", "2.1 Rollback",
        "2.2 Ingress", "2.3 CoreDNS", "2.3 Kubelet", "2.4 Discovery", "2.4 Global defaults",
        "2.4 Per-volume reconciliation", "2.4 Verification", "2.5 Simulated node loss", "2.5 Rollback", "Appendix"]),
    "app_migration.md": ("002", 20, [
        "3.1 Baseline health", "3.1 Data model classification", "3.1 Storage coupling", "3.1 Verify Longhorn safety",
        "3.1 Guardrails sanity", "3.2 A, rollout step 1", "3.2 A, rollout step 2", "3.2 A, rollout step 3",
        "3.2 A, rollout step 4", "3.2 A, rollback", "3.2 B, option 2", "3.2 B, failover", "3.2 B, rollback",
        "3.2 C", "3.3 Pre-checks", "3.3 Opt-in gate", "3.3 Optional controlled failover test", "3.3 Bake time",
        "3.3 Sign-off", "3.3 Rollback plan", "Immediate actions", "PR template, commit 1",
        "PR template, commit 2", "PR template, commit 3"]),
    "active_passive.md": ("003", 18, [
        "Preparation", "Phase 1", "Phase 2", "Phase 3", "Phase 4: the descheduler", "Phase 4: automatic failback",
        "Phase 5, scenario 1", "Phase 5, scenario 2", "Phase 5, scenario 3", "Phase 5, scenario 4",
        "Phase 6, faster failover", "Phase 6, faster failback", "Phase 6, PodDisruptionBudget", "Phase 6 monitoring",
        "Layer 4", "Rollback, phase 4", "Rollback, phase 3", "Rollback, phases 2 and 1"]),
    "capi_rollout.md": ("004", 14, [
        "TalosControlPlane", "MachineDeployment", "Runtime guard", "Workflow mutex", "1. Select", "2. Resolve",
        "3. Global LINSTOR health", "3. `linstor node evacuate", "4. Delete machine", "5. `talosctl reboot",
        "6. `linstor node restore", "6. Wait until LINSTOR is settled", "7. Continue polling", "Trigger model",
        "Sync waves", "Validation", "Expected scenarios"]),
}


def section(text, title):
    """The body of the one level-2 section called ``title``."""
    heads = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    found = [h for h in heads if text[h:].split("\n", 1)[0].strip() == "## " + title]
    assert len(found) == 1, f"exactly one '## {title}', found {len(found)}"
    later = [h for h in heads if h > found[0]]
    return text[found[0]:later[0] if later else len(text)]


def cells(line):
    """A Markdown table row's cells (``\\|`` is an escaped bar, not a separator)."""
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [c.strip().replace("\\|", "|") for c in parts[1:-1]]


def unquote(cell):
    return cell[1:-1] if len(cell) > 1 and cell.startswith("`") and cell.endswith("`") else cell


def step_rows(text):
    """The rows of the section's first table (its header and separator left out)."""
    body = section(text, "Runbook steps in the code").splitlines()
    start = next((i for i, ln in enumerate(body) if ln.startswith("|")), len(body))
    end = next((i for i in range(start, len(body)) if not body[i].startswith("|")), len(body))
    lines = body[start:end]
    assert lines and cells(lines[0]) == HEADER, lines[:1]
    assert set(cells(lines[1])[0]) <= set("-:"), "the second row must be the separator"
    rows = [[unquote(c) for c in cells(ln)] for ln in lines[2:]]
    for row in rows:
        assert len(row) == 4, row
    return rows


def walk(tasks):
    """Every task, block and include of a task list, blocks/rescue/always included."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in BLOCK_KEYS:
            yield from walk(task.get(key))


def load(path):
    return yaml.safe_load((ROOT / path).read_text()) or []


def task_names(path):
    return {t["name"] for t in walk(load(path)) if "name" in t}


def role_file(args):
    """roles/<role>/tasks/<tasks_from>.yml of an include_role's arguments."""
    role = args["name"].split(".")[-1]
    tasks_from = str(args.get("tasks_from", "main")).removesuffix(".yml")
    return f"roles/{role}/tasks/{tasks_from}.yml"


def includes(path, tasks):
    """The role task files ``tasks`` (of the file ``path``) include. A templated file name
    matches every file of the role it could name."""
    for task in walk(tasks):
        for key in INCLUDE_ROLE:
            if key in task:
                yield role_file(task[key])
        for key in INCLUDE_TASKS:
            if key in task:
                arg = task[key]
                name = arg["file"] if isinstance(arg, dict) else arg
                pattern = re.sub(r"\{\{.*?\}\}", "*", name)
                yield from (str(p.relative_to(ROOT)) for p in (ROOT / path).parent.glob(pattern))


def reachable(playbook):
    """Every role task file the playbook runs, through include_role and include_tasks."""
    todo = [f for play in load(playbook) for key in ("pre_tasks", "tasks", "post_tasks")
            for f in includes(playbook, play.get(key))]
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen or not (ROOT / path).is_file():
            continue
        seen.add(path)
        todo.extend(includes(path, load(path)))
    return seen


def commands(body):
    """The ansible-playbook commands of the ```bash blocks of a section, as word lists
    (tests/doc_commands.py joins continuation lines and quotes that span lines)."""
    return [shlex.split(command, comments=True)
            for block in re.findall(r"^```bash\n(.*?)^```", body, re.S | re.M)
            for command in doc_commands.commands(block) if command.startswith("ansible-playbook")]


@pytest.fixture(name="docs", scope="module")
def fixture_docs():
    return {name: (ROOT / "docs" / name).read_text() for name in DOCS}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_row_names_existing_code(docs, name):
    rows = step_rows(docs[name])
    for step, playbook, tasks_file, task in rows:
        assert step, (name, playbook)
        if task.startswith("(not automated"):
            assert NOT_AUTOMATED.match(task), (name, step, task)
            assert (playbook, tasks_file) == ("-", "-"), (name, step)
            continue
        assert re.fullmatch(r"playbooks/[a-z0-9_]+\.yml", playbook) and (ROOT / playbook).is_file(), (name, step, playbook)
        assert re.fullmatch(r"roles/[a-z_]+/tasks/[a-z0-9_]+\.yml", tasks_file) and (ROOT / tasks_file).is_file(), (name, step, tasks_file)
        assert task in task_names(tasks_file), f"{name}: {task!r} is no task name in {tasks_file}"
        assert tasks_file in reachable(playbook), f"{name}: {playbook} does not run {tasks_file}"


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_step_of_the_runbook_has_a_row(docs, name):
    minimum, labels = DOCS[name][1:]
    steps = [row[0] for row in step_rows(docs[name])]
    assert len(steps) >= minimum, (name, len(steps))
    missing = [label for label in labels if not any(s.startswith(label) for s in steps)]
    assert not missing, (name, missing)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_operate_it_commands_name_existing_playbooks_and_inventories(docs, name):
    body = section(docs[name], "Operate it")
    for sub in ("### ansible-playbook", "### AWX", "### Semaphore"):
        assert len(re.findall(f"^{re.escape(sub)}$", body, re.M)) == 1, (name, sub)
    found = commands(body)
    assert found, name
    for words in found:
        playbooks = [w for w in words if w.startswith("playbooks/")]
        assert len(playbooks) == 1 and (ROOT / playbooks[0]).is_file(), (name, words)
        if "-i" in words:
            inventory = words[words.index("-i") + 1].rstrip("/")
            assert inventory.startswith("inventories/") and (ROOT / inventory).is_dir(), (name, words)
        for flag in ("approve_plan", "rollback_from"):
            for word in words:
                assert not word.startswith(flag) or word.startswith(flag + "="), (name, words)
    # commands are said once: no ansible-playbook command line outside "Operate it"
    outside = docs[name].replace(body, "")
    assert not commands(outside), (name, commands(outside))


@pytest.mark.parametrize("name", sorted(DOCS))
def test_operate_it_names_the_runbooks_playbooks_templates_and_roles(docs, name):
    """Every playbook of the runbook (operate/catalog.yml) has a command and its RBAC family
    is named; every AWX or Semaphore template named is one of the runbook's."""
    body = section(docs[name], "Operate it")
    catalog = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
    entries = {e["playbook"]: e for e in catalog["homelab_operate_playbooks"] if e["runbook"] == DOCS[name][0]}
    assert entries, name
    run = {w for words in commands(body) for w in words if w.startswith("playbooks/")}
    for playbook, entry in entries.items():
        assert f"playbooks/{playbook}.yml" in run, (name, playbook)
        assert f"rbac/{entry['family']}.yml" in body, (name, entry["family"])
    for path in re.findall(r"rbac/[a-z-]+\.yml", body):
        assert (ROOT / path).is_file(), (name, path)
    named = set(re.findall(re.escape(catalog["homelab_operate_prefix"]) + r" ([a-z0-9_]+)", body))
    assert named, name
    assert named <= set(entries), (name, named - set(entries))


def subsection(body, title):
    """The text of the level-3 heading ``title`` in ``body``, up to the next heading."""
    head = "### %s\n" % title
    rest = body[body.index(head) + len(head):]
    nxt = re.search(r"^#{2,3} ", rest, re.M)
    return rest[:nxt.start()] if nxt else rest


@pytest.mark.parametrize("name", sorted(DOCS))
def test_the_awx_and_semaphore_names_are_the_objects_the_configuration_creates(docs, name):
    """Every quoted AWX or Semaphore name is one that awx/configure.yml or
    semaphore/configure.yml creates from the catalog (computed, not copied)."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils import operate

    catalog = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
    stages = yaml.safe_load((ROOT / "roles" / "app_migration" / "defaults" / "main.yml").read_text())["app_migration_stages"]
    sources = {"app_migration_stages": stages}
    awx = operate.awx_objects(catalog, {"organization": "Default", "project_scm_url": "https://git.example/x.git",
                                        "k8s_host": "https://k8s:6443", "evidence_root": "/srv/evidence",
                                        "survey_sources": sources, "schedule_sources": {
                                            "active_passive_failback_interval": 5, "active_passive_failback": "guarded",
                                            "active_passive_failback_runner": "external"}})
    awx_names = {o["name"] for o in awx["job_templates"] + awx["workflow_job_templates"] + awx["schedules"]}
    approvals = {n["unified_job_template"]["name"] for w in awx["workflow_job_templates"] for n in w["workflow_nodes"]
                 if n["unified_job_template"]["type"] == "workflow_approval"}
    semaphore = {t["name"] for t in operate.semaphore_templates(catalog, {
        "project_id": 1, "inventory_id": 1, "repository_id": 1, "environment_id": 1, "survey_sources": sources})}
    semaphore |= {x["name"] for x in operate.semaphore_schedules(catalog, {
        "project_id": 1, "schedule_sources": {
            "active_passive_failback_interval": 5, "active_passive_failback": "guarded",
            "active_passive_failback_runner": "external"}}, [])}
    body = section(docs[name], "Operate it")
    prefix = re.escape(catalog["homelab_operate_prefix"])
    for title, known in (("AWX", awx_names), ("Semaphore", semaphore)):
        text = subsection(body, title)
        quoted = set(re.findall(r"[`\"](%s [a-z0-9_ ]+?)[`\"]" % prefix, text))
        assert quoted, (name, title)
        assert quoted <= known, (name, title, quoted - known)
    asked = set(re.findall(r"\"(Approve [a-z0-9_]+ plan)\"", subsection(body, "AWX").replace("\n", " ")))
    assert asked and asked <= approvals, (name, asked - approvals)
