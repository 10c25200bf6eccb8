// SPDX-License-Identifier: MPL-2.0
//! The HTTP API, driven through a real HTTP client (hyper) against real
//! pipelines; what it serves is checked with ffmpeg/ffprobe reading the
//! URLs themselves, m3u8-rs and the numbered frames.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

/// Plays `pipeline` until EOS (it stays PLAYING, so its server stays up).
fn play_until_eos(pipeline: &gst::Pipeline, timeout: Duration) -> Vec<gst::Structure> {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return messages,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            _ => {}
        }
        if let Some(s) = msg.structure() {
            messages.push(s.to_owned());
        }
    }
    panic!("no EOS within {timeout:?}");
}

/// The error a pipeline that can't start posts.
fn start_error(pipeline: &gst::Pipeline) -> String {
    assert!(
        pipeline.set_state(gst::State::Playing).is_err(),
        "it started"
    );
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let _ = pipeline.set_state(gst::State::Null);
    match msg.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        _ => unreachable!(),
    }
}

fn save(resp: &Resp, path: &Path) -> PathBuf {
    std::fs::write(path, &resp.body).unwrap();
    path.to_path_buf()
}

fn url_path(url: &str) -> &Path {
    Path::new(url)
}

fn first_in(t: f64) -> u32 {
    (t * FPS as f64 - 1e-9).ceil() as u32
}

