"""Checks kfdeploy_gateway_auth.py (the jupyterhub component's authenticator behind the gateway)
against stand-ins for the JupyterHub, tornado and traitlets APIs it uses, since JupyterHub itself
cannot run here. Usage: python3 THIS_FILE DIR_WITH_THE_RENDERED_MODULE. Exits non-zero on failure.
"""
import asyncio
import logging
import sys
import types


def module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


# traitlets: a trait is its default value (the checks set values as attributes).
def _unicode(default_value="", **_):
    return default_value


def _list(_trait=None, default_value=None, **_):
    return list(default_value or [])


module("traitlets", Unicode=_unicode, List=_list)


class Authenticator:
    admin_users = set()
    log = logging.getLogger("authenticator")

    def normalize_username(self, name):  # JupyterHub's default: lower case
        return name.lower()


class BaseHandler:
    pass


class HTTPError(Exception):
    def __init__(self, code, message=""):
        super().__init__(message)
        self.code = code


module("jupyterhub")
module("jupyterhub.auth", Authenticator=Authenticator)
module("jupyterhub.handlers", BaseHandler=BaseHandler)
module("tornado")
module("tornado.web", HTTPError=HTTPError)
sys.modules["tornado"].web = sys.modules["tornado.web"]


class HTTPRequest:
    def __init__(self, url, headers=None, follow_redirects=True, request_timeout=None):
        self.url, self.headers = url, dict(headers or {})
        self.follow_redirects, self.request_timeout = follow_redirects, request_timeout


class Response:
    def __init__(self, code, headers=None):
        self.code, self.headers = code, dict(headers or {})


class SignInProxy:
    """oauth2-proxy's /oauth2/auth as scripted by each check; records what the hub sent."""

    answer = Response(401)
    requests = []

    async def fetch(self, request, raise_error=True):
        assert raise_error is False, "a 401 must not raise"
        SignInProxy.requests.append(request)
        return SignInProxy.answer


module("tornado.httpclient", AsyncHTTPClient=SignInProxy, HTTPRequest=HTTPRequest)

sys.path.insert(0, sys.argv[1])
import kfdeploy_gateway_auth as auth  # noqa: E402

AUTH_URL = "http://oauth2-proxy.kubeflow.svc:4180/oauth2/auth"


def authenticator(admin_users=()):
    a = auth.GatewayAuthenticator()
    a.auth_url = AUTH_URL
    a.admin_groups = ["admins"]
    a.admin_users = set(admin_users)
    return a


class Request:
    def __init__(self, headers, uri="/hub/login?next=%2Fhub%2Fspawn"):
        self.headers, self.uri = headers, uri


def run(coro):
    return asyncio.run(coro)


def check(name, cond, detail=""):
    if not cond:
        sys.exit("FAIL %s %s" % (name, detail))


# Identity headers the request carries itself are never taken, and without credentials the
# sign-in proxy is not even asked.
SignInProxy.requests = []
got = run(authenticator().gateway_identity(Request({"X-Auth-Request-User": "mallory", "X-Auth-Request-Groups": "admins"})))
check("forged headers alone", got is None, repr(got))
check("no credentials: no request", SignInProxy.requests == [], repr(SignInProxy.requests))

# A session cookie: the proxy's answer names the user; only the credentials are forwarded.
SignInProxy.requests = []
SignInProxy.answer = Response(202, {"X-Auth-Request-Email": "Alice@Example.com", "X-Auth-Request-User": "1234", "X-Auth-Request-Groups": "ml, admins"})
got = run(authenticator().gateway_identity(Request({"Cookie": "_oauth2_proxy=abc", "X-Auth-Request-Email": "mallory@example.com"})))
check("cookie identity", got == {"name": "Alice@Example.com", "groups": ["ml", "admins"]}, repr(got))
sent = SignInProxy.requests[0]
check("asked the sign-in proxy", sent.url == AUTH_URL, sent.url)
check("forwarded only the credentials", sent.headers == {"Cookie": "_oauth2_proxy=abc"}, repr(sent.headers))
check("redirects not followed", sent.follow_redirects is False)

