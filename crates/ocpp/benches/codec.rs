//! Decode (frame + typed payload) and encode of BootNotification, StatusNotification and a
//! MeterValues with 10 sampled values. `cargo bench -p ocpp --bench codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

use ocpp::rpc::{Endpoint, Inbound};
use ocpp::{Policy, Request};

const BOOT: &str = r#"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"M3G3","chargePointSerialNumber":"SN123456789","chargeBoxSerialNumber":"SN123456789","firmwareVersion":"V1.2.3","meterType":"DDS1532","meterSerialNumber":"M-0001"}]"#;
const STATUS: &str = r#"[2,"19223202","StatusNotification",{"connectorId":1,"errorCode":"OtherError","info":"relay","status":"Faulted","timestamp":"2026-11-24T13:10:17.123Z","vendorId":"VendorX","vendorErrorCode":"0xC000"}]"#;

fn meter_values() -> String {
    let sampled: Vec<String> = [
        ("Energy.Active.Import.Register", "Wh", "", "1234567"),
        ("Power.Active.Import", "W", "", "7360"),
        ("Power.Offered", "W", "", "7400"),
        ("Current.Import", "A", "L1", "32.0"),
        ("Current.Import", "A", "L2", "31.8"),
        ("Current.Import", "A", "L3", "31.9"),
        ("Current.Offered", "A", "", "32"),
        ("Voltage", "V", "L1-N", "230.1"),
        ("Temperature", "Celsius", "", "41.5"),
        ("SoC", "Percent", "", "63"),
    ]
    .iter()
    .map(|(m, u, p, v)| {
        let phase = if p.is_empty() { String::new() } else { format!(r#","phase":"{p}""#) };
        format!(r#"{{"value":"{v}","context":"Sample.Periodic","format":"Raw","measurand":"{m}","location":"Outlet","unit":"{u}"{phase}}}"#)
    })
    .collect();
    format!(
        r#"[2,"19223203","MeterValues",{{"connectorId":1,"transactionId":42,"meterValue":[{{"timestamp":"2026-11-24T13:10:17.000Z","sampledValue":[{}]}}]}}]"#,
        sampled.join(",")
    )
}

/// The receive path of the RPC endpoint: frame parse and typed payload decode.
fn decode(endpoint: &mut Endpoint, text: &str) -> Request {
    match endpoint.handle_frame(text, Duration::ZERO) {
        Inbound::Call { request, .. } => request.value,
        other => panic!("not a call: {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let meter = meter_values();
    for (name, text) in [
        ("BootNotification", BOOT),
        ("StatusNotification", STATUS),
        ("MeterValues10", meter.as_str()),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        let mut strict = Endpoint::new(Policy::Strict, Duration::from_secs(30), "b");
        let mut lenient = Endpoint::new(Policy::Lenient, Duration::from_secs(30), "b");
        group.bench_function("decode_strict", |b| {
            b.iter(|| decode(&mut strict, black_box(text)))
        });
        group.bench_function("decode_lenient", |b| {
            b.iter(|| decode(&mut lenient, black_box(text)))
        });
        let request = decode(&mut strict, text);
        group.bench_function("encode", |b| {
            b.iter(|| {
                ocpp::frame::call("19223203", request.action(), &black_box(&request).to_json())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
