"""waitress as `python run.py` runs it: sized to the process's descriptor limit, quiet under a flood.

- The event loop uses poll(), not select(): select() cannot watch a descriptor numbered 1024 or
  more, and waitress's select() loop dies with "filedescriptor out of range in select()" once
  that many are open (SERVER_CONNECTION_LIMIT=1000 plus the process's own ~30 was enough).
  poll() has no such ceiling. (Windows has no poll(); there select() takes at most 512 sockets,
  so the connection limit is held under that.)
- The connection limit is checked at start against the process's open-file limit
  (RLIMIT_NOFILE): the soft limit is raised toward the hard one when the limit needs it, and a
  limit that still does not fit is lowered to what does, with one line saying so.
- A flood is refused quietly: at the limit waitress stops accepting (connections wait in the
  kernel's backlog), and should the process still run out of descriptors, accepting pauses for a
  moment instead of spinning on the error. Either is logged once a minute, with a count, not
  once per connection. Accepting resumes as soon as connections close.
- Proxy headers are left to the application (TRUSTED_PROXIES, werkzeug's ProxyFix, as under
  gunicorn): waitress would otherwise delete X-Forwarded-For and X-Forwarded-Proto before the
  app could read them.
"""
from __future__ import annotations

import errno
import logging
import os
import sys
import time

from waitress.adjustments import Adjustments
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from openalgo_gtt.logging_setup import EveryInterval, RepeatFilter

log = logging.getLogger("openalgo_gtt.serve")

# Descriptors kept free beyond the connections: the database pool (engine.py: 10 + 20 overflow),
# HTTP pools to the broker and notifiers, Redis, log and temporary files. Added to what the
# process already has open when the limit is computed.
RESERVED_DESCRIPTORS = 100
MIN_CONNECTIONS = 16  # below this the server could not do its job: refuse to start
WINDOWS_SELECT_SOCKETS = 500  # Python's FD_SETSIZE on Windows is 512, listening sockets included
ACCEPT_PAUSE_SECONDS = 0.5  # out of descriptors: stop accepting this long before trying again
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_notes = EveryInterval(log, seconds=60.0)


class ServerStartError(Exception):
    """The server cannot start with these settings; str() is the one line to show."""


def serve_options(settings) -> dict:
    """waitress's settings. A connection limit well above waitress's default of 100 (checked
    against the descriptor limit by `fit_connection_limit`), a channel timeout: a connection
    that sends nothing for that long is closed, so clients trickling bytes cannot hold every
    connection (a reverse proxy with timeouts in front does the rest, docs/deployment.md), and the poll()
    loop."""
    return {"host": settings.host, "port": settings.port, "threads": settings.server_threads,
            "connection_limit": settings.server_connection_limit,
            "channel_timeout": settings.server_channel_timeout,
            # how often idle connections are looked for (waitress's default is every 30 s)
            "cleanup_interval": min(5, settings.server_channel_timeout), "ident": "openalgo-gtt",
            "asyncore_use_poll": True,
            # X-Forwarded-* reach the app untouched; TRUSTED_PROXIES decides what to believe
            "clear_untrusted_proxy_headers": False}


def open_descriptors() -> int:
    for where in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(where))
        except OSError:
            continue
    return 64  # no way to count: assume a generous start-up share


