"""Listen on a port inside another process's network namespace.

A thread enters the namespace (setns affects only the calling thread), binds and
listens there, and ends; the listening socket stays in that namespace and the
runtime's event loop accepts on it. This is how a `network none` container or a
bubblewrap sandbox gets an egress proxy on its own 127.0.0.1 with no route out.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import time

CLONE_NEWNET = 0x40000000
LOOPBACK_WAIT_S = 2.0
_libc = ctypes.CDLL(None, use_errno=True)


def listen_in_netns(pid: int, port: int, host: str = "127.0.0.1") -> socket.socket:
    result: dict = {}

    def enter_and_listen() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into the network namespace of pid {pid}: {os.strerror(err)}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + LOOPBACK_WAIT_S
            while True:
                try:
                    sock.bind((host, port))
                    break
                except OSError as exc:
                    # The sandbox may still be bringing its loopback up (bwrap does it in the child).
                    if exc.errno != errno.EADDRNOTAVAIL or time.monotonic() > deadline:
                        sock.close()
                        raise
                    time.sleep(0.005)
            sock.listen(128)
            sock.setblocking(False)
            result["socket"] = sock
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=enter_and_listen, name="gati-netns")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["socket"]
