"""``loyalty-agent run``: build the station, serve the API, talk to systemd, stop cleanly."""
from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn

from agent import __version__
from agent.store import datadir
from agent.api.app import create_app
from agent.api.connections import install_accept_error_filter, protocol_class, raise_fd_limit
from agent.config import Settings
from agent.station import Station, build_station
from agent.systemd import notify, watchdog_interval_s
from agent.tokens import LOCAL_CLIENT, TOKEN_FILE

log = logging.getLogger(__name__)


def _status_line(station: Station) -> str:
    s = station.settings
    pending = station.db.read(lambda c: c.execute("SELECT pending_count FROM outbox_totals").fetchone()[0])
    return f"STATUS=listening on {s.api.host}:{s.api.port}; station {s.station.id}; {pending} events pending sync"


_MAINTENANCE_EVERY_S = 600.0


def _maintain(station: Station) -> None:
    try:
        station.maintenance()
    except Exception:  # noqa: BLE001 - housekeeping must never take the agent down
        log.exception("falló el mantenimiento periódico [maintenance_failed]")


async def _supervise(server: uvicorn.Server, station: Station) -> None:
    """Announce readiness, then ping the watchdog only while the loop and the store respond."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    notify("READY=1\n" + _status_line(station))
    log.info("agente %s listo en %s:%s [ready]", __version__, station.settings.api.host, station.settings.api.port)
    interval = watchdog_interval_s()
    period = interval if interval is not None else 30.0
    next_maintenance = 0.0
    loop = asyncio.get_running_loop()
    while not server.should_exit:
        if loop.time() >= next_maintenance:
            next_maintenance = loop.time() + _MAINTENANCE_EVERY_S
            loop.run_in_executor(None, _maintain, station)
        await asyncio.sleep(min(period, 5.0) if interval is None else period)
        try:
            line = _status_line(station)  # also proves the store answers
        except Exception:  # noqa: BLE001 - a failing store must stop the pings, not the agent
            log.exception("falló la verificación de la base de datos; se retiene el aviso al watchdog [store_check_failed]")
            continue
        notify(("WATCHDOG=1\n" if interval is not None else "") + line)


class _AgentServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after serving, which would kill us before the store is closed.

    We tell systemd we are stopping as soon as the signal arrives, let uvicorn drain, and
    then return normally so ``run`` closes the database and exits 0.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            notify("STOPPING=1")
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


async def serve(settings: Settings, station: Station) -> None:
    app = create_app(settings, station)
    raise_fd_limit()
    install_accept_error_filter()
    api = settings.api
    config = uvicorn.Config(app, host=api.host, port=api.port, log_config=None,
                            access_log=False, lifespan="off", server_header=False,
                            http=protocol_class(api.header_timeout_s, api.max_connections),
                            timeout_keep_alive=max(1, int(api.header_timeout_s)),
                            # Open SSE streams never end by themselves: bound the drain on stop.
                            timeout_graceful_shutdown=5)
    server = _AgentServer(config)
    station.start()
    supervisor = asyncio.create_task(_supervise(server, station))
    try:
        await server.serve()
    finally:
        supervisor.cancel()


def run(settings: Settings) -> int:
    # One agent per data folder, checked before anything connects to head office or binds the port.
    datadir.check_access(settings.storage.data_dir)
    datadir.prepare(settings.storage.data_dir)
    lock = datadir.DataDirLock(settings.storage.data_dir).acquire()
    try:
        station = build_station(settings, verify=True)  # never serve over a damaged store
        try:
            station.tokens.issue_local_token(settings.storage.key_dir / TOKEN_FILE, LOCAL_CLIENT)
            asyncio.run(serve(settings, station))
        finally:
            station.close()
            log.info("agente detenido [stopped]")
    finally:
        lock.release()
    return 0


__all__ = ["run", "serve"]
