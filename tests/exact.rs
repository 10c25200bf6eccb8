// SPDX-License-Identifier: MPL-2.0
//! `accuracy=exact` clips (a smart cut): the partial GOP at the start is
//! re-encoded, every later GOP copied, and the file has no edit list, so a
//! player that ignores edit lists presents exactly the requested frames.
//!
//! Every check reads the clip with an independent reader: mp4-atom (no
//! `elst`, two sample entries), ffmpeg (frame numbers from the pixels,
//! presentation times, PSNR of the re-encoded frames against ffmpeg's
//! decode of the recording, per-packet hashes of the copied GOPs against
//! the recording's packets, a clean decode) and GStreamer (qtdemux and
//! decodebin present the same frames).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::numbered::*;
use common::*;
use gst::prelude::*;

fn clip(sink: &gst::Element, bus: &gst::Bus, media_id: &str, query: &str) -> gst::Structure {
    let id = sink.emit_by_name::<u64>("clip-mp4", &[&Some(media_id), &query]);
    assert!(id > 0);
    clip_done(bus, id)
}

/// Recording time of numbered frame `n`, as a query value.
fn at(n: u64) -> String {
    let ns = n * NS / FPS;
    format!("{}.{:09}s", ns / NS, ns % NS)
}

/// The packets of the first video stream of `file` in decode order: the
/// md5 of each one's data (`-c copy`, nothing decoded).
fn packet_md5s(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            // stream, dts, pts, duration, size, md5[, side data]
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            Some(format!("{}:{}", f.get(4)?, f.get(5)?))
        })
        .collect()
}

/// Presentation times (s) of the video frames of `file` as ffprobe
/// decodes them, in presentation order.
fn frame_times(file: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect()
}

/// Per-frame PSNR (average over the planes, dB) of frames `at..at +
/// count` of `clip` against frames `first..first + count` of ffmpeg's
/// decode of `reference`.
fn psnr(
    clip: &Path,
    reference: &Path,
    at: usize,
    first: usize,
    count: usize,
    dir: &Path,
) -> Vec<f64> {
    let stats = dir.join("psnr.log");
    let graph = format!(
        "[0:v]trim=start_frame={at}:end_frame={clip_end},setpts=PTS-STARTPTS[a];\
         [1:v]trim=start_frame={first}:end_frame={end},setpts=PTS-STARTPTS[b];\
         [a][b]psnr=stats_file={stats}",
        clip_end = at + count,
        end = first + count,
        stats = stats.display()
    );
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(clip)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v = l
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("psnr_avg:"))?;
            Some(if v == "inf" {
                f64::INFINITY
            } else {
                v.parse().ok()?
            })
        })
        .collect()
}

/// What an exact clip must be.
struct Expect<'a> {
    /// The recording (its playlist), which ffmpeg reads as the reference.
    recording: &'a Path,
    /// The requested first frame and how many frames are presented.
    first: u32,
    frames: usize,
    /// Whether the start lies on a keyframe (nothing re-encoded).
    on_keyframe: bool,
    /// Whether the copied GOPs follow one another in the recording
    /// without a gap (closed GOPs; an open GOP's leading pictures are
    /// re-encoded in the head and left out of the copy).
    contiguous: bool,
    /// Whether the clip has audio.
    audio: bool,
}

/// The 1-based sample entry of each sample of a track (from `stsc` and
/// the chunk count).
fn sample_entries(stbl: &mp4_atom::Stbl) -> Vec<u32> {
    let chunks = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.len(),
        (None, Some(co64)) => co64.entries.len(),
        (None, None) => panic!("no chunk offsets"),
    } as u32;
    let runs = &stbl.stsc.entries;
    let mut out = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let next = runs.get(i + 1).map_or(chunks + 1, |n| n.first_chunk);
        for _ in r.first_chunk..next {
            out.extend(std::iter::repeat_n(
                r.sample_description_index,
                r.samples_per_chunk as usize,
            ));
        }
    }
    out
}

/// The re-encoded frames of an exact clip: at its start (the head) and at
/// its end (the tail).
#[derive(Debug, PartialEq, Eq)]
struct Reencoded {
    head: usize,
    tail: usize,
}

