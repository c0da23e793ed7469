"""Scenes that live elsewhere: URLs and GDAL virtual paths, and the GDAL settings to read them.

A scene location is a local path or a remote one: ``https://`` / ``http://`` URLs, ``s3://bucket/key``
and GDAL's own ``/vsicurl/``, ``/vsis3/``, ``/vsigs/``, ``/vsiaz/`` paths. Remote locations stay
strings (``pathlib.Path`` would fold the ``//`` of a URL); :func:`gdal_path` gives the path GDAL
opens. Cloud-optimised GeoTIFFs are read by HTTP range requests, tile by tile, under
:func:`remote_gdal_options`: no directory listing on open, consecutive ranges merged, retries
with backoff on transient HTTP errors (429, 5xx) and a bounded in-memory cache; beyond GDAL's own
retries, :mod:`~fsanet_geo.geo.pixels.retry` retries dropped connections, truncated replies and
5xx answers within a time bound per scene. :func:`classify_remote_error` tells those apart from
refused credentials and missing scenes.

Credentials come only from the environment or GDAL's configuration (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_NO_SIGN_REQUEST``,
``GDAL_HTTP_HEADERS``...), which GDAL reads itself; this module never reads or logs them, and
:func:`display_location` drops user names, passwords and query strings (signed URLs) from
every location shown in messages or written to a resume journal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SceneLocation = str | Path
"""A scene: a local path (``Path``) or a remote location (``str``, see :func:`is_remote`)."""


@dataclass(frozen=True)
class NamedLocation:
    """A scene location with the name its detections carry (e.g. a STAC item's id)."""

    location: SceneLocation
    name: str


SceneInput = str | os.PathLike[str] | NamedLocation
"""What callers may give as a scene: a path, a URL / GDAL path, or a :class:`NamedLocation`."""

_URL_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}
_VSI_REMOTE = ("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/", "/vsioss/", "/vsiswift/")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

REMOTE_GDAL_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no listing of the "folder" of a URL
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # neighbouring blocks in one request
    "GDAL_HTTP_MULTIPLEX": "YES",  # HTTP/2 multiplexing where the server offers it
    "GDAL_HTTP_MAX_RETRY": "3",  # per request, on 429, 500, 502, 503, 504 (then retry.py's bounded loop)
    "GDAL_HTTP_RETRY_DELAY": "0.5",  # seconds, doubled at each retry
    "GDAL_HTTP_TIMEOUT": "60",  # seconds per request
    "VSI_CACHE": "TRUE",  # per-file cache of fetched ranges ...
    "VSI_CACHE_SIZE": str(25 * 2**20),  # ... bounded, bytes
    "CPL_VSIL_CURL_CHUNK_SIZE": str(64 * 2**10),  # bytes per range request (GDAL's minimum is 16 KiB)
    "CPL_VSIL_NETWORK_STATS_ENABLED": "YES",  # bytes fetched, for progress (see network_stats.py)
}
"""GDAL configuration for remote scenes; a variable already set in the environment wins."""


def is_remote(location: SceneInput) -> bool:
    """True for a URL (``https://``, ``s3://`` ...) or a remote GDAL virtual path (``/vsicurl/`` ...)."""
    if isinstance(location, NamedLocation):
        return is_remote(location.location)
    if isinstance(location, os.PathLike):
        return False
    return bool(_URL.match(location)) or location.startswith(_VSI_REMOTE)


def as_location(location: SceneInput) -> SceneLocation:
    """``location`` as a :data:`SceneLocation`: remote ones stay strings, local ones become ``Path``."""
    if isinstance(location, NamedLocation):
        return location.location
    if isinstance(location, Path):
        return location
    text = os.fspath(location)
    if is_remote(text):
        scheme = _URL.match(text)
        if scheme and scheme.group(1).lower() not in _URL_SCHEMES and scheme.group(1).lower() != "file":
            from fsanet_geo.errors import RasterError

            raise RasterError(f"scene {display_location(text)}: unsupported URL scheme {scheme.group(1)!r} "
                              f"(use {', '.join(s + '://' for s in _URL_SCHEMES)} or a /vsi path)")
        if scheme and scheme.group(1).lower() == "file":
            return Path(urlsplit(text).path)
        return text
    return Path(text)


def gdal_path(location: SceneLocation) -> str:
    """The path GDAL opens: ``https://h/a.tif`` -> ``/vsicurl/https://h/a.tif``, ``s3://b/k`` -> ``/vsis3/b/k``."""
    if isinstance(location, Path):
        return str(location)
    match = _URL.match(location)
    if not match:
        return location
    scheme = match.group(1).lower()
    prefix = _URL_SCHEMES[scheme]
    if prefix == "/vsicurl/":
        return prefix + location
    return prefix + location[match.end():]


def display_location(location: str | os.PathLike[str]) -> str:
    """``location`` safe to show or store: no user, password or query string (which may sign it)."""
    if isinstance(location, os.PathLike):
        return os.fspath(location)
    url = _strip_vsi(location)
    prefix = location[: len(location) - len(url)]
    if not _URL.match(url):
        return location
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = "?..." if parts.query else ""
    return prefix + urlunsplit((parts.scheme, netloc, parts.path, "", "")) + query


def location_name(location: SceneInput) -> str:
    """The name of a scene, its ``scene`` value: a :class:`NamedLocation`'s name, else the file name
    (last path part, without a URL's query string)."""
    if isinstance(location, NamedLocation):
        return location.name
    if isinstance(location, os.PathLike):
        return Path(location).name
    if not is_remote(location):
        return Path(location).name
    url = _strip_vsi(location)
    path = urlsplit(url).path if _URL.match(url) else url
    return PurePosixPath(path).name or display_location(location)


