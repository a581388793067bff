"""The authorization matrix: every route × method × role, written down in one table.

A route missing from ROUTES fails the test, so a new endpoint cannot ship without someone deciding who may use
it. For each entry: anonymous users are sent to the login page (pages) or get 401 (API); roles below the one
listed get 403; the listed role and above get past access control (never 401, 403 or 500). Record ids in paths are
ones that do not exist, so an authorized role sees 404 or a validation error, never someone else's data.
"""

import re

import pytest

from crm.auth.services import create_token

RANK = {"public": 0, "viewer": 1, "organizer": 2, "admin": 3}
ROLES = ("viewer", "organizer", "admin")

# (method, rule) -> the least role that may use it ("public": anyone).
ROUTES = {
    ("GET", "/"): "viewer",
    ("GET", "/account"): "viewer",
    ("POST", "/account"): "viewer",
    ("POST", "/account/logout-everywhere"): "viewer",
    ("GET", "/api/v1/contacts"): "viewer",
    ("POST", "/api/v1/contacts"): "organizer",
    ("GET", "/api/v1/contacts/<int:contact_id>"): "viewer",
    ("PATCH", "/api/v1/contacts/<int:contact_id>"): "organizer",
    ("POST", "/api/v1/imports"): "organizer",
    ("GET", "/api/v1/issue-areas"): "viewer",
    ("GET", "/api/v1/letters"): "viewer",
    ("POST", "/api/v1/letters"): "organizer",
    ("GET", "/api/v1/letters/<slug>"): "viewer",
    ("PATCH", "/api/v1/letters/<slug>"): "organizer",
    ("DELETE", "/api/v1/letters/<slug>"): "organizer",
    ("POST", "/api/v1/letters/<slug>/revoke-links"): "organizer",
    ("POST", "/api/v1/letters/<slug>/import"): "organizer",
    ("GET", "/api/v1/letters/<slug>/signatures"): "viewer",
    ("POST", "/api/v1/letters/<slug>/signatures"): "organizer",
    ("GET", "/api/v1/letters/<slug>/signatures/<int:signature_id>"): "viewer",
    ("PATCH", "/api/v1/letters/<slug>/signatures/<int:signature_id>"): "organizer",
    ("GET", "/api/v1/merges"): "viewer",
    ("POST", "/api/v1/merges"): "organizer",
    ("GET", "/api/v1/merges/<int:merge_id>"): "viewer",
    ("GET", "/api/v1/merges/<int:merge_id>/audience"): "viewer",
    ("POST", "/api/v1/merges/<int:merge_id>/cancel"): "organizer",
    ("GET", "/api/v1/merges/<int:merge_id>/check"): "organizer",
    ("POST", "/api/v1/merges/<int:merge_id>/pause"): "organizer",
    ("GET", "/api/v1/merges/<int:merge_id>/preview"): "organizer",
    ("POST", "/api/v1/merges/<int:merge_id>/queue"): "organizer",
    ("POST", "/api/v1/merges/<int:merge_id>/resume"): "organizer",
    ("POST", "/api/v1/merges/<int:merge_id>/send"): "organizer",
    ("GET", "/api/v1/merges/<int:merge_id>/status"): "viewer",
    ("POST", "/api/v1/merges/<int:merge_id>/test"): "organizer",
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/api/v1/organizations"): "viewer",
    ("POST", "/api/v1/organizations"): "organizer",
    ("GET", "/api/v1/organizations/<int:org_id>"): "viewer",
    ("DELETE", "/api/v1/organizations/<int:org_id>"): "organizer",
    ("PATCH", "/api/v1/organizations/<int:org_id>"): "organizer",
    ("POST", "/api/v1/organizations/<int:org_id>/archive"): "organizer",
    ("POST", "/api/v1/organizations/<int:org_id>/merge"): "organizer",
    ("GET", "/api/v1/segments"): "viewer",
    ("POST", "/api/v1/segments"): "organizer",
    ("DELETE", "/api/v1/segments/<int:segment_id>"): "organizer",
    ("GET", "/api/v1/segments/<int:segment_id>"): "viewer",
    ("PATCH", "/api/v1/segments/<int:segment_id>"): "organizer",
    ("GET", "/api/v1/signon-requests"): "organizer",
    ("POST", "/api/v1/signon-requests/<int:request_id>/decision"): "organizer",
    ("GET", "/audit"): "admin",
    ("GET", "/contacts"): "viewer",
    ("GET", "/contacts/<int:contact_id>"): "viewer",
    ("POST", "/contacts/<int:contact_id>/<any(primary, left, active):change>"): "organizer",
    ("GET", "/contacts/<int:contact_id>/edit"): "organizer",
    ("POST", "/contacts/<int:contact_id>/edit"): "organizer",
    ("GET", "/contacts/export.csv"): "viewer",
    ("GET", "/contacts/organization-options"): "organizer",
    ("GET", "/contacts/new"): "organizer",
    ("POST", "/contacts/new"): "organizer",
    ("GET", "/exports/<what>.<fmt>"): "viewer",
    ("GET", "/imports"): "organizer",
    ("POST", "/imports"): "organizer",
    ("GET", "/imports/batches/<int:batch_id>"): "organizer",
    ("GET", "/imports/batches/<int:batch_id>/report.csv"): "organizer",
    ("POST", "/imports/batches/<int:batch_id>/undo"): "organizer",
    ("GET", "/imports/u/<token>/mapping"): "organizer",
    ("POST", "/imports/u/<token>/mapping"): "organizer",
    ("POST", "/imports/u/<token>/discard"): "organizer",
    ("POST", "/imports/u/<token>/kind"): "organizer",
    ("GET", "/imports/u/<token>/preview"): "organizer",
    ("POST", "/imports/u/<token>/preview"): "organizer",
    ("GET", "/imports/u/<token>/report.csv"): "organizer",
    ("GET", "/letters"): "viewer",
    ("GET", "/letters/<slug>"): "viewer",
    ("POST", "/letters/<slug>/deadline"): "organizer",
    ("POST", "/letters/<slug>/revoke-links"): "organizer",
    ("GET", "/letters/<slug>/delete"): "organizer",
    ("POST", "/letters/<slug>/delete"): "organizer",
    ("GET", "/letters/<slug>/edit"): "organizer",
    ("POST", "/letters/<slug>/edit"): "organizer",
    ("GET", "/letters/<slug>/import"): "organizer",
    ("POST", "/letters/<slug>/import"): "organizer",
    ("GET", "/letters/<slug>/import/options"): "organizer",
    ("GET", "/letters/<slug>/organizations"): "organizer",
    ("GET", "/letters/<slug>/print"): "viewer",
    ("POST", "/letters/<slug>/reconfirm"): "organizer",
    ("GET", "/letters/<slug>/signatories.csv"): "viewer",
    ("GET", "/letters/<slug>/signatories.html"): "viewer",
    ("GET", "/letters/<slug>/signatories.md"): "viewer",
    ("GET", "/letters/<slug>/signatories.txt"): "viewer",
    ("POST", "/letters/<slug>/signatures"): "organizer",
    ("GET", "/letters/<slug>/signatures/<int:signature_id>"): "viewer",
    ("POST", "/letters/<slug>/signatures/<int:signature_id>"): "organizer",
    ("POST", "/letters/<slug>/status"): "organizer",
    ("GET", "/letters/new"): "organizer",
    ("POST", "/letters/new"): "organizer",
    ("GET", "/letters/participation"): "viewer",
    ("POST", "/letters/participation"): "organizer",
    ("GET", "/letters/review"): "organizer",
    ("POST", "/letters/review/<int:request_id>"): "organizer",
    ("GET", "/healthz"): "public",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "viewer",
    ("GET", "/password/forgot"): "public",
    ("POST", "/password/forgot"): "public",
    ("GET", "/password/reset/<token>"): "public",
    ("POST", "/password/reset/<token>"): "public",
    ("GET", "/merges"): "viewer",
    ("GET", "/merges/<int:merge_id>"): "viewer",
    ("POST", "/merges/<int:merge_id>/<any(pause, resume, cancel):action>"): "organizer",
    ("GET", "/merges/<int:merge_id>/check"): "organizer",
    ("GET", "/merges/<int:merge_id>/edit"): "organizer",
    ("POST", "/merges/<int:merge_id>/edit"): "organizer",
    ("POST", "/merges/<int:merge_id>/messages/<int:message_id>/resend"): "organizer",
    ("GET", "/merges/<int:merge_id>/preview"): "organizer",
    ("GET", "/merges/<int:merge_id>/progress"): "viewer",
    ("GET", "/merges/<int:merge_id>/queue"): "organizer",
    ("POST", "/merges/<int:merge_id>/duplicate"): "organizer",
    ("GET", "/merges/audience-count"): "organizer",
    ("POST", "/merges/<int:merge_id>/queue"): "organizer",
    ("GET", "/merges/<int:merge_id>/report"): "organizer",
    ("POST", "/merges/<int:merge_id>/test"): "organizer",
    ("GET", "/merges/new"): "organizer",
    ("POST", "/merges/new"): "organizer",
    ("GET", "/organizations"): "viewer",
    ("GET", "/organizations/<int:org_id>"): "viewer",
    ("POST", "/organizations/<int:org_id>/archive"): "organizer",
    ("POST", "/organizations/<int:org_id>/aliases/<int:alias_id>/delete"): "admin",
    ("GET", "/organizations/<int:org_id>/edit"): "organizer",
    ("POST", "/organizations/<int:org_id>/edit"): "organizer",
    ("POST", "/organizations/<int:org_id>/interactions"): "organizer",
    ("POST", "/organizations/<int:org_id>/restore"): "organizer",
    ("GET", "/organizations/duplicates"): "organizer",
    ("GET", "/organizations/issue-areas"): "viewer",
    ("POST", "/organizations/issue-areas"): "admin",
    ("POST", "/organizations/issue-areas/<slug>/rename"): "admin",
    ("POST", "/organizations/issue-areas/<slug>/retire"): "admin",
    ("POST", "/organizations/issue-areas/merge"): "admin",
    ("GET", "/organizations/merge"): "organizer",
    ("POST", "/organizations/merge"): "organizer",
    ("GET", "/organizations/new"): "organizer",
    ("POST", "/organizations/new"): "organizer",
    ("GET", "/outbox"): "organizer",
    ("GET", "/outbox/<int:message_id>"): "organizer",
    ("GET", "/segments"): "viewer",
    ("POST", "/segments"): "organizer",
    ("GET", "/segments/<int:segment_id>"): "viewer",
    ("POST", "/segments/<int:segment_id>/delete"): "organizer",
    ("POST", "/segments/<int:segment_id>/rename"): "organizer",
    ("GET", "/sign/<slug>"): "public",
    ("POST", "/sign/<slug>"): "public",
    ("GET", "/sign/<slug>/confirm/<token>"): "public",
    ("POST", "/sign/<slug>/confirm/<token>"): "public",
    ("GET", "/sign/<slug>/p/<token>"): "public",
    ("POST", "/sign/<slug>/p/<token>"): "public",
    ("GET", "/sign/<slug>/thanks"): "public",
    ("GET", "/sign-on-mails"): "organizer",
    ("GET", "/sign-on-mails/<kind>"): "organizer",
    ("POST", "/sign-on-mails/<kind>"): "organizer",
    ("GET", "/suppressions"): "organizer",
    ("POST", "/suppressions"): "organizer",
    ("GET", "/suppressions.csv"): "organizer",
    ("POST", "/suppressions/import"): "organizer",
    ("POST", "/suppressions/remove"): "organizer",
    ("GET", "/u/<token>"): "public",
    ("GET", "/t/<token>"): "public",
    ("POST", "/t/<token>"): "public",
    ("POST", "/u/<token>"): "public",
    ("GET", "/users"): "admin",
    ("POST", "/users"): "admin",
    ("POST", "/users/<int:user_id>/role"): "admin",
    ("POST", "/users/<int:user_id>/reinvite"): "admin",
    ("POST", "/users/<int:user_id>/<any(deactivate, activate):change>"): "admin",
    ("POST", "/tokens/<int:token_id>/revoke"): "viewer",
    ("GET", "/invite/<token>"): "public",
    ("POST", "/invite/<token>"): "public",
}

