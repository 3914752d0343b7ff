"""The whole Casbin policy, table-driven: every role x (resource, action) has the decision the issue asks for.

The table below is the reviewed specification; ``policies/policy.csv`` must match it line for line, so a
permission added to or dropped from the CSV without updating this table fails here.
"""

from __future__ import annotations

import csv

import pytest

from app.identity.authz import ANY_SITE, PolicyError, read_policy_lines
from app.identity.dependencies import authenticate
from app.identity.models import Role
from app.settings import get_settings

READ_ONLY = {
    ("system", "read"),
    ("version", "read"),
    ("classification", "read"),
    ("risk_assessment", "read"),
    ("approval", "read"),
    ("release", "read"),
    ("document", "read"),
    ("incident", "read"),
    ("monitoring", "read"),
    ("deployment", "read"),
    ("framework", "read"),
    ("requirement", "read"),
    ("evidence", "read"),
    ("governance", "read"),
    ("training", "read"),
    ("questionnaire", "read"),
    ("technical_file", "read"),
}
WORKPLACE = {("site", "read"), ("zone", "read"), ("token", "self")}

# What each role may do wherever it is held. Admin: users, roles, sites, zones. Compliance officers classify
# and manage systems. Business owners create and edit their own systems and request approvals. Signers sign
# off. Auditors read. mlops pipelines read systems and release permission, register versions and monitoring.
ALLOWED: dict[str, set[tuple[str, str]]] = {
    "admin": {
        ("site", "read"),
        ("site", "create"),
        ("site", "update"),
        ("zone", "read"),
        ("zone", "create"),
        ("zone", "update"),
        ("user", "read"),
        ("user", "manage"),
        ("system", "read"),
        ("framework", "read"),
        ("requirement", "read"),
        ("evidence", "read"),
        ("governance", "read"),
        ("training", "read"),
        ("questionnaire", "read"),
        ("technical_file", "read"),
        ("audit", "read"),
        ("audit", "verify"),
        ("token", "self"),
    },
    "compliance_officer": WORKPLACE
    | READ_ONLY
    | {
        ("system", "create"),
        ("system", "assign_owner"),
        ("system", "update"),
        ("system.personal_data", "update"),
        ("system.ai_act_role", "update"),
        ("system.business_owner", "update"),
        ("system.technical_owner", "update"),
        ("system", "delete"),
        ("system", "replicate"),
        ("version", "create"),
        ("classification", "create"),
        ("risk_assessment", "create"),
        ("requirement", "update"),
        ("evidence", "create"),
        ("training", "create"),
        ("training", "update"),
        ("questionnaire", "update"),
        ("technical_file", "update"),
        ("approval", "revoke"),
        ("signoff.compliance_officer", "sign"),
        ("audit", "read"),
        ("audit", "verify"),
        ("incident", "create"),
        ("incident", "close"),
        ("incident", "lift"),
        ("incident", "report"),
        ("review", "remind"),
        ("kpi", "read"),
    },
    "business_owner": WORKPLACE
    | READ_ONLY
    | {
        ("system", "create"),
        ("system", "update_own"),
        ("system", "replicate_own"),
        ("version", "create_own"),
        ("approval", "request_own"),
        ("approval", "withdraw_own"),
        ("signoff.business_owner", "sign"),
        ("evidence", "create"),
        ("questionnaire", "update"),
        ("technical_file", "update_own"),
        ("incident", "create"),
        ("kpi", "read"),
    },
    "risk_officer": WORKPLACE
    | READ_ONLY
    | {
        ("risk_assessment", "create"),
        ("approval", "revoke"),
        ("signoff.risk_officer", "sign"),
        ("evidence", "create"),
        ("incident", "create"),
        ("kpi", "read"),
    },
    "ot_security": WORKPLACE
    | READ_ONLY
    | {
        ("system.zone", "update"),
        ("system.sl_achieved", "update"),
        ("signoff.ot_security", "sign"),
        ("evidence", "create"),
        ("zone", "create"),
        ("zone", "update"),
    },
    "safety_engineer": WORKPLACE
    | READ_ONLY
    | {("signoff.safety_engineer", "sign"), ("incident", "create"), ("evidence", "create")},
    "dpo": WORKPLACE
    | READ_ONLY
    | {("signoff.dpo", "sign"), ("evidence", "create"), ("questionnaire", "update")},
    "auditor": WORKPLACE | READ_ONLY | {("audit", "read"), ("audit", "verify"), ("kpi", "read")},
    "mlops": {
        ("site", "read"),
        ("token", "self"),
        ("system", "read"),
        ("framework", "read"),
        ("requirement", "read"),
        ("evidence", "read"),
        ("version", "read"),
        ("version", "create"),
        ("release", "read"),
        ("monitoring", "read"),
        ("monitoring", "create"),
        ("deployment", "read"),
        ("deployment", "create"),
    },
}

