"""Day one for a partner and a provider (issue G), against real counterparts:

* the partner opens the activation link in a real browser (Debian's chromium driven by
  playwright-core), sees the landing page, downloads the profile with its button, reads the
  shared table with the stock connector, and finds the link used afterwards; mail previews,
  link scanners (GET with a browser's or any Accept header) and HEAD requests before that do not
  burn the link;
* behind a TLS-terminating reverse proxy started by the test (nginx from Debian), profiles,
  activation links and file URLs name the public https address (`publicUrl`, or the forwarded
  scheme and host from a trusted proxy), and reads work through the proxy.

Screenshots of the landing page go to `$LAKESHARE_ARTIFACTS` (default
`target/conformance-artifacts`).
"""
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import delta_sharing
import pytest
import requests

import admin as A
import frames
import server as srv
from api import Api, file_lines, ndjson
from conftest import REPO_ROOT

HERE = Path(__file__).resolve().parent
TABLE = "gen-partitioned"
UC = "/api/2.1/unity-catalog"
ARTIFACTS = Path(os.environ.get("LAKESHARE_ARTIFACTS", REPO_ROOT / "target" / "conformance-artifacts"))


def shares(path):
    return [{"name": "sales", "schemas": [{"name": "eu", "tables": [{"name": "orders", "location": path}]}]}]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool, hint):
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    assert path, f"{tool} is required for this test ({hint}); scripts/test.sh installs it. This test never skips."
    return path


def create_link(adm, name, share="sales"):
    r = adm.raw("POST", f"{UC}/recipients", body={"name": name})
    assert r.status_code == 200, r.text
    links = [t["activation_url"] for t in r.json()["tokens"] if t.get("activation_url")]
    g = adm.raw("PATCH", f"{UC}/shares/{share}/permissions",
                body={"changes": [{"principal": name, "add": ["SELECT"]}]})
    assert g.status_code == 200, g.text
    assert len(links) == 1, r.text
    return links[0]


def still_redeemable(link):
    info = link.replace("/data_sharing_activation/", "/data_sharing_activation_info/")
    return requests.get(info, timeout=30).status_code == 200


# ------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def adm(lakeshare_bin, tables, tmp_path_factory):
    a = A.AdminServer(lakeshare_bin, tmp_path_factory.mktemp("day-one"), shares(tables[TABLE]["path"]))
    yield a
    a.stop()


