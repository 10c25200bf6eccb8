// SPDX-License-Identifier: MPL-2.0
//! The Live Replay page (served by hlsclipsink at /ui/) as a new user meets
//! it: it plays live, opens a session, marks a range and makes a clip that
//! starts at the marked instant, driven in Debian's headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::chromium;
use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

/// Drives the real page through its test hooks (`window.liveclip`).
const DRIVER: &str = r##"
(async () => {
  const log = (m) => console.log("liveclip: autotest " + m);
  const until = async (f, ms = 45000) => {
    const t = Date.now();
    while (!f()) {
      if (Date.now() - t > ms) throw new Error("timeout waiting for " + f);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await until(() => window.liveclip);
    const L = window.liveclip;
    const live = document.getElementById("live-player");
    await until(() => live.currentTime > 0);
    const t0 = live.currentTime;
    await until(() => live.currentTime > t0 + 1);
    log("live advanced " + (live.currentTime - t0).toFixed(3));
    await until(() => document.querySelector("#sessions .session .rewatch"));
    document.querySelector("#sessions .session .rewatch").click();
    await until(() => L.state.mainMode === "replay" && live.currentTime > 0.5);
    log("session opened " + L.state.mainMediaId);
    L.live();
    await until(() => L.state.previewStart !== null);
    const a = L.state.previewStart + 1.5;
    const b = a + 2.0;
    L.markIn(a);
    L.markOut(b);
    document.getElementById("clip-share").click();
    await until(() => L.state.lastClip);
    log("marked " + a.toFixed(3) + " " + b.toFixed(3) + " media " + L.state.mediaId);
    log("mp4 " + new URL(L.state.lastClip.mp4Url, location.href).href);
    log("manifest " + new URL(L.state.lastClip.manifestUrl, location.href).href);
    await until(() => document.getElementById("clip-player").currentTime > 0.5);
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
})();
"##;

/// The page's files, hls.js and (optionally) a driver script, as the demo
/// lays them out.
fn site(dir: &Path, driver: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    for f in ["index.html", "app.js", "style.css"] {
        let mut text = std::fs::read_to_string(root.join("web/ui").join(f)).unwrap();
        if driver && f == "index.html" {
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
    if driver {
        std::fs::write(site.join("driver.js"), DRIVER).unwrap();
    }
    site
}

/// A PNG of `url` after `budget_ms` of page time.
fn screenshot(url: &str, out: &Path, budget_ms: u32) {
    let profile = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1400,1000",
        ])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success());
}

#[test]
fn live_replay_page_clips_the_marked_range() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = site(dir.path(), true);
    let pipeline = numbered_av(
        dir.path(),
        &format!(
            "target-duration=1 http-address=127.0.0.1:{port} http-web-root={}",
            site.display()
        ),
        90,
        30,
        true,
    );
    play_until_segments(&pipeline, 6);
    // A browser opening the server is sent to the page.
    let r = request(
        "GET",
        &format!("http://127.0.0.1:{port}/"),
        &[("accept", "text/html")],
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("ui/"));
    assert_eq!(
        get(&format!(
            "http://127.0.0.1:{port}/ui/..%2F..%2Fetc%2Fpasswd"
        ))
        .status,
        404
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/ui/.hidden")).status,
        404
    );

    let page = format!("http://127.0.0.1:{port}/ui/?stream=cam");
    let lines = chromium(
        &page,
        &["autotest done", "autotest failed"],
        Duration::from_secs(90),
    );
    let find = |p: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p:?} in {lines:?}"))
            .to_string()
    };
    assert!(lines.iter().any(|l| l == "autotest done"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("error")),
        "the page reported errors: {lines:?}"
    );
    find("autotest live advanced ");
    find("autotest session opened ");
    let marked = find("autotest marked ");
    let a: f64 = marked.split_whitespace().next().unwrap().parse().unwrap();
    let mp4 = find("autotest mp4 ");
    let manifest = find("autotest manifest ");

    // The downloaded MP4 starts at the marked instant, within one frame.
    let r = get(&mp4);
    assert_eq!(r.status, 200, "{mp4}: {}", r.text());
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("attachment"),
        "a download"
    );
    let file = dir.path().join("download.mp4");
    std::fs::write(&file, &r.body).unwrap();
    assert!(decode_errors(&file).is_empty());
    let frames = frame_numbers(&file);
    let expected = (a * FPS as f64).ceil() as i64;
    assert!(
        (i64::from(frames[0]) - expected).abs() <= 1,
        "first frame {} for a mark at {a:.3} s (frame {expected})",
        frames[0]
    );
    assert!(
        (59..=61).contains(&frames.len()),
        "2 s: {} frames",
        frames.len()
    );
    // The shared link is a clip manifest that plays the same frames.
    let played = frame_numbers(Path::new(&manifest));
    assert!(played.contains(&frames[0]) && played.contains(frames.last().unwrap()));

    // A screenshot of the page (kept with the build for a look).
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/live-replay.png");
    screenshot(&page, &shot, 12_000);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "a real page"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
