//! A transaction's power and energy over time, drawn as SVG on the server from its meter
//! values.

use maud::{html, Markup};
use serde_json::Value;

/// One reading: milliseconds since the start, and the value in W or Wh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// The energy (Wh) and power (W) series of meter values as the API lists them (`time`,
/// `sampled_value`). A sampledValue without a measurand is the energy register (OCPP 1.6
/// default); kWh and kW are scaled.
pub fn series(values: &[Value]) -> (Vec<Point>, Vec<Point>) {
    let (mut energy, mut power) = (Vec::new(), Vec::new());
    let mut first: Option<i64> = None;
    for mv in values {
        let Some(t) = mv["time"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_millis())
        else {
            continue;
        };
        let t0 = *first.get_or_insert(t);
        for sv in mv["sampled_value"].as_array().into_iter().flatten() {
            let Some(v) = sv["value"].as_str().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let measurand = sv["measurand"]
                .as_str()
                .unwrap_or("Energy.Active.Import.Register");
            let unit = sv["unit"].as_str().unwrap_or("");
            let phase = sv["phase"].as_str();
            if phase.is_some() {
                continue;
            }
            let scale = if unit.starts_with('k') { 1000.0 } else { 1.0 };
            let point = Point {
                t: t - t0,
                v: v * scale,
            };
            match measurand {
                "Energy.Active.Import.Register" => energy.push(point),
                "Power.Active.Import" => power.push(point),
                _ => {}
            }
        }
    }
    (energy, power)
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD: f64 = 48.0;

fn polyline(points: &[Point], t_max: i64, lo: f64, hi: f64) -> String {
    points
        .iter()
        .map(|p| {
            let x = PAD + (p.t as f64 / t_max.max(1) as f64) * (W - 2.0 * PAD);
            let y = H - PAD + -((p.v - lo) / (hi - lo).max(1e-9)) * (H - 2.0 * PAD);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn range(points: &[Point]) -> (f64, f64) {
    let lo = points.iter().map(|p| p.v).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.v).fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    }
}

/// One line of a chart: its readings, the CSS class that colours it, its name and unit.
pub struct Line<'a> {
    pub points: &'a [Point],
    pub class: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    /// Its scale starts at zero (else at its lowest reading).
    pub from_zero: bool,
}

/// A chart of two lines, each on its own scale (its range written above it), against the time
/// from 0 to `t_max` ms; `axis` labels the two ends of the time axis.
pub fn two_lines(left: &Line, right: &Line, t_max: i64, axis: (&str, &str)) -> Markup {
    let t_max = t_max.max(1);
    let scale = |l: &Line| {
        let (lo, hi) = range(l.points);
        if l.from_zero {
            (lo.min(0.0), hi)
        } else {
            (lo, hi)
        }
    };
    let (llo, lhi) = scale(left);
    let (rlo, rhi) = scale(right);
    let label = |l: &Line, lo: f64, hi: f64| {
        let digits = if hi - lo < 10.0 { 1 } else { 0 };
        format!("{} {lo:.digits$}–{hi:.digits$} {}", l.name, l.unit)
    };
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img" aria-label={ (left.name) " and " (right.name) } {
            rect x=(PAD) y=(PAD) width=(W - 2.0 * PAD) height=(H - 2.0 * PAD) class="frame" {}
            @if left.points.len() > 1 {
                polyline class=(left.class) points=(polyline(left.points, t_max, llo, lhi)) {}
            }
            @if right.points.len() > 1 {
                polyline class=(right.class) points=(polyline(right.points, t_max, rlo, rhi)) {}
            }
            text x=(PAD) y=(PAD - 8.0) class=(left.class) { (label(left, llo, lhi)) }
            text x=(W - PAD) y=(PAD - 8.0) text-anchor="end" class=(right.class) { (label(right, rlo, rhi)) }
            text x=(PAD) y=(H - PAD + 18.0) { (axis.0) }
            text x=(W - PAD) y=(H - PAD + 18.0) text-anchor="end" { (axis.1) }
        }
    }
}

/// The chart: energy (Wh) and power (W), each on its own scale, against the time since the
/// first reading.
pub fn chart(energy: &[Point], power: &[Point]) -> Markup {
    let t_max = energy
        .iter()
        .chain(power)
        .map(|p| p.t)
        .max()
        .unwrap_or(0)
        .max(1);
    let span = if t_max < 120_000 {
        format!("{} s", t_max / 1000)
    } else {
        format!("{:.1} min", t_max as f64 / 60_000.0)
    };
    let energy = Line {
        points: energy,
        class: "energy",
        name: "energy",
        unit: "Wh",
        from_zero: false,
    };
    let power = Line {
        points: power,
        class: "power",
        name: "power",
        unit: "W",
        from_zero: true,
    };
    two_lines(&energy, &power, t_max, ("0", &span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readings_become_series() {
        let values = vec![
            json!({"time": "2026-01-01T10:00:00.000Z", "sampled_value": [
                {"value": "1000"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "230", "measurand": "Voltage", "phase": "L1"}]}),
            json!({"time": "2026-01-01T10:01:00.000Z", "sampled_value": [
                {"value": "1.12", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "bad", "measurand": "Power.Active.Import"}]}),
        ];
        let (energy, power) = series(&values);
        assert_eq!(
            energy,
            vec![
                Point { t: 0, v: 1000.0 },
                Point {
                    t: 60_000,
                    v: 1120.0
                }
            ]
        );
        assert_eq!(power, vec![Point { t: 0, v: 7200.0 }]);
        let svg = chart(&energy, &power).into_string();
        assert!(svg.contains("<polyline class=\"energy\""), "{svg}");
        assert!(svg.contains("1000–1120 Wh"), "{svg}");
        assert!(svg.contains(">60 s<"), "{svg}");
    }
}
