"""The account page (/account) in Chromium: an anonymous visitor sees who they are,
makes an API key, whose token acts for the browser's own session in the JSON API,
revokes it (401 afterwards); then the staff reviewer logs in and sees their role; an
admin sees and revokes every key."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from lcpanel.core.access.users import UserStore

from .conftest import REVIEWER

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def whoami_without_cookies(server, token: str) -> tuple[int, dict]:
    """GET /api/whoami with only the bearer token (no browser cookies at all)."""
    req = urllib.request.Request(server.url + "/api/whoami", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def open_account(page, server, wait_idle) -> None:
    page.goto(server.url + "/account", wait_until="domcontentloaded")
    wait_idle(page)


def create_key(page, label: str, days: str | None = None) -> str:
    page.locator(".lcp-key-label input").fill(label)
    if days is not None:
        page.locator(".lcp-key-days input").fill(days)
    page.locator(".lcp-create-key button").click()
    token = page.locator(".lcp-new-token input.lcp-token")
    expect(token).to_have_value(re.compile(r"^lcp_[0-9a-f]{16}_"))
    return token.input_value()


def test_account_page_keys_and_roles(page, lcpanel_server, wait_idle, screenshot):
    server = lcpanel_server
    open_account(page, server, wait_idle)
    who = page.locator(".lcp-account-who")
    expect(who).to_contain_text("anonymous session")
    expect(who).to_contain_text("session cookie owns the datasets")
    expect(who.locator(".lcp-rpm")).to_have_text(re.compile(r"^[\d,]+$|^unlimited$"))
    expect(who.locator(".lcp-max-rows")).to_have_text("10,000")
    expect(who.locator("a.lcp-account-login")).to_have_attribute("href", "/login?next=/account")
    expect(page.locator(".lcp-account a.lcp-account-link")).to_have_attribute("href", "/account")
    expect(page.locator(".lcp-account a.lcp-login")).to_be_visible()
    expect(page.locator(".lcp-keys")).to_contain_text("no API keys yet")

    # the browser's own identity, as the JSON API sees it through the session cookie
    session = page.request.get(server.url + "/api/whoami")
    assert session.ok, session.text()
    me = session.json()
    assert me["role"] == "anonymous" and me["identity"].startswith("anon:")
    expect(who.locator(".lcp-identity")).to_have_text(me["identity"])

    # an out-of-range lifetime: a clear message next to the form, no key
    page.locator(".lcp-key-days input").fill("99999")
    page.locator(".lcp-create-key button").click()
    expect(page.locator(".lcp-key-message")).to_contain_text("lifetime is 1 to 3,650 days")
    expect(page.locator(".lcp-new-token")).to_be_hidden()

    # a key: shown once with a curl example, listed as active
    label = "e2e nightly " + uuid.uuid4().hex[:6]
    token = create_key(page, label, days="30")
    key_id = token.split("_")[1]
    expect(page.locator(".lcp-key-message")).to_have_text("")
    expect(page.locator(".lcp-new-token .lcp-curl")).to_have_text(
        f'curl -H "Authorization: Bearer {token}" {server.url}/api/whoami')
    row = page.locator(f".lcp-key-{key_id}")
    expect(row).to_contain_text(label)
    expect(row.locator(".lcp-key-status")).to_have_text("active")
    screenshot(page, "account")

    # the token acts for the same anonymous identity as the browser's session
    as_key = page.request.get(server.url + "/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert as_key.ok, as_key.text()
    assert as_key.json()["identity"] == me["identity"]
    assert as_key.json()["role"] == "anonymous"
    status, body = whoami_without_cookies(server, token)
    assert status == 200 and body["identity"] == me["identity"], body

    # revoked in the page: refused from then on
    row.locator(".lcp-revoke button").click()
    expect(row.locator(".lcp-key-status")).to_have_text("revoked")
    expect(row.locator(".lcp-revoke")).to_have_count(0)
    expect(page.locator(".lcp-api-keys .lcp-revoke-message")).to_contain_text(f"{key_id} revoked")
    revoked = page.request.get(server.url + "/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status == 401, revoked.text()
    assert "revoked" in revoked.json()["error"]
    assert whoami_without_cookies(server, token)[0] == 401
    # a reload never shows a token again
    open_account(page, server, wait_idle)
    expect(page.locator(".lcp-new-token")).to_be_hidden()
    expect(page.locator(f".lcp-key-{key_id} .lcp-key-status")).to_have_text("revoked")

    # the reviewer logs in from the account page and comes back to it
    page.locator(".lcp-account-who a.lcp-account-login").click()
    page.wait_for_url(re.compile(r"/login\?next=%2Faccount|/login\?next=/account"))
    page.fill("#username", REVIEWER[0])
    page.fill("#password", REVIEWER[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/account")
    wait_idle(page)
    expect(who.locator(".lcp-who")).to_have_text(REVIEWER[0])
    expect(who.locator(".lcp-identity")).to_have_text(f"user:{REVIEWER[0]}")
    expect(who.locator(".lcp-role-badge")).to_have_text("staff")
    expect(who).not_to_contain_text("anonymous session")
    expect(page.locator(".lcp-account")).to_contain_text(REVIEWER[0])
    expect(page.locator(".lcp-account a.lcp-account-link")).to_be_visible()
    expect(page.locator(".lcp-keys")).not_to_contain_text(label)  # the anonymous session's key is not theirs
    expect(page.locator(".lcp-every-key")).to_have_count(0)  # staff are not admins
    staff_token = create_key(page, "reviewer script")
    staff = page.request.get(server.url + "/api/whoami", headers={"Authorization": f"Bearer {staff_token}"})
    assert staff.json()["identity"] == f"user:{REVIEWER[0]}" and staff.json()["role"] == "staff"
    screenshot(page, "account-staff")

    # an admin sees every key with its owner, and may revoke the reviewer's
    admin = ("e2e-admin-" + uuid.uuid4().hex[:6], "pw-of-the-admin")
    UserStore(server.basedir).add_user(admin[0], admin[1], "admin")
    page.goto(server.url + "/login?next=/account", wait_until="domcontentloaded")
    page.fill("#username", admin[0])
    page.fill("#password", admin[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/account")
    wait_idle(page)
    expect(who.locator(".lcp-role-badge")).to_have_text("admin")
    staff_key = staff_token.split("_")[1]
    every = page.locator(".lcp-every-key")
    other = every.locator(f".lcp-key-{staff_key}")
    expect(other).to_contain_text(f"user:{REVIEWER[0]}")
    expect(every.locator(f".lcp-key-{key_id} .lcp-key-status")).to_have_text("revoked")
    other.locator(".lcp-revoke button").click()
    expect(other.locator(".lcp-key-status")).to_have_text("revoked")
    expect(every.locator(".lcp-revoke-message")).to_contain_text(f"of user:{REVIEWER[0]}")
    expect(page.locator(".lcp-api-keys .lcp-revoke-message")).to_have_text("")
    assert page.request.get(server.url + "/api/whoami",
                            headers={"Authorization": f"Bearer {staff_token}"}).status == 401
    screenshot(page, "account-admin")
    assert not [m for m in page.lcp_console if m.startswith(("error", "pageerror"))], page.lcp_console
