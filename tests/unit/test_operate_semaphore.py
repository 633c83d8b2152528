"""Semaphore templates of operate/catalog.yml (module_utils/operate.py, Semaphore section):
every payload is a TemplateRequest as Semaphore v2.10.32 documents it
(tests/fixtures/semaphore/template-schema.json), mutating playbooks get a check and an
apply template, gated applies ask for the plan id, and a second sync writes nothing."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.filter import operate as operate_filters
from ansible_collections.homelab.k8s_ha.plugins.module_utils import operate

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "semaphore" / "template-schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CATALOG = yaml.safe_load((ROOT / "operate" / "catalog.yml").read_text())
STAGES = yaml.safe_load((ROOT / "roles" / "app_migration" / "defaults" / "main.yml").read_text())["app_migration_stages"]
PREFIX = CATALOG["homelab_operate_prefix"]
ENTRIES = {e["playbook"]: e for e in CATALOG["homelab_operate_playbooks"]}
ROLLBACKS = {e["rollback"]: name for name, e in ENTRIES.items() if e.get("rollback")}
EVIDENCE = "/var/lib/semaphore/evidence"
SETTINGS = {"project_id": 3, "inventory_id": 5, "repository_id": "7", "environment_id": 11, "evidence_root": EVIDENCE,
            "survey_sources": {"app_migration_stages": STAGES}}


def templates(settings=None, catalog=None):
    return operate.semaphore_templates(catalog or CATALOG, settings or SETTINGS)


def by_name(settings=None):
    return {t["name"]: t for t in templates(settings)}


def survey(template):
    return {v["name"]: v for v in template["survey_vars"]}


def args(template):
    return json.loads(template["arguments"])


def test_the_schema_is_a_valid_2020_12_schema_naming_its_source():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert "v2.10.32" in SCHEMA["$comment"] and "api-docs.yml" in SCHEMA["$comment"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["$defs"]["TemplateSurveyVar"]["additionalProperties"] is False


def test_every_payload_validates_against_the_documented_template_request():
    found = templates()
    assert found
    for tpl in found:
        errors = [e.message for e in VALIDATOR.iter_errors(tpl)]
        assert errors == [], (tpl["name"], errors)
        jsonschema.validate(args(tpl), SCHEMA["properties"]["arguments"]["contentSchema"])
        assert tpl["app"] == "ansible" and tpl["type"] == ""
        assert tpl["allow_override_args_in_task"] is False  # a task cannot drop --check
        assert (tpl["project_id"], tpl["inventory_id"], tpl["repository_id"], tpl["environment_id"]) == (3, 5, 7, 11)
        assert "view_id" not in tpl


def test_names_are_unique_and_follow_the_catalog():
    names = [t["name"] for t in templates()]
    assert len(names) == len(set(names))
    expected = set()
    for name, entry in ENTRIES.items():
        if entry["mutating"]:
            expected |= {"%s %s check" % (PREFIX, name), "%s %s apply" % (PREFIX, name)}
        else:
            expected.add("%s %s" % (PREFIX, name))
    assert set(names) == expected


def test_every_template_runs_a_playbook_of_the_collection():
    for tpl in templates():
        assert (ROOT / tpl["playbook"]).is_file(), tpl["playbook"]
        assert tpl["playbook"].startswith("playbooks/")


def test_check_templates_run_with_check_and_diff_and_apply_templates_do_not():
    tpls = by_name()
    for name, entry in ENTRIES.items():
        if not entry["mutating"]:
            continue
        check, apply_ = tpls["%s %s check" % (PREFIX, name)], tpls["%s %s apply" % (PREFIX, name)]
        assert args(check)[:2] == ["--check", "--diff"], name
        assert "--check" not in args(apply_) and "-C" not in args(apply_) and "--diff" not in args(apply_), name
        assert "approve_plan" not in survey(check)
        assert check["playbook"] == apply_["playbook"] == "playbooks/%s.yml" % name


def test_gated_apply_templates_require_the_plan_id():
    tpls = by_name()
    for name, entry in ENTRIES.items():
        if not entry["mutating"]:
            continue
        apply_ = survey(tpls["%s %s apply" % (PREFIX, name)])
        if entry.get("gated"):
            plan = apply_["approve_plan"]
            assert plan["required"] is True and plan["type"] == "" and plan["values"] == []
            assert "check" in plan["description"]
            assert list(apply_)[-1] == "approve_plan"  # asked last, after the run's own questions
        else:
            assert "approve_plan" not in apply_


def test_read_only_playbooks_get_a_single_template():
    tpls = by_name()
    read_only = [name for name, e in ENTRIES.items() if not e["mutating"]]
    assert read_only
    for name in read_only:
        base = "%s %s" % (PREFIX, name)
        assert [n for n in tpls if n.startswith(base + " ") or n == base] == [base]
        assert "--check" not in args(tpls[base]) and "approve_plan" not in survey(tpls[base])


def test_rollback_templates_ask_for_the_evidence_folder_optionally():
    tpls = by_name()
    assert ROLLBACKS
    for name, entry in ENTRIES.items():
        for kind in ("check", "apply") if entry["mutating"] else ("",):
            tpl = tpls[("%s %s %s" % (PREFIX, name, kind)).strip()]
            if name in ROLLBACKS:
                var = survey(tpl)["rollback_from"]
                # the rollback playbooks default to the newest evidence folder with changes
                assert var["required"] is False and var["type"] == ""
                assert ROLLBACKS[name] in var["description"]
            else:
                assert "rollback_from" not in survey(tpl)
    for forward, entry in ENTRIES.items():
        if entry.get("rollback"):
            assert "%s %s check" % (PREFIX, entry["rollback"]) in tpls["%s %s apply" % (PREFIX, forward)]["description"]


def test_app_migration_survey_choices_are_the_role_defaults():
    tpls = by_name()
    for name, entry in ENTRIES.items():
        if entry.get("survey") != "app_migration":
            continue
        for kind in ("check", "apply"):
            questions = survey(tpls["%s %s %s" % (PREFIX, name, kind)])
            assert list(questions)[:3] == ["app", "migration_strategy", "stage"]
            assert questions["app"]["type"] == "" and questions["app"]["required"] is True
            strategy, stage = questions["migration_strategy"], questions["stage"]
            assert strategy["type"] == stage["type"] == "enum"
            assert [v["value"] for v in strategy["values"]] == list(STAGES)
            union = []
            for values in STAGES.values():
                union += [str(v) for v in values if str(v) not in union]
            assert [v["value"] for v in stage["values"]] == union
            assert set(union) == {str(v) for values in STAGES.values() for v in values}
            assert all(v["name"] == v["value"] for v in strategy["values"] + stage["values"])
            assert strategy["required"] is stage["required"] is True


def test_evidence_root_is_an_extra_var_of_every_template():
    for tpl in templates():
        found = args(tpl)
        i = found.index("-e")
        assert json.loads(found[i + 1]) == {"evidence_root": EVIDENCE}, tpl["name"]
    no_root = dict(SETTINGS, evidence_root="")
    assert all("-e" not in args(t) for t in templates(no_root))


def test_settings_ids_are_checked_and_view_id_is_optional():
    assert {t["view_id"] for t in templates(dict(SETTINGS, view_id="2"))} == {2}
    for key, value in (("inventory_id", None), ("project_id", ""), ("repository_id", "abc"),
                       ("environment_id", 0), ("inventory_id", True), ("view_id", -1)):
        with pytest.raises(ValueError, match="settings %s" % key):
            templates(dict(SETTINGS, **{key: value}))


def test_catalog_errors_are_named():
    bad = copy.deepcopy(CATALOG)
    bad["homelab_operate_playbooks"][1]["rollback"] = "no_such_playbook"
    with pytest.raises(ValueError, match="rollback no_such_playbook"):
        templates(catalog=bad)
    with pytest.raises(ValueError, match="choices_from"):
        templates(dict(SETTINGS, survey_sources={}))
    bad = copy.deepcopy(CATALOG)
    bad["homelab_operate_surveys"]["app_migration"][0]["type"] = "slider"
    with pytest.raises(ValueError, match="slider"):
        templates(catalog=bad)


def test_survey_choices():
    sources = {"s": {"a": ["1", 2], "b": ["2", "x"], "c": "y"}}
    assert operate.survey_choices({"choices_from": "s.keys"}, sources) == ["a", "b", "c"]
    assert operate.survey_choices({"choices_from": "s.values"}, sources) == ["1", "2", "x", "y"]
    assert operate.survey_choices({"choices": [1, "b"]}, {}) == ["1", "b"]
    with pytest.raises(ValueError):
        operate.survey_choices({"choices_from": "s.items"}, sources)


@pytest.mark.parametrize("change, complaint", [
    ({"job_type": "check"}, "Additional properties"),
    ({"app": "ansible-runner"}, "is not one of"),
    ({"type": "workflow"}, "is not one of"),
    ({"inventory_id": 0}, "less than the minimum"),
    ({"arguments": ["--check"]}, "is not of type 'string'"),
])
def test_the_schema_rejects_a_bad_template(change, complaint):
    tpl = dict(templates()[1], **change)
    messages = [e.message for e in VALIDATOR.iter_errors(tpl)]
    assert any(complaint in m for m in messages), messages
    missing = dict(templates()[1])
    del missing["name"]
    assert not VALIDATOR.is_valid(missing)


@pytest.mark.parametrize("var, complaint", [
    ({"type": "multiplechoice"}, "is not one of"),
    ({"type": "enum", "values": []}, "should be non-empty"),
    ({"type": "enum", "values": [{"name": "1", "value": "1", "default": True}]}, "Additional properties"),
    ({"choices": ["1"]}, "Additional properties"),
])
def test_the_schema_rejects_a_bad_survey_var(var, complaint):
    tpl = by_name()["%s app_migration apply" % PREFIX]
    tpl = dict(tpl, survey_vars=[dict(tpl["survey_vars"][0], **var)])
    messages = [e.message for e in VALIDATOR.iter_errors(tpl)]
    assert any(complaint in m for m in messages), messages


def stored(tpl, template_id):
    """``tpl`` as GET /templates/{id} of Semaphore v2.10.32 returns it."""
    out = dict(tpl, id=template_id, vaults=[], start_version=None, build_template_id=None, view_id=None,
               last_task=None, autorun=False, git_branch=None, suppress_success_alerts=False, tasks=4)
    out["survey_vars"] = [dict(v, values=v["values"] or None) for v in tpl["survey_vars"]]
    return out


def test_sync_plan_creates_the_missing_changes_the_different_and_leaves_the_rest():
    want = templates()
    have = [stored(t, i + 10) for i, t in enumerate(want)]
    plan = operate.semaphore_sync_plan(want, have)
    assert plan["create"] == [] and plan["change"] == [] and plan["differences"] == {}
    assert plan["unchanged"] == [t["name"] for t in want]

    have[0]["arguments"] = json.dumps(args(want[0]), indent=2)  # the same list, spelled otherwise
    have[1]["arguments"] = "[]"
    have[2]["survey_vars"] = []
    have[3]["description"] = None
    foreign = dict(have[4], name="made by hand", id=99)
    del have[5]
    plan = operate.semaphore_sync_plan(want, have + [foreign])
    assert plan["create"] == [want[5]]
    assert [(b["name"], b["id"]) for b in plan["change"]] == [(want[i]["name"], i + 10) for i in (1, 2, 3)]
    assert plan["differences"] == {want[1]["name"]: ["arguments"], want[2]["name"]: ["survey_vars"],
                                   want[3]["name"]: ["description"]}
    assert all(dict(b, id=None) == dict(want[i], id=None) for b, i in zip(plan["change"], (1, 2, 3)))
    assert "made by hand" not in json.dumps(plan)


def test_sync_plan_keeps_the_lowest_id_of_a_name_in_sync():
    want = templates()[:1]
    have = [dict(stored(want[0], 8), description="edited"), stored(want[0], 3)]
    plan = operate.semaphore_sync_plan(want, have)
    assert plan["change"] == [] and plan["unchanged"] == [want[0]["name"]]


def test_write_errors_name_the_template_and_never_the_request():
    results = [{"item": {"name": "t1"}, "status": 400, "json": {"error": "invalid template"},
                "invocation": {"module_args": {"headers": {"Authorization": "Bearer s3cret"}}}},
               {"item": {"name": "t2"}, "status": -1, "msg": "Connection refused"}]
    lines = operate.semaphore_write_errors(results)
    assert lines == ['t1: HTTP 400: {"error": "invalid template"}', "t2: HTTP -1: Connection refused"]
    assert "s3cret" not in json.dumps(lines)


def test_dangling_names_each_setting_whose_object_is_missing_and_never_the_request():
    results = [{"item": {"setting": "semaphore_inventory_id", "kind": "inventory", "id": "2"}, "status": 200},
               {"item": {"setting": "semaphore_repository_id", "kind": "repositories", "id": "9"}, "status": 404,
                "invocation": {"module_args": {"headers": {"Authorization": "Bearer s3cret"}}}},
               {"item": {"setting": "semaphore_view_id", "kind": "views", "id": "8"}, "status": -1}]
    lines = operate.semaphore_dangling(results)
    assert lines == ["repositories 9 (semaphore_repository_id: HTTP 404)", "views 8 (semaphore_view_id: HTTP -1)"]
    assert operate_filters.FilterModule().filters()["semaphore_dangling"](results[:1]) == []


def test_the_filters_are_registered():
    filters = operate_filters.FilterModule().filters()
    assert filters["semaphore_templates"](CATALOG, SETTINGS) == templates()
    assert {"semaphore_templates", "semaphore_sync_plan", "semaphore_write_errors"} <= set(filters)
    with pytest.raises(AnsibleFilterError, match="semaphore_templates: settings project_id"):
        filters["semaphore_templates"](CATALOG, dict(SETTINGS, project_id=None))


def test_the_guarded_failback_gets_a_schedule_on_its_apply_template():
    """Semaphore v2.10.32's ScheduleRequest: the failback's apply every N minutes, N the
    role's active_passive_failback_interval (or the same variable given with -e)."""
    stored = [dict(t, id=i) for i, t in enumerate(templates(), start=20)]
    apply_id = next(t["id"] for t in stored if t["name"] == "%s failback apply" % PREFIX)
    sources = {"active_passive_failback_interval": 5, "active_passive_failback": "guarded",
               "active_passive_failback_runner": "external"}
    settings = dict(SETTINGS, schedule_sources=sources)
    assert operate.semaphore_schedules(CATALOG, settings, stored) == [
        {"name": "%s failback schedule" % PREFIX, "project_id": 3, "template_id": apply_id,
         "cron_format": "*/5 * * * *", "active": True}]
    # the apply template not created yet: no id, and the sync wants the write
    want = operate.semaphore_schedules(CATALOG, settings, [])
    assert want[0]["template_id"] is None
    existing = [dict(want[0], id=9, template_id=apply_id, tpl_name="x", repository_id=None)]
    assert operate.semaphore_schedule_sync(want, existing)["change"] == [dict(want[0], id=9)]
    with pytest.raises(AnsibleFilterError, match="semaphore_schedules: catalog failback: schedule_when "
                                                 "active_passive_failback, active_passive_failback_runner: no value"):
        operate_filters.semaphore_schedules(CATALOG, SETTINGS, stored)
    # switched off while the in-cluster CronJob runs the failback
    off = operate.semaphore_schedules(CATALOG, dict(settings, schedule_sources=dict(
        sources, active_passive_failback_runner="cronjob")), stored)
    assert off[0]["active"] is False


def test_a_schedule_sync_writes_only_what_differs():
    want = [{"name": "k8s_ha failback schedule", "project_id": 3, "template_id": 21, "cron_format": "*/5 * * * *",
             "active": True}]
    listed = dict(want[0], id=4, tpl_name="k8s_ha failback apply", repository_id=None)
    assert operate.semaphore_schedule_sync(want, []) == {"create": want, "change": [], "unchanged": []}
    assert operate.semaphore_schedule_sync(want, [listed]) == {
        "create": [], "change": [], "unchanged": ["k8s_ha failback schedule"]}
    for edit in ({"active": False}, {"cron_format": "0 * * * *"}, {"template_id": 22}):
        plan = operate.semaphore_schedule_sync(want, [dict(listed, **edit), dict(listed, id=8)])
        assert plan["change"] == [dict(want[0], id=4)], edit  # the lower id is the one kept
