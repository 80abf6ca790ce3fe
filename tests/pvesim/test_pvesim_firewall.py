"""Guest and cluster firewall: options, rules with pos/moveto/digest, aliases and IP sets."""


def _rules(api, base):
    return api.data("GET", f"{base}/rules")


def test_guest_rules_pos_moveto_delete(api, make_ct):
    vmid = make_ct(850)
    base = f"/nodes/pve/lxc/{vmid}/firewall"
    api.data("PUT", f"{base}/options", enable=1, policy_in="DROP", policy_out="ACCEPT")
    options = api.data("GET", f"{base}/options")
    assert options["enable"] == 1 and options["policy_in"] == "DROP" and options["digest"]

    for port in ("22", "443", "8443"):
        api.data("POST", f"{base}/rules", type="in", action="ACCEPT", proto="tcp", dport=port, enable=1,
                 comment=f"port {port}")
    rules = _rules(api, base)
    # a new rule goes first, as in PVE
    assert [(r["pos"], r["dport"]) for r in rules] == [(0, "8443"), (1, "443"), (2, "22")]
    assert rules[0]["enable"] == 1 and len({r["digest"] for r in rules}) == 1

    api.data("PUT", f"{base}/rules/0", moveto=3, digest=rules[0]["digest"])
    assert [r["dport"] for r in _rules(api, base)] == ["443", "22", "8443"]
    response = api.put(f"{base}/rules/0", comment="stale", digest=rules[0]["digest"])
    assert response.status_code == 500 and "detected modified configuration" in response.json()["message"]

    api.data("PUT", f"{base}/rules/1", source="10.0.0.0/24", delete="comment")
    rule = api.data("GET", f"{base}/rules/1")
    assert rule["source"] == "10.0.0.0/24" and "comment" not in rule and rule["pos"] == 1
    api.data("DELETE", f"{base}/rules/0")
    assert [r["dport"] for r in _rules(api, base)] == ["22", "8443"]
    assert api.get(f"{base}/rules/7").json()["message"] == "no rule at position 7\n"
    response = api.post(f"{base}/rules", type="in", action="ACCEPT", dport="80")
    assert response.status_code == 400 and "proto" in response.json()["errors"]
    response = api.post(f"{base}/rules", type="sideways", action="ACCEPT")
    assert response.status_code == 400 and "type" in response.json()["errors"]


def test_cluster_aliases_and_ipsets(api):
    base = "/cluster/firewall"
    api.data("POST", f"{base}/aliases", name="gateway", cidr="10.0.0.101", comment="nginx")
    assert api.post(f"{base}/aliases", name="gateway", cidr="10.0.0.1").json()["message"] == (
        "alias 'gateway' already exists\n"
    )
    aliases = api.data("GET", f"{base}/aliases")
    assert [(a["name"], a["cidr"]) for a in aliases] == [("gateway", "10.0.0.101")]
    api.data("PUT", f"{base}/aliases/gateway", cidr="10.0.0.102", digest=aliases[0]["digest"])
    assert api.data("GET", f"{base}/aliases/gateway")["cidr"] == "10.0.0.102"

    api.data("POST", f"{base}/ipset", name="internal", comment="lab nets")
    api.data("POST", f"{base}/ipset/internal", cidr="10.0.0.0/24")
    api.data("POST", f"{base}/ipset/internal", cidr="gateway", comment="alias entry")
    entries = api.data("GET", f"{base}/ipset/internal")
    assert [e["cidr"] for e in entries] == ["10.0.0.0/24", "gateway"]
    assert api.delete(f"{base}/ipset/internal").json()["message"] == "IPSet 'internal' is not empty\n"
    api.data("DELETE", f"{base}/ipset/internal/gateway")

    api.data("POST", f"{base}/rules", type="in", action="ACCEPT", source="+internal", dest="gateway",
             proto="tcp", dport="443", enable=1)
    response = api.post(f"{base}/rules", type="in", action="ACCEPT", source="+nosuchset")
    assert response.status_code == 400
    # PVE lists only the cluster options that are set, plus the digest of the options section
    api.data("PUT", f"{base}/options", policy_in="DROP")
    options = api.data("GET", f"{base}/options")
    assert options["policy_in"] == "DROP" and options["digest"] and "policy_out" not in options
    api.data("DELETE", f"{base}/rules/0")
    api.data("DELETE", f"{base}/ipset/internal", force=1)
    assert api.data("GET", f"{base}/ipset") == []
    api.data("DELETE", f"{base}/aliases/gateway")


def test_rule_create_normalizes_like_pve(api, make_ct):
    vmid = make_ct(856)
    base = f"/nodes/pve/lxc/{vmid}/firewall"
    api.data("POST", f"{base}/rules", type="in", action="ACCEPT", enable=1, proto="tcp", dport="443",
             source="10.0.0.0/24", comment="first")
    digest = _rules(api, base)[0]["digest"]
    api.data("POST", f"{base}/rules", type="in", action="ACCEPT", enable=1, proto="tcp", dport="80",
             comment="second")
    # pve-firewall API2/Firewall/Rules.pm create_rule: no digest check on create (a stale one is ignored)
    api.data("POST", f"{base}/rules", type="in", action="ACCEPT", macro="ssh", comment="  ssh from lan  ",
             digest=digest)
    rules = _rules(api, base)
    # Firewall.pm verify_rule: the macro's preferred name; parse_fw_rule: the comment read back trimmed
    assert rules[0]["macro"] == "SSH" and rules[0]["comment"] == "ssh from lan"
    assert "ipversion" not in rules[0] and "ipversion" not in rules[1]
    # verify_rule: ipversion from the source/dest addresses
    assert rules[2]["ipversion"] == 4
    response = api.post(f"{base}/rules", type="in", action="ACCEPT", macro="nosuchmacro")
    assert response.status_code == 400 and "unknown macro 'nosuchmacro'" in response.json()["errors"]["macro"]


def test_a_clone_gets_a_copy_of_the_source_firewall(api, make_ct):
    # pve-firewall Firewall/Helpers.pm clone_vmfw_conf, called by both clone_vm handlers
    source = make_ct(871)
    base = "/nodes/pve/lxc/{}/firewall"
    api.data("PUT", base.format(source) + "/options", enable=1, policy_in="DROP")
    api.data("POST", base.format(source) + "/rules", type="in", action="ACCEPT", proto="tcp", dport="22", enable=1)
    status = api.run("POST", f"/nodes/pve/lxc/{source}/clone", newid=872, hostname="fw-clone", full=1)
    assert status["exitstatus"] == "OK", status
    assert [r["dport"] for r in _rules(api, base.format(872))] == ["22"]
    assert api.data("GET", base.format(872) + "/options")["policy_in"] == "DROP"
    # a copy, not a shared config: a change to the clone leaves the source as it was
    api.data("DELETE", base.format(872) + "/rules/0")
    assert _rules(api, base.format(872)) == [] and [r["dport"] for r in _rules(api, base.format(source))] == ["22"]
    # a source without a firewall config gives a clone without one
    api.data("PUT", base.format(source) + "/options", delete="enable,policy_in")
    api.data("DELETE", base.format(source) + "/rules/0")
    status = api.run("POST", f"/nodes/pve/lxc/{source}/clone", newid=874, hostname="fw-none", full=1)
    assert status["exitstatus"] == "OK", status
    assert _rules(api, base.format(874)) == [] and "enable" not in api.data("GET", base.format(874) + "/options")
