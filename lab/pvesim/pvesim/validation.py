"""Parameter and reply validation as PVE's JSONSchema checker does it (same order of checks, same error texts,
errors keyed by parameter name or sub-key path), and PVE property strings (parse, print)."""

from __future__ import annotations

import copy
import re

from .formats import FORMATS, PROPERTY_FORMATS, FormatError, split_list


# How many instances PVE allows for each `name[n]` parameter (net0..net31, ...).
INSTANCE_COUNTS = {
    ("lxc", "net"): 32,
    ("lxc", "mp"): 256,
    ("lxc", "dev"): 256,
    ("lxc", "unused"): 256,
    ("qemu", "net"): 32,
    ("qemu", "ipconfig"): 32,
    ("qemu", "ide"): 4,
    ("qemu", "sata"): 6,
    ("qemu", "scsi"): 31,
    ("qemu", "virtio"): 16,
    ("qemu", "unused"): 256,
    ("qemu", "hostpci"): 16,
    ("qemu", "serial"): 4,
    ("qemu", "parallel"): 3,
    ("qemu", "usb"): 14,
    ("qemu", "numa"): 8,
    ("qemu", "virtiofs"): 10,
}
DEFAULT_INSTANCE_COUNT = 32
NOT_IN_SCHEMA = "property is not defined in schema and the schema does not allow additional properties"


class ParamError(Exception):
    """Parameter verification failed: 400 with per-parameter errors."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Parameter verification failed.")
        self.errors = errors


class PropertyStringError(ValueError):
    """A property string did not parse; ``str()`` is PVE's message (newline-terminated)."""


_PATTERN_CACHE: dict[str, re.Pattern] = {}


def _compile_pattern(pattern: str) -> re.Pattern:
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        # Perl's stringified regexes carry '(?^:' / '(?^i:' groups
        py = pattern.replace("(?^i:", "(?i:").replace("(?^:", "(?:")
        compiled = re.compile(py)
        _PATTERN_CACHE[pattern] = compiled
    return compiled


def guest_kind(template: str) -> str:
    return "qemu" if "/qemu" in template else "lxc"


_INSTANCE_RE = re.compile(r"^([a-z][a-z_]*?)(\d+)$")


def lookup_property(props: dict, name: str, kind: str = "lxc") -> dict | None:
    schema = props.get(name)
    if schema is not None:
        return schema
    match = _INSTANCE_RE.match(name)
    if not match:
        return None
    base, index = match.group(1), int(match.group(2))
    schema = props.get(f"{base}[n]")
    if schema is None:
        return None
    if match.group(2) != str(index):  # no leading zeros
        return None
    if index >= INSTANCE_COUNTS.get((kind, base), DEFAULT_INSTANCE_COUNT):
        return None
    return schema


# ---------------------------------------------------------------------------------------
# validation


def _is_integer(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value) is not None


def _is_number(value: str) -> bool:
    return re.fullmatch(r"[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?", value) is not None


def _add_error(errors: dict, path: str, msg: str):
    path = path or "_root"
    if path in errors:
        errors[path] = errors[path] + "\\n" + msg
    else:
        errors[path] = msg


def _scalar_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_type(path: str, typ, value, errors: dict) -> bool:
    if not typ or typ in ("any",):
        return True
    if typ == "null":
        if value is not None:
            _add_error(errors, path, f"type check ('{typ}') failed - value is not null")
            return False
        return True
    if typ == "array":
        if not isinstance(value, list):
            _add_error(errors, path, f"type check ('{typ}') failed")
            return False
        return True
    if typ == "object":
        if not isinstance(value, dict):
            _add_error(errors, path, f"type check ('{typ}') failed")
            return False
        return True
    if isinstance(value, (list, dict)):
        kind = "ARRAY" if isinstance(value, list) else "HASH"
        _add_error(errors, path, f"type check ('{typ}') failed - got {kind}")
        return False
    if typ == "boolean":
        if isinstance(value, bool):
            return True
        text = _scalar_text(value)
        if text in ("0", "1"):
            return True
        _add_error(errors, path, f"type check ('{typ}') failed - got '{text}'")
        return False
    text = _scalar_text(value)
    if typ == "integer" and not _is_integer(text):
        _add_error(errors, path, f"type check ('{typ}') failed - got '{text}'")
        return False
    if typ == "number" and not _is_number(text):
        _add_error(errors, path, f"type check ('{typ}') failed - got '{text}'")
        return False
    return True


