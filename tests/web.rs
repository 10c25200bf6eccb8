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

/// Drives the page on a recorded session (`media=` in the page's URL): it
/// rewatches it, hovers the storyboard strips of the Program player and of
/// the preview at the recording times of `times=`, reading back what each
/// hover shows (the tile box's CSS background over the sprite, and the
/// number of the frame pictured in that part of the sprite), then makes a
/// 2 s clip from `clip=` and loads the clip player's poster.
const STORYBOARD_DRIVER: &str = r##"
(async () => {
  const log = (m) => console.log("liveclip: autotest " + m);
  const until = async (f, ms = 30000) => {
    const t = Date.now();
    while (!f()) {
      if (Date.now() - t > ms) throw new Error("timeout waiting for " + f);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // The number a numbered picture spells (five bands, base 5), read from
  // the part (sx, sy, sw, sh) of an image.
  const canvas = document.createElement("canvas");
  canvas.width = 16;
  canvas.height = 240;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const number = (img, sx, sy, sw, sh) => {
    ctx.drawImage(img, sx, sy, sw, sh, 0, 0, 16, 240);
    const px = ctx.getImageData(8, 0, 1, 240).data;
    let n = 0;
    for (let band = 4; band >= 0; band--) {
      let sum = 0;
      for (let y = band * 48 + 12; y < band * 48 + 36; y++) sum += px[y * 4];
      n = n * 5 + Math.min(4, Math.max(0, Math.round(sum / 24 / 63.75)));
    }
    return n;
  };
  const image = async (url) => {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  };
  const q = new URLSearchParams(location.search);
  const media = q.get("media");
  const times = q.get("times").split(",").map(Number);
  const clipAt = Number(q.get("clip"));
  try {
    await until(() => window.liveclip);
    const L = window.liveclip;
    const rewatch = () => document.querySelector(`#sessions .session[data-media-id="${media}"] .rewatch`);
    await until(rewatch);
    rewatch().click();
    const strips = [
      ["main", document.getElementById("main-scrub"), document.getElementById("live-player")],
      ["preview", document.getElementById("preview-scrub"), document.getElementById("preview-player")],
    ];
    for (const [name, strip, video] of strips) {
      const player = L.players[name];
      await until(() => player.anchor && player.anchor.mediaId === media && !strip.hidden &&
                        video.seekable.length > 0);
      if (name === "main") await until(() => L.state.mainMode === "replay");
      const track = strip.querySelector(".scrub-track");
      const tile = strip.querySelector(".scrub-tile");
      const tip = strip.querySelector(".scrub-tip");
      const start = video.seekable.start(0);
      const end = video.seekable.end(video.seekable.length - 1);
      log(name + " range " + start.toFixed(3) + " " + end.toFixed(3) + " anchor " +
          player.anchor.recStart.toFixed(3) + " " + player.anchor.fragStart.toFixed(3));
      // The pointer over the strip at a player time.
      const pointer = (type, t) => {
        const r = track.getBoundingClientRect();
        strip.dispatchEvent(new PointerEvent(type, {
          clientX: r.left + ((t - start) / (end - start)) * r.width,
          clientY: r.top + r.height / 2,
          bubbles: type !== "pointerenter" && type !== "pointerleave",
          pointerType: "mouse",
          isPrimary: true,
        }));
      };
      // The player time of recording time `time`.
      const at = (time) => player.anchor.fragStart + (time - player.anchor.recStart);
      pointer("pointerenter", at(times[0]));
      await until(() => L.storyboard(media));
      const board = L.storyboard(media);
      const sprite = await image(board.sprite);
      for (const time of times) {
        pointer("pointermove", at(time));
        await until(() => !tip.hidden && !tile.hidden);
        const css = getComputedStyle(tile);
        const [px, py] = css.backgroundPosition.split(" ").map(parseFloat);
        const [bw, bh] = [parseFloat(css.width), parseFloat(css.height)];
        const scale = bw / board.tileWidth;
        const [sx, sy] = [-px / scale, -py / scale];
        const shown = number(sprite, sx, sy, bw / scale, bh / scale);
        log("hover " + name + " " + time + " label " + strip.querySelector(".scrub-time").textContent +
            " box " + bw + " " + bh + " sprite " + sx.toFixed(2) + " " + sy.toFixed(2) +
            " background " + (css.backgroundImage.includes(board.sprite) ? "sprite" : css.backgroundImage) +
            " number " + shown);
      }
      pointer("pointerleave", at(times[0]));
      log(name + " left tip " + (tip.hidden ? "hidden" : "shown"));
    }

    // A clip from `clipAt`, and its poster.
    L.markIn(clipAt, media);
    L.markOut(clipAt + 2, media);
    document.getElementById("clip-share").click();
    await until(() => L.state.lastClip);
    const clipPlayer = document.getElementById("clip-player");
    const poster = clipPlayer.poster;
    const img = await image(poster);
    log("poster set " + (poster === L.state.lastClip.posterUrl) + " " + poster);
    log("poster loaded " + img.naturalWidth + "x" + img.naturalHeight + " number " +
        number(img, 0, 0, img.naturalWidth, img.naturalHeight));
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
})();
"##;

/// A recorded session rewatched on the page: the storyboard strips under
/// the Program player and the preview load the session's storyboard (as
/// many tiles as `storyboard.json` has) and, hovered at a time, show the
/// tile of that time (the last one starting at or before it), cut from the
/// sprite, picturing that tile's keyframe; leaving hides it. A clip made
/// with Clip & Share has the still of its first frame as the clip player's
/// poster, which loads.
#[test]
fn live_replay_page_shows_the_storyboard_and_a_clip_poster() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let site = site(dir.path(), Some(STORYBOARD_DRIVER));
    // 12 s, a keyframe every second: a tile every 2 s, two rows of the sprite.
    let pipeline = numbered_av(
        dir.path(),
        &format!(
            "target-duration=1 http-address=127.0.0.1:{port} http-web-root={}",
            site.display()
        ),
        12,
        30,
        false,
    );
    play_to_eos(&pipeline, Duration::from_secs(60));
    let session = session_dirs(&dir.path().join("cam")).pop().unwrap();
    let media = session.file_name().unwrap().to_string_lossy().into_owned();

    let r = get(&format!("{base}/{media}/storyboard.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    let board = r.json();
    let tiles: Vec<(f64, f64, f64)> = board["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["start"].as_f64().unwrap(),
                t["x"].as_f64().unwrap(),
                t["y"].as_f64().unwrap(),
            )
        })
        .collect();
    let (tile_w, tile_h) = (
        board["tile_width"].as_f64().unwrap(),
        board["tile_height"].as_f64().unwrap(),
    );
    let duration = board["duration"].as_f64().unwrap();
    assert!(
        tiles.len() >= 6,
        "a tile every 2 s of {duration} s: {board}"
    );
    // The keyframes (frame n is presented n-th).
    let keys: Vec<u32> = picture_types(&session.join("replay.m3u8"))
        .iter()
        .enumerate()
        .filter(|(_, (_, key))| *key)
        .map(|(n, _)| n as u32)
        .collect();

    // Times inside tiles 0, 2, 4 and 5 (the first of the second row).
    let times = [1.0, 5.0, 9.0, 11.0];
    let clip_at = 3.35;
    let list = times.map(|t| t.to_string()).join(",");
    let lines = chromium(
        &format!("{base}/ui/?stream=cam&media={media}&times={list}&clip={clip_at}"),
        &["autotest done", "autotest failed"],
        Duration::from_secs(60),
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
        !lines
            .iter()
            .any(|l| l.starts_with("error") || l.starts_with("storyboard unavailable")),
        "the page reported errors: {lines:?}"
    );

    // The storyboard, loaded once for both strips, with every tile.
    let loaded: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("storyboard ") && l.contains(" tiles "))
        .collect();
    assert_eq!(
        loaded,
        [&format!("storyboard {} tiles {media}", tiles.len())],
        "{lines:?}"
    );

    for player in ["main", "preview"] {
        // The strip spans the player's range: the session from recording
        // time 0, player time = recording time.
        let range = find(&format!("autotest {player} range "));
        let v: Vec<f64> = range
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(
            v[0].abs() < 0.05 && (v[1] - duration).abs() < 0.2,
            "{player}: {range} (the storyboard's duration {duration})"
        );
        assert!(
            v[2].abs() < 1e-9 && v[3].abs() < 0.05,
            "{player} anchor: {range}"
        );
        for t in times {
            // The last tile starting at or before t.
            let index = tiles.iter().rposition(|tile| tile.0 <= t).unwrap();
            let (start, x, y) = tiles[index];
            let hover = find(&format!("autotest hover {player} {t} label "));
            let w: Vec<&str> = hover.split_whitespace().collect();
            // "0:00:05.0 box 160 90 sprite 512.00 0.00 background sprite number 120"
            assert_eq!(w[0], format!("0:00:{:04.1}", t), "{player} at {t}: {hover}");
            let (bw, bh): (f64, f64) = (w[2].parse().unwrap(), w[3].parse().unwrap());
            assert!(
                (bh - (bw * tile_h / tile_w).round()).abs() < 0.5,
                "{player} at {t}: the tile's aspect: {hover}"
            );
            let (sx, sy): (f64, f64) = (w[5].parse().unwrap(), w[6].parse().unwrap());
            assert!(
                (sx - x).abs() < 0.5 && (sy - y).abs() < 0.5,
                "{player} at {t}: tile {index} at {x},{y} of the sprite: {hover}"
            );
            assert_eq!(w[8], "sprite", "{player} at {t}: {hover}");
            // The tile pictures the keyframe at or before its start.
            let key = keys
                .iter()
                .copied()
                .filter(|&k| f64::from(k) <= start * FPS as f64 + 1e-6)
                .max()
                .unwrap();
            assert_eq!(
                w[10].parse::<u32>().unwrap(),
                key,
                "{player} at {t}: tile {index} ({start} s): {hover}"
            );
            // The page logged the tile it showed, at that recording time.
            let logged = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("storyboard tile {player} {index} at ")))
                .map(|s| s.parse::<f64>().unwrap())
                .any(|at| (at - t).abs() < 0.05);
            assert!(logged, "{player}: no tile {index} at {t}: {lines:?}");
        }
        assert_eq!(find(&format!("autotest {player} left tip ")), "hidden");
    }

    // The clip's poster: the still of the clip's first frame (the frame
    // presented at the In mark), as the page asked for it and loaded it.
    let poster = find("autotest poster set ");
    let url = poster
        .strip_prefix("true ")
        .expect("the poster is the clip's");
    assert_eq!(
        url,
        format!("{base}/{media}/thumbnails/thumbnail.jpg?time={clip_at:.3}&width=640")
    );
    assert!(
        lines.iter().any(|l| *l == format!("poster {url}")),
        "{lines:?}"
    );
    let frame = (clip_at * FPS as f64).floor() as u32;
    assert_eq!(
        find("autotest poster loaded "),
        format!("640x480 number {frame}")
    );
    let r = get(url);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    let shown: f64 = r.header("thumbnail-time-seconds").unwrap().parse().unwrap();
    assert!(
        (shown - f64::from(frame) / FPS as f64).abs() < 1e-3,
        "{shown}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
