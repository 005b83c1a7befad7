//! The bench's fleet as several `ocpile fleet` processes: a process holds a socket per pile,
//! and the open-file limit caps how many one can hold. The piles are split into the fewest
//! processes that fit, each with identities of its own, started together; their figures are
//! summed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::process::{cpu_time, rss_kib, Running};

/// Open files a fleet process needs beside its piles' sockets (its store, its control API,
/// the runtime, standard streams), as `ocpile fleet` raises its own limit by.
const FILE_MARGIN: u64 = 256;

/// The most piles one fleet process can hold under the soft open-file limit `soft`.
pub fn piles_per_process(soft: u64) -> usize {
    usize::try_from(soft.saturating_sub(FILE_MARGIN))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// `n` piles in the fewest processes of at most `per_process` each, as even as possible.
pub fn split(n: usize, per_process: usize) -> Vec<usize> {
    let processes = n.div_ceil(per_process.max(1)).max(1);
    (0..processes)
        .map(|i| n / processes + usize::from(i < n % processes))
        .collect()
}

/// The soft open-file limit of this process (its children start with it).
pub fn soft_file_limit() -> u64 {
    let mut files = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut files) };
    files.rlim_cur
}

/// Sums the fleets' summaries: every count added, the latency histograms added bucket by
/// bucket; other fields (the scenario's name) from the first.
pub fn merge(summaries: &[Value]) -> Value {
    let mut total = serde_json::Map::new();
    for summary in summaries {
        let Some(fields) = summary.as_object() else {
            continue;
        };
        for (key, value) in fields {
            let merged = match (total.get(key), value) {
                (None, v) => v.clone(),
                (Some(Value::Number(a)), Value::Number(b)) => match (a.as_u64(), b.as_u64()) {
                    (Some(a), Some(b)) => Value::from(a + b),
                    _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
                },
                (Some(Value::Array(a)), Value::Array(b)) => {
                    let len = a.len().max(b.len());
                    let at =
                        |v: &Vec<Value>, i: usize| v.get(i).and_then(Value::as_u64).unwrap_or(0);
                    Value::from((0..len).map(|i| at(a, i) + at(b, i)).collect::<Vec<u64>>())
                }
                (Some(first), _) => first.clone(),
            };
            total.insert(key.clone(), merged);
        }
    }
    Value::Object(total)
}

/// How the bench runs its fleet processes.
pub struct FleetPlan<'a> {
    /// The central's OCPP URL without the identity.
    pub csms: &'a str,
    /// Where each process keeps its state (a directory per process under it).
    pub dir: &'a Path,
    pub sample_interval: u32,
    /// Piles started per second, over all processes.
    pub connect_rate: f64,
}

struct FleetProcess {
    running: Running,
    control: String,
    rss_before: u64,
    piles: usize,
}

/// The fleet processes of one run.
pub struct Fleets {
    processes: Vec<FleetProcess>,
    started: Instant,
}

impl Fleets {
    /// Starts a process per share, all at once, and waits for each one's control API.
    pub fn start(plan: &FleetPlan, shares: &[usize]) -> anyhow::Result<Fleets> {
        let total: usize = shares.iter().sum();
        let several = shares.len() > 1;
        let started = Instant::now();
        let mut running = Vec::new();
        for (i, &piles) in shares.iter().enumerate() {
            let rate = plan.connect_rate * piles as f64 / total.max(1) as f64;
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args(["fleet", "--count", &piles.to_string(), "--csms", plan.csms])
                .arg("--state")
                .arg(plan.dir.join(format!("fleet-{i}")))
                .args(["--control", "127.0.0.1:0", "--log-kib", "1"])
                .args(["--id-tag", "BENCH", "--card-share", "1"])
                .args(["--sample-interval", &plan.sample_interval.to_string()])
                .args(["--connect-rate", &rate.to_string()])
                .env("RUST_LOG", "error");
            if several {
                // Identities of its own: F1-00001... in the second process.
                cmd.args(["--id-prefix", &format!("F{i}-")]);
            }
            // Spread over eight source addresses per process (127.0.i.2-9): the kernel's
            // search for a free source port grows with the connections one address holds
            // (half the fleet's CPU at 19,000 from one).
            cmd.args(["--bind", &format!("127.0.{i}.2-127.0.{i}.9")]);
            running.push((Running::start(cmd, "ocpile fleet")?, piles));
        }
        let mut processes = Vec::new();
        for (running, piles) in running {
            let rss_before = running
                .wait_for("fleet: memory before the piles: ", Duration::from_secs(60))?
                .trim_end_matches(" KiB")
                .parse()
                .unwrap_or(0);
            let control =
                running.wait_for("fleet control API listening on ", Duration::from_secs(120))?;
            processes.push(FleetProcess {
                running,
                control,
                rss_before,
                piles,
            });
        }
        Ok(Fleets { processes, started })
    }

