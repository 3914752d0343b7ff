def test_smoke(client, plant, make_user):
    bob = make_user("bob", ("business_owner", "STR"))
    r = client.post(
        "/api/v1/systems",
        json={"name": "Weld inspection", "purpose": "detect weld defects", "site": "STR", "line": "BODY1",
              "business_owner": "bob", "zone": "STR-CTL", "sl_achieved": {"FR1": 3, "FR2": 1}},
        headers=bob,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "AIS-000001"
    assert body["sl_gap"] == ["FR2", "FR3", "FR4", "FR5", "FR6", "FR7"]
