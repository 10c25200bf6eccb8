// SPDX-License-Identifier: MPL-2.0
//! Stills of recorded moments: hlsclipsink's `get-thumbnail` signal and
//! `GET /{id}/thumbnails/thumbnail.{jpg,png,webp}`, over real recordings
//! (x264enc with B-frames, x265enc, ffmpeg's libx264 with open GOPs). Every
//! frame carries its own number, so the picture says which frame a still
//! shows; ffmpeg decoding the replay playlist at the same time is the
//! independent reference.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

fn thumb(sink: &gst::Element, media: Option<&str>, query: &str) -> gst::Structure {
    sink.emit_by_name::<gst::Structure>("get-thumbnail", &[&media, &query])
}

/// The image of a `get-thumbnail` answer, written to `path`.
fn save_image(s: &gst::StructureRef, path: &Path) -> PathBuf {
    assert!(
        !s.has_field("error"),
        "{}",
        s.get::<String>("error").unwrap_or_default()
    );
    let buffer = s.get::<gst::Buffer>("image").unwrap();
    let map = buffer.map_readable().unwrap();
    std::fs::write(path, map.as_slice()).unwrap();
    path.to_path_buf()
}

/// The number of the frame presented at `t` seconds.
fn frame_at(t: f64) -> u32 {
    (t * FPS as f64 + 1e-6).floor() as u32
}

/// The one frame number a still shows.
fn number(image: &Path) -> u32 {
    let n = frame_numbers(image);
    assert_eq!(n.len(), 1, "{}", image.display());
    n[0]
}

/// ffmpeg's picture of `playlist` at `t` seconds: the last frame it
/// presents at or before `t` (every frame decoded, each selected one
/// overwriting the image), at `width`.
fn ffmpeg_still(playlist: &Path, t: f64, width: u32, out: &Path) -> PathBuf {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(playlist)
        .args([
            "-vf",
            &format!("select='lte(t\\,{t:.6})',scale={width}:-2"),
            "-fps_mode",
            "passthrough",
            "-update",
            "1",
        ])
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    out.to_path_buf()
}

fn media_id(location: &Path) -> (String, PathBuf) {
    let session = session_dirs(&location.join("cam"))[0].clone();
    (
        session.file_name().unwrap().to_string_lossy().into_owned(),
        session,
    )
}

/// Stills at times all over the GOPs of an x264enc recording with B-frames
/// (a keyframe every 1.5 s): each shows exactly the frame presented at its
/// time (not its keyframe's), the same frame ffmpeg shows when it seeks the
/// replay playlist there.
#[test]
fn h264_stills_show_the_frame_at_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 10, 45, false);
    ok(&run(&pipeline, Duration::from_secs(120)));
    let (mid, session) = media_id(dir.path());
    let (sink, _bus) = requester(dir.path());
    let mut rng = Lcg(0x7417);
    let mut times: Vec<f64> = (0..10)
        .map(|_| (rng.next() % 9_900) as f64 / 1000.0)
        .collect();
    // Mid-GOP on frame boundaries, a keyframe itself, the last frames before
    // one, the very first and the last recorded frame.
    times.extend([0.0, 1.5, 1.4667, 2.9999, 4.0, 9.95]);
    for (i, t) in times.into_iter().enumerate() {
        let s = thumb(&sink, Some(&mid), &format!("time={t}&format=png"));
        let ours = save_image(&s, &dir.path().join(format!("s{i}.png")));
        assert_eq!(image_info(&ours), ("png".into(), W as u32, H as u32));
        assert_eq!(number(&ours), frame_at(t), "still at {t} s");
        let frame = s.get::<gst::ClockTime>("frame-time").unwrap();
        let expected = u64::from(frame_at(t)) * NS / FPS;
        assert!(
            frame.nseconds().abs_diff(expected) < 1000,
            "frame-time {frame} at {t} s"
        );
        assert_eq!(s.get::<String>("media-id").unwrap(), mid);
        assert_eq!(s.get::<String>("content-type").unwrap(), "image/png");
        let reference = ffmpeg_still(
            &session.join("replay.m3u8"),
            t,
            W as u32,
            &dir.path().join(format!("f{i}.png")),
        );
        assert_eq!(number(&ours), number(&reference), "ffmpeg at {t} s");
    }
    // Every frame of two whole GOPs and around their keyframes (45, 90),
    // from the middle of each frame's interval.
    for n in 40..100u32 {
        let t = (f64::from(n) + 0.5) / FPS as f64;
        let s = thumb(&sink, Some(&mid), &format!("time={t:.6}&format=png"));
        let ours = save_image(&s, &dir.path().join("every.png"));
        assert_eq!(number(&ours), n, "still at {t} s");
    }
    // The default format is JPEG; the stream id means its newest session.
    let s = thumb(&sink, None, "time=3.3s");
    let jpg = save_image(&s, &dir.path().join("d.jpg"));
    assert_eq!(image_info(&jpg).0, "mjpeg");
    assert_eq!(number(&jpg), 99);
    // No time: the last frame recorded.
    let s = thumb(&sink, None, "format=png");
    assert_eq!(number(&save_image(&s, &dir.path().join("last.png"))), 299);
}

