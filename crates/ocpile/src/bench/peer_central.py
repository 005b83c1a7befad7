"""A minimal central system on PyPI's `ocpp` library (2.x), for `ocpile bench` to run the
same fleet against: it accepts every boot and idTag, hands out transaction ids, and keeps
every MeterValues sample in SQLite (committed before the answer, as ours does).

Usage: python peer_central.py DB_PATH. Prints `PORT <n>` once listening on 127.0.0.1.
"""

import asyncio
import itertools
import json
import sqlite3
import sys
from datetime import datetime, timezone

from websockets.asyncio.server import serve

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus

db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL")
db.execute(
    "CREATE TABLE IF NOT EXISTS meter_values (pile TEXT, connector INTEGER, transaction_id INTEGER, time TEXT, sampled TEXT)"
)
db.commit()
transactions = itertools.count(1)


def now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Central(ChargePoint):
    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor, charge_point_model, **kwargs):
        return call_result.BootNotification(current_time=now(), interval=300, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    async def on_status(self, **kwargs):
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag, **kwargs):
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    async def on_start(self, **kwargs):
        return call_result.StartTransaction(transaction_id=next(transactions), id_tag_info={"status": "Accepted"})

    @on(Action.stop_transaction)
    async def on_stop(self, **kwargs):
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id, meter_value, transaction_id=None, **kwargs):
        db.executemany(
            "INSERT INTO meter_values VALUES (?, ?, ?, ?, ?)",
            [(self.id, connector_id, transaction_id, v["timestamp"], json.dumps(v["sampled_value"])) for v in meter_value],
        )
        db.commit()
        return call_result.MeterValues()

    @on(Action.firmware_status_notification)
    async def on_firmware(self, **kwargs):
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics(self, **kwargs):
        return call_result.DiagnosticsStatusNotification()


async def handler(connection):
    identity = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
    try:
        await Central(identity, connection).start()
    except Exception:
        pass


async def main():
    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ping_interval=None, max_queue=4) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await server.serve_forever()


asyncio.run(main())
