"""semaphore/configure.yml against the Semaphore simulator (tests/simulators/semaphore_simulator.py),
no cluster: the first run creates every template of operate/catalog.yml and the guarded
failback's schedule, a second run writes nothing, a template or schedule edited in
Semaphore is put back, and the API token never
reaches the output. One real first run is shared (it makes a POST per template); each
test gets a simulator of its own, seeded with what that run stored."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from semaphore_simulator import SemaphoreSimulator

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
TOKEN = "sem-token-7f3c9a1e0b5d4e2f8a6c"
PROJECT = 4
IDS = {"semaphore_project_id": PROJECT, "semaphore_inventory_id": 2, "semaphore_repository_id": 3,
       "semaphore_environment_id": 5}
# what project PROJECT holds besides templates: the objects IDS name, and a view
RESOURCES = {"inventory": [2], "repositories": [3], "environment": [5], "views": [7]}
CATALOG = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
INTERVAL = yaml.safe_load((ROOT / "roles" / "active_passive" / "defaults" / "main.yml").read_text())[
    "active_passive_failback_interval"]
FAILBACK = "%s failback" % CATALOG["homelab_operate_prefix"]


def expected_names():
    """The template names the catalog calls for, worked out here from the catalog alone."""
    prefix = CATALOG["homelab_operate_prefix"]
    names = set()
    for entry in CATALOG["homelab_operate_playbooks"]:
        base = "%s %s" % (prefix, entry["playbook"])
        names |= {base + " check", base + " apply"} if entry["mutating"] else {base}
    return names


class Run(object):
    def __init__(self, proc):
        self.rc, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        recap = re.search(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", proc.stdout, re.M)
        assert recap, proc.stdout[-3000:] + proc.stderr[-3000:]
        self.ok, self.changed, self.failed = (int(g) for g in recap.groups())

    def __str__(self):
        return self.stdout[-4000:] + self.stderr[-2000:]


def configure(sim, tmp_path, token=TOKEN, **extra_vars):
    """Run semaphore/configure.yml against ``sim``, the token in SEMAPHORE_API_TOKEN. At -vvv,
    where every module's arguments are printed (without no_log the token shows up there)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
               SEMAPHORE_API_TOKEN=token, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    for key in [k for k in env if k.startswith("SEMAPHORE_") and k != "SEMAPHORE_API_TOKEN"]:
        del env[key]
    variables = dict(IDS, semaphore_url=sim.url, semaphore_evidence_root="/srv/semaphore/evidence")
    variables.update(extra_vars)
    proc = subprocess.run([ANSIBLE_PLAYBOOK, str(ROOT / "semaphore" / "configure.yml"), "-vvv",
                           "-e", json.dumps(variables)],
                          env=env, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=600, check=False)
    run = Run(proc)
    assert token not in run.stdout and token not in run.stderr, "the API token reached the output"
    return run


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """The first run against an empty project: (run, simulator)."""
    sim = SemaphoreSimulator(TOKEN, projects=(PROJECT,), resources=RESOURCES).start()
    run = configure(sim, tmp_path_factory.mktemp("first"))
    yield run, sim
    sim.stop()


@pytest.fixture
def configured(first):
    """A simulator holding what the first run stored, and no request yet."""
    sim = SemaphoreSimulator(TOKEN, projects=(PROJECT,), resources=RESOURCES).start()
    sim.templates = copy.deepcopy(first[1].templates)
    sim.next_id = first[1].next_id
    sim.schedules = copy.deepcopy(first[1].schedules)
    sim.next_schedule_id = first[1].next_schedule_id
    yield sim
    sim.stop()


def test_the_first_run_creates_every_template_of_the_catalog(first):
    run, sim = first
    assert run.rc == 0, run
    assert run.failed == 0 and run.changed == 2, run  # two tasks wrote: the templates, the schedule
    names = expected_names()
    posts = [r for r in sim.requests if r["method"] == "POST"]
    assert len(posts) == len(names) + 1 and all(r["status"] == 201 for r in posts)
    # the guarded failback runs unattended every active_passive_failback_interval minutes,
    # on its apply template (created in the same run: the play listed the templates again)
    assert [(x["name"], sim.templates[x["template_id"]]["name"], x["cron_format"], x["active"])
            for x in sim.schedules.values()] == [
        (FAILBACK + " schedule", FAILBACK + " apply", "*/%d * * * *" % INTERVAL, True)]
    assert "Schedules: 1 created, 0 updated, 0 unchanged. Written: %s schedule." % FAILBACK in " ".join(
        run.stdout.split()), run
    assert [r for r in sim.writes() if r["method"] != "POST"] == []
    assert set(sim.by_name(PROJECT)) == names
    assert "%d created, 0 updated, 0 unchanged" % len(names) in run.stdout
    assert "censored due to no_log" in run.stdout  # -vvv printed the writes, without their arguments
    for tpl in sim.by_name(PROJECT).values():
        assert (tpl["project_id"], tpl["inventory_id"], tpl["repository_id"], tpl["environment_id"]) == (PROJECT, 2, 3, 5)
        arguments = json.loads(tpl["arguments"])
        assert json.loads(arguments[arguments.index("-e") + 1]) == {"evidence_root": "/srv/semaphore/evidence"}
        assert (arguments[:2] == ["--check", "--diff"]) == tpl["name"].endswith(" check")
    gated = {e["playbook"] for e in CATALOG["homelab_operate_playbooks"] if e.get("gated")}
    for name, tpl in sim.by_name(PROJECT).items():
        plan = [v for v in tpl["survey_vars"] if v["name"] == "approve_plan"]
        wanted = name.endswith(" apply") and name.split()[1] in gated
        assert [v["required"] for v in plan] == ([True] if wanted else []), name