def fit_connection_limit(wanted: int, *, resource_module=None, in_use: int | None = None,
                         platform: str = sys.platform) -> tuple[int, str | None]:
    """(the connection limit to serve with, a line to log when it is not `wanted`).

    Raises the soft RLIMIT_NOFILE toward the hard limit when `wanted` needs more; lowers the
    limit to what the descriptors allow when even the hard limit is too small; raises
    ServerStartError when fewer than MIN_CONNECTIONS would fit."""
    if platform == "win32":
        if wanted <= WINDOWS_SELECT_SOCKETS:
            return wanted, None
        return WINDOWS_SELECT_SOCKETS, (f"SERVER_CONNECTION_LIMIT={wanted} is more than waitress can watch on Windows "
                                        f"(select() takes 512 sockets): serving at most {WINDOWS_SELECT_SOCKETS}")
    if resource_module is None:
        import resource as resource_module
    reserve = (open_descriptors() if in_use is None else in_use) + RESERVED_DESCRIPTORS
    soft, hard = resource_module.getrlimit(resource_module.RLIMIT_NOFILE)
    needed = wanted + reserve
    if soft != resource_module.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource_module.RLIM_INFINITY else min(hard, needed)
        if target > soft:
            try:
                resource_module.setrlimit(resource_module.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    if soft == resource_module.RLIM_INFINITY or soft >= needed:
        return wanted, None
    fits = soft - reserve
    if fits < MIN_CONNECTIONS:
        raise ServerStartError(
            f"the open-file limit ({soft}, hard {hard}) leaves room for {max(fits, 0)} connections after the "
            f"{reserve} descriptors the server keeps for itself; raise it (ulimit -n) to at least "
            f"{MIN_CONNECTIONS + reserve}")
    return fits, (f"SERVER_CONNECTION_LIMIT={wanted} does not fit the open-file limit ({soft}, hard {hard}) with "
                  f"{reserve} descriptors kept for the server itself: serving at most {fits} connections; raise "
                  f"the limit (ulimit -n, systemd LimitNOFILE=) to allow more")


class QuietServer(TcpWSGIServer):
    """waitress's TCP server, except that reaching the connection limit or running out of
    descriptors is logged once a minute (with a count), and an accept that fails for want of
    descriptors pauses accepting for ACCEPT_PAUSE_SECONDS instead of being retried at once (which
    spun the loop and logged a traceback per attempt)."""

    _accept_paused_until = 0.0

    def readable(self):
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if not self.accepting or time.monotonic() < self._accept_paused_until:
            return False
        if len(self._map) >= self.adj.connection_limit:
            _notes.warning("connection-limit", "%d open connections: at the connection limit, new connections "
                           "wait until some close", self.adj.connection_limit)
            return False
        return True

    def accept(self):
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in _OUT_OF_DESCRIPTORS:
                raise
            self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
            _notes.warning("descriptors", "out of file descriptors (%s): not accepting connections for %.1f s",
                           os.strerror(exc.errno), ACCEPT_PAUSE_SECONDS)
            return None


def create_server(app, **options):
    """waitress's create_server for TCP listeners, with QuietServer in place of TcpWSGIServer."""
    adj = Adjustments(**options)
    socket_map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    servers = [QuietServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=info) for info in adj.listen]
    if len(servers) == 1:
        return servers[0]
    return MultiSocketServer(socket_map, adj, [(s.effective_host, s.effective_port) for s in servers], dispatcher,
                             servers[-1].log_info)


def quiet_waitress_logs() -> None:
    """waitress's own per-connection and per-request lines (the task queue depth, an accept
    that failed) at most once a minute each, with a count of those left out."""
    for name in ("waitress", "waitress.queue"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(seconds=60.0))


class PortInUse(ServerStartError):
    """Another process listens on HOST:PORT already (a second `python run.py`, most often)."""


def bind(app, settings):
    """The server, listening on HOST:PORT but not yet serving; PortInUse, or ServerStartError
    for another address the system refuses, with one line saying what to do."""
    options = serve_options(settings)
    limit, note = fit_connection_limit(options["connection_limit"])
    if note:
        log.warning("%s", note)
    options["connection_limit"] = limit
    quiet_waitress_logs()
    try:
        return create_server(app, **options)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            # "Address already in use" stays in the line: scripts (and the tests) look for it.
            raise PortInUse(f"port {settings.port} is already in use on {settings.host} (Address already in use): "
                            "another server, perhaps openalgo-gtt, is running there; stop it, or set PORT to a "
                            "free port") from None
        raise ServerStartError(f"cannot listen on {where}: {exc.strerror or exc}; check HOST and PORT") from None


def run(server) -> None:
    """Serve on a bound server until SIGINT/SIGTERM (the caller turns SIGTERM into SystemExit)."""
    server.print_listen("Serving on http://{}:{}")
    server.run()
