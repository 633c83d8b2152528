"""AWX objects of operate/catalog.yml (module_utils/operate.py, AWX section) and
awx/configure.yml: every object validates against the argument spec of the awx.awx
module that creates it (awx.awx 24.6.1, captured from the module itself), workflow nodes
against that module's documented node options, surveys against AWX's survey_spec rules;
the workflows run check, approval, run and on failure the rollback; the playbook hands
every field to its module."""

import copy
import importlib
import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.homelab.k8s_ha.plugins.filter import operate as operate_filters
from ansible_collections.homelab.k8s_ha.plugins.module_utils import operate

ROOT = Path(__file__).resolve().parents[2]
CATALOG = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
STAGES = yaml.safe_load((ROOT / "roles" / "app_migration" / "defaults" / "main.yml").read_text())["app_migration_stages"]
AP_DEFAULTS = yaml.safe_load((ROOT / "roles" / "active_passive" / "defaults" / "main.yml").read_text())
FAILBACK_INTERVAL = AP_DEFAULTS["active_passive_failback_interval"]
SCHEDULE_SOURCES = {k: AP_DEFAULTS[k] for k in ("active_passive_failback_interval", "active_passive_failback",
                                                "active_passive_failback_runner")}
CREDENTIAL_TYPE = json.loads((ROOT / "tests" / "fixtures" / "awx" / "kubernetes_bearer_token.json").read_text())
PLAY = yaml.safe_load((ROOT / "awx" / "configure.yml").read_text())[0]
PREFIX = CATALOG["homelab_operate_prefix"]
ENTRIES = {e["playbook"]: e for e in CATALOG["homelab_operate_playbooks"]}
SETTINGS = {"organization": "Default", "project_scm_url": "https://git.example.lan/homelab/k8s_ha.git",
            "project_scm_branch": "main", "k8s_host": "https://10.0.0.10:6443", "k8s_verify_ssl": True,
            "k8s_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "ee_image": "registry.example.lan/homelab/k8s-ha-ee:0.1.0", "evidence_root": "/var/lib/homelab-k8s-ha/evidence",
            "approval_timeout": "3600", "survey_sources": {"app_migration_stages": STAGES},
            "schedule_sources": SCHEDULE_SOURCES}
# the awx.awx module that creates each kind of object
MODULES = {"execution_environments": "execution_environment", "projects": "project", "inventories": "inventory",
           "inventory_sources": "inventory_source", "credentials": "credential", "job_templates": "job_template",
           "workflow_job_templates": "workflow_job_template", "schedules": "schedule"}


class _Captured(Exception):
    pass


def _argument_spec(module_name, monkeypatch):
    """The argument spec awx.awx's module hands to ControllerAPIModule: main() runs until
    it builds its module object, which records the spec and stops it."""
    mod = importlib.import_module("ansible_collections.awx.awx.plugins.modules.%s" % module_name)
    seen = {}

    def fake(*args, **kwargs):
        seen["spec"] = kwargs.get("argument_spec", args[0] if args else None)
        raise _Captured()

    monkeypatch.setattr(mod, "ControllerAPIModule", fake)
    with pytest.raises(_Captured):
        mod.main()
    return seen["spec"]


def _doc_spec(options):
    """An argument spec from a module's documented options (their suboptions nested)."""
    out = {}
    for name, doc in options.items():
        spec = {}
        for key in ("type", "choices", "required", "elements", "aliases"):
            if key in doc:
                spec[key] = doc[key]
        if "suboptions" in doc:
            spec["options"] = _doc_spec(doc["suboptions"])
        out[name] = spec
    return out


@pytest.fixture(scope="module")
def specs():
    patch = pytest.MonkeyPatch()
    try:
        found = {kind: _argument_spec(name, patch) for kind, name in MODULES.items()}
    finally:
        patch.undo()
    return found


@pytest.fixture(scope="module")
def node_spec():
    mod = importlib.import_module("ansible_collections.awx.awx.plugins.modules.workflow_job_template")
    doc = yaml.safe_load(mod.DOCUMENTATION)
    return _doc_spec(doc["options"]["workflow_nodes"]["suboptions"])


