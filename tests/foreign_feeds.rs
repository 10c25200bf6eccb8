// SPDX-License-Identifier: MPL-2.0
//! Feeds that GStreamer's x264enc did not make: ffmpeg's libx264 with open
//! GOPs, B-pyramid and scene cuts (25 and 29.97 fps), libx265 with CRA/RASL,
//! in MPEG-TS, MP4 and FLV (RTMP's container), parsed only (no encoder
//! upstream to answer keyframe requests); GStreamer's x265enc with its
//! defaults; an intra-refresh feed.
//! Every clip is checked frame by frame against ffmpeg's decode of the feed
//! itself (framemd5).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

const SECONDS: u32 = 12;

/// A 12 s, 25 fps feed with AAC audio, made by ffmpeg with `video` codec
/// arguments, as MPEG-TS.
fn feed(dir: &Path, name: &str, video: &[&str]) -> PathBuf {
    feed_with(dir, name, "25", "mpegts", video)
}

/// A 12 s feed at `rate` (ffmpeg's syntax, e.g. `30000/1001`) in
/// `container` (`mpegts` or `mp4`), with hard scene cuts every 2.3 s (a
/// second picture cut in for 1.1 s): encoders put extra I-frames there.
fn feed_with(dir: &Path, name: &str, rate: &str, container: &str, video: &[&str]) -> PathBuf {
    let ext = match container {
        "mp4" => "mp4",
        "flv" => "flv",
        _ => "ts",
    };
    let out = dir.join(format!("{name}.{ext}"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate={rate}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("mandelbrot=size=320x240:rate={rate}"))
        .args(["-f", "lavfi", "-i", "sine=f=440:r=48000"])
        .args(["-filter_complex"])
        .arg("[0:v][1:v]overlay=enable='gt(mod(t,2.3),1.2)'[v]")
        .args(["-map", "[v]", "-map", "2:a"])
        .args(["-t", &SECONDS.to_string()])
        .args(video)
        .args(["-c:a", "aac", "-f", container])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    out
}

/// ffmpeg's libx264 with open GOPs of `gop` frames and B-pyramid.
fn x264_open_gop_args(gop: &'static str) -> [&'static str; 12] {
    [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "3",
        "-g",
        gop,
        "-x264opts",
        "open-gop=1:b-pyramid=normal",
        "-b_strategy",
        "0",
    ]
}

fn x264_open_gop(dir: &Path) -> PathBuf {
    feed(dir, "x264-open", &x264_open_gop_args("50"))
}

fn x265_rasl(dir: &Path) -> PathBuf {
    feed(
        dir,
        "x265-rasl",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:keyint=50:min-keyint=50:scenecut=0:bframes=3:b-adapt=0",
        ],
    )
}

