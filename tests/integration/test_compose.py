"""docker-compose.yml and the Dockerfile hang together (read as files: no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Compose's interpolation forms: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert services, "docker-compose.yml declares no services"
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve variables as `docker compose` does, against `env`; a required variable that is unset raises."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        current = env.get(name)
        if op.endswith("?") and (current is None or (op == ":?" and not current)):
            raise KeyError(f"{name} is required: {arg}")
        if op in (":-", "-") and (current is None or (op == ":-" and not current)):
            return arg
        return current or ""

    return _VARIABLE.sub(resolve, value)


def _depends_on(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps) if isinstance(deps, list) else list(deps.keys())


def _named_volumes(service: dict[str, Any]) -> list[str]:
    """Names of the named volumes a service mounts (bind mounts and anonymous volumes left out)."""
    names = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, dict):
            if mount.get("type", "volume") == "volume" and mount.get("source"):
                names.append(str(mount["source"]))
        elif ":" in mount and not mount.startswith(("/", ".", "~", "$")):
            names.append(mount.split(":", 1)[0])
    return names


def _dockerfile_for(service: dict[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return Path(ROOT, build, "Dockerfile")
    return Path(ROOT, build.get("context", "."), build.get("dockerfile", "Dockerfile"))


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, args = stripped.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def _argv(command: str | list[str]) -> list[str]:
    """A CMD or `command` as argv: exec form (JSON array / YAML list) or shell form."""
    if isinstance(command, list):
        return [str(a) for a in command]
    if command.lstrip().startswith("["):
        parsed = json.loads(command)
        assert isinstance(parsed, list)
        return [str(a) for a in parsed]
    return shlex.split(command)


def _console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def test_postgres_service_reports_health_with_pg_isready() -> None:
    healthcheck = _services()["postgres"].get("healthcheck")
    assert healthcheck, "the postgres service has no healthcheck, so depends_on cannot wait for it"
    test = healthcheck["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert "pg_isready" in command


def test_every_dependency_names_a_declared_service() -> None:
    services = _services()
    dependencies = [(name, dep) for name, service in services.items() for dep in _depends_on(service)]
    assert dependencies, "no service depends on another"
    for name, dep in dependencies:
        assert dep in services, f"service {name} depends on undeclared service {dep}"


def test_talent_service_waits_until_postgres_is_healthy() -> None:
    depends_on = _services()["talent"]["depends_on"]
    assert isinstance(depends_on, dict), "a plain list only waits for the container to start"
    assert depends_on["postgres"]["condition"] == "service_healthy"


def test_talent_service_connects_to_the_postgres_service_with_its_credentials() -> None:
    services = _services()
    postgres_env = _environment(services["postgres"])
    url = urlsplit(_interpolate(_environment(services["talent"])["DATABASE_URL"], env={}))
    assert url.scheme in ("postgresql", "postgres")
    assert url.hostname == "postgres"
    assert url.port in (None, 5432)
    assert url.username == _interpolate(postgres_env["POSTGRES_USER"], env={})
    assert url.password == _interpolate(postgres_env["POSTGRES_PASSWORD"], env={})
    assert url.path.lstrip("/") == _interpolate(postgres_env["POSTGRES_DB"], env={})


def test_vault_key_comes_from_the_environment_and_is_required() -> None:
    value = _environment(_services()["talent"])["TALENT_VAULT_KEY"]
    match = _VARIABLE.fullmatch(value)
    assert match is not None, "TALENT_VAULT_KEY must be taken from the environment, not written in the file"
    assert match["name"] == "TALENT_VAULT_KEY"
    with pytest.raises(KeyError):
        _interpolate(value, env={})
    assert _interpolate(value, env={"TALENT_VAULT_KEY": "a2V5"}) == "a2V5"


def test_database_password_is_not_committed_beyond_a_development_default() -> None:
    value = _environment(_services()["postgres"])["POSTGRES_PASSWORD"]
    match = _VARIABLE.fullmatch(value)
    assert match is not None and match["name"] == "POSTGRES_PASSWORD"
    assert _interpolate(value, env={"POSTGRES_PASSWORD": "from-a-secret"}) == "from-a-secret"


def test_every_named_volume_in_use_is_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    used = {(name, volume) for name, service in _services().items() for volume in _named_volumes(service)}
    assert any(name == "postgres" for name, _ in used), "the database does not live on a named volume"
    for name, volume in used:
        assert volume in declared, f"service {name} mounts undeclared volume {volume}"


def test_talent_image_runs_the_declared_console_script_as_a_non_root_user() -> None:
    dockerfile = _dockerfile_for(_services()["talent"])
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    instructions = _dockerfile_instructions(dockerfile)
    cmds = [args for instruction, args in instructions if instruction == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    assert _argv(cmds[-1])[0] in _console_scripts()
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_talent_service_runs_migrate_through_the_console_script() -> None:
    argv = _argv(_services()["talent"]["command"])
    assert argv[0] in _console_scripts()
    assert argv[1:] == ["migrate"]


def test_image_never_copies_the_local_data_dir_or_virtualenv() -> None:
    dockerfile = _dockerfile_for(_services()["talent"])
    dockerignore = dockerfile.parent / ".dockerignore"
    ignored = (
        {line.strip().strip("/") for line in dockerignore.read_text().splitlines()} if dockerignore.exists() else set()
    )
    for instruction, args in _dockerfile_instructions(dockerfile):
        if instruction not in ("COPY", "ADD"):
            continue
        sources = [s for s in _argv(args)[:-1] if not s.startswith("--")]
        for source in sources:
            assert source.rstrip("/") not in (".data", ".venv"), f"{instruction} {args} copies {source}"
            if source in (".", "./"):
                # A whole-context copy is only safe when .dockerignore keeps both out.
                assert {".data", ".venv"} <= ignored, f"{instruction} {args} copies .data or .venv"