def check_format(fmt, value: str, path: str):
    """Check a value against a `format`; raises FormatError / PropertyStringError with PVE's text."""
    if isinstance(fmt, dict):
        return parse_property_string(fmt, value, path)
    if fmt == "regex":
        return value
    match = re.match(r"^(.*?)(?:-(list|opt))?$", fmt)
    name, variant = match.group(1), match.group(2)
    if name in PROPERTY_FORMATS and variant is None:
        return parse_property_string(PROPERTY_FORMATS[name], value, path)
    verifier = FORMATS.get(name)
    if verifier is None:
        return value  # a format pvesim does not know: accepted
    if variant == "list":
        for item in split_list(value):
            verifier(item)
    elif variant == "opt":
        if value:
            verifier(value)
    else:
        verifier(value)
    return value


def _format_exception_text(exc: Exception) -> str:
    text = str(exc)
    return text if text.endswith("\n") else text + "\n"


def check_prop(value, schema: dict, path: str, errors: dict):
    if not isinstance(schema, dict):
        _add_error(errors, path, "Invalid schema definition.")
        return
    if schema.get("alias"):
        return
    if value is None:
        if schema.get("type") == "null":
            return
        if not schema.get("optional"):
            _add_error(errors, path, "property is missing and it is not optional")
        return
    if not _check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, element in enumerate(value):
                check_prop(element, items, f"{path}[{index}]", errors)
        return
    if isinstance(value, dict):
        if "properties" in schema or "additionalProperties" in schema:
            check_object(path, schema.get("properties") or {}, value, schema.get("additionalProperties"), errors)
        return
    text = value if isinstance(value, str) else _scalar_text(value)
    fmt = schema.get("format")
    if fmt:
        try:
            check_format(fmt, text, path)
        except (FormatError, PropertyStringError) as exc:
            _add_error(errors, path, "invalid format - " + _format_exception_text(exc))
            return
    pattern = schema.get("pattern")
    if pattern and not _compile_pattern(pattern).fullmatch(text):
        _add_error(errors, path, "value does not match the regex pattern")
        return
    max_len = schema.get("maxLength")
    if max_len is not None and len(text) > int(max_len):
        _add_error(errors, path, f"value may only be {max_len} characters long")
        return
    min_len = schema.get("minLength")
    if min_len is not None and len(text) < int(min_len):
        _add_error(errors, path, f"value must be at least {min_len} characters long")
        return
    if _is_number(text):
        number = float(text)
        maximum = schema.get("maximum")
        if maximum is not None and number > float(maximum):
            _add_error(errors, path, f"value must have a maximum value of {maximum}")
            return
        minimum = schema.get("minimum")
        if minimum is not None and number < float(minimum):
            _add_error(errors, path, f"value must have a minimum value of {minimum}")
            return
    enum = schema.get("enum")
    if enum and text not in [str(e) for e in enum]:
        choices = ", ".join(map(str, enum))
        _add_error(errors, path, f"value '{text}' does not have a value in the enumeration '{choices}'")


def check_object(path: str, props: dict, value: dict, additional, errors: dict, kind: str = "lxc"):
    """Check an object's keys against `props` (instance keys like net0 map to net[n])."""
    # remap aliased keys to their target
    for key in list(value):
        sub = lookup_property(props, key, kind)
        if sub and sub.get("alias"):
            target = sub["alias"]
            if value.get(target) is not None:
                where = f"{path}.{key}" if path else key
                _add_error(errors, where, f"cannot set both '{key}' and its alias target '{target}'")
            else:
                value[target] = value.pop(key)
    for key, sub in props.items():
        if key.endswith("[n]"):
            continue
        check_prop(value.get(key), sub, f"{path}.{key}" if path else key, errors)
    for key in list(value):
        newpath = f"{path}.{key}" if path else key
        sub = lookup_property(props, key, kind)
        if sub is not None:
            if key not in props:  # an instance of name[n]
                check_prop(value[key], sub, newpath, errors)
            requires = sub.get("requires")
            if isinstance(requires, str) and value.get(requires) is None:
                where = f"{path}.{requires}" if path else requires
                _add_error(errors, where, f"missing property required by '{newpath}'")
            continue
        if additional is None or additional:
            if isinstance(additional, dict):
                check_prop(value[key], additional, newpath, errors)
            continue
        _add_error(errors, newpath, NOT_IN_SCHEMA)


