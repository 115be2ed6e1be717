"""The dashboard's Executions view, in a real Chromium: start, list and stop executions."""

import json

import pytest
from playwright.sync_api import expect

from tests.test_dashboard import browser, page, server, sign_in  # noqa: F401 (fixtures)
from tests.test_executions import (  # noqa: F401 (fixtures)
    AUTHOR,
    EXECUTIONS,
    app,
    collection,
    machine,
    start,
)


@pytest.mark.parametrize("backend", ["memory"])
def test_author_starts_and_stops_an_execution(page, app, collection, machine, workflows):  # noqa: F811
    sign_in(page, "author")
    page.get_by_role("link", name="Executions").click()
    form = page.locator("#x-start")
    expect(form.get_by_label("State machine")).to_have_value(machine)  # the one allowed
    expect(page.locator("#x-allowed")).to_have_text(machine)
    expect(page.get_by_text("No executions yet.")).to_be_visible()
    form.get_by_label("Input").fill('{"addon": "tabs"}')
    form.get_by_role("button", name="Start").click()

    expect(page.locator("#message")).to_contain_text("RUNNING")
    record = app.get(f"{EXECUTIONS}/records", headers=AUTHOR).json["data"][0]
    described = workflows.sfn.describe_execution(executionArn=record["executionArn"])
    assert described["status"] == "RUNNING"
    assert json.loads(described["input"]) == {"addon": "tabs"}
    row = page.locator(f"tr[data-id='{record['id']}']")
    expect(row.locator(".status")).to_have_text("RUNNING")
    expect(row.locator(".machine")).to_have_text(machine.rsplit(":", 1)[1])
    expect(row.locator(".stopped")).to_have_text("—")

    row.get_by_role("button", name="Stop").click()
    expect(row.locator(".status")).to_have_text("ABORTED")
    expect(row.get_by_role("button")).to_have_count(0)
    assert workflows.status(record["executionArn"]) == "ABORTED"


@pytest.mark.parametrize("backend", ["memory"])
def test_a_reader_sees_executions_without_stop(page, app, collection, machine, workflows):  # noqa: F811
    record = start(app, machine, "nightly").json["data"]
    sign_in(page, "reader")
    page.get_by_role("link", name="Executions").click()
    row = page.locator("tr[data-id='nightly']")
    expect(row.locator(".status")).to_have_text("RUNNING")
    expect(row.locator(".by")).to_have_text(record["startedBy"])
    expect(row.get_by_role("button")).to_have_count(0)
    page.locator("#x-start").get_by_role("button", name="Start").click()
    expect(page.locator("#message")).to_contain_text("Nothing was started")
    assert len(workflows.sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    page.get_by_role("link", name="Inbox").click()
    expect(page.locator("#executions")).to_be_hidden()
    expect(page.locator("#steps")).to_be_visible()


@pytest.mark.parametrize("backend", ["memory"])
def test_the_view_is_served_as_javascript(app):  # noqa: F811
    response = app.get("/stepfunction/dashboard/executions.js")
    assert response.content_type in ("text/javascript", "application/javascript")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "http://" not in response.text and "https://" not in response.text
    assert (
        '<script src="executions.js" defer></script>' in app.get("/stepfunction/dashboard/").text
    )
