// SPDX-License-Identifier: MPL-2.0
//! The Live Replay page (served by hlsclipsink at /ui/) as a new user meets
//! it: it plays live, opens a session, marks a range and makes a clip that
//! starts at the marked instant, driven in Debian's headless Chromium.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::{chromium, site};
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
    // One rendition: no quality picker, no level shown.
    const picker = document.getElementById("main-level-picker");
    const chip = document.getElementById("main-level");
    log("level picker " + (picker.hidden && chip.hidden ? "hidden" : "shown"));
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
    let site = site(dir.path(), Some(DRIVER));
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
    assert_eq!(find("autotest level picker "), "hidden", "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("level ")),
        "no level shown for one rendition: {lines:?}"
    );
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
    // (target/ may be missing here when CARGO_TARGET_DIR points elsewhere.)
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/live-replay.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    screenshot(&page, &shot, 12_000);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "a real page"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
