use std::time::Instant;
use serde_json::value::RawValue;
fn main() {
    let text = std::fs::read_to_string("/tmp/mv.json").unwrap();
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n { let v: Vec<&RawValue> = serde_json::from_str(std::hint::black_box(&text)).unwrap(); std::hint::black_box(v); }
    println!("raw frame split: {:?}", t.elapsed() / n);
    let parts: Vec<&RawValue> = serde_json::from_str(&text).unwrap();
    let payload = parts[3].get();
    let t = Instant::now();
    for _ in 0..n { let v: serde_json::Value = serde_json::from_str(std::hint::black_box(payload)).unwrap(); std::hint::black_box(v); }
    println!("payload to Value: {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { let v: ocpp::MeterValuesRequest = serde_json::from_str(std::hint::black_box(payload)).unwrap(); std::hint::black_box(v); }
    println!("payload typed plain serde: {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { let v = ocpp::decode::<ocpp::MeterValuesRequest>(std::hint::black_box(payload), ocpp::Policy::Strict).unwrap(); std::hint::black_box(v); }
    println!("payload typed decode(): {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { let v: ocpp::Timestamp = serde_json::from_str(std::hint::black_box("\"2026-11-24T13:10:17.000Z\"")).unwrap(); std::hint::black_box(v); }
    println!("timestamp: {:?}", t.elapsed() / n);
}
