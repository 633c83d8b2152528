"""Secrets never reach a run's output or its evidence. Every playbook run of the tests
that run as a family's ServiceAccount (conftest.Identity) is searched for its token;
here the token is planted where it is most exposed: a kubeconfig dict in
homelab_kubeconfig, at -vvv, where every module's arguments are printed."""

from observe import audit_entries, audit_size


def test_a_planted_token_never_reaches_the_output_or_the_evidence(two_node, identity, run_playbook, tmp_path):
    c = two_node
    who = identity("guardrails")
    evidence = tmp_path / "evidence"
    offset = audit_size(c)
    run = run_playbook(c, "playbooks/phase0_guardrails.yml", check=True, args=["-vvv"],
                       extra_vars={"homelab_kubeconfig": who.kubeconfig, "evidence_root": str(evidence)})
    assert run.rc == 0, run.stdout[-3000:]
    users = {e["user"]["username"] for e in audit_entries(c, offset) if e["verb"] == "list"}
    assert who.username in users, users  # the planted token is what authenticated
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.stdout  # -vvv did print module arguments
    files = [p for p in evidence.rglob("*") if p.is_file()]
    assert any(p.name == "plan.json" for p in files)  # the evidence was written, and is searched
    assert who.token not in run.stdout and who.token not in run.stderr
    assert [str(p) for p in files if who.token in p.read_text()] == []