SIGNOFFS = {f"signoff.{role.value}" for role in Role}
UNIVERSE: set[tuple[str, str]] = (
    set().union(*ALLOWED.values())
    | {(s, "sign") for s in SIGNOFFS}
    | {(obj, act) for obj in ("system", "version", "approval") for act in ("create", "update", "delete")}
    | {
        ("audit", "update"),
        ("audit", "delete"),
        ("user", "create"),
        ("kpi", "read"),
        ("system", "update_own"),
    }
)


def test_table_covers_every_role() -> None:
    assert set(ALLOWED) == {r.value for r in Role}


def test_policy_file_matches_the_table() -> None:
    """Every p line of policies/policy.csv is in the table and every table entry is in the CSV."""
    lines = read_policy_lines(get_settings().policies_dir / "policy.csv")
    in_file = {(role, obj, act) for _, role, _site, obj, act in lines}
    in_table = {(role, obj, act) for role, perms in ALLOWED.items() for obj, act in perms}
    hint = "policy.csv and ALLOWED in tests/identity/test_policy.py must change together"
    assert in_file - in_table == set(), f"in policy.csv but not in the reviewed table; {hint}"
    assert in_table - in_file == set(), f"in the reviewed table but missing from policy.csv; {hint}"
    assert all(site == ANY_SITE for _, _r, site, _o, _a in lines)
    assert len(lines) == len(in_file), "duplicate lines in policy.csv"


@pytest.fixture
def principals(make_user, plant):  # type: ignore[no-untyped-def]
    """One user per role, each holding that role in STR only."""
    out = {}
    for role in Role:
        headers = make_user(f"u-{role.value.replace('_', '-')}", (role.value, "STR"))
        out[role.value] = authenticate(headers["Authorization"].split(" ", 1)[1])
    return out


def test_every_decision_in_the_own_site(principals) -> None:  # type: ignore[no-untyped-def]
    wrong = []
    for role, principal in principals.items():
        for obj, act in sorted(UNIVERSE):
            expected = (obj, act) in ALLOWED[role]
            if principal.can(obj, act, "STR") != expected:
                wrong.append((role, obj, act, expected))
    assert wrong == []


def test_nothing_in_other_sites_or_globally(principals) -> None:  # type: ignore[no-untyped-def]
    """A role held in STR grants nothing in LYO, and nothing on site-less resources (users, new sites)."""
    for role, principal in principals.items():
        for obj, act in sorted(UNIVERSE):
            assert not principal.can(obj, act, "LYO"), (role, obj, act)
            assert not principal.can(obj, act), (role, obj, act)
        assert principal.roles_in("STR") == {role}
        assert principal.roles_in("LYO") == set()
        assert principal.holds_role_in("STR") and not principal.holds_role_in("LYO")


@pytest.mark.parametrize("site", ["STR", "LYO", None])
def test_role_in_every_site_holds_in(make_user, plant, site) -> None:  # type: ignore[no-untyped-def]
    """A grant in '*' holds in every site and for site-less resources."""
    headers = make_user("auditor-all", ("auditor", "*"))
    principal = authenticate(headers["Authorization"].split(" ", 1)[1])
    assert principal.can("system", "read", site)
    assert not principal.can("system", "update", site)