# API routes that show the same data as a page, or do the same thing: they must need the same role.
TWINS = [
    (("GET", "/api/v1/signon-requests"), ("GET", "/letters/review")),
    (("POST", "/api/v1/signon-requests/<int:request_id>/decision"), ("POST", "/letters/review/<int:request_id>")),
    (("GET", "/api/v1/merges/<int:merge_id>/check"), ("GET", "/merges/<int:merge_id>/check")),
    (("GET", "/api/v1/merges/<int:merge_id>/preview"), ("GET", "/merges/<int:merge_id>/preview")),
    (("GET", "/api/v1/merges"), ("GET", "/merges")),
    (("GET", "/api/v1/organizations"), ("GET", "/organizations")),
    (("GET", "/api/v1/contacts"), ("GET", "/contacts")),
    (("GET", "/api/v1/letters/<slug>"), ("GET", "/letters/<slug>")),
    (("GET", "/api/v1/segments"), ("GET", "/segments")),
    (("POST", "/api/v1/imports"), ("POST", "/imports")),
]


def concrete_path(rule: str) -> str:
    """A URL for a rule: 999999 for ids, the first choice of any(...), 'x' for other parameters."""

    def value(match):
        converter, arguments = match.group(1), match.group(2)
        if converter == "int":
            return "999999"
        if converter == "any":
            return arguments.strip("()").split(",")[0].strip().strip("'\"")
        return "x"

    return re.sub(r"<(?:(\w+)(\([^)]*\))?:)?(\w+)>", value, rule)


