"""JupyterHub sign-in through the platform's gateway (the `gateway` component's oauth2-proxy).

Users sign in once, at the gateway; the hub then signs them in as the identity the gateway's
sign-in proxy holds for their session. The hub never trusts identity headers of the request
itself, which any pod that reaches the hub could forge: it asks oauth2-proxy's /oauth2/auth
about the request's own session cookie or bearer token, as the gateway does for every request,
and takes the identity from that answer.
"""
from urllib.parse import quote

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import List, Unicode

# What oauth2-proxy may decide from: its session cookies (one or more _oauth2_proxy* cookies)
# or a bearer token. Nothing else of the request is forwarded.
_CREDENTIAL_HEADERS = ("Cookie", "Authorization")


class GatewayLoginHandler(BaseHandler):
    """/hub/login: signs in the user of the gateway session, or sends the browser to sign in."""

    async def get(self):
        identity = await self.authenticator.gateway_identity(self.request)
        if identity is None:
            self.redirect(self.authenticator.sign_in_url(self.request.uri))
            return
        user = await self.login_user(identity)
        if user is None:
            raise web.HTTPError(403, "user %s may not use JupyterHub" % identity["name"])
        self.redirect(self.get_next_url(user))


class GatewayAuthenticator(Authenticator):
    """Signs in the users of the gateway's sign-in; no password of its own."""

    auth_url = Unicode(
        config=True,
        help="oauth2-proxy's /oauth2/auth URL: 202 with X-Auth-Request-* headers for a signed-in request",
    )
    sign_in_path = Unicode("/oauth2/start", config=True, help="Where the gateway signs users in")
    user_headers = List(
        Unicode(),
        ["X-Auth-Request-Email", "X-Auth-Request-User"],
        config=True,
        help="Headers of oauth2-proxy's answer naming the user, first present wins",
    )
    groups_header = Unicode("X-Auth-Request-Groups", config=True, help="Header of the user's groups (comma-separated)")
    admin_groups = List(Unicode(), config=True, help="Groups whose members are JupyterHub admins")
    request_timeout = 10

    auto_login = True
    login_service = "the platform sign-in"

    def get_handlers(self, app):
        return [("/login", GatewayLoginHandler)]

    def sign_in_url(self, return_to):
        return "%s?rd=%s" % (self.sign_in_path, quote(return_to, safe=""))

    async def gateway_identity(self, request):
        """The gateway's identity for this request's credentials, or None when it has none."""
        headers = {h: request.headers[h] for h in _CREDENTIAL_HEADERS if h in request.headers}
        if not headers:
            return None
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(self.auth_url, headers=headers, follow_redirects=False, request_timeout=self.request_timeout),
            raise_error=False,
        )
        if response.code != 202:
            # 401/403: no session, or not allowed. Anything else: the sign-in proxy is failing.
            if response.code not in (401, 403):
                self.log.warning("sign-in proxy %s answered %s", self.auth_url, response.code)
            return None
        name = next((response.headers.get(h) for h in self.user_headers if response.headers.get(h)), None)
        if not name:
            self.log.warning("sign-in proxy %s answered 202 without %s", self.auth_url, " or ".join(self.user_headers))
            return None
        groups = [g.strip() for g in response.headers.get(self.groups_header, "").split(",") if g.strip()]
        return {"name": name, "groups": groups}

    async def authenticate(self, handler, data):
        # data is what gateway_identity returned (GatewayLoginHandler); there is no form.
        if not data or not data.get("name"):
            return None
        # Decided at every sign-in, so that leaving the admin group takes the rights away.
        name = self.normalize_username(data["name"])
        admin = bool(set(data.get("groups", [])) & set(self.admin_groups)) or name in self.admin_users
        return {"name": name, "admin": admin}

    async def refresh_user(self, user, handler=None):
        """A hub session stays valid only while it is the gateway session's user.

        Requests with no gateway session (the notebook servers' and the culler's API tokens)
        keep the hub's own authentication.
        """
        if handler is None:
            return True
        identity = await self.gateway_identity(handler.request)
        if identity is None:
            return True
        return self.normalize_username(identity["name"]) == user.name