def objects(settings=None, catalog=None):
    return operate.awx_objects(catalog or CATALOG, SETTINGS if settings is None else settings)


def named(kind, settings=None):
    return {o["name"]: o for o in objects(settings)[kind]}


def survey_vars(obj):
    return {q["variable"]: q for q in (obj["survey_spec"] or {}).get("spec", [])}


def errors_of(spec, params):
    return [str(e) for e in ArgumentSpecValidator(spec).validate(copy.deepcopy(params)).errors]


def test_the_captured_specs_are_awx_awx_module_specs(specs):
    assert specs["job_templates"]["job_type"]["choices"] == ["run", "check"]
    assert specs["credentials"]["inputs"]["no_log"] is True
    assert specs["workflow_job_templates"]["workflow_nodes"]["elements"] == "dict"


def test_every_object_validates_against_its_awx_awx_module(specs):
    found = objects()
    assert {k: len(v) for k, v in found.items()} == {
        "execution_environments": 1, "projects": 1, "inventories": 1, "inventory_sources": 1, "credentials": 1,
        "job_templates": 1 + 2 * sum(1 for e in ENTRIES.values() if e.get("mutating", True)),
        "workflow_job_templates": sum(1 for e in ENTRIES.values() if e.get("mutating", True)),
        "schedules": 1}
    for kind, items in found.items():
        for params in items:
            if kind == "credentials":
                params = dict(params, inputs=dict(params["inputs"], bearer_token="sa-token"))
            assert errors_of(specs[kind], params) == [], (kind, params["name"])


def test_a_job_type_the_module_does_not_know_is_refused(specs):
    """The validation above can fail: awx.awx knows run and check, nothing else."""
    tpl = dict(named("job_templates")["%s core_platform run" % PREFIX], job_type="apply")
    assert any("job_type" in e and "run, check" in e for e in errors_of(specs["job_templates"], tpl))
    assert errors_of(specs["job_templates"], dict(tpl, forks="many"))


def test_every_workflow_node_validates_against_the_documented_node_options(node_spec):
    assert set(node_spec["job_type"]["choices"]) == {"run", "check"}
    for wf in objects()["workflow_job_templates"]:
        for node in wf["workflow_nodes"]:
            assert errors_of(node_spec, node) == [], (wf["name"], node["identifier"])
    bad = {"identifier": "x", "unified_job_template": {"name": "y", "type": "job_template", "timeout": "soon"}}
    assert errors_of(node_spec, bad)


def test_mutating_playbooks_get_check_and_run_templates_read_only_one():
    tpls = named("job_templates")
    for name, entry in ENTRIES.items():
        base = "%s %s" % (PREFIX, name)
        if not entry.get("mutating", True):
            assert tpls[base]["job_type"] == "run" and base + " check" not in tpls
            continue
        check, run = tpls[base + " check"], tpls[base + " run"]
        assert (check["job_type"], check["diff_mode"]) == ("check", True)
        assert run["job_type"] == "run"
        for tpl in (check, run):
            assert tpl["playbook"] == "playbooks/%s.yml" % name and (ROOT / tpl["playbook"]).is_file()
            assert tpl["extra_vars"] == {"evidence_root": SETTINGS["evidence_root"]}
            assert tpl["credentials"] == ["%s Kubernetes API" % PREFIX]
            assert tpl["execution_environment"] == PREFIX and tpl["project"] == PREFIX
            assert tpl["ask_variables_on_launch"] is False  # only the survey's variables reach a launch
        assert "approve_plan" not in survey_vars(check)
        if entry.get("gated"):
            assert survey_vars(run)["approve_plan"]["required"] is True
        else:
            assert "approve_plan" not in survey_vars(run)