/// Checks everything an exact clip promises; returns the number of
/// re-encoded frames at each end.
fn check_exact(ctx: &str, file: &Path, e: &Expect, dir: &Path) -> Reencoded {
    // No edit list in any track (mp4-atom).
    let moov = moov(file);
    for trak in &moov.trak {
        assert!(trak.edts.is_none(), "{ctx}: an edts box: {:?}", trak.edts);
    }
    let video = moov
        .trak
        .iter()
        .find(|t| t.mdia.hdlr.handler == mp4_atom::FourCC::new(b"vide"))
        .expect("a video track");
    let stbl = &video.mdia.minf.stbl;
    let entries = stbl.stsd.codecs.len();
    // Every sample entry has the recording's profile and level (the
    // re-encoded runs' encoder is set to them).
    let profile_level: Vec<(u8, u8)> = stbl
        .stsd
        .codecs
        .iter()
        .map(|c| match c {
            mp4_atom::Codec::Avc1(a) => {
                (a.avcc.avc_profile_indication, a.avcc.avc_level_indication)
            }
            mp4_atom::Codec::Hvc1(h) => (h.hvcc.general_profile_idc, h.hvcc.general_level_idc),
            mp4_atom::Codec::Hev1(h) => (h.hvcc.general_profile_idc, h.hvcc.general_level_idc),
            other => panic!("{ctx}: sample entry {other:?}"),
        })
        .collect();
    assert!(
        profile_level.windows(2).all(|w| w[0] == w[1]),
        "{ctx}: profiles and levels of the sample entries: {profile_level:?}"
    );
    // Runs of samples by sample entry: the re-encoded head (when the start
    // is inside a GOP), the copy (with the recording's entry), and a
    // re-encoded tail (the head's entry again, or one of its own).
    let per_sample = sample_entries(stbl);
    assert_eq!(per_sample.len(), e.frames, "{ctx}: {per_sample:?}");
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for &x in &per_sample {
        match runs.last_mut() {
            Some((entry, n)) if *entry == x => *n += 1,
            _ => runs.push((x, 1)),
        }
    }
    assert_eq!(per_sample[0], 1, "{ctx}: the first sample uses entry 1");
    let stss = &stbl.stss.as_ref().expect("stss").entries;
    let (head, copy_runs) = if e.on_keyframe {
        (0, &runs[..])
    } else if runs.len() == 1 {
        // The whole clip lies before the next keyframe (or before the last
        // one the end needs): all re-encoded, one entry.
        assert_eq!(entries, 1, "{ctx}");
        (e.frames, &runs[1..])
    } else {
        assert!(entries >= 2, "{ctx}: {entries} sample entries");
        // The copy starts at the second sync sample.
        assert_eq!(stss[1] as usize - 1, runs[0].1, "{ctx}: {runs:?} {stss:?}");
        (runs[0].1, &runs[1..])
    };
    let tail = match copy_runs {
        [] | [_] => 0,
        [copy, tail] => {
            assert_ne!(copy.0, tail.0, "{ctx}");
            // The tail starts with a keyframe of its own.
            assert!(
                stss.contains(&((e.frames - tail.1 + 1) as u32)),
                "{ctx}: {runs:?} {stss:?}"
            );
            tail.1
        }
        more => panic!("{ctx}: sample entry runs {more:?}"),
    };
    assert!(
        head > 0 || e.on_keyframe,
        "{ctx}: nothing re-encoded at a mid-GOP start"
    );
    assert!(head + tail <= e.frames, "{ctx}: head {head} tail {tail}");

    // The presented frames, by number, in ffmpeg and in GStreamer.
    let want: Vec<u32> = (e.first..e.first + e.frames as u32).collect();
    assert_eq!(frame_numbers(file), want, "{ctx}: ffmpeg's frames");
    assert_eq!(frame_numbers_gst(file), want, "{ctx}: GStreamer's frames");
    // Presentation starts at 0 without an edit list.
    let times = frame_times(file);
    assert_eq!(times.len(), e.frames, "{ctx}: {times:?}");
    assert!(times[0].abs() < 1e-6, "{ctx}: first frame at {}", times[0]);
    for (i, t) in times.iter().enumerate() {
        let want = i as f64 / FPS as f64;
        assert!(
            (t - want).abs() < 1e-3,
            "{ctx}: frame {i} at {t}, not {want}"
        );
    }
    // Clean decodes.
    assert_eq!(decode_errors(file), "", "{ctx}: ffmpeg decode errors");

    // The re-encoded frames against ffmpeg's decode of the recording.
    for (what, from, count) in [("head", 0, head), ("tail", e.frames - tail, tail)] {
        if count == 0 {
            continue;
        }
        let values = psnr(file, e.recording, from, e.first as usize + from, count, dir);
        assert_eq!(
            values.len(),
            count,
            "{ctx}: PSNR of every re-encoded {what} frame"
        );
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            min >= 40.0,
            "{ctx}: {what} PSNR {min:.1} dB < 40 dB: {values:?}"
        );
        eprintln!("{ctx}: {count} {what} frames re-encoded, PSNR min {min:.1} dB");
    }
    // The copied packets are the recording's, bit for bit.
    let clip_packets = packet_md5s(file);
    assert_eq!(clip_packets.len(), e.frames, "{ctx}: one packet per frame");
    let copied = &clip_packets[head..e.frames - tail];
    if !copied.is_empty() {
        let recorded = packet_md5s(e.recording);
        let from = recorded
            .iter()
            .position(|m| *m == copied[0])
            .unwrap_or_else(|| {
                panic!(
                    "{ctx}: the first copied packet is not the recording's: {:?} in {:?}",
                    &copied[..3.min(copied.len())],
                    &recorded[..recorded.len().min(200)]
                )
            });
        if e.contiguous {
            assert_eq!(
                &recorded[from..from + copied.len()],
                copied,
                "{ctx}: the copied GOPs"
            );
        } else {
            // In recording order, leaving out only the leading pictures
            // that the head re-encoded.
            let mut rest = recorded[from..].iter();
            for (i, m) in copied.iter().enumerate() {
                assert!(
                    rest.any(|r| r == m),
                    "{ctx}: copied packet {i} is not the recording's next"
                );
            }
        }
    }
    if e.audio {
        let st = streams(file);
        let (v, a) = (stream(&st, "video").unwrap(), stream(&st, "audio").unwrap());
        assert!(
            a.start_time.abs() < 1e-3,
            "{ctx}: audio starts at {}",
            a.start_time
        );
        assert!(
            (a.duration - v.duration).abs() <= 2.0 * 1024.0 / 48_000.0,
            "{ctx}: audio {} s, video {} s",
            a.duration,
            v.duration
        );
    }
    Reencoded { head, tail }
}

