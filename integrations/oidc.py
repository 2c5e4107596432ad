"""OpenID Connect relying party built on Authlib: discovery, authorization code with PKCE (S256), state and
nonce, ID-token validation against the provider's JWKS (issuer, audience, expiry, nonce), userinfo and
RP-initiated logout."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from urllib.parse import urlencode

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from integrations import SignOnRefused, setting

log = logging.getLogger(__name__)

_cache: dict[str, tuple[float, dict, KeySet | None]] = {}
_lock = threading.Lock()
DISCOVERY_TTL = 600.0


def _timeout() -> float:
    return float(setting("SSO_TIMEOUT", 10))


def issuer() -> str:
    return setting("OIDC_ISSUER").rstrip("/")


def _get_json(url: str) -> dict:
    try:
        response = requests.get(url, timeout=_timeout(), headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as err:
        raise SignOnRefused(f"OIDC provider request {url} failed: {err}", "统一身份认证服务暂时无法访问") from err


def metadata(refresh: bool = False) -> dict:
    """The provider's discovery document (cached); its `issuer` must be the configured one exactly."""
    iss = issuer()
    with _lock:
        cached = _cache.get(iss)
        if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
    document = _get_json(f"{iss}/.well-known/openid-configuration")
    if document.get("issuer", "").rstrip("/") != iss:
        raise SignOnRefused(f"discovery issuer {document.get('issuer')!r} is not the configured {iss!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not document.get(key):
            raise SignOnRefused(f"discovery document lacks {key}")
    with _lock:
        _cache[iss] = (time.monotonic(), document, None)
    return document


def _keys(refresh: bool = False) -> KeySet:
    document = metadata()
    iss = issuer()
    with _lock:
        cached = _cache.get(iss)
        if cached and cached[2] is not None and not refresh:
            return cached[2]
    keys = KeySet.import_key_set(_get_json(document["jwks_uri"]))
    with _lock:
        _cache[iss] = (_cache[iss][0], document, keys)
    return keys


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _client(redirect_uri: str | None = None) -> OAuth2Session:
    document = metadata()
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return OAuth2Session(client_id=setting("OIDC_CLIENT_ID"), client_secret=setting("OIDC_CLIENT_SECRET"),
                         scope=setting("OIDC_SCOPES", "openid profile email"), redirect_uri=redirect_uri,
                         token_endpoint_auth_method=auth_method, code_challenge_method="S256")


def begin(redirect_uri: str) -> tuple[str, dict]:
    """The authorization URL to send the browser to, and what the callback must check (keep it in the
    session): state, nonce and the PKCE code verifier."""
    pending = {"state": generate_token(32), "nonce": generate_token(32), "verifier": generate_token(64),
               "issuer": issuer(), "redirect_uri": redirect_uri}
    client = _client(redirect_uri)
    url, _ = client.create_authorization_url(metadata()["authorization_endpoint"], state=pending["state"],
                                             nonce=pending["nonce"], code_verifier=pending["verifier"])
    return url, pending


def finish(args: dict, pending: dict | None) -> tuple[dict, str]:
    """Check the authorization response against *pending*, redeem the code, validate the ID token and read
    userinfo; returns (claims, raw ID token)."""
    if not pending:
        raise SignOnRefused("OIDC callback without a pending sign-in in this session")
    if args.get("error"):
        raise SignOnRefused(f"OIDC provider answered error {args.get('error')}: {args.get('error_description')}")
    if not hmac.compare_digest(str(args.get("state", "")), pending["state"]):
        raise SignOnRefused("OIDC state does not match")
    if pending.get("issuer") != issuer():
        raise SignOnRefused("OIDC issuer changed during sign-in")
    document = metadata()
    # RFC 9207: a provider that announces the iss parameter must send its own issuer (mix-up defence).
    if "iss" in args or document.get("authorization_response_iss_parameter_supported"):
        if str(args.get("iss", "")).rstrip("/") != issuer():
            raise SignOnRefused(f"OIDC authorization response from issuer {args.get('iss')!r}")
    code = args.get("code")
    if not code:
        raise SignOnRefused("OIDC callback without a code")
    client = _client(pending["redirect_uri"])
    try:
        token = client.fetch_token(document["token_endpoint"], grant_type="authorization_code", code=code,
                                   code_verifier=pending["verifier"], timeout=_timeout())
    except Exception as err:  # noqa: BLE001 - Authlib raises OAuthError, requests its own
        raise SignOnRefused(f"OIDC code exchange failed: {err}") from err
    raw = token.get("id_token")
    if not raw:
        raise SignOnRefused("OIDC token response has no id_token")
    claims = validate_id_token(raw, pending["nonce"])
    if document.get("userinfo_endpoint") and token.get("access_token"):
        try:
            response = client.get(document["userinfo_endpoint"], timeout=_timeout())
            response.raise_for_status()
            info = response.json()
        except Exception as err:  # noqa: BLE001
            raise SignOnRefused(f"OIDC userinfo failed: {err}") from err
        if info.get("sub") != claims["sub"]:
            raise SignOnRefused("OIDC userinfo sub differs from the ID token's")
        claims = {**info, **claims}
    return claims, raw


def validate_id_token(raw: str, nonce: str | None) -> dict:
    """Signature by one of the provider's keys, issuer, audience (and azp), expiry, issued-at and nonce."""
    algorithms = metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in algorithms if a != "none"]
    try:
        try:
            token = jwt.decode(raw, _keys(), algorithms=algorithms)
        except JoseError:
            token = jwt.decode(raw, _keys(refresh=True), algorithms=algorithms)  # the provider rotated keys
        client_id = setting("OIDC_CLIENT_ID")
        registry = jwt.JWTClaimsRegistry(
            leeway=int(setting("OIDC_LEEWAY", 60)),
            iss={"essential": True, "value": issuer()},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            **({"nonce": {"essential": True, "value": nonce}} if nonce is not None else {}),
        )
        registry.validate(token.claims)
    except (JoseError, ValueError) as err:
        raise SignOnRefused(f"OIDC ID token refused: {err.__class__.__name__}: {err}") from err
    claims = token.claims
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audience) > 1 and claims.get("azp") != client_id:
        raise SignOnRefused("OIDC ID token has several audiences and azp is not this client")
    return dict(claims)


def end_session_url(id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """RP-initiated logout at the provider, when it has an end_session_endpoint."""
    try:
        endpoint = metadata().get("end_session_endpoint")
    except SignOnRefused:
        return None
    if not endpoint:
        return None
    params = {"client_id": setting("OIDC_CLIENT_ID"), "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