/// The same over an x265enc recording (CRA keyframes with leading
/// pictures, B-frames).
#[test]
fn h265_stills_show_the_frame_at_the_time() {
    init();
    if gst::ElementFactory::find("x265enc").is_none() {
        eprintln!("SKIPPED: x265enc is not installed (gstreamer1.0-plugins-bad's x265 plugin)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_video(
        dir.path(),
        "target-duration=2",
        8,
        "x265enc speed-preset=ultrafast key-int-max=40 option-string=bframes=3:open-gop=1 ! h265parse",
    );
    ok(&run(&pipeline, Duration::from_secs(180)));
    let (mid, session) = media_id(dir.path());
    let (sink, _bus) = requester(dir.path());
    // Keyframes every 40 frames (1.333 s); 1.2 to 1.3 s are the leading
    // pictures of the second.
    let times = [0.5, 1.2, 1.25, 1.3, 1.34, 2.6, 2.65, 3.95, 5.1, 7.9];
    for (i, t) in times.into_iter().enumerate() {
        let s = thumb(&sink, Some(&mid), &format!("time={t}&format=png"));
        let ours = save_image(&s, &dir.path().join(format!("s{i}.png")));
        let reference = ffmpeg_still(
            &session.join("replay.m3u8"),
            t,
            W as u32,
            &dir.path().join(format!("f{i}.png")),
        );
        assert_eq!(number(&ours), frame_at(t), "still at {t} s");
        assert_eq!(number(&ours), number(&reference), "ffmpeg at {t} s");
    }
}

/// ffmpeg's libx264 with open GOPs (50 frames, 3 B-frames, B-pyramid):
/// stills at the leading pictures of a keyframe (presented before it,
/// stored after it in the next fragment) show those frames.
#[test]
fn open_gop_leading_pictures() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("open.ts");
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "rawvideo"])
        .args(["-pix_fmt", "yuv420p", "-s", &format!("{W}x{H}")])
        .args(["-r", &FPS.to_string(), "-i", "-"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "50",
        ])
        .args([
            "-x264opts",
            "open-gop=1:b-pyramid=normal",
            "-b_strategy",
            "0",
        ])
        .args(["-f", "mpegts"])
        .arg(&feed)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    {
        use std::io::Write;
        let mut stdin = ffmpeg.stdin.take().unwrap();
        stdin.write_all(&numbered_raw(240)).unwrap();
    }
    assert!(ffmpeg.wait().unwrap().success());
    let pipeline = launch(&format!(
        "filesrc location={} ! tsdemux ! h264parse ! queue ! \
         hlsclipsink location={} stream-id=cam target-duration=2",
        feed.display(),
        dir.path().display()
    ));
    ok(&run(&pipeline, Duration::from_secs(120)));
    let (mid, session) = media_id(dir.path());
    let (sink, _bus) = requester(dir.path());
    // Keyframes at frames 0, 50, 100, 150, 200 (open-GOP I pictures after
    // the first): their leading B-frames are the three frames before each.
    for n in 40..110u32 {
        let t = (f64::from(n) + 0.5) / FPS as f64;
        let s = thumb(&sink, Some(&mid), &format!("time={t:.6}&format=png"));
        let ours = save_image(&s, &dir.path().join("every.png"));
        assert_eq!(number(&ours), n, "still at {t} s");
    }
    let frames = [
        45u32, 47, 48, 49, 50, 51, 97, 98, 99, 100, 148, 149, 199, 201,
    ];
    for n in frames {
        let t = (f64::from(n) + 0.5) / FPS as f64;
        let s = thumb(&sink, Some(&mid), &format!("time={t:.6}&format=png"));
        let ours = save_image(&s, &dir.path().join(format!("s{n}.png")));
        assert_eq!(number(&ours), n, "still at {t} s");
        let reference = ffmpeg_still(
            &session.join("replay.m3u8"),
            t,
            W as u32,
            &dir.path().join(format!("f{n}.png")),
        );
        assert_eq!(number(&reference), n, "ffmpeg at {t} s");
    }
}