def app_routes(app) -> set[tuple[str, str]]:
    """Every (method, rule) the app answers, static files aside."""
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_the_table_covers_every_route(app):
    missing = sorted(app_routes(app) - set(ROUTES))
    stale = sorted(set(ROUTES) - app_routes(app))
    assert missing == [], f"routes nobody has decided access for: {missing}"
    assert stale == [], f"table entries for routes that no longer exist: {stale}"


def declared_roles(app) -> dict[tuple[str, str], str | None]:
    """Every (method, rule) with the role its view declares in crm.common.access (pages and API alike)."""
    from crm.common.access import needed_role

    roles = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            roles[(method, rule.rule)] = "public" if rule.endpoint.startswith("api-docs") else needed_role(view, method)
    return roles


def test_the_table_is_what_the_views_declare(app):
    """The API's roles come from the same declarations as the pages' (crm.common.access), and this table
    agrees with them for every route."""
    declared = declared_roles(app)
    differing = sorted((key, ROUTES.get(key), role) for key, role in declared.items() if ROUTES.get(key) != role)
    assert differing == []


def test_api_twins_of_pages_need_the_same_role(app):
    declared = declared_roles(app)
    assert [(api, declared[api], page, declared[page]) for api, page in TWINS if declared[api] != declared[page]] == []


