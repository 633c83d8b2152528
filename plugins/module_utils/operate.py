# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The front ends of operate/catalog.yml (AWX, Semaphore): pure functions that turn the
catalog into the objects each front end's API takes. No I/O here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json


# --- Semaphore ---
# Semaphore UI's templates of operate/catalog.yml, as the bodies of
# POST /api/project/{project_id}/templates (semaphore/configure.yml sends them). The free
# edition has no approval node, so a mutating playbook gets two templates: "<prefix>
# <playbook> check", which runs with --check --diff and prints the plan and its id, and
# "<prefix> <playbook> apply", which asks for that id (approve_plan) and applies only if
# the plan the cluster yields at that moment has it. A read-only playbook gets one.
# Field names and values follow Semaphore v2.10.32 (api-docs.yml TemplateRequest and
# TemplateSurveyVar; db/Template.go for type, app and the survey var types and values),
# transcribed in tests/fixtures/semaphore/template-schema.json.

SEMAPHORE_SURVEY_TYPES = {"text": "", "textarea": "", "integer": "int", "password": "secret",
                          "multiplechoice": "enum"}
SEMAPHORE_CHECK_ARGS = ["--check", "--diff"]


def _semaphore_id(settings, key, required=True):
    value = settings.get(key)
    if value is None or value == "":
        if required:
            raise ValueError("settings %s: the Semaphore id is required" % key)
        return None
    text = ("%s" % value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError("settings %s: %r is not a Semaphore id" % (key, value))
    return int(text)


def survey_question_type(spec, types, label):
    """The type of a catalog survey question, once checked: one of ``types`` (``label``
    names them in the error), and the question has a variable."""
    kind = spec.get("type", "text")
    if kind not in types:
        raise ValueError("survey %s: type %r is not %s (%s)" % (spec.get("variable"), kind, label, ", ".join(sorted(types))))
    if not spec.get("variable"):
        raise ValueError("survey question without a variable: %r" % (spec,))
    return kind


def survey_choices(spec, sources):
    """The choices of a multiple choice question: ``choices``, or ``choices_from``
    ``<source>.keys`` (the keys of a dict in ``sources``) or ``<source>.values`` (the
    union of its values, lists or scalars, first seen first), all as strings."""
    if spec.get("choices") is not None:
        return ["%s" % c for c in spec["choices"]]
    ref = spec.get("choices_from") or ""
    source, dot, part = ref.rpartition(".")
    if not dot or part not in ("keys", "values"):
        raise ValueError("survey %s: choices_from %r is not <source>.keys or <source>.values"
                         % (spec.get("variable"), ref))
    data = (sources or {}).get(source)
    if not isinstance(data, dict) or not data:
        raise ValueError("survey %s: choices_from %r: no %s given" % (spec.get("variable"), ref, source))
    if part == "keys":
        return ["%s" % k for k in data]
    out = []
    for value in data.values():
        for choice in value if isinstance(value, (list, tuple)) else [value]:
            if "%s" % choice not in out:
                out.append("%s" % choice)
    return out


def semaphore_survey_var(spec, sources=None):
    """A catalog survey question as a Semaphore survey var (name, title, description,
    type, required, values); a multiple choice becomes an ``enum`` with its values."""
    kind = survey_question_type(spec, SEMAPHORE_SURVEY_TYPES, "a type a Semaphore survey var has")
    values = []
    if kind == "multiplechoice":
        values = [{"name": c, "value": c} for c in survey_choices(spec, sources)]
    return {"name": spec["variable"], "title": spec.get("question") or spec["variable"],
            "description": spec.get("description") or "", "type": SEMAPHORE_SURVEY_TYPES[kind],
            "required": bool(spec.get("required", False)), "values": values}


def _semaphore_var(name, title, description, required):
    return {"name": name, "title": title, "description": description, "type": "",
            "required": required, "values": []}


def _semaphore_template(ids, view_id, playbook, name, args, survey, description):
    body = dict(ids)
    if view_id is not None:
        body["view_id"] = view_id
    body.update({"name": name, "playbook": "playbooks/%s.yml" % playbook, "app": "ansible", "type": "",
                 "arguments": json.dumps(args), "allow_override_args_in_task": False,
                 "description": description, "survey_vars": survey})
    return body


def catalog_rows(catalog, run="apply", job="task"):
    """Check operate/catalog.yml and walk it: (prefix, rows), one row per playbook in catalog
    order: {entry, playbook, title, base (prefix and playbook), survey (the question specs of
    its homelab_operate_surveys entry), undo (the rollback_from question of a rollback
    playbook, else None), gate (the approve_plan question of a gated playbook, else None)}.
    A question is (variable, title, description, required); ``run`` and ``job`` are the
    tool's words for the real template and for one launch of it. ValueError names the entry
    at fault."""
    prefix = catalog.get("homelab_operate_prefix")
    entries = catalog.get("homelab_operate_playbooks") or []
    surveys = catalog.get("homelab_operate_surveys") or {}
    if not prefix:
        raise ValueError("catalog: homelab_operate_prefix is empty")
    names = [e.get("playbook") for e in entries]
    if not all(names) or len(set(names)) != len(names):
        raise ValueError("catalog: every entry needs a playbook, each once: %s" % names)
    undoes = {}
    for entry in entries:
        if entry.get("rollback"):
            if entry["rollback"] not in names:
                raise ValueError("catalog %s: rollback %s is not in the catalog" % (entry["playbook"], entry["rollback"]))
            undoes[entry["rollback"]] = entry["playbook"]
        if entry.get("survey") and entry["survey"] not in surveys:
            raise ValueError("catalog %s: survey %s is not in homelab_operate_surveys" % (entry["playbook"], entry["survey"]))
    rows = []
    for entry in entries:
        playbook, base = entry["playbook"], "%s %s" % (prefix, entry["playbook"])
        row = {"entry": entry, "playbook": playbook, "title": entry.get("title") or playbook, "base": base,
               "survey": surveys.get(entry.get("survey")) or [], "undo": None, "gate": None}
        if entry.get("releases"):
            if entry["releases"] not in names:
                raise ValueError("catalog %s: releases %s is not in the catalog" % (playbook, entry["releases"]))
            row["undo"] = ("release_from", "Evidence folder of the run whose holds to release",
                           "A folder <evidence_root>/<time>-%s. Empty: the newest run that holds something. Give "
                           "check and %s the same folder." % (entry["releases"], run), False)
        if playbook in undoes:
            row["title"] = "%s, undoes a run of '%s %s %s'" % (row["title"], prefix, undoes[playbook], run)
            row["undo"] = ("rollback_from", "Evidence folder of the run to undo",
                           "A folder <evidence_root>/<time>-%s. Empty: the newest run with changes. Give check and %s "
                           "the same folder." % (undoes[playbook], run), False)
        if entry.get("gated") and entry.get("mutating", True):
            row["gate"] = ("approve_plan", "Plan id (from the check %s)" % job,
                           "The 'Plan id:' line of '%s check' launched with the same answers. The %s applies only if "
                           "the plan it computes now has that id; a stale or wrong id stops it before any change."
                           % (base, run), True)
        rows.append(row)
    return prefix, rows


# An unattended run: a catalog entry's ``schedule`` names the role variable that gives its
# interval in minutes (failback: active_passive_failback_interval); the front ends take the
# value from ``schedule_sources`` (the role's defaults, or the operator's -e of that same
# variable), so the interval is defined once.
SCHEDULE_MINUTES = (1, 59)  # a cron minute step (Semaphore); AWX's rrule takes the same
# AWX computes the runs from DTSTART; a fixed one keeps the rrule the same on every run
# of awx/configure.yml (a second run changes nothing).
AWX_SCHEDULE_START = "DTSTART:20260101T000000Z"


def catalog_schedules(catalog, sources):
    """[(playbook, minutes, enabled)] of the catalog entries that run on a schedule, in
    catalog order. ``sources``: {role variable: value}. A schedule is enabled only while
    every variable of its entry's ``schedule_when`` has the value given there (the guarded
    failback: not while the descheduler or the in-cluster CronJob fails back, which would
    evict beside it). ValueError names the entry and the variable."""
    out = []
    for entry in catalog.get("homelab_operate_playbooks") or []:
        var = entry.get("schedule")
        if not var:
            continue
        playbook = entry.get("playbook")
        if not entry.get("mutating", True) or entry.get("gated"):
            raise ValueError("catalog %s: schedule needs a mutating, ungated playbook (nobody approves a scheduled"
                             " run)" % playbook)
        wanted = entry.get("schedule_when") or {}
        missing = sorted(k for k in wanted if k not in (sources or {}))
        if missing:
            raise ValueError("catalog %s: schedule_when %s: no value given (schedule_sources)"
                             % (playbook, ", ".join(missing)))
        if var not in (sources or {}):
            raise ValueError("catalog %s: schedule %s: no value given for it (schedule_sources)" % (playbook, var))
        value = sources[var]
        text = ("%s" % value).strip()
        if isinstance(value, bool) or not text.isdigit() or not SCHEDULE_MINUTES[0] <= int(text) <= SCHEDULE_MINUTES[1]:
            raise ValueError("catalog %s: %s is %r; a schedule takes whole minutes from %d to %d"
                             % (playbook, var, value, SCHEDULE_MINUTES[0], SCHEDULE_MINUTES[1]))
        out.append((playbook, int(text), all(("%s" % sources[k]).strip() == ("%s" % v) for k, v in wanted.items())))
    return out


def semaphore_templates(catalog, settings):
    """The template payloads of every catalog playbook, in catalog order.

    ``catalog``: operate/catalog.yml (homelab_operate_prefix, homelab_operate_playbooks,
    homelab_operate_surveys). ``settings``: project_id, inventory_id, repository_id,
    environment_id (Semaphore ids), optional view_id, evidence_root (a folder that outlives
    the task's checkout; passed to every run as an extra var) and survey_sources (the data
    ``choices_from`` names, e.g. {'app_migration_stages': {...}}). ValueError on a
    catalog or settings error."""
    prefix, rows = catalog_rows(catalog)
    ids = {}
    for key in ("project_id", "inventory_id", "repository_id", "environment_id"):
        ids[key] = _semaphore_id(settings, key)
    view_id = _semaphore_id(settings, "view_id", required=False)
    extra = []
    if settings.get("evidence_root"):
        extra = ["-e", json.dumps({"evidence_root": "%s" % settings["evidence_root"]}, sort_keys=True)]
    sources = settings.get("survey_sources") or {}

    out = []
    for row in rows:
        entry, playbook, title, base = row["entry"], row["playbook"], row["title"], row["base"]
        questions = [semaphore_survey_var(q, sources) for q in row["survey"]]
        if row["undo"]:
            questions.append(_semaphore_var(*row["undo"]))

        def add(name, args, survey, description, _playbook=playbook):
            out.append(_semaphore_template(ids, view_id, _playbook, name, args, survey, description))

        if not entry.get("mutating", True):
            add(base, extra, questions, "%s. Read-only: changes nothing in the cluster." % title)
            continue
        apply_survey = list(questions)
        if row["gate"]:
            apply_survey.append(_semaphore_var(*row["gate"]))
            check_how = "Prints the plan and its id; approve that id in '%s apply'." % base
            apply_how = ("Applies the plan whose id is approve_plan, only if the cluster yields that very "
                         "plan now; otherwise stops, changing nothing.")
        else:
            check_how = "Shows what '%s apply' would do." % base
            apply_how = "Runs for real; not gated by a plan id (run the check first to see what it would do)."
        if entry.get("rollback"):
            apply_how += " Undo: '%s %s check', then '... apply'." % (prefix, entry["rollback"])
        add(base + " check", SEMAPHORE_CHECK_ARGS + extra, questions,
            "%s. Dry run (--check --diff): changes nothing. %s" % (title, check_how))
        add(base + " apply", extra, apply_survey, "%s. %s" % (title, apply_how))
    return out


def _semaphore_args(value):
    if value is None or value == "":
        return []
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _semaphore_survey(value):
    out = []
    for var in value or []:
        out.append({"name": var.get("name"), "title": var.get("title") or "", "description": var.get("description") or "",
                    "type": var.get("type") or "", "required": bool(var.get("required")),
                    "values": [{"name": v.get("name"), "value": v.get("value")} for v in var.get("values") or []]})
    return out


def semaphore_template_differences(want, have):
    """The fields of payload ``want`` that template ``have`` (a GET of it) does not carry
    as wanted: arguments compared as the JSON list they encode, survey vars with absent
    description and values read as empty, a null description as ''."""
    out = []
    for key, value in want.items():
        current = have.get(key)
        if key == "arguments":
            value, current = _semaphore_args(value), _semaphore_args(current)
        elif key == "survey_vars":
            value, current = _semaphore_survey(value), _semaphore_survey(current)
        elif key == "description":
            current = current or ""
        if value != current:
            out.append(key)
    return out


def _semaphore_by_name(objects):
    """{name: object} of Semaphore objects (templates, schedules); of two with one name the
    lower id, the one kept in sync."""
    by_name = {}
    for obj in sorted(objects or [], key=lambda o: o.get("id") or 0):
        by_name.setdefault(obj.get("name"), obj)
    return by_name


def semaphore_sync_plan(desired, existing):
    """What to write so the project holds ``desired`` (payloads; matched by name):
    ``create`` (payloads to POST), ``change`` (payloads with the template's id, to PUT
    to /templates/{id}; Semaphore wants the id in the body too), ``unchanged`` (names)
    and ``differences`` ({name: [fields]}). ``existing``: the project's templates, each as
    GET /templates/{id} returns it (the list of v2.10 leaves survey_vars out). Of two
    templates with one name, the lower id is the one kept in sync."""
    by_name = _semaphore_by_name(existing)
    plan = {"create": [], "change": [], "unchanged": [], "differences": {}}
    for want in desired:
        have = by_name.get(want["name"])
        if have is None:
            plan["create"].append(want)
            continue
        fields = semaphore_template_differences(want, have)
        if fields:
            body = dict(want)
            body["id"] = have["id"]
            plan["change"].append(body)
            plan["differences"][want["name"]] = fields
        else:
            plan["unchanged"].append(want["name"])
    return plan


# Semaphore v2.10.32 schedules (db/Schedule.go; api/projects/schedules.go): POST
# /api/project/{id}/schedules {project_id, template_id, cron_format, name, active}, 201; PUT
# /schedules/{schedule_id} the same with its id, 204; the cron is robfig/cron's ParseStandard
# (five fields). The list (GET /schedules) has the project's template schedules only.
def semaphore_schedules(catalog, settings, templates):
    """The bodies of the catalog's Semaphore schedules: one per scheduled playbook, named
    "<prefix> <playbook> schedule", running its apply template every N minutes
    (``*/N * * * *``). ``settings``: project_id and schedule_sources (the role variables a
    ``schedule`` names). ``templates``: the project's templates as listed; a template not
    there yet gives ``template_id`` None (semaphore_schedule_sync then wants a write, and the
    play lists the templates again after it created them)."""
    prefix = catalog.get("homelab_operate_prefix")
    project_id = _semaphore_id(settings, "project_id")
    ids = _semaphore_by_name(templates)
    out = []
    for playbook, minutes, enabled in catalog_schedules(catalog, settings.get("schedule_sources") or {}):
        base = "%s %s" % (prefix, playbook)
        out.append({"name": base + " schedule", "project_id": project_id, "template_id": (ids.get(base + " apply") or {}).get("id"),
                    "cron_format": "*/%d * * * *" % minutes, "active": enabled})
    return out


def semaphore_schedule_sync(desired, existing):
    """``create`` (bodies to POST), ``change`` (bodies with the schedule's id, to PUT to
    /schedules/{id}) and ``unchanged`` (names) of ``desired`` against the project's
    schedules (GET /schedules), matched by name; of two with one name the lower id is kept
    in sync. A body without its template (``template_id`` None) always needs a write."""
    by_name = _semaphore_by_name(existing)
    plan = {"create": [], "change": [], "unchanged": []}
    for want in desired or []:
        have = by_name.get(want["name"])
        if have is None:
            plan["create"].append(want)
        elif want["template_id"] is None or any(want[k] != have.get(k) for k in want):
            plan["change"].append(dict(want, id=have["id"]))
        else:
            plan["unchanged"].append(want["name"])
    return plan


def semaphore_write_errors(results):
    """``<name>: HTTP <status>: <Semaphore's answer>`` of each failed write: registered
    ansible.builtin.uri results, read for the item's name, the status and the answer only
    (never the request, whose headers carry the token)."""
    out = []
    for result in results or []:
        answer = result.get("json")
        if answer is None:
            answer = result.get("msg") or ""
        name = (result.get("item") or {}).get("name")
        out.append("%s: HTTP %s: %s" % (name, result.get("status"), answer if isinstance(answer, str) else json.dumps(answer)))
    return out


def semaphore_dangling(results):
    """``<kind> <id> (<setting>: HTTP <status>)`` of each settings id that names no object of
    the project: registered ansible.builtin.uri results of GETs whose ``item`` has
    ``setting``, ``kind`` and ``id`` (read for those and the status only)."""
    out = []
    for result in results or []:
        if result.get("status") == 200:
            continue
        item = result.get("item") or {}
        out.append("%s %s (%s: HTTP %s)" % (item.get("kind"), item.get("id"), item.get("setting"), result.get("status")))
    return out


# --- AWX ---
# AWX (awx.awx 24.6.1) objects of operate/catalog.yml, as the parameters of the awx.awx
# modules awx/configure.yml calls: one project (this repository), one inventory with a
# source from the project, one Kubernetes bearer-token credential, an execution
# environment if an image is given, and per catalog playbook:
# - read-only: "<prefix> <playbook>" (job_type run);
# - mutating: "<prefix> <playbook> check" (job_type check, diff on: prints the plan and its
#   id), "<prefix> <playbook> run" (asks for approve_plan when gated) and the workflow
#   "<prefix> <playbook>": check -> approval node "Approve <playbook> plan" (with a
#   timeout) -> run, and when the run fails and the playbook has a rollback: the
#   rollback's check -> "Approve <rollback> plan" -> the rollback's run.
# In a workflow the plan id and the evidence folder travel as set_stats artifacts (the
# evidence role publishes approve_plan in check mode and rollback_from after a real run):
# AWX merges a parent's artifacts into the next job's extra vars, also through approval
# nodes, and regardless of the job template's prompts.

AWX_SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                    "integer": int, "float": float}
AWX_KUBERNETES_CREDENTIAL_TYPE = "OpenShift or Kubernetes API Bearer Token"
AWX_NODE_IDS = ("check", "approve", "run", "rollback-check", "approve-rollback", "rollback-run")


