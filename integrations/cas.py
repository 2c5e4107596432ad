"""CAS 2.0 / 3.0 client: the login URL, ticket validation (/serviceValidate or /p3/serviceValidate) and
the server's single-logout request (a SAML LogoutRequest whose SessionIndex is the service ticket)."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

import requests
from lxml import etree

from integrations import SignOnRefused, setting

log = logging.getLogger(__name__)

CAS_NS = "http://www.yale.edu/tp/cas"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
# Attributes every CAS server adds about the authentication itself, not about the person.
_META_ATTRIBUTES = {"authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin",
                    "authenticationMethod", "successfulAuthenticationHandlers", "credentialType",
                    "samlAuthenticationStatementAuthMethod"}
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_TICKET = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")


def _base() -> str:
    return setting("CAS_URL").rstrip("/")


def version() -> str:
    value = str(setting("CAS_VERSION", "3"))
    if value not in ("2", "3"):
        raise ValueError("HALL_CAS_VERSION must be 2 or 3")
    return value


def login_url(service: str) -> str:
    return f"{_base()}/login?{urlencode({'service': service})}"


def logout_url(service: str | None = None) -> str:
    return f"{_base()}/logout" + (f"?{urlencode({'service': service})}" if service else "")


def parse_xml(content: bytes) -> etree._Element:
    """Parse a CAS response as UTF-8 whatever its declaration says (servers declare ISO-8859-1 and send
    UTF-8 Chinese names); no DTDs, entities or network access."""
    body = _DECLARATION.sub(b"", content, count=1)
    parser = etree.XMLParser(encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as err:
        raise SignOnRefused(f"CAS response is not XML: {err}") from err
    if root is None:
        raise SignOnRefused("CAS response is empty")
    return root


def validate(ticket: str, service: str) -> tuple[str, dict[str, str | list[str]]]:
    """Validate *ticket* for *service* at the CAS server; returns (principal, attributes)."""
    if not ticket or not _TICKET.match(ticket):
        raise SignOnRefused(f"malformed CAS ticket {ticket[:40]!r}")
    path = "/p3/serviceValidate" if version() == "3" else "/serviceValidate"
    try:
        response = requests.get(f"{_base()}{path}", params={"ticket": ticket, "service": service},
                                timeout=float(setting("SSO_TIMEOUT", 10)))
    except requests.RequestException as err:
        raise SignOnRefused(f"CAS server unreachable: {err}", "统一身份认证服务暂时无法访问") from err
    if response.status_code != 200:
        raise SignOnRefused(f"CAS validation answered HTTP {response.status_code}")
    return parse_validation(response.content)


def parse_validation(content: bytes) -> tuple[str, dict[str, str | list[str]]]:
    root = parse_xml(content)
    failure = root.find(f"{{{CAS_NS}}}authenticationFailure")
    if failure is not None:
        raise SignOnRefused(f"CAS refused the ticket: {failure.get('code')} {(failure.text or '').strip()}")
    success = root.find(f"{{{CAS_NS}}}authenticationSuccess")
    user = success.find(f"{{{CAS_NS}}}user") if success is not None else None
    if user is None or not (user.text or "").strip():
        raise SignOnRefused("CAS response has no authenticationSuccess/user")
    attributes: dict[str, str | list[str]] = {}
    container = success.find(f"{{{CAS_NS}}}attributes")
    for element in container if container is not None else []:
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        if name in _META_ATTRIBUTES:
            continue
        value = (element.text or "").strip()
        if name in attributes:
            previous = attributes[name]
            attributes[name] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            attributes[name] = value
    return user.text.strip(), attributes


def logout_session_index(logout_request: str) -> str:
    """The SessionIndex (the service ticket) of a CAS single-logout request."""
    root = parse_xml(logout_request.encode("utf-8"))
    if etree.QName(root).localname != "LogoutRequest":
        raise SignOnRefused("CAS logoutRequest is not a LogoutRequest")
    index = root.find(f"{{{SAMLP_NS}}}SessionIndex")
    if index is None:
        index = next((e for e in root.iter() if isinstance(e.tag, str)
                      and etree.QName(e).localname == "SessionIndex"), None)
    if index is None or not (index.text or "").strip():
        raise SignOnRefused("CAS logoutRequest has no SessionIndex")
    return index.text.strip()
