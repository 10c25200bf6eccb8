// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink with `part-duration`: the low-latency live playlist, read by
//! a strict reader of its LL-HLS tags and checked against the segment
//! files; blocking playlist reload; preload hints; clips that reach within
//! a part of what was pushed.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

#[derive(Debug, Clone, PartialEq)]
struct Part {
    duration: f64,
    uri: String,
    length: u64,
    offset: u64,
    independent: bool,
}

#[derive(Debug, Default)]
struct Segment {
    uri: String,
    extinf: f64,
    parts: Vec<Part>,
}

/// A low-latency playlist as its tags say, every LL-HLS tag read strictly
/// (an unknown attribute or a missing one fails the test).
#[derive(Debug, Default)]
struct Playlist {
    version: u32,
    part_target: f64,
    part_hold_back: f64,
    can_block_reload: bool,
    media_sequence: u64,
    segments: Vec<Segment>,
    /// Parts after the last segment: the segment being written.
    open: Vec<Part>,
    hint: Option<(String, u64)>,
}

fn attributes(list: &str) -> Vec<(String, String)> {
    // Values are unquoted or "quoted" (no commas inside quotes here but in
    // BYTERANGE, which has none).
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').expect("NAME=value");
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (q[..end].to_string(), q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v.to_string(), n),
                None => (after.to_string(), ""),
            }
        };
        out.push((name.to_string(), value));
        rest = next;
    }
    out
}

fn parse(text: &str) -> Playlist {
    let mut p = Playlist::default();
    let mut parts = Vec::new();
    let mut extinf = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            p.version = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
        } else if let Some(a) = line.strip_prefix("#EXT-X-PART-INF:") {
            for (k, v) in attributes(a) {
                match k.as_str() {
                    "PART-TARGET" => p.part_target = v.parse().unwrap(),
                    other => panic!("EXT-X-PART-INF {other}"),
                }
            }
        } else if let Some(a) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            for (k, v) in attributes(a) {
                match k.as_str() {
                    "CAN-BLOCK-RELOAD" => p.can_block_reload = v == "YES",
                    "PART-HOLD-BACK" => p.part_hold_back = v.parse().unwrap(),
                    other => panic!("EXT-X-SERVER-CONTROL {other}"),
                }
            }
        } else if let Some(a) = line.strip_prefix("#EXT-X-PART:") {
            let mut part = Part {
                duration: f64::NAN,
                uri: String::new(),
                length: 0,
                offset: u64::MAX,
                independent: false,
            };
            for (k, v) in attributes(a) {
                match k.as_str() {
                    "DURATION" => part.duration = v.parse().unwrap(),
                    "URI" => part.uri = v,
                    "BYTERANGE" => {
                        let (l, o) = v.split_once('@').expect("BYTERANGE with its offset");
                        part.length = l.parse().unwrap();
                        part.offset = o.parse().unwrap();
                    }
                    "INDEPENDENT" => part.independent = v == "YES",
                    other => panic!("EXT-X-PART {other}"),
                }
            }
            assert!(part.duration.is_finite() && !part.uri.is_empty(), "{line}");
            assert!(part.offset != u64::MAX && part.length > 0, "{line}");
            parts.push(part);
        } else if let Some(a) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let a = attributes(a);
            let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("TYPE").as_deref(), Some("PART"));
            p.hint = Some((
                get("URI").unwrap(),
                get("BYTERANGE-START").unwrap().parse().unwrap(),
            ));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            p.segments.push(Segment {
                uri: line.to_string(),
                extinf: extinf.take().expect("EXTINF before the URI"),
                parts: std::mem::take(&mut parts),
            });
        }
    }
    p.open = parts;
    p
}

/// `uri` (relative to the stream's `manifest/`) as a URL.
fn url(base: &str, uri: &str) -> String {
    format!("{base}/{}", uri.trim_start_matches("../../"))
}