def awx_survey_question(spec, sources=None):
    """A catalog survey question as an AWX survey spec item."""
    kind = survey_question_type(spec, AWX_SURVEY_TYPES, "an AWX question type")
    out = {"question_name": spec.get("question") or spec["variable"], "question_description": spec.get("description") or "",
           "variable": spec["variable"], "type": kind, "required": bool(spec.get("required", False))}
    if kind in ("multiplechoice", "multiselect"):
        out["choices"] = survey_choices(spec, sources)
    if spec.get("default") is not None:
        out["default"] = spec["default"]
    return out


def awx_survey_spec_errors(survey):
    """What AWX's survey_spec endpoint (JobTemplateSurveySpec._validate_spec_data, shared
    by workflow job templates) would refuse in ``survey`` with HTTP 400, as messages; []
    when it takes it. An empty dict is no survey (awx.awx deletes it)."""
    if survey == {}:
        return []
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("survey %s: missing or not a %s" % (field, kind.__name__))
    if errors:
        return errors
    if not survey["spec"]:
        return ["survey spec: no questions"]
    seen = set()
    for idx, item in enumerate(survey["spec"]):
        if not isinstance(item, dict):
            errors.append("question %d: not an object" % idx)
            continue
        missing = ["question %d: %s missing or not a %s" % (idx, field, "bool" if field == "required" else "str")
                   for field in ("type", "question_name", "variable", "required")
                   if not isinstance(item.get(field), bool if field == "required" else str)]
        if missing:
            errors += missing
            continue
        if item["variable"] in seen:
            errors.append("question %d: variable %s duplicated" % (idx, item["variable"]))
        seen.add(item["variable"])
        kind = item["type"]
        if kind not in AWX_SURVEY_TYPES:
            errors.append("question %d: type %r is not one of %s" % (idx, kind, ", ".join(AWX_SURVEY_TYPES)))
            continue
        default = item.get("default", "")
        if default != "" and not isinstance(default, AWX_SURVEY_TYPES[kind]):
            errors.append("question %d: default %r is not a %s" % (idx, default, AWX_SURVEY_TYPES[kind].__name__))
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append("question %d: %s is not an integer" % (idx, key))
        if kind in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not choices:
                errors.append("question %d: a %s needs choices" % (idx, kind))
            elif default != "":
                defaults = default.splitlines() if isinstance(default, str) else default
                if kind == "multiplechoice" and len(defaults) > 1:
                    errors.append("question %d: a multiplechoice has one default" % idx)
                if any(d not in choices for d in defaults):
                    errors.append("question %d: default %r is not among the choices" % (idx, default))
    return errors


