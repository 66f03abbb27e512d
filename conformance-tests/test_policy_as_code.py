"""Policy as code: `lakeshare plan` / `lakeshare apply` of a policy file, share ownership, the
catalog CLI (`table`, `share`, `recipient preview`, `admin-log`) on the local store and through a
running server's admin API (`--admin-url`/`--admin-token`).

A policy file is the reference server YAML (`version: 1`, `shares:`) plus an optional `recipients:`
section (name, comment, properties, ipAccessList, shares with an optional `expiresAt`). It holds no
secrets. An absent section is not managed; a present one (even an empty list) is the whole truth for
its kind. Every test uses its own state DB (or a module server with its own DB); data reads go
through the stock Python connector and are compared with a direct deltalake read of gov-sales
(`gov_sales` fixture, partitioned by country/year).
"""
import json
import os
import re

import delta_sharing
import pytest

import deltalog
import frames
import server as srv
from api import Api
from policy_support import (CLI_USER, PolicyServer, by_property, file_uri_dir, local, plan_lines, recipient,
                            recipients, run, share, snapshot, summary_line, table, write_policy)

EXPIRY_IN = "2027-06-30T00:00:00Z"
EXPIRY_OUT = "2027-06-30T00:00:00+00:00"


# ---------------------------------------------------------------------------------- policies


def _q(s):
    return json.dumps(str(s))


def gold_silver_text(gov, policy_dir):
    """The documentation's example, flow style included; gold's locations are relative to the file."""
    rel = os.path.relpath(gov, policy_dir)
    return f"""version: 1
shares:
- name: gold
  comment: gold share
  schemas:
  - name: mobility
    tables:
    - name: trips
      location: {_q(rel)}
      historyShared: false
    - name: by_country
      location: {_q(rel)}
      partitions: [{{values: [{{name: country, op: EQUAL, recipientPropertyKey: country}}]}}]
- name: silver
  schemas:
  - name: s
    tables:
    - name: t
      location: {_q(gov)}
      historyShared: true
      startVersion: 2
recipients:
- name: acme
  comment: acme corp
  properties: {{country: FR}}
  ipAccessList: [10.0.0.0/8]
  shares: [gold, {{name: silver, expiresAt: "{EXPIRY_IN}"}}]
- name: globex
  properties: {{country: DE}}
  shares: [gold]
"""


def gold_silver(gov, policy_dir):
    """The same policy as gold_silver_text, as (shares, recipients) structures (block style)."""
    rel = os.path.relpath(gov, policy_dir)
    shares = [
        share("gold", {"mobility": [table("trips", rel, historyShared=False),
                                    table("by_country", rel, partitions=by_property("country", "country"))]},
              comment="gold share"),
        share("silver", {"s": [table("t", gov, historyShared=True, startVersion=2)]}),
    ]
    recips = [
        recipient("acme", ["gold", {"name": "silver", "expiresAt": EXPIRY_IN}], comment="acme corp",
                  properties={"country": "FR"}, ip=["10.0.0.0/8"]),
        recipient("globex", ["gold"], properties={"country": "DE"}),
    ]
    return shares, recips


def gold_silver_plan(uri):
    return [
        "+ share gold",
        "+ schema gold.mobility",
        f"+ table gold.mobility.trips (location: {uri})",
        f"+ table gold.mobility.by_country (location: {uri})",
        "+ share silver",
        "+ schema silver.s",
        f"+ table silver.s.t (location: {uri})",
        "+ recipient acme",
        "+ grant acme -> gold",
        f"+ grant acme -> silver (expires: {EXPIRY_OUT})",
        "+ recipient globex",
        "+ grant globex -> gold",
    ]


@pytest.fixture
def gov(gov_sales):
    return gov_sales["path"]


@pytest.fixture
def uri(gov):
    return file_uri_dir(gov)


@pytest.fixture
def ws(tmp_path, lakeshare_bin):
    """A workspace: policy dir, an unrelated cwd for the CLI, a fresh local state DB."""
    class W:
        pass
    w = W()
    w.dir = tmp_path / "policies"
    w.dir.mkdir()
    w.elsewhere = tmp_path / "elsewhere"
    w.elsewhere.mkdir()
    w.state = str(tmp_path / "state.db")
    w.cat = local(lakeshare_bin, w.state, cwd=str(w.elsewhere))
    return w


def _applied_gold_silver(ws, gov):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    ws.cat.apply(pol)
    return pol


def _order_ok(lines):
    """Every object is created after the one it lives in (share < schema < table, recipient < grant)."""
    pos = {ln: i for i, ln in enumerate(lines)}
    for ln, i in pos.items():
        m = re.match(r"\+ (schema|table|grant) (\S+)", ln)
        if not m:
            continue
        kind, name = m.groups()
        parent = {"schema": f"+ share {name.split('.')[0]}",
                  "table": f"+ schema {'.'.join(name.split('.')[:2])}",
                  "grant": f"+ recipient {name}"}[kind]
        if parent in pos and pos[parent] > i:
            return False
    return True


# ---------------------------------------------------------------------------------- plan


def test_plan_lists_every_creation(ws, gov, uri):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    p = ws.cat.plan(pol)
    lines = plan_lines(p.stdout)
    want = gold_silver_plan(uri)
    assert sorted(lines) == sorted(want), f"plan lines:\n{p.stdout}"
    assert _order_ok(lines), f"objects must be created after their containers:\n{p.stdout}"
    assert summary_line(p.stdout) == "12 to create, 0 to update, 0 to delete."
    assert p.returncode == 0, "plan without --exit-code exits 0"


