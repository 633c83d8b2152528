#!/usr/bin/env python
"""A Semaphore UI simulator for tests: the template endpoints semaphore/configure.yml uses.

A real Semaphore needs a database, a user, an API token and a project before its API
answers, so this stands in for it. It follows Semaphore v2.10.32's API (api-docs.yml and
api/projects/templates.go of that tag), under ``/api``:

- ``GET /api/project/{project_id}/templates[?sort=..&order=..]``: the project's templates,
  by name. As v2.10.32's list query does, each has ``survey_vars: null`` (GetTemplates
  unmarshals them into a copy it then drops); only the single GET carries them.
- ``GET /api/project/{project_id}/templates/{template_id}``: one template, every field of
  db.Template (``vaults``, ``type``, ``view_id``, ``last_task``, ``tasks``, ...).
- ``POST /api/project/{project_id}/templates``: 201 and the template with its new ``id``.
- ``PUT /api/project/{project_id}/templates/{template_id}``: 204, no body. The body
  replaces the template (a field left out is reset); its ``id`` must be the URL's and its
  ``project_id`` the project's (400 ``{"error": ...}`` otherwise, as Semaphore answers).

Every request must carry ``Authorization: Bearer <token>``; anything else is 401 with an
empty body, as Semaphore's authentication handler answers. POST and PUT bodies are
validated against tests/fixtures/semaphore/template-schema.json (the documented
TemplateRequest, stricter than Semaphore, which ignores unknown fields): 400 with
``{"error": ..., "errors": [...]}`` on any violation. Unknown projects, templates and
paths are 404.

As Semaphore's project middleware does, a write (POST, PUT) needs a role with
CanManageProjectResources (``owner`` or ``manager``) or an admin user: else 403 with no
body; ``GET /api/user`` and ``GET /api/project/{id}/role`` say who the token is.
``GET /api/project/{id}/{inventory|repositories|environment|views}/{item}`` is 200 for
the ids given as ``resources`` and 404 with no body for any other, and a template whose
``inventory_id``, ``repository_id``, ``environment_id`` or ``view_id`` names an id the
project lacks is refused with 400 and no body, as the SQL store's foreign keys make it
(``helpers.WriteError``'s default).

Schedules (db/Schedule.go, api/projects/schedules.go, db/sql/schedule.go of v2.10.32):
``GET /api/project/{id}/schedules`` lists the project's schedules with their template's
name (``tpl_name``); ``POST`` stores one (201, with its ``id``; the project is the URL's);
``PUT /schedules/{schedule_id}`` replaces one (204; the body's ``id`` must be the URL's and
its ``project_id`` the schedule's, else 400). The cron must parse as robfig/cron's
``ParseStandard`` parses it (``cron_standard_error``: five fields, each ``*``, a number, a
range or a list within the field's bounds, an optional ``/step``; or a ``@`` descriptor),
else 400 ``{"error": "Cron: ..."}``; a ``template_id`` the project lacks is refused with 400
and no body (the foreign key). A write needs the same role as a template's.

Every request is logged (``requests``: method, path, status, body, t) so tests can assert
that a second run sent no POST or PUT; ``edit`` changes a template behind the client's
back, as a person in the web UI would.
"""

from __future__ import annotations

import argparse
import copy
import http.server
import json
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "semaphore" / "template-schema.json"
# db.Template's JSON fields and the values a template created without them has
TEMPLATE_FIELDS = {"id": None, "project_id": None, "inventory_id": None, "repository_id": 0, "environment_id": None,
                   "name": "", "playbook": "", "arguments": None, "allow_override_args_in_task": False,
                   "description": None, "vaults": [], "type": "", "start_version": None, "build_template_id": None,
                   "view_id": None, "last_task": None, "autorun": False, "git_branch": None, "survey_vars": [],
                   "suppress_success_alerts": False, "app": "", "tasks": 0}
# db.SurveyVar's JSON fields
SURVEY_VAR_FIELDS = {"name": "", "title": "", "required": False, "type": "", "description": "", "values": None}