def _awx_survey(name, questions):
    if not questions:
        return {}
    survey = {"name": name, "description": "", "spec": questions}
    errors = awx_survey_spec_errors(survey)
    if errors:
        raise ValueError("survey of %s: %s" % (name, "; ".join(errors)))
    return survey


def _awx_question(variable, question, description, required):
    return {"question_name": question, "question_description": description, "variable": variable,
            "type": "text", "required": required}


def _awx_text(settings, key, required=True):
    value = settings.get(key)
    if value is None or ("%s" % value).strip() == "":
        if required:
            raise ValueError("settings %s: required, got nothing" % key)
        return None
    return ("%s" % value).strip()


def _awx_settings(settings):
    out = {}
    for key in ("organization", "project_scm_url", "k8s_host", "evidence_root"):
        out[key] = _awx_text(settings, key)
    for key in ("project_scm_branch", "ee_image", "k8s_ca_cert"):
        out[key] = _awx_text(settings, key, required=False)
    if not out["evidence_root"].startswith("/"):
        raise ValueError("settings evidence_root: %r is not an absolute path (a folder that outlives the job)"
                         % out["evidence_root"])
    timeout = settings.get("approval_timeout", 3600)
    if isinstance(timeout, bool) or not ("%s" % timeout).strip().isdigit():
        raise ValueError("settings approval_timeout: %r is not a number of seconds (0: no timeout)" % (timeout,))
    out["approval_timeout"] = int(("%s" % timeout).strip())
    verify = settings.get("k8s_verify_ssl", True)
    if not isinstance(verify, bool):
        raise ValueError("settings k8s_verify_ssl: %r is not true or false" % (verify,))
    out["k8s_verify_ssl"] = verify
    return out


