# -*- coding: utf-8 -*-
"""awx/: the AWX definition is generated from assets.yml, consistent with the repository, and in awxkit's shape."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import phoenix_testlib  # puts collections/ on sys.path

REPO = Path(phoenix_testlib.REPO)
AWX = REPO / "awx"
_SPEC = importlib.util.spec_from_file_location("phoenix_awx_render", AWX / "render.py")
render = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(render)

ASSETS = render.load()
DATA = json.loads((AWX / "phoenix.json").read_text())


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
PLAYBOOK = yaml.load((AWX / "configure.yml").read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
# credential types every AWX ships (managed): referenced, never defined here
MANAGED_CREDENTIAL_TYPES = [{"name": "Machine", "kind": "ssh", "type": "credential_type"},
                            {"name": "Vault", "kind": "vault", "type": "credential_type"}]


def test_generated_files_are_up_to_date(tmp_path):
    proc = subprocess.run([sys.executable, str(AWX / "render.py"), "--check"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    # and --check notices a stale file
    stale = tmp_path / "awx"
    stale.mkdir()
    (stale / "phoenix.json").write_text("{}")
    proc = subprocess.run([sys.executable, str(AWX / "render.py"), "--check", "--out-dir", str(stale)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "out of date" in proc.stderr


def _templates():
    return dict((t["name"], t) for t in DATA["job_templates"])


def test_job_templates_cover_every_verb_and_their_playbooks_exist():
    templates = _templates()
    playbooks = sorted(t["playbook"] for t in templates.values())
    for verb in ("create", "sync", "site", "health", "destroy"):
        assert "playbooks/%s.yml" % verb in playbooks
    for template in templates.values():
        assert (REPO / template["playbook"]).is_file(), template["playbook"]
    assert templates["Phoenix create"]["ask_limit_on_launch"] is True
    assert templates["Phoenix destroy"]["ask_limit_on_launch"] is True


def test_destroy_survey_maps_to_the_confirmation_variable():
    destroy = _templates()["Phoenix destroy"]
    assert destroy["survey_enabled"] is True
    spec = destroy["related"]["survey_spec"]["spec"]
    assert [q["variable"] for q in spec] == ["phoenix_destroy_confirm"]
    assert spec[0]["required"] is True and spec[0]["type"] == "text"
    text = (REPO / "playbooks" / "destroy.yml").read_text()
    plays = yaml.safe_load(text)
    asserts = [t for p in plays for t in p.get("tasks", []) if "ansible.builtin.assert" in t]
    assert any("phoenix_destroy_confirm" in json.dumps(t["ansible.builtin.assert"]["that"]) for t in asserts)
    for template in DATA["job_templates"]:
        if template["name"] != "Phoenix destroy":
            assert template["survey_enabled"] is False and "survey_spec" not in template["related"]


def test_inventory_source_uses_the_collection_plugin():
    (source,) = DATA["inventory_sources"]
    assert source["source"] == "scm"
    path = REPO / source["source_path"]
    assert path.is_file()
    inventory = yaml.safe_load(path.read_text())
    assert inventory["plugin"] == "thinkheads.phoenix.phoenix"
    for key in ("config_dir", "stacks_dir"):
        assert (path.parent / inventory[key]).is_dir(), key
    cfg = (REPO / "ansible.cfg").read_text()
    assert re.search(r"^enable_plugins\s*=.*thinkheads\.phoenix\.phoenix", cfg, re.M)
    # an SCM source needs the project: the natural key points at the project defined here
    assert source["source_project"] == DATA["projects"][0]["natural_key"]


def test_proxmox_credential_injects_what_the_modules_read():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import proxmox_argument_spec
    env_read = set()
    for option in proxmox_argument_spec().values():
        fallback = option.get("fallback")
        if fallback:
            env_read.update(fallback[1])
    (ctype,) = DATA["credential_types"]
    injected = set(ctype["injectors"]["env"])
    assert {"PHOENIX_PVE_URL", "PHOENIX_PVE_TOKEN_ID", "PHOENIX_PVE_TOKEN_SECRET"} <= injected
    assert injected <= env_read, injected - env_read
    fields = dict((f["id"], f) for f in ctype["inputs"]["fields"])
    for value in ctype["injectors"]["env"].values():
        for name in re.findall(r"{{\s*(\w+)\s*}}", value) + re.findall(r"{%\s*if\s+(\w+)", value):
            assert name in fields or name == "tower", name
    assert fields["token_secret"].get("secret") is True
    assert set(ctype["inputs"]["required"]) <= set(fields)


SECRET_FIELDS = {"token_secret", "vault_password", "ssh_key_data", "password", "become_password", "ssh_key_unlock"}


def _secret_fields():
    fields = set(SECRET_FIELDS)
    for ctype in DATA["credential_types"]:
        fields.update(f["id"] for f in ctype["inputs"]["fields"] if f.get("secret"))
    return fields


def _walk(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_no_secret_in_the_definition():
    # No credential at all (configure.yml makes them), no secret field and no $encrypted$ placeholder anywhere.
    assert DATA.get("credentials", []) == []
    secret_fields = _secret_fields()
    for key, value in _walk(DATA):
        assert key not in secret_fields, key
        assert value != "$encrypted$", key
    # The credentials the job templates use are all made by configure.yml's `credentials` tag.
    tagged = [t["awx.awx.credential"]["name"] for t in PLAYBOOK[0]["tasks"]
              if "awx.awx.credential" in t and "credentials" in t.get("tags", [])]
    used = {c["name"] for t in DATA["job_templates"] for c in t["related"]["credentials"]}
    assert used and used <= set(tagged)


# --------------------------------------------------------------------------------------------------
# awxkit's structures


def _awxkit():
    return pytest.importorskip("awxkit", reason="awxkit (pip install awxkit==24.6.1) checks the import format")


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def test_resources_and_natural_keys_match_awxkit():
    _awxkit()
    from awxkit.api.pages import (Credential, CredentialType, ExecutionEnvironment, Inventory, InventorySource,
                                  JobTemplate, Organization, Project)
    from awxkit.api.pages.api import DEPENDENT_EXPORT, EXPORTABLE_RESOURCES
    pages = {"organization": Organization, "execution_environment": ExecutionEnvironment,
             "credential_type": CredentialType, "credential": Credential, "project": Project,
             "inventory": Inventory, "inventory_source": InventorySource, "job_template": JobTemplate}
    assert set(DATA) <= set(EXPORTABLE_RESOURCES)
    defined = {}
    for resource, assets in DATA.items():
        for asset in assets:
            key = asset["natural_key"]
            page = pages[key["type"]]
            assert set(key) == set(page.NATURAL_KEY) | {"type"}, (resource, key)
            assert key["name"] == asset["name"]
            assert _freeze(key) not in defined, "duplicate %r" % key
            defined[_freeze(key)] = asset
    for key in MANAGED_CREDENTIAL_TYPES:
        defined[_freeze(key)] = key
    for name in ASSETS["credentials"]:          # made by configure.yml --tags credentials, before the import
        key = render.credential_key(ASSETS, name)
        defined[_freeze(key)] = key
    assert ("JobTemplate", "SurveySpec") in DEPENDENT_EXPORT   # survey_spec travels as a full related object

    def references(value, path):
        if isinstance(value, dict):
            if "type" in value and "name" in value and path[-1] != "natural_key":
                yield path, value
            for key, item in value.items():
                if key != "natural_key" and isinstance(item, (dict, list)):
                    yield from references(item, path + [key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from references(item, path + [str(index)])

    count = 0
    for resource, assets in DATA.items():
        for asset in assets:
            for path, ref in references(asset, [resource, asset["name"]]):
                assert _freeze(ref) in defined, "%s -> %r resolves to nothing" % ("/".join(path), ref)
                count += 1
    assert count > 20


def test_playbook_matches_the_import_format():
    (play,) = PLAYBOOK
    tasks = play["tasks"]
    modules = [next(k for k in t if k.startswith("awx.awx.")) for t in tasks]
    assert modules[:2] == ["awx.awx.organization", "awx.awx.execution_environment"]
    templates = [t["awx.awx.job_template"] for t in tasks if "awx.awx.job_template" in t]
    assert [t["name"] for t in templates] == [t["name"] for t in DATA["job_templates"]]
    by_name = _templates()
    for template in templates:
        exported = by_name[template["name"]]
        assert template["playbook"] == exported["playbook"]
        assert template["ask_limit_on_launch"] == exported["ask_limit_on_launch"]
        assert template.get("survey_spec") == exported["related"].get("survey_spec")
        names = [c["name"] for c in exported["related"]["credentials"]]
        assert template["credentials"] == names
    (source,) = [t["awx.awx.inventory_source"] for t in tasks if "awx.awx.inventory_source" in t]
    assert (source["source"], source["source_path"]) == ("scm", DATA["inventory_sources"][0]["source_path"])
    credentials = [t for t in tasks if "awx.awx.credential" in t]
    assert credentials and all(t.get("no_log") is True for t in credentials)
    ctype = [t["awx.awx.credential_type"] for t in tasks if "awx.awx.credential_type" in t][0]
    assert ctype["injectors"] == DATA["credential_types"][0]["injectors"]
    # the injector templates are AWX's, not Ansible's: they must stay !unsafe in the playbook
    assert "!unsafe '{{ url }}'" in (AWX / "configure.yml").read_text()


def test_awxkit_import_never_sends_a_secret():
    """Drive awxkit's own import loop (ApiV2._import_list) over every list of phoenix.json, once as new objects
    (POST) and once as objects AWX already has (PUT), and record what it would send: no secret field, and no value
    that awxkit's remove_encrypted turned into an empty string."""
    _awxkit()
    from awxkit.api import utils as awx_utils
    from awxkit.api.pages.api import ApiV2

    sent = []

    class Page(dict):
        def put(self, data):
            sent.append(("PUT", data))
            return self

        def wait_until_completed(self, timeout=None):
            return self

    class Endpoint:
        endpoint = "/api/v2/stub/"

        def post(self, data):
            sent.append(("POST", data))
            return Page(data)

    class Cache:
        def __init__(self, existing):
            self.existing = existing

        def get_by_natural_key(self, key):
            return Page(id=1, scm_type="git") if self.existing else None

        def set_page(self, page):
            pass

    secret_fields = _secret_fields()
    for existing in (False, True):
        for resource, assets in DATA.items():
            if not assets:
                continue
            api = ApiV2.__new__(ApiV2)
            api._cache, api._related, api._roles, api._has_error = Cache(existing), [], [], False
            fields = {k: {"type": "string"} for asset in assets for k in asset if k not in ("natural_key", "related")}
            original = awx_utils.get_post_fields
            awx_utils.get_post_fields = lambda endpoint, cache, _fields=fields: _fields
            try:
                api._import_list(Endpoint(), assets)
            finally:
                awx_utils.get_post_fields = original
            assert not api._has_error, resource
    assets = [a for existing in (False, True) for v in DATA.values() for a in v]
    assert len(sent) == len(assets)
    for (method, body), asset in zip(sent, assets):
        # exactly the file's values (awxkit drops a known project's local_path): nothing was blanked
        assert body and all(asset[k] == v for k, v in body.items()), (method, asset["name"])
        for key, _value in _walk(body):
            assert key not in secret_fields, (method, key)