/// The invariants of a low-latency playlist against the files it names.
fn check(p: &Playlist, base: &str) {
    assert_eq!(p.version, 9);
    assert!((p.part_target - 0.5).abs() < 1e-9, "{p:?}");
    assert!(p.can_block_reload);
    assert!(p.part_hold_back >= 3.0 * p.part_target - 1e-9, "{p:?}");
    assert!(p.segments.len() >= 2, "{p:?}");
    for s in &p.segments {
        assert!(!s.parts.is_empty(), "{}: parts listed", s.uri);
        let sum: f64 = s.parts.iter().map(|x| x.duration).sum();
        assert!(
            (sum - s.extinf).abs() < 0.002,
            "{}: parts {sum} vs {}",
            s.uri,
            s.extinf
        );
        assert!(s.parts[0].independent, "{}: starts with a keyframe", s.uri);
        let file = get(&url(base, &s.uri));
        assert_eq!(file.status, 200);
        let mut at = 0;
        for part in &s.parts {
            assert_eq!(part.uri, s.uri);
            assert!(part.duration <= p.part_target + 1e-6, "{part:?}");
            assert!(part.duration > 0.0, "{part:?}");
            assert_eq!(part.offset, at, "contiguous");
            // Each part is whole moof+mdat pairs.
            let bytes = &file.body[part.offset as usize..(part.offset + part.length) as usize];
            assert_eq!(&bytes[4..8], b"moof", "{part:?}");
            at += part.length;
        }
        assert_eq!(at, file.body.len() as u64, "{}: the parts cover it", s.uri);
    }
    let (hint_uri, hint_start) = p.hint.clone().expect("a preload hint");
    match p.open.last() {
        Some(last) => {
            assert!(p.open.iter().all(|x| x.uri == last.uri));
            assert_eq!(p.open[0].offset, 0);
            assert!(p.open[0].independent);
            assert_eq!(hint_uri, last.uri, "the hint names the next part");
            assert_eq!(hint_start, last.offset + last.length);
        }
        None => {
            let next = p.media_sequence + p.segments.len() as u64;
            assert!(
                hint_uri.ends_with(&format!("segment-{next:05}.m4s")),
                "{hint_uri}"
            );
            assert_eq!(hint_start, 0);
        }
    }
}

/// (media sequence number, part index) of the part after the newest.
fn next_part(p: &Playlist) -> (u64, u64) {
    let msn = p.media_sequence + p.segments.len() as u64;
    (msn, p.open.len() as u64)
}

