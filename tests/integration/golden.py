"""Golden text: what a person reads (plans, the approval prompt, the demo's report, report.md)
compared line by line with tests/golden/<name>.txt, the volatile parts masked (plan ids,
times, evidence folders, generated pod names, the checkout's path).

UPDATE_GOLDEN=1 rewrites the files from what the run printed; review the diff like code."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"

MASKS = [
    (re.compile(r"(/[\w.-]+)+/evidence/\d{8}T\d+Z-([a-z0-9_]+)"), r"<evidence>/<time>-\2"),
    (re.compile(re.escape(str(ROOT))), "<repo>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<id>"),
    (re.compile(r"(-[0-9a-f]{8,10})?-[a-z0-9]{5}(?=\s+(DaemonSet|ReplicaSet|bare Pod))"), "-<pod>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),
]


def mask(text):
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def task_message(output, task):
    """The ``msg`` a debug task printed (the YAML result format of ansible.cfg), as text:
    the block under ``msg: |-`` with its indentation removed."""
    lines = output.replace("\r\n", "\n").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("TASK [") and task in line:
            for j in range(i + 1, len(lines)):
                if lines[j].strip() == "msg: |-":
                    body = []
                    for raw in lines[j + 1:]:
                        if raw.strip() and not raw.startswith(" " * 8):
                            break
                        body.append(raw[8:])
                    while body and not body[-1].strip():
                        body.pop()
                    return "\n".join(body)
                if lines[j].startswith("TASK ["):
                    break
    raise AssertionError("no multi-line msg of task %r in the output:\n%s" % (task, output[-3000:]))


def assert_golden(name, text):
    """``text``, masked, equals tests/golden/<name>.txt; no literal backslash-n in it."""
    assert "\\n" not in text, "a literal \\n in what a person reads (%s):\n%s" % (name, text)
    got = mask(text).rstrip("\n") + "\n"
    path = GOLDEN / (name + ".txt")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    want = path.read_text() if path.exists() else "(no golden file %s)\n" % path
    assert got == want, "%s differs from %s (UPDATE_GOLDEN=1 rewrites it):\n%s" % (name, path, got)