/// The route: formats (magic bytes, content types), sizes and fit modes
/// (ffprobe), caching headers, and every error.
#[test]
fn http_route_sizes_formats_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pipeline = numbered_av(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port}"),
        6,
        30,
        false,
    );
    play_to_eos(&pipeline, Duration::from_secs(60));
    let (mid, _) = media_id(dir.path());

    let magic: [(&str, &str, &[u8]); 3] = [
        ("jpg", "image/jpeg", &[0xff, 0xd8, 0xff]),
        ("png", "image/png", b"\x89PNG"),
        ("webp", "image/webp", b"RIFF"),
    ];
    for (ext, ct, head) in magic {
        let r = get(&format!(
            "{base}/{mid}/thumbnails/thumbnail.{ext}?time=2.5s"
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type").as_deref(), Some(ct));
        assert!(r.body.starts_with(head), "{ext} magic");
        assert_eq!(
            r.header("content-length").unwrap(),
            r.body.len().to_string()
        );
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("public, max-age=31536000, immutable"),
            "an ended session's frame never changes"
        );
        assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
        assert_eq!(
            r.header("thumbnail-time-seconds").as_deref(),
            Some("2.500000")
        );
        let file = dir.path().join(format!("t.{ext}"));
        std::fs::write(&file, &r.body).unwrap();
        if ext == "webp" {
            assert_eq!(image_info(&file).0, "webp");
        } else {
            assert_eq!(number(&file), 75, "{ext}");
        }
    }
    // The stream id: the newest session, which a new one may replace.
    let r = get(&format!("{base}/cam/thumbnails/thumbnail.png?time=1s"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    let head = request(
        "HEAD",
        &format!("{base}/cam/thumbnails/thumbnail.png?time=1s"),
        &[],
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // Sizes: 320x240 source.
    for (query, size) in [
        ("width=160", (160, 120)),
        ("height=60", (80, 60)),
        ("width=200&height=200", (200, 150)),
        ("width=200&height=200&fit_mode=preserve", (200, 150)),
        ("width=200&height=200&fit_mode=pad", (200, 200)),
        ("width=200&height=200&fit_mode=crop", (200, 200)),
        ("width=200&height=100&fit_mode=stretch", (200, 100)),
        ("width=640", (640, 480)),
    ] {
        let r = get(&format!(
            "{base}/{mid}/thumbnails/thumbnail.png?time=4.1&{query}"
        ));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let file = dir.path().join("sized.png");
        std::fs::write(&file, &r.body).unwrap();
        let (codec, w, h) = image_info(&file);
        assert_eq!((codec.as_str(), (w, h)), ("png", size), "{query}");
    }
    // Pad keeps the frame whole inside black bars; crop fills the box.
    let r = get(&format!(
        "{base}/{mid}/thumbnails/thumbnail.png?time=4.1&width=200&height=200&fit_mode=pad"
    ));
    let file = dir.path().join("pad.png");
    std::fs::write(&file, &r.body).unwrap();
    let px = gray_pixels(&file, "crop=200:20:0:0");
    assert!(px.iter().all(|&v| v <= 20), "black bar on top");

    // Errors: JSON, with the clip requests' statuses.
    let cases = [
        ("thumbnail.png?time=abc", 400, "bad-request"),
        ("thumbnail.png?time=-1s", 400, "bad-request"),
        ("thumbnail.png?time=1s&width=0", 400, "bad-request"),
        ("thumbnail.png?time=1s&width=5000", 400, "bad-request"),
        ("thumbnail.png?time=1s&height=1.5", 400, "bad-request"),
        ("thumbnail.png?time=1s&fit_mode=cover", 400, "bad-request"),
        ("thumbnail.png?time=1s&format=jpeg", 400, "bad-request"),
        ("thumbnail.png?time=1s&duration=2s", 400, "bad-request"),
        ("thumbnail.png?time=60s", 416, "out-of-range"),
        ("thumbnail.png?time=6.5s", 416, "out-of-range"),
        (
            "thumbnail.png?time=2020-01-01T00:00:00Z",
            416,
            "out-of-range",
        ),
        ("thumbnail.gif?time=1s", 404, "not-found"),
        ("thumbnails.png?time=1s", 404, "not-found"),
    ];
    for (path, status, kind) in cases {
        let r = get(&format!("{base}/{mid}/thumbnails/{path}"));
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.json()["kind"], kind, "{path}");
        assert_eq!(r.json()["status"], status, "{path}");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
    }
    let r = get(&format!(
        "{base}/20200101T000000000Z-abcd/thumbnails/thumbnail.jpg?time=1s"
    ));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["kind"], "not-found");
    let r = get(&format!("{base}/{mid}/thumbnails/thumbnail.jpg?time=1s"));
    assert_eq!(r.status, 200);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The signal's errors have the structure of the other signals' errors.
#[test]
fn signal_errors_have_status_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 3, 30, false);
    ok(&run(&pipeline, Duration::from_secs(60)));
    let (mid, _) = media_id(dir.path());
    let (sink, _bus) = requester(dir.path());
    for (media, query, status, kind) in [
        (
            Some(mid.as_str()),
            "time=1s&width=-3",
            400u32,
            "bad-request",
        ),
        (Some(mid.as_str()), "time=1s&format=gif", 400, "bad-request"),
        (Some(mid.as_str()), "time=30s", 416, "out-of-range"),
        (
            Some("20200101T000000000Z-abcd"),
            "time=1s",
            404,
            "not-found",
        ),
    ] {
        let s = thumb(&sink, media, query);
        assert_eq!(s.name(), "hlsclipsink-thumbnail");
        assert!(s.has_field("error"), "{query}");
        assert_eq!(s.get::<u32>("status").unwrap(), status, "{query}");
        assert_eq!(s.get::<String>("kind").unwrap(), kind, "{query}");
    }
    let s = thumb(&sink, Some(&mid), "time=1s&width=64&format=webp");
    assert_eq!(s.get::<u32>("width").unwrap(), 64);
    assert_eq!(s.get::<u32>("height").unwrap(), 48);
    assert_eq!(s.get::<String>("content-type").unwrap(), "image/webp");
    let file = save_image(&s, &dir.path().join("w.webp"));
    assert_eq!(image_info(&file), ("webp".into(), 64, 48));
}

