#!/usr/bin/env python
"""Check every role's meta/argument_specs.yml against its defaults.

    python scripts/check_role_specs.py                 # every roles/*/ of this checkout
    python scripts/check_role_specs.py roles/vllm ...  # some roles
    python scripts/check_role_specs.py --roles-dir DIR # every role under DIR

For each role:
  - meta/argument_specs.yml exists and has a `main` entry point with `options`;
  - every variable set in defaults/ (defaults/main.yml or defaults/main/*.yml) is an option of `main`,
    with the same default (compared as YAML data); a templated default ("{{ ... }}") may be left out of
    the spec, since the spec cannot evaluate it;
  - every option of `main` that declares a default is set in defaults/;
  - a literal default matches the option's type (str, int, bool, list, dict, ...);
  - every variable and every option (of every entry point) is prefixed with the role's name (`<role>_`),
    or `__<role>_` for internal ones.

Exits 0 when every role passes, 1 with one line per problem otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# spec type -> Python types a literal default of that type may have
TYPES = {
    "str": (str,),
    "path": (str,),
    "raw": (object,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "jsonarg": (str, list, dict),
    "json": (str, list, dict),
    "bytes": (str, int),
    "bits": (str, int),
}


class _Loader(yaml.SafeLoader):
    """safe_load that reads Ansible's tags (!unsafe, !vault) as plain scalars."""


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _any_tag)


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def templated(value) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list):
        return any(templated(item) for item in value)
    if isinstance(value, dict):
        return any(templated(item) for item in value.values())
    return False


def type_matches(spec_type: str, value) -> bool:
    if value is None:
        return True
    allowed = TYPES.get(spec_type)
    if allowed is None:
        return True
    if spec_type in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, allowed)


def load_defaults(role: Path) -> tuple[dict, list[str]]:
    files = []
    for candidate in (role / "defaults" / "main.yml", role / "defaults" / "main.yaml"):
        if candidate.is_file():
            files.append(candidate)
    directory = role / "defaults" / "main"
    if directory.is_dir():
        files += sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml"))
    defaults, problems = {}, []
    for path in files:
        try:
            data = load_yaml(path)
        except yaml.YAMLError as exc:
            problems.append(f"{path.relative_to(role.parent)}: not valid YAML: {exc}")
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.relative_to(role.parent)}: must be a mapping of variables")
            continue
        defaults.update(data)
    return defaults, problems


def prefixed(name: str, role: str) -> bool:
    return name.startswith(f"{role}_") or name.startswith(f"__{role}_")


def check_role(role: Path) -> list[str]:
    name = role.name
    where = f"roles/{name}"
    problems = []
    defaults, default_problems = load_defaults(role)
    problems += [f"roles/{p}" for p in default_problems]

    spec_path = None
    for candidate in (role / "meta" / "argument_specs.yml", role / "meta" / "argument_specs.yaml"):
        if candidate.is_file():
            spec_path = candidate
            break
    if spec_path is None:
        problems.append(f"{where}: meta/argument_specs.yml is missing")
        spec = {}
    else:
        try:
            spec = load_yaml(spec_path) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{where}/meta/{spec_path.name}: not valid YAML: {exc}")
            spec = {}
    entry_points = spec.get("argument_specs") if isinstance(spec, dict) else None
    options = {}
    if spec_path is not None:
        if not isinstance(entry_points, dict) or not isinstance(entry_points.get("main"), dict):
            problems.append(f"{where}/meta/{spec_path.name}: no `argument_specs.main` entry point")
            entry_points = entry_points if isinstance(entry_points, dict) else {}
        else:
            options = entry_points["main"].get("options") or {}
            if not isinstance(options, dict):
                problems.append(f"{where}/meta/{spec_path.name}: argument_specs.main.options must be a mapping")
                options = {}

    for var in sorted(defaults):
        if not prefixed(var, name):
            problems.append(f"{where}/defaults: variable {var!r} is not prefixed with {name + '_'!r}")
        if spec_path is None:
            continue
        if var.startswith("__"):
            continue  # internal variables are not part of the interface
        if var not in options:
            problems.append(f"{where}/defaults: variable {var!r} is not documented in argument_specs main")
            continue
        option = options[var] or {}
        value = defaults[var]
        if "default" in option:
            if option["default"] != value:
                problems.append(f"{where}: {var!r} defaults to {value!r} in defaults/ but to "
                                f"{option['default']!r} in argument_specs main")
        elif not templated(value) and value is not None:
            problems.append(f"{where}: {var!r} defaults to {value!r} in defaults/ but argument_specs main "
                            "declares no default")
        spec_type = option.get("type", "str")
        if not templated(value) and not type_matches(spec_type, value):
            problems.append(f"{where}: {var!r} is declared type {spec_type!r} but its default {value!r} "
                            f"is a {type(value).__name__}")

    for entry, entry_spec in sorted((entry_points or {}).items()):
        entry_options = (entry_spec or {}).get("options") or {} if isinstance(entry_spec, dict) else {}
        for option_name in sorted(entry_options):
            if not prefixed(option_name, name):
                problems.append(f"{where}/meta: option {option_name!r} of entry point {entry!r} is not prefixed "
                                f"with {name + '_'!r}")
    for option_name, option in sorted(options.items()):
        if isinstance(option, dict) and "default" in option and option_name not in defaults:
            problems.append(f"{where}/meta: option {option_name!r} declares default {option['default']!r} "
                            "but defaults/main.yml does not set it")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("roles", nargs="*", type=Path, help="role directories (default: every role in --roles-dir)")
    parser.add_argument("--roles-dir", type=Path, default=ROOT / "roles")
    args = parser.parse_args(argv)
    if args.roles:
        roles = args.roles
    elif args.roles_dir.is_dir():
        roles = sorted(p for p in args.roles_dir.iterdir() if p.is_dir())
    else:
        roles = []
    if not roles:
        print(f"check_role_specs: no roles found (looked in {args.roles_dir})", file=sys.stderr)
        return 2
    problems = []
    for role in roles:
        if not role.is_dir():
            print(f"check_role_specs: {role} is not a directory", file=sys.stderr)
            return 2
        problems += check_role(role)
    if problems:
        print(f"check_role_specs: {len(problems)} problem(s) in {len(roles)} role(s):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"check_role_specs: {len(roles)} role(s) OK: {', '.join(r.name for r in roles)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
