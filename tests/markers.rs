// SPDX-License-Identifier: MPL-2.0
//! Markers: added by the `mark` signal, `POST /{stream-id}/markers` and a
//! `liveclip-marker` event in the stream; written as EXT-X-DATERANGE into
//! the playlists (read back with m3u8-rs); clipped by id (the numbered
//! frames of the clip, read by ffmpeg); kept across SIGKILL.

mod common;

use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

/// The EXT-X-DATERANGE tags of a media playlist (which must parse with
/// m3u8-rs): (id, index of the segment they precede, the tag). m3u8-rs keeps
/// one tag per segment, so each line is read on its own by m3u8-rs.
fn dateranges(text: &[u8]) -> Vec<(String, usize, m3u8_rs::DateRange)> {
    m3u8_rs::parse_media_playlist_res(text)
        .unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(text)));
    let mut out = Vec::new();
    let mut segment = 0;
    for line in String::from_utf8_lossy(text).lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-DATERANGE:") {
            let one = format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\
                 #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n\
                 #EXT-X-DATERANGE:{attrs}\n#EXTINF:1,\na\n"
            );
            let pl = m3u8_rs::parse_media_playlist_res(one.as_bytes()).unwrap();
            let d = pl.segments[0].daterange.clone().expect("a DATERANGE");
            out.push((d.id.clone(), segment, d));
        } else if !line.starts_with('#') && !line.is_empty() {
            segment += 1;
        }
    }
    out
}

fn ids(text: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = dateranges(text).into_iter().map(|(id, ..)| id).collect();
    v.sort();
    v
}

