"""Every address the plugin may mail is checked by one validator (``addresses.ascii_address``,
email-validator) where it enters: a delegation's ``to`` (400 naming it) and the
``stepfunction.escalate_to`` setting (start-up refused, naming it); ``reviewer`` and
``notify``: tests/test_mail_delivery.py and tests/test_ended_mail.py."""

# ruff: noqa: F811 (the fixture imported below is the tests' argument)

import pytest
from pyramid.exceptions import ConfigurationError

from stepfunction.settings import Settings
from tests.conftest import ADMIN, REVIEWER, STEPS, permissions_of
from tests.test_delegation import decided  # noqa: F401 (a fixture)
from tests.test_mail_delivery import INVALID


# The invalid addresses that stay one item of a setting's list (whitespace separates items).
ONE_WORD = [a for a in INVALID if a and len(a.split()) == 1 and a == a.strip()]


@pytest.mark.parametrize("address", ONE_WORD)
def test_an_escalate_to_address_that_cant_be_mailed_stops_start_up(address):
    with pytest.raises(ConfigurationError, match="stepfunction.escalate_to"):
        Settings.from_settings({"stepfunction.escalate_to": f"ops@example.com {address}"})


def test_a_delegation_to_an_address_that_cant_be_mailed_is_refused(decided):
    app, record, _, _ = decided(delegation=True)
    url = f"{STEPS}/records/{record['id']}/stepfunction/delegate"
    acl = permissions_of(app, record["id"])
    for address in [a for a in INVALID if a.strip() == a]:
        error = app.post_json(url, {"to": address}, headers=REVIEWER, status=400).json
        assert error["errno"] == 107 and error["details"][0]["name"] == "to", address
    data = app.get(f"{STEPS}/records/{record['id']}", headers=ADMIN).json["data"]
    assert "delegations" not in data
    assert data["reviewer"] == ["alice@example.com", "bob@example.com"]
    assert permissions_of(app, record["id"]) == acl
