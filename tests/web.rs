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

/// What every page driver starts with: `log` (a console line the test
/// reads; it ends at a double quote, see tests/common/browser.rs) and
/// `until` (polls a condition, failing after `ms`).
const PRELUDE: &str = r##"
  const log = (m) => console.log("liveclip: autotest " + String(m).replace(/"/g, "'"));
  const until = async (f, ms = 45000) => {
    const t = Date.now();
    while (!f()) {
      if (Date.now() - t > ms) throw new Error("timeout waiting for " + f);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
"##;

/// A page driver: `body` after the prelude, in an async function run at
/// load.
fn driver(body: &str) -> String {
    format!("(async () => {{\n{PRELUDE}\n{body}\n}})();\n")
}

/// A pipeline set to NULL however the test ends.
struct Stop(gst::Pipeline);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// A live recording of `seconds` of numbered frames (1 s segments) serving
/// the API and the page driven by `body` on a free port, with `props`
/// added, played until it has `segments` segments: the pipeline and the
/// API's base URL.
fn live_page(dir: &Path, body: &str, props: &str, seconds: u64, segments: usize) -> (Stop, String) {
    let port = free_port();
    let site = site(dir, Some(&driver(body)));
    let pipeline = Stop(numbered_av(
        dir,
        &format!(
            "target-duration=1 http-address=127.0.0.1:{port} http-web-root={} {props}",
            site.display()
        ),
        seconds,
        30,
        true,
    ));
    play_until_segments(&pipeline.0, segments);
    (pipeline, format!("http://127.0.0.1:{port}"))
}

/// Drives the real page through its test hooks (`window.liveclip`).
const DRIVER: &str = r##"
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
    let site = site(dir.path(), Some(&driver(DRIVER)));
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
    let site = site(dir.path(), Some(&driver(STORYBOARD_DRIVER)));
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

/// Drives the page on the markers of a live session (`media=`, with the
/// markers `point=` and `range=`): it rewatches the session and reads back
/// where the strips draw the markers (in recording time, from the pixels),
/// what the tip says over the point, the rows of the Markers card, the
/// EXT-X-DATERANGE tags hls.js parsed from the replay playlist, the clips
/// "Clip this moment" and Clip & Share make of both markers, a marker added
/// with Mark now, and Mark now refused for an id that exists.
const MARKERS_DRIVER: &str = r##"
  const q = new URLSearchParams(location.search);
  const media = q.get("media");
  const ids = [q.get("point"), q.get("range")];
  try {
    await until(() => window.liveclip);
    const L = window.liveclip;
    const rewatch = () => document.querySelector(`#sessions .session[data-media-id="${media}"] .rewatch`);
    await until(rewatch);
    rewatch().click();
    await until(() => L.state.mainMode === "replay" && L.listedSession() === media);

    // Both strips (the rewatched session, and the preview of the live
    // session, which is the same one) draw both markers.
    const strips = [
      ["main", document.getElementById("main-scrub"), document.getElementById("live-player")],
      ["preview", document.getElementById("preview-scrub"), document.getElementById("preview-player")],
    ];
    for (const [name, strip, video] of strips) {
      const player = L.players[name];
      const drawn = () => ids.every((id) => strip.querySelector(`.scrub-marker[data-marker-id="${id}"]`));
      await until(() => player.anchor && player.anchor.mediaId === media && !strip.hidden &&
                        video.seekable.length > 0 && drawn());
      // Drawn for the range of now, then measured in the same task.
      player.scrub.drawMarkers();
      const track = strip.querySelector(".scrub-track").getBoundingClientRect();
      const start = video.seekable.start(0);
      const end = video.seekable.end(video.seekable.length - 1);
      const a = player.anchor;
      const timeAt = (x) => a.recStart + (start + ((x - track.left) / track.width) * (end - start) - a.fragStart);
      const px = (end - start) / track.width;
      for (const el of strip.querySelectorAll(".scrub-marker")) {
        const r = el.getBoundingClientRect();
        const kind = el.classList.contains("range") ? "range" : "point";
        const t0 = kind === "point" ? timeAt(r.left + r.width / 2) : timeAt(r.left);
        const t1 = kind === "point" ? t0 : timeAt(r.right);
        log(`tick ${name} ${el.dataset.markerId} ${kind} ${t0.toFixed(3)} ${t1.toFixed(3)} px ${px.toFixed(4)} title ${el.title}`);
      }
      if (name === "main") {
        // The tip over the point marker names it.
        const point = strip.querySelector(`.scrub-marker[data-marker-id="${ids[0]}"]`).getBoundingClientRect();
        const at = { clientX: point.left + point.width / 2, clientY: track.top + track.height / 2, pointerType: "mouse", isPrimary: true };
        strip.dispatchEvent(new PointerEvent("pointerenter", at));
        strip.dispatchEvent(new PointerEvent("pointermove", { ...at, bubbles: true }));
        const tip = strip.querySelector(".scrub-marker-name");
        log(`hover main ${tip.hidden ? "(hidden)" : tip.textContent}`);
        strip.dispatchEvent(new PointerEvent("pointerleave", at));
      }
    }

    // The Markers card lists them.
    await until(() => ids.every((id) => document.querySelector(`#markers .marker[data-marker-id="${id}"]`)));
    for (const li of document.querySelectorAll("#markers .marker")) {
      const text = (c) => li.querySelector(c).textContent.trim();
      const clip = li.querySelector(".marker-clip");
      log(`row ${li.dataset.markerId}|${text(".marker-class")}|${text(".marker-time")}|` +
          `${text(".marker-duration")}|${text(".marker-attrs")}|${clip.getAttribute("aria-label")}|${clip.tabIndex}`);
    }

    // hls.js parsed both from the replay playlist.
    await until(() => ids.every((id) => L.dateRanges("main").some((d) => d.id === id)));
    for (const d of L.dateRanges("main")) {
      const attrs = Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(",");
      log(`daterange ${d.id} class ${d.class} duration ${d.duration} planned ${d.plannedDuration} start ${d.startDate} attrs ${attrs}`);
    }

    // Clip this moment, then Clip & Share, for each marker.
    for (const id of ids) {
      document.querySelector(`#markers .marker[data-marker-id="${id}"] .marker-clip`).click();
      log(`moment ${id} in ${L.state.inTime.toFixed(3)} out ${L.state.outTime.toFixed(3)} focus ${document.activeElement.id}`);
      const before = L.state.lastClip;
      const share = document.getElementById("clip-share");
      await until(() => !share.disabled);
      share.click();
      await until(() => L.state.lastClip !== before && L.state.lastClip);
      const c = L.state.lastClip;
      log(`clip ${id} marker ${c.marker} mp4 ${new URL(c.mp4Url, location.href).href}`);
      log(`clip ${id} manifest ${new URL(c.manifestUrl, location.href).href}`);
      log(`clip ${id} link ${document.getElementById("mp4-link").href}`);
    }

    // Mark now, on the live session.
    const now = document.getElementById("mark-now");
    await until(() => !now.disabled);
    log(`mark now label ${now.textContent.trim()} title ${now.title}`);
    now.click();
    await until(() => (L.markers(media) || []).some((m) => m.class === "com.liveclip.manual"));
    const manual = L.markers(media).find((m) => m.class === "com.liveclip.manual");
    log(`marked ${manual.id} ${manual.start.toFixed(3)} listed ${!!document.querySelector(`#markers .marker[data-marker-id="${manual.id}"]`)}`);
    // An id that exists: refused, and said so.
    await until(() => !now.disabled);
    const refused = await L.markNow({ id: ids[0] });
    log(`duplicate ${refused === null ? "refused" : "accepted"} status ${document.getElementById("status").textContent}`);
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
"##;

/// A live session with two markers added over HTTP, a point and a 4 s range
/// with an X- attribute: the page draws both over the strips where they
/// are and lists them; hls.js finds both in the replay playlist's
/// EXT-X-DATERANGE tags; "Clip this moment" and Clip & Share make clips by
/// `marker=` that hold exactly the range the server's rule gives (a range as
/// it is, a point from 10 s before to 5 s after); Mark now adds a marker at
/// the live edge, and a refused one is said in the status line.
#[test]
fn live_replay_page_shows_and_clips_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (_pipeline, base) = live_page(dir.path(), MARKERS_DRIVER, "", 120, 18);

    let (point, range) = ("kickoff", "goal-1");
    let r = post_json(
        &format!("{base}/cam/markers"),
        &serde_json::json!({"id": point, "class": "com.example.kickoff", "time": "14s"})
            .to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let media = r.json()["media_id"].as_str().unwrap().to_string();
    let r = post_json(
        &format!("{base}/cam/markers"),
        &serde_json::json!({
            "id": range,
            "class": "com.example.goal",
            "time": "5s",
            "duration": 4,
            "attributes": {"X-SCORE": "1-0"},
        })
        .to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["media_id"], media.as_str());

    // What the server says of them: the page is checked against this.
    let r = get(&format!("{base}/{media}/markers"));
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json();
    assert_eq!(listed["live"], true, "{listed}");
    let marker = |id: &str| {
        listed["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {listed}"))
            .clone()
    };
    let (p, g) = (marker(point), marker(range));
    let p_start = p["start"].as_f64().unwrap();
    let g_start = g["start"].as_f64().unwrap();
    let g_end = g["end"].as_f64().unwrap();
    assert!((p_start - 14.0).abs() < 1e-3, "{p}");
    assert!(p["end"].is_null() && p["duration"].is_null(), "{p}");
    assert!(
        (g_start - 5.0).abs() < 1e-3 && (g_end - 9.0).abs() < 1e-3,
        "{g}"
    );
    assert_eq!(g["duration"].as_f64(), Some(4.0), "{g}");
    assert_eq!(g["attributes"]["X-SCORE"], "1-0", "{g}");

    let page = format!("{base}/ui/?stream=cam&media={media}&point={point}&range={range}");
    let lines = chromium(
        &page,
        &["autotest done", "autotest failed"],
        Duration::from_secs(120),
    );
    let find = |p: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p:?} in {lines:?}"))
            .to_string()
    };
    assert!(lines.iter().any(|l| l == "autotest done"), "{lines:?}");
    // The one error: the refused Mark now, below.
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "the page reported errors: {lines:?}");
    assert!(errors[0].starts_with("error mark now: "), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("markers unavailable")),
        "{lines:?}"
    );

    // (a) Drawn on both strips where they are: a tick at the point, a band
    // over the range, within two pixels of the strip; named in the tip.
    for strip in ["main", "preview"] {
        for (id, kind, from, to) in [
            (point, "point", p_start, p_start),
            (range, "range", g_start, g_end),
        ] {
            let tick = find(&format!("autotest tick {strip} {id} {kind} "));
            let w: Vec<&str> = tick.split_whitespace().collect();
            let (t0, t1, px): (f64, f64, f64) = (
                w[0].parse().unwrap(),
                w[1].parse().unwrap(),
                w[3].parse().unwrap(),
            );
            assert!(
                (t0 - from).abs() <= 2.0 * px && (t1 - to).abs() <= 2.0 * px,
                "{strip} {id}: drawn at {t0}..{t1} for {from}..{to}: {tick}"
            );
            assert!(tick.contains(&format!("title {id} · ")), "{tick}");
        }
    }
    assert_eq!(
        find("autotest hover main "),
        "kickoff · com.example.kickoff"
    );

    // ... and listed: id, class, time, duration, attributes, and a labelled
    // button in the tab order.
    assert_eq!(
        find(&format!("autotest row {point}|")),
        "com.example.kickoff|0:00:14.000|point||Clip this moment: marker kickoff|0"
    );
    assert_eq!(
        find(&format!("autotest row {range}|")),
        "com.example.goal|0:00:05.000|4.000 s|X-SCORE=1-0|Clip this moment: marker goal-1|0"
    );

    // (b) hls.js parsed both from the replay playlist's EXT-X-DATERANGE tags.
    let millis = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .timestamp_millis()
    };
    for (id, class, duration, attrs, m) in [
        (point, "com.example.kickoff", "null", "", &p),
        (range, "com.example.goal", "4", "X-SCORE=1-0", &g),
    ] {
        let d = find(&format!("autotest daterange {id} "));
        assert!(
            d.starts_with(&format!(
                "class {class} duration {duration} planned null start "
            )),
            "{id}: {d}"
        );
        assert!(d.ends_with(&format!(" attrs {attrs}")), "{id}: {d}");
        // START-DATE is the marker's wall-clock start.
        if let Some(start) = m["start_utc"].as_str() {
            let shown = d.split_whitespace().nth(7).unwrap();
            assert!(
                (millis(shown) - millis(start)).abs() <= 1,
                "{id}: {d} for {m}"
            );
        }
    }

    // (c) Clip this moment: In and Out as the server's rule has them, Clip &
    // Share asks by marker=, and the MP4 holds exactly that range.
    for (id, from, to) in [
        (range, g_start, g_end),
        (point, p_start - 10.0, p_start + 5.0),
    ] {
        let moment = find(&format!("autotest moment {id} "));
        let w: Vec<&str> = moment.split_whitespace().collect();
        let (i, o): (f64, f64) = (w[1].parse().unwrap(), w[3].parse().unwrap());
        assert!(
            (i - from).abs() < 1e-3 && (o - to).abs() < 1e-3,
            "{id}: {moment} for {from}..{to}"
        );
        assert_eq!(w[5], "clip-share", "the focus moves on to Clip & Share");
        let mp4 = find(&format!("autotest clip {id} marker {id} mp4 "));
        assert_eq!(find(&format!("autotest clip {id} link ")), mp4);
        let manifest = find(&format!("autotest clip {id} manifest "));
        for url in [&mp4, &manifest] {
            let query = url.split_once('?').unwrap().1;
            assert!(
                query.split('&').any(|kv| kv == format!("marker={id}")),
                "{url}"
            );
            assert!(!query.split('&').any(|kv| kv.starts_with("time=")), "{url}");
        }
        let r = get(&mp4);
        assert_eq!(r.status, 200, "{mp4}: {}", r.text());
        let file = dir.path().join(format!("{id}.mp4"));
        std::fs::write(&file, &r.body).unwrap();
        assert_eq!(decode_errors(&file), "", "{id}");
        let video = streams(&file)
            .into_iter()
            .find(|s| s.codec_type == "video")
            .unwrap();
        let frame = 1.0 / FPS as f64;
        assert!(
            (video.duration - (to - from)).abs() <= frame + 1e-3,
            "{id}: {} s for {from}..{to}",
            video.duration
        );
        let frames = frame_numbers(&file);
        let first = (from * FPS as f64).ceil() as i64;
        assert!(
            (i64::from(frames[0]) - first).abs() <= 1,
            "{id}: first frame {} for {from} (frame {first})",
            frames[0]
        );
        let count = ((to - from) * FPS as f64).round() as i64;
        assert!(
            (frames.len() as i64 - count).abs() <= 1,
            "{id}: {} frames for {from}..{to}",
            frames.len()
        );
        // The shared manifest plays the same frames.
        let played = frame_numbers(Path::new(&manifest));
        assert!(
            played.contains(&frames[0]) && played.contains(frames.last().unwrap()),
            "{id}"
        );
    }

    // Mark now: a manual marker at the live edge, listed; the server has it.
    let label = find("autotest mark now label ");
    assert!(label.starts_with("◆ Mark now title "), "{label}");
    let marked = find("autotest marked ");
    let w: Vec<&str> = marked.split_whitespace().collect();
    assert_eq!(w[3], "true", "listed: {marked}");
    let r = get(&format!("{base}/{media}/markers"));
    let manual = r.json()["markers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == w[0])
        .cloned()
        .unwrap_or_else(|| panic!("{marked}: {}", r.text()));
    assert_eq!(manual["class"], "com.liveclip.manual", "{manual}");
    assert_eq!(manual["source"], "api", "{manual}");
    // At the live edge: after the 18 s recorded before the markers were added.
    let start = manual["start"].as_f64().unwrap();
    assert!(start >= 17.0, "{manual}");
    assert!(
        (start - w[1].parse::<f64>().unwrap()).abs() < 1e-3,
        "{marked}"
    );
    // Refused for an id that exists, and said in the status line.
    let duplicate = find("autotest duplicate ");
    assert!(
        duplicate.starts_with("refused status ")
            && duplicate.contains("mark now: ")
            && duplicate.contains("HTTP 409"),
        "{duplicate}"
    );

    // A screenshot of the page with the markers (kept with the build for a
    // look).
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/live-replay-markers.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    screenshot(&format!("{base}/ui/?stream=cam"), &shot, 12_000);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "a real page"
    );
}