/// The md5 of every decoded video frame, in presentation order.
fn frame_md5s(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

/// ffmpeg's decode errors, without the one an H.264 decoder reports when
/// it starts at an open-GOP I-frame whose (never presented, dropped)
/// leading reference B-frame a later memory-management command names.
/// The frames themselves are checked bit for bit.
fn h264_open_gop_errors(file: &Path) -> String {
    decode_errors(file)
        .lines()
        .filter(|l| !l.ends_with("mmco: unref short failure"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// ffmpeg's decode errors of `file`, H.264's open-GOP noise left out.
fn errors_of(file: &Path, h264: bool) -> String {
    if h264 {
        h264_open_gop_errors(file)
    } else {
        decode_errors(file)
    }
}

fn parser(feed: &Path) -> &'static str {
    if feed.to_string_lossy().contains("x265") {
        "h265parse"
    } else {
        "h264parse"
    }
}

fn demuxer(feed: &Path) -> &'static str {
    match feed.extension().and_then(|e| e.to_str()) {
        Some("mp4") => "qtdemux",
        Some("flv") => "flvdemux",
        _ => "tsdemux",
    }
}

/// Frames per second of the feed's video, from ffprobe (`25/1`,
/// `30000/1001`).
fn frame_rate(feed: &Path) -> (u64, u64) {
    let r = stream(&streams(feed), "video").unwrap().frame_rate.clone();
    let (n, d) = r.split_once('/').unwrap();
    (n.parse().unwrap(), d.parse().unwrap())
}

/// Periodic clips of a feed: sorted paths.
fn periodic(feed: &Path, out: &Path, extra: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let p = launch(&format!(
        "filesrc location={} ! {} name=d d. ! {} ! queue ! pc.video \
         d. ! aacparse ! queue ! pc.audio \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4 {extra}",
        feed.display(),
        demuxer(feed),
        parser(feed),
        out.display()
    ));
    ok(&run(&p, Duration::from_secs(120)));
    files(out, "mp4")
}

/// Every frame of the feed is presented exactly once across the clips, in
/// order and bit-identical, and every clip starts with a keyframe.
fn assert_gapless_and_exact(feed: &Path, clips: &[PathBuf], h264: bool) {
    let source = frame_md5s(feed);
    let (n, d) = frame_rate(feed);
    let expected = (u64::from(SECONDS) * n / d) as usize;
    assert!(
        source.len().abs_diff(expected) <= 1,
        "{} frames",
        source.len()
    );
    let mut all = Vec::new();
    for c in clips {
        let errors = errors_of(c, h264);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        let types = picture_types(c);
        assert!(
            types.first().is_some_and(|t| t.1),
            "{} starts with {:?}",
            c.display(),
            types.first()
        );
        all.extend(frame_md5s(c));
    }
    assert!(clips.len() >= 3, "{clips:?}");
    assert_eq!(all.len(), source.len(), "frames across the clips");
    let first_diff = all.iter().zip(&source).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first frame that differs from the feed");
}

#[test]
fn periodic_clips_of_libx264_open_gops_are_gapless_and_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x264_open_gop(dir.path());
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, true);
}

#[test]
fn periodic_clips_of_libx265_rasl_are_gapless_and_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x265_rasl(dir.path());
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, false);
}

/// hlsclipsink and periodicclipper behind one parser: hlsclipsink's
/// keyframe requests make h264parse flag a P frame as a keyframe; neither
/// element may take it for one.
#[test]
fn a_shared_parser_with_keyframe_requests_corrupts_nothing() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x264_open_gop(dir.path());
    let pc = dir.path().join("pc");
    std::fs::create_dir_all(&pc).unwrap();
    let p = launch(&format!(
        "filesrc location={} ! tsdemux name=d d. ! h264parse ! tee name=v \
         d. ! aacparse ! tee name=a \
         v. ! queue ! s.video a. ! queue ! s.audio \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 \
         v. ! queue ! pc.video a. ! queue ! pc.audio \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4",
        f.display(),
        dir.path().display(),
        pc.display()
    ));
    ok(&run(&p, Duration::from_secs(120)));
    assert_gapless_and_exact(&f, &files(&pc, "mp4"), true);

    // The recording: every fragment starts at a sync sample that is an
    // I-frame, and the whole recording decodes to the feed's frames.
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let playlist = session.join("replay.m3u8");
    let source = frame_md5s(&f);
    let recorded = frame_md5s(&playlist);
    assert_eq!(recorded, source, "the recording is the feed");

    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    assert_clips_exact(
        dir.path(),
        &media_id,
        &f,
        &[(6.2, 4.0), (2.52, 1.0), (7.0, 2.0)],
    );
}