#[test]
fn low_latency_playlist_blocking_reload_preload_hint_and_clips_near_live() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A GOP of 2 s: without parts a clip could lag that much.
    let audio_frames = (30.0 * 48_000.0 / 1024.0_f64).ceil() as u32;
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=2 part-duration=0.5 \
         playlist-length=3 http-address=127.0.0.1:{port} \
         appsrc name=src format=time is-live=true \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! \
           x264enc speed-preset=ultrafast key-int-max=60 tune=zerolatency ! h264parse ! queue ! h.video \
         audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 is-live=true ! \
           audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! h.audio",
        dir.path().display()
    ));
    let pushed = feed_numbered_counted(&pipeline, 30 * FPS, true);
    play_until_segments(&pipeline, 2);
    let base = format!("http://127.0.0.1:{port}");
    let playlist = format!("{base}/cam/manifest/video.m3u8");

    let r = get(&playlist);
    assert_eq!(r.status, 200, "{}", r.text());
    let p = parse(&r.text());
    check(&p, &base);

    // The live window: `playlist-length` segments, as the stored live
    // playlist.
    std::thread::sleep(Duration::from_secs(6));
    // The stored playlist first: a segment closing in between only moves
    // the served one further.
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let stored = media_playlist(&session.join("live.m3u8"));
    let p = parse(&get(&playlist).text());
    assert_eq!(p.segments.len(), 3, "{p:?}");
    assert!(
        p.media_sequence >= stored.media_sequence && p.media_sequence > 0,
        "{} vs stored {}",
        p.media_sequence,
        stored.media_sequence
    );
    check(&p, &base);

    // A blocking reload for the part after the newest answers when it is
    // written, and lists it.
    let (msn, part) = next_part(&p);
    let asked = Instant::now();
    let r = get(&format!("{playlist}?_HLS_msn={msn}&_HLS_part={part}"));
    let waited = asked.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    let q = parse(&r.text());
    let listed = match (msn - q.media_sequence) as usize {
        i if i < q.segments.len() => q.segments[i].parts.len() as u64 > part || part > 0,
        i if i == q.segments.len() => q.open.len() as u64 > part,
        _ => false,
    };
    assert!(listed, "part {msn}.{part} listed: {}", r.text());
    check(&q, &base);
    // Too far ahead is refused at once.
    let r = get(&format!("{playlist}?_HLS_msn={}", msn + 5));
    assert_eq!(r.status, 400, "{}", r.text());

    // The preload hint: a range from its start answers when the part is
    // written, with that part.
    let (uri, start) = q.hint.clone().unwrap();
    let r = request(
        "GET",
        &url(&base, &uri),
        &[("Range", &format!("bytes={start}-"))],
    );
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(&r.body[4..8], b"moof");
    assert!(
        r.header("content-range")
            .unwrap()
            .starts_with(&format!("bytes {start}-"))
    );
    let after = parse(&get(&playlist).text());
    let hinted = after
        .segments
        .iter()
        .flat_map(|s| s.parts.iter())
        .chain(after.open.iter())
        .find(|x| x.uri == uri && x.offset == start)
        .expect("the hinted part is listed");
    assert!(r.body.len() as u64 >= hinted.length);

    // A preview of the live session is low-latency too: its segments and
    // the parts after them, with blocking reload.
    let preview = format!("{playlist}?duration=4s");
    let r = get(&preview);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("preview-start-seconds").is_some());
    let p = parse(&r.text());
    assert!(p.segments.len() >= 2 && p.segments.len() <= 3, "{p:?}");
    check(&p, &base);
    let (msn, part) = next_part(&p);
    let r = get(&format!("{preview}&_HLS_msn={msn}&_HLS_part={part}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let q = parse(&r.text());
    assert!(
        next_part(&q) > (msn, part),
        "the part asked is listed: {:?} after {:?}",
        next_part(&q),
        (msn, part)
    );

    // A clip manifest of the last second reaches into the segment being
    // written (byte ranges of its parts).
    let live = parse(&get(&playlist).text());
    let r = get(&format!("{base}/cam/manifest/clip.m3u8?duration=1s"));
    assert_eq!(r.status, 200, "{}", r.text());
    let clip = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    let last = clip.segments.last().unwrap();
    let complete = live.media_sequence + live.segments.len() as u64;
    let sequence: u64 = last
        .uri
        .rsplit("segment-")
        .next()
        .unwrap()
        .trim_end_matches(".m4s")
        .parse()
        .unwrap();
    assert!(
        sequence >= complete,
        "ends in segment {sequence}, beyond the complete ones (< {complete}): {}",
        r.text()
    );

    // "The last 2 s": the clip ends within a part (and the encoder's and
    // queues' own delay) of the newest frame pushed.
    for _ in 0..3 {
        let newest = pushed.load(Ordering::SeqCst) as i64 - 1;
        let r = get(&format!("{base}/cam/clip.mp4?duration=2s"));
        assert_eq!(r.status, 200, "{}", r.text());
        let out = dir.path().join("last.mp4");
        std::fs::write(&out, &r.body).unwrap();
        let frames = frame_numbers(&out);
        let last = *frames.last().unwrap() as i64;
        let behind = (newest - last) as f64 / FPS as f64;
        eprintln!("clip of the last 2 s ends {behind:.3} s behind the newest frame pushed");
        assert!(
            behind <= 0.5 + 0.25,
            "the clip ends {behind:.3} s behind the newest frame pushed"
        );
        assert_eq!(frames.len(), 60, "two seconds");
        std::thread::sleep(Duration::from_millis(700));
    }

    // The stored playlists are as without parts.
    let stored = std::fs::read_to_string(session.join("live.m3u8")).unwrap();
    assert!(!stored.contains("EXT-X-PART"), "{stored}");
    pipeline.set_state(gst::State::Null).unwrap();
    let errors = decode_errors(&session.join("replay.m3u8"));
    assert!(errors.is_empty(), "{errors}");
}

/// A ladder recorded with parts: each rendition's live playlist is
/// low-latency and reports the others where they are.
#[test]
fn each_rendition_of_a_ladder_is_low_latency_and_reports_the_others() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=2 part-duration=0.5 \
         http-address=127.0.0.1:{port} video_0::rendition=hi video_1::rendition=lo \
         videotestsrc is-live=true num-buffers=300 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
           tee name=t \
         t. ! queue ! x264enc speed-preset=ultrafast key-int-max=60 tune=zerolatency ! h264parse ! queue ! h.video_0 \
         t. ! queue ! videoscale ! video/x-raw,width=160,height=120 ! \
           x264enc speed-preset=ultrafast key-int-max=60 tune=zerolatency ! h264parse ! queue ! h.video_1 \
         audiotestsrc is-live=true num-buffers=470 ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! \
           aacparse ! queue ! h.audio_0",
        dir.path().display()
    ));
    play_until_segments(&pipeline, 4);
    let base = format!("http://127.0.0.1:{port}");
    let playlist = format!("{base}/cam/manifest/video.m3u8");
    let r = get(&playlist);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("#EXT-X-STREAM-INF"), "{}", r.text());
    for (name, others) in [("hi", ["lo", "audio_0"]), ("audio_0", ["hi", "lo"])] {
        // A blocking reload for the next part, so that every rendition has
        // written the part before (they are written together).
        let p = parse(&get(&format!("{playlist}?rendition={name}")).text());
        let (msn, part) = next_part(&p);
        let r = get(&format!(
            "{playlist}?rendition={name}&_HLS_msn={msn}&_HLS_part={part}"
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        let p = parse(&text);
        assert_eq!(p.version, 9);
        assert!(p.segments.iter().all(|s| !s.parts.is_empty()));
        assert!(
            p.segments[0].uri.contains(&format!("/{name}/segment-")),
            "{text}"
        );
        for other in others {
            let line = text
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "#EXT-X-RENDITION-REPORT:URI=\"video.m3u8?rendition={other}\""
                    ))
                })
                .unwrap_or_else(|| panic!("{name} reports {other}: {text}"));
            let a = attributes(line.split_once(':').unwrap().1);
            let last_msn: u64 = a
                .iter()
                .find(|(k, _)| k == "LAST-MSN")
                .unwrap()
                .1
                .parse()
                .unwrap();
            assert!(
                last_msn + 1 >= p.media_sequence + p.segments.len() as u64,
                "{other} is as far as {name}: {line}"
            );
            assert!(a.iter().any(|(k, _)| k == "LAST-PART"), "{line}");
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}