def validate_params(params: dict, parameters: dict, kind: str = "lxc") -> None:
    """Validate request parameters against a method's `parameters` schema; raises ParamError."""
    errors: dict[str, str] = {}
    props = parameters.get("properties") or {}
    check_object("", props, dict(params), parameters.get("additionalProperties"), errors, kind)
    if errors:
        raise ParamError(errors)


def validate_reply(data, returns: dict, kind: str = "lxc") -> dict[str, str]:
    """Errors of a handler's reply against its method's `returns` schema ({} when it matches).

    The checks are PVE's own result verification (pve-common RESTHandler.pm `handle`, which
    calls JSONSchema.pm `validate` on the result): types as PVE's check_type reads them,
    required properties, enums, patterns, formats, `null`, array items and listed object
    properties; extra properties pass unless the schema sets additionalProperties to 0.
    A reply that is the top-level value itself is reported under the key `(reply)`.
    """
    errors: dict[str, str] = {}
    value = copy.deepcopy(data)  # check_object remaps aliases in place
    props = returns.get("properties") if isinstance(returns, dict) else None
    if isinstance(value, dict) and returns.get("type") == "object" and (
            props is not None or "additionalProperties" in returns):
        check_object("", props or {}, value, returns.get("additionalProperties"), errors, kind)
    else:
        check_prop(value, returns, "", errors)
    if "_root" in errors:
        errors["(reply)"] = errors.pop("_root")
    return errors


# ---------------------------------------------------------------------------------------
# property strings


def _parse_boolean(text: str):
    low = text.lower()
    if low in ("1", "on", "yes", "true"):
        return "1"
    if low in ("0", "off", "no", "false"):
        return "0"
    return None


def parse_property_string(fmt: dict, data: str, path: str = "") -> dict:
    """Parse `k=v,k=v` against a property-string schema, as PVE does (aliases, default key).

    Raises PropertyStringError with PVE's message on failure.
    """
    result: dict[str, str] = {}
    default_key = None
    for part in data.split(","):
        if not part.strip():
            continue
        match = re.fullmatch(r"([^=]+)=(.+)", part, re.S)
        if match:
            key, value = match.group(1), match.group(2)
            if key in result:
                raise PropertyStringError(f"duplicate key in comma-separated list property: {key}\n")
            schema = fmt.get(key)
            if schema is not None and schema.get("alias"):
                key_alias = schema.get("keyAlias")
                if key_alias:
                    if key_alias in result:
                        raise PropertyStringError(f"key alias '{key_alias}' is already defined\n")
                    result[key_alias] = key
                key = schema["alias"]
                schema = fmt.get(key)
                if key in result:
                    raise PropertyStringError(f"key '{key}' is already defined (via alias)\n")
            if schema is None:
                raise PropertyStringError(f"invalid key in comma-separated list property: {key}\n")
            if schema.get("type") == "boolean":
                value = _parse_boolean(value) or value
            result[key] = value
        elif "=" not in part:
            if default_key:
                raise PropertyStringError(f"duplicate key in comma-separated list property: {default_key}\n")
            for key, schema in fmt.items():
                if schema.get("default_key"):
                    default_key = key
                    if key in result:
                        raise PropertyStringError(f"duplicate key in comma-separated list property: {key}\n")
                    if schema.get("type") == "boolean":
                        part = _parse_boolean(part) or part
                    result[key] = part
                    break
            if not default_key:
                raise PropertyStringError("value without key, but schema does not define a default key\n")
        else:
            raise PropertyStringError("missing key in comma-separated list property\n")
    errors: dict[str, str] = {}
    check_object(path, fmt, dict(result), 0, errors)
    if errors:
        lines = "".join(f"{key}: {errors[key]}\n" for key in sorted(errors))
        raise PropertyStringError("format error\n" + lines)
    return result


def print_property_string(fmt: dict | None, data: dict, first: tuple[str, ...] = ()) -> str:
    """Format a property string: the default key's bare value first, then `first` keys, then the rest sorted."""
    fmt = fmt or {}
    default_key = next((k for k, s in fmt.items() if s.get("default_key")), None)
    parts = []
    done = set()
    if default_key and data.get(default_key) not in (None, ""):
        parts.append(str(data[default_key]))
        done.add(default_key)
    for key in list(first) + sorted(data):
        if key in done or data.get(key) is None:
            continue
        done.add(key)
        parts.append(f"{key}={data[key]}")
    return ",".join(parts)
