"""The fleet path's configuration: the `fleet` compose profile, validated by the real Compose binary,
and the agent / gateway collector configs, checked for structure (no collector binary runs here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "collector-config"
FLEET = ["fleet-agent", "fleet-gateway-1", "fleet-gateway-2"]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    return subprocess.run(
        [str(binary), "-f", str(REPO / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((CONFIGS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _check_pipelines(config: dict[str, Any]) -> None:
    service = config["service"]
    for name, pipeline in service["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            assert pipeline.get(section), f"{name}: no {section}"
            for component in pipeline[section]:
                assert component in (config.get(section) or {}), f"{name}: {component} undefined"
    for extension in service.get("extensions", []):
        assert extension in config["extensions"]
    for section in ("receivers", "processors", "exporters"):
        for component in config.get(section) or {}:
            kind = component.split("/")[0]
            assert kind not in ("otlphttp",), f"{component}: named otlp_http since v0.144"
            if section == "exporters":
                assert kind != "otlp", f"{component}: named otlp_grpc since v0.144"


def test_the_fleet_profile_is_valid_for_the_real_compose_binary() -> None:
    result = _compose("--profile", "fleet", "config", "-q")
    assert result.returncode == 0, result.stderr
    services = _compose("--profile", "fleet", "config", "--services").stdout.split()
    assert sorted(services) == sorted(["jaeger", "otel-collector", *FLEET])
    # Without the profile nothing of the fleet starts (and the other profiles are unchanged).
    assert sorted(_compose("config", "--services").stdout.split()) == ["jaeger", "otel-collector"]


def test_the_fleet_services_mount_their_configs_and_own_output_directories() -> None:
    result = _compose("--profile", "fleet", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    configs = {}
    data_dirs = set()
    for name in FLEET:
        service = services[name]
        assert service["image"].startswith("otel/opentelemetry-collector-contrib:")
        assert service["profiles"] == ["fleet"]
        for volume in service["volumes"]:
            if volume["target"] == "/etc/otelcol/config.yaml":
                configs[name] = Path(volume["source"]).name
                assert (CONFIGS / Path(volume["source"]).name).is_file()
            elif volume["target"] == "/data":
                data_dirs.add(volume["source"])
    assert configs == {
        "fleet-agent": "fleet-agent.yaml",
        "fleet-gateway-1": "fleet-gateway.yaml",
        "fleet-gateway-2": "fleet-gateway.yaml",
    }
    assert len(data_dirs) == 2, "each gateway must write its own directory"
    agent_ports = {int(p["published"]): p["target"] for p in services["fleet-agent"]["ports"]}
    assert set(agent_ports.values()) == {4317, 4318}
    published = {int(p["published"]) for p in services["otel-collector"]["ports"]}
    assert not set(agent_ports) & published, "the fleet agent's host ports clash"
    text = (REPO / "docker-compose.yml").read_text()
    assert text.count("opentelemetry-collector-contrib:${OTELCOL_VERSION:-") >= 3


def test_the_agent_collector_routes_by_trace_id_to_the_gateways() -> None:
    config = _config("fleet-agent.yaml")
    _check_pipelines(config)
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["processors"][0] == "memory_limiter" and "batch" in pipeline["processors"]
    ports = {
        int(proto["endpoint"].rsplit(":", 1)[1])
        for proto in config["receivers"]["otlp"]["protocols"].values()
    }
    assert ports == {4317, 4318}
    balancer = config["exporters"]["loadbalancing"]
    assert pipeline["exporters"] == ["loadbalancing"]
    assert balancer["routing_key"] == "traceID"
    assert "otlp" in balancer["protocol"]  # the inner block keeps the name `otlp`
    hostnames = balancer["resolver"]["static"]["hostnames"]
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    gateway = _config("fleet-gateway.yaml")
    gateway_grpc = gateway["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1]
    assert sorted(h.split(":")[0] for h in hostnames) == ["fleet-gateway-1", "fleet-gateway-2"]
    for hostname in hostnames:
        host, port = hostname.split(":")
        assert host in services and port == gateway_grpc


def test_the_gateway_writes_rotated_otlp_json_files_to_its_volume() -> None:
    config = _config("fleet-gateway.yaml")
    _check_pipelines(config)
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    files = [config["exporters"][name] for name in exporters if name.split("/")[0] == "file"]
    assert len(files) == 1
    file_exporter = files[0]
    assert file_exporter.get("format", "json") == "json"
    assert file_exporter["rotation"]["max_megabytes"] > 0
    assert file_exporter.get("compression") in (None, "zstd")
    assert file_exporter["path"].startswith("/data/")
    assert "# compression: zstd" in (CONFIGS / "fleet-gateway.yaml").read_text()
    assert "batch" in config["service"]["pipelines"]["traces"]["processors"]