/// Frame-accurate `clip.mp4` requests of a stored recording of `feed` (in
/// stream `cam` under `location`): each decodes cleanly (ffmpeg) and
/// presents exactly the feed's frames whose times fall in the range; its
/// clip manifest decodes cleanly too. `ranges`: (start, duration) in s.
fn assert_clips_exact(location: &Path, media_id: &str, feed: &Path, ranges: &[(f64, f64)]) {
    let source = frame_md5s(feed);
    let (n, d) = frame_rate(feed);
    let fps = n as f64 / d as f64;
    let h264 = parser(feed) == "h264parse";
    let (sink, bus) = requester(location);
    let session = location.join("cam").join(media_id);
    for (i, &(start, dur)) in ranges.iter().enumerate() {
        let out = location.join(format!("clip-{i}.mp4"));
        let query = format!("time={start}s&duration={dur}s&location={}", out.display());
        let id = sink.emit_by_name::<u64>("clip-mp4", &[&Some(media_id), &query]);
        let done = clip_done(&bus, id);
        assert!(!done.has_field("error"), "{query}: {done:?}");
        let errors = errors_of(&out, h264);
        assert!(errors.is_empty(), "{query}: {errors}");
        // Frame k is presented at k / fps: the frames in [start, end).
        let first = (start * fps - 1e-6).ceil() as usize;
        let end = ((start + dur) * fps - 1e-6).ceil() as usize;
        assert_eq!(frame_md5s(&out), source[first..end], "{query}");

        // The clip manifest of the same range decodes cleanly from its
        // first fragment (a random-access point) and reaches the range.
        let m = sink.emit_by_name::<gst::Structure>(
            "get-clip-manifest",
            &[&Some(media_id), &format!("time={start}&duration={dur}")],
        );
        assert!(!m.has_field("error"), "{query}: {m:?}");
        let text = m.get::<String>("manifest").unwrap();
        let manifest = session.join(format!("clip-{i}.m3u8"));
        std::fs::write(&manifest, text).unwrap();
        let errors = errors_of(&manifest, h264);
        assert!(errors.is_empty(), "{query} manifest: {errors}");
        let played = frame_md5s(&manifest);
        let from = source.iter().position(|f| Some(f) == played.first());
        assert!(
            from.is_some_and(|k| k <= first && source[k..].starts_with(&played)),
            "{query}: the manifest plays the feed's frames from a keyframe"
        );
        assert!(played.len() + from.unwrap() >= end, "{query}");
    }
}

/// Records `feed` into hlsclipsink (`target-duration=2`) and checks the
/// recording: every frame of the feed, bit for bit, and audio starting
/// within one AAC frame of video as ffprobe reads the replay playlist.
/// Returns the media id.
fn record(feed: &Path, location: &Path) -> String {
    record_with(feed, location, "")
}

/// [`record`], with more hlsclipsink properties.
fn record_with(feed: &Path, location: &Path, props: &str) -> String {
    let p = launch(&format!(
        "filesrc location={} ! {} name=d d. ! {} ! queue ! s.video \
         d. ! aacparse ! queue ! s.audio \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 {props}",
        feed.display(),
        demuxer(feed),
        parser(feed),
        location.display()
    ));
    ok(&run(&p, Duration::from_secs(120)));
    let session = session_dirs(&location.join("cam"))[0].clone();
    let playlist = session.join("replay.m3u8");
    assert_eq!(
        frame_md5s(&playlist),
        frame_md5s(feed),
        "the recording is the feed"
    );
    let st = streams(&playlist);
    let (v, a) = (stream(&st, "video").unwrap(), stream(&st, "audio").unwrap());
    assert!(
        (a.start_time - v.start_time).abs() <= 1024.0 / 48_000.0 + 1e-3,
        "A/V start: video {} audio {}",
        v.start_time,
        a.start_time
    );
    session.file_name().unwrap().to_string_lossy().into_owned()
}

/// libx264 open GOPs with B-pyramid and scene cuts at 29.97 fps: periodic
/// clips gapless and exact, the recording bit-identical, frame-accurate
/// clips exact at mid-GOP starts and at exact frame boundaries.
#[test]
fn libx264_open_gops_at_29_97_fps_clip_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = feed_with(
        dir.path(),
        "x264-2997",
        "30000/1001",
        "mpegts",
        &x264_open_gop_args("60"),
    );
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, true);
    let media_id = record(&f, dir.path());
    // 201/29.97 s and 150/29.97 s are exact frame boundaries.
    assert_clips_exact(
        dir.path(),
        &media_id,
        &f,
        &[
            (5.3, 3.0),
            (201.0 * 1.001 / 30.0, 2.5),
            (150.0 * 1.001 / 30.0, 4.0),
        ],
    );
}