def test_a_second_run_writes_nothing_and_reports_no_change(configured, tmp_path):
    run = configure(configured, tmp_path)
    assert run.rc == 0 and run.changed == 0, run
    assert configured.writes() == []
    assert "0 created, 0 updated, %d unchanged" % len(expected_names()) in run.stdout
    assert "Schedules: 0 created, 0 updated, 1 unchanged." in " ".join(run.stdout.split())


def test_a_schedule_edited_in_semaphore_is_put_back_and_follows_the_interval(configured, tmp_path):
    """Someone switched the failback's schedule off: the next run puts it back, as the catalog
    wants it. Given another interval (the role's variable, -e), the cron follows it."""
    (sid, schedule), = configured.schedules.items()
    configured.schedules[sid] = dict(schedule, active=False, cron_format="0 3 * * *")
    run = configure(configured, tmp_path)
    assert run.rc == 0 and run.changed == 1, run
    assert [(r["method"], r["path"], r["status"]) for r in configured.writes()] == [
        ("PUT", "/api/project/%d/schedules/%d" % (PROJECT, sid), 204)]
    assert configured.schedules[sid] == schedule
    slower = configure(configured, tmp_path, active_passive_failback_interval=15)
    assert slower.rc == 0 and slower.changed == 1, slower
    assert configured.schedules[sid]["cron_format"] == "*/15 * * * *"
    # the in-cluster CronJob runs the failback: Semaphore's schedule is switched off, kept
    cluster = configure(configured, tmp_path, active_passive_failback_runner="cronjob")
    assert cluster.rc == 0 and cluster.changed == 1, cluster
    assert configured.schedules[sid] == dict(schedule, active=False)
    # an interval no cron minute step takes stops before any write, naming the variable
    bad = configure(configured, tmp_path, active_passive_failback_interval=90)
    assert bad.rc != 0 and "active_passive_failback_interval is 90; a schedule takes whole minutes from 1 to 59" \
        in " ".join(bad.stdout.split()), bad
    assert len(configured.writes()) == 3


def test_the_simulator_refuses_what_semaphore_refuses_for_a_schedule(configured):
    """As v2.10.32 answers: a cron robfig/cron's ParseStandard refuses (four fields, a minute
    out of range, a zero step), a template the project lacks (the foreign key), an id or
    project that differs from the URL's. (The simulator also refuses what robfig takes and
    it does not model, @every and month or weekday names: stricter, never more lenient.)"""
    (sid, schedule), = configured.schedules.items()
    auth = "Bearer " + TOKEN
    url = "/api/project/%d/schedules" % PROJECT
    for cron in ("*/5 * * *", "61 * * * *", "*/0 * * * *", "* 24 * * *", "5-1 * * * *"):
        status, answer = configured.handle("POST", url, dict(schedule, cron_format=cron), auth)
        assert status == 400 and answer["error"].startswith("Cron: "), (cron, answer)
    assert configured.handle("POST", url, dict(schedule, template_id=999), auth) == (400, None)
    assert configured.handle("PUT", "%s/%d" % (url, sid), dict(schedule, id=sid + 1), auth)[0] == 400
    assert configured.handle("PUT", "%s/%d" % (url, sid), dict(schedule, project_id=PROJECT + 1), auth)[1] == {
        "error": "You can not move schedule to other project"}
    assert configured.handle("POST", url, dict(schedule, cron_format="@hourly"), auth)[0] == 201
    configured.role = "task_runner"
    assert configured.handle("POST", url, schedule, auth) == (403, None)


