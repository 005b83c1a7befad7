"""A charge point on PyPI's `ocpp` library (2.x, its v16 ChargePoint) on a site of ocpile
central: it boots, waits for the site's fail-safe TxDefaultProfile, starts a transaction,
waits for the TxProfile of that transaction, reports the current the profile allows, and
stops. Every SetChargingProfile is answered Accepted (after the library checked it against
its own copy of the schema).

Usage: pypi_site_pile.py WS_URL IDENTITY. Prints `PROFILE json` with each SetChargingProfile
payload as it came over the wire, one `RESULT name json` line per answer the central gave,
then `DONE`.
"""

import asyncio
import datetime
import json
import sys

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus

CONFIG = {
    "GetConfigurationMaxKeys": "10",
    "NumberOfConnectors": "1",
    "ChargeProfileMaxStackLevel": "3",
    "ChargingScheduleAllowedChargingRateUnit": "Current",
    "MaxChargingProfilesInstalled": "5",
}
WAIT = 30


def result(name, value):
    print("RESULT", name, json.dumps(value, default=str), flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SitePile(ChargePoint):
    """Keeps the profiles it was sent, by purpose, as they came over the wire."""

    def __init__(self, identity, ws):
        super().__init__(identity, ws)
        self.profiles = []
        self.answered = asyncio.Condition()

    async def route_message(self, raw_msg):
        msg = json.loads(raw_msg)
        if msg[0] == 2 and msg[2] == "SetChargingProfile":
            print("PROFILE", json.dumps(msg[3]), flush=True)
        await super().route_message(raw_msg)

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None, **kwargs):
        wanted = key if key else list(CONFIG)
        known = [{"key": k, "readonly": True, "value": CONFIG[k]} for k in wanted if k in CONFIG]
        unknown = [k for k in wanted if k not in CONFIG]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(self, connector_id, cs_charging_profiles, **kwargs):
        return call_result.SetChargingProfile(status="Accepted")

    @after(Action.set_charging_profile)
    async def after_set_charging_profile(self, connector_id, cs_charging_profiles, **kwargs):
        # The answer has gone out.
        async with self.answered:
            self.profiles.append(cs_charging_profiles)
            self.answered.notify_all()

    async def profile(self, purpose, transaction=None):
        """The first profile of `purpose` (for `transaction`, if given) answered."""

        def found():
            for p in self.profiles:
                if p["charging_profile_purpose"] == purpose and (
                    transaction is None or p.get("transaction_id") == transaction
                ):
                    return p
            return None

        async with self.answered:
            await asyncio.wait_for(self.answered.wait_for(found), WAIT)
            return found()


async def main(url, identity):
    async with websockets.connect(url + identity, subprotocols=["ocpp1.6"]) as ws:
        cp = SitePile(identity, ws)
        runner = asyncio.create_task(cp.start())
        boot = await cp.call(call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor"))
        result("boot", boot.status)
        assert boot.status == RegistrationStatus.accepted
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        default = await cp.profile("TxDefaultProfile")
        result("default_limit", float(default["charging_schedule"]["charging_schedule_period"][0]["limit"]))

        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        started = await cp.call(call.StartTransaction(connector_id=1, id_tag="PYCARD", meter_start=0, timestamp=now()))
        result("start", started.transaction_id)
        tx = started.transaction_id
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        profile = await cp.profile("TxProfile", tx)
        amps = float(profile["charging_schedule"]["charging_schedule_period"][0]["limit"])
        result("tx_limit", amps)
        # It draws what the profile allows.
        sampled = [
            {"value": "120", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": str(amps), "measurand": "Current.Import", "unit": "A"},
        ]
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": now(), "sampledValue": sampled}]))
        stopped = await cp.call(call.StopTransaction(meter_stop=120, timestamp=now(), transaction_id=tx, reason="EVDisconnected", id_tag="PYCARD"))
        result("stop", stopped.id_tag_info["status"])
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        runner.cancel()
    print("DONE", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2]))