/// libx265 with its default open GOPs (CRA, RASL leading pictures) in MP4.
#[test]
fn libx265_in_mp4_clips_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = feed_with(
        dir.path(),
        "x265-mp4",
        "25",
        "mp4",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:keyint=50:min-keyint=25",
        ],
    );
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, false);
    let media_id = record(&f, dir.path());
    assert_clips_exact(
        dir.path(),
        &media_id,
        &f,
        &[(4.5, 3.0), (6.0, 2.0), (1.3, 5.0)],
    );
}

/// libx264 open GOPs in FLV, as RTMP contribution carries them (flvdemux).
#[test]
fn libx264_open_gops_over_flv_clip_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = feed_with(
        dir.path(),
        "x264-flv",
        "25",
        "flv",
        &x264_open_gop_args("50"),
    );
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, true);
    let media_id = record(&f, dir.path());
    assert_clips_exact(dir.path(), &media_id, &f, &[(3.3, 4.0), (7.04, 2.0)]);
}

/// GStreamer's x265enc with its defaults, straight into both elements.
#[test]
fn x265enc_defaults_clip_exactly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let pc = dir.path().join("pc");
    std::fs::create_dir_all(&pc).unwrap();
    let p = launch(&format!(
        "videotestsrc num-buffers=300 pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! \
         x265enc ! h265parse ! tee name=v \
         audiotestsrc num-buffers=563 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! voaacenc ! \
         aacparse ! tee name=a \
         v. ! queue ! s.video a. ! queue ! s.audio \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 \
         v. ! queue ! pc.video a. ! queue ! pc.audio \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4",
        dir.path().display(),
        pc.display()
    ));
    ok(&run(&p, Duration::from_secs(180)));
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let recording = frame_md5s(&session.join("replay.m3u8"));
    assert_eq!(recording.len(), 300);
    let mut all = Vec::new();
    for c in files(&pc, "mp4") {
        let errors = decode_errors(&c);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        all.extend(frame_md5s(&c));
    }
    assert_eq!(all, recording, "periodic clips: every frame once");
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    // The recording stands in for the feed (it is bit-identical to what
    // the encoder made: every frame decodes).
    let reference = dir.path().join("recording.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(session.join("replay.m3u8"))
        .args(["-c", "copy"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(frame_md5s(&reference), recording);
    assert_clips_exact(
        dir.path(),
        &media_id,
        &reference,
        &[(3.3, 4.0), (8.04, 2.0)],
    );
}

/// An intra-refresh feed (one IDR, then no random-access point): the
/// elements warn, and nothing they write starts anywhere but at the IDR.
#[test]
fn a_feed_without_random_access_points_is_warned_about() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let pc = dir.path().join("pc");
    std::fs::create_dir_all(&pc).unwrap();
    let p = launch(&format!(
        "videotestsrc num-buffers=500 pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! \
         x264enc intra-refresh=true key-int-max=25 speed-preset=ultrafast ! h264parse ! tee name=v \
         v. ! queue ! s.video v. ! queue ! pc.video \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4",
        dir.path().display(),
        pc.display()
    ));
    let result = run(&p, Duration::from_secs(120));
    ok(&result);
    let warnings = &result.warnings;
    for element in ["s:", "pc:"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(element) && w.contains("no keyframe")),
            "{element} warns: {warnings:?}"
        );
    }
    // Everything recorded decodes (from the one IDR), and every clip
    // starts with it.
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let errors = decode_errors(&session.join("replay.m3u8"));
    assert!(errors.is_empty(), "{errors}");
    for c in files(&pc, "mp4") {
        let errors = decode_errors(&c);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        assert!(
            picture_types(&c).first().is_some_and(|t| t.1),
            "{}",
            c.display()
        );
    }
}

