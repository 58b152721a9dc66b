"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas
and agree with what the binary does (probe paths, ports, drain time), and
every metric the Grafana dashboard queries is exported by a real server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
import kubernetes_validate

from wasmhost_testing import ROOT, Server

DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def documents() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str, name: str | None = None) -> dict:
    (doc,) = [
        doc for _, doc in documents()
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"])
    ]
    return doc


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifests_validate(path):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked against the Service below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_deployment_matches_the_binary(wasmhost_bin):
    container = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"] if "=" in arg)
    admin_port = int(args["admin-addr"].rsplit(":", 1)[1])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["admin"] == admin_port and ports["http"] == int(args["addr"].rsplit(":", 1)[1])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    # Every flag the manifest passes exists.
    help_text = subprocess.run([str(wasmhost_bin), "serve", "--help"], capture_output=True, text=True).stdout
    for flag in args:
        assert f"--{flag}" in help_text, flag
    # The pod outlives the drain: preStop pause + drain timeout < grace period.
    drain = int(args["drain-timeout"].removesuffix("s"))
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause + drain < by_kind("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_servicemonitor_scrapes_the_admin_port_which_stays_private():
    public = by_kind("Service", "wasmhost")
    assert {port["targetPort"] for port in public["spec"]["ports"]} == {"http"}, "admin is not public"
    admin = by_kind("Service", "wasmhost-admin")
    monitor = by_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    assert selector <= admin["metadata"]["labels"].items()
    assert not selector <= public["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in admin["spec"]["ports"]}


def test_configmap_is_a_valid_config(wasmhost_bin, tmp_path):
    """The ConfigMap's wasmhost.toml parses; the module it names is the one
    thing missing outside the image."""
    config = tmp_path / "wasmhost.toml"
    config.write_text(by_kind("ConfigMap")["data"]["wasmhost.toml"])
    result = subprocess.run(
        [str(wasmhost_bin), "serve", "--config", str(config), "--addr", "127.0.0.1:0", "--no-admin"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "/srv/apps/hello.wasm" in result.stderr and "invalid config" not in result.stderr, result.stderr


def dashboard_metrics() -> set[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "wasmhost.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b((?:wasmhost|process)_[a-z_]+)", target["expr"]))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def scrape(server: Server) -> set[str]:
    status, _, body = server.admin_request("GET", "/metrics")
    assert status == 200
    return set(re.findall(r"^# TYPE (\S+)", body.decode(), re.MULTILINE))


@pytest.mark.time_limit(600)
def test_every_dashboard_metric_is_exported(make_server, wasmhost_bin, guests, tmp_path):
    wanted = dashboard_metrics()
    assert len(wanted) >= 22
    exported = set()
    # A guest that fails, retires instances, gets a 413 and a reload...
    with make_server("faults", "--max-requests-per-instance", "1", "--max-body-size", "1KiB") as server:
        assert server.request("GET", "/ok")[0] == 200
        assert server.request("GET", "/raise")[0] == 500
        assert server.request("POST", "/ok", body=b"x" * 4096)[0] == 413
        assert server.admin_request("POST", "/admin/reload")[0] == 200
        exported |= scrape(server)
    # ...and an app that calls the host's JSON imports.
    with Server(wasmhost_bin, ROOT / "tests" / "apps" / "platform" / "app.py", start_timeout=600) as server:
        assert server.request("POST", "/json/check", body=b"[]")[0] == 200
        exported |= scrape(server)
    # ...and an app with a key-value bucket and a TCP entry...
    state = ["--data-dir", str(tmp_path / "data"), "--key-value", "default", "--allow-outbound", "tcp://127.0.0.1:9"]
    with Server(wasmhost_bin, ROOT / "tests" / "apps" / "state" / "app.py", state, start_timeout=600) as server:
        assert server.request("PUT", "/kv/default/k", body=b"v")[0] == 204
        assert server.request("GET", "/kv/default/k")[0] == 200
        exported |= scrape(server)
    # ...and a config file (the config-reload panel).
    config = tmp_path / "wasmhost.toml"
    config.write_text(f'[[app]]\nname = "hello"\nmodule = "{guests["hello"]}"\nprefix = "/"\n')
    with Server(wasmhost_bin, "", [], subcommand="serve", config=config) as server:
        assert server.request("GET", "/")[0] == 200
        exported |= scrape(server)
    assert wanted <= exported, f"queried by the dashboard but not exported: {sorted(wanted - exported)}"


STATEFUL = sorted((DEPLOY / "kubernetes" / "embedded-state").glob("*.yaml"))


def test_the_embedded_state_variant_keeps_one_replica_on_its_volume(wasmhost_bin, tmp_path):
    """deploy/kubernetes/embedded-state: valid manifests; one replica (the
    embedded backend is one process's file) whose data directory, as the
    config names it, is the persistent volume's mount."""
    docs = [doc for path in STATEFUL for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    (stateful,) = [doc for doc in docs if doc["kind"] == "StatefulSet"]
    (config_map,) = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert stateful["spec"]["replicas"] == 1
    pod = stateful["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    claims = {claim["metadata"]["name"] for claim in stateful["spec"]["volumeClaimTemplates"]}
    text = config_map["data"]["wasmhost.toml"]
    (data_dir,) = re.findall(r'^data_dir = "([^"]+)"', text, re.MULTILINE)
    assert [name for name, path in mounts.items() if path == data_dir] == ["data"] and "data" in claims
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    help_text = subprocess.run([str(wasmhost_bin), "serve", "--help"], capture_output=True, text=True).stdout
    for arg in container["args"][1:]:
        assert arg.split("=", 1)[0] in help_text, arg
    # The config parses (data_dir pointed at a writable place); only the
    # module is missing outside the image.
    config = tmp_path / "wasmhost.toml"
    config.write_text(text.replace(data_dir, str(tmp_path / "data")))
    result = subprocess.run(
        [str(wasmhost_bin), "serve", "--config", str(config), "--addr", "127.0.0.1:0", "--no-admin"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "/srv/apps/counter.wasm" in result.stderr and "invalid config" not in result.stderr, result.stderr
