"""A charge point on PyPI's `ocpp` library (2.x) that upgrades its firmware when told: it
downloads the UpdateFirmware location over HTTP, reports Downloading, Downloaded, Installing
and Installed, restarts (a new websocket) and boots with the image's file name as its
firmwareVersion. It knows no vendor key (GetFirmwareUpgradePercentages is unknown to it).

Sent SignedUpdateFirmware instead, it prints the request as `EVENT SignedUpdateFirmware {json}`
(the test verifies the signature: the library has no cryptography) and reports Downloading,
Downloaded, SignatureVerified, Installing and Installed with SignedFirmwareStatusNotification and
the request's requestId.

Usage: pypi_firmware_pile.py WS_URL IDENTITY. Prints `EVENT ...` lines, then `DONE`
once it was set Operative after the upgrade.
"""

import json

import asyncio
import sys
import urllib.parse
import urllib.request

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action


def event(*words):
    print("EVENT", *words, flush=True)


class PyPile(ChargePoint):
    def __init__(self, identity, ws, version):
        super().__init__(identity, ws)
        self.version = version
        self.status = "Idle"
        self.location = None
        self.request_id = None
        self.upgraded = asyncio.Event()
        self.operative = asyncio.Event()

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None, **kwargs):
        return call_result.GetConfiguration(configuration_key=[], unknown_key=key or None)

    @on(Action.update_firmware)
    async def on_update_firmware(self, location, retrieve_date, **kwargs):
        event("UpdateFirmware", location)
        self.location = location
        return call_result.UpdateFirmware()

    @on(Action.signed_update_firmware)
    async def on_signed_update_firmware(self, request_id, firmware, **kwargs):
        print("EVENT SignedUpdateFirmware", json.dumps({"request_id": request_id, "firmware": firmware}), flush=True)
        self.request_id = request_id
        self.location = firmware["location"]
        return call_result.SignedUpdateFirmware(status="Accepted")

    @on(Action.extended_trigger_message)
    async def on_extended_trigger(self, requested_message, **kwargs):
        return call_result.ExtendedTriggerMessage(status="Accepted")

    @on(Action.trigger_message)
    async def on_trigger(self, requested_message, **kwargs):
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id, type, **kwargs):
        event("ChangeAvailability", connector_id, type)
        if type == "Operative":
            self.operative.set()
        return call_result.ChangeAvailability(status="Accepted")

    async def notify(self, status):
        self.status = status
        if self.request_id is None:
            await self.call(call.FirmwareStatusNotification(status=status))
            event("FirmwareStatusNotification", status)
        else:
            await self.call(call.SignedFirmwareStatusNotification(status=status, request_id=self.request_id))
            event("SignedFirmwareStatusNotification", status)

    async def upgrade(self):
        while self.location is None:
            await asyncio.sleep(0.05)
        await self.notify("Downloading")
        image = await asyncio.to_thread(lambda: urllib.request.urlopen(self.location, timeout=30).read())
        event("downloaded", len(image))
        await self.notify("Downloaded")
        if self.request_id is not None:
            await self.notify("SignatureVerified")
        await self.notify("Installing")
        await self.notify("Installed")
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.location).path.rsplit("/", 1)[-1])
        return name[:50]


async def session(url, identity, version):
    """Connects (the websocket stays open until closed) and boots."""
    ws = await websockets.connect(url + identity, subprotocols=["ocpp1.6"])
    cp = PyPile(identity, ws, version)
    runner = asyncio.create_task(cp.start())
    boot = await cp.call(call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor", firmware_version=version))
    event("boot", boot.status, version)
    await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    return cp, runner, ws


async def main(url, identity):
    cp, runner, ws = await session(url, identity, "py-1.0")
    new_version = await cp.upgrade()
    runner.cancel()
    await ws.close()
    event("restart", new_version)
    cp, runner, ws = await session(url, identity, new_version)
    await asyncio.wait_for(cp.operative.wait(), 60)
    await asyncio.sleep(1)  # the answer to ChangeAvailability goes out
    runner.cancel()
    await ws.close()
    print("DONE", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2]))
