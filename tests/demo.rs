// SPDX-License-Identifier: MPL-2.0
//! The demo command as a new user runs it: it serves every URL it prints
//! and ends cleanly on Ctrl-C. (A test binary of its own, so that it does
//! not share the machine with the browser tests.)

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::http::*;
use common::*;

/// `./scripts/demo.sh` as a new user runs it (with the plugin the tests
/// built): every URL it prints answers, and Ctrl-C ends it cleanly.
#[test]
fn the_demo_serves_every_url_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("DURATION", "120")
        .env("HTTP", format!("127.0.0.1:{port}"))
        .env("OUT", dir.path())
        .env("LIVECLIP_PLUGIN_DIR", plugin_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) else {
            continue;
        };
        if line.contains("Setting pipeline to PLAYING") {
            break;
        }
        printed.push(line);
    }
    let urls: Vec<(String, String)> = printed
        .iter()
        .filter_map(|l| {
            let i = l.find("http://")?;
            let url = l[i..]
                .split_whitespace()
                .next()?
                .trim_end_matches('\'')
                .to_string();
            let method = if l.contains("-X POST") { "POST" } else { "GET" };
            Some((method.to_string(), url))
        })
        .collect();
    assert!(urls.len() >= 6, "{printed:?}");
    // Wait for the first segments, then fetch everything printed.
    let sessions = format!("http://127.0.0.1:{port}/demo/sessions");
    assert!(wait_for(Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(&sessions).json()["sessions"][0]["segments"].as_u64() >= Some(3)
    }));
    for (method, url) in &urls {
        let r = request(method, url, &[]);
        assert!(
            r.status == 200 || r.status == 302,
            "{method} {url}: {} {}",
            r.status,
            r.text()
        );
    }
    // Ctrl-C (to `timeout`, which passes it on to gst-launch -e): EOS, the
    // session closed, the script ends.
    let pid = child.id();
    let _ = std::process::Command::new("pkill")
        .args(["-INT", "-P", &pid.to_string(), "timeout"])
        .status();
    let ended = wait_for(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = child.kill();
    }
    assert!(ended, "the demo ends on Ctrl-C");
    // gst-launch itself is gone too, and left the session closed.
    let pattern = format!("gst-launch-1.0 -e.*127.0.0.1:{port}");
    // pgrep (procps, installed by scripts/deps.sh) must run: exit 1 is
    // "no such process", anything else fails the test.
    let running = || {
        let status = std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .status()
            .expect("pgrep runs (procps, scripts/deps.sh)");
        assert!(matches!(status.code(), Some(0 | 1)), "pgrep: {status}");
        status.success()
    };
    assert!(wait_for(Duration::from_secs(60), || !running()));
    let sessions = dir.path().join("recordings/demo/sessions.json");
    let state = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&sessions).unwrap()).unwrap()
    };
    wait_for(Duration::from_secs(5), || {
        state()["sessions"][0]["state"] == "ended"
    });
    let json = state();
    assert_eq!(json["sessions"][0]["state"], "ended", "{json}");
}
