"""Builds the WSGI application the WebDAV service serves: WsgiDAV behind the request guard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsgidav import util as wsgidav_util
from wsgidav.dir_browser import WsgiDavDirBrowser
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from core.webdav.auth import CONFIG_KEY, BasicAuthenticator, HashedDomainController
from core.webdav.guard import LISTING_KEY, RequestGuard, RequestRecord
from core.webdav.provider import AtomicFilesystemProvider


class DirBrowser(WsgiDavDirBrowser):  # type: ignore[misc]
    """WsgiDAV's HTML listing without its version (its template prints it whatever the config)."""

    def _get_context(self, environ: dict[str, Any], dav_res: Any) -> dict[str, Any]:
        context: dict[str, Any] = super()._get_context(environ, dav_res)
        context["version"] = ""
        # The guard gives this page, which is ours, the listing's policy, not the files' one.
        environ[LISTING_KEY] = True
        return context


def wsgidav_config(
    root: Path,
    *,
    readonly: bool,
    users: dict[str, str],
    anonymous: bool,
    property_manager: Any = True,
) -> dict[str, Any]:
    """The WsgiDAV settings for one share at `/` serving `root`."""
    fs_opts = {"follow_symlinks": False, "shadow_map": {}}
    return {
        "provider_mapping": {
            "/": AtomicFilesystemProvider(str(root), readonly=readonly, fs_opts=fs_opts)
        },
        "fs_dav_provider": fs_opts,
        "http_authenticator": {
            "domain_controller": HashedDomainController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        CONFIG_KEY: {"users": users, "anonymous": anonymous},
        # Dead properties and locks: Finder, Windows and Office refuse to write without them.
        "property_manager": property_manager,
        "lock_storage": True,
        # Windows Explorer sets its timestamps with PROPPATCH; WsgiDAV maps them to the file.
        "mutable_live_props": [
            "{DAV:}getlastmodified",
            "{urn:schemas-microsoft-com:}Win32LastModifiedTime",
            "{urn:schemas-microsoft-com:}Win32FileAttributes",
        ],
        "hotfixes": {"emulate_win32_lastmod": True, "re_encode_path_info": True},
        "suppress_version_info": True,
        # Read and write bodies in 256 KiB blocks, not WsgiDAV's 8 KiB: a large GET runs
        # about twice as fast (bench/webdav.py), for 256 KiB per busy thread.
        "block_size": 256 * 1024,
        # The service reports each request itself; WsgiDAV's own logging stays quiet.
        "verbose": 1,
        "logging": {"enable": False},
        # WsgiDAV's default stack without CORS (no browser app calls this share from
        # another origin) and with the version-free listing.
        "middleware_stack": [ErrorPrinter, BasicAuthenticator, DirBrowser, RequestResolver],
        "dir_browser": {
            "enable": True,
            "response_trailer": "",
            "show_user": True,
            "davmount": True,
            "ms_sharepoint_support": False,
            "libre_office_support": False,
        },
    }


def build_app(
    root: Path,
    *,
    readonly: bool,
    users: dict[str, str],
    anonymous: bool,
    on_finish: Callable[[RequestRecord], None],
    allowed_hosts: frozenset[str],
    max_body_bytes: int = 0,
    property_manager: Any = True,
) -> RequestGuard:
    """WsgiDAV for `root`, wrapped by the guard that reports each request to `on_finish`.

    `allowed_hosts` are the Host names served besides IP literals
    (core.netguard.allowed_host_names); bodies beyond `max_body_bytes` get 413 (0: no limit).
    """
    # Error pages print this module global; WsgiDAV's own CLI blanks it the same way for
    # `suppress_version_info`, which library use does not otherwise honour.
    wsgidav_util.public_wsgidav_info = "WsgiDAV"
    config = wsgidav_config(
        root,
        readonly=readonly,
        users=users,
        anonymous=anonymous,
        property_manager=property_manager,
    )
    return RequestGuard(
        WsgiDAVApp(config),
        readonly=readonly,
        on_finish=on_finish,
        allowed_hosts=allowed_hosts,
        max_body_bytes=max_body_bytes,
    )