def schema_errors(body, schema=None):
    """The schema's complaints about a template body, as ``<path>: <message>`` lines."""
    validator = jsonschema.Draft202012Validator(schema or json.loads(SCHEMA_PATH.read_text()))
    out = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = "/".join("%s" % p for p in error.absolute_path) or "(body)"
        out.append("%s: %s" % (where, error.message))
    if isinstance(body, dict) and isinstance(body.get("arguments"), str):
        try:
            args = json.loads(body["arguments"])
        except ValueError:
            args = None
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            out.append("arguments: %r is not a JSON list of strings" % body["arguments"])
    return out


# db/ProjectUser.go: the project roles and what each may do (CanManageProjectResources is
# what creating and changing templates takes)
CAN_RUN_TASKS, CAN_UPDATE_PROJECT, CAN_MANAGE_RESOURCES, CAN_MANAGE_USERS = 1, 2, 4, 8
ROLE_PERMISSIONS = {"owner": CAN_RUN_TASKS | CAN_MANAGE_RESOURCES | CAN_UPDATE_PROJECT | CAN_MANAGE_USERS,
                    "manager": CAN_RUN_TASKS | CAN_MANAGE_RESOURCES, "task_runner": CAN_RUN_TASKS, "guest": 0}
# a template's references to other objects of its project: the URL path of each kind
REFERENCES = {"inventory_id": "inventory", "repository_id": "repositories", "environment_id": "environment",
              "view_id": "views"}


# robfig/cron v3 ParseStandard: minute, hour, day of month, month, day of week
CRON_BOUNDS = [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6)]
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
SCHEDULE_FIELDS = {"id": 0, "project_id": 0, "template_id": 0, "cron_format": "", "name": "", "active": False,
                   "repository_id": None}


def cron_standard_error(spec):
    """What robfig/cron's ParseStandard says of ``spec`` (None if it parses). Stricter than
    robfig where unsure: no month or weekday names, no ``?``, no TZ= prefix, no @every."""
    if not isinstance(spec, str) or not spec.strip():
        return "empty spec string"
    if spec.startswith("@"):
        return None if spec in CRON_DESCRIPTORS else "unrecognized descriptor: %s" % spec
    fields = spec.split()
    if len(fields) != 5:
        return "expected exactly 5 fields, found %d: %s" % (len(fields), fields)
    for text, (what, low, high) in zip(fields, CRON_BOUNDS):
        for part in text.split(","):
            rng, step = (part.split("/", 1) + [""])[:2]
            if step and (not step.isdigit() or int(step) == 0):
                return "step of range should be a positive number: %s" % part
            if rng == "*":
                continue
            ends = rng.split("-")
            if len(ends) > 2 or not all(e.isdigit() for e in ends):
                return "failed to parse int from %s (%s)" % (rng, what)
            start, end = int(ends[0]), int(ends[-1])
            if start < low or end > high or start > end:
                return "%s out of range (%d-%d): %s" % (what, low, high, part)
    return None