def test_role_in_every_site(make_user, plant) -> None:  # type: ignore[no-untyped-def]
    """A grant in '*' reads every site's systems and holds a role in each."""
    headers = make_user("auditor-all", ("auditor", "*"))
    principal = authenticate(headers["Authorization"].split(" ", 1)[1])
    assert principal.sites_for("system", "read") is None
    assert principal.holds_role_in("LYO")


def test_sites_for_lists_only_granted_sites(make_user, plant) -> None:  # type: ignore[no-untyped-def]
    headers = make_user("multi", ("business_owner", "STR"), ("auditor", "LYO"))
    principal = authenticate(headers["Authorization"].split(" ", 1)[1])
    assert principal.sites_for("system", "read") == {"STR", "LYO"}
    assert principal.sites_for("system", "update_own") == {"STR"}
    assert principal.sites_for("audit", "read") == {"LYO"}
    assert principal.sites_for("user", "manage") == set()


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_only_the_role_itself_signs_for_its_role(principals, role: str) -> None:  # type: ignore[no-untyped-def]
    """Sign-off is per role: nobody signs for another role; mlops pipelines and auditors sign nothing."""
    principal = principals[role]
    signed = {s for s in SIGNOFFS if principal.can(s, "sign", "STR")}
    if role in ("mlops", "auditor", "admin"):
        assert signed == set()
    elif role in ("risk_officer", "ot_security", "safety_engineer", "dpo"):
        assert signed == {f"signoff.{role}"}
    else:
        assert signed <= {f"signoff.{role}"}


def test_auditor_and_mlops_change_nothing_else() -> None:
    """Auditors only read (and manage their own token); mlops only the pipeline writes."""
    assert {act for _, act in ALLOWED["auditor"]} <= {"read", "verify", "self"}
    writes = {(o, a) for o, a in ALLOWED["mlops"] if a not in ("read", "self")}
    assert writes == {("version", "create"), ("monitoring", "create"), ("deployment", "create")}


def test_only_admin_manages_users_and_sites() -> None:
    for role, perms in ALLOWED.items():
        managing = perms & {("user", "manage"), ("user", "read"), ("site", "create"), ("site", "update")}
        assert (managing != set()) == (role == "admin"), role


def test_a_bad_policy_line_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad_role = tmp_path / "policy.csv"
    bad_role.write_text("p, superuser, *, system, read\n")
    with pytest.raises(PolicyError, match="unknown role 'superuser'"):
        read_policy_lines(bad_role)
    short = tmp_path / "short.csv"
    with short.open("w", newline="") as fh:
        csv.writer(fh).writerow(["p", "admin", "*", "system"])
    with pytest.raises(PolicyError, match=":1: expected"):
        read_policy_lines(short)


def test_a_username_equal_to_a_role_name_grants_nothing(client, make_user, plant) -> None:  # type: ignore[no-untyped-def]
    """Users named like roles hold only their grants (Casbin would otherwise match the name as the role)."""
    for role in Role:
        if role is Role.admin:  # the plant fixture's user "admin" holds admin in '*' by grant
            continue
        headers = make_user(role.value) if role is not Role.dpo else make_user("dpo", ("auditor", "STR"))
        principal = authenticate(headers["Authorization"].split(" ", 1)[1])
        for obj, act in sorted(ALLOWED[role.value]):
            granted = role is Role.dpo and (obj, act) in ALLOWED["auditor"]
            assert principal.can(obj, act, "STR") == granted, (role, obj, act)
            assert not principal.can(obj, act, "LYO") and not principal.can(obj, act), (role, obj, act)
    mlops_named = {"Authorization": "Bearer " + _issue("mlops")}
    r = client.post("/api/v1/systems/AIS-000001/versions", json={}, headers=mlops_named)
    assert r.status_code in (404, 422)
    assert client.get("/api/v1/systems", headers=mlops_named).json()["items"] == []
    assert (
        client.get(
            "/api/v1/audit-events", headers={"Authorization": "Bearer " + _issue("auditor")}
        ).status_code
        == 403
    )


def _issue(username: str) -> str:
    from app.db import session_scope
    from app.identity.service import issue_token

    with session_scope() as session:
        return issue_token(session, username, name="again", expires_days=1, actor="test").token