/// The session of the only recording under `dir` and its playlist.
fn session(dir: &Path) -> (String, PathBuf) {
    let session = session_dirs(&dir.join("cam"))[0].clone();
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    (id, session.join("replay.m3u8"))
}

/// Makes exact clip `name` of frames `first..end` (`accuracy=exact`) and
/// checks it.
#[allow(clippy::too_many_arguments)]
fn exact_clip(
    dir: &Path,
    recording: &Path,
    media_id: &str,
    name: &str,
    first: u64,
    end: u64,
    on_keyframe: bool,
    contiguous: bool,
    audio: bool,
) -> Reencoded {
    let range = (first, end);
    let e = (on_keyframe, contiguous, audio);
    clip_with(dir, recording, media_id, name, "exact", range, e)
}

/// Makes clip `name` of frames `range` with `accuracy` (`exact` or
/// `exact-start`) and checks it; `e`: on a keyframe, contiguous copy,
/// audio.
fn clip_with(
    dir: &Path,
    recording: &Path,
    media_id: &str,
    name: &str,
    accuracy: &str,
    (first, end): (u64, u64),
    (on_keyframe, contiguous, audio): (bool, bool, bool),
) -> Reencoded {
    let (sink, bus) = requester(dir);
    let out = dir.join("out").join(format!("{name}.mp4"));
    let query = format!(
        "time={}&end={}&accuracy={accuracy}&location={}",
        at(first),
        at(end),
        out.display()
    );
    let done = clip(&sink, &bus, media_id, &query);
    assert!(!done.has_field("error"), "{name}: {done:?}");
    // Duration × fps frames: exactly the requested ones. With
    // `exact-start` the end is copied: a reference frame presented after a
    // mid-GOP end that an earlier frame needs (B-frames) moves the end up
    // to the reordering depth later, and the done message says so.
    let frames = (ns(&done, "duration") as f64 * FPS as f64 / 1e9).round() as u64;
    let requested = end - first;
    if accuracy == "exact" {
        assert_eq!(frames, requested, "{name}: frames");
    } else {
        assert!(
            frames >= requested && frames <= requested + 3,
            "{name}: {frames} frames for {requested}"
        );
    }
    assert!(
        ns(&done, "start").abs_diff(first * NS / FPS) < 1_000_000,
        "{name}"
    );
    assert_eq!(ns(&done, "preroll"), 0, "{name}: nothing hidden");
    let e = Expect {
        recording,
        first: first as u32,
        frames: frames as usize,
        on_keyframe,
        contiguous,
        audio,
    };
    let made = check_exact(&format!("{name} ({query})"), &out, &e, dir);
    if accuracy == "exact-start" {
        assert_eq!(made.tail, 0, "{name}: exact-start copies the end");
    }
    made
}