def test_a_workflow_checks_waits_for_approval_runs_and_rolls_back_on_failure():
    flows = named("workflow_job_templates")
    assert set(flows) == {"%s %s" % (PREFIX, n) for n, e in ENTRIES.items() if e.get("mutating", True)}
    for name, entry in ENTRIES.items():
        if not entry.get("mutating", True):
            continue
        wf = flows["%s %s" % (PREFIX, name)]
        nodes = {n["identifier"]: n for n in wf["workflow_nodes"]}

        def edges(ident, kind, _nodes=nodes):
            return [r["identifier"] for r in _nodes[ident]["related"].get(kind, [])]

        def runs(ident, _nodes=nodes):
            return _nodes[ident]["unified_job_template"]

        assert runs("check") == {"name": "%s %s check" % (PREFIX, name), "type": "job_template",
                                 "organization": {"name": "Default"}}
        assert edges("check", "success_nodes") == ["approve"] and edges("check", "failure_nodes") == []
        approve = runs("approve")
        assert approve["type"] == "workflow_approval" and approve["name"] == "Approve %s plan" % name
        assert approve["timeout"] == 3600
        assert edges("approve", "success_nodes") == ["run"] and edges("approve", "failure_nodes") == []
        assert runs("run")["name"] == "%s %s run" % (PREFIX, name)
        assert edges("run", "success_nodes") == []
        if entry.get("rollback"):
            undo = "%s %s" % (PREFIX, entry["rollback"])
            assert edges("run", "failure_nodes") == ["rollback-check"]
            assert runs("rollback-check")["name"] == undo + " check"
            assert edges("rollback-check", "success_nodes") == ["approve-rollback"]
            assert runs("approve-rollback")["name"] == "Approve %s plan" % entry["rollback"]
            assert edges("approve-rollback", "success_nodes") == ["rollback-run"]
            assert runs("rollback-run")["name"] == undo + " run"
        else:
            assert edges("run", "failure_nodes") == [] and set(nodes) == {"check", "approve", "run"}
        # every job template a node names exists; every edge names a node of this workflow
        tpls = named("job_templates")
        for node in nodes.values():
            if runs(node["identifier"])["type"] == "job_template":
                assert runs(node["identifier"])["name"] in tpls
            for kind in ("success_nodes", "failure_nodes"):
                assert all(i in nodes for i in edges(node["identifier"], kind))
        # the plan id reaches the run only as the check's set_stats artifact, never as a
        # workflow variable (those outrank artifacts)
        assert "approve_plan" not in wf["extra_vars"] and "approve_plan" not in survey_vars(wf)


def test_the_per_app_migration_survey_asks_app_strategy_and_stage():
    wf = named("workflow_job_templates")["%s app_migration" % PREFIX]
    asked = survey_vars(wf)
    assert list(asked) == ["app", "migration_strategy", "stage"]
    assert asked["app"]["type"] == "text" and asked["app"]["required"] is True
    assert asked["migration_strategy"]["type"] == "multiplechoice" and asked["migration_strategy"]["choices"] == list(STAGES)
    union = []
    for stages in STAGES.values():
        union += [s for s in stages if s not in union]
    assert asked["stage"]["choices"] == union and "failover" in union
    tpls = named("job_templates")
    assert list(survey_vars(tpls["%s app_migration check" % PREFIX])) == ["app", "migration_strategy", "stage"]
    assert list(survey_vars(tpls["%s app_migration run" % PREFIX])) == ["app", "migration_strategy", "stage", "approve_plan"]
    assert list(survey_vars(tpls["%s app_migration_rollback run" % PREFIX])) == ["rollback_from", "approve_plan"]
    # the release after the bake window asks for the stage's folder, then the plan id
    assert list(survey_vars(tpls["%s app_migration_release check" % PREFIX])) == ["release_from"]
    assert list(survey_vars(tpls["%s app_migration_release run" % PREFIX])) == ["release_from", "approve_plan"]
    capi = named("workflow_job_templates")["%s capi_rollout" % PREFIX]
    assert list(survey_vars(capi)) == ["capi_rollout_cluster"]