def _strip_vsi(location: str) -> str:
    """A ``/vsicurl/https://...``-style path without its prefix when a URL follows it."""
    prefix = next((p for p in _VSI_REMOTE if location.startswith(p) and _URL.match(location[len(p):])), "")
    return location[len(prefix):]


def scene_label(scene: SceneInput) -> str:
    """How a scene is named to the user: its location (without credentials), after its name if it has one."""
    if isinstance(scene, NamedLocation):
        return f"{scene.name} ({display_location(scene.location)})"
    return display_location(scene)


def location_stem(location: SceneInput) -> str:
    """:func:`location_name` without its extension (names per-scene outputs); a :class:`NamedLocation`'s
    whole name (STAC ids may hold dots), with path separators replaced."""
    if isinstance(location, NamedLocation):
        return location.name.replace("/", "_").replace("\\", "_")
    return PurePosixPath(location_name(location)).stem


def file_identity(location: SceneLocation) -> dict[str, Any]:
    """What identifies a scene (or AOI) file in a resume journal: local path, size and mtime; for a
    remote one only its displayed location (no cheap identity beyond it, never its credentials)."""
    if is_remote(location):
        return {"path": display_location(location)}
    st = Path(location).stat()
    return {"path": str(Path(location).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def remote_gdal_options(environ: dict[str, str] | None = None) -> dict[str, str]:
    """:data:`REMOTE_GDAL_DEFAULTS` less the variables set in ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in REMOTE_GDAL_DEFAULTS.items() if k not in env}


_CREDENTIAL_WORDS = ("InvalidAccessKeyId", "Access Key Id you provided does not exist", "SignatureDoesNotMatch",
                     "signature we calculated does not match", "ExpiredToken", "token has expired",
                     "InvalidToken", "AccessDenied", "Access Denied", "AuthenticationFailed", "Unauthorized")
_TRANSIENT_CODES = (0, 408, 429, 500, 502, 503, 504)
_CONNECTION_WORDS = ("response_code=0", "curl error", "timed out", "Connection reset", "Connection refused",
                     "transfer closed", "Recv failure", "Empty reply")
_UNSURE_WORDS = ("not recognized as being in a supported file format", "TIFFRead", "IReadBlock failed",
                 "Read failed", "failed with response_code")


@dataclass(frozen=True)
class RemoteFault:
    """What a GDAL error on a remote scene means: ``kind`` is "credentials", "not_found",
    "transient" (5xx, 429, a dropped connection: retried), "unsure" (a failed read or open with no
    status, e.g. a truncated reply: retried a few times) or "other"; ``status`` the HTTP status
    when GDAL named one; ``words`` the provider's own message (S3's error code and text) if any."""

    kind: str
    status: int | None
    words: str | None = None


def classify_remote_error(detail: str) -> RemoteFault:
    """:class:`RemoteFault` of GDAL's error text ``detail`` about a remote scene. Credential errors
    come first: S3 says "The AWS Access Key Id you provided does not exist in our records" of an
    unknown key, which is not a missing scene."""
    status = re.search(r"(?:HTTP (?:response )?code|response_code)[:= ]+(\d{1,3})", detail, re.IGNORECASE)
    code = int(status.group(1)) if status else None
    words = next((w for w in _CREDENTIAL_WORDS if w.lower() in detail.lower()), None)
    if words is not None or code in (401, 403):
        said = [m.strip() for m in re.findall(r"<(?:Code|Message)>(.*?)</(?:Code|Message)>", detail)]
        rest = (detail[: status.start()] + detail[status.end():]) if status else detail
        return RemoteFault("credentials", code, ": ".join(said) or rest.strip(" -:.") or None)
    if code == 404 or "does not exist" in detail.lower() or "no such file" in detail.lower():
        return RemoteFault("not_found", code)
    if code in _TRANSIENT_CODES or any(w.lower() in detail.lower() for w in _CONNECTION_WORDS):
        return RemoteFault("transient", code)
    if code is None and any(w.lower() in detail.lower() for w in _UNSURE_WORDS):
        return RemoteFault("unsure", None)
    return RemoteFault("other", code)


def describe_open_error(location: str, detail: str) -> str:
    """One line for a remote scene GDAL could not open, naming the URL and, when known, the HTTP
    status; refused credentials are named as such, in the provider's words."""
    shown = display_location(location)
    fault = classify_remote_error(detail)
    code = fault.status
    if fault.kind == "credentials":
        said = "; ".join(w for w in (f"HTTP {code}" if code else "", fault.words or "") if w)
        return (f"scene {shown}: the server refused the credentials ({said or 'no reason given'}); check them in the "
                "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or "
                "AWS_NO_SIGN_REQUEST=YES for a public bucket)")
    if fault.kind == "not_found":
        return f"scene {shown} was not found (HTTP 404)" if code == 404 else f"scene {shown} was not found"
    if code is not None and code != 0:
        return f"scene {shown} could not be fetched (HTTP {code}) after retries"
    return f"scene {shown} could not be opened ({detail})"


def open_raster(location: SceneLocation) -> Any:
    """``rasterio.open`` of a scene location; a remote one under :func:`remote_gdal_options`."""
    import rasterio

    if not is_remote(location):
        return rasterio.open(location)
    with rasterio.Env(**remote_gdal_options()):
        return rasterio.open(gdal_path(location))
