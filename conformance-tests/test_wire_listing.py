"""Listing endpoints: contents, pagination, 404s, name matching (PROTOCOL-NOTES §2.1-2.5, §13.15)."""
import pytest

from api import assert_error

LIST_PATHS = [
    "/shares",
    "/shares/conformance/schemas",
    "/shares/conformance/schemas/golden/tables",
    "/shares/conformance/schemas/generated/tables",
    "/shares/conformance/all-tables",
    "/shares/gated/all-tables",
]


def _walk(api, path, max_results=None):
    """Follow nextPageToken to the end; returns (items, number of pages)."""
    items, token, pages = [], None, 0
    while True:
        params = {}
        if max_results is not None:
            params["maxResults"] = max_results
        if token:
            params["pageToken"] = token
        r = api.get(path, params=params)
        assert r.status_code == 200, f"{path} {params}: {r.status_code} {r.text[:300]}"
        body = r.json()
        page = body.get("items") or []
        if max_results is not None:
            assert len(page) <= max_results, f"{path}: page of {len(page)} items with maxResults={max_results}"
        items.extend(page)
        pages += 1
        token = body.get("nextPageToken")
        if not token:
            return items, pages
        assert pages < 500, f"{path}: pagination does not terminate"


def _expected(env, path):
    cfg = {s["name"]: s for s in env.shares_cfg}
    parts = path.strip("/").split("/")
    if path == "/shares":
        return [{"name": n} for n in cfg]
    share = cfg[parts[1]]
    if parts[-1] == "schemas":
        return [{"name": sc["name"], "share": share["name"]} for sc in share["schemas"]]
    if parts[-1] == "all-tables":
        return [{"name": t["name"], "schema": sc["name"], "share": share["name"]}
                for sc in share["schemas"] for t in sc["tables"]]
    sc = next(x for x in share["schemas"] if x["name"] == parts[3])
    return [{"name": t["name"], "schema": sc["name"], "share": share["name"]} for t in sc["tables"]]


def _project(items, keys):
    return [{k: it.get(k) for k in keys} for it in items]


@pytest.mark.parametrize("path", LIST_PATHS)
def test_listing_contents(env, api, path):
    items, _ = _walk(api, path)
    want = _expected(env, path)
    keys = list(want[0])
    assert _project(items, keys) == want, f"{path}: listing (config order) differs"


@pytest.mark.parametrize("path", LIST_PATHS)
def test_pagination_max_results_1(env, api, path):
    full, _ = _walk(api, path)
    paged, pages = _walk(api, path, max_results=1)
    assert paged == full, f"{path}: walking pages of 1 must give the unpaged listing"
    assert pages >= len(full), f"{path}: {len(full)} items in only {pages} pages of size 1"


def test_table_ids_listed(env, api):
    items, _ = _walk(api, "/shares/conformance/all-tables")
    cfg = {t["name"]: t["id"] for sc in env.shares_cfg[0]["schemas"] for t in sc["tables"]}
    for it in items:
        assert it.get("id") == cfg[it["name"]], f"table {it['name']}: configured id must be listed"


def test_max_results_zero(api):
    r = api.get("/shares", params={"maxResults": 0})
    assert r.status_code == 200, r.text[:300]
    assert not r.json().get("items"), "maxResults=0 returns no items"


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
@pytest.mark.parametrize("path", ["/shares", "/shares/conformance/schemas", "/shares/conformance/all-tables"])
def test_bad_max_results(api, path, value):
    r = api.get(path, params={"maxResults": value})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", what=f"{path}?maxResults={value}")


def _first_token(api, path):
    r = api.get(path, params={"maxResults": 1})
    tok = r.json().get("nextPageToken")
    assert tok, f"{path}: expected a nextPageToken with maxResults=1"
    return tok


@pytest.mark.parametrize("path", ["/shares", "/shares/conformance/schemas", "/shares/conformance/all-tables"])
def test_forged_page_token(api, path):
    assert_error(api.get(path, params={"pageToken": "not-a-real-token!!"}), 400, what=f"{path} forged token")


@pytest.mark.parametrize("path", ["/shares/conformance/schemas", "/shares/conformance/all-tables"])
def test_altered_page_token(api, path):
    tok = _first_token(api, path)
    mid = len(tok) // 2
    altered = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
    assert_error(api.get(path, params={"pageToken": altered}), 400, what=f"{path} altered token")


def test_page_token_of_other_listing(api):
    tok = _first_token(api, "/shares/conformance/schemas/golden/tables")
    r = api.get("/shares/conformance/schemas/generated/tables", params={"pageToken": tok})
    assert_error(r, 400, what="page token from another listing")


NOT_FOUND = [
    ("GET", "/shares/nope"),
    ("GET", "/shares/nope/schemas"),
    ("GET", "/shares/nope/all-tables"),
    ("GET", "/shares/conformance/schemas/nope/tables"),
    ("GET", "/shares/conformance/schemas/golden/tables/nope/version"),
    ("GET", "/shares/conformance/schemas/golden/tables/nope/metadata"),
    ("POST", "/shares/conformance/schemas/golden/tables/nope/query"),
    ("POST", "/shares/conformance/schemas/nope/tables/plain_unpartitioned/query"),
    ("POST", "/shares/nope/schemas/golden/tables/plain_unpartitioned/query"),
    ("GET", "/shares/conformance/schemas/generated/tables/plain_unpartitioned/metadata"),  # wrong schema
]


@pytest.mark.parametrize("method,path", NOT_FOUND)
def test_unknown_resources_404(api, method, path):
    r = api.get(path) if method == "GET" else api.post(path, {})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", what=f"{method} {path}")


def test_head_unknown_table_404(api):
    r = api.head("/shares/conformance/schemas/golden/tables/nope")
    assert r.status_code == 404


def test_get_share(api):
    r = api.get("/shares/conformance")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["share"]["name"] == "conformance"


@pytest.mark.parametrize("path", [
    "/shares/CONFORMANCE/schemas/Golden/tables/Plain_Unpartitioned/version",
    "/shares/%63onformance/schemas/%67olden/tables/plain%5Funpartitioned/version",
    "/shares/Conformance/schemas/GENERATED/tables/GEN_PARTITIONED/version",
])
def test_case_insensitive_and_percent_encoded_names(api, path):
    r = api.get(path)
    assert r.status_code == 200, f"{path}: names match case-insensitively and percent-decoded: {r.status_code} {r.text[:200]}"
    assert r.headers.get("Delta-Table-Version")


def test_case_insensitive_query(env, api):
    r = api.post("/shares/CONFORMANCE/schemas/GOLDEN/tables/PLAIN_UNPARTITIONED/query", {})
    assert r.status_code == 200, r.text[:300]

