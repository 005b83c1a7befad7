"""A central system on PyPI's `ocpp` library (2.x) that sends the vendor FAQ's example frames
to an ocpile pile and checks the documented answers.

Prints `PORT <n>` once listening, then one line per check, and a closing line
`N passed, M failed`. Exit code 0 only when every check passed.
"""

import asyncio
import http.server
import json
import sys
import threading
import urllib.request
from datetime import datetime, timezone

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus

SERIAL = "SN-INTEROP"
WAIT = 30


def now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Central(ChargePoint):
    def __init__(self, cp_id, connection, boots, events):
        super().__init__(cp_id, connection)
        self.boots = boots
        self.events = events

    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor, charge_point_model, **kwargs):
        self.boots.put_nowait((self, kwargs))
        return call_result.BootNotification(current_time=now(), interval=900, status=RegistrationStatus.accepted)

    @on(Action.status_notification)
    async def on_status(self, **kwargs):
        return call_result.StatusNotification()

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        return call_result.Heartbeat(current_time=now())

    @on(Action.authorize)
    async def on_authorize(self, id_tag, **kwargs):
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    async def on_start(self, **kwargs):
        self.events.put_nowait(("start", kwargs))
        return call_result.StartTransaction(transaction_id=42, id_tag_info={"status": "Accepted"})

    @on(Action.meter_values)
    async def on_meter_values(self, **kwargs):
        self.events.put_nowait(("meter", kwargs))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(self, **kwargs):
        self.events.put_nowait(("stop", kwargs))
        return call_result.StopTransaction()

    @on(Action.security_event_notification)
    async def on_security_event(self, **kwargs):
        self.events.put_nowait(("security", kwargs))
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, **kwargs):
        self.events.put_nowait(("log_status", kwargs))
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr, **kwargs):
        self.events.put_nowait(("sign_certificate", {"csr": csr}))
        return call_result.SignCertificate(status="Accepted")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}", flush=True)


class Uploads(http.server.BaseHTTPRequestHandler):
    """Takes HTTP PUTs (GetLog's upload) and keeps each body by its path."""

    received = {}

    def do_PUT(self):
        length = int(self.headers.get("content-length", "0"))
        Uploads.received[self.path] = self.rfile.read(length)
        self.send_response(201)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def upload_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Uploads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def next_boot(boots):
    cp, fields = await asyncio.wait_for(boots.get(), WAIT)
    return cp, fields


async def next_event(events, kind):
    while True:
        seen, fields = await asyncio.wait_for(events.get(), WAIT)
        if seen == kind:
            return fields


