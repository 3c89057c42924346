"""The image and the compose file, checked where no Docker engine runs.

docker-compose.yml is read with PyYAML and its wiring asserted (profiles, start order,
health checks, ports, restart policies, settings the app really reads). Then Docker Compose
itself resolves the model, as `docker compose config --format json`, for the sandbox profile
in a directory without .env and for production with a .env made from .env.example. Compose
is `docker compose` when the CLI has the plugin, else a `docker-compose` v2 binary on PATH or
beside this Python; where neither is installed the same assertions run on a model
resolved here from the YAML (profiles and ${VAR:-default} interpolation), so the test still
checks everything but Compose's own parsing. The Dockerfile is parsed, and
docker/entrypoint.sh runs with stub `flask` and `gunicorn` commands on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.config import ConfigError, load_config
from app.sandbox.cli import settings_from_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"

PRODUCTION = {"postgres", "migrate", "web", "worker"}
SANDBOX = {"sandbox-postgres", "sandbox", "sandbox-migrate", "sandbox-web", "sandbox-worker"}
DATABASES = {"postgres", "sandbox-postgres"}
ONE_SHOT = {"migrate", "sandbox-migrate"}
# Read by the postgres image, not by Kassa.
POSTGRES_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
# Read by Compose itself from .env.
COMPOSE_VARIABLES = {"COMPOSE_PROFILES", "POSTGRES_PASSWORD"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def app_variables() -> set[str]:
    """Every environment variable Kassa's settings, or the image's entry point, read."""
    config = (ROOT / "app" / "config.py").read_text()
    names = set(re.findall(r'_(?:env|int|float)\(\s*"([A-Z][A-Z0-9_]+)"', config))
    for group in re.findall(r"for name in \(([^)]*)\)", config):
        names |= set(re.findall(r'"([A-Z][A-Z0-9_]+)"', group))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", ENTRYPOINT.read_text()))
    return names


def env_example() -> dict[str, str | None]:
    """The variables of .env.example: a value when set, None when only commented in."""
    found: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            found[match[1]] = match[2]
        elif match := re.fullmatch(r"# ?([A-Z][A-Z0-9_]*)=.*", line):
            found.setdefault(match[1], None)
    return found


def filled_env_example() -> dict[str, str]:
    """.env.example as an operator fills it in."""
    values = {"SECRET_KEY": "8f14e45fceea167a5a36dedd4bea2543c4ca4238a0b923820dcc509a6f75849b",
              "POSTGRES_PASSWORD": "0a1b2c3d4e5f6a7b", "RAIFFEISEN_SBP_MERCHANT_ID": "MA0000123456",
              "RAIFFEISEN_SECRET_KEY": "bank-issued-key-4c5d", "ATOL_LOGIN": "shop-login",
              "ATOL_PASSWORD": "shop-pass-77", "ATOL_GROUP_CODE": "group_1234",
              "COMPANY_INN": "7707083893", "COMPANY_EMAIL": "shop@kassa.example.ru"}
    example = {k: v for k, v in env_example().items() if v is not None}
    return {k: v or values.get(k, "") for k, v in example.items()}


def kassa_services(model: dict) -> dict:
    return {name: s for name, s in model["services"].items() if name not in DATABASES}


# ----------------------------------------------------------------------- the YAML's wiring

def test_every_service_belongs_to_exactly_one_profile():
    services = compose()["services"]
    profiles = {name: service.get("profiles") for name, service in services.items()}
    assert {n for n, p in profiles.items() if p == ["production"]} == PRODUCTION
    assert {n for n, p in profiles.items() if p == ["sandbox"]} == SANDBOX
    assert set(services) == PRODUCTION | SANDBOX


def test_processes_start_after_the_database_and_the_migration():
    services = compose()["services"]
    for database, migrate, users in (("postgres", "migrate", ("web", "worker")),
                                     ("sandbox-postgres", "sandbox-migrate",
                                      ("sandbox-web", "sandbox-worker"))):
        assert services[migrate]["depends_on"] == {database: {"condition": "service_healthy"}}
        for name in users:
            depends = services[name]["depends_on"]
            assert depends[migrate] == {"condition": "service_completed_successfully"}, name
            assert depends[database] == {"condition": "service_healthy"}, name
    for name in ("sandbox-web", "sandbox-worker"):
        assert services[name]["depends_on"]["sandbox"] == {"condition": "service_healthy"}


def test_migrations_run_only_in_the_one_shot_services():
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["sandbox-migrate"]["command"][0].startswith("./entrypoint.sh migrate ")
    for name in ("web", "sandbox-web"):
        assert services[name]["command"] == ["web"]
    for name in ("worker", "sandbox-worker"):
        assert services[name]["command"] == ["worker"]
    assert services["sandbox"]["command"] == ["sandbox"]


def test_health_checks_and_restart_policies():
    services = compose()["services"]
    for name in ("web", "sandbox-web"):
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), name
    for name in DATABASES:
        assert "pg_isready" in " ".join(services[name]["healthcheck"]["test"])
    assert "8081" in " ".join(services["sandbox"]["healthcheck"]["test"])
    # The image's HEALTHCHECK asks a web container; these are not web.
    for name in ONE_SHOT | {"worker", "sandbox-worker"}:
        assert services[name]["healthcheck"] == {"disable": True}, name
    for name, service in services.items():
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service["restart"] == expected, name


def test_ports_are_published_on_loopback_only_and_never_the_database():
    services = compose()["services"]
    for name in DATABASES:
        assert "ports" not in services[name] and "expose" not in services[name]
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"web": ["127.0.0.1:8000:8000"], "sandbox-web": ["127.0.0.1:8000:8000"],
                         "sandbox": ["127.0.0.1:8081:8081"]}


def test_kassa_services_run_the_image_built_from_the_dockerfile():
    model = compose()
    for name, service in kassa_services(model).items():
        assert service["build"] == ".", name
        assert service["image"] == "kassa:latest", name
    assert (ROOT / "Dockerfile").is_file()


def test_compose_sets_only_variables_the_app_reads():
    known = app_variables()
    for name, service in compose()["services"].items():
        variables = set(service.get("environment", {}))
        allowed = POSTGRES_VARIABLES if name in DATABASES else known
        assert variables <= allowed, f"{name} sets {sorted(variables - allowed)}"


def test_nothing_demands_a_variable_so_the_sandbox_needs_no_env_file():
    # ${VAR:?msg} or ${VAR?msg} fail the whole file, whichever profile runs.
    lines = [line for line in COMPOSE_FILE.read_text().splitlines()
             if not line.lstrip().startswith("#")]
    assert not re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?", "\n".join(lines))
    for name in SANDBOX:
        assert "env_file" not in compose()["services"][name], name


def test_production_takes_its_settings_from_env_and_none_from_the_sandbox():
    services = compose()["services"]
    for name in PRODUCTION - {"postgres"}:
        service = services[name]
        assert service["env_file"] == [{"path": ".env", "required": False}]
        assert "APP_ENV" not in service["environment"]  # the image's: production
        assert "sandbox" not in json.dumps(service["environment"]), name


def test_env_example_names_only_real_settings_and_all_that_production_demands():
    example = env_example()
    unknown = set(example) - app_variables() - COMPOSE_VARIABLES
    assert not unknown, f".env.example sets variables nothing reads: {sorted(unknown)}"
    assert example["COMPOSE_PROFILES"] == "production"
    # As shipped (blank secrets), production refuses and names what is missing ...
    shipped = {k: v for k, v in example.items() if v is not None}
    with pytest.raises(ConfigError) as refused:
        load_config("production", overrides=_without_empty(shipped))
    assert any(p.startswith("SECRET_KEY is not set") for p in refused.value.problems)
    # ... and filled in, every setting production demands is among its lines.
    config = load_config("production", overrides=_without_empty(filled_env_example()))
    assert config["PUBLIC_URL"] == "https://kassa.example.ru"


def _without_empty(values: dict[str, str]) -> dict[str, str]:
    """A compose env_file line `NAME=` sets an empty value, which Kassa reads as unset."""
    return {k: v for k, v in values.items() if v and k not in COMPOSE_VARIABLES}


def test_the_sandbox_and_its_web_agree_on_each_other():
    """web calls the emulator with credentials it accepts; the emulator calls web back."""
    services = compose()["services"]
    web_config = _config_for(services["sandbox-web"]["environment"])
    sandbox_config = _config_for(services["sandbox"]["environment"])
    settings = settings_from_config(sandbox_config)
    assert web_config["APP_ENV"] == "development"
    assert (settings.merchant_id, settings.secret_key) == (
        web_config["RAIFFEISEN_SBP_MERCHANT_ID"], web_config["RAIFFEISEN_SECRET_KEY"])
    assert (settings.atol_login, settings.atol_password, settings.atol_group_code) == (
        web_config["ATOL_LOGIN"], web_config["ATOL_PASSWORD"], web_config["ATOL_GROUP_CODE"])
    assert settings.callback_url == "http://sandbox-web:8000/sbp/callback"
    for key in ("RAIFFEISEN_API_URL", "ATOL_API_URL", "NSPK_BANKS_URL"):
        assert web_config[key].startswith("http://sandbox:8081"), key
    assert web_config["PUBLIC_URL"] == "http://localhost:8000"
    assert web_config["SQLALCHEMY_DATABASE_URI"].endswith("@sandbox-postgres:5432/kassa")


def _config_for(environment: dict[str, str]) -> dict:
    overrides = dict(environment)
    return load_config(overrides.pop("APP_ENV"), overrides=_as_config_keys(overrides))


def _as_config_keys(environment: dict[str, str]) -> dict[str, str]:
    renamed = dict(environment)
    renamed["SQLALCHEMY_DATABASE_URI"] = renamed.pop("DATABASE_URL")
    return renamed


# ------------------------------------------------------- the model as Docker Compose sees it

def compose_command() -> list[str] | None:
    """`docker compose`, else the docker-compose v2 binary beside this Python, else None."""
    if shutil.which("docker"):
        found = subprocess.run(["docker", "compose", "version"], check=False,
                               capture_output=True)
        if found.returncode == 0:
            return ["docker", "compose"]
    beside = Path(sys.executable).parent / "docker-compose"
    for candidate in (str(beside), shutil.which("docker-compose")):
        if candidate and Path(candidate).is_file():
            version = subprocess.run([candidate, "version"], check=False, capture_output=True,
                                     text=True)
            if version.returncode == 0 and " v2." in version.stdout:
                return [candidate]
    return None


def resolved_model(directory: Path, profile: str | None) -> dict:
    """The compose model for `profile` (None: as .env says) resolved in `directory`."""
    clean = {k: v for k, v in os.environ.items()
             if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    command = compose_command()
    if command is not None:
        args = [*command, *(["--profile", profile] if profile else []), "config",
                "--format", "json"]
        done = subprocess.run(args, check=False, cwd=directory, env=clean, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    return _model_from_yaml(directory, profile)


def _model_from_yaml(directory: Path, profile: str | None) -> dict:
    """What `docker compose config` does that these tests rely on, done here."""
    env_file = directory / ".env"
    variables = {}
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if (match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)):
                variables[match[1]] = match[2]
    profiles = {profile} if profile else set(filter(None, variables.get(
        "COMPOSE_PROFILES", "").split(",")))

    def interpolate(text: str) -> str:
        def one(match):
            if match[1] not in variables and match[2] is None:
                return ""
            return variables.get(match[1]) or (match[2] or "")
        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", one, text)

    model = yaml.safe_load(interpolate((directory / "docker-compose.yml").read_text()))
    services = {}
    for name, service in model["services"].items():
        if not profiles & set(service.get("profiles", [])):
            continue
        environment = {}
        for entry in service.get("env_file", []):
            if (directory / entry["path"]).exists():
                environment.update(variables)
        environment.update(service.get("environment", {}))
        services[name] = {**service, "environment": environment}
    return {"services": services}


@pytest.fixture
def project(tmp_path):
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_sandbox_profile_resolves_without_an_env_file(project):
    model = resolved_model(project, "sandbox")
    assert set(model["services"]) == SANDBOX
    for name, service in kassa_services(model).items():
        environment = service["environment"]
        assert environment["APP_ENV"] == "development", name
        assert "sandbox-only" in environment["SECRET_KEY"]
        assert environment["DATABASE_URL"] == (
            "postgresql+psycopg://kassa:sandbox@sandbox-postgres:5432/kassa")
    # Nothing of production starts there by accident.
    assert resolved_model(project, None)["services"] == {}


def test_production_resolves_with_the_env_file_from_the_example(project):
    values = filled_env_example()
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    model = resolved_model(project, None)  # COMPOSE_PROFILES=production from .env
    assert set(model["services"]) == PRODUCTION
    password = values["POSTGRES_PASSWORD"]
    assert model["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    for name, service in kassa_services(model).items():
        environment = service["environment"]
        assert environment["DATABASE_URL"] == (
            f"postgresql+psycopg://kassa:{password}@postgres:5432/kassa"), name
        assert environment["SECRET_KEY"] == values["SECRET_KEY"], name
        assert environment["APP_ENV"] == "production", name
        # What the containers get is a configuration Kassa accepts for production.
        load_config("production", overrides=_as_config_keys(_without_empty(environment)))


# ------------------------------------------------------------------------- the Dockerfile

def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_image_is_python_311_and_runs_as_a_user():
    instructions = dockerfile()
    bases = [arg for op, arg in instructions if op == "FROM"]
    assert bases and all(base.startswith("python:3.11") for base in bases)
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(op == "HEALTHCHECK" for op, _ in instructions)


def test_image_copies_what_the_app_needs_and_it_exists():
    sources = []
    for op, arg in dockerfile():
        if op == "COPY" and "--from=" not in arg:
            parts = [p for p in arg.split() if not p.startswith("--")]
            sources += parts[:-1]
    for needed in ("app", "templates", "static", "migrations", "wsgi.py",
                   "docker/entrypoint.sh", "requirements.txt"):
        assert needed in sources, needed
    for source in sources:
        assert (ROOT / source).exists(), source


def test_no_secret_is_baked_into_the_image():
    for op, arg in dockerfile():
        if op in ("ENV", "ARG"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY", arg), arg
        if op in ("COPY", "ADD"):
            assert ".env" not in arg.split(), arg
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and "instance" in ignored


def test_entrypoint_is_executable_in_git():
    listed = subprocess.run(["git", "ls-files", "-s", "docker/entrypoint.sh"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    assert listed.startswith("100755 "), listed or "docker/entrypoint.sh is not committed"
    assert os.access(ENTRYPOINT, os.X_OK)


# --------------------------------------------------------------------- the entry point runs

@pytest.fixture
def stubs(tmp_path):
    """`flask` and `gunicorn` stubs that log their arguments; `flask db upgrade` fails as
    often as FAILS says (with FAIL_STATUS), counted in a file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    (bin_dir / "flask").write_text(f"""#!/bin/sh
echo "flask $*" >> {log}
if [ "$1 $2" = "db upgrade" ]; then
  n=$(cat {tmp_path}/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {tmp_path}/count
  [ "$n" -le "${{FAILS:-0}}" ] && exit "${{FAIL_STATUS:-1}}"
fi
exit 0
""")
    (bin_dir / "gunicorn").write_text(f'#!/bin/sh\necho "gunicorn $*" >> {log}\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)

    def run(*args: str, **env: str) -> tuple[int, list[str], str]:
        environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MIGRATE_RETRY_SECONDS": "0", **env}
        done = subprocess.run(["sh", str(ENTRYPOINT), *args], check=False, env=environment,
                              capture_output=True, text=True, timeout=30)
        calls = log.read_text().splitlines() if log.exists() else []
        return done.returncode, calls, done.stderr
    return run


def test_migrate_retries_while_the_database_starts(stubs):
    status, calls, stderr = stubs("migrate", FAILS="2")
    assert status == 0
    assert calls == ["flask db upgrade"] * 3
    assert stderr.count("retrying") == 2


def test_migrate_stops_at_once_on_a_refused_configuration(stubs):
    status, calls, stderr = stubs("migrate", FAILS="5", FAIL_STATUS="4")
    assert status == 4
    assert calls == ["flask db upgrade"]
    assert "configuration is refused" in stderr


def test_migrate_gives_up_after_its_tries(stubs):
    status, calls, stderr = stubs("migrate", FAILS="99", MIGRATE_TRIES="3")
    assert status == 1
    assert calls == ["flask db upgrade"] * 3
    assert "giving up" in stderr


def test_migrate_then_a_flask_command(stubs):
    status, calls, _ = stubs("migrate", "demo", "seed")
    assert status == 0
    assert calls == ["flask db upgrade", "flask demo seed"]


def test_web_serves_without_migrating(stubs):
    status, calls, _ = stubs("web", WEB_CONCURRENCY="5", FORWARDED_ALLOW_IPS="*")
    assert status == 0
    assert len(calls) == 1 and calls[0].startswith("gunicorn --bind 0.0.0.0:8000 --workers 5")
    assert "--forwarded-allow-ips *" in calls[0] and calls[0].endswith("wsgi:app")


@pytest.mark.parametrize(("args", "expected"), [
    (("worker",), "flask worker"),
    (("sandbox",), "flask sandbox run --host 0.0.0.0"),
    (("doctor",), "flask doctor"),
    (("cashier", "add", "42", "--manager"), "flask cashier add 42 --manager"),
])
def test_other_roles(stubs, args, expected):
    status, calls, _ = stubs(*args)
    assert (status, calls) == (0, [expected])
