//! The processes the bench starts, and what Linux says of them (`/proc`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

/// Resident memory of a process (KiB), from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process used so far (user and system), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The fields after the command name (which may hold spaces, in parentheses).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

/// The CPU time so far of every process whose command name is `name` (`/proc/PID/comm`),
/// by pid.
pub fn cpu_of_named(name: &str) -> HashMap<u32, Duration> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(|pid| (pid, cpu_time(pid)))
        .collect()
}

/// The CPU time used between two readings of `cpu_of_named`: a process started in between
/// counts whole, one that ended in between is not seen.
pub fn cpu_between(before: &HashMap<u32, Duration>, after: &HashMap<u32, Duration>) -> Duration {
    after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or_default()))
        .sum()
}

/// A child process whose standard error is read line by line; killed when dropped.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn start(mut command: Command, what: &str) -> anyhow::Result<Running> {
        // The error a child stops on, not a backtrace of it, is what the bench shows.
        command.env("RUST_LIB_BACKTRACE", "0");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let (tx, lines) = mpsc::channel();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Running { child, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line that starts with `prefix`; the rest of it. The error tells the last
    /// lines seen (why the process stopped, mostly).
    pub fn wait_for(&self, prefix: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = std::time::Instant::now() + within;
        let mut seen = std::collections::VecDeque::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                let said: Vec<String> = seen.into_iter().collect();
                anyhow::bail!("waiting for {prefix:?}; last said: {}", said.join(" | "));
            };
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
            if seen.len() == 5 {
                seen.pop_front();
            }
            seen.push_back(line);
        }
    }

    /// SIGINT, then the exit (SIGKILL after `grace`).
    pub fn interrupt(&mut self, grace: Duration) {
        self.send_interrupt();
        self.wait_exit(std::time::Instant::now() + grace);
    }

    /// SIGINT, without waiting.
    pub fn send_interrupt(&self) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
    }

    /// Waits for the exit until `deadline`, then SIGKILL.
    pub fn wait_exit(&mut self, deadline: std::time::Instant) {
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_between_readings_counts_new_processes_whole() {
        let s = Duration::from_secs;
        let before = HashMap::from([(1, s(5)), (2, s(7))]);
        let after = HashMap::from([(1, s(8)), (3, s(2))]);
        // 3 s of process 1, 2 s of process 3 (new); process 2 ended.
        assert_eq!(cpu_between(&before, &after), s(5));
    }

    #[test]
    fn this_process_is_found_by_its_name() {
        let me = std::process::id();
        let name = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(cpu_of_named(name.trim()).contains_key(&me));
        assert!(cpu_of_named("no-such-process-name").is_empty());
    }
}
