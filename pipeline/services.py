"""The study storage and tracking services: their URLs as they may be shown (every password
masked), and the error raised when one cannot be reached or used."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

# query parameters libpq, psycopg and SQLAlchemy drivers read a secret from
SECRET_PARAMS = {"password", "passwd", "pwd", "passfile", "sslpassword", "token", "secret",
                 "access_token", "api_key", "apikey"}
MASK = "***"


class ServiceError(RuntimeError):
    """A study storage or tracking server cannot be reached or used; the message says which."""


def from_params(url: str, key: str, variable: str) -> str:
    """A service URL set in params.yaml, refused if it carries a password: params.yaml is
    committed, and dvc.lock (also committed, pushed with the DVC outputs) records the params
    of the stages that read them."""
    if masked(url) != url:
        raise ServiceError(f"{key} in params.yaml holds a password ({masked(url)}); params.yaml "
                           f"and dvc.lock are committed: set {variable} in the environment "
                           "instead, or keep the password in PGPASSWORD or ~/.pgpass")
    return url


def masked(url: str) -> str:
    """`url` for files, logs and errors: the userinfo password and any secret query parameter
    (`?password=`) replaced by ***; also `password=...` in a libpq key/value string."""
    if "://" not in url:
        return re.sub(r"(?i)\b(password|passwd|pwd)\s*=\s*('[^']*'|\S+)", rf"\1={MASK}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs],
                          safe="*/:")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))
