//! Decode (frame + typed payload) and encode of BootNotification, StatusNotification and a
//! MeterValues with 10 sampled values. `cargo bench -p ocpp --bench codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ocpp::{Frame, Policy, Request};

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
    format!(r#"[2,"19223203","MeterValues",{{"connectorId":1,"transactionId":42,"meterValue":[{{"timestamp":"2026-11-24T13:10:17.000Z","sampledValue":[{}]}}]}}]"#, sampled.join(","))
}

fn decode(text: &str, policy: Policy) -> Request {
    match Frame::parse(text) {
        Ok(Some(Frame::Call(call))) => call.decode(policy).expect("valid").value,
        _ => panic!("not a call"),
    }
}

fn bench(c: &mut Criterion) {
    let meter = meter_values();
    for (name, text) in [("BootNotification", BOOT), ("StatusNotification", STATUS), ("MeterValues10", meter.as_str())] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("decode_strict", |b| b.iter(|| decode(black_box(text), Policy::Strict)));
        group.bench_function("decode_lenient", |b| b.iter(|| decode(black_box(text), Policy::Lenient)));
        let request = decode(text, Policy::Strict);
        group.bench_function("encode", |b| b.iter(|| ocpp::frame::call("19223203", request.action(), &black_box(&request).to_json())));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