def test_every_survey_is_one_awx_takes_and_the_check_can_fail():
    found = objects()
    for obj in found["job_templates"] + found["workflow_job_templates"]:
        assert operate.awx_survey_spec_errors(obj["survey_spec"]) == [], obj["name"]
        assert obj["survey_enabled"] is bool(obj["survey_spec"])
    spec = survey_vars(named("workflow_job_templates")["%s app_migration" % PREFIX])
    survey = {"name": "x", "description": "", "spec": [dict(spec["stage"], choices=[])]}
    assert operate.awx_survey_spec_errors(survey) == ["question 0: a multiplechoice needs choices"]
    survey = {"name": "x", "description": "", "spec": [dict(spec["stage"], default="3"), dict(spec["stage"])]}
    assert operate.awx_survey_spec_errors(survey) == [
        "question 0: default '3' is not among the choices", "question 1: variable stage duplicated"]
    assert operate.awx_survey_spec_errors({"name": "x", "description": "", "spec": []}) == ["survey spec: no questions"]


def test_the_credential_is_awx_kubernetes_bearer_token_type_without_the_token():
    cred = objects()["credentials"][0]
    assert cred["credential_type"] == CREDENTIAL_TYPE["name"]
    assert set(cred["inputs"]) <= set(CREDENTIAL_TYPE["fields"])
    assert set(CREDENTIAL_TYPE["required"]) - set(cred["inputs"]) == {"bearer_token"}  # the play adds it
    assert cred["inputs"] == {"host": SETTINGS["k8s_host"], "verify_ssl": True, "ssl_ca_cert": SETTINGS["k8s_ca_cert"]}
    # what the credential injects is what the integration tests' identities run with
    conftest = (ROOT / "tests" / "integration" / "conftest.py").read_text()
    assert all('"%s"' % var in conftest for var in CREDENTIAL_TYPE["injects_env"])


def test_without_an_image_no_execution_environment_is_named():
    found = objects(dict(SETTINGS, ee_image=""))
    assert found["execution_environments"] == []
    assert all("execution_environment" not in t for t in found["job_templates"] + found["inventory_sources"])
    assert "default_environment" not in found["projects"][0]


@pytest.mark.parametrize("key, value, words", [
    ("project_scm_url", "", "settings project_scm_url: required"),
    ("k8s_host", None, "settings k8s_host: required"),
    ("evidence_root", "evidence", "settings evidence_root: 'evidence' is not an absolute path"),
    ("approval_timeout", "an hour", "settings approval_timeout: 'an hour' is not a number of seconds"),
    ("k8s_verify_ssl", "yes", "settings k8s_verify_ssl: 'yes' is not true or false"),
])
def test_bad_settings_are_named(key, value, words):
    with pytest.raises(ValueError, match=words):
        objects(dict(SETTINGS, **{key: value}))
    with pytest.raises(AnsibleFilterError, match="awx_objects: " + words):
        operate_filters.awx_objects(CATALOG, dict(SETTINGS, **{key: value}))


def test_catalog_errors_are_named():
    catalog = copy.deepcopy(CATALOG)
    catalog["homelab_operate_playbooks"][1]["rollback"] = "nope"
    with pytest.raises(ValueError, match="rollback nope is not in the catalog"):
        objects(catalog=catalog)
    catalog = copy.deepcopy(CATALOG)
    catalog["homelab_operate_surveys"]["app_migration"][1]["type"] = "radio"
    with pytest.raises(ValueError, match="type 'radio' is not an AWX question type"):
        objects(catalog=catalog)


