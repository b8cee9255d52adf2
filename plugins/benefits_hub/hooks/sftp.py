"""Vendor SFTP folders, on the SFTP provider's ``SFTPHook``.

Adds the one thing the provider lacks: an atomic upload. The file is written under a hidden
temporary name and renamed into place with ``posix-rename``, so a vendor polling the folder never
picks up half a file, and a dropped connection leaves only a temporary file behind.
Host keys are verified as the provider does (``host_key`` extra, or ``known_hosts``).
"""

from __future__ import annotations

import contextlib
import posixpath
import uuid
from typing import IO

from airflow.providers.sftp.hooks.sftp import SFTPHook


class VendorSftpHook(SFTPHook):
    """SFTP to a vendor's inbound/outbound folders."""

    hook_name = "Vendor SFTP"

    def upload_atomic(self, source: IO[bytes], remote_path: str) -> int:
        """Stream ``source`` to ``remote_path`` atomically; returns the bytes written."""
        directory, name = posixpath.split(remote_path)
        temporary = posixpath.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.part")
        with self.get_managed_conn() as sftp:
            try:
                attributes = sftp.putfo(source, temporary, confirm=True)
                sftp.posix_rename(temporary, remote_path)
            except BaseException:
                # The connection itself may be gone; the vendor ignores .part files anyway.
                with contextlib.suppress(OSError):
                    sftp.remove(temporary)
                raise
        return int(attributes.st_size or 0)
