"""moto's server as the local stack runs it (argv: host, port).

Four changes to moto, each standing in for what AWS does and moto does not:

1. One request at a time (Werkzeug's `threaded` off). moto's DynamoDB
   transactions are atomic only then, as DynamoDB's are.
2. A user pool's token endpoint, `POST /oauth2/token` with the
   `client_credentials` grant, as Cognito serves it on the pool's domain
   (form body, client authenticated with HTTP Basic or in the body). It
   answers `{"access_token", "expires_in", "token_type"}` or Cognito's
   `{"error": ...}` codes. Tokens are signed with the pool's own key, so
   they verify against moto's JWKS like every other token of the pool.
3. Access tokens from `InitiateAuth` carry the custom scopes the app client
   is allowed (`AllowedOAuthScopes`), as the ones a customer obtains through
   the pool's managed login (the OAuth code flow, which moto cannot serve)
   do; moto otherwise gives them only `aws.cognito.signin.user.admin`.
4. `InitiateAuth` and `AdminInitiateAuth` refuse what Cognito refuses: a flow the app client does
   not allow (`ExplicitAuthFlows`, by default SRP, custom and refresh only)
   is an `InvalidParameterException`; a client with a secret needs
   `SECRET_HASH` (Base64 of HMAC-SHA256 over username + client id, keyed
   with the secret), else `NotAuthorizedException`. moto checks neither, so
   anyone knowing a machine client's id could sign a user in through it and
   get its scopes.
"""

import base64
import hashlib
import hmac
import json
import sys
import time
import uuid
from urllib.parse import parse_qs

import moto.server as server
from joserfc import jwt
from moto.cognitoidp import models as cognito
from moto.cognitoidp.exceptions import InvalidParameterException, NotAuthorizedError

ACCOUNT = "123456789012"


def _pools():
    for region, backend in cognito.cognitoidp_backends[ACCOUNT].items():
        if region == "global":
            continue
        yield from backend.user_pools.values()


def _find_client(client_id):
    for pool in _pools():
        client = pool.clients.get(client_id)
        if client is not None:
            return pool, client
    return None, None


def _answer(start_response, status, body):
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _token(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    form = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, secret = base64.b64decode(auth[6:]).decode().split(":", 1)
        except ValueError:
            return _answer(start_response, "400 Bad Request", {"error": "invalid_client"})
    if form.get("grant_type") != "client_credentials":
        return _answer(start_response, "400 Bad Request", {"error": "unsupported_grant_type"})
    pool, client = _find_client(client_id or "")
    if client is None or not client.generate_secret or not hmac.compare_digest(secret or "", client.secret):
        return _answer(start_response, "400 Bad Request", {"error": "invalid_client"})
    config = client.extended_config
    if "client_credentials" not in (config.get("AllowedOAuthFlows") or []):
        return _answer(start_response, "400 Bad Request", {"error": "unauthorized_client"})
    allowed = config.get("AllowedOAuthScopes") or []
    requested = form.get("scope", "").split() or allowed
    if any(scope not in allowed for scope in requested):
        return _answer(start_response, "400 Bad Request", {"error": "invalid_scope"})
    now = int(time.time())
    claims = {
        "sub": client_id,
        "token_use": "access",
        "scope": " ".join(requested),
        "auth_time": now,
        "iss": f"https://cognito-idp.{pool.region}.amazonaws.com/{pool.id}",
        "exp": now + 3600,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
    }
    token = jwt.encode({"kid": "dummy", "alg": "RS256"}, claims, pool.json_web_key)
    return _answer(start_response, "200 OK", {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})


def _with_token_endpoint(app):
    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/oauth2/token" and environ.get("REQUEST_METHOD") == "POST":
            return _token(environ, start_response)
        return app(environ, start_response)

    return wsgi


_create_jwt = cognito.CognitoIdpUserPool.create_jwt


def _create_jwt_with_scopes(self, client_id, username, token_use, expires_in=60 * 60, extra_data=None):
    client = self.clients.get(client_id)
    scopes = (client.extended_config.get("AllowedOAuthScopes") if client else None) or []
    if token_use == "access" and scopes:
        extra_data = {**(extra_data or {}), "scope": " ".join(scopes)}
    return _create_jwt(self, client_id, username, token_use, expires_in, extra_data)


cognito.CognitoIdpUserPool.create_jwt = _create_jwt_with_scopes

# Cognito's default when a client names no ExplicitAuthFlows.
_DEFAULT_FLOWS = ["ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]

_initiate_auth = cognito.CognitoIdpBackend.initiate_auth


def _refuse_as_cognito(client, client_id, flow, auth_parameters):
    enabled = {f.removeprefix("ALLOW_") for f in client.extended_config.get("ExplicitAuthFlows") or _DEFAULT_FLOWS}
    # The legacy names of the flows the same permission allows.
    allowed = {"REFRESH_TOKEN": "REFRESH_TOKEN_AUTH", "ADMIN_NO_SRP_AUTH": "ADMIN_USER_PASSWORD_AUTH"}.get(flow, flow)
    if allowed not in enabled:
        raise InvalidParameterException(f"{flow} flow not enabled for this client")
    if client.generate_secret:
        parameters = auth_parameters or {}
        username = parameters.get("USERNAME", "")
        expected = base64.b64encode(
            hmac.new(client.secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(parameters.get("SECRET_HASH", ""), expected):
            raise NotAuthorizedError(f"Client {client_id} is configured for secret but secret was not received")


def _initiate_auth_as_cognito(self, client_id, auth_flow, auth_parameters):
    for pool in self.user_pools.values():
        client = pool.clients.get(client_id)
        if client is not None:
            _refuse_as_cognito(client, client_id, auth_flow, auth_parameters)
    return _initiate_auth(self, client_id, auth_flow, auth_parameters)


_admin_initiate_auth = cognito.CognitoIdpBackend.admin_initiate_auth


def _admin_initiate_auth_as_cognito(self, user_pool_id, client_id, auth_flow, auth_parameters):
    pool = self.user_pools.get(user_pool_id)
    client = pool.clients.get(client_id) if pool is not None else None
    if client is not None:
        _refuse_as_cognito(client, client_id, auth_flow, auth_parameters)
    return _admin_initiate_auth(self, user_pool_id, client_id, auth_flow, auth_parameters)


cognito.CognitoIdpBackend.initiate_auth = _initiate_auth_as_cognito
cognito.CognitoIdpBackend.admin_initiate_auth = _admin_initiate_auth_as_cognito

_serve = server.run_simple


def _run_simple(host, port, app, *args, **kwargs):
    return _serve(host, port, _with_token_endpoint(app), *args, **{**kwargs, "threaded": False})


server.run_simple = _run_simple
sys.argv = ["moto_server", "-H", sys.argv[1], "-p", sys.argv[2]]
server.main()