/// Every hlsclipsink route over a recorded stream, with the exact frames
/// each answer presents, and every error code.
#[test]
fn hls_routes_answer_with_the_right_media() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pipeline = numbered_av(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port} max-clip-duration=10"),
        12,
        30,
        false,
    );
    play_until_eos(&pipeline, Duration::from_secs(60));
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let mid = session.file_name().unwrap().to_string_lossy().into_owned();

    let index = get(&format!("{base}/"));
    assert_eq!(index.status, 200);
    assert_eq!(index.json()["streams"][0], "cam");

    // The stream's playlist (ended: the replay), served with its media.
    let r = get(&format!("{base}/cam/manifest/video.m3u8"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let pl = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    assert!(pl.end_list);
    assert!(pl.segments[0].uri.starts_with(&format!("../../{mid}/")));
    let all = frame_numbers(url_path(&format!("{base}/cam/manifest/video.m3u8")));
    assert_eq!(all, (0..360).collect::<Vec<u32>>(), "every frame over HTTP");

    // Preview: the last 4 s, with the headers a player reads.
    let r = get(&format!("{base}/cam/manifest/video.m3u8?duration=4s"));
    assert_eq!(r.status, 200, "{}", r.text());
    let start: f64 = r.header("preview-start-seconds").unwrap().parse().unwrap();
    assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
    let exposed = r.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("preview-start-seconds") && exposed.contains("stream-media-id"));
    let pl = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    let covered: f32 = pl.segments.iter().map(|s| s.duration).sum();
    assert!((start + f64::from(covered) - 12.0).abs() < 0.05);
    assert!(covered >= 4.0 - 1e-3);

    // Cloudflare-style: a position in the preview becomes a clip start.
    let clip_start = start + 1.5;
    let r = get(&format!(
        "{base}/{mid}/clip.mp4?time={clip_start:.3}&duration=2s&filename=my%20goal!.mp4"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"my_goal_.mp4\"")
    );
    let file = save(&r, &dir.path().join("cf.mp4"));
    assert!(decode_errors(&file).is_empty());
    let frames = frame_numbers(&file);
    let (a, b) = (first_in(clip_start), first_in(clip_start + 2.0));
    assert_eq!(frames, (a..b).collect::<Vec<u32>>());

    // Keyframe accuracy: from the keyframe (one per second).
    let r = get(&format!(
        "{base}/{mid}/clip.mp4?time=3.3&duration=1s&accuracy=keyframe"
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("clip-preroll-seconds").as_deref(),
        Some("0.000000")
    );
    let frames = frame_numbers(&save(&r, &dir.path().join("key.mp4")));
    assert_eq!(frames, (90..first_in(4.3)).collect::<Vec<u32>>());

    // Clip manifests, read by ffmpeg through the server (byte ranges).
    for url in [
        format!("{base}/{mid}/manifest/clip.m3u8?time=3.3&duration=2s"),
        format!("{base}/{mid}.m3u8?start=3.3s&end=5.3s"),
        format!("{base}/cam.m3u8?start=3.3s&end=5.3s"),
    ] {
        let r = get(&url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let pl = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
        assert!(pl.segments.iter().all(|s| s.byte_range.is_some()));
        assert!(pl.start.is_some());
        let frames = frame_numbers(url_path(&url));
        assert_eq!(frames.first(), Some(&90), "{url}: from the keyframe at 3 s");
        let wanted: Vec<u32> = (first_in(3.3)..first_in(5.3)).collect();
        assert!(
            frames.windows(wanted.len()).any(|w| w == wanted.as_slice()),
            "{url}: {frames:?}"
        );
        assert!(decode_errors(url_path(&url)).is_empty());
    }

    // Sessions.
    let r = get(&format!("{base}/cam/sessions"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sessions"][0]["media_id"], mid.as_str());
    assert_eq!(r.json()["sessions"][0]["state"], "ended");

    // Media files with Range.
    let init_len = std::fs::metadata(session.join("init.mp4")).unwrap().len();
    let r = request(
        "GET",
        &format!("{base}/{mid}/init.mp4"),
        &[("range", "bytes=0-7")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 8);
    assert_eq!(&r.body[4..8], b"ftyp");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-7/{init_len}"))
    );
    let r = request(
        "GET",
        &format!("{base}/{mid}/init.mp4"),
        &[("range", &format!("bytes={init_len}-"))],
    );
    assert_eq!(r.status, 416);
    let r = request("HEAD", &format!("{base}/{mid}/segment-00000.m4s"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("video/iso.segment")
    );
    assert_eq!(
        r.header("content-length").unwrap().parse::<u64>().unwrap(),
        std::fs::metadata(session.join("segment-00000.m4s"))
            .unwrap()
            .len()
    );

    // A session retention deleted leaves a tombstone: 410.
    let sessions_path = dir.path().join("cam/sessions.json");
    let mut sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sessions_path).unwrap()).unwrap();
    sessions["sessions"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "media_id": "20200101T000000000Z-dead", "start_utc": null, "end_utc": null,
            "duration": 0.0, "state": "deleted", "segments": 0, "bytes": 0
        }));
    std::fs::write(&sessions_path, sessions.to_string()).unwrap();

    // Errors: JSON with a status and a reason.
    let long = format!("{base}/{mid}/clip.mp4?time={}", "1".repeat(5000));
    for (method, url, status) in [
        (
            "GET",
            format!("{base}/{mid}/clip.mp4?time=abc&duration=2s"),
            400,
        ),
        ("GET", format!("{base}/{mid}/clip.mp4?time=1s"), 400),
        (
            "GET",
            format!("{base}/{mid}/clip.mp4?time=1s&duration=11s"),
            400,
        ),
        (
            "GET",
            format!("{base}/{mid}/clip.mp4?time=1s&duration=1s&location=/etc/x"),
            400,
        ),
        (
            "GET",
            format!("{base}/{mid}/manifest/video.m3u8?duration=forever"),
            400,
        ),
        (
            "GET",
            format!("{base}/nope/clip.mp4?time=1s&duration=1s"),
            404,
        ),
        ("GET", format!("{base}/{mid}/sessions.json"), 404),
        ("GET", format!("{base}/{mid}/..%2Fsessions.json"), 404),
        ("GET", format!("{base}/..%2F..%2Fetc/passwd"), 404),
        ("GET", format!("{base}/cam/../../etc/passwd"), 404),
        ("GET", format!("{base}/{mid}/nothing-here"), 404),
        ("GET", format!("{base}/{mid}/segment-99999.m4s"), 404),
        (
            "GET",
            format!("{base}/20200101T000000000Z-dead/clip.mp4?time=1s&duration=1s"),
            410,
        ),
        (
            "GET",
            format!("{base}/{mid}/clip.mp4?time=11s&duration=2s"),
            416,
        ),
        (
            "GET",
            format!("{base}/{mid}/clip.mp4?time=20s&duration=2s"),
            416,
        ),
        ("POST", format!("{base}/cam/sessions"), 405),
        ("GET", long, 414),
    ] {
        let r = request(method, &url, &[]);
        assert_eq!(r.status, status, "{method} {url}: {}", r.text());
        let body = r.json();
        assert_eq!(body["status"], status);
        assert!(body["error"].as_str().unwrap().len() > 10, "{body}");
    }
    // Slow clients (headers never finished) don't stop others being served.
    let slow: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            use std::io::Write;
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"GET /cam/sessions HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();
    let r = get(&format!("{base}/cam/sessions"));
    assert_eq!(r.status, 200);
    drop(slow);
    let r = request("OPTIONS", &format!("{base}/cam/manifest/video.m3u8"), &[]);
    assert_eq!(r.status, 204);
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    pipeline.set_state(gst::State::Null).unwrap();
    // The listener closes with the last element.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// While a live pipeline records: the live playlist, "not yet", Ant
/// Media-style periodicclipper routes with a token and a webhook, and 200
/// concurrent clip requests that leave the recording without a missing
/// frame.
#[test]
fn live_api_clipper_webhook_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hook = hook_server(200);
    let pipeline = numbered_av_with(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port}"),
        &format!(
            "periodicclipper name=clipper interval=0 location={}/pc-%05d.mp4 \
               http-address=127.0.0.1:{port} http-token=s3cret webhook-url={} \
             tv. ! queue ! clipper.video ta. ! queue ! clipper.audio",
            dir.path().display(),
            hook.url
        ),
        24,
        30,
        true,
    );
    let bus = pipeline.bus().unwrap();
    play_until_segments(&pipeline, 3);

    // The live playlist slides; a range far ahead is not recorded yet.
    let r = get(&format!("{base}/cam/manifest/video.m3u8"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!m3u8_rs::parse_media_playlist_res(&r.body).unwrap().end_list);
    let r = get(&format!("{base}/cam/clip.mp4?time=300s&duration=2s"));
    assert_eq!(r.status, 425, "{}", r.text());

    // periodicclipper: the token is needed.
    let r = request("POST", &format!("{base}/clipper/mp4"), &[]);
    assert_eq!(r.status, 401);
    let r = request(
        "POST",
        &format!("{base}/clipper/mp4?returnFile=false"),
        &[("authorization", "Bearer s3cret")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["success"], true);
    let location = PathBuf::from(body["location"].as_str().unwrap());
    assert!(location.exists());
    assert!(decode_errors(&location).is_empty());
    let r = request(
        "POST",
        &format!("{base}/clipper/mp4?returnFile=true&token=s3cret"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
    let file = save(&r, &dir.path().join("returned.mp4"));
    assert!(decode_errors(&file).is_empty());
    let frames = frame_numbers(&file);
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");

    // Periodic clips every 2 s, each announced to the webhook.
    let r = request(
        "POST",
        &format!("{base}/clipper/periodic-recording/2?token=s3cret"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(wait_for(Duration::from_secs(15), || {
        hook.received
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["trigger"] == "periodic")
            .count()
            >= 2
    }));
    let r = request(
        "DELETE",
        &format!("{base}/clipper/periodic-recording?token=s3cret"),
        &[],
    );
    assert_eq!(r.status, 200);
    for n in hook.received.lock().unwrap().iter() {
        assert_eq!(n["event"], "clip-ready");
        assert_eq!(n["element"], "clipper");
        assert!(Path::new(n["location"].as_str().unwrap()).exists(), "{n}");
    }
    let r = request(
        "POST",
        &format!("{base}/clipper/periodic-recording/0?token=s3cret"),
        &[],
    );
    assert_eq!(r.status, 400);

    // Clips that wait for the live edge hold their workers: past the two
    // workers and the queue (16 per worker), requests are refused (429).
    let recorded = get(&format!("{base}/cam/sessions")).json()["sessions"][0]["duration"]
        .as_f64()
        .unwrap();
    let waiting: Vec<u16> = RUNTIME.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let url = format!("{base}/cam/clip.mp4?time={:.3}&duration=2s", recorded + 1.0);
            set.spawn(async move { send("GET", &url, &[]).await.status });
        }
        set.join_all().await
    });
    let refused = waiting.iter().filter(|&&s| s == 429).count();
    assert!(refused >= 40 - 34, "{waiting:?}");
    assert!(
        waiting.iter().all(|&s| s == 200 || s == 429),
        "the waiting ones got their clip: {waiting:?}"
    );

    // 200 clip requests at once while recording.
    let statuses: Vec<(u16, usize, Option<String>)> = RUNTIME.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let url = format!("{base}/cam/clip.mp4?duration=2s");
            set.spawn(async move {
                let r = send("GET", &url, &[]).await;
                (r.status, r.body.len(), r.header("content-length"))
            });
        }
        set.join_all().await
    });
    let ok = statuses.iter().filter(|s| s.0 == 200).count();
    let busy = statuses.iter().filter(|s| s.0 == 429).count();
    assert_eq!(ok + busy, 200, "{statuses:?}");
    assert!(ok >= 2, "{ok} answered");
    for (status, len, cl) in &statuses {
        if *status == 200 {
            assert_eq!(
                cl.as_deref().map(|c| c.parse::<usize>().unwrap()),
                Some(*len)
            );
        }
    }

    // The recording lost nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_mseconds(100))
            .filter(|_| std::time::Instant::now() < deadline);
        if let Some(msg) = &msg
            && let gst::MessageView::Eos(_) = msg.view()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no EOS");
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let frames = frame_numbers(&session.join("replay.m3u8"));
    assert_eq!(
        frames,
        (0..720).collect::<Vec<u32>>(),
        "every frame recorded"
    );
    eprintln!("200 concurrent clip requests: {ok} answered, {busy} busy");
}

