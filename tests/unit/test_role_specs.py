# -*- coding: utf-8 -*-
"""scripts/check_role_specs.py: the real roles pass, broken roles fail with a clear list."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_role_specs.py"


def run(*args):
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


GOOD_SPEC = """
    ---
    argument_specs:
      main:
        short_description: demo
        options:
          demo_port:
            type: int
            default: 8080
          demo_names:
            type: list
            elements: str
            default: [a, b]
          demo_config:
            description: from the inventory
            type: dict
          demo_token:
            type: str
            required: true
"""
GOOD_DEFAULTS = """
    ---
    demo_port: 8080
    demo_names:
      - a
      - b
    demo_config: "{{ phoenix_guest.demo | default({}) }}"
"""


def make_role(root, name="demo", spec=GOOD_SPEC, defaults=GOOD_DEFAULTS):
    role = root / name
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    if spec is not None:
        write(role / "meta" / "argument_specs.yml", spec)
    if defaults is not None:
        write(role / "defaults" / "main.yml", defaults)
    return role


def test_real_roles_pass():
    roles = sorted(p for p in (REPO / "roles").iterdir() if p.is_dir())
    if not roles:
        pytest.skip("no roles yet")
    rc, out = run()
    assert rc == 0, out
    for role in roles:
        assert role.name in out


def test_good_fixture_passes(tmp_path):
    make_role(tmp_path)
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 0, out
    assert "1 role(s) OK: demo" in out


def test_missing_spec_fails(tmp_path):
    make_role(tmp_path, spec=None)
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 1
    assert "roles/demo: meta/argument_specs.yml is missing" in out


def test_broken_role_lists_every_problem(tmp_path):
    spec = GOOD_SPEC.replace("default: 8080", "default: 9090") + (
        "          demo_only_in_spec:\n"
        "            type: bool\n"
        "            default: false\n"
        "          other_unprefixed:\n"
        "            type: str\n")
    defaults = GOOD_DEFAULTS + textwrap.indent(textwrap.dedent("""
        demo_undocumented: 1
        port: 80
    """), "    ")
    spec = spec.replace("demo_names:\n            type: list", "demo_names:\n            type: dict")
    make_role(tmp_path, spec=spec, defaults=defaults)
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 1, out
    expected = [
        "'demo_port' defaults to 8080 in defaults/ but to 9090 in argument_specs main",
        "variable 'demo_undocumented' is not documented in argument_specs main",
        "variable 'port' is not prefixed with 'demo_'",
        "option 'demo_only_in_spec' declares default False but defaults/main.yml does not set it",
        "option 'other_unprefixed' of entry point 'main' is not prefixed with 'demo_'",
        "'demo_names' is declared type 'dict' but its default ['a', 'b'] is a list",
    ]
    for line in expected:
        assert line in out, f"missing {line!r} in:\n{out}"


def test_literal_default_missing_from_spec(tmp_path):
    make_role(tmp_path, spec=GOOD_SPEC.replace("            default: 8080\n", ""))
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 1
    assert "'demo_port' defaults to 8080 in defaults/ but argument_specs main declares no default" in out


def test_no_main_entry_point(tmp_path):
    make_role(tmp_path, spec="---\nargument_specs:\n  other:\n    options: {}\n")
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 1
    assert "no `argument_specs.main` entry point" in out


def test_yaml_equal_not_text_equal(tmp_path):
    # flow vs block lists and quoting do not matter, only the data
    make_role(tmp_path, defaults=GOOD_DEFAULTS.replace("demo_port: 8080", "demo_port: !!int '8080'"))
    rc, out = run("--roles-dir", tmp_path)
    assert rc == 0, out