/// motionclipenc behind a decoder of an open-GOP feed: its clips come on
/// time and decode cleanly.
#[test]
fn motion_clips_of_an_open_gop_feed() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x264_open_gop(dir.path());
    let p = launch(&format!(
        "filesrc location={} ! tsdemux ! h264parse ! avdec_h264 ! videoconvert ! \
         motionclipenc interval=4 duration=2 location={}/m-%03d.mp4 ! fakesink",
        f.display(),
        dir.path().display()
    ));
    let result = run(&p, Duration::from_secs(120));
    ok(&result);
    let clips = files(dir.path(), "mp4");
    assert_eq!(clips.len(), 3, "{clips:?}");
    for c in clips {
        let errors = decode_errors(&c);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
    }
}

/// Gray pixels of frame `k` of `file` (in presentation order), at `w` by
/// `h`.
fn frame_gray(file: &Path, k: usize, w: u32, h: u32) -> Vec<u8> {
    let mut px = gray_pixels(file, &format!("select=eq(n\\,{k}),scale={w}:{h}"));
    // The output's constant frame rate may repeat the one frame selected.
    px.truncate((w * h) as usize);
    px
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len() as f64
}

/// thumbnailer on open-GOP feeds (encoded input, no encoder upstream): one
/// image per tick, and each is the picture of the frame it names (closest
/// to it of its neighbours, by pixels against ffmpeg's decode of the feed),
/// not a picture decoded with missing references.
#[test]
fn thumbnails_of_open_gop_feeds_are_their_frames() {
    init();
    let dir = tempfile::tempdir().unwrap();
    for f in [x264_open_gop(dir.path()), x265_rasl(dir.path())] {
        let out = dir.path().join(f.file_stem().unwrap());
        std::fs::create_dir_all(&out).unwrap();
        let p = launch(&format!(
            "filesrc location={} ! tsdemux ! {} ! thumbnailer interval=2 format=png \
             location={}/t-%03d.png ! fakesink",
            f.display(),
            parser(&f),
            out.display()
        ));
        let result = run(&p, Duration::from_secs(120));
        ok(&result);
        assert!(result.warnings.is_empty(), "{:?}", result.warnings);
        let msgs = result.named("thumbnailer-thumbnail");
        assert_eq!(msgs.len(), SECONDS as usize / 2, "{}", f.display());
        for m in msgs {
            let image = PathBuf::from(m.get::<String>("location").unwrap());
            let w = m.get::<i32>("width").unwrap() as u32;
            let h = m.get::<i32>("height").unwrap() as u32;
            let k = (ns(m, "recording-time") as f64 * 25.0 / 1e9).round() as usize;
            let thumb = gray_pixels(&image, "null");
            let from = k.saturating_sub(2);
            let diffs: Vec<f64> = (from..=k + 2)
                .map(|n| mean_abs_diff(&thumb, &frame_gray(&f, n, w, h)))
                .collect();
            let best = diffs
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            assert_eq!(
                from + best.0,
                k,
                "{}: thumbnail of frame {k} against frames {from}..: {diffs:?}",
                image.display()
            );
            // Clearly closer to it than to any neighbour (the images went
            // through RGB and back to gray: not bit-exact), and close.
            let next = diffs
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best.0)
                .map(|(_, d)| *d)
                .fold(f64::MAX, f64::min);
            assert!(
                *best.1 < 5.0 && *best.1 < 0.8 * next,
                "{}: {diffs:?}",
                image.display()
            );
        }
    }
}