/// The recording's video packets in decode order: (frame number from the
/// presentation time, keyframe). Keyframe requests reach x264enc late on a
/// non-live pipeline, so the GOPs are read from the recording rather than
/// assumed.
fn packets(recording: &Path) -> Vec<(u64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_packets"])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(recording)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success());
    let raw: Vec<(f64, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let pts: f64 = f.next()?.trim().parse().ok()?;
            Some((pts, f.next()?.contains('K')))
        })
        .collect();
    let t0 = raw.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    raw.iter()
        .map(|&(t, k)| (((t - t0) * FPS as f64).round() as u64, k))
        .collect()
}

/// What a smart cut of frames `first..end` of closed GOPs must re-encode:
/// the frames up to the next keyframe; and, when copying on to the end
/// would present a frame at or after it (a B-frame before the end needs
/// it), the frames from the latest time `t` such that the first `t - k`
/// packets from the copy's keyframe `k` (decode order) are exactly the
/// frames `k..t`. When that tail decodes from the copy's only keyframe and
/// copies no more frames than it re-encodes, everything is re-encoded.
fn expected(packets: &[(u64, bool)], first: u64, end: u64) -> Reencoded {
    let keys: Vec<u64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    let all = Reencoded {
        head: (end - first) as usize,
        tail: 0,
    };
    let copy_from = if keys.contains(&first) {
        first
    } else {
        match keys.iter().find(|&&k| k > first && k < end) {
            Some(&k) => k,
            None => return all,
        }
    };
    let head = (copy_from - first) as usize;
    let from = packets.iter().position(|p| p.0 == copy_from).unwrap();
    let t = (copy_from + 1..=end)
        .rev()
        .find(|&t| {
            let n = (t - copy_from) as usize;
            packets[from..].len() >= n && packets[from..from + n].iter().all(|p| p.0 < t)
        })
        .unwrap();
    let tail = (end - t) as usize;
    let own_keyframe = keys.iter().any(|&k| k > copy_from && k <= t);
    if tail > 0 && head > 0 && !own_keyframe && (t - copy_from) as usize <= tail {
        return all;
    }
    Reencoded { head, tail }
}

/// An end inside a GOP after `after` that copying would carry past (a
/// B-frame just before it needs a frame at or after it).
fn end_needing_a_tail(packets: &[(u64, bool)], after: u64) -> u64 {
    (after + 1..packets.len() as u64)
        .find(|&end| {
            let e = expected(packets, after, end);
            e.tail > 0 && e.head == 0
        })
        .expect("a GOP with B-frames")
}

