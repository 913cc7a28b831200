"""The workflow config: reading it and checking it against ``schemas/config.schema.yaml``.

:func:`load_config` reads a YAML config and validates it, filling in the schema's defaults;
:func:`validate_config` does the same for a dict (and refuses NaN and infinite numbers,
:func:`check_finite`, which the schema's bounds let pass); :func:`describe_schema_error` turns a
schema error into one line naming the field. The expansion of a valid config into trainings is
:mod:`rcpb.grid`. Torch-free (the Snakefile imports it on every start).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rcpb.errors import RcpbError


def schema_path() -> Path:
    """``schemas/config.schema.yaml`` of the repository this package lives in."""
    path = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
    if not path.exists():
        raise RcpbError(f"cannot find the config schema at {path}; run rcpb from a checkout of "
                        f"the repository installed with 'pip install -e .'.")
    return path


def load_config(path: str | Path) -> dict:
    """Read a workflow config (YAML), validate it against the schema and fill its defaults."""
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RcpbError(f"cannot read config {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise RcpbError(f"{path} is not valid YAML: {exc}") from None
    validate_config(config, source=str(path))
    return config


def validate_config(config: dict, source: str = "config") -> None:
    """Check ``config`` against the schema (filling defaults in place); RcpbError if invalid."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(schema_path().read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = _with_defaults(validator_cls)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise RcpbError(f"{source}: " + describe_schema_error(errors[0]))
    check_finite(config, source)


def check_finite(config, source: str = "config", where: str = "") -> None:
    """RcpbError naming the field if any number in ``config`` is NaN or infinite.

    YAML reads ``.nan`` and ``.inf`` as floats, and the schema's bounds cannot refuse NaN (every
    comparison with it is false): e.g. ``lr: .nan`` would pass them and train on NaN.
    """
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        if isinstance(config, float) and not math.isfinite(config):
            raise RcpbError(f"{source}: {where or '(top level)'}: {config} is not a finite "
                            f"number; give a finite value.")
        return
    for key, value in items:
        check_finite(value, source, f"{where}.{key}" if where else str(key))


def describe_schema_error(error) -> str:
    """'field.path: message' for a jsonschema ValidationError."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message}"


def _with_defaults(validator_cls):
    """A validator class that fills in the schema's ``default`` values while validating."""
    import jsonschema

    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = json.loads(json.dumps(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