def awx_objects(catalog, settings):
    """The awx.awx module parameters of every AWX object the catalog asks for:
    {execution_environments, projects, inventories, inventory_sources, credentials,
    job_templates, workflow_job_templates}, each a list of parameter dicts in the order
    they must be created. The credential carries no token: the playbook adds
    ``bearer_token`` to its inputs under no_log.

    ``settings``: organization, project_scm_url, project_scm_branch (optional), k8s_host,
    k8s_verify_ssl (bool), k8s_ca_cert (PEM, optional), ee_image (optional),
    evidence_root (absolute; a folder every job sees and that outlives it),
    approval_timeout (seconds, 0: none; default 3600), survey_sources (the data
    ``choices_from`` names) and schedule_sources (the role variables a ``schedule`` names).
    ``schedules``: one per scheduled playbook, on its run job template (not the workflow:
    its approval node would wait every time). ValueError on a catalog or settings error."""
    prefix, rows = catalog_rows(catalog, run="run", job="job")
    if not catalog.get("homelab_operate_inventory"):
        raise ValueError("catalog: homelab_operate_inventory is empty")
    conf = _awx_settings(settings)
    sources = settings.get("survey_sources") or {}
    org = conf["organization"]
    inventory_dir = catalog["homelab_operate_inventory"]
    inventory = "%s %s" % (prefix, inventory_dir)
    credential = "%s Kubernetes API" % prefix
    extra_vars = {"evidence_root": conf["evidence_root"]}
    ee_name = prefix if conf["ee_image"] else None
    by_name = dict((row["playbook"], row["entry"]) for row in rows)

    out = {"execution_environments": [], "projects": [], "inventories": [], "inventory_sources": [],
           "credentials": [], "job_templates": [], "workflow_job_templates": [], "schedules": []}
    if ee_name:
        out["execution_environments"].append({
            "name": ee_name, "image": conf["ee_image"], "organization": org, "pull": "missing",
            "description": "homelab.k8s_ha's execution environment (execution-environment.yml)", "state": "present"})
    project = {"name": prefix, "organization": org, "scm_type": "git", "scm_url": conf["project_scm_url"],
               "scm_update_on_launch": True, "allow_override": False, "wait": True, "state": "present",
               "description": "The homelab.k8s_ha checkout: playbooks/, inventories/"}
    if conf["project_scm_branch"]:
        project["scm_branch"] = conf["project_scm_branch"]
    if ee_name:
        project["default_environment"] = ee_name
    out["projects"].append(project)
    out["inventories"].append({"name": inventory, "organization": org, "state": "present",
                               "description": "inventories/%s of the project" % inventory_dir})
    source = {"name": inventory, "inventory": inventory, "organization": org, "source": "scm",
              "source_project": prefix, "source_path": "inventories/%s/hosts.yml" % inventory_dir,
              "overwrite": True, "overwrite_vars": True, "update_on_launch": True, "state": "present",
              "description": "hosts.yml and group_vars of inventories/%s" % inventory_dir}
    if ee_name:
        source["execution_environment"] = ee_name
    out["inventory_sources"].append(source)
    inputs = {"host": conf["k8s_host"], "verify_ssl": conf["k8s_verify_ssl"]}
    if conf["k8s_ca_cert"]:
        inputs["ssl_ca_cert"] = conf["k8s_ca_cert"]
    out["credentials"].append({
        "name": credential, "organization": org, "credential_type": AWX_KUBERNETES_CREDENTIAL_TYPE, "inputs": inputs,
        "state": "present", "description": "A ServiceAccount token bound to the rbac/ ClusterRoles of the families run here"})

    def template(name, playbook, job_type, description, questions):
        tpl = {"name": name, "organization": org, "project": prefix, "playbook": "playbooks/%s.yml" % playbook,
               "inventory": inventory, "credentials": [credential], "job_type": job_type, "diff_mode": True,
               "extra_vars": extra_vars, "ask_variables_on_launch": False, "allow_simultaneous": False,
               "survey_enabled": bool(questions), "survey_spec": _awx_survey(name, questions),
               "description": description, "state": "present"}
        if ee_name:
            tpl["execution_environment"] = ee_name
        out["job_templates"].append(tpl)
        return name

    def jt_node(identifier, name, success=None, failure=None):
        node = {"identifier": identifier,
                "unified_job_template": {"name": name, "type": "job_template", "organization": {"name": org}},
                "related": {"success_nodes": [{"identifier": i} for i in success or []],
                            "failure_nodes": [{"identifier": i} for i in failure or []]}}
        return node

    def approval(identifier, playbook, success):
        return {"identifier": identifier,
                "unified_job_template": {"name": "Approve %s plan" % playbook, "type": "workflow_approval",
                                         "timeout": conf["approval_timeout"],
                                         "description": "Read the plan and its id in the output of '%s %s check'; approve "
                                                        "to run exactly that plan." % (prefix, playbook)},
                "related": {"success_nodes": [{"identifier": i} for i in success], "failure_nodes": []}}

    for row in rows:
        entry, playbook, title, base = row["entry"], row["playbook"], row["title"], row["base"]
        questions = [awx_survey_question(q, sources) for q in row["survey"]]
        if row["undo"]:
            questions.append(_awx_question(*row["undo"]))
        if not entry.get("mutating", True):
            template(base, playbook, "run", "%s. Read-only: changes nothing in the cluster." % title, questions)
            continue
        run_questions = list(questions)
        if row["gate"]:
            run_questions.append(_awx_question(*row["gate"]))
        template(base + " check", playbook, "check",
                 "%s. Check and diff: changes nothing; prints the plan and its id." % title, questions)
        template(base + " run", playbook, "run",
                 "%s. %s" % (title, "Applies the plan whose id is approve_plan, only if the cluster yields that very plan "
                                    "now." if entry.get("gated") else "Runs for real; not gated by a plan id."), run_questions)
        nodes = [jt_node("check", base + " check", success=["approve"]),
                 approval("approve", playbook, ["run"]),
                 jt_node("run", base + " run", failure=["rollback-check"] if entry.get("rollback") else [])]
        how = "check, approval, run"
        if entry.get("rollback"):
            undo = "%s %s" % (prefix, entry["rollback"])
            nodes += [jt_node("rollback-check", undo + " check", success=["approve-rollback"]),
                      approval("approve-rollback", entry["rollback"], ["rollback-run"]),
                      jt_node("rollback-run", undo + " run")]
            how += "; if the run fails: %s check, approval, %s run (of the failed run's evidence folder)" % (undo, undo)
            if by_name[entry["rollback"]].get("survey") not in (None, entry.get("survey")):
                raise ValueError("catalog %s: its rollback %s asks other survey questions; the workflow cannot answer them"
                                 % (playbook, entry["rollback"]))
        workflow = {"name": base, "organization": org, "inventory": inventory, "extra_vars": extra_vars,
                    "ask_variables_on_launch": False, "allow_simultaneous": False,
                    "survey_enabled": bool(questions), "survey_spec": _awx_survey(base, questions),
                    "workflow_nodes": nodes, "description": "%s. %s." % (title, how), "state": "present"}
        out["workflow_job_templates"].append(workflow)
    for playbook, minutes, enabled in catalog_schedules(catalog, settings.get("schedule_sources") or {}):
        base = "%s %s" % (prefix, playbook)
        out["schedules"].append({
            "name": base + " schedule", "unified_job_template": base + " run", "organization": org,
            "rrule": "%s RRULE:FREQ=MINUTELY;INTERVAL=%d" % (AWX_SCHEDULE_START, minutes), "enabled": enabled,
            "description": "%s every %d minutes, unattended (%s)" % (by_name[playbook].get("title") or playbook, minutes,
                                                                     by_name[playbook]["schedule"]),
            "state": "present"})
    return out