/// H.264 from x264enc with B-frames, closed GOPs of 30 frames: mid-GOP
/// starts re-encode up to the next keyframe, a start on a keyframe
/// re-encodes nothing, a clip inside one GOP is all head.
#[test]
fn h264_with_b_frames_cuts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 8, 30, false);
    ok(&run(&pipeline, Duration::from_secs(120)));
    let (media_id, recording) = session(dir.path());
    let d = dir.path();
    let packets = packets(&recording);
    let keys: Vec<u64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    // Mid-GOP start, end on a keyframe: the head re-encoded, the rest
    // copied.
    let end = keys[4];
    let made = exact_clip(d, &recording, &media_id, "mid", 40, end, false, true, true);
    assert_eq!(made, expected(&packets, 40, end));
    assert_eq!(made.tail, 0);
    // Mid-GOP start and an end that copying would carry past: the copy
    // stops at the last mini-GOP boundary before the end, the frame or two
    // after it are re-encoded (two B-frames: at most two).
    let end = end_needing_a_tail(&packets, keys[3]);
    let made = exact_clip(
        d, &recording, &media_id, "mid-end", 47, end, false, true, true,
    );
    assert_eq!(made, expected(&packets, 47, end));
    assert!(made.head > 0 && made.tail > 0 && made.tail <= 2, "{made:?}");
    // The same with the end copied.
    let made = clip_with(
        d,
        &recording,
        &media_id,
        "mid-end-copied",
        "exact-start",
        (47, end),
        (false, true, true),
    );
    assert_eq!(made.head, expected(&packets, 47, end).head);
    // On a keyframe: nothing re-encoded, B-frames by negative offsets.
    let (from, to) = (keys[2], keys[5]);
    let made = exact_clip(d, &recording, &media_id, "key", from, to, true, true, true);
    assert_eq!(made, Reencoded { head: 0, tail: 0 });
    // Inside one GOP: all re-encoded.
    let (from, to) = (keys[3] + 5, keys[3] + 20);
    let made = exact_clip(
        d, &recording, &media_id, "inside", from, to, false, true, true,
    );
    assert_eq!(made, Reencoded { head: 15, tail: 0 });
}

/// Numbered frames encoded by ffmpeg's libx264 with open GOPs (non-IDR
/// I-frames with leading B-frames), as MPEG-TS.
fn ffmpeg_open_gop_feed(dir: &Path, seconds: u64) -> PathBuf {
    ffmpeg_feed(
        &dir.join("open-gop.ts"),
        seconds,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "3",
            "-g",
            "30",
            "-x264-params",
            "open-gop=1:scenecut=0:b-pyramid=normal",
        ],
    )
}

/// `seconds` of numbered frames encoded by ffmpeg with `codec` (its
/// encoder options) into the MPEG-TS `out`.
fn ffmpeg_feed(out: &Path, seconds: u64, codec: &[&str]) -> PathBuf {
    let out = out.to_path_buf();
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "rawvideo"])
        .args(["-pix_fmt", "yuv420p", "-s", &format!("{W}x{H}")])
        .args(["-r", &FPS.to_string(), "-i", "-"])
        .args(codec)
        .args(["-f", "mpegts"])
        .arg(&out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&numbered_raw((seconds * FPS) as u32))
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    out
}