# A bearer token (programs) is forwarded as well; the user header is the fallback name.
SignInProxy.requests = []
SignInProxy.answer = Response(202, {"X-Auth-Request-User": "bob"})
got = run(authenticator().gateway_identity(Request({"Authorization": "Bearer eyJ..."})))
check("bearer identity", got == {"name": "bob", "groups": []}, repr(got))
check("forwarded the token", SignInProxy.requests[0].headers == {"Authorization": "Bearer eyJ..."}, repr(SignInProxy.requests[0].headers))

# No session, a refusal, a failing proxy, or an answer without a name: nobody.
for code, headers in ((401, {}), (403, {"X-Auth-Request-User": "alice"}), (500, {}), (202, {})):
    SignInProxy.answer = Response(code, headers)
    got = run(authenticator().gateway_identity(Request({"Cookie": "_oauth2_proxy=abc"})))
    check("answer %d %s" % (code, headers), got is None, repr(got))

# Admins: members of the admin groups or named in admin_users; decided at every sign-in.
got = run(authenticator().authenticate(None, {"name": "Alice@Example.com", "groups": ["admins"]}))
check("admin by group", got == {"name": "alice@example.com", "admin": True}, repr(got))
got = run(authenticator().authenticate(None, {"name": "carol", "groups": ["ml"]}))
check("not admin", got == {"name": "carol", "admin": False}, repr(got))
got = run(authenticator(admin_users=["carol"]).authenticate(None, {"name": "carol", "groups": []}))
check("admin by name", got == {"name": "carol", "admin": True}, repr(got))
check("no identity", run(authenticator().authenticate(None, None)) is None)


# The hub session follows the gateway session: another gateway user ends it.
class User:
    name = "alice@example.com"


class Handler:
    def __init__(self, headers):
        self.request = Request(headers)


SignInProxy.answer = Response(202, {"X-Auth-Request-Email": "bob@example.com"})
check("other gateway user", run(authenticator().refresh_user(User(), Handler({"Cookie": "c"}))) is False)
SignInProxy.answer = Response(202, {"X-Auth-Request-Email": "ALICE@example.com"})
check("same gateway user", run(authenticator().refresh_user(User(), Handler({"Cookie": "c"}))) is True)
SignInProxy.answer = Response(401)
check("hub API token", run(authenticator().refresh_user(User(), Handler({"Authorization": "token xyz"}))) is True)
check("no handler", run(authenticator().refresh_user(User(), None)) is True)


# /hub/login: signs the gateway's user in, or sends the browser to the gateway's sign-in.
class Login(auth.GatewayLoginHandler):
    def __init__(self, headers, login_result):
        self.authenticator = authenticator()
        self.request = Request(headers)
        self.login_result = login_result
        self.logged_in, self.redirected = None, None

    async def login_user(self, data):
        self.logged_in = data
        return self.login_result

    def get_next_url(self, user):
        return "/hub/spawn"

    def redirect(self, url):
        self.redirected = url


h = Login({}, None)
run(h.get())
check("sign in first", h.redirected == "/oauth2/start?rd=%2Fhub%2Flogin%3Fnext%3D%252Fhub%252Fspawn" and h.logged_in is None, repr(h.redirected))
SignInProxy.answer = Response(202, {"X-Auth-Request-Email": "alice@example.com"})
h = Login({"Cookie": "c"}, User())
run(h.get())
check("signed in", h.logged_in == {"name": "alice@example.com", "groups": []} and h.redirected == "/hub/spawn", repr((h.logged_in, h.redirected)))
h = Login({"Cookie": "c"}, None)
try:
    run(h.get())
    check("refused user", False, "no error")
except HTTPError as e:
    check("refused user", e.code == 403, repr(e.code))

print("ok")