def test_the_guarded_failback_runs_on_a_schedule_every_interval_of_the_role(specs):
    """Runbook 003's guarded failback needs a pass every active_passive_failback_interval
    minutes: an AWX schedule on the failback's run job template (the workflow's approval
    node would wait every time), its rrule every that many minutes from a fixed start."""
    from dateutil.rrule import rrulestr  # what AWX parses rrules with

    schedules = objects()["schedules"]
    assert [(s["name"], s["unified_job_template"]) for s in schedules] == [
        ("%s failback schedule" % PREFIX, "%s failback run" % PREFIX)]
    schedule = schedules[0]
    assert schedule["unified_job_template"] in named("job_templates")
    assert schedule["enabled"] is True and schedule["organization"] == "Default"
    assert schedule["rrule"] == "DTSTART:20260101T000000Z RRULE:FREQ=MINUTELY;INTERVAL=%d" % FAILBACK_INTERVAL
    runs = list(rrulestr(schedule["rrule"].replace(" ", "\n"), forceset=True).xafter(
        rrulestr("DTSTART:20261205T060000Z\nRRULE:FREQ=DAILY;COUNT=1")[0], count=3, inc=True))
    assert [(b - a).total_seconds() for a, b in zip(runs, runs[1:])] == [FAILBACK_INTERVAL * 60.0] * 2
    assert "every %d minutes" % FAILBACK_INTERVAL in schedule["description"]
    # another interval (-e active_passive_failback_interval=10) changes the rrule, not the name
    other = objects(dict(SETTINGS, schedule_sources=dict(SCHEDULE_SOURCES, active_passive_failback_interval="10")))[
        "schedules"][0]
    assert other["rrule"].endswith("INTERVAL=10") and other["name"] == schedule["name"]
    assert errors_of(specs["schedules"], schedule) == []
    # not while another agent fails back: the in-cluster CronJob, the descheduler, nobody
    for other in ({"active_passive_failback_runner": "cronjob"}, {"active_passive_failback": "descheduler"},
                  {"active_passive_failback": "none"}):
        off = objects(dict(SETTINGS, schedule_sources=dict(SCHEDULE_SOURCES, **other)))["schedules"][0]
        assert off["enabled"] is False and off["name"] == schedule["name"], other


@pytest.mark.parametrize("value", [0, 60, "five", True, None])
def test_an_interval_a_schedule_cannot_take_is_named(value):
    settings = dict(SETTINGS, schedule_sources=dict(SCHEDULE_SOURCES, active_passive_failback_interval=value))
    with pytest.raises(ValueError, match="catalog failback: active_passive_failback_interval is .*; a schedule takes"
                                         " whole minutes from 1 to 59"):
        objects(settings)


def test_a_schedule_needs_its_value_and_an_ungated_playbook():
    with pytest.raises(ValueError, match="catalog failback: schedule_when active_passive_failback, "
                                         "active_passive_failback_runner: no value"):
        objects(dict(SETTINGS, schedule_sources={}))
    with pytest.raises(ValueError, match="catalog failback: schedule active_passive_failback_interval: no value"):
        objects(dict(SETTINGS, schedule_sources={k: v for k, v in SCHEDULE_SOURCES.items()
                                                 if k != "active_passive_failback_interval"}))
    catalog = copy.deepcopy(CATALOG)
    next(e for e in catalog["homelab_operate_playbooks"] if e["playbook"] == "core_platform")["schedule"] = \
        "active_passive_failback_interval"
    with pytest.raises(ValueError, match="catalog core_platform: schedule needs a mutating, ungated playbook"):
        objects(catalog=catalog)


def test_the_play_takes_the_interval_from_the_role_or_the_same_variable():
    """One source of truth: the role's default, or -e active_passive_failback_interval=N."""
    for var in SCHEDULE_SOURCES:
        given = PLAY["vars"]["awx_settings"]["schedule_sources"][var]
        assert given.strip() == "{{ %s | default(awx_active_passive_defaults.%s) }}" % (var, var)
    assert "roles/active_passive/defaults/main.yml" in PLAY["vars"]["awx_active_passive_defaults"]


def test_the_playbook_hands_every_field_to_its_module():
    found = objects()
    tasks = {}
    for task in PLAY["tasks"]:
        module = [k for k in task if k.startswith("awx.awx.")]
        if module:
            tasks[module[0]] = task
    assert set(tasks) == {"awx.awx.%s" % m for m in MODULES.values()}
    for kind, module in MODULES.items():
        task = tasks["awx.awx.%s" % module]
        assert task["loop"] == "{{ awx_desired.%s }}" % kind
        args = task["awx.awx.%s" % module]
        keys = set()
        for params in found[kind]:
            keys |= set(params)
        assert keys <= set(args), (module, keys - set(args))
        for key in keys:
            assert ("item.%s " % key) in args[key] or ("item.%s |" % key) in args[key], (module, key, args[key])
    cred = tasks["awx.awx.credential"]
    assert cred["no_log"] is True and "bearer_token" in cred["awx.awx.credential"]["inputs"]
