"""Every command block of the documentation that runs ansible-playbook, make or kubectl is
either run verbatim by tests/integration/test_doc_commands.py (marked with a scenario the
test knows) or marked as not run, with the reason (tests/doc_commands.py)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doc_commands import ROOT, Session, all_blocks, commands, report_commands  # noqa: E402

TEST = (ROOT / "tests/integration/test_doc_commands.py").read_text()


def test_every_block_that_runs_the_collection_is_marked():
    unmarked = [b for b in all_blocks() if b.runs_the_collection and b.mark is None]
    assert unmarked == [], "mark these blocks <!-- doc-test: <scenario> --> or <!-- doc-test: not run: <why> -->"


def test_a_block_not_run_says_why_and_a_scenario_is_tested():
    for b in all_blocks():
        if b.mark is None:
            continue
        if b.mark.startswith("not run"):
            assert b.not_run_reason, "%r: not run, but why?" % b
        else:
            assert re.search(r'run_scenario\("%s"' % re.escape(b.scenario), TEST), \
                "%r: scenario %s is run by no test" % (b, b.scenario)


def test_marked_blocks_per_file(capsys):
    counts = {}
    for b in all_blocks():
        run, not_run = counts.get(b.path, (0, 0))
        counts[b.path] = (run + len(commands(b.text)) if b.scenario else run, not_run + (1 if b.not_run_reason else 0))
    with capsys.disabled():
        for path, (run, not_run) in sorted(counts.items()):
            print("\n  %-32s %3d command(s) run by a test, %d block(s) not run" % (path, run, not_run), end="")
    assert counts["README.md"][0] >= 7


def test_parsing(tmp_path):
    text = "# a comment\nansible-playbook a.yml --check \\\n  -e x=1   # trailing\n\nexport K=$PWD/k\n"
    assert commands(text) == ["ansible-playbook a.yml --check    -e x=1   # trailing", "export K=$PWD/k"]
    md = tmp_path / "r.md"
    md.write_text("x\n\n```bash\nansible-playbook p.yml --check -e rollback_from=/e/f\n```\n\n```bash\nb \\\n  c\n```\n")
    assert report_commands(md) == ["ansible-playbook p.yml --check -e rollback_from=/e/f", "b    c"]


def test_placeholders_are_filled_as_a_person_copies_them(tmp_path):
    (tmp_path / "evidence" / "20260101T000000Z-core_platform").mkdir(parents=True)
    (tmp_path / "evidence" / "20260102T000000Z-core_platform").mkdir()
    (tmp_path / "evidence" / "20260103T000000Z-core_platform_rollback").mkdir()
    s = Session(cwd=tmp_path)
    s.outputs = ["Plan id: 0123456789abcdef\n", "... plan id: fedcba9876543210 ..."]
    assert s.fill("x -e rollback_from=evidence/<time>-core_platform -e approve_plan=<plan id>") == \
        "x -e rollback_from=evidence/20260102T000000Z-core_platform -e approve_plan=fedcba9876543210"
    try:
        s.fill("x -e approve_plan=<something else>")
    except AssertionError as e:
        assert "<something else>" in str(e)
    else:
        raise AssertionError("an unknown placeholder was run")