def test_previews_scanners_and_head_do_not_burn_the_link(adm):
    link = create_link(adm, "scanned")
    browserish = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                  "User-Agent": "Mozilla/5.0 (compatible; LinkPreview/1.0)"}
    for _ in range(2):
        r = requests.get(link, headers=browserish, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
        assert "Download the profile file" in r.text and "scanned" in r.text
        assert "bearerToken" not in r.text
    anything = requests.get(link, headers={"Accept": "*/*", "User-Agent": "Slackbot-LinkExpanding 1.0"}, timeout=30)
    assert anything.status_code == 200 and "bearerToken" not in anything.text
    assert requests.head(link, timeout=30).status_code == 200
    assert still_redeemable(link), "nothing above may redeem the link"
    # The SDK's call redeems it, once.
    r = requests.get(link, headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 200 and r.json()["bearerToken"]
    assert requests.head(link, timeout=30).status_code == 404
    used = requests.get(link, headers=browserish, timeout=30)
    assert used.status_code == 404 and used.headers["content-type"].startswith("text/html"), used.text[:200]
    assert "already used" in used.text


def test_a_partner_activates_in_a_real_browser_and_reads(adm, oracle, tmp_path):
    node = need("node", "Node.js runs the playwright-core driver")
    need("/usr/bin/chromium", "Debian's chromium")
    driver = HERE / "browser" / "activation.mjs"
    assert (HERE / "node_modules" / "playwright-core").is_dir(), "npm ci --prefix conformance-tests installs playwright-core"
    link = create_link(adm, "acme")
    out = tmp_path / "downloads"
    out.mkdir()
    p = subprocess.run([node, str(driver), link, str(out)], capture_output=True, text=True, timeout=180,
                       cwd=str(HERE))
    assert p.returncode == 0, f"browser run failed:\nstdout:{p.stdout}\nstderr:{p.stderr}"
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200 and "acme" in seen["heading"], seen
    assert "sales" in seen["text"] and "pandas" in seen["text"] and "Spark" in seen["text"], seen["text"]
    assert "default-src 'none'" in seen["csp"]
    assert seen["filename"] == "acme.share"
    assert seen["againStatus"] == 404 and "already used" in seen["againHeading"], seen
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in ("activation-landing.png", "activation-used.png"):
        shutil.copy(out / shot, ARTIFACTS / shot)
    profile = json.loads(Path(seen["profile"]).read_text())
    assert profile["endpoint"] == adm.endpoint and profile["bearerToken"]
    df = delta_sharing.load_as_pandas(f"{seen['profile']}#sales.eu.orders", use_delta_format=False)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(TABLE), "read after browser activation")


# ------------------------------------------------------------------------ behind a TLS proxy


def make_cert(d):
    """A private CA and a server certificate for 127.0.0.1 signed by it (rustls, in the delta-format
    reader, refuses a CA certificate used as the server's own). Returns (ca.crt, server.crt,
    server.key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lakeshare test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_crt, crt, pem = d / "ca.crt", d / "proxy.crt", d / "proxy.key"
    ca_crt.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    crt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return ca_crt, crt, pem


class Nginx:
    """nginx terminating TLS on 127.0.0.1:PORT and forwarding to `upstream`."""

    def __init__(self, d, upstream_port, port=None, forward_headers=True):
        self.bin = need("nginx", "Debian's nginx-light")
        self.port = port or free_port()
        self.ca, crt, key = make_cert(d)
        d = Path(d)
        for sub in ("logs", "tmp"):
            (d / sub).mkdir(exist_ok=True)
        fwd = ("proxy_set_header X-Forwarded-Proto $scheme;\n"
               "      proxy_set_header X-Forwarded-Host $host:$server_port;\n"
               "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") if forward_headers else ""
        conf = d / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://127.0.0.1:{upstream_port};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_set_header Host $host:$server_port;
      {fwd}
    }}
  }}
}}
""")
        args = [self.bin, "-p", str(d), "-c", str(conf)]
        if os.geteuid() == 0:
            args += ["-g", "user root;"]
        self.log = open(d / "nginx.stderr", "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, f"nginx exited: {(d / 'nginx.stderr').read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        self.url = f"https://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.mark.parametrize("mode", ["publicUrl", "forwarded"])
def test_behind_a_tls_proxy_everything_names_the_public_address(lakeshare_bin, tables, oracle, tmp_path,
                                                                monkeypatch, mode):
    # The server listens on a port nginx forwards to; its config knows the public address only in
    # the publicUrl mode (the other relies on trusted forwarded headers).
    upstream = free_port()
    proxy_dir = tmp_path / "nginx"
    proxy_dir.mkdir()
    proxy_port = free_port()
    extra = {"trustedProxies": ["127.0.0.1/32"], "port": upstream}
    if mode == "publicUrl":
        extra["publicUrl"] = f"https://127.0.0.1:{proxy_port}"
    d = tmp_path / "server"
    d.mkdir()
    adm = A.AdminServer(lakeshare_bin, d, shares(tables[TABLE]["path"]), extra=extra)
    nginx = None
    try:
        nginx = Nginx(proxy_dir, upstream, port=proxy_port)
        public = nginx.url
        # An activation link made through the admin API names the public https address...
        r = adm.raw("POST", f"{UC}/recipients", body={"name": "partner"})
        assert r.status_code == 200, r.text
        adm.raw("PATCH", f"{UC}/shares/sales/permissions", body={"changes": [{"principal": "partner", "add": ["SELECT"]}]})
        link = r.json()["tokens"][0]["activation_url"]
        if mode == "publicUrl":
            assert link.startswith(public + UC + "/public/data_sharing_activation/"), link
        else:
            # the admin listener has no forwarded headers: the link names the listener; the
            # partner opens it through the proxy, which is what this mode checks below
            link = public + urlsplit(link).path
        # ...redeemed through the proxy, it gives a profile naming the public endpoint.
        prof = requests.get(link, headers={"Accept": "application/json"}, timeout=30, verify=str(nginx.ca)).json()
        assert prof["endpoint"] == public + "/delta-sharing", prof
        path = tmp_path / "partner.share"
        path.write_text(json.dumps(prof))
        # File URLs are https on the public address too.
        api = Api(prof["endpoint"], prof["bearerToken"])
        api.session.verify = str(nginx.ca)
        api.session.trust_env = False  # this machine sets REQUESTS_CA_BUNDLE globally
        urls = [f["url"] for f in file_lines(ndjson(api.query("sales", "eu", "orders", {})))]
        assert urls and all(u.startswith(public + "/delta-sharing/files/") for u in urls), urls[:2]
        got = api.session.get(urls[0], timeout=30)
        assert got.status_code == 200 and got.content[:4] == b"PAR1"
        # The stock connector reads through the proxy in both formats, in a fresh process whose
        # environment names the private CA from the start (as the partner's guide says: its
        # HTTP stacks read REQUESTS_CA_BUNDLE and SSL_CERT_FILE when they load).
        for fmt in (False, True):
            out = tmp_path / f"read-{fmt}.parquet"
            code = ("import sys, delta_sharing; "
                    "df = delta_sharing.load_as_pandas(sys.argv[1], use_delta_format=sys.argv[2] == 'True'); "
                    "df.to_parquet(sys.argv[3])")
            env = dict(os.environ, REQUESTS_CA_BUNDLE=str(nginx.ca), SSL_CERT_FILE=str(nginx.ca))
            p = subprocess.run([sys.executable, "-c", code, f"{path}#sales.eu.orders", str(fmt), str(out)],
                               capture_output=True, text=True, timeout=300, env=env)
            assert p.returncode == 0, f"read through nginx (delta={fmt}) failed:\n{p.stderr[-3000:]}"
            import pandas as pd
            frames.assert_same_table(frames.Snapshot.from_pandas(pd.read_parquet(out)), oracle.snapshot(TABLE),
                                     f"through nginx ({mode}, delta={fmt})")
    finally:
        if nginx is not None:
            nginx.stop()
        adm.stop()