/// Decoding takes one of the stream's clip permits: with every permit held
/// (by an MP4 clip, say) and no room to wait, a still that must be decoded
/// is refused as busy (429) at once, while one already cached is answered.
#[test]
fn busy_when_every_clip_permit_is_taken() {
    use gstliveclip::hls::index::LiveIndex;
    use gstliveclip::hls::service::{ClipService, Limits};
    use gstliveclip::hls::still::StillRequest;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 3, 30, false);
    ok(&run(&pipeline, Duration::from_secs(60)));
    let (mid, _) = media_id(dir.path());
    let service = ClipService::new(
        dir.path().join("cam"),
        Arc::new(LiveIndex::default()),
        Limits {
            workers: 1,
            queue: 0,
            ..Limits::default()
        },
    );
    let req = |q: &str| StillRequest::parse_query(q, None).unwrap();
    let still = |q: &str| gstliveclip::frames::still::thumbnail(&service, Some(&mid), &req(q));
    let first = still("time=1s").unwrap();
    assert!(!first.cached);
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let service = &service;
        scope.spawn(move || {
            service
                .with_permit(|| {
                    held.send(()).unwrap();
                    release.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        is_held.recv().unwrap();
        let e = still("time=2s").unwrap_err();
        assert_eq!((e.status(), e.kind()), (429, "busy"), "{e}");
        // Any time on the cached frame needs no permit.
        let again = still("time=1.01s").unwrap();
        assert!(again.cached);
        assert_eq!(again.image, first.image);
        hold.send(()).unwrap();
    });
    assert!(!still("time=2s").unwrap().cached);
}

/// While the session is recorded: the stream's newest frame, a time a
/// little past the live edge (the request waits for it), a time too far
/// ahead (425), and no long-lived caching of a live session's answers.
#[test]
fn live_session_stills() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, base) = live_numbered_with_http(dir.path());
    let (mid, _) = media_id(dir.path());

    // No time: the last frame recorded, which the header names.
    let r = get(&format!("{base}/cam/thumbnails/thumbnail.png"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
    let shown: f64 = r.header("thumbnail-time-seconds").unwrap().parse().unwrap();
    let file = dir.path().join("edge.png");
    std::fs::write(&file, &r.body).unwrap();
    assert_eq!(number(&file), frame_at(shown), "{shown} s");

    // 1.5 s past the edge: answered once recorded (a media id of a live
    // session is not immutable yet).
    let ahead = shown + 1.5;
    let t = std::time::Instant::now();
    let r = get(&format!(
        "{base}/{mid}/thumbnails/thumbnail.png?time={ahead:.3}"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(t.elapsed() > Duration::from_millis(300), "it waited");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    std::fs::write(&file, &r.body).unwrap();
    assert_eq!(number(&file), frame_at(ahead), "{ahead} s");

    // Far ahead: not yet.
    let r = get(&format!("{base}/cam/thumbnails/thumbnail.png?time=600s"));
    assert_eq!(r.status, 425, "{}", r.text());
    assert_eq!(r.json()["kind"], "not-yet");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// `animated.gif` and `animated.mp4`: the range's frames at the asked rate
/// and size, muted; limits and errors as JSON.
#[test]
fn animations_of_a_range_have_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pipeline = numbered_av(
        dir.path(),
        &format!("target-duration=2 max-animated-duration=5 http-address=127.0.0.1:{port}"),
        8,
        30,
        false,
    );
    play_to_eos(&pipeline, Duration::from_secs(60));
    let (mid, _) = media_id(dir.path());

    // A GIF of 2.1-4.1 s at 10 fps, 160 wide: 20 frames, every third
    // frame of the source from frame 63 (mid-GOP: decoded from 60).
    let r = get(&format!(
        "{base}/{mid}/animated.gif?start=2.1s&end=4.1s&width=160&fps=10"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("image/gif"));
    assert!(r.body.starts_with(b"GIF89a"));
    let gif = dir.path().join("a.gif");
    std::fs::write(&gif, &r.body).unwrap();
    let st = streams(&gif);
    let v = stream(&st, "video").unwrap();
    assert_eq!((v.width, v.height), (160, 120));
    let numbers = frame_numbers(&gif);
    assert_eq!(numbers, (0..20).map(|k| 63 + 3 * k).collect::<Vec<u32>>());

    // An MP4 of 3 s from 5 s at 15 fps, 320 wide, without sound.
    let r = get(&format!(
        "{base}/{mid}/animated.mp4?start=5s&duration=3s&fps=15&width=320"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
    assert_eq!(r.header("animation-frames").as_deref(), Some("45"));
    let mp4 = dir.path().join("a.mp4");
    std::fs::write(&mp4, &r.body).unwrap();
    let errors = decode_errors(&mp4);
    assert!(errors.is_empty(), "{errors}");
    let st = streams(&mp4);
    assert!(stream(&st, "audio").is_none(), "muted");
    let v = stream(&st, "video").unwrap();
    assert_eq!((v.width, v.height, v.frames), (320, 240, 45));
    assert_eq!(
        frame_numbers(&mp4),
        (0..45).map(|k| 150 + 2 * k).collect::<Vec<u32>>()
    );

    // Limits and errors.
    for (query, status) in [
        ("animated.gif?start=0s&duration=6s", 400),
        ("animated.gif?start=1s&duration=1s&fps=60", 400),
        ("animated.gif?start=1s&duration=1s&colour=red", 400),
        ("animated.mp4?start=7s&duration=3s", 416),
        ("animated.webp?start=1s&duration=1s", 404),
    ] {
        let r = get(&format!("{base}/{mid}/{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert_eq!(r.json()["status"], status, "{query}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
}
