"""docker-compose.yml, Dockerfile and deploy/k8s agree with the code, without Docker:
pinned images, command lines the CLI accepts, environment names the code reads,
one web port, current Kubernetes API versions."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli.main import build_parser
from streams.settings import Settings, env_name, load_settings
from tests.ops.support import (
    COMPOSE,
    DOCKERFILE,
    PROMETHEUS_CONFIGS,
    ROOT,
    WORKER_JOB,
    compose,
    k8s_docs,
)

WEB_PORT = Settings().web_port
#: an explicit version tag: a digit first (optionally after "v"), never "latest"
_VERSION_TAG = re.compile(r"^v?\d+(\.\d+)*([.-][A-Za-z0-9.]+)*$")
#: the only API versions deploy/k8s may use, per kind
_K8S_KINDS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "StatefulSet": "apps/v1",
    "Job": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
}


class _Recorder(dict[str, str]):
    """An environment that records every name looked up in it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)


def _names_read_by_the_code(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every environment name that settings loading (streams/settings.py) and the
    topic catalogue (scoring/catalog.py: CREDENCE_TOPICS_FILE) look up."""
    from scoring.catalog import load_catalog

    env = _Recorder()
    load_settings(env)
    recorder = _Recorder()
    monkeypatch.setattr("os.environ", recorder)
    load_catalog()
    monkeypatch.undo()
    return env.read | recorder.read


@pytest.fixture(scope="module")
def known_env_names() -> set[str]:
    with pytest.MonkeyPatch.context() as mp:
        names = _names_read_by_the_code(mp)
    # sanity: the recorder sees what settings.py is known to read
    assert {env_name(f.name) for f in fields(Settings)} <= names
    assert {"CREDENCE_TOPICS_FILE", "CREDENCE_RULES_FILE"} <= names
    return names


def _assert_pinned(image: str, where: str) -> None:
    name = image.partition("@")[0]
    repo, sep, tag = name.rpartition(":")
    assert sep and "/" not in tag, f"{where}: image {image!r} has no tag"
    assert tag != "latest" and _VERSION_TAG.match(tag), f"{where}: {image!r} is not pinned to a version tag"
    assert repo, where


def _assert_cli_accepts(argv: list[str], where: str) -> Any:
    assert argv and argv[0] == "credence", f"{where}: runs {argv!r}, not the credence CLI"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: `credence` rejects {argv[1:]!r} (exit {exc.code})")


# --- Dockerfile --------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instr, rest in _dockerfile():
        if instr == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _dockerfile_cmd() -> list[str]:
    cmds = [rest for instr, rest in _dockerfile() if instr == "CMD"]
    assert cmds, "Dockerfile has no CMD"
    return list(yaml.safe_load(cmds[-1]))  # exec form is a JSON array


def test_dockerfile_base_image_pinned_and_user_not_root() -> None:
    instructions = _dockerfile()
    bases = [rest.split()[0] for instr, rest in instructions if instr == "FROM"]
    assert bases
    for base in bases:
        _assert_pinned(base, "Dockerfile FROM")
    assert bases[-1].startswith("python:3.11"), bases
    users = [rest for instr, rest in instructions if instr == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    assert any(instr == "RUN" and re.search(r"\bpip install (\S+ )*\.(\s|$)", rest) for instr, rest in instructions)


def test_dockerfile_runs_a_scrapable_worker(known_env_names: set[str]) -> None:
    cmd = _dockerfile_cmd()
    args = _assert_cli_accepts(cmd, "Dockerfile CMD")
    assert args.command == "worker"
    env = _dockerfile_env()
    unknown = set(env) - known_env_names - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
                                            "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
    assert not unknown, f"Dockerfile ENV names the code does not read: {sorted(unknown)}"
    settings = load_settings({k: v for k, v in env.items() if k in known_env_names})
    assert settings.web_host == "0.0.0.0", "the worker must listen beyond loopback to be scraped"
    exposed = {int(p.split("/")[0]) for instr, rest in _dockerfile() if instr == "EXPOSE" for p in rest.split()}
    assert exposed == {settings.web_port} and settings.web_port == WEB_PORT
    # `pip install .` leaves topics.yaml and rules.yaml behind: the image must point at them
    for name, variable in [("topics.yaml", "CREDENCE_TOPICS_FILE"), ("rules.yaml", "CREDENCE_RULES_FILE")]:
        copied = [rest for instr, rest in _dockerfile() if instr == "COPY" and name in rest]
        assert copied and env.get(variable, "").endswith(f"/{name}"), name


def test_dockerignore_keeps_what_the_image_installs() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines, "allow-list style: ignore everything, re-include what is copied"
    for instr, rest in _dockerfile():
        if instr == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert f"!{src.rstrip('/')}" in {ln.rstrip("/") for ln in lines}, f".dockerignore drops {src}"


# --- docker-compose.yml -------------------------------------------------------------


def _services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def _credence_services() -> dict[str, dict[str, Any]]:
    """Services that run the Credence image (built from the Dockerfile)."""
    return {name: svc for name, svc in _services().items() if "build" in svc}


def _service_command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command")
    if cmd is None:
        return _dockerfile_cmd()
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default}, with nothing set on the host."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def _service_env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: _interpolate(str(v)) for k, v in env.items()}


def _effective_settings(env: dict[str, str], known: set[str]) -> Settings:
    """Settings inside a Credence container: the Dockerfile's ENV, then the service's."""
    merged = {**_dockerfile_env(), **env}
    return load_settings({k: v for k, v in merged.items() if k in known})


def _compose_workers() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _credence_services().items() if _service_command(s)[1:2] == ["worker"]}


def test_compose_images_pinned() -> None:
    for name, svc in _services().items():
        assert "image" in svc, f"service {name}: name its image (with a version tag), even when built"
        _assert_pinned(svc["image"], f"docker-compose service {name}")
    images = {svc["image"].split(":")[0] for svc in _services().values()}
    assert {"apache/kafka", "prom/prometheus", "grafana/grafana"} <= images
    assert _services()["kafka"]["image"] == "apache/kafka:4.1.2"


def test_compose_credence_commands_parse() -> None:
    seen = set()
    for name, svc in _credence_services().items():
        args = _assert_cli_accepts(_service_command(svc), f"docker-compose service {name}")
        seen.add((args.command, getattr(args, "action", None)))
    assert ("topics", "apply") in seen and ("worker", None) in seen
    assert len(_compose_workers()) == 2


def test_compose_env_names_are_read_by_the_code(known_env_names: set[str]) -> None:
    for name, svc in _credence_services().items():
        unknown = set(_service_env(svc)) - known_env_names
        assert not unknown, f"service {name} sets variables Credence never reads: {sorted(unknown)}"
        settings = _effective_settings(_service_env(svc), known_env_names)
        assert settings.bootstrap_servers.split(",")[0].split(":")[0] in _services(), name


def test_compose_order_kafka_then_topics_then_workers() -> None:
    topics = next(n for n, s in _credence_services().items() if _service_command(s)[1:] == ["topics", "apply"])
    assert _services()[topics]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in _services()["kafka"]
    for name, svc in _compose_workers().items():
        assert svc["depends_on"][topics]["condition"] == "service_completed_successfully", name


def test_compose_kafka_is_single_node_kraft() -> None:
    env = _service_env(_services()["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    assert "zookeeper" not in COMPOSE.read_text().lower()


def test_compose_workers_ports_and_data_volumes(known_env_names: set[str]) -> None:
    volumes_seen: list[str] = []
    for name, svc in _compose_workers().items():
        settings = _effective_settings(_service_env(svc), known_env_names)
        assert settings.web_port == WEB_PORT, name
        # bound where Prometheus reaches it, and the canonical URL the peers forward to
        assert settings.web_host == name == svc.get("hostname"), f"{name}: CREDENCE_WEB_HOST"
        container_ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])}
        assert container_ports <= {settings.web_port}, f"{name}: {svc.get('ports')}"
        mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
        data_dir = settings.data_dir.rstrip("/")
        assert data_dir in mounts, f"{name}: {data_dir} (CREDENCE_DATA_DIR) is not on a volume"
        assert mounts[data_dir] in compose()["volumes"], f"{name}: data must be a named volume"
        volumes_seen.append(mounts[data_dir])
    assert len(set(volumes_seen)) == len(volumes_seen), f"workers share a data volume: {volumes_seen}"


def test_compose_prometheus_scrapes_every_worker() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIGS[0].read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs[WORKER_JOB]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{WEB_PORT}" for name in _compose_workers()}
    mounts = dict(reversed(m.split(":")[:2]) for m in _services()["prometheus"]["volumes"])
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    for rule_file in config["rule_files"]:
        assert mounts[f"/etc/prometheus/{rule_file}"] == f"./deploy/prometheus/{rule_file}"
    assert "--config.file=/etc/prometheus/prometheus.yml" in _services()["prometheus"]["command"]


def test_compose_grafana_provisioning_matches_mounts() -> None:
    svc = _services()["grafana"]
    mounts = dict(reversed(m.split(":")[:2]) for m in svc["volumes"] if m.startswith("./"))
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/credence.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[path] / "credence.json").is_file(), f"dashboard provider reads {path}"
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    url = datasource["datasources"][0]["url"]
    host, port = url.removeprefix("http://").split(":")
    assert host in _services() and int(port) == 9090


# --- deploy/k8s ---------------------------------------------------------------------


def _k8s(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_docs() if doc["kind"] == kind]


def _one(kind: str) -> dict[str, Any]:
    docs = _k8s(kind)
    assert len(docs) == 1, f"expected one {kind}, found {len(docs)}"
    return docs[0]


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in k8s_docs():
        template = doc.get("spec", {}).get("template")
        if template:
            yield f"{doc['kind']}/{doc['metadata']['name']}", template["spec"]


def _containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for where, spec in _pod_specs():
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield f"{where} container {c['name']}", c


#: what the downward API fields a container may read stand for in these checks
_FIELD_REFS = {"status.podIP": "10.1.2.3", "metadata.name": "credence-worker-0"}


def _configmap_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: its ConfigMaps, then `env` (downward API fields
    replaced by sample values)."""
    maps = {cm["metadata"]["name"]: cm["data"] for cm in _k8s("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
    for e in container.get("env", []):
        if "valueFrom" in e:
            env[e["name"]] = _FIELD_REFS[e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[e["name"]] = str(e.get("value", ""))
    return env


def test_k8s_api_versions_are_current() -> None:
    docs = k8s_docs()
    assert docs
    for path, doc in docs:
        kind = doc["kind"]
        assert kind in _K8S_KINDS, f"{path.name}: unexpected kind {kind}"
        assert doc["apiVersion"] == _K8S_KINDS[kind], f"{path.name}: {kind} must be {_K8S_KINDS[kind]}"
    kinds = {doc["kind"] for _, doc in docs}
    assert {"StatefulSet", "Service", "ConfigMap", "Job", "PodDisruptionBudget"} <= kinds


def test_k8s_everything_in_one_namespace() -> None:
    namespace = _one("Namespace")["metadata"]["name"]
    for path, doc in k8s_docs():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{path.name}: {doc['kind']}"
    # kubectl apply -f deploy/k8s/ applies files in name order: the Namespace first
    first = sorted(Path(p).name for p, d in k8s_docs())[0]
    assert any(d["kind"] == "Namespace" for p, d in k8s_docs() if p.name == first)


def test_k8s_images_pinned_and_commands_parse(known_env_names: set[str]) -> None:
    commands = set()
    for where, c in _containers():
        _assert_pinned(c["image"], where)
        argv = list(c.get("command", [])) + list(c.get("args", [])) or _dockerfile_cmd()
        args = _assert_cli_accepts(argv, where)
        commands.add((args.command, getattr(args, "action", None)))
        unknown = set(_configmap_env(c)) - known_env_names
        assert not unknown, f"{where}: variables Credence never reads: {sorted(unknown)}"
        assert _effective_settings(_configmap_env(c), known_env_names).bootstrap_servers, where
    assert commands == {("worker", None), ("topics", "apply")}
    for cm in _k8s("ConfigMap"):
        unknown = set(cm["data"]) - known_env_names
        assert not unknown, f"ConfigMap {cm['metadata']['name']}: {sorted(unknown)}"


def test_k8s_containers_have_resources_and_run_as_non_root() -> None:
    for where, c in _containers():
        resources = c.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where
    for where, spec in _pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, where


def test_k8s_worker_statefulset(known_env_names: set[str]) -> None:
    sts = _one("StatefulSet")
    spec = sts["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()

    service = next(s for s in _k8s("Service") if s["metadata"]["name"] == spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None", "the StatefulSet's service must be headless"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    (container,) = spec["template"]["spec"]["containers"]
    settings = _effective_settings(_configmap_env(container), known_env_names)
    # bound to the pod IP (probes, Prometheus) and advertised to the peers as such
    assert settings.web_host == _FIELD_REFS["status.podIP"] and settings.web_port == WEB_PORT
    assert settings.bootstrap_servers

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"web": WEB_PORT}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["web"]
    assert [p["port"] for p in service["spec"]["ports"]] == [WEB_PORT]
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] in ("web", WEB_PORT) and get["path"] == "/metrics", probe

    claims = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container["volumeMounts"]}
    assert mounts.get(settings.data_dir.rstrip("/")) in claims, "CREDENCE_DATA_DIR must be on the claim"

    annotations = spec["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/port") == str(WEB_PORT)


def test_k8s_prometheus_config_finds_the_workers() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIGS[1].read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == WORKER_JOB)
    service = _one("StatefulSet")["spec"]["serviceName"]
    namespace = _one("Namespace")["metadata"]["name"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == [f"{service}.{namespace}.svc.cluster.local"] and sd["port"] == WEB_PORT
