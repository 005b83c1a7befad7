//! The fleet's pulse over the last hour: every ten seconds the number of OCPP frames seen so
//! far and of piles online, from which the dashboard's home page shows messages per second and
//! draws its chart.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::Millis;

/// How often a sample is taken.
pub const EVERY: Duration = Duration::from_secs(10);
/// How far back samples are kept.
const KEPT: Millis = 3_600_000;

/// One sample: the frames counted since the start, and the piles online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub time: Millis,
    pub frames: u64,
    pub online: u64,
}

/// One interval of the last hour: when it ended, frames per second in it, piles online at its
/// end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub time: Millis,
    pub per_second: f64,
    pub online: u64,
}

/// The samples of the last hour.
#[derive(Debug, Default)]
pub struct Pulse {
    samples: Mutex<VecDeque<Sample>>,
}

fn per_second(from: &Sample, to: &Sample) -> Option<f64> {
    let ms = to.time - from.time;
    (ms > 0).then(|| to.frames.saturating_sub(from.frames) as f64 * 1000.0 / ms as f64)
}

impl Pulse {
    /// Keeps a sample and forgets those more than an hour older (one more stays, the start of
    /// the hour's first interval). A sample older than the last is ignored.
    pub fn record(&self, sample: Sample) {
        let mut samples = self.samples.lock().expect("pulse lock");
        if samples.back().is_some_and(|last| last.time >= sample.time) {
            return;
        }
        samples.push_back(sample);
        while samples.len() > 1 && samples[1].time <= sample.time - KEPT {
            samples.pop_front();
        }
    }

    /// Frames per second from the newest sample at least a second older than `now` to `now`;
    /// none before there is one.
    pub fn rate(&self, now: Sample) -> Option<f64> {
        let samples = self.samples.lock().expect("pulse lock");
        samples
            .iter()
            .rev()
            .find(|s| s.time <= now.time - 1000)
            .and_then(|s| per_second(s, &now))
    }

    /// The intervals between the samples kept, oldest first.
    pub fn last_hour(&self) -> Vec<Interval> {
        let samples = self.samples.lock().expect("pulse lock");
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .filter_map(|(from, to)| {
                Some(Interval {
                    time: to.time,
                    per_second: per_second(from, to)?,
                    online: to.online,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: Millis, frames: u64, online: u64) -> Sample {
        Sample {
            time,
            frames,
            online,
        }
    }

    #[test]
    fn rates_come_from_the_counted_frames() {
        let pulse = Pulse::default();
        assert_eq!(pulse.rate(at(5_000, 10, 1)), None);
        pulse.record(at(0, 0, 1));
        pulse.record(at(10_000, 200, 2));
        pulse.record(at(20_000, 300, 3));
        // An older sample, as a clock that stepped back would give: ignored.
        pulse.record(at(15_000, 250, 3));
        assert_eq!(
            pulse.last_hour(),
            vec![
                Interval {
                    time: 10_000,
                    per_second: 20.0,
                    online: 2
                },
                Interval {
                    time: 20_000,
                    per_second: 10.0,
                    online: 3
                },
            ]
        );
        // From the sample at 20 s to now (25 s): 50 frames in 5 s.
        assert_eq!(pulse.rate(at(25_000, 350, 3)), Some(10.0));
        // Less than a second after the newest sample: measured from the one before.
        assert_eq!(pulse.rate(at(20_500, 326, 3)), Some(12.0));
    }

    #[test]
    fn an_hour_is_kept() {
        let pulse = Pulse::default();
        for i in 0..=720 {
            pulse.record(at(i * 10_000, i as u64 * 10, 1));
        }
        let hour = pulse.last_hour();
        assert_eq!(hour.len(), 360, "an hour of ten-second intervals");
        assert_eq!(hour.first().unwrap().time, 3_610_000);
        assert_eq!(hour.last().unwrap().time, 7_200_000);
        assert!(hour.iter().all(|i| i.per_second == 1.0));
    }
}