/// H.264 with open GOPs from ffmpeg's libx264: a start on an open-GOP
/// I-frame copies from it without its leading pictures; a start inside an
/// open GOP re-encodes up to the next I-frame, with that I-frame's leading
/// pictures (presented before it), which the copy leaves out.
#[test]
fn open_gop_h264_cuts_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let feed = ffmpeg_open_gop_feed(dir.path(), 8);
    let port = common::http::free_port();
    let p = launch(&format!(
        "filesrc location={} ! tsdemux ! h264parse ! queue ! s.video \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 \
         http-address=127.0.0.1:{port}",
        feed.display(),
        dir.path().display()
    ));
    // It stays PLAYING: its HTTP API answers below.
    play_to_eos(&p, Duration::from_secs(120));
    let (media_id, recording) = session(dir.path());
    assert_eq!(
        frame_numbers(&recording),
        (0..8 * FPS as u32).collect::<Vec<_>>()
    );
    let d = dir.path();
    // On an open-GOP I-frame: nothing re-encoded, its leading pictures
    // left out, everything after copied.
    let made = exact_clip(
        d, &recording, &media_id, "open-key", 60, 150, true, false, false,
    );
    assert_eq!(made, Reencoded { head: 0, tail: 0 });
    // Mid-GOP starts: the head runs to the next I-frame (every 30 frames)
    // and includes its leading pictures; the GOPs after it are copied.
    for st in [40u64, 71, 101, 131, 161] {
        let name = format!("open-{st}");
        let made = exact_clip(
            d,
            &recording,
            &media_id,
            &name,
            st,
            st + 45,
            false,
            false,
            false,
        );
        assert_eq!(made.head as u64, st.div_ceil(30) * 30 - st, "{name}");
        assert_eq!(made.tail, 0, "{name}");
    }
    // Ends on an open-GOP I-frame and inside a GOP: exactly the requested
    // frames (whatever the end needs re-encoded is checked by PSNR, the
    // rest against the recording's packets).
    for (name, st, end) in [("open-end-key", 40, 90), ("open-end-mid", 71, 143)] {
        exact_clip(d, &recording, &media_id, name, st, end, false, false, false);
    }

    // Over HTTP (the same parser and cut).
    let base = format!("http://127.0.0.1:{port}/{media_id}");
    let r = common::http::get(&format!(
        "{base}/clip.mp4?time={}&end={}&accuracy=exact",
        at(101),
        at(150)
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("clip-preroll-seconds").as_deref(),
        Some("0.000000")
    );
    let file = d.join("out").join("http.mp4");
    std::fs::write(&file, &r.body).unwrap();
    assert!(moov(&file).trak.iter().all(|t| t.edts.is_none()));
    assert_eq!(frame_numbers(&file), (101..150).collect::<Vec<u32>>());
    // A manifest can't be exact.
    let r = common::http::get(&format!(
        "{base}/clip.m3u8?time={}&end={}&accuracy=exact",
        at(60),
        at(150)
    ));
    assert_eq!(r.status, 400, "{}", r.text());
    p.set_state(gst::State::Null).unwrap();
}

/// 8 s of numbered frames through `encoder` recorded under `dir` (2 s
/// segments): the session, its recording, its video packets and the frame
/// numbers of its keyframes.
fn recorded(dir: &Path, encoder: &str) -> (String, PathBuf, Vec<(u64, bool)>, Vec<u64>) {
    let pipeline = numbered_video(dir, "target-duration=2", 8, encoder);
    ok(&run(&pipeline, Duration::from_secs(180)));
    let (media_id, recording) = session(dir);
    let packets = packets(&recording);
    let keys = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    (media_id, recording, packets, keys)
}

/// H.265 from x265enc (B-frames, CRA keyframes with leading pictures).
#[test]
fn h265_cuts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (media_id, recording, _, keys) = recorded(
        d,
        "x265enc speed-preset=ultrafast key-int-max=30 option-string=bframes=2:scenecut=0 ! h265parse",
    );
    // Mid-GOP start; the end on a CRA (its leading pictures, presented
    // before it, need it: only they are re-encoded at the end).
    let next = *keys.iter().find(|&&k| k > 40).unwrap();
    let end = keys[5];
    let made = exact_clip(
        d, &recording, &media_id, "hevc-mid", 40, end, false, false, false,
    );
    assert_eq!(made.head as u64, next - 40, "{made:?}");
    assert!(made.tail <= 3, "{made:?}");
    let made = exact_clip(
        d, &recording, &media_id, "hevc-key", keys[2], keys[4], true, false, false,
    );
    assert!(made.head == 0 && made.tail <= 3, "{made:?}");
    // A start on a CRA and a mid-GOP end: the frames after the last
    // mini-GOP boundary (two B-frames) re-encoded, decoded from the CRA
    // before them.
    let end = keys[4] + 23;
    let made = exact_clip(
        d, &recording, &media_id, "hevc-end", keys[2], end, true, false, false,
    );
    assert!(
        made.head == 0 && made.tail > 0 && made.tail <= 2,
        "{made:?}"
    );
}