def post(control, path):
    request = urllib.request.Request(f"http://{control}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return response.status


async def change(cp, uid, key, value):
    result = await cp.call(call.ChangeConfiguration(key=key, value=value), unique_id=uid, suppress=False)
    return result.status


async def run(boots, events, port, control, checks):
    cp, fields = await next_boot(boots)
    checks.check("boot with the serial number", cp.id == SERIAL and fields.get("charge_point_serial_number") == SERIAL, f"{cp.id} {fields}")

    # The security whitepaper's part the pile has (the library checks each message against the
    # security schemas): its start is a security event; ExtendedTriggerMessage; the keys; the
    # certificate stores.
    event = await next_event(events, "security")
    checks.check("SEC: StartupOfTheDevice security event", event.get("type") == "StartupOfTheDevice", event)
    result = await cp.call(call.ExtendedTriggerMessage(requested_message="LogStatusNotification"), suppress=False)
    checks.check("SEC: ExtendedTriggerMessage LogStatusNotification Accepted", result.status == "Accepted", result)
    log_status = await next_event(events, "log_status")
    checks.check("SEC: LogStatusNotification Idle", log_status.get("status") == "Idle", log_status)
    result = await cp.call(call.ExtendedTriggerMessage(requested_message="SignChargePointCertificate"), suppress=False)
    checks.check("SEC: SignChargePointCertificate Accepted", result.status == "Accepted", result)
    sign = await next_event(events, "sign_certificate")
    checks.check("SEC: SignCertificate with a PEM CSR", sign["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----"), sign)
    result = await cp.call(call.CertificateSigned(certificate_chain="not a certificate"), suppress=False)
    checks.check("SEC: CertificateSigned of no certificate Rejected", result.status == "Rejected", result)
    event = await next_event(events, "security")
    checks.check("SEC: InvalidChargePointCertificate security event", event.get("type") == "InvalidChargePointCertificate", event)
    # GetLog SecurityLog, uploaded by HTTP PUT to a server here.
    uploads = upload_server()
    location = f"http://127.0.0.1:{uploads.server_address[1]}/logs"
    result = await cp.call(call.GetLog(log={"remote_location": location}, log_type="SecurityLog", request_id=11), suppress=False)
    checks.check("SEC: GetLog SecurityLog Accepted with a filename", result.status == "Accepted" and bool(result.filename), result)
    uploading = await next_event(events, "log_status")
    checks.check("SEC: LogStatusNotification Uploading", uploading.get("status") == "Uploading" and uploading.get("request_id") == 11, uploading)
    uploaded = await next_event(events, "log_status")
    checks.check("SEC: LogStatusNotification Uploaded", uploaded.get("status") == "Uploaded" and uploaded.get("request_id") == 11, uploaded)
    body = Uploads.received.get(f"/logs/{result.filename}", b"").decode()
    checks.check("SEC: the uploaded SecurityLog holds the security events",
                 "StartupOfTheDevice" in body and "InvalidChargePointCertificate" in body, body)
    uploads.shutdown()
    result = await cp.call(call.GetConfiguration(key=["AuthorizationKey", "SecurityProfile"]), suppress=False)
    checks.check("SEC: AuthorizationKey is never read back",
                 result.unknown_key == ["AuthorizationKey"]
                 and [k["key"] for k in result.configuration_key] == ["SecurityProfile"], result)
    checks.check("SEC: SecurityProfile 1 needs a password", await change(cp, None, "SecurityProfile", "1") == "Rejected")
    result = await cp.call(call.GetInstalledCertificateIds(certificate_type="CentralSystemRootCertificate"), suppress=False)
    checks.check("SEC: no CentralSystemRootCertificate installed", result.status == "NotFound", result)
    result = await cp.call(call.InstallCertificate(certificate_type="CentralSystemRootCertificate", certificate="not a certificate"), suppress=False)
    checks.check("SEC: InstallCertificate of no certificate Rejected", result.status == "Rejected", result)

    # 3.1: vendor keys only when asked for by name.
    result = await cp.call(call.GetConfiguration(), suppress=False)
    names = [k["key"] for k in result.configuration_key]
    vendor = [n for n in names if n.startswith(("Vendor", "OEM_", "DBG", "UrlHas", "GetFirmware"))]
    checks.check("3.1 GetConfiguration without keys lists no vendor key", "HeartbeatInterval" in names and not vendor, names)
    result = await cp.call(call.GetConfiguration(key=["VendorWebsocketSettings"]), suppress=False)
    expected = [{"key": "VendorWebsocketSettings", "readonly": False, "value": f"WS,127.0.0.1,{port},/ocpp/,ocpp1.6,,,"}]
    checks.check("3.1 GetConfiguration VendorWebsocketSettings in the FAQ's format", result.configuration_key == expected, result.configuration_key)

    # 3.2.1 VendorChargeBoxId.
    uid = "587f59e3-3f3f-4972-b09a-b2859c8d823b"
    checks.check("3.2.1 VendorChargeBoxId xxxxxxxxxx", await change(cp, uid, "VendorChargeBoxId", "xxxxxxxxxx") == "Accepted")
    checks.check("3.2.1 VendorChargeBoxId of 64 characters", await change(cp, uid, "VendorChargeBoxId", "x" * 64) == "Rejected")
    checks.check("3.2.1 VendorChargeBoxId empty restores the default", await change(cp, uid, "VendorChargeBoxId", "") == "Accepted")
    result = await cp.call(call.GetConfiguration(key=["VendorChargeBoxId"]), suppress=False)
    checks.check("3.2.1 the default is the serial number", result.configuration_key[0]["value"] == SERIAL, result.configuration_key)

    # 3.2.2 VendorChargePointName: the identity changes, the serial number in the boot does not.
    checks.check("3.2.2 VendorChargePointName of 64 characters", await change(cp, uid, "VendorChargePointName", "y" * 64) == "Rejected")
    checks.check("3.2.2 VendorChargePointName xxxxxxxxxx", await change(cp, uid, "VendorChargePointName", "xxxxxxxxxx") == "Accepted")
    cp, fields = await next_boot(boots)
    checks.check("3.2.2 the pile reconnects as xxxxxxxxxx, reporting the original serial", cp.id == "xxxxxxxxxx" and fields.get("charge_point_serial_number") == SERIAL, f"{cp.id} {fields}")

    # 3.3 VendorWebsocketSettings: the exact frames. The pile then tries the FAQ's server (pinned
    # to a closed local port by the test), cannot reach it, and falls back to this one.
    uid = "4e61badb-cdfc-4d68-9f0b-756f9a71701e"
    for section, value in (("3.3.1", "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,"), ("3.3.2", "WS,cpam3.x-cheng.net,80,/ocpp/,ocpp1.6,,,")):
        checks.check(f"{section} VendorWebsocketSettings {value}", await change(cp, uid, "VendorWebsocketSettings", value) == "Accepted")
        cp, _ = await next_boot(boots)
        checks.check(f"{section} unreachable server: the pile falls back here", cp.id == "xxxxxxxxxx", cp.id)
    checks.check("3.3 a malformed value is Rejected", await change(cp, uid, "VendorWebsocketSettings", "WS,cpam3.x-cheng.net,80") == "Rejected")

    # 3.4 and 3.5.
    uid = "7e952213-25ee-4b09-b92e-3c4f04c9ff89"
    for section, key in (("3.4", "VendorDirectWorkMode"), ("3.5.1", "LocalAuthorizeOffline"), ("3.5.2", "LocalPreAuthorize"),
                         ("3.5.3", "AuthorizationCacheEnabled"), ("3.5.4", "AllowOfflineTxForUnknownId")):
        checks.check(f"{section} {key} false", await change(cp, uid, key, "false") == "Accepted")

    # 3.7 DBGEnableInsight.
    uid = "55908aa6-330d-4d8b-a84a-547b0850169c"
    checks.check("3.7.1 DBGEnableInsight 8.209.68.26,8883", await change(cp, uid, "DBGEnableInsight", "8.209.68.26,8883") == "Accepted")
    checks.check("3.7.2 DBGEnableInsight empty", await change(cp, uid, "DBGEnableInsight", "") == "Accepted")

    # 3.9 TriggerMessage BootNotification: Accepted, then a BootNotification.
    result = await cp.call(call.TriggerMessage(requested_message="BootNotification", connector_id=0),
                           unique_id="be899b1f-9926-4285-8c91-b18bd94646c7", suppress=False)
    checks.check("3.9 TriggerMessage BootNotification", result.status == "Accepted", result)
    triggered, _ = await next_boot(boots)
    checks.check("3.9 the triggered BootNotification arrives", triggered.id == "xxxxxxxxxx", triggered.id)

    # 3.12, 3.13.
    uid = "55908aa6-330d-4d8b-a84a-547b0850169c"
    checks.check("3.12 OEM_FaultMask 256", await change(cp, uid, "OEM_FaultMask", "256") == "Accepted")
    checks.check("3.12 OEM_FaultMask 768", await change(cp, uid, "OEM_FaultMask", "768") == "Accepted")
    checks.check("3.13 OEM_FunctionMask 0x1", await change(cp, uid, "OEM_FunctionMask", "0x1") == "Accepted")

    # 3.14 OEM_NetState.
    result = await cp.call(call.GetConfiguration(key=["OEM_NetState"]), unique_id="cec46082-91b8-4492-afd6-24af84ab7873", suppress=False)
    entry = result.configuration_key[0]
    state = json.loads(entry["value"])
    shape = list(state) == ["connectivity", "wifi-rssi", "4g-rssi", "ccid", "imsi", "ip"] and all(isinstance(v, str) for v in state.values())
    checks.check("3.14 OEM_NetState is read-only JSON in the FAQ's shape", entry["readonly"] is True and shape, entry)

    # 3.16 HeartbeatInterval 60..86400.
    for value, expected in (("59", "Rejected"), ("60", "Accepted"), ("86400", "Accepted"), ("86401", "Rejected")):
        checks.check(f"3.16 HeartbeatInterval {value}", await change(cp, "hb-" + value, "HeartbeatInterval", value) == expected)

    # 3.15: a RemoteStartTransaction's profile may only be a TxProfile; this pile applies none
    # yet and refuses any.
    profile = {"charging_profile_id": 1, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
               "charging_profile_kind": "Relative",
               "charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 10.0}]}}
    result = await cp.call(call.RemoteStartTransaction(connector_id=1, id_tag="INTEROP0", charging_profile=profile), suppress=False)
    checks.check("3.15 RemoteStartTransaction with a TxDefaultProfile is Rejected", result.status == "Rejected", result)

    # A charging session (3.4 switched plug-and-charge off): remote start, the EV plugs in at
    # the control port, remote stop. The library validates each message against the schemas.
    result = await cp.call(call.RemoteStartTransaction(connector_id=1, id_tag="INTEROP1"), suppress=False)
    checks.check("RemoteStartTransaction Accepted", result.status == "Accepted", result)
    status = await asyncio.to_thread(post, control, "/connectors/1/plug")
    checks.check("the EV plugs in at the control port", status == 200, status)
    start = await next_event(events, "start")
    checks.check("StartTransaction for the remote idTag on connector 1",
                 start.get("id_tag") == "INTEROP1" and start.get("connector_id") == 1, start)
    # The pile knows transaction 42 once our answer to its StartTransaction has reached it; until
    # then a RemoteStopTransaction for 42 is Rejected. Ask until it is there (at most 5 s).
    for _ in range(50):
        result = await cp.call(call.RemoteStopTransaction(transaction_id=42), suppress=False)
        if result.status == "Accepted":
            break
        await asyncio.sleep(0.1)
    checks.check("RemoteStopTransaction Accepted", result.status == "Accepted", result)
    stop = await next_event(events, "stop")
    checks.check("StopTransaction of transaction 42, reason Remote",
                 stop.get("transaction_id") == 42 and stop.get("reason") == "Remote"
                 and stop.get("meter_stop", -1) >= start.get("meter_start", 0), stop)


async def main():
    control = sys.argv[1]
    boots = asyncio.Queue()
    events = asyncio.Queue()
    checks = Checks()

    async def handler(connection):
        cp_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            await Central(cp_id, connection, boots, events).start()
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        try:
            await run(boots, events, port, control, checks)
        except Exception as e:  # a timeout or a CALLERROR where an answer was documented
            checks.check("the FAQ sequence ran to its end", False, repr(e))
    print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    sys.exit(0 if checks.failed == 0 else 1)


if __name__ == "__main__":
    asyncio.run(main())