def test_plan_json_matches_text(ws, gov):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    text = plan_lines(ws.cat.plan(pol).stdout)
    data = ws.cat.plan_json(pol)
    assert data["applied"] is False
    assert isinstance(data.get("warnings", []), list) and not data.get("warnings"), data.get("warnings")
    ch = data["changes"]
    for c in ch:
        assert set(c) == {"action", "object_type", "name", "details", "destructive", "summary"}, c
        assert c["action"] == "create" and c["destructive"] is False, c
    assert [c["summary"] for c in ch] == text, "JSON summaries are the text lines, in the same order"
    kinds = sorted(c["object_type"] for c in ch)
    assert kinds == sorted(["share"] * 2 + ["schema"] * 2 + ["table"] * 3 + ["recipient"] * 2 + ["grant"] * 3)
    grants = {c["name"]: c["details"] for c in ch if c["object_type"] == "grant"}
    assert grants == {"acme -> gold": [], "acme -> silver": [f"expires: {EXPIRY_OUT}"], "globex -> gold": []}


def test_plan_is_read_only(ws, gov, lakeshare_bin):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    assert ws.cat.shares() == []  # opens (initialises) the store
    log = ws.cat.admin_log()
    ws.cat.plan(pol)
    ws.cat.plan_json(pol)
    ws.cat.plan(pol, "--exit-code", check=False)
    assert ws.cat.shares() == [], "plan must not create shares"
    assert recipients(lakeshare_bin, ws.state) == {}, "plan must not create recipients"
    assert ws.cat.admin_log() == log, "plan must not write the admin log"


def test_plan_exit_code(ws, gov):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    p = ws.cat.plan(pol, "--exit-code", check=False)
    assert p.returncode == 2, f"--exit-code with changes must exit 2, got {p.returncode}\n{p.stderr}"
    assert len(plan_lines(p.stdout)) == 12, "--exit-code still prints the plan"
    ws.cat.apply(pol)
    p = ws.cat.plan(pol, "--exit-code", check=False)
    assert p.returncode == 0, f"--exit-code without changes must exit 0, got {p.returncode}\n{p.stdout}{p.stderr}"
    assert p.stdout.strip() == f"No changes: the catalog matches {pol}."


# ---------------------------------------------------------------------------------- apply


def test_apply_creates_the_catalog(ws, gov, lakeshare_bin):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    p = ws.cat.apply(pol)
    for name in ("acme", "globex"):
        assert f"lakeshare recipient link {name}" in p.stdout + p.stderr, (
            f"apply must hint how to send {name} a link:\n{p.stdout}\n{p.stderr}")
    assert ws.cat.owners() == {"gold": "apply", "silver": "apply"}
    assert {s["name"]: s.get("comment") for s in ws.cat.shares()}["gold"] == "gold share"

    gold = {o["shared_as"]: o for o in ws.cat.share_show("gold")["objects"]}
    assert set(gold) == {"mobility.trips", "mobility.by_country"}
    assert gold["mobility.trips"]["history_data_sharing_status"] == "DISABLED"
    assert not gold["mobility.trips"].get("partitions")
    assert gold["mobility.by_country"]["partitions"] == [
        {"values": [{"name": "country", "op": "EQUAL", "recipient_property_key": "country"}]}]
    silver = ws.cat.share_show("silver")["objects"]
    assert len(silver) == 1 and silver[0]["shared_as"] == "s.t"
    assert silver[0]["history_data_sharing_status"] == "ENABLED" and silver[0]["start_version"] == 2

    rs = recipients(lakeshare_bin, ws.state)
    assert set(rs) == {"acme", "globex"}
    acme = rs["acme"]
    assert acme["properties"] == {"country": "FR"} and acme["ipAccessList"] == ["10.0.0.0/8"]
    assert {g["share"]: g["expiresAt"] for g in acme["grants"]} == {"gold": None, "silver": EXPIRY_OUT}
    assert rs["globex"]["properties"] == {"country": "DE"}
    assert [g["share"] for g in rs["globex"]["grants"]] == ["gold"]
    for r in rs.values():
        assert r["tokens"] == [], f"a recipient created by apply has no token: {r}"
        assert r["state"] == "active"


def test_apply_twice_is_a_no_op(ws, gov):
    pol = _applied_gold_silver(ws, gov)
    log = ws.cat.admin_log()
    assert log, "apply writes the admin log"
    p = ws.cat.plan(pol)
    assert p.stdout.strip() == f"No changes: the catalog matches {pol}."
    again = ws.cat.apply(pol)
    assert "No changes" in again.stdout, again.stdout
    assert ws.cat.admin_log() == log, "a second apply of the same file changes nothing"
    # the block-style rendering of the same policy is the same catalog
    shares, recips = gold_silver(gov, ws.dir)
    block = write_policy(ws.dir / "block.yaml", shares, recips)
    assert ws.cat.plan(block).stdout.strip() == f"No changes: the catalog matches {block}."


def test_apply_json(ws, gov):
    pol = write_policy(ws.dir / "policy.yaml", text=gold_silver_text(gov, ws.dir))
    planned = ws.cat.plan_json(pol)["changes"]
    data = json.loads(ws.cat.apply(pol, "--json").stdout)
    assert data["applied"] is True
    assert data["changes"] == planned, "apply --json reports the changes that plan announced"
    data = json.loads(ws.cat.apply(pol, "--json").stdout)
    assert data["changes"] == [], data


def test_relative_locations_resolve_against_the_file(ws, gov, uri):
    """The CLI runs in an unrelated directory; the file lives two levels away from the table."""
    d = ws.dir / "a" / "b"
    rel = os.path.relpath(gov, d)
    assert rel.startswith(".."), rel
    pol = write_policy(d / "p.yaml", [share("rel", {"s": [table("t", rel)]})],
                       [recipient("reader", ["rel"])])
    p = ws.cat.plan(pol, cwd=str(ws.elsewhere))
    assert f"+ table rel.s.t (location: {uri})" in plan_lines(p.stdout), p.stdout
    ws.cat.apply(pol, cwd=str(ws.elsewhere))
    n = len(deltalog.replay(gov).adds)
    prev = ws.cat.preview("reader")
    assert [(t["share"], t["schema"], t["name"]) for t in prev["tables"]] == [("rel", "s", "t")]
    assert prev["tables"][0]["total_files"] == n and len(prev["tables"][0]["files"]) == n, (
        "the table must be readable at the location resolved against the file's directory")


