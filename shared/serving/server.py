"""A running server: uvicorn on a thread of its own, with its own event loop, so the command line, a notebook and the
tests drive it the same way (``Server.start``, ``.url``, ``.stop()``, or a ``with`` block).

The socket is bound before anything else starts, so a port in use is one clear refusal. ``stop()`` is graceful:
uvicorn stops accepting, answers the requests it already accepted (new ones on open connections get 503), and the
thread ends within ``STOP_SECONDS``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.util.errors import UsageError

if TYPE_CHECKING:  # annotations only: importing this module loads neither uvicorn nor FastAPI (app.py imports it)
    import uvicorn

    from shared.serving.app import State

STOP_SECONDS = 8.0  # the graceful part of a stop; the issue of a stop is answered within 10 s in all


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); ``UsageError`` when it cannot be had."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise UsageError(f"--host {host}: not an address of this machine ({error.strerror}); use 127.0.0.1, "
                         f"0.0.0.0 or one of its names") from None
    # IPPROTO_TCP, as getaddrinfo gives it, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # it knows are TCP, and with it on, a keep-alive client waited 40 ms (its delayed ACK) for every answer
    sock = socket.socket(info[0], socket.SOCK_STREAM, info[2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use by another program; pick another with --port, or "
                             f"--port 0 for any free one") from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise UsageError(f"port {port} on {host} needs privileges; use a port above 1023") from None
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


@dataclass
class Server:
    """A server started by ``start``; ``url`` is its address, ``page`` its page."""
    url: str
    _uvicorn: uvicorn.Server
    _thread: threading.Thread
    _state: State
    _failure: list

    @property
    def page(self) -> str:
        return f"{self.url}/"

    @property
    def ready(self) -> bool:
        return bool(self._state.ready)

    def wait_ready(self, timeout: float = 120.0) -> Server:
        """Block until the warm-up has run (``/v2/health/ready`` answers 200); ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._state.ready:
            if self._failure:
                raise self._failure[0]
            if self._state.failure:
                raise UsageError(f"the model failed its warm-up at batch 1 and --max-batch ({self._state.failure}); "
                                 f"export the run again, or try a smaller --max-batch")
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting, answer the requests already accepted, and end the server's thread."""
        self._state.stopping = True
        self._uvicorn.should_exit = True
        self._thread.join(STOP_SECONDS + 1.5)
        if self._thread.is_alive():
            self._uvicorn.force_exit = True
            self._thread.join(1.0)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the server's thread to end (``stop`` from another thread); True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<cnnlab server at {self.url} ({'ready' if self.ready else 'warming up'})>"


def start(app, state, sock: socket.socket, url: str) -> Server:
    """uvicorn serving ``app`` on ``sock``, on its own thread; returns once it accepts connections."""
    import uvicorn

    # proxy_headers off: behind no proxy by default, and the header rewriting costs every request
    # the ignore: uvicorn annotates timeout_graceful_shutdown as int, but hands it to asyncio.timeout, which takes
    # any number of seconds
    config = uvicorn.Config(app, loop="auto", http="auto", lifespan="on", log_level="error", access_log=False,
                            timeout_graceful_shutdown=STOP_SECONDS,  # type: ignore[arg-type]
                            server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
    failure: list = []

    loop_factory = config.get_loop_factory() if hasattr(config, "get_loop_factory") else None  # uvloop

    def serve() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread by wait_ready
            failure.append(error)
        finally:
            sock.close()

    thread = threading.Thread(target=serve, name="cnnlab-serve", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.005)
    if failure:
        raise failure[0]
    return Server(url, server, thread, state, failure)