def test_a_refusal_names_the_role_needed(app, as_role, users):
    page = as_role("viewer").get("/letters/review")
    assert page.status_code == 403
    assert "needs the organizer role" in page.get_data(as_text=True)
    assert "signed in as a viewer" in page.get_data(as_text=True)
    token = create_token(users["viewer"].email).secret
    api = app.test_client().get("/api/v1/signon-requests", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 403 and api.mimetype == "application/problem+json"
    assert "needs the organizer role" in api.get_json()["detail"]
    # A download the route lets viewers reach but whose content needs more says so too.
    download = as_role("viewer").get("/exports/suppressions.xlsx")
    assert download.status_code == 403 and "needs the organizer role" in download.get_data(as_text=True)


@pytest.fixture
def tokens(users):
    """A bearer token per role."""
    return {role: create_token(user.email).secret for role, user in users.items()}


def test_every_route_under_every_role(app, seeded, users, tokens):
    from tests.conftest import login

    clients = {"anonymous": app.test_client()}
    for role in ROLES:
        clients[role] = app.test_client()
        login(clients[role], users[role].email)
    failures = []
    # Logging out ends the clients' sessions: those routes go last.
    ending = {("POST", "/logout"), ("POST", "/account/logout-everywhere")}
    for (method, rule), needed in sorted(ROUTES.items(), key=lambda item: (item[0] in ending, item[0])):
        path = concrete_path(rule)
        is_api = rule.startswith("/api/")
        for who, client in clients.items():
            headers = {"Authorization": f"Bearer {tokens[who]}"} if is_api and who in tokens else {}
            client_for_call = app.test_client() if is_api else client  # the API ignores cookies; use none
            response = client_for_call.open(path, method=method, headers=headers,
                                            **({"json": {}} if is_api and method != "GET" else {}))
            code = response.status_code
            allowed = needed == "public" or (who != "anonymous" and RANK[who] >= RANK[needed])
            if allowed:
                ok = code not in (401, 403) and code < 500
            elif who == "anonymous":
                ok = code == 401 if is_api else (code == 302 and "/login" in response.headers.get("Location", ""))
            else:
                # Every refusal says which role it needs (the page or the problem+json detail), never a bare 403.
                ok = code == 403 and "needs the" in response.get_data(as_text=True)
            if not ok:
                failures.append((method, rule, who, code))
    assert failures == []


class TestCsrf:
    """Every state-changing page route refuses a form without a CSRF token (400)."""

    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_posts_without_token_are_refused(self, app, seeded, users):
        import re as _re

        client = app.test_client()
        html = client.get("/login").get_data(as_text=True)
        token = _re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
        client.post("/login", data={"email": users["admin"].email, "password": "correct horse battery",
                                    "csrf_token": token})
        # RFC 8058 one-click unsubscribe is exempt by design: mail clients post it without cookies or tokens.
        exempt = {"/u/<token>", "/t/<token>"}  # /t/: a test message's unsubscribe, which changes nothing
        failures = []
        for (method, rule), _needed in sorted(ROUTES.items()):
            if method != "POST" or rule.startswith("/api/") or rule in exempt:
                continue
            code = client.post(concrete_path(rule), data={"name": "x", "role": "admin"}).status_code
            if code != 400:
                failures.append((rule, code))
        assert failures == []