/// H.265 from x265enc's defaults: four B-frames in a pyramid, adaptive
/// B-frame placement, CRA keyframes with leading pictures. A mid-GOP end
/// re-encodes only the frames after the last mini-GOP boundary before it.
#[test]
fn h265_b_pyramid_cuts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (media_id, recording, packets, keys) =
        recorded(d, "x265enc speed-preset=fast key-int-max=30 ! h265parse");
    // Reordered four deep (P5 B3 b1 b2 b4: the pyramid to cut through).
    assert!(
        packets.windows(3).any(|w| w[2].0 + 4 <= w[0].0),
        "no B-pyramid in {packets:?}"
    );
    let next = *keys.iter().find(|&&k| k > 40).unwrap();
    for (n, end) in [keys[4] + 7, keys[4] + 13, keys[4] + 18]
        .into_iter()
        .enumerate()
    {
        let name = format!("pyramid-{n}");
        let made = exact_clip(
            d, &recording, &media_id, &name, 40, end, false, false, false,
        );
        assert_eq!(made.head as u64, next - 40, "{name}: {made:?}");
        assert!(made.tail <= 4, "{name}: {made:?}");
    }
}

/// H.265 from ffmpeg's libx265 (not GStreamer's encoder): open GOPs (CRA
/// with leading pictures), four B-frames in a pyramid, through MPEG-TS.
#[test]
fn ffmpeg_libx265_open_gop_cuts_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feed = ffmpeg_feed(
        &d.join("x265.ts"),
        8,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "fast",
            "-x265-params",
            "log-level=error:keyint=30:min-keyint=30:open-gop=1:scenecut=0:bframes=4:b-pyramid=1",
        ],
    );
    let p = launch(&format!(
        "filesrc location={} ! tsdemux ! h265parse ! queue ! s.video \
         hlsclipsink name=s location={} stream-id=cam target-duration=2",
        feed.display(),
        d.display()
    ));
    play_to_eos(&p, Duration::from_secs(120));
    p.set_state(gst::State::Null).unwrap();
    let (media_id, recording) = session(d);
    assert_eq!(
        frame_numbers(&recording),
        (0..8 * FPS as u32).collect::<Vec<_>>()
    );
    let packets = packets(&recording);
    let keys: Vec<u64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    // Open GOPs (a picture decoded after a keyframe but shown before it)
    // and reordering four deep.
    assert!(
        packets.windows(2).any(|w| w[0].1 && w[1].0 < w[0].0),
        "no leading pictures in {packets:?}"
    );
    assert!(
        packets.windows(3).any(|w| w[2].0 + 4 <= w[0].0),
        "no B-pyramid in {packets:?}"
    );
    let next = *keys.iter().find(|&&k| k > 40).unwrap();
    for (name, end) in [("x265-mid", keys[4] + 13), ("x265-key-end", keys[5])] {
        let made = exact_clip(d, &recording, &media_id, name, 40, end, false, false, false);
        assert_eq!(made.head as u64, next - 40, "{name}: {made:?}");
        assert!(made.tail <= 4, "{name}: {made:?}");
    }
    let made = exact_clip(
        d,
        &recording,
        &media_id,
        "x265-key",
        keys[2],
        keys[4] + 7,
        true,
        false,
        false,
    );
    assert!(made.head == 0 && made.tail <= 4, "{made:?}");
}

/// A page that plays `/clip.mp4` and logs the number of its first frame
/// (read from the pixels), its duration, and the last frame's number at
/// the end.
const PAGE: &str = r#"<!doctype html><html><body>
<video id="v" muted playsinline></video><canvas id="c" width="320" height="240"></canvas>
<script>
const v = document.getElementById('v');
const c = document.getElementById('c').getContext('2d', { willReadFrequently: true });
const log = (m) => console.log('liveclip: ' + m);
function num() {
  c.drawImage(v, 0, 0, 320, 240);
  let n = 0;
  for (let b = 4; b >= 0; b--) {
    const p = c.getImageData(160, b * 48 + 24, 1, 1).data[0];
    n = n * 5 + Math.min(4, Math.max(0, Math.round(p / 64)));
  }
  return n;
}
v.onerror = () => log('error ' + (v.error && v.error.message));
v.addEventListener('loadeddata', () => {
  log('first ' + num() + ' duration ' + v.duration.toFixed(3));
  v.play().catch((e) => log('error play ' + e));
});
v.onended = () => log('ended ' + v.currentTime.toFixed(3) + ' last ' + num());
v.src = '/clip.mp4';
</script></body></html>"#;