/// A ladder that ffmpeg encoded (libx264, open GOPs, B-pyramid, aligned
/// 2 s GOPs without scene-cut keyframes, as ladder encoders are set up),
/// two renditions as two MPEG-TS contributions: each rendition's recording
/// is its feed bit for bit, the renditions' segments are aligned, and no
/// rendition is reported off the leading one's keyframes.
#[test]
fn an_ffmpeg_ladder_with_open_gops_records_aligned_and_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (hi, lo) = (dir.path().join("hi.ts"), dir.path().join("lo.ts"));
    let video = [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "3",
        "-x264-params",
        "keyint=50:min-keyint=50:scenecut=0:open-gop=1:b-pyramid=normal",
    ];
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=f=440:r=48000"])
        .args(["-filter_complex"])
        .arg("[0:v][1:v]overlay=enable='gt(mod(t,2.3),1.2)',split[a][b];[b]scale=160:120[small]")
        .args(["-t", &SECONDS.to_string()])
        .args(["-map", "[a]", "-map", "2:a"])
        .args(video)
        .args(["-c:a", "aac", "-f", "mpegts"])
        .arg(&hi)
        .args(["-map", "[small]"])
        .args(["-t", &SECONDS.to_string()])
        .args(video)
        .args(["-f", "mpegts"])
        .arg(&lo)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let location = dir.path().join("rec");
    let p = launch(&format!(
        "hlsclipsink name=s location={} stream-id=cam target-duration=2 \
           video_0::rendition=hi video_1::rendition=lo \
         filesrc location={} ! tsdemux name=d d. ! h264parse ! queue ! s.video_0 \
           d. ! aacparse ! queue ! s.audio_0 \
         filesrc location={} ! tsdemux ! h264parse ! queue ! s.video_1",
        location.display(),
        hi.display(),
        lo.display()
    ));
    let run = run(&p, Duration::from_secs(120));
    ok(&run);
    assert!(
        !run.warnings.iter().any(|w| w.contains("no keyframe")),
        "{:?}",
        run.warnings
    );
    let session = session_dirs(&location.join("cam"))[0].clone();
    let mut timelines = Vec::new();
    for (name, feed) in [("hi", &hi), ("lo", &lo)] {
        let playlist = session.join(name).join("replay.m3u8");
        assert_eq!(
            frame_md5s(&playlist),
            frame_md5s(feed),
            "{name}: the recording is its feed"
        );
        let errors = h264_open_gop_errors(&playlist);
        assert!(errors.is_empty(), "{name}: {errors}");
        let p = media_playlist(&playlist);
        timelines.push(
            p.segments
                .iter()
                .map(|s| (format!("{:.6}", s.duration), s.program_date_time))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(timelines[0], timelines[1], "aligned");
    assert!(timelines[0].len() >= 5, "{:?}", timelines[0]);
    let audio = media_playlist(&session.join("audio_0/replay.m3u8"));
    assert_eq!(audio.segments.len(), timelines[0].len());
}

/// Low-latency parts on foreign feeds: libx264 open GOPs with B-pyramid and
/// libx265 RASL, recorded with 0.4 s parts (parts end mid-GOP, between
/// reordered pictures): the recording is the feed bit for bit, clips and
/// clip manifests are exact, and every segment's parts are whole moof+mdat
/// pairs that add up to it.
#[test]
fn parts_of_open_gop_feeds_keep_recordings_and_clips_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    for (i, feed) in [x264_open_gop(dir.path()), x265_rasl(dir.path())]
        .iter()
        .enumerate()
    {
        let location = dir.path().join(format!("rec{i}"));
        let media_id = record_with(feed, &location, "part-duration=0.4");
        let session = location.join("cam").join(&media_id);
        let segments = media_playlist(&session.join("replay.m3u8")).segments;
        for (k, s) in segments.iter().enumerate() {
            let scan = gstliveclip::mp4::scan::scan_segment(&session.join(&s.uri)).unwrap();
            assert_eq!(scan.valid_len, scan.file_len, "{}", s.uri);
            // A segment of 2 s or more in 0.4 s parts: several moof+mdat
            // pairs (the last segment may be a short tail).
            let short = k + 1 == segments.len() && s.duration < 1.0;
            assert!(
                short || scan.fragments.len() >= 4,
                "{}: {} s in {} pairs",
                s.uri,
                s.duration,
                scan.fragments.len()
            );
        }
        assert_clips_exact(&location, &media_id, feed, &[(3.3, 2.5), (6.12, 1.0)]);
    }
}
