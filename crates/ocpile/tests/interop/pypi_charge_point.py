"""A charge point on PyPI's `ocpp` library (2.x) against ocpile central: boots, authorizes,
runs a transaction with meter values, then sends its StartTransaction, MeterValues and
StopTransaction again under new message ids, as piles do after a reconnect.

Usage: pypi_charge_point.py WS_URL IDENTITY. Prints one `RESULT name json` line per answer the
central gave, then `DONE`.
"""

import asyncio
import json
import sys

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus

CONFIG = {"HeartbeatInterval": "300", "GetConfigurationMaxKeys": "4", "NumberOfConnectors": "1"}


class PyPile(ChargePoint):
    """Knows three standard keys and none of the vendor's."""

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None, **kwargs):
        wanted = key if key else list(CONFIG)
        known = [{"key": k, "readonly": k != "HeartbeatInterval", "value": CONFIG[k]} for k in wanted if k in CONFIG]
        unknown = [k for k in wanted if k not in CONFIG]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)


def result(name, value):
    print("RESULT", name, json.dumps(value, default=str), flush=True)


async def main(url, identity):
    async with websockets.connect(url + identity, subprotocols=["ocpp1.6"]) as ws:
        cp = PyPile(identity, ws)
        runner = asyncio.create_task(cp.start())
        boot = await cp.call(call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor", firmware_version="py-1.0"))
        result("boot", boot.status)
        assert boot.status == RegistrationStatus.accepted
        # A numeric offset instead of Z: tolerated, and recorded as a deviation.
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing", timestamp="2026-01-01T10:00:00+00:00"))
        auth = await cp.call(call.Authorize(id_tag="PYCARD"))
        result("authorize", auth.id_tag_info["status"])
        start = call.StartTransaction(connector_id=1, id_tag="PYCARD", meter_start=1000, timestamp="2026-01-01T10:00:01.000Z")
        started = await cp.call(start)
        result("start", started.transaction_id)
        tx = started.transaction_id
        meter = call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": "2026-01-01T10:05:00.000Z", "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}])
        await cp.call(meter)
        stop = call.StopTransaction(meter_stop=2000, timestamp="2026-01-01T10:10:00.000Z", transaction_id=tx, reason="Local", id_tag="PYCARD")
        stopped = await cp.call(stop)
        result("stop", stopped.id_tag_info["status"])
        # The same messages again, under new message ids.
        again = await cp.call(call.StartTransaction(connector_id=1, id_tag="PYCARD", meter_start=1000, timestamp="2026-01-01T10:00:01.000Z"))
        result("start_again", again.transaction_id)
        await cp.call(meter)
        stopped_again = await cp.call(stop)
        result("stop_again", stopped_again.id_tag_info["status"])
        # A stop of a transaction the central never issued.
        lost = await cp.call(call.StopTransaction(meter_stop=3000, timestamp="2026-01-01T11:00:00.000Z", transaction_id=424242, reason="PowerLoss"))
        result("stop_unknown", lost.id_tag_info)
        runner.cancel()
    print("DONE", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2]))