    pub fn count(&self) -> usize {
        self.processes.len()
    }

    /// Since the first process was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Each process's summary (`GET /fleet`), in order.
    pub async fn summaries(&self, client: &reqwest::Client) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        for p in &self.processes {
            let url = format!("http://{}/fleet", p.control);
            let text = client.get(&url).send().await?.text().await?;
            all.push(serde_json::from_str(&text).with_context(|| format!("GET {url}"))?);
        }
        Ok(all)
    }

    /// Asks every process for a scenario.
    pub async fn set_scenario(&self, client: &reqwest::Client, name: &str) -> anyhow::Result<()> {
        for p in &self.processes {
            client
                .post(format!("http://{}/fleet/scenario", p.control))
                .header("content-type", "application/json")
                .body(serde_json::json!({ "scenario": name }).to_string())
                .send()
                .await?
                .error_for_status()?;
        }
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|p| p.running.pid()).collect()
    }

    /// CPU time of every process so far.
    pub fn cpu_time(&self) -> Duration {
        self.pids().into_iter().map(cpu_time).sum()
    }

    /// The processes' RSS growth since before they built their piles, per pile.
    pub fn kib_per_pile(&self) -> f64 {
        let grown: u64 = self
            .processes
            .iter()
            .map(|p| rss_kib(p.running.pid()).saturating_sub(p.rss_before))
            .sum();
        let piles: usize = self.processes.iter().map(|p| p.piles).sum();
        grown as f64 / piles.max(1) as f64
    }

    /// Stops every process at once (SIGINT); the MeterValues they saw answered, from the
    /// summary each prints when it stops, or from `last` (its latest one) if it printed none.
    pub fn stop(&mut self, last: &[Value]) -> u64 {
        for p in &self.processes {
            p.running.send_interrupt();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut answered = 0;
        for (i, p) in self.processes.iter_mut().enumerate() {
            p.running.wait_exit(deadline);
            let printed = p
                .running
                .lines
                .try_iter()
                .filter(|l| l.starts_with('{'))
                .last()
                .and_then(|l| serde_json::from_str::<Value>(&l).ok());
            answered += printed
                .as_ref()
                .or(last.get(i))
                .and_then(|s| s["meter_values_answered"].as_u64())
                .unwrap_or(0);
        }
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_piles_are_split_into_the_fewest_processes_that_fit() {
        assert_eq!(split(1000, 19_744), vec![1000]);
        assert_eq!(split(19_744, 19_744), vec![19_744]);
        assert_eq!(split(19_745, 19_744), vec![9873, 9872]);
        assert_eq!(
            split(100_000, 19_744),
            vec![16_667, 16_667, 16_667, 16_667, 16_666, 16_666]
        );
        assert_eq!(split(1000, 300), vec![250, 250, 250, 250]);
        assert_eq!(split(10, 3), vec![3, 3, 2, 2]);
        for (n, per) in [(7, 2), (100_000, 19_744), (1, 1), (999, 1000), (1001, 1000)] {
            let shares = split(n, per);
            assert_eq!(shares.iter().sum::<usize>(), n, "{n} over {per}");
            assert!(shares.iter().all(|&s| s <= per && s > 0), "{shares:?}");
            assert_eq!(shares.len(), n.div_ceil(per), "{n} over {per}");
        }
    }

    #[test]
    fn the_limit_leaves_room_for_the_process_own_files() {
        assert_eq!(piles_per_process(20_000), 19_744);
        assert_eq!(piles_per_process(100), 1);
        assert_eq!(split(100_000, piles_per_process(20_000)).len(), 6);
    }

    #[test]
    fn summaries_add_up_counts_and_histograms() {
        let a = json!({"booted": 3, "calls_answered": 10, "latency_buckets": [1, 2, 3],
            "scenario": "busy"});
        let b = json!({"booted": 4, "calls_answered": 5, "latency_buckets": [0, 1, 1, 7],
            "scenario": "busy"});
        let m = merge(&[a, b]);
        assert_eq!(m["booted"], 7);
        assert_eq!(m["calls_answered"], 15);
        assert_eq!(m["latency_buckets"], json!([1, 3, 4, 7]));
        assert_eq!(m["scenario"], "busy");
        assert_eq!(merge(&[]), json!({}));
    }
}