fn secs(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// Every way in, the playlists, the listing, clips by marker and the
/// errors, on a live recording of numbered frames.
#[test]
fn markers_become_dateranges_and_clips() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipeline = numbered_av(
        dir.path(),
        &format!("target-duration=1 http-address=127.0.0.1:{port}"),
        12,
        30,
        true,
    );
    let base = format!("http://127.0.0.1:{port}");
    play_until_segments(&pipeline, 3);
    let sink = pipeline.by_name("h").unwrap();

    // The signal: a 2 s marker at 1 s, with attributes.
    let attrs = gst::Structure::builder("attributes")
        .field("time", "1s")
        .field("score", "1-0")
        .field("x-minute", 23i32)
        .build();
    let s = sink
        .emit_by_name::<gst::Structure>("mark", &[&"goal-1", &"com.example.goal", &2.0f64, &attrs]);
    assert!(!s.has_field("error"), "{s}");
    assert_eq!(s.get::<&str>("id").unwrap(), "goal-1");
    assert_eq!(s.get::<&str>("source").unwrap(), "signal");
    assert_eq!(ns(&s, "start"), NS);
    assert_eq!(
        s.get::<Option<gst::ClockTime>>("duration").unwrap(),
        Some(gst::ClockTime::from_seconds(2))
    );
    assert!(!s.get::<&str>("utc").unwrap().is_empty(), "{s}");
    let mid = s.get::<String>("media-id").unwrap();

    // HTTP: a point 500 ms before the live edge.
    let r = post_json(
        &format!("{base}/cam/markers"),
        r#"{"id":"api-1","class":"com.example.note","ago":"500ms","attributes":{"X-N":5}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let api = r.json();
    assert_eq!(api["media_id"], mid.as_str());
    assert_eq!(api["marker"]["source"], "api");
    assert!(api["marker"]["end"].is_null());
    let api_start = secs(&api["marker"]["start"]);
    assert!(api_start > 1.5, "{api}");

    // A marker without an id gets one.
    let r = post_json(&format!("{base}/cam/markers"), "");
    assert_eq!(r.status, 201, "{}", r.text());
    let generated = r.json()["marker"]["id"].as_str().unwrap().to_string();
    assert!(generated.starts_with("marker-"), "{generated}");

    // In the stream: an event at the appsrc travels with the frames.
    let src = pipeline.by_name("src").unwrap();
    let event = gst::event::CustomDownstream::new(
        gst::Structure::builder("liveclip-marker")
            .field("id", "ev-1")
            .field("class", "com.example.event")
            .field("duration", 1.0f64)
            .build(),
    );
    assert!(src.send_event(event));

    // Bad input: JSON errors with the right codes, nothing added.
    for (body, status) in [
        (r#"{"id":"goal-1"}"#, 409),
        (r#"{"id":"x","time":"1000s"}"#, 416),
        (r#"{"id":"x","duration":-2}"#, 400),
        (r#"{"id":"a b"}"#, 400),
        ("{not json", 400),
        (r#"{"start":"1s"}"#, 400),
    ] {
        let r = post_json(&format!("{base}/cam/markers"), body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let e = r.json();
        assert_eq!(e["status"], status, "{e}");
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    let r = post_json(&format!("{base}/{mid}/markers"), r#"{"id":"y"}"#);
    assert_eq!(r.status, 405, "{}", r.text());
    let dup = sink.emit_by_name::<gst::Structure>(
        "mark",
        &[&"goal-1", &None::<String>, &0.0f64, &None::<gst::Structure>],
    );
    assert_eq!(dup.get::<u32>("status").unwrap(), 409, "{dup}");

    // The listing, and the live playlist as served.
    let all = ["api-1", "ev-1", "goal-1", generated.as_str()];
    let mut expected: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert!(
        wait_for(Duration::from_secs(10), || {
            get(&format!("{base}/cam/markers")).json()["markers"]
                .as_array()
                .is_some_and(|m| m.len() == 4)
        }),
        "{}",
        get(&format!("{base}/cam/markers")).text()
    );
    let listed = get(&format!("{base}/cam/markers")).json();
    assert_eq!(listed["live"], true);
    let by_id = |id: &str| {
        listed["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {listed}"))
            .clone()
    };
    assert_eq!(by_id("ev-1")["source"], "event");
    assert_eq!(secs(&by_id("ev-1")["duration"]), 1.0);
    assert_eq!(by_id("goal-1")["attributes"]["X-SCORE"], "1-0");
    assert_eq!(by_id("goal-1")["attributes"]["X-MINUTE"], "23");
    let starts: Vec<f64> = listed["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| secs(&m["start"]))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "by start: {starts:?}"
    );
    let replay = get(&format!("{base}/{mid}/manifest/video.m3u8"));
    assert_eq!(replay.status, 200);
    assert_eq!(ids(&replay.body), expected, "{}", replay.text());

    // A clip of the marker: the frames of 1 s to 3 s.
    let clip = |query: &str, name: &str| {
        let r = get(&format!("{base}/{mid}/clip.mp4?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let path = dir.path().join(name);
        std::fs::write(&path, &r.body).unwrap();
        assert_eq!(decode_errors(&path), "", "{query}");
        frame_numbers(&path)
    };
    // The signal's marker was placed on the recording's axis, where frame
    // n is at n / 30 s (within a frame of the live source's timestamps).
    let frames = clip("marker=goal-1", "goal.mp4");
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
    assert!(frames[0].abs_diff(30) <= 1, "{frames:?}");
    assert!(
        (frames.len() as i64 - 60).abs() <= 1,
        "{} frames",
        frames.len()
    );
    let padded = clip("marker=goal-1&before=500ms&after=500ms", "padded.mp4");
    assert!(
        (padded.len() as i64 - 90).abs() <= 1,
        "{} frames",
        padded.len()
    );
    assert!(padded[0].abs_diff(15) <= 1, "{padded:?}");

    // The clip manifest of a marker carries its tag.
    let r = get(&format!("{base}/{mid}/manifest/clip.m3u8?marker=goal-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(ids(&r.body).contains(&"goal-1".to_string()), "{}", r.text());

    // An unknown marker, a marker with a range: errors.
    let r = get(&format!("{base}/{mid}/clip.mp4?marker=nope"));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(&format!("{base}/{mid}/clip.mp4?marker=goal-1&duration=2s"));
    assert_eq!(r.status, 400, "{}", r.text());

    // After the end: the replay on disk has the tags, dated on its PDT
    // axis, and markers.json lists them.
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    let session = dir.path().join("cam").join(&mid);
    let text = std::fs::read(session.join("replay.m3u8")).unwrap();
    assert_eq!(ids(&text), expected);
    let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
    let pdt0 = pl.segments[0].program_date_time.unwrap();
    for (id, _, d) in dateranges(&text) {
        let m = by_id(&id);
        let offset = (d.start_date - pdt0).num_milliseconds() as f64 / 1e3;
        // Segment 0 starts at recording time 0.
        assert!(
            (offset - secs(&m["start"])).abs() < 0.002,
            "{id}: START-DATE {offset} s after the first PDT, start {}",
            m["start"]
        );
    }
    let goal = dateranges(&text)
        .into_iter()
        .find(|(id, ..)| id == "goal-1")
        .unwrap()
        .2;
    assert_eq!(goal.class.as_deref(), Some("com.example.goal"));
    assert_eq!(goal.duration, Some(2.0));
    assert_eq!(
        goal.x_prefixed.as_ref().unwrap()["X-SCORE"].to_string(),
        "\"1-0\""
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(session.join("markers.json")).unwrap()).unwrap();
    assert_eq!(stored["markers"].as_array().unwrap().len(), 4);

    // A stored session answers the same, without its pipeline.
    let lookup = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().to_str().unwrap())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let s = lookup.emit_by_name::<gst::Structure>("get-markers", &[&mid]);
    assert_eq!(s.get::<u32>("count").unwrap(), 4, "{s}");
    assert!(!s.get::<bool>("live").unwrap());
}

/// A marker written just before a SIGKILL is in the session after the
/// restart: in markers.json, its listing and the closed replay playlist.
#[test]
fn markers_survive_sigkill() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path();
    let port = free_port();
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let spawn = |http: bool| {
        let http = if http {
            format!("http-address=127.0.0.1:{port}")
        } else {
            String::new()
        };
        Child(
            std::process::Command::new("gst-launch-1.0")
                .env("GST_PLUGIN_PATH", plugin_dir())
                .args(["-q", "-e"])
                .args(
                    format!(
                        "hlsclipsink name=h location={} stream-id=cam target-duration=1 \
                         reconnect-window=0 {http} \
                         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
                         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse ! \
                         queue ! h.video",
                        loc.display()
                    )
                    .split_whitespace(),
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("gst-launch-1.0"),
        )
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(true);
    assert!(
        wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && get(&format!("{base}/cam/sessions")).json()["sessions"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
        }),
        "recording did not start"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let r = post_json(
        &format!("{base}/cam/markers"),
        r#"{"id":"before-crash","class":"com.example.goal","ago":"1s","duration":"500ms"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let mid = r.json()["media_id"].as_str().unwrap().to_string();
    let start = secs(&r.json()["marker"]["start"]);
    // SIGKILL, as a crash.
    child.0.kill().unwrap();
    let _ = child.0.wait();
    let session = loc.join("cam").join(&mid);
    let left: serde_json::Value =
        serde_json::from_slice(&std::fs::read(session.join("markers.json")).unwrap()).unwrap();
    assert_eq!(left["markers"][0]["id"], "before-crash");

    // The next run closes the crashed session (reconnect-window=0) with
    // its markers in the final playlist.
    child = spawn(false);
    assert!(
        wait_for(Duration::from_secs(60), || {
            std::fs::read(session.join("replay.m3u8"))
                .is_ok_and(|t| m3u8_rs::parse_media_playlist_res(&t).is_ok_and(|p| p.end_list))
        }),
        "the crashed session was not closed"
    );
    drop(child);
    let text = std::fs::read(session.join("replay.m3u8")).unwrap();
    let tags = dateranges(&text);
    assert_eq!(tags.len(), 1, "{}", String::from_utf8_lossy(&text));
    assert_eq!(tags[0].2.duration, Some(0.5));
    let lookup = gst::ElementFactory::make("hlsclipsink")
        .property("location", loc.to_str().unwrap())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let s = lookup.emit_by_name::<gst::Structure>("get-markers", &[&mid]);
    let json: serde_json::Value = serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap();
    assert_eq!(json["markers"][0]["id"], "before-crash");
    assert!((secs(&json["markers"][0]["start"]) - start).abs() < 1e-6);
}

/// A marker event in the stream: hlsclipsink (`marker-clips`) clips it
/// once its range is recorded and tells the webhook; periodicclipper
/// (`clip-at-markers`) writes the media since its last clip.
#[test]
fn marker_events_trigger_clips() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let hook = hook_server(200);
    let loc = dir.path();
    let pipeline = numbered_av_with(
        loc,
        &format!(
            "target-duration=1 marker-clips=com.example.goal,other webhook-url={} \
             clip-location={}/auto-%05d.mp4",
            hook.url,
            loc.display()
        ),
        &format!(
            "periodicclipper name=p interval=0 clip-at-markers=true location={}/p-%05d.mp4 \
             tv. ! queue ! p.video ta. ! queue ! p.audio",
            loc.display()
        ),
        12,
        30,
        true,
    );
    play_until_segments(&pipeline, 3);
    let src = pipeline.by_name("src").unwrap();
    // Not a class to clip: a marker only.
    for (id, class) in [("note", "com.example.note"), ("goal", "com.example.goal")] {
        let event = gst::event::CustomDownstream::new(
            gst::Structure::builder("liveclip-marker")
                .field("id", id)
                .field("class", class)
                .field("duration", 1.0f64)
                .build(),
        );
        assert!(src.send_event(event));
    }
    let bus = pipeline.bus().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut done, mut periodic) = (None, None);
    while (done.is_none() || periodic.is_none()) && std::time::Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{e:?}");
        }
        let Some(s) = msg.structure() else { continue };
        match s.name().as_str() {
            "hlsclipsink-clip-done" => done = Some(s.to_owned()),
            "periodicclipper-clip-ready" => periodic = Some(s.to_owned()),
            _ => {}
        }
    }
    // Before the end of the stream, because of the marker.
    let done = done.expect("an automatic marker clip");
    assert!(!done.has_field("error"), "{done}");
    assert_eq!(done.get::<&str>("marker").unwrap(), "goal");
    let file = std::path::PathBuf::from(done.get::<String>("location").unwrap());
    assert_eq!(decode_errors(&file), "");
    let frames = frame_numbers(&file);
    assert!((frames.len() as i64 - 30).abs() <= 1, "{frames:?}");
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
    assert!(
        wait_for(Duration::from_secs(10), || !hook
            .received
            .lock()
            .unwrap()
            .is_empty()),
        "the webhook heard of it"
    );
    let notice = hook.received.lock().unwrap()[0].clone();
    assert_eq!(notice["event"], "marker-clip");
    assert_eq!(notice["marker"], "goal");
    assert_eq!(notice["success"], true);
    assert!(
        (notice["duration"].as_f64().unwrap() - 1.0).abs() < 0.05,
        "{notice}"
    );
    let periodic = periodic.expect("periodicclipper clipped at the marker");
    let clip = std::path::PathBuf::from(periodic.get::<String>("location").unwrap());
    assert_eq!(decode_errors(&clip), "");
    let frames = frame_numbers(&clip);
    assert_eq!(frames.first(), Some(&0), "{frames:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    // Only the goal was clipped.
    assert_eq!(
        files(loc, "mp4")
            .iter()
            .filter(|p| p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("auto-"))
            .count(),
        1
    );
}

/// SCTE-35 cues of an MPEG-TS (made by mpegtsmux from libgstmpegts
/// sections), demuxed by tsdemux: the out and in of a break become one
/// marker with SCTE35-OUT, SCTE35-IN and its DURATION, the time_signal a
/// marker of its own with its planned duration; both on their splice
/// points, and the break clips to its 4 s.
#[test]
fn scte35_cues_become_markers() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("cues.ts");
    let cues = common::scte35::write_ts(&ts);
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam target-duration=2 \
         filesrc location={ts} ! tsdemux name=d send-scte35-events=true \
         d. ! queue ! h264parse ! h.video \
         d. ! queue ! aacparse ! h.audio",
        loc = dir.path().display(),
        ts = ts.display(),
    ));
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.error.is_none(), "{:?}", run.error);
    let announced = run.named("hlsclipsink-marker");
    assert!(!announced.is_empty());
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let text = std::fs::read(session.join("replay.m3u8")).unwrap();
    let tags = dateranges(&text);
    let break_id = format!("scte35-{}", cues.event_id);
    let signal_id = format!("scte35-{}", cues.segmentation.event_id);
    assert_eq!(
        ids(&text),
        {
            let mut v = vec![break_id.clone(), signal_id.clone()];
            v.sort();
            v
        },
        "{}",
        String::from_utf8_lossy(&text)
    );
    let pl = m3u8_rs::parse_media_playlist_res(&text).unwrap();
    let pdt0 = pl.segments[0].program_date_time.unwrap();
    let at =
        |d: &m3u8_rs::DateRange| (d.start_date - pdt0).num_microseconds().unwrap() as f64 / 1e6;
    let frame = 1.0 / 30.0;
    let tag = |id: &str| tags.iter().find(|(i, ..)| i == id).unwrap().2.clone();
    let brk = tag(&break_id);
    assert!(
        (at(&brk) - cues.out_at.as_secs_f64()).abs() < frame,
        "{brk:?}"
    );
    let d = brk.duration.expect("the in gave the break its duration");
    assert!(
        (d - (cues.in_at - cues.out_at).as_secs_f64()).abs() < frame,
        "{brk:?}"
    );
    let other = brk.other_attributes.as_ref().unwrap();
    let out = other["SCTE35-OUT"].to_string();
    let back = other["SCTE35-IN"].to_string();
    assert!(out.starts_with("0xFC") && back.starts_with("0xFC") && out != back);
    let sig = tag(&signal_id);
    assert!(
        (at(&sig) - cues.signal_at.as_secs_f64()).abs() < frame,
        "{sig:?}"
    );
    assert!(
        sig.other_attributes
            .as_ref()
            .unwrap()
            .contains_key("SCTE35-OUT")
    );
    assert!(
        (sig.planned_duration.unwrap() - cues.segmentation.duration as f64 / 90_000.0).abs() < 1e-3,
        "{sig:?}"
    );
    // The stored list says where they came from; the break clips to 4 s.
    let sink = pipeline.by_name("h").unwrap();
    let mid = session.file_name().unwrap().to_str().unwrap().to_string();
    let s = sink.emit_by_name::<gst::Structure>("get-markers", &[&mid]);
    let json: serde_json::Value = serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap();
    assert!(
        json["markers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["source"] == "scte35")
    );
    let out_file = dir.path().join("break.mp4");
    let (requester, bus) = requester(dir.path());
    let id = requester.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &mid,
            &format!("marker={break_id}&location={}", out_file.display()),
        ],
    );
    let done = clip_done(&bus, id);
    assert!(!done.has_field("error"), "{done}");
    assert_eq!(decode_errors(&out_file), "");
    let video = streams(&out_file);
    let v = stream(&video, "video").unwrap();
    assert!((v.frames as i64 - 120).abs() <= 1, "{v:?}");
}