def test_a_template_edited_in_semaphore_is_put_back(configured, tmp_path):
    prefix = CATALOG["homelab_operate_prefix"]
    gated = next(e["playbook"] for e in CATALOG["homelab_operate_playbooks"] if e.get("gated"))
    check, apply_ = "%s %s check" % (prefix, gated), "%s %s apply" % (prefix, gated)
    want = configured.by_name()
    configured.edit(check, arguments="[]")  # someone dropped --check --diff
    configured.edit(apply_, survey_vars=[])  # and the plan id question
    hand_made = configured.add(PROJECT, dict(want[check], name="made by hand", description="not ours"))
    run = configure(configured, tmp_path)
    assert run.rc == 0 and run.changed == 1, run
    puts = configured.writes()
    assert sorted((r["method"], r["path"], r["status"]) for r in puts) == sorted(
        ("PUT", "/api/project/%d/templates/%d" % (PROJECT, want[name]["id"]), 204) for name in (check, apply_))
    assert all(r["body"]["id"] == want[r["body"]["name"]]["id"] for r in puts)
    assert configured.by_name() == dict(want, **{"made by hand": hand_made})
    again = configure(configured, tmp_path)
    assert again.rc == 0 and again.changed == 0 and len(configured.writes()) == 2, again


def test_a_refused_write_fails_naming_the_template_and_is_no_change(configured, tmp_path):
    name = sorted(configured.by_name())[0]
    configured.edit(name, description="edited by hand")
    configured.schema = dict(configured.schema, required=configured.schema["required"] + ["view_id"])
    run = configure(configured, tmp_path)
    assert run.rc != 0 and run.changed == 0, run
    assert [(r["method"], r["status"]) for r in configured.writes()] == [("PUT", 400)]
    assert "Semaphore refused" in run.stdout and name + ": HTTP 400:" in run.stdout, run
    assert "view_id" in run.stdout and "is a required property" in run.stdout
    assert configured.by_name()[name]["description"] == "edited by hand"


def test_a_wrong_token_fails_with_a_clear_message(configured, tmp_path):
    run = configure(configured, tmp_path, token="not-the-token-0b1c")
    assert run.rc != 0 and run.failed == 1
    assert "refused the API token (HTTP 401)" in run.stdout + run.stderr, run
    assert "SEMAPHORE_API_TOKEN" in run.stdout + run.stderr
    assert configured.writes() == []
    assert {r["status"] for r in configured.requests} == {401}


def test_missing_settings_are_named(configured, tmp_path):
    run = configure(configured, tmp_path, semaphore_inventory_id="", semaphore_environment_id=None)
    assert run.rc != 0
    assert "Missing Semaphore settings: inventory_id, environment_id" in run.stdout + run.stderr, run
    assert configured.requests == []


@pytest.mark.parametrize("role", ["guest", "task_runner"])
def test_a_token_that_may_not_write_stops_before_any_write_naming_its_role(configured, tmp_path, role):
    configured.role = role
    name = sorted(configured.by_name())[0]
    original = configured.by_name()[name]["description"]
    configured.edit(name, description="edited by hand")
    run = configure(configured, tmp_path)
    assert run.rc != 0 and run.changed == 0, run
    assert ("The API token's user has the role %s in project %d: it may read templates and schedules but not"
            " create or change them (Semaphore answers HTTP 403)." % (role, PROJECT)) in " ".join(run.stdout.split()), run
    assert configured.writes() == []
    # with nothing to write, the same token may check that nothing differs
    configured.edit(name, description=original)
    ok = configure(configured, tmp_path)
    assert ok.rc == 0 and ok.changed == 0 and configured.writes() == [], ok
    assert "0 created, 0 updated, %d unchanged" % len(expected_names()) in ok.stdout
    # an admin user writes whatever its role
    configured.edit(name, description="edited by hand")
    configured.admin = True
    fixed = configure(configured, tmp_path)
    assert fixed.rc == 0 and fixed.changed == 1 and [r["status"] for r in configured.writes()] == [204], fixed


def test_an_id_the_project_does_not_have_is_named_before_any_write(configured, tmp_path):
    run = configure(configured, tmp_path, semaphore_repository_id=9, semaphore_view_id=8)
    assert run.rc != 0 and run.changed == 0, run
    assert ("Semaphore project %d has no repositories 9 (semaphore_repository_id: HTTP 404); no views 8"
            " (semaphore_view_id: HTTP 404)." % PROJECT) in " ".join(run.stdout.split()), run
    assert configured.writes() == []
    # the strict simulator: Semaphore's database refuses such a template with a bare 400
    stored = next(iter(configured.by_name().values()))
    tpl = dict({k: v for k, v in stored.items() if k in configured.schema["properties"] and v is not None},
               repository_id=9)
    assert configured.handle("PUT", "/api/project/%d/templates/%d" % (PROJECT, tpl["id"]), tpl,
                             "Bearer " + TOKEN) == (400, None)
    assert configured.handle("POST", "/api/project/%d/templates" % PROJECT, dict(tpl, name="x"),
                             "Bearer " + TOKEN) == (400, None)
    assert configured.handle("PUT", "/api/project/%d/templates/%d" % (PROJECT, tpl["id"]), dict(tpl, repository_id=3),
                             "Bearer " + TOKEN) == (204, None)