/// Serves [`PAGE`] at `/` and `clip` at `/clip.mp4` (whole, no ranges).
fn serve_clip(clip: PathBuf) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (body, kind) = match path {
                "/" => (PAGE.as_bytes().to_vec(), "text/html"),
                "/clip.mp4" => (std::fs::read(&clip).unwrap(), "video/mp4"),
                _ => (Vec::new(), "text/plain"),
            };
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| stream.write_all(&body));
        }
    });
    port
}

/// Chromium (its own MP4 demuxer and decoder, no edit list to honour)
/// starts an exact clip at the requested frame, plays it to the end at the
/// last frame of the range, with its two sample entries.
#[test]
fn chromium_plays_an_exact_clip_from_the_requested_frame() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 8, 30, false);
    ok(&run(&pipeline, Duration::from_secs(120)));
    let (media_id, recording) = session(dir.path());
    // A head, copied GOPs and a tail.
    let packets = packets(&recording);
    let keys: Vec<u64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    let end = end_needing_a_tail(&packets, keys[3]);
    let made = exact_clip(
        dir.path(),
        &recording,
        &media_id,
        "browser",
        40,
        end,
        false,
        true,
        true,
    );
    assert_eq!(made, expected(&packets, 40, end));
    assert!(made.head > 0 && made.tail > 0, "{made:?}");
    let port = serve_clip(dir.path().join("out").join("browser.mp4"));
    let lines = common::browser::chromium(
        &format!("http://127.0.0.1:{port}/"),
        &["ended", "error"],
        Duration::from_secs(90),
    );
    assert!(lines.iter().all(|l| !l.starts_with("error")), "{lines:?}");
    let first = lines
        .iter()
        .find(|l| l.starts_with("first "))
        .unwrap_or_else(|| panic!("no first frame: {lines:?}"));
    assert!(first.starts_with("first 40 duration "), "{lines:?}");
    let duration: f64 = first.rsplit(' ').next().unwrap().parse().unwrap();
    let want = (end - 40) as f64 / FPS as f64;
    assert!((duration - want).abs() < 0.05, "{lines:?}");
    let ended = lines
        .iter()
        .find(|l| l.starts_with("ended "))
        .unwrap_or_else(|| panic!("did not play to the end: {lines:?}"));
    assert!(ended.ends_with(&format!(" last {}", end - 1)), "{lines:?}");
}

/// What the smart cut can't re-encode is refused with 422 `unsupported`
/// naming it (here H.264 High 4:4:4), over the signal and HTTP, and no file
/// is written; a start on a keyframe needs no re-encode and works.
#[test]
fn unsupported_profiles_answer_422() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::http::free_port();
    let pipeline = numbered_video(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port}"),
        4,
        "videoconvert ! video/x-raw,format=Y444 ! \
         x264enc speed-preset=ultrafast key-int-max=30 ! h264parse",
    );
    play_to_eos(&pipeline, Duration::from_secs(60));
    let (media_id, recording) = session(dir.path());
    let out = dir.path().join("out").join("444.mp4");
    let (sink, bus) = requester(dir.path());
    let query = format!(
        "time={}&end={}&accuracy=exact&location={}",
        at(40),
        at(70),
        out.display()
    );
    let done = clip(&sink, &bus, &media_id, &query);
    assert_eq!(done.get::<u32>("status").unwrap(), 422, "{done:?}");
    assert_eq!(done.get::<String>("kind").unwrap(), "unsupported");
    let error = done.get::<String>("error").unwrap();
    assert!(error.contains("H.264 profile_idc 244"), "{error}");
    assert!(!out.exists(), "no clip is written");
    let r = common::http::get(&format!(
        "http://127.0.0.1:{port}/{media_id}/clip.mp4?time={}&end={}&accuracy=exact",
        at(40),
        at(70)
    ));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["kind"], "unsupported", "{}", r.text());
    assert!(r.text().contains("profile_idc 244"), "{}", r.text());
    // On a keyframe nothing is re-encoded.
    exact_clip(
        dir.path(),
        &recording,
        &media_id,
        "444-key",
        30,
        90,
        true,
        true,
        false,
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