/// A webhook that is down costs warnings, never the pipeline.
#[test]
fn a_dead_webhook_never_stops_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let pipeline = numbered_av_with(
        dir.path(),
        "target-duration=2",
        &format!(
            "periodicclipper name=clipper interval=1 location={}/pc-%05d.mp4 webhook-url={dead} \
             tv. ! queue ! clipper.video ta. ! queue ! clipper.audio",
            dir.path().display()
        ),
        4,
        30,
        false,
    );
    let first = run(&pipeline, Duration::from_secs(60));
    ok(&first);
    assert_eq!(first.named("periodicclipper-clip-ready").len(), 4);
    // An https hook is refused with a reason at start.
    let bad = numbered_av_with(
        dir.path(),
        "target-duration=2",
        &format!(
            "periodicclipper name=clipper location={}/x-%05d.mp4 webhook-url=https://example.com/h \
             tv. ! queue ! clipper.video ta. ! queue ! clipper.audio",
            dir.path().display()
        ),
        1,
        30,
        false,
    );
    let error = start_error(&bad);
    assert!(error.contains("http://"), "{error}");
}

/// Two elements on one address share the listener; an address in use is
/// an error naming it.
#[test]
fn elements_share_a_listener_and_report_a_busy_address() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let a = numbered_av_with(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port}"),
        &format!(
            "periodicclipper name=clipper interval=0 location={}/pc-%05d.mp4 http-address=127.0.0.1:{port} \
             tv. ! queue ! clipper.video ta. ! queue ! clipper.audio",
            dir.path().display()
        ),
        2,
        30,
        false,
    );
    play_until_eos(&a, Duration::from_secs(30));
    let index = get(&format!("http://127.0.0.1:{port}/")).json();
    assert_eq!(index["streams"][0], "cam");
    assert_eq!(index["clippers"][0], "clipper");
    a.set_state(gst::State::Null).unwrap();

    let blocker = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken = blocker.local_addr().unwrap().port();
    let b = numbered_av(
        dir.path(),
        &format!("http-address=127.0.0.1:{taken}"),
        1,
        30,
        false,
    );
    let error = start_error(&b);
    assert!(error.contains(&format!("127.0.0.1:{taken}")), "{error}");
    drop(blocker);
}