def test_updates_are_listed_and_applied(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    shares, recips = gold_silver(gov, ws.dir)
    shares[0]["schemas"][0]["tables"][0]["historyShared"] = True
    recips[0]["properties"] = {"country": "DE"}
    pol = write_policy(ws.dir / "upd.yaml", shares, recips)
    p = ws.cat.plan(pol)
    assert plan_lines(p.stdout) == [
        "~ table gold.mobility.trips (historyShared: false -> true)",
        "~ recipient acme (properties: {country=FR} -> {country=DE})",
    ], p.stdout
    assert summary_line(p.stdout) == "0 to create, 2 to update, 0 to delete."
    upd = [c for c in ws.cat.plan_json(pol)["changes"]]
    assert [(c["action"], c["object_type"], c["name"], c["destructive"]) for c in upd] == [
        ("update", "table", "gold.mobility.trips", False), ("update", "recipient", "acme", False)]
    ws.cat.apply(pol)  # updates are not destructive: no --allow-delete needed
    trips = [o for o in ws.cat.share_show("gold")["objects"] if o["shared_as"] == "mobility.trips"][0]
    assert trips["history_data_sharing_status"] == "ENABLED"
    assert recipients(lakeshare_bin, ws.state)["acme"]["properties"] == {"country": "DE"}
    assert ws.cat.plan(pol).stdout.strip().startswith("No changes")


def test_destructive_changes_need_allow_delete(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    shares, recips = gold_silver(gov, ws.dir)
    shares[0]["schemas"][0]["tables"][0]["historyShared"] = True     # an update, not destructive
    del shares[0]["schemas"][0]["tables"][1]                           # - table gold.mobility.by_country
    del shares[1]                                                      # - share silver
    recips[0]["shares"] = ["gold"]                                     # - grant acme -> silver
    del recips[1]                                                      # - recipient globex
    pol = write_policy(ws.dir / "shrink.yaml", shares, recips)
    p = ws.cat.plan(pol)
    lines = plan_lines(p.stdout)
    assert sorted(lines) == sorted([
        "~ table gold.mobility.trips (historyShared: false -> true)",
        "- grant acme -> silver",
        "- recipient globex (revokes all its tokens)",
        "- table gold.mobility.by_country",
        "- share silver (with 1 table(s))",
    ]), p.stdout
    assert summary_line(p.stdout) == (
        "0 to create, 1 to update, 4 to delete (4 destructive: apply needs --allow-delete).")
    destructive = {c["summary"] for c in ws.cat.plan_json(pol)["changes"] if c["destructive"]}
    assert destructive == {ln for ln in lines if ln.startswith("-")}

    before = snapshot(lakeshare_bin, ws.state)
    r = ws.cat.apply(pol, check=False)
    assert r.returncode != 0, "apply with destructive changes and no --allow-delete must fail"
    assert "--allow-delete" in r.stderr + r.stdout, r.stderr
    assert snapshot(lakeshare_bin, ws.state) == before, "a refused apply changes nothing (not even the update)"

    ws.cat.apply(pol, "--allow-delete")
    assert ws.cat.owners() == {"gold": "apply"}
    assert [o["shared_as"] for o in ws.cat.share_show("gold")["objects"]] == ["mobility.trips"]
    rs = recipients(lakeshare_bin, ws.state)
    assert rs["globex"]["state"] == "revoked", "a recipient dropped from the file is revoked"
    assert [g["share"] for g in rs["acme"]["grants"]] == ["gold"]
    assert ws.cat.plan(pol).stdout.strip().startswith("No changes")


def test_revoked_name_is_refused_and_nothing_changes(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    shares, recips = gold_silver(gov, ws.dir)
    ws.cat.apply(write_policy(ws.dir / "no-globex.yaml", shares, recips[:1]), "--allow-delete")
    assert recipients(lakeshare_bin, ws.state)["globex"]["state"] == "revoked"
    # the file now declares globex again (plus other, valid changes)
    shares[0]["comment"] = "changed"
    recips.append(recipient("newco", ["gold"]))
    bad = write_policy(ws.dir / "again.yaml", shares, recips)
    before = snapshot(lakeshare_bin, ws.state)
    for cmd, extra in (("plan", []), ("apply", []), ("apply", ["--allow-delete"])):
        r = ws.cat.cli(cmd, bad, *extra, check=False)
        assert r.returncode != 0, f"{cmd} of a file naming a revoked recipient must fail:\n{r.stdout}"
        assert "revoked" in r.stderr and "globex" in r.stderr, r.stderr
    assert snapshot(lakeshare_bin, ws.state) == before, "a failed apply leaves the catalog unchanged"


def test_grant_of_undeclared_share_is_refused(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    shares, recips = gold_silver(gov, ws.dir)
    recips[1]["shares"] = ["gold", "platinum"]
    recips.append(recipient("newco", ["gold"]))
    bad = write_policy(ws.dir / "bad.yaml", shares, recips)
    before = snapshot(lakeshare_bin, ws.state)
    for cmd in ("plan", "apply"):
        r = ws.cat.cli(cmd, bad, "--allow-delete", check=False) if cmd == "apply" else ws.cat.plan(bad, check=False)
        assert r.returncode != 0, f"{cmd}: a grant of a share the file does not declare must fail"
        assert "platinum" in r.stderr and "globex" in r.stderr, r.stderr
    assert snapshot(lakeshare_bin, ws.state) == before


def test_grant_of_unknown_share_with_unmanaged_shares(ws, gov, lakeshare_bin):
    """No `shares:` section: grants may name existing shares, but not unknown ones."""
    _applied_gold_silver(ws, gov)
    before = snapshot(lakeshare_bin, ws.state)
    bad = write_policy(ws.dir / "r.yaml", recipients=[recipient("acme", ["gold", "nosuchshare"])])
    r = ws.cat.apply(bad, "--allow-delete", check=False)
    assert r.returncode != 0 and "nosuchshare" in r.stderr, r.stderr
    assert snapshot(lakeshare_bin, ws.state) == before


def test_absent_section_is_not_managed(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    ws.cat.cli("share", "create", "handmade")
    shares, recips = gold_silver(gov, ws.dir)
    # recipients only: no share is planned for deletion (not even the hand-made one)
    only_r = write_policy(ws.dir / "only-r.yaml", recipients=recips + [recipient("newco", ["handmade"])])
    p = ws.cat.plan(only_r)
    assert plan_lines(p.stdout) == ["+ recipient newco", "+ grant newco -> handmade"], p.stdout
    ws.cat.apply(only_r)
    assert ws.cat.owners() == {"gold": "apply", "silver": "apply", "handmade": "api"}
    # shares only: the recipients (and grants) are left alone
    only_s = write_policy(ws.dir / "only-s.yaml", shares=shares)
    p = ws.cat.plan(only_s)
    assert plan_lines(p.stdout) == ["- share handmade (with 0 table(s))"], p.stdout
    # a file with neither section manages nothing
    none = write_policy(ws.dir / "none.yaml")
    assert ws.cat.plan(none).stdout.strip() == f"No changes: the catalog matches {none}."
    assert set(recipients(lakeshare_bin, ws.state)) == {"acme", "globex", "newco"}


def test_empty_section_is_the_whole_truth(ws, gov):
    _applied_gold_silver(ws, gov)
    ws.cat.cli("share", "create", "handmade")
    p = ws.cat.plan(write_policy(ws.dir / "no-shares.yaml", shares=[]))
    assert sorted(plan_lines(p.stdout)) == sorted([
        "- share gold (with 2 table(s))", "- share silver (with 1 table(s))",
        "- share handmade (with 0 table(s))"]), p.stdout
    assert summary_line(p.stdout) == "0 to create, 0 to update, 3 to delete (3 destructive: apply needs --allow-delete)."
    p = ws.cat.plan(write_policy(ws.dir / "no-recipients.yaml", recipients=[]))
    assert sorted(plan_lines(p.stdout)) == sorted([
        "- recipient acme (revokes all its tokens)", "- recipient globex (revokes all its tokens)"]), p.stdout
    pol = write_policy(ws.dir / "nothing.yaml", shares=[], recipients=[])
    ws.cat.apply(pol, "--allow-delete")
    assert ws.cat.shares() == []
    assert ws.cat.plan(pol).stdout.strip().startswith("No changes")


def test_grant_expiry_changes(ws, gov, lakeshare_bin):
    _applied_gold_silver(ws, gov)
    shares, recips = gold_silver(gov, ws.dir)
    # an expiry change is an update of the grant, showing before -> after
    steps = (("2030-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00", "never -> 2030-01-01T00:00:00+00:00"),
             (None, None, "2030-01-01T00:00:00+00:00 -> never"))
    for expiry, want, shown in steps:
        recips[1]["shares"] = [{"name": "gold", "expiresAt": expiry}] if expiry else ["gold"]
        pol = write_policy(ws.dir / f"exp-{want}.yaml", shares, recips)
        changes = ws.cat.plan_json(pol)["changes"]
        assert [c["name"] for c in changes] == ["globex -> gold"], changes
        assert not changes[0]["destructive"], changes
        assert changes[0]["action"] == "update", changes
        assert changes[0]["summary"] == f"~ grant globex -> gold (expires: {shown})", changes
        ws.cat.apply(pol)
        g = recipients(lakeshare_bin, ws.state)["globex"]["grants"]
        assert [(x["share"], x["expiresAt"]) for x in g] == [("gold", want)]
        assert ws.cat.plan(pol).stdout.strip().startswith("No changes")


INVALID = {
    "duplicate-share": "version: 1\nshares:\n- name: a\n  schemas: []\n- name: a\n  schemas: []\n",
    "duplicate-recipient": "version: 1\nrecipients:\n- name: x\n  shares: []\n- name: x\n  shares: []\n",
    "bad-op": ("version: 1\nshares:\n- name: a\n  schemas:\n  - name: s\n    tables:\n    - name: t\n"
               "      location: /nonexistent\n      partitions: [{values: [{name: c, op: GREATER, value: x}]}]\n"),
    "bad-ip": "version: 1\nrecipients:\n- name: x\n  ipAccessList: [notanip]\n  shares: []\n",
    "bad-expiry": "version: 1\nshares: []\nrecipients:\n- name: x\n  shares: [{name: a, expiresAt: tomorrow}]\n",
    "bad-yaml": "version: 1\nshares: [\n",
    "token-in-file": "version: 1\nrecipients:\n- name: x\n  token: lks_not_allowed_here\n  shares: []\n",
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_policy_file(ws, gov, lakeshare_bin, case):
    _applied_gold_silver(ws, gov)
    bad = write_policy(ws.dir / f"{case}.yaml", text=INVALID[case])
    before = snapshot(lakeshare_bin, ws.state)
    for cmd in ("plan", "apply"):
        r = ws.cat.cli(cmd, bad, *(["--allow-delete"] if cmd == "apply" else []), check=False)
        assert r.returncode != 0, f"{cmd} of an invalid file ({case}) must fail:\n{r.stdout}"
        assert f"{case}.yaml" in r.stderr, f"the error names the file: {r.stderr}"
    assert snapshot(lakeshare_bin, ws.state) == before


def test_a_token_in_a_policy_file_is_refused_naming_the_key(ws):
    r = ws.cat.plan(write_policy(ws.dir / "tok.yaml", text=INVALID["token-in-file"]), check=False)
    assert r.returncode != 0 and "'token'" in r.stderr and "never hold secrets" in r.stderr, r.stderr
    assert "lks_not_allowed_here" not in r.stderr, "the secret must not be echoed"


@pytest.mark.parametrize("case", ["bad-ip", "bad-expiry"])
def test_invalid_file_message_is_clean(ws, case):
    """The error is one readable line (no run of blanks from a broken line continuation)."""
    r = ws.cat.plan(write_policy(ws.dir / f"{case}.yaml", text=INVALID[case]), check=False)
    assert r.returncode != 0
    msg = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert msg and not any("  " in ln.strip() for ln in msg), f"error message has a run of blanks: {r.stderr!r}"


# ---------------------------------------------------------------------------------- apply, then read


@pytest.fixture(scope="module")
def served(lakeshare_bin, gov_sales, tmp_path_factory):
    """A server (config without shares) on a state seeded by apply: share gold with `sales` (filtered
    by the recipient's country) and `all`; recipients fr, de, walled (10.0.0.0/8 only), legacy."""
    d = tmp_path_factory.mktemp("policy-served")
    pdir = d / "policy"
    gov = gov_sales["path"]
    rel = os.path.relpath(gov, pdir)
    shares = [share("gold", {"m": [table("sales", rel, historyShared=True, partitions=by_property("country", "country")),
                                   table("all", rel)]})]
    recips = [recipient("fr", ["gold"], properties={"country": "FR"}, ip=["127.0.0.0/8"]),
              recipient("de", ["gold"], properties={"country": "DE"}),
              recipient("walled", ["gold"], properties={"country": "FR"}, ip=["10.0.0.0/8"]),
              recipient("legacy", ["gold"], properties={"country": "US"})]
    seed = write_policy(pdir / "seed.yaml", shares, recips)
    s = PolicyServer(lakeshare_bin, d, seed)
    s.policy = (shares, recips, pdir)
    s.profiles = {}
    yield s
    s.stop()


def _profile(served, name):
    if name not in served.profiles:
        served.profiles[name] = served.profile(name)
    return served.profiles[name]


def _expected(gov_sales, country=None):
    snap = gov_sales["snap"][gov_sales["latest_version"]]
    return snap if country is None else snap.filter(lambda r: r["country"] == country)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_templated_filter_reads_fr_rows(served, gov_sales, fmt):
    prof = _profile(served, "fr")
    with open(prof) as fh:
        assert json.load(fh)["endpoint"].rstrip("/") == served.endpoint
    df = delta_sharing.load_as_pandas(f"{prof}#gold.m.sales", use_delta_format=(fmt == "delta"))
    exp = _expected(gov_sales, "FR")
    assert exp.rows, "gov-sales has FR rows"
    frames.assert_same_table(frames.Snapshot.from_pandas(df), exp, f"gold.m.sales as fr ({fmt})")


def test_other_property_other_rows_and_unfiltered_table(served, gov_sales):
    prof = _profile(served, "de")
    df = delta_sharing.load_as_pandas(f"{prof}#gold.m.sales")
    frames.assert_same_table(frames.Snapshot.from_pandas(df), _expected(gov_sales, "DE"), "gold.m.sales as de")
    df = delta_sharing.load_as_pandas(f"{prof}#gold.m.all")
    frames.assert_same_table(frames.Snapshot.from_pandas(df), _expected(gov_sales), "gold.m.all as de")


def test_ip_access_list_from_the_file_is_enforced(served):
    assert recipients(served.binary, served.state)["walled"]["ipAccessList"] == ["10.0.0.0/8"]
    tokens = {}
    for name in ("walled", "fr"):
        with open(_profile(served, name)) as fh:
            tokens[name] = json.load(fh)["bearerToken"]
    r = Api(served.endpoint, tokens["walled"]).get("/shares")
    assert r.status_code == 403, f"walled may only call from 10.0.0.0/8, got {r.status_code}: {r.text[:300]}"
    assert Api(served.endpoint, tokens["fr"]).get("/shares").status_code == 200, "127.0.0.1 is in fr's 127.0.0.0/8"


def test_preview_matches_the_log(served, gov_sales):
    adds = deltalog.replay(gov_sales["path"]).adds
    fr = sorted(a["path"] for a in adds if a["partitionValues"].get("country") == "FR")
    prev = served.local().preview("fr")
    assert prev["recipient"] == "fr" and prev["shares"] == ["gold"]
    t = {x["name"]: x for x in prev["tables"]}
    assert set(t) == {"sales", "all"}
    assert t["sales"]["version"] == gov_sales["latest_version"]
    assert sorted(f["path"] for f in t["sales"]["files"]) == fr
    assert all(f["partition_values"]["country"] == "FR" for f in t["sales"]["files"])
    assert len(t["all"]["files"]) == t["all"]["total_files"] == len(adds)
    one = served.local().preview("fr", max_files=1)
    assert all(len(x["files"]) == 1 for x in one["tables"]), "--max-files caps the files listed per table"
    text = served.local().cli("recipient", "preview", "fr").stdout
    assert re.search(rf"gold\.m\.sales\s+{gov_sales['latest_version']}\s+{len(fr)} of {len(adds)}\b", text), text


def test_apply_removing_a_recipient_revokes_its_token(served):
    prof = _profile(served, "legacy")
    with open(prof) as fh:
        tok = json.load(fh)["bearerToken"]
    api = Api(served.endpoint, tok)
    assert api.get("/shares").status_code == 200
    shares, recips, pdir = served.policy
    pol = write_policy(pdir / "no-legacy.yaml", shares, [r for r in recips if r["name"] != "legacy"])
    p = served.local().plan(pol)
    assert plan_lines(p.stdout) == ["- recipient legacy (revokes all its tokens)"], p.stdout
    served.local().apply(pol, "--allow-delete")
    assert api.get("/shares").status_code == 401, "the dropped recipient's token is refused on its next request"


# ---------------------------------------------------------------------------------- ownership


def _cfg_share(gov):
    return [share("cfgshare", {"s": [table("t", gov)]})]


def test_config_shares_are_owned_by_the_config(lakeshare_bin, gov, tmp_path):
    seed = write_policy(tmp_path / "p" / "seed.yaml", [share("gold", {"m": [table("t", gov)]})],
                        [recipient("r1", ["gold"])])
    s = PolicyServer(lakeshare_bin, tmp_path, seed, config_shares=_cfg_share(gov))
    try:
        cat = s.local()
        cat.cli("share", "create", "handmade", "--comment", "by hand")
        assert cat.owners() == {"cfgshare": "config", "gold": "apply", "handmade": "api"}
    finally:
        s.stop()
    # restart with the share removed from the config: it is deleted, the others survive
    cfg_b = srv.write_config(str(tmp_path / "without.yaml"), [])
    s2 = srv.start_server(lakeshare_bin, cfg_b, s.state, ["--port", "0"], workdir=str(tmp_path))
    try:
        assert cat.owners() == {"gold": "apply", "handmade": "api"}
        assert {x["name"]: x.get("comment") for x in cat.shares()}["handmade"] == "by hand"
    finally:
        s2.stop()
    # and once more with the config share back
    s3 = srv.start_server(lakeshare_bin, s.config, s.state, ["--port", "0"], workdir=str(tmp_path))
    try:
        assert cat.owners() == {"cfgshare": "config", "gold": "apply", "handmade": "api"}
    finally:
        s3.stop()


@pytest.fixture
def cfg_owned(lakeshare_bin, gov, tmp_path):
    gold = [share("gold", {"m": [table("t", gov)]})]
    seed = write_policy(tmp_path / "p" / "seed.yaml", gold, [recipient("r1", ["gold"])])
    s = PolicyServer(lakeshare_bin, tmp_path, seed, config_shares=_cfg_share(gov))
    s.stop()  # the store remembers that the config owns cfgshare
    hijack = share("cfgshare", {"s": [table("t", gov, historyShared=True), table("extra", gov)]}, comment="hijack")
    return s, write_policy(tmp_path / "p" / "hijack.yaml", gold + [hijack], [recipient("r1", ["gold"])])


def test_policy_cannot_change_a_config_owned_share(cfg_owned):
    s, pol = cfg_owned
    cat = s.local()
    before = cat.share_show("cfgshare")
    assert before["owner"] == "config"
    p = cat.plan(pol)
    assert p.stdout.strip() == f"No changes: the catalog matches {pol}.", p.stdout
    assert "cfgshare" in p.stderr and "config file" in p.stderr and "owns" in p.stderr, (
        f"plan must warn that the config file owns the share: {p.stderr!r}")
    warnings = cat.plan_json(pol).get("warnings")
    assert warnings and any("cfgshare" in w for w in warnings), warnings
    a = cat.apply(pol, "--allow-delete")
    assert "cfgshare" in a.stderr and "config" in a.stderr, a.stderr
    assert cat.share_show("cfgshare") == before, "apply must not change a config-owned share"


def test_config_owned_warning_is_clean(cfg_owned):
    s, pol = cfg_owned
    p = s.local().plan(pol)
    warn = [ln for ln in p.stderr.splitlines() if "cfgshare" in ln]
    assert warn, p.stderr
    assert not any("  " in ln.strip() for ln in warn), f"the warning has a run of blanks: {warn!r}"


# ---------------------------------------------------------------------------------- catalog CLI (local)


def test_table_register_list_show_unregister(ws, gov, uri):
    c = ws.cat
    t = c.json("table", "register", "main.sales.gov", gov)
    assert t["full_name"] == "main.sales.gov" and t["storage_location"] == uri
    assert t["catalog_name"] == "main" and t["schema_name"] == "sales" and t["name"] == "gov"
    assert t["created_by"] == f"cli:{CLI_USER}"
    c.json("table", "register", "main.other.gov2", gov)
    names = lambda *p: sorted(x["full_name"] for x in c.json("table", "list", *p)["tables"])  # noqa: E731
    assert names() == ["main.other.gov2", "main.sales.gov"]
    assert names("main") == ["main.other.gov2", "main.sales.gov"]
    assert names("main.sales") == ["main.sales.gov"]
    assert names("nocatalog") == []
    assert c.json("table", "show", "main.sales.gov") == t
    assert "main.sales.gov" in c.cli("table", "list").stdout
    c.cli("table", "unregister", "main.sales.gov")
    r = c.cli("table", "show", "main.sales.gov", check=False)
    assert r.returncode != 0 and "main.sales.gov" in r.stderr
    assert names() == ["main.other.gov2"]


@pytest.mark.parametrize("args,needle", [
    (["table", "register", "nodots", "{gov}"], "catalog.schema.table"),
    (["table", "register", "main.s.t", "{missing}"], "missing-table"),
    (["table", "register", "main.s.dup", "{gov}"], "already exists"),
])
def test_table_register_errors(ws, gov, args, needle):
    ws.cat.cli("table", "register", "main.s.dup", gov)
    args = [a.format(gov=gov, missing=str(ws.dir / "missing-table")) for a in args]
    r = ws.cat.cli(*args, check=False)
    assert r.returncode != 0 and needle in r.stderr, r.stderr


def _hand_share(c, gov):
    c.cli("table", "register", "main.sales.gov", gov)
    c.cli("share", "create", "hand", "--comment", "made by hand")
    return c.json("share", "add-table", "hand", "main.sales.gov", "--as", "eu.sales", "--history",
                  "--start-version", "1", "--partition", "country=@country", "--partition", "country=US,year=2024")


def test_share_create_and_add_table(ws, gov):
    c = ws.cat
    shown = _hand_share(c, gov)
    assert {"name": "hand", "comment": "made by hand", "owner": "api"}.items() <= c.share_show("hand").items()
    assert [s for s in c.shares() if s["name"] == "hand"][0]["owner"] == "api"
    (o,) = shown["objects"]
    assert o["name"] == "main.sales.gov" and o["shared_as"] == "eu.sales"
    assert o["history_data_sharing_status"] == "ENABLED" and o["start_version"] == 1
    assert o["partitions"] == [
        {"values": [{"name": "country", "op": "EQUAL", "recipient_property_key": "country"}]},
        {"values": [{"name": "country", "op": "EQUAL", "value": "US"}, {"name": "year", "op": "EQUAL", "value": "2024"}]},
    ]
    assert c.share_show("hand") == shown
    text = c.cli("share", "show", "hand").stdout
    assert "country=@country | country=US,year=2024" in text, text
    bad = c.cli("share", "add-table", "hand", "main.sales.gov", "--as", "x.y", "--partition", "country", check=False)
    assert bad.returncode != 0 and "country" in bad.stderr, bad.stderr
    missing = c.cli("share", "add-table", "hand", "main.nope.t", check=False)
    assert missing.returncode != 0 and "main.nope.t" in missing.stderr


def test_share_update_remove_delete(ws, gov):
    c = ws.cat
    _hand_share(c, gov)
    c.cli("share", "update-table", "hand", "eu.sales", "--no-partitions", "--no-history")
    (o,) = c.share_show("hand")["objects"]
    assert not o.get("partitions") and o["history_data_sharing_status"] == "DISABLED" and o["start_version"] == 1
    c.cli("share", "update-table", "hand", "eu.sales", "--partition", "country~F%")
    (o,) = c.share_show("hand")["objects"]
    assert o["partitions"] == [{"values": [{"name": "country", "op": "LIKE", "value": "F%"}]}]
    c.cli("share", "remove-table", "hand", "eu.sales")
    assert c.share_show("hand").get("objects", []) == []
    r = c.cli("share", "remove-table", "hand", "eu.sales", check=False)
    assert r.returncode != 0 and "eu.sales" in r.stderr
    c.cli("share", "delete", "hand")
    assert "hand" not in c.owners()
    assert c.cli("share", "show", "hand", check=False).returncode != 0


def test_preview_of_a_like_filter(ws, gov, lakeshare_bin):
    c = ws.cat
    _hand_share(c, gov)
    c.cli("share", "update-table", "hand", "eu.sales", "--partition", "country~F%")
    c.apply(write_policy(ws.dir / "viewer.yaml", recipients=[recipient("viewer", ["hand"])]))
    adds = deltalog.replay(gov).adds
    want = sorted(a["path"] for a in adds if (a["partitionValues"].get("country") or "").startswith("F"))
    prev = c.preview("viewer")
    assert prev["shares"] == ["hand"]
    (t,) = prev["tables"]
    assert (t["share"], t["schema"], t["name"]) == ("hand", "eu", "sales")
    assert sorted(f["path"] for f in t["files"]) == want
    assert t["partitions"] == [{"values": [{"name": "country", "op": "LIKE", "value": "F%"}]}]


def test_admin_log_local_actor(ws):
    c = ws.cat
    c.cli("share", "create", "logged")
    c.cli("share", "delete", "logged")
    log = c.admin_log()
    assert [(e["action"], e["target"]) for e in log[:2]] == [("share.delete", "logged"), ("share.create", "logged")]
    assert {e["actor"] for e in log[:2]} == {f"cli:{CLI_USER}"}
    assert len(c.admin_log(limit=1)) == 1
    assert [e["seq"] for e in log] == sorted((e["seq"] for e in log), reverse=True), "newest first"


# ---------------------------------------------------------------------------------- remote (admin API)

ADMIN = "alice"


@pytest.fixture(scope="module")
def remote(lakeshare_bin, gov_sales, tmp_path_factory):
    d = tmp_path_factory.mktemp("policy-remote")
    base = [share("base", {"s": [table("t", gov_sales["path"])]})]
    boot = [recipient("bootstrap", ["base"])]
    s = PolicyServer(lakeshare_bin, d, write_policy(d / "seed" / "seed.yaml", base, boot), admin_name=ADMIN)
    s.base, s.boot = base, boot
    s.cwd = str(d / "cli-cwd")
    os.makedirs(s.cwd)
    yield s
    s.stop()


def test_remote_plan_apply_and_read(remote, gov_sales, lakeshare_bin):
    """plan/apply through the admin API; the relative location is resolved by the CLI against the file's
    directory (neither the CLI's cwd nor the server's); the data is then readable at once."""
    gov = gov_sales["path"]
    pdir = os.path.join(os.path.dirname(remote.cwd), "remote-policy", "deep")
    rel = os.path.relpath(gov, pdir)
    gold = share("gold", {"m": [table("sales", rel, partitions=by_property("country", "country"))]})
    pol = write_policy(os.path.join(pdir, "policy.yaml"), remote.base + [gold],
                       remote.boot + [recipient("fr", ["gold"], properties={"country": "FR"})])
    cat = remote.remote(cwd=remote.cwd)
    p = cat.plan(pol)
    assert plan_lines(p.stdout) == ["+ share gold", "+ schema gold.m",
                                    f"+ table gold.m.sales (location: {file_uri_dir(gov)})",
                                    "+ recipient fr", "+ grant fr -> gold"], p.stdout
    assert cat.plan(pol, "--exit-code", check=False).returncode == 2
    a = cat.apply(pol)
    assert "lakeshare recipient link fr" in a.stdout + a.stderr
    assert cat.plan(pol).stdout.strip() == f"No changes: the catalog matches {pol}."
    assert cat.plan(pol, "--exit-code", check=False).returncode == 0
    assert remote.local().owners() == {"base": "apply", "gold": "apply"}
    assert cat.owners() == remote.local().owners()
    log = [e for e in cat.admin_log() if e["target"] in ("gold", "gold.m", "gold.m.sales", "fr", "fr -> gold")]
    assert len(log) == 5 and {e["actor"] for e in log} == {f"admin:{ADMIN}"}, log
    # the running server serves it right away
    prof = remote.profile("fr")
    df = delta_sharing.load_as_pandas(f"{prof}#gold.m.sales")
    frames.assert_same_table(frames.Snapshot.from_pandas(df), _expected(gov_sales, "FR"), "remote-applied gold")


def test_remote_destructive_apply_is_refused(remote, lakeshare_bin):
    pol = write_policy(os.path.join(os.path.dirname(remote.cwd), "nobody.yaml"), recipients=[])
    before = snapshot(lakeshare_bin, remote.state)
    r = remote.remote(cwd=remote.cwd).apply(pol, check=False)
    assert r.returncode != 0 and "--allow-delete" in r.stderr, r.stderr
    assert snapshot(lakeshare_bin, remote.state) == before


def test_remote_table_and_share_commands(remote, gov_sales):
    gov = gov_sales["path"]
    cat, loc = remote.remote(cwd=remote.cwd), remote.local()
    t = cat.json("table", "register", "main.remote.gov", gov)
    assert t["storage_location"] == file_uri_dir(gov) and t["created_by"] == f"admin:{ADMIN}"
    assert [x["full_name"] for x in cat.json("table", "list", "main.remote")["tables"]] == ["main.remote.gov"]
    assert cat.json("table", "show", "main.remote.gov") == loc.json("table", "show", "main.remote.gov")
    try:
        cat.cli("share", "create", "rhand", "--comment", "remote")
        cat.cli("share", "add-table", "rhand", "main.remote.gov", "--as", "x.y", "--partition", "country=@country")
        shown = cat.share_show("rhand")
        assert shown["owner"] == "api" and shown == loc.share_show("rhand")
        assert shown["objects"][0]["partitions"][0]["values"][0]["recipient_property_key"] == "country"
        cat.cli("share", "update-table", "rhand", "x.y", "--no-partitions", "--history")
        (o,) = loc.share_show("rhand")["objects"]
        assert not o.get("partitions") and o["history_data_sharing_status"] == "ENABLED"
        cat.cli("share", "remove-table", "rhand", "x.y")
        assert loc.share_show("rhand").get("objects", []) == []
    finally:
        cat.cli("share", "delete", "rhand", check=False)
    assert "rhand" not in loc.owners()
    cat.cli("table", "unregister", "main.remote.gov")
    assert loc.json("table", "list", "main.remote")["tables"] == []
    acts = [(e["action"], e["target"], e["actor"]) for e in loc.admin_log(limit=20)]
    for action, target in (("table.register", "main.remote.gov"), ("share.create", "rhand"),
                           ("share.delete", "rhand"), ("table.unregister", "main.remote.gov")):
        assert (action, target, f"admin:{ADMIN}") in acts, f"{action} {target} by admin:{ADMIN} not in {acts}"


def test_remote_preview_equals_local(remote):
    assert remote.remote(cwd=remote.cwd).preview("bootstrap") == remote.local().preview("bootstrap")
    r = remote.remote(cwd=remote.cwd).cli("recipient", "preview", "nosuchrecipient", "--json", check=False)
    assert r.returncode != 0 and "nosuchrecipient" in r.stderr


def test_remote_through_environment_variables(remote, lakeshare_bin):
    env = {"LAKESHARE_ADMIN_URL": remote.admin_url, "LAKESHARE_ADMIN_TOKEN": remote.admin_token}
    out = run(lakeshare_bin, "share", "list", "--json", env=env, cwd=remote.cwd).stdout
    assert json.loads(out)["shares"] == remote.local().shares()
    run(lakeshare_bin, "share", "create", "viaenv", env=env, cwd=remote.cwd)
    try:
        entry = remote.local().admin_log(limit=5)
        assert ("share.create", "viaenv", f"admin:{ADMIN}") in [(e["action"], e["target"], e["actor"]) for e in entry]
    finally:
        run(lakeshare_bin, "share", "delete", "viaenv", env=env, cwd=remote.cwd, check=False)


WRONG_TOKEN_CMDS = {
    "plan": ["plan", "{pol}"],
    "apply": ["apply", "{pol}", "--allow-delete"],
    "share-list": ["share", "list"],
    "share-create": ["share", "create", "intruder"],
    "table-register": ["table", "register", "main.x.intruder", "{gov}"],
    "preview": ["recipient", "preview", "bootstrap"],
    "admin-log": ["admin-log"],
}


@pytest.mark.parametrize("cmd", list(WRONG_TOKEN_CMDS))
def test_remote_wrong_admin_token(remote, gov_sales, lakeshare_bin, cmd):
    pol = write_policy(os.path.join(os.path.dirname(remote.cwd), "wrong-token.yaml"),
                       [share("intruder", {"s": [table("t", gov_sales["path"])]})], [])
    args = [a.format(pol=pol, gov=gov_sales["path"]) for a in WRONG_TOKEN_CMDS[cmd]]
    before = snapshot(lakeshare_bin, remote.state)
    r = remote.remote(token="lks_not-a-valid-admin-token", cwd=remote.cwd).cli(*args, check=False)
    assert r.returncode != 0, f"{cmd} with a wrong admin token must fail:\n{r.stdout}"
    assert "UNAUTHENTICATED" in r.stderr or "401" in r.stderr, r.stderr
    assert snapshot(lakeshare_bin, remote.state) == before
