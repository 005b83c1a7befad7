//! The fleet's one timer structure: what is due when, for every pile, in one heap on a clock
//! the caller passes in (the fleet's scenario runs it on the runtime's clock; tests move a
//! virtual one). Items due at the same instant come out in the order they were put in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

pub struct Schedule<T> {
    heap: BinaryHeap<Reverse<(Duration, u64, Entry<T>)>>,
    next_seq: u64,
}

/// A payload that takes no part in the ordering.
struct Entry<T>(T);

impl<T> PartialEq for Entry<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Schedule<T> {
    /// `item` is due at `at`.
    pub fn at(&mut self, at: Duration, item: T) {
        self.heap.push(Reverse((at, self.next_seq, Entry(item))));
        self.next_seq += 1;
    }

    /// When the first item is due.
    pub fn next_due(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The first item due at or before `now`, with its time.
    pub fn pop_due(&mut self, now: Duration) -> Option<(Duration, T)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap
            .pop()
            .map(|Reverse((at, _, Entry(item)))| (at, item))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_piles_timers_fire_in_order_on_the_virtual_clock_and_none_is_lost() {
        let mut schedule = Schedule::default();
        // Each pile's three timers, spread over a day in a scrambled order.
        let mut expected = Vec::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for pile in 0..10_000u32 {
            for n in 0..3u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = Duration::from_millis(x % 86_400_000);
                schedule.at(at, (pile, n));
                expected.push((at, pile, n));
            }
        }
        // Two share an instant: they fire in the order they were set.
        schedule.at(Duration::from_secs(3600), (20_000, 0));
        schedule.at(Duration::from_secs(3600), (20_000, 1));
        assert_eq!(schedule.len(), 30_002);
        let mut fired = Vec::new();
        let mut now = Duration::ZERO;
        while let Some(next) = schedule.next_due() {
            if let Some(early) = next.checked_sub(Duration::from_nanos(1)) {
                assert!(schedule.pop_due(early).is_none(), "nothing before its time");
            }
            // The virtual clock jumps a minute at a time; all that is due fires, none early.
            now += Duration::from_secs(60);
            while let Some((at, item)) = schedule.pop_due(now) {
                assert!(at <= now && at + Duration::from_secs(60) >= now);
                fired.push((at, item));
            }
        }
        assert_eq!(fired.len(), 30_002, "none lost");
        assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "in order");
        let same: Vec<_> = fired.iter().filter(|(_, (p, _))| *p == 20_000).collect();
        assert_eq!(same[0].1 .1, 0);
        assert_eq!(same[1].1 .1, 1);
        let mut got: Vec<_> = fired
            .iter()
            .filter(|(_, (p, _))| *p < 20_000)
            .map(|(at, (p, n))| (*at, *p, *n))
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "each timer fired once, at its time");
        assert!(schedule.is_empty());
    }
}
