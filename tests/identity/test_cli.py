"""``aireg users`` and ``aireg tokens``: the console path to the same service functions, audited too."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import app as cli

runner = CliRunner()


def test_users_add_grant_list_revoke(client, admin, plant) -> None:  # type: ignore[no-untyped-def]
    out = runner.invoke(cli, ["users", "add", "pia", "--display-name", "Pia P", "--email", "pia@example.org"])
    assert out.exit_code == 0, out.output
    assert runner.invoke(cli, ["users", "grant", "pia", "risk_officer", "--site", "STR"]).exit_code == 0
    assert runner.invoke(cli, ["users", "grant", "pia", "auditor", "--site", "*"]).exit_code == 0
    listed = runner.invoke(cli, ["users", "list", "--json"])
    assert listed.exit_code == 0
    pia = next(u for u in json.loads(listed.stdout) if u["username"] == "pia")
    assert pia["roles"] == [{"role": "auditor", "site": "*"}, {"role": "risk_officer", "site": "STR"}]
    assert pia["email"] == "pia@example.org" and pia["display_name"] == "Pia P"
    plain = runner.invoke(cli, ["users", "list"])
    assert "risk_officer@STR" in plain.stdout and "auditor@*" in plain.stdout
    out = runner.invoke(cli, ["users", "revoke", "pia", "risk_officer", "--site", "STR"])
    assert out.exit_code == 0
    r = client.get("/api/v1/users/pia", headers=admin)
    assert r.json()["roles"] == [{"role": "auditor", "site": "*"}]


def test_users_errors_exit_nonzero_with_a_message(client, admin, plant) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(cli, ["users", "add", "admin"]).exit_code == 1  # exists
    out = runner.invoke(cli, ["users", "add", "Bad Name"])
    assert out.exit_code == 2 and "username" in out.output
    out = runner.invoke(cli, ["users", "grant", "admin", "wizard", "--site", "STR"])
    assert out.exit_code == 2
    out = runner.invoke(cli, ["users", "grant", "admin", "auditor", "--site", "nowhere"])
    assert out.exit_code == 2 and "invalid site" in out.output
    out = runner.invoke(cli, ["users", "grant", "admin", "auditor", "--site", "XYZ"])
    assert out.exit_code == 1 and "XYZ" in out.output
    out = runner.invoke(cli, ["users", "grant", "ghost", "auditor", "--site", "STR"])
    assert out.exit_code == 1 and "ghost" in out.output
    out = runner.invoke(cli, ["users", "revoke", "admin", "auditor", "--site", "STR"])
    assert out.exit_code == 1


def test_password_from_stdin(client, admin) -> None:  # type: ignore[no-untyped-def]
    from app.db import session_scope
    from app.identity.service import get_user, verify_password

    out = runner.invoke(cli, ["users", "add", "rita", "--password-stdin"], input="a long enough secret\n")
    assert out.exit_code == 0, out.output
    with session_scope(write=False) as session:
        assert verify_password("a long enough secret", get_user(session, "rita").password_hash)
    out = runner.invoke(cli, ["users", "add", "sam", "--password-stdin"], input="short\n")
    assert out.exit_code == 2 and "password" in out.output


def test_tokens_issue_list_revoke(client, admin, plant) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(cli, ["users", "add", "ci-bot"]).exit_code == 0
    assert runner.invoke(cli, ["users", "grant", "ci-bot", "mlops", "--site", "STR"]).exit_code == 0
    out = runner.invoke(cli, ["tokens", "issue", "ci-bot", "--name", "gitlab", "--expires-days", "30"])
    assert out.exit_code == 0, out.output
    token = out.stdout.strip()
    assert out.stdout == token + "\n" and token.startswith("aireg_")  # the token alone on stdout
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["roles"] == [{"role": "mlops", "site": "STR"}]

    listed = runner.invoke(cli, ["tokens", "list", "--user", "ci-bot"])
    assert listed.exit_code == 0 and token not in listed.stdout
    line = next(x for x in listed.stdout.splitlines() if "gitlab" in x)
    assert "active" in line and "last used" in line
    token_id = line.split()[0]
    out = runner.invoke(cli, ["tokens", "revoke", token_id])
    assert out.exit_code == 0
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(cli, ["tokens", "list", "--user", "ci-bot"]).stdout
    assert runner.invoke(cli, ["tokens", "revoke", token_id]).exit_code == 1
    assert runner.invoke(cli, ["tokens", "revoke", "ffffffffffffffff"]).exit_code == 1
    assert runner.invoke(cli, ["tokens", "issue", "ghost"]).exit_code == 1
    assert runner.invoke(cli, ["tokens", "issue", "ci-bot", "--expires-days", "0"]).exit_code == 2