/// Drives the Export row of the Clip & Share result: makes a 2 s clip of
/// the preview, reads back the shape picker (its options, its label, when
/// the crop control shows), asks for a shape too short for the clip (read
/// back: what the row says), exports the clip through the page with
/// `liveclip.exportClip`, and reads back every value the progress bar took,
/// where it ended and the download link it offers; then does the same for
/// a clip made from the marker `goal`.
const EXPORT_DRIVER: &str = r##"
  try {
    await until(() => window.liveclip);
    const L = window.liveclip;
    await until(() => L.state.previewStart !== null);
    const a = L.state.previewStart + 1.5;
    L.markIn(a);
    L.markOut(a + 2.0);
    const share = document.getElementById("clip-share");
    await until(() => !share.disabled);
    share.click();
    await until(() => L.state.lastClip);
    const c = L.state.lastClip;
    log(`clip ${c.media} ${c.query.time} ${c.query.duration}`);

    // The picker, filled from the session's export profiles.
    await until(() => L.exportProfiles());
    const select = document.getElementById("export-profile");
    await until(() => !select.disabled);
    for (const o of select.options) log(`shape ${o.value}|${o.textContent}`);
    log(`picker label ${select.labels[0].firstElementChild.textContent.trim()}|${select.tabIndex}`);
    const crop = document.getElementById("export-crop");
    const cropField = document.getElementById("export-crop-field");
    for (const name of ["landscape", "tiny-v"]) {
      select.value = name;
      select.dispatchEvent(new Event("change"));
      log(`crop control ${name} ${cropField.hidden ? "hidden" : "shown"}`);
    }
    log(`crop label ${crop.labels[0].firstElementChild.textContent.trim()}|${crop.getAttribute("aria-valuetext")}`);
    const button = document.getElementById("export-start");
    log(`export button ${button.textContent.trim()}|${button.disabled}|${button.tabIndex}`);

    // A clip longer than a shape allows: refused, and said so.
    const refused = await L.exportClip("tiny-short");
    const bar = document.getElementById("export-progress");
    const link = document.getElementById("export-link");
    log(`refused ${refused === null ? "null" : refused}|${bar.getAttribute("aria-valuetext")}|` +
        `${link.hidden ? "no link" : "link"}|${document.getElementById("export-message").textContent}`);

    // Every value the progress bar takes on the way.
    const seen = [];
    new MutationObserver(() => {
      const step = `${bar.getAttribute("aria-valuenow")}:${bar.getAttribute("aria-valuetext")}`;
      if (seen[seen.length - 1] !== step) seen.push(step);
    }).observe(bar, { attributes: true, attributeFilter: ["aria-valuenow", "aria-valuetext"] });
    const url = await L.exportClip("tiny-v", 0.3);
    await new Promise((r) => setTimeout(r, 0));
    log(`export file ${url === null ? "null" : new URL(url, location.href).href}`);
    log(`progress seen ${seen.join(" ")}`);
    log(`progress end ${bar.getAttribute("role")} ${bar.getAttribute("aria-label")}|` +
        `${bar.getAttribute("aria-valuemin")} ${bar.getAttribute("aria-valuemax")} ` +
        `${bar.getAttribute("aria-valuenow")} ${bar.getAttribute("aria-valuetext")}`);
    log(`export link ${link.hidden ? "hidden" : "shown"} ${link.href} download ${link.getAttribute("download")}`);
    const ex = L.state.lastExport;
    log(`export state ${ex.state} ${ex.progress} crop ${ex.cropX} message ${document.getElementById("export-message").textContent}`);

    // A clip made from a marker is exported by its marker.
    await until(() => (L.markers() || []).some((m) => m.id === "goal"));
    L.clipMarker("goal");
    await until(() => !share.disabled);
    share.click();
    await until(() => L.state.lastClip !== c && L.state.lastClip && L.state.lastClip.marker === "goal");
    await until(() => !document.getElementById("export-start").disabled);
    const byMarker = await L.exportClip("tiny-v");
    log(`marker export file ${byMarker === null ? "null" : new URL(byMarker, location.href).href}`);
    log(`marker export link ${link.href} download ${link.getAttribute("download")}`);
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
"##;

/// Clip & Share, then Export with a small crop profile of the element's
/// `export-profiles`: the picker lists the built-in shapes and those, a
/// shape too short for the clip is refused with the server's words and
/// status, the page asks for the clip's range with `profile=` and
/// `crop_x=`, its progress bar follows the export to done, and the file its
/// link offers is a clean 180×320 H.264 MP4 as long as the clip. A clip
/// made from a marker is exported by `marker=`.
#[test]
fn live_replay_page_exports_a_clip_to_a_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_pipeline, base) = live_page(
        dir.path(),
        EXPORT_DRIVER,
        "export-profiles=tiny-v=180x320,fit=crop,video-kbps=400;tiny-short=180x320,max-duration=1",
        90,
        6,
    );
    let r = post_json(
        &format!("{base}/cam/markers"),
        &serde_json::json!({"id": "goal", "time": "2s", "duration": 2}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let lines = chromium(
        &format!("{base}/ui/?stream=cam"),
        &["autotest done", "autotest failed"],
        Duration::from_secs(120),
    );
    let find = |p: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p:?} in {lines:?}"))
            .to_string()
    };
    assert!(lines.iter().any(|l| l == "autotest done"), "{lines:?}");
    // The one error: the refused shape, below.
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "the page reported errors: {lines:?}");
    assert!(errors[0].starts_with("error export: "), "{lines:?}");
    let clip = find("autotest clip ");
    let w: Vec<&str> = clip.split_whitespace().collect();
    let (media, time, duration) = (w[0], w[1], w[2]);
    assert_eq!(duration, "2.000", "{clip}");

    // The picker: the built-in shapes and the element's own, labelled with
    // their size and fit; the crop control only for a crop.
    let names = find("export profiles ");
    for name in [
        "landscape",
        "vertical",
        "square",
        "vertical-pad",
        "small",
        "tiny-v",
        "tiny-short",
    ] {
        assert!(names.split(' ').any(|n| n == name), "{name} in {names}");
    }
    for (name, label) in [
        ("landscape", "landscape 1920×1080 (pad)"),
        ("vertical", "vertical 1080×1920 (crop)"),
        ("square", "square 1080×1080 (crop)"),
        ("vertical-pad", "vertical-pad 1080×1920 (pad)"),
        ("small", "small 640×360 (pad)"),
        ("tiny-v", "tiny-v 180×320 (crop)"),
        ("tiny-short", "tiny-short 180×320 (crop)"),
    ] {
        assert_eq!(find(&format!("autotest shape {name}|")), label);
    }
    assert_eq!(find("autotest picker label "), "Shape|0");
    assert_eq!(find("autotest crop control landscape "), "hidden");
    assert_eq!(find("autotest crop control tiny-v "), "shown");
    assert_eq!(find("autotest crop label "), "Crop|center");
    assert_eq!(find("autotest export button "), "⇪ Export|false|0");
    let refused = find("autotest refused ");
    assert!(
        refused.starts_with("null|failed|no link|Export to tiny-short failed: ")
            && refused.contains("at most 1 s")
            && refused.ends_with("(HTTP 400)"),
        "{refused}"
    );

    // The POST: the clip's range, the profile and the crop position.
    let post = find("export post ");
    assert!(
        post.contains("profile=tiny-short"),
        "the refused one first: {post}"
    );
    let post = lines
        .iter()
        .filter_map(|l| l.strip_prefix("export post "))
        .nth(1)
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    let query: Vec<&str> = post.split_once('?').unwrap().1.split('&').collect();
    for kv in [
        format!("time={time}"),
        "duration=2.000".to_string(),
        "profile=tiny-v".to_string(),
        "crop_x=0.3".to_string(),
    ] {
        assert!(query.contains(&kv.as_str()), "{kv} in {post}");
    }
    assert!(
        post.starts_with(&format!("{base}/{media}/exports?")),
        "{post}"
    );

    // Followed to done: the status said so, the progress never went back,
    // and the bar (with its aria values) ended full.
    let file_url = find("autotest export file ");
    let export_id = |url: &str| -> u64 {
        url.strip_prefix(&format!("{base}/{media}/exports/"))
            .and_then(|rest| rest.strip_suffix("/clip.mp4"))
            .unwrap_or_else(|| panic!("{url}"))
            .parse()
            .unwrap()
    };
    let n = export_id(&file_url);
    // "export {n} {state} {progress}", one a status answer.
    let polls = |n: u64| -> Vec<(String, f64)> {
        lines
            .iter()
            .filter_map(|l| {
                let w: Vec<&str> = l.strip_prefix("export ")?.split_whitespace().collect();
                (w.len() == 3 && w[0].parse::<u64>().ok()? == n)
                    .then(|| (w[1].to_string(), w[2].parse().unwrap()))
            })
            .collect()
    };
    let followed = polls(n);
    assert_eq!(
        followed.last(),
        Some(&("done".to_string(), 1.0)),
        "{followed:?}"
    );
    assert!(
        followed.windows(2).all(|p| p[0].1 <= p[1].1),
        "progress never goes back: {followed:?}"
    );
    let seen = find("autotest progress seen ");
    assert!(seen.ends_with("100:done"), "{seen}");
    assert_eq!(
        find("autotest progress end "),
        "progressbar Export progress|0 100 100 done"
    );
    assert_eq!(
        find("autotest export link "),
        format!("shown {file_url} download clip-{media}-{time}-tiny-v.mp4")
    );
    let state = find("autotest export state ");
    assert!(
        state.starts_with("done 1 crop 0.3 message Export ready: "),
        "{state}"
    );

    // The server's status of an export, and its file: a clean 180×320
    // H.264 MP4 as long as the 2 s clip, within a frame.
    let frame = 1.0 / FPS as f64;
    let check = |n: u64, url: &str, name: &str| {
        let status = get(&format!("{base}/{media}/exports/{n}")).json();
        assert_eq!(
            (status["state"].as_str(), status["profile"].as_str()),
            (Some("done"), Some("tiny-v")),
            "{status}"
        );
        assert!(
            (status["duration"].as_f64().unwrap() - 2.0).abs() <= frame,
            "{status}"
        );
        let r = get(url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
        let file = dir.path().join(name);
        std::fs::write(&file, &r.body).unwrap();
        assert_eq!(
            status["bytes"].as_u64(),
            Some(r.body.len() as u64),
            "{status}"
        );
        assert_eq!(decode_errors(&file), "", "{}", file.display());
        let all = streams(&file);
        let video = stream(&all, "video").expect("a video stream");
        assert_eq!(
            (video.codec_name.as_str(), video.width, video.height),
            ("h264", 180, 320),
            "{name}: {video:?}"
        );
        assert!(
            (video.duration - 2.0).abs() <= frame + 1e-3,
            "{name}: {} s for a 2 s clip",
            video.duration
        );
    };
    check(n, &file_url, "export.mp4");

    // The clip of marker goal (2 s from 2 s): exported by marker=, with the
    // crop position the row kept.
    let post = lines
        .iter()
        .filter_map(|l| l.strip_prefix("export post "))
        .nth(2)
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    let query: Vec<&str> = post.split_once('?').unwrap().1.split('&').collect();
    for kv in ["marker=goal", "profile=tiny-v", "crop_x=0.3"] {
        assert!(query.contains(&kv), "{kv} in {post}");
    }
    assert!(
        !query
            .iter()
            .any(|kv| kv.starts_with("time=") || kv.starts_with("duration=")),
        "{post}"
    );
    let marker_url = find("autotest marker export file ");
    let m = export_id(&marker_url);
    assert_eq!(
        polls(m).last(),
        Some(&("done".to_string(), 1.0)),
        "{lines:?}"
    );
    assert_eq!(
        find("autotest marker export link "),
        format!("{marker_url} download clip-{media}-goal-tiny-v.mp4")
    );
    check(m, &marker_url, "goal.mp4");
}