class SemaphoreSimulator:
    def __init__(self, token, projects=(1,), port=0, role="manager", admin=False, resources=None):
        """``token``: the API token that authenticates, of a user with ``role`` in every project
        of ``projects`` (the ids), or a Semaphore admin; ``resources``: the ids of each kind
        (``inventory``, ``repositories``, ``environment``, ``views``) that every project has."""
        self.token = token
        self.projects = set(projects)
        self.role, self.admin = role, admin
        self.resources = {k: set(v) for k, v in (resources or {}).items()}
        self.schema = json.loads(SCHEMA_PATH.read_text())
        self.lock = threading.RLock()
        self.t0 = time.monotonic()
        self.templates = {}  # id -> stored template (db.Template's JSON)
        self.schedules = {}  # id -> stored schedule (db.Schedule's JSON)
        self.next_schedule_id = 1
        self.next_id = 1
        self.requests = []
        self.port = port
        self._server = None

    def now(self):
        return round(time.monotonic() - self.t0, 3)

    # ---- store -------------------------------------------------------------------------
    @staticmethod
    def _stored(body, template_id, project_id):
        tpl = copy.deepcopy(TEMPLATE_FIELDS)
        tpl.update({k: copy.deepcopy(v) for k, v in body.items() if k in TEMPLATE_FIELDS})
        tpl["id"], tpl["project_id"] = template_id, project_id
        tpl["survey_vars"] = [dict(SURVEY_VAR_FIELDS, **v) for v in tpl["survey_vars"] or []]
        return tpl

    def add(self, project_id, body):
        """Store a template as POST does; the stored template."""
        with self.lock:
            tpl = self._stored(body, self.next_id, project_id)
            self.templates[tpl["id"]] = tpl
            self.next_id += 1
            return copy.deepcopy(tpl)

    def edit(self, name, **fields):
        """Change the template called ``name`` as a person in the web UI would."""
        with self.lock:
            tpl = next(t for t in self.templates.values() if t["name"] == name)
            tpl.update(copy.deepcopy(fields))
            return copy.deepcopy(tpl)

    def by_name(self, project_id=None):
        with self.lock:
            return {t["name"]: copy.deepcopy(t) for t in sorted(self.templates.values(), key=lambda t: t["id"])
                    if project_id is None or t["project_id"] == project_id}

    def _dangling(self, body):
        """The references of a template body to objects its project does not have (the SQL
        store's foreign keys on project__template; 0 or null is no reference)."""
        return [field for field, kind in REFERENCES.items()
                if body.get(field) and body[field] not in self.resources.get(kind, set())]

    # ---- HTTP --------------------------------------------------------------------------
    def _authorized(self, header):
        words = (header or "").split(" ", 1)
        return len(words) == 2 and words[0].lower() == "bearer" and words[1] == self.token

    def handle(self, method, path, body, authorization):
        url = urlparse(path)
        parts = [p for p in url.path.split("/") if p]
        if not self._authorized(authorization):
            return 401, None
        with self.lock:
            if parts == ["api", "user"] and method == "GET":
                return 200, {"id": 1, "username": "automation", "admin": self.admin}
            if parts[:2] != ["api", "project"] or len(parts) < 4:
                return 404, {"error": "no such endpoint %s %s" % (method, url.path)}
            if not parts[2].isdigit() or int(parts[2]) not in self.projects:
                return 404, {"error": "project not found"}
            project_id = int(parts[2])
            # ProjectMiddleware + GetMustCanMiddleware(CanManageProjectResources): a GET is for
            # any member; a write needs the permission (or an admin), else 403 with no body
            if method not in ("GET", "HEAD") and not self.admin and not (
                    ROLE_PERMISSIONS.get(self.role, 0) & CAN_MANAGE_RESOURCES):
                return 403, None
            if parts[3:] == ["role"] and method == "GET":
                return 200, {"role": self.role, "permissions": ROLE_PERMISSIONS.get(self.role, 0)}
            if len(parts) == 5 and parts[3] in REFERENCES.values() and method == "GET":
                # InventoryMiddleware and its kin: an id the project does not have is 404, no body
                if parts[4].isdigit() and int(parts[4]) in self.resources.get(parts[3], set()):
                    return 200, {"id": int(parts[4]), "project_id": project_id}
                return 404, None
            if parts[3] == "schedules" and len(parts) <= 5:
                return self._schedules(method, parts[4:], body, project_id)
            if parts[3] != "templates" or len(parts) > 5:
                return 404, {"error": "no such endpoint %s %s" % (method, url.path)}
            if len(parts) == 4:
                if method == "GET":
                    listed = []
                    for tpl in self.by_name(project_id).values():
                        tpl["survey_vars"] = None  # v2.10.32's list leaves them out
                        listed.append(tpl)
                    return 200, listed
                if method == "POST":
                    errors = schema_errors(body, self.schema)
                    if errors:
                        return 400, {"error": "invalid template", "errors": errors}
                    if self._dangling(body):
                        return 400, None  # the SQL store's foreign key refuses it; WriteError's default
                    return 201, self.add(project_id, body)
                return 405, {"error": "method not allowed"}
            if not parts[4].isdigit() or int(parts[4]) not in self.templates \
                    or self.templates[int(parts[4])]["project_id"] != project_id:
                return 404, {"error": "template not found"}
            template_id = int(parts[4])
            if method == "GET":
                return 200, copy.deepcopy(self.templates[template_id])
            if method == "PUT":
                errors = schema_errors(body, self.schema)
                if errors:
                    return 400, {"error": "invalid template", "errors": errors}
                if body.get("id") != template_id:
                    return 400, {"error": "template id in URL and in body must be the same"}
                if body.get("project_id") != project_id:
                    return 400, {"error": "You can not move template to other project"}
                if self._dangling(body):
                    return 400, None
                self.templates[template_id] = self._stored(body, template_id, project_id)
                return 204, None
            return 405, {"error": "method not allowed"}

    def _schedule_refusal(self, body, project_id):
        if not isinstance(body, dict):
            return 400, {"error": "invalid JSON"}
        cron = cron_standard_error(body.get("cron_format"))
        if cron:
            return 400, {"error": "Cron: " + cron}
        tpl = self.templates.get(body.get("template_id"))
        if tpl is None or tpl["project_id"] != project_id:
            return 400, None  # project__schedule's foreign key on template_id; WriteError's default
        return None

    def _schedules(self, method, rest, body, project_id):
        """/api/project/{id}/schedules[/{schedule_id}] as v2.10.32 answers them."""
        if not rest:
            if method == "GET":
                return 200, [dict(copy.deepcopy(self.schedules[i]), tpl_name=self.templates[
                    self.schedules[i]["template_id"]]["name"]) for i in sorted(self.schedules)
                    if self.schedules[i]["project_id"] == project_id and self.schedules[i]["repository_id"] is None]
            if method == "POST":
                refused = self._schedule_refusal(body, project_id)
                if refused:
                    return refused
                stored = dict(SCHEDULE_FIELDS, **{k: v for k, v in body.items() if k in SCHEDULE_FIELDS})
                stored.update(id=self.next_schedule_id, project_id=project_id)
                self.schedules[stored["id"]] = stored
                self.next_schedule_id += 1
                return 201, copy.deepcopy(stored)
            return 405, {"error": "method not allowed"}
        if not rest[0].isdigit() or int(rest[0]) not in self.schedules \
                or self.schedules[int(rest[0])]["project_id"] != project_id:
            return 404, {"error": "schedule not found"}
        schedule_id = int(rest[0])
        if method == "GET":
            return 200, copy.deepcopy(self.schedules[schedule_id])
        if method == "PUT":
            if not isinstance(body, dict) or body.get("id") != schedule_id:
                return 400, {"error": "schedule id in URL and in body must be the same"}
            if body.get("project_id") != project_id:
                return 400, {"error": "You can not move schedule to other project"}
            refused = self._schedule_refusal(body, project_id)
            if refused:
                return refused
            self.schedules[schedule_id] = dict(SCHEDULE_FIELDS,
                                               **{k: v for k, v in body.items() if k in SCHEDULE_FIELDS})
            return 204, None
        return 405, {"error": "method not allowed"}

    def start(self):
        sim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                status, data = sim.handle(self.command, self.path, body, self.headers.get("Authorization"))
                sim.requests.append({"t": sim.now(), "method": self.command, "path": self.path, "status": status,
                                     "body": body})
                out = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                if out:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that hung up

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ---- for tests ---------------------------------------------------------------------
    def writes(self):
        return [r for r in self.requests if r["method"] not in ("GET", "HEAD")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--port", type=int, default=3000)
    ap.add_argument("--token", default="simulator-token")
    ap.add_argument("--projects", default="1", help="project ids, comma separated")
    ap.add_argument("--role", default="manager", choices=sorted(ROLE_PERMISSIONS))
    ap.add_argument("--resources", default='{"inventory": [1], "repositories": [1], "environment": [1]}',
                    help="JSON: the ids of each kind every project has")
    a = ap.parse_args(argv)
    sim = SemaphoreSimulator(a.token, [int(p) for p in a.projects.split(",")], port=a.port, role=a.role,
                             resources=json.loads(a.resources)).start()
    print("ready %s" % sim.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
