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


def semaphore_survey_choices(spec, sources):
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
    kind = spec.get("type", "text")
    if kind not in SEMAPHORE_SURVEY_TYPES:
        raise ValueError("survey %s: type %r has no Semaphore survey var type (%s)"
                         % (spec.get("variable"), kind, ", ".join(sorted(SEMAPHORE_SURVEY_TYPES))))
    if not spec.get("variable"):
        raise ValueError("survey question without a variable: %r" % (spec,))
    values = []
    if kind == "multiplechoice":
        values = [{"name": c, "value": c} for c in semaphore_survey_choices(spec, sources)]
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


def semaphore_templates(catalog, settings):
    """The template payloads of every catalog playbook, in catalog order.

    ``catalog``: operate/catalog.yml (homelab_operate_prefix, homelab_operate_playbooks,
    homelab_operate_surveys). ``settings``: project_id, inventory_id, repository_id,
    environment_id (Semaphore ids), optional view_id, evidence_root (a folder that outlives
    the task's checkout; passed to every run as an extra var) and survey_sources (the data
    ``choices_from`` names, e.g. {'app_migration_stages': {...}}). ValueError on a
    catalog or settings error."""
    prefix = catalog.get("homelab_operate_prefix")
    entries = catalog.get("homelab_operate_playbooks") or []
    surveys = catalog.get("homelab_operate_surveys") or {}
    if not prefix:
        raise ValueError("catalog: homelab_operate_prefix is empty")
    ids = {}
    for key in ("project_id", "inventory_id", "repository_id", "environment_id"):
        ids[key] = _semaphore_id(settings, key)
    view_id = _semaphore_id(settings, "view_id", required=False)
    names = [e.get("playbook") for e in entries]
    if not all(names) or len(set(names)) != len(names):
        raise ValueError("catalog: every entry needs a playbook, each once: %s" % names)
    undoes = {}
    for entry in entries:
        if entry.get("rollback"):
            if entry["rollback"] not in names:
                raise ValueError("catalog %s: rollback %s is not in the catalog" % (entry["playbook"], entry["rollback"]))
            undoes[entry["rollback"]] = entry["playbook"]
    extra = []
    if settings.get("evidence_root"):
        extra = ["-e", json.dumps({"evidence_root": "%s" % settings["evidence_root"]}, sort_keys=True)]
    sources = settings.get("survey_sources") or {}

    out = []
    for entry in entries:
        playbook = entry["playbook"]
        title = entry.get("title") or playbook
        base = "%s %s" % (prefix, playbook)
        questions = []
        if entry.get("survey"):
            if entry["survey"] not in surveys:
                raise ValueError("catalog %s: survey %s is not in homelab_operate_surveys" % (playbook, entry["survey"]))
            questions = [semaphore_survey_var(q, sources) for q in surveys[entry["survey"]]]
        if playbook in undoes:
            title = "%s, undoes a run of '%s %s apply'" % (title, prefix, undoes[playbook])
            questions.append(_semaphore_var(
                "rollback_from", "Evidence folder of the run to undo",
                "A folder <evidence_root>/<time>-%s. Leave it untouched for the newest run with changes; "
                "give check and apply the same folder." % undoes[playbook], False))

        def add(name, args, survey, description, _playbook=playbook):
            out.append(_semaphore_template(ids, view_id, _playbook, name, args, survey, description))

        if not entry.get("mutating", True):
            add(base, extra, questions, "%s. Read-only: changes nothing in the cluster." % title)
            continue
        apply_survey = list(questions)
        if entry.get("gated"):
            apply_survey.append(_semaphore_var(
                "approve_plan", "Plan id (from the check task)",
                "The 'Plan id:' line of '%s check' run with the same answers. This run applies only if the plan "
                "it computes now has that id; a stale or wrong id stops it before any change." % base, True))
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


def semaphore_sync_plan(desired, existing):
    """What to write so the project holds ``desired`` (payloads; matched by name):
    ``create`` (payloads to POST), ``change`` (payloads with the template's id, to PUT
    to /templates/{id}; Semaphore wants the id in the body too), ``unchanged`` (names)
    and ``differences`` ({name: [fields]}). ``existing``: the project's templates, each as
    GET /templates/{id} returns it (the list of v2.10 leaves survey_vars out). Of two
    templates with one name, the lower id is the one kept in sync."""
    by_name = {}
    for tpl in sorted(existing or [], key=lambda t: t.get("id") or 0):
        by_name.setdefault(tpl.get("name"), tpl)
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
