// SPDX-License-Identifier: MPL-2.0
//! Debian's headless Chromium for the browser tests: the page's
//! `console.log("liveclip: …")` lines are what the tests read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Headless Chromium on `url`, until a log line starts with one of `ends`.
pub fn chromium(url: &str, ends: &[&str], timeout: Duration) -> Vec<String> {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium (Debian package chromium) runs");
    let mut err = child.stderr.take().unwrap();
    // Killed however this ends (a panic too).
    let _guard = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut pending = String::new();
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                if let Some(p) = line.find("liveclip: ") {
                    let msg = line[p + 10..].split('"').next().unwrap_or("").to_string();
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let end = ends.iter().any(|e| l.starts_with(e));
                lines.push(l);
                if end {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    lines
}

/// A child process killed (and reaped) when this is dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Live Replay page's files and hls.js in `{dir}/site`, as the demo
/// lays them out (an `http-web-root`), with `driver` (a test script) loaded
/// after the page's own when given.
pub fn site(dir: &Path, driver: Option<&str>) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    for f in ["index.html", "app.js", "style.css"] {
        let mut text = std::fs::read_to_string(root.join("web/ui").join(f)).unwrap();
        if driver.is_some() && f == "index.html" {
            text = text.replace("</body>", "<script src=\"driver.js\"></script></body>");
        }
        std::fs::write(site.join(f), text).unwrap();
    }
    let hlsjs = root.join("web/node_modules/hls.js/dist/hls.min.js");
    assert!(
        hlsjs.exists(),
        "hls.js is installed by scripts/deps.sh (npm ci in web/)"
    );
    std::fs::copy(hlsjs, site.join("hls.min.js")).unwrap();
    if let Some(driver) = driver {
        std::fs::write(site.join("driver.js"), driver).unwrap();
    }
    site
}