/// A range across a codec change (a new resolution mid-stream) is 422 as
/// an MP4, while its clip manifest crosses it with a discontinuity.
#[test]
fn a_clip_across_a_codec_change_is_422() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam target-duration=1 http-address=127.0.0.1:{port} \
         videotestsrc name=src num-buffers=180 ! video/x-raw,framerate=30/1,pixel-aspect-ratio=1/1 ! videoscale ! \
           capsfilter name=size caps=video/x-raw,width=320,height=240,pixel-aspect-ratio=1/1 ! \
           x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! h.video",
        loc = dir.path().display()
    ));
    // Frame 90 (3 s): the resolution changes.
    switch_resolution_at(&pipeline, 90, 640, 360);
    play_until_eos(&pipeline, Duration::from_secs(60));
    let r = get(&format!("{base}/cam/clip.mp4?time=2s&duration=2s"));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["kind"], "codec-change");
    for (time, width) in [("1s", 320), ("4s", 640)] {
        let r = get(&format!("{base}/cam/clip.mp4?time={time}&duration=1s"));
        assert_eq!(r.status, 200, "{time}: {}", r.text());
        let file = save(&r, &dir.path().join(format!("{width}.mp4")));
        assert_eq!(stream(&streams(&file), "video").unwrap().width, width);
    }
    let r = get(&format!(
        "{base}/cam/manifest/clip.m3u8?time=2s&duration=2s"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("#EXT-X-DISCONTINUITY"), "{}", r.text());
    pipeline.set_state(gst::State::Null).unwrap();
}
