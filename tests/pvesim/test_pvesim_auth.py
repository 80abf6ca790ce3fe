"""API tokens, tickets with CSRF tokens, and PVE's 401 answers."""

import urllib.parse

from pvesim_testlib import PASSWORD, TOKEN_ID, TOKEN_SECRET, Api


def test_token_auth(api):
    assert api.data("GET", "/version")["release"].startswith("9.")


def test_missing_and_bad_credentials_answer_401_with_empty_body(server, anon):
    response = anon.get("/version")
    assert (response.status_code, response.reason, response.text) == (401, "No ticket", "")
    bad = Api(server.api_url, server.ca_file, {"Authorization": f"PVEAPIToken={TOKEN_ID}=wrong"})
    response = bad.get("/version")
    assert (response.status_code, response.reason, response.text) == (401, "Authentication failed!", "")
    bogus = Api(server.api_url, server.ca_file, {"Cookie": "PVEAuthCookie=PVE:root@pam:12345678::forged"})
    assert bogus.get("/version").status_code == 401


def test_token_header_with_space_is_accepted_like_pve(server):
    # PVE's header parser accepts both 'PVEAPIToken=ID=SECRET' and 'PVEAPIToken ID=SECRET'
    spaced = Api(server.api_url, server.ca_file, {"Authorization": f"PVEAPIToken {TOKEN_ID}={TOKEN_SECRET}"})
    assert spaced.get("/version").status_code == 200


def test_ticket_login_cookie_and_csrf(server, anon):
    response = anon.post("/access/ticket", username="root@pam", password=PASSWORD)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["username"] == "root@pam"
    assert data["ticket"].startswith("PVE:root@pam:")
    assert urllib.parse.unquote(response.cookies["PVEAuthCookie"]) == data["ticket"]

    client = Api(server.api_url, server.ca_file)
    client.session.cookies.set("PVEAuthCookie", data["ticket"])
    assert client.get("/nodes").status_code == 200
    # writes need the CSRF prevention token
    response = client.put("/cluster/firewall/options", policy_in="DROP")
    assert (response.status_code, response.reason) == (401, "Permission denied - invalid csrf token")
    client.session.headers["CSRFPreventionToken"] = data["CSRFPreventionToken"]
    assert client.put("/cluster/firewall/options", policy_in="DROP").status_code == 200


def test_wrong_password(anon):
    response = anon.post("/access/ticket", username="root@pam", password="nope")
    assert response.status_code == 401
    assert response.json()["message"] == "authentication failure\n"
