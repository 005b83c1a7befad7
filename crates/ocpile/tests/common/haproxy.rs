//! HAProxy with the shipped `deploy/haproxy.cfg`, its ports and servers made the test's.

use std::process::{Child, Command, Stdio};

/// HAProxy: `OCPILE_HAPROXY` (scripts/test.sh sets it), else Debian's place for it.
pub fn binary() -> String {
    std::env::var("OCPILE_HAPROXY").unwrap_or_else(|_| "/usr/sbin/haproxy".into())
}

/// The shipped configuration listening on `front` (its statistics on `stats`) with `servers`
/// (`host:port` each) as its backend's servers; each change asserted to apply.
pub fn config(front: u16, stats: u16, servers: &[String]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/haproxy.cfg");
    let shipped = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let (mut binds, mut server_lines) = (0, 0);
    for line in shipped.lines() {
        let trimmed = line.trim();
        if trimmed == "bind *:8180" {
            out.push(format!("    bind 127.0.0.1:{front}"));
            binds += 1;
        } else if trimmed == "bind 127.0.0.1:8404" {
            out.push(format!("    bind 127.0.0.1:{stats}"));
            binds += 1;
        } else if trimmed.starts_with("server ") {
            if server_lines == 0 {
                for (i, addr) in servers.iter().enumerate() {
                    out.push(format!("    server node{i} {addr}"));
                }
            }
            server_lines += 1;
        } else {
            out.push(line.to_owned());
        }
    }
    assert_eq!(binds, 2, "the frontend's and the statistics' bind lines");
    assert!(server_lines > 0, "the backend's server lines");
    out.join("\n") + "\n"
}

/// A running HAProxy (in the foreground); killed when dropped.
pub struct HaProxy(Child);

impl HaProxy {
    /// Checks the configuration (`haproxy -c`), then starts HAProxy on it.
    pub fn start(config: &str, dir: &std::path::Path) -> HaProxy {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let check = Command::new(binary())
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{} runs ({e}): apt-get install haproxy", binary()));
        assert!(
            check.status.success(),
            "haproxy -c: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        HaProxy(child)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
