"""A WsgiDAV filesystem provider whose PUT is atomic: a file appears only once complete."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from typing import IO, Any

from wsgidav import util
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_FORBIDDEN, DAVError
from wsgidav.dav_provider import DAVNonCollection
from wsgidav.fs_dav_provider import FileResource, FilesystemProvider, FolderResource

# Uploads stream into a hidden sibling with this prefix and are renamed over the target
# when the body is complete, so readers (GET, the inbox) never see half a file.
UPLOAD_PREFIX = ".heroagent-upload-"


def is_partial_upload(name: str) -> bool:
    """True for the hidden file an unfinished PUT is writing."""
    return name.startswith(UPLOAD_PREFIX)


class AtomicFile(FileResource):  # type: ignore[misc]
    """A file whose new content is written beside it and renamed into place."""

    def __init__(
        self, path: str, environ: dict[str, Any], file_path: str, *, exists: bool = True
    ) -> None:
        if exists:
            super().__init__(path, environ, file_path)
        else:
            # A PUT target that does not exist yet: nothing is created on disk until the
            # upload is complete (WsgiDAV's own provider creates an empty file first).
            DAVNonCollection.__init__(self, path, environ)
            self._file_path = file_path
            now = int(time.time())
            self.file_stat = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, 0, now, now, now))
            self.name = os.path.basename(file_path)
        self._temp_path: str | None = None
        self._temp_file: IO[bytes] | None = None

    def begin_write(self, *, content_type: str | None = None) -> IO[bytes]:
        """Open a hidden sibling for the upload."""
        if self.provider.readonly:
            raise DAVError(HTTP_FORBIDDEN)
        directory, name = os.path.split(self._file_path)
        temp_path = os.path.join(directory, f"{UPLOAD_PREFIX}{secrets.token_hex(6)}-{name}")
        # 0o666 through the umask, as open() would give the target itself.
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        self._temp_path = temp_path
        self._temp_file = os.fdopen(fd, "wb")
        return self._temp_file

    def end_write(self, *, with_errors: bool) -> None:
        """Rename the finished upload over the target, or drop a failed one."""
        temp_path, temp_file = self._temp_path, self._temp_file
        self._temp_path = self._temp_file = None
        if temp_path is None:
            return
        if temp_file is not None and not temp_file.closed:
            temp_file.close()
        short = None if with_errors else self._short_upload(temp_path)
        if with_errors or short:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_path)
            if short:
                raise DAVError(HTTP_BAD_REQUEST, short)
            return
        with contextlib.suppress(FileNotFoundError):
            # Keep the mode of the file being replaced.
            os.chmod(temp_path, stat.S_IMODE(os.stat(self._file_path).st_mode))
        os.replace(temp_path, self._file_path)
        self.file_stat = os.stat(self._file_path)

    def _short_upload(self, temp_path: str) -> str | None:
        """Why an upload is incomplete, or None.

        cheroot ends the body quietly when the client disconnects early, so WsgiDAV would
        keep a truncated file as if it were whole (mar10/wsgidav#6, closed unfixed);
        compare with Content-Length instead.
        """
        expected = self.environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked or not expected.isdigit():
            return None
        received = os.stat(temp_path).st_size
        if received == int(expected):
            return None
        return f"upload ended early: {received} of {expected} bytes arrived"


class Folder(FolderResource):  # type: ignore[misc]
    """A folder that hides unfinished uploads and defers creating PUT targets."""

    def get_member_names(self) -> list[str]:
        """Member names, without unfinished uploads."""
        names: list[str] = super().get_member_names()
        return [name for name in names if not is_partial_upload(name)]

    def create_empty_resource(self, name: str) -> AtomicFile:
        """For PUT, a resource that exists once its body is written; else an empty file."""
        if self.environ.get("REQUEST_METHOD") != "PUT":
            resource: AtomicFile = super().create_empty_resource(name)
            return resource
        if self.provider.readonly:
            raise DAVError(HTTP_FORBIDDEN)
        path = util.join_uri(self.path, name)
        file_path = self.provider._loc_to_file_path(path, self.environ)
        return AtomicFile(path, self.environ, file_path, exists=False)


class AtomicFilesystemProvider(FilesystemProvider):  # type: ignore[misc]
    """WsgiDAV's filesystem provider with atomic uploads."""

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> AtomicFile | Folder | None:
        """The resource at `path`, or None; symlinks are refused, as in WsgiDAV."""
        self._count_get_resource_inst += 1
        file_path = self._loc_to_file_path(path, environ)
        if not os.path.exists(file_path):
            return None
        if not self.fs_opts.get("follow_symlinks") and os.path.islink(file_path):
            raise DAVError(HTTP_FORBIDDEN, "Symlink support is disabled")
        if os.path.isdir(file_path):
            return Folder(path, environ, file_path)
        return AtomicFile(path, environ, file_path)
