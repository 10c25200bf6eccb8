// SPDX-License-Identifier: MPL-2.0
//! thumbnailer with real pipelines (raw videotestsrc, x264enc/x265enc +
//! parsers); every image checked with ffprobe and ffmpeg.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gstliveclip::core::thumbs::parse_vtt_time;

const S: u64 = 1_000_000_000;
const TIMEOUT: Duration = Duration::from_secs(180);

/// 10 s of 320x240 at 30 fps, H.264 with a keyframe every second.
fn h264(frames: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         x264enc speed-preset=ultrafast bframes=2 b-adapt=false key-int-max=30 ! h264parse name=parse"
    )
}

fn raw(frames: u32, caps: &str) -> String {
    format!("videotestsrc num-buffers={frames} ! video/x-raw,framerate=30/1{caps}")
}

fn check_image(file: &Path, codec: &str) -> (u32, u32) {
    let errors = decode_errors(file);
    assert!(errors.is_empty(), "{}: {errors}", file.display());
    let (c, w, h) = image_info(file);
    assert_eq!(c, codec, "{}", file.display());
    (w, h)
}

#[test]
fn encoded_input_one_thumbnail_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    // 10 s, interval 2 s: ticks at 0, 2, 4, 6 and 8 s, each served by the
    // keyframe on it (one per second). The tick at 10 s is past the last
    // frame (9.967 s), so exactly 5.
    let p = launch(&format!(
        "{} ! thumbnailer interval=2 width=160 location={} ! appsink name=out sync=false",
        h264(300),
        dir.path().join("t-%05d.jpg").display()
    ));
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    let msgs = run.named("thumbnailer-thumbnail");
    let times: Vec<u64> = msgs.iter().map(|m| ns(m, "running-time")).collect();
    assert_eq!(times, vec![0, 2 * S, 4 * S, 6 * S, 8 * S]);
    let jpgs = files(dir.path(), "jpg");
    assert_eq!(jpgs.len(), 5);
    for (i, (m, f)) in msgs.iter().zip(&jpgs).enumerate() {
        assert_eq!(
            m.get::<String>("location").unwrap(),
            f.display().to_string()
        );
        assert_eq!(m.get::<u32>("index").unwrap(), i as u32);
        assert_eq!(m.get::<String>("trigger").unwrap(), "periodic");
        assert_eq!(ns(m, "pts"), 3_600_000 * S + times[i], "x264enc's PTS");
        assert_eq!(ns(m, "recording-time"), times[i]);
        assert!(!m.get::<String>("utc").unwrap().is_empty());
        assert_eq!(
            (
                m.get::<i32>("width").unwrap(),
                m.get::<i32>("height").unwrap()
            ),
            (160, 120)
        );
        assert_eq!(check_image(f, "mjpeg"), (160, 120));
    }
    // The same images went downstream, stamped with the source frame's
    // PTS (so the same running time), all of them before EOS.
    let out = out.lock().unwrap();
    let pts: Vec<u64> = out.iter().map(|o| o.0).collect();
    assert_eq!(pts, times);
    assert!(out.iter().all(|o| o.2 == "image/jpeg" && o.1 > 0));
    for (o, f) in out.iter().zip(&jpgs) {
        assert_eq!(o.1 as u64, std::fs::metadata(f).unwrap().len());
    }
}

#[test]
fn raw_input_one_thumbnail_per_tick() {
    // Raw frames: every frame is usable, so the ticks are hit exactly:
    // 0, 2, 4, 6, 8 s of 10 s.
    let p = launch(&format!(
        "{} ! thumbnailer interval=2 ! appsink name=out sync=false",
        raw(300, ",width=320,height=240")
    ));
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    let pts: Vec<u64> = out.lock().unwrap().iter().map(|o| o.0).collect();
    assert_eq!(pts, vec![0, 2 * S, 4 * S, 6 * S, 8 * S]);
    assert_eq!(run.named("thumbnailer-thumbnail").len(), 5);
}

#[test]
fn every_format_decodes_as_itself() {
    for (format, ext, codec, caps) in [
        ("jpeg", "jpg", "mjpeg", "image/jpeg"),
        ("png", "png", "png", "image/png"),
        ("webp", "webp", "webp", "image/webp"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let latest = dir.path().join(format!("latest.{ext}"));
        let p = launch(&format!(
            "{} ! thumbnailer interval=1 format={format} quality=70 width=200 \
               location={} latest-location={} ! appsink name=out sync=false",
            h264(60),
            dir.path().join(format!("t-%03d.{ext}")).display(),
            latest.display()
        ));
        let out = collect(&p);
        let run = run(&p, TIMEOUT);
        ok(&run);
        let images = files(dir.path(), ext);
        // t-000, t-001 and latest.
        assert_eq!(images.len(), 3, "{format}: {images:?}");
        for f in &images {
            assert_eq!(check_image(f, codec), (200, 150), "{}", f.display());
        }
        assert_eq!(
            std::fs::read(&latest).unwrap(),
            std::fs::read(dir.path().join(format!("t-001.{ext}"))).unwrap()
        );
        assert!(out.lock().unwrap().iter().all(|o| o.2 == caps));
        assert_eq!(out.lock().unwrap().len(), 2);
    }
}

/// Runs a 320x240 source (raw or H.264) through the given size settings and
/// returns the one thumbnail's size.
fn size_of(input: &str, props: &str) -> (u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.png");
    let p = launch(&format!(
        "{input} ! thumbnailer interval=10 format=png {props} latest-location={} ! fakesink",
        f.display()
    ));
    let run = run(&p, TIMEOUT);
    ok(&run);
    let (w, h) = check_image(&f, "png");
    let m = run.named("thumbnailer-thumbnail");
    assert_eq!(
        (
            m[0].get::<i32>("width").unwrap(),
            m[0].get::<i32>("height").unwrap()
        ),
        (w as i32, h as i32)
    );
    (w, h)
}

#[test]
fn dimensions_for_every_fit_mode() {
    let raw_4_3 = raw(5, ",width=320,height=240");
    let enc_4_3 = h264(5);
    for input in [&raw_4_3, &enc_4_3] {
        let box_ = "width=160 height=160";
        assert_eq!(
            size_of(input, &format!("{box_} fit-mode=preserve")),
            (160, 120)
        );
        assert_eq!(size_of(input, &format!("{box_} fit-mode=crop")), (160, 160));
        assert_eq!(size_of(input, &format!("{box_} fit-mode=pad")), (160, 160));
        assert_eq!(
            size_of(input, &format!("{box_} fit-mode=stretch")),
            (160, 160)
        );
        assert_eq!(size_of(input, "width=160"), (160, 120));
        assert_eq!(size_of(input, "height=60"), (80, 60));
        assert_eq!(size_of(input, ""), (320, 240));
    }
    // Pixel aspect ratio: 720x576 at 16:15 displays as 768x576.
    let pal = raw(5, ",width=720,height=576,pixel-aspect-ratio=16/15");
    assert_eq!(size_of(&pal, ""), (768, 576));
    assert_eq!(size_of(&pal, "width=384"), (384, 288));
    // Interlaced input is deinterlaced to full frames.
    let interlaced = raw(5, ",width=320,height=240,interlace-mode=interleaved");
    assert_eq!(size_of(&interlaced, "width=160"), (160, 120));
}

#[test]
fn pad_adds_black_bars_and_crop_does_not() {
    let dir = tempfile::tempdir().unwrap();
    // videotestsrc's white first bar fills the left of the picture; a
    // 4:3 source padded into a 2:1 box gets black bars left and right.
    let render = |mode: &str| {
        let f = dir.path().join(format!("{mode}.png"));
        let p = launch(&format!(
            "{} ! thumbnailer format=png width=240 height=120 fit-mode={mode} latest-location={} ! fakesink",
            raw(3, ",width=320,height=240"),
            f.display()
        ));
        ok(&run(&p, TIMEOUT));
        f
    };
    let pad = render("pad");
    let column = |f: &Path, x: u32| {
        let px = gray_pixels(f, &format!("crop=1:120:{x}:0"));
        px.iter().map(|&v| u32::from(v)).sum::<u32>() / px.len() as u32
    };
    // Bars are 40 px wide on each side.
    assert!(column(&pad, 5) < 20, "left bar not black");
    assert!(column(&pad, 234) < 20, "right bar not black");
    assert!(column(&pad, 45) > 100, "picture starts after the bar");
    let crop = render("crop");
    assert!(column(&crop, 0) > 100, "crop fills the box");
}

#[test]
fn latest_location_is_never_seen_partially_written() {
    let dir = tempfile::tempdir().unwrap();
    let latest = dir.path().join("latest.jpg");
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (latest, done, reads) = (latest.clone(), done.clone(), reads.clone());
        std::thread::spawn(move || {
            let mut versions = std::collections::HashSet::new();
            while !done.load(Ordering::SeqCst) {
                let Ok(bytes) = std::fs::read(&latest) else {
                    continue;
                };
                reads.fetch_add(1, Ordering::SeqCst);
                // A whole JPEG starts with SOI and ends with EOI.
                assert!(
                    bytes.len() > 4
                        && bytes[..2] == [0xff, 0xd8]
                        && bytes[bytes.len() - 2..] == [0xff, 0xd9],
                    "partial file of {} bytes",
                    bytes.len()
                );
                versions.insert(bytes);
            }
            versions.len()
        })
    };
    // 60 s of media in about two seconds: 60 replacements of a 1280x720
    // image (about 100 kB each), with the reader looping all along.
    let p = launch(&format!(
        "videotestsrc num-buffers=1800 pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! \
         thumbnailer interval=1 quality=95 latest-location={} ! fakesink",
        latest.display()
    ));
    let run = run(&p, TIMEOUT);
    done.store(true, Ordering::SeqCst);
    let versions = reader.join().expect("the reader never saw a partial file");
    ok(&run);
    assert_eq!(run.named("thumbnailer-thumbnail").len(), 60);
    assert!(reads.load(Ordering::SeqCst) > 10, "the reader did read");
    assert!(versions >= 2, "the reader saw the file change ({versions})");
    check_image(&latest, "mjpeg");
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn storyboard_tiles_and_vtt_cues_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sprite = dir.path().join("storyboard.jpg");
    let vtt = dir.path().join("storyboard.vtt");
    let p = launch(&format!(
        "{} ! thumbnailer interval=1 width=96 height=54 fit-mode=pad \
           storyboard-location={} storyboard-vtt={} storyboard-columns=4 ! fakesink",
        h264(300),
        sprite.display(),
        vtt.display()
    ));
    let run = run(&p, TIMEOUT);
    ok(&run);
    let msgs = run.named("thumbnailer-thumbnail");
    assert_eq!(msgs.len(), 10);
    // 10 tiles, 4 per row: 3 rows.
    assert_eq!(check_image(&sprite, "mjpeg"), (4 * 96, 3 * 54));
    let text = std::fs::read_to_string(&vtt).unwrap();
    assert!(text.starts_with("WEBVTT\n"));
    let mut cues = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((a, b)) = line.split_once(" --> ") {
            let payload = lines.next().unwrap();
            let (file, xywh) = payload.split_once("#xywh=").unwrap();
            assert_eq!(file, "storyboard.jpg");
            let v: Vec<u32> = xywh.split(',').map(|n| n.parse().unwrap()).collect();
            cues.push((parse_vtt_time(a).unwrap(), parse_vtt_time(b).unwrap(), v));
        }
    }
    assert_eq!(cues.len(), msgs.len());
    let mut seen = std::collections::HashSet::new();
    for (i, (start, end, v)) in cues.iter().enumerate() {
        assert_eq!(*start as u64, ns(msgs[i], "recording-time"));
        let next = cues.get(i + 1).map_or(start + S as i64, |c| c.0);
        assert_eq!(*end, next, "cues are contiguous");
        assert_eq!((v[2], v[3]), (96, 54));
        assert_eq!((v[0], v[1]), ((i as u32 % 4) * 96, (i as u32 / 4) * 54));
        assert!(v[0] + v[2] <= 4 * 96 && v[1] + v[3] <= 3 * 54);
        assert!(seen.insert((v[0], v[1])));
    }
}

/// Calls `f(buffer index, buffer)` on every buffer leaving `element`'s src
/// pad; returning `None` drops the buffer.
fn probe<F>(pipeline: &gst::Pipeline, element: &str, f: F)
where
    F: FnMut(u64, &mut gst::Buffer) -> Option<()> + Send + 'static,
{
    let pad = pipeline
        .by_name(element)
        .unwrap()
        .static_pad("src")
        .unwrap();
    let f = Mutex::new((0u64, f));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut guard = f.lock().unwrap();
        let (n, f) = &mut *guard;
        let i = *n;
        *n += 1;
        match f(i, buffer) {
            Some(()) => gst::PadProbeReturn::Ok,
            None => gst::PadProbeReturn::Drop,
        }
    });
}

#[test]
fn encoded_input_starting_mid_gop_waits_for_a_keyframe() {
    // The first 10 frames (the keyframe at 0 and 9 deltas) never arrive:
    // the first usable frame is the keyframe at 1 s, which starts the
    // schedule: 1, 3, 5, 7, 9 s.
    let p = launch(&format!(
        "{} ! thumbnailer interval=2 ! appsink name=out sync=false",
        h264(300)
    ));
    probe(&p, "parse", |i, _| (i >= 10).then_some(()));
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    let pts: Vec<u64> = out.lock().unwrap().iter().map(|o| o.0).collect();
    assert_eq!(pts, vec![S, 3 * S, 5 * S, 7 * S, 9 * S]);
}

#[test]
fn a_keyframe_that_does_not_decode_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "{} ! thumbnailer interval=2 location={} ! appsink name=out sync=false",
        h264(300),
        dir.path().join("t-%02d.jpg").display()
    ));
    // Scramble every byte of the fifth keyframe (at 4 s).
    let mut keyframes = 0;
    probe(&p, "parse", move |_, buffer| {
        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            return Some(());
        }
        keyframes += 1;
        if keyframes == 5 {
            let b = buffer.make_mut();
            let mut map = b.map_writable().unwrap();
            let mut x = 0x2545_f491_u32;
            for byte in map.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *byte = x as u8;
            }
        }
        Some(())
    });
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    assert!(
        run.warnings
            .iter()
            .any(|w| w.starts_with("thumbnailer") && w.contains("0:00:04")),
        "{:?}",
        run.warnings
    );
    let pts: Vec<u64> = out.lock().unwrap().iter().map(|o| o.0).collect();
    assert_eq!(pts, vec![0, 2 * S, 6 * S, 8 * S]);
    // Indices stay contiguous: the skipped frame took no file name.
    let jpgs = files(dir.path(), "jpg");
    assert_eq!(jpgs.len(), 4);
    assert!(jpgs[3].ends_with("t-03.jpg"));
    for f in &jpgs {
        check_image(f, "mjpeg");
    }
}

/// Switches the capsfilter `cf` to 640x480 after `after` frames.
fn switch_resolution(p: &gst::Pipeline, after: u64) {
    let cf = p.by_name("cf").unwrap();
    let src = p.by_name("src").unwrap();
    let pad = src.static_pad("src").unwrap();
    let n = AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if n.fetch_add(1, Ordering::SeqCst) + 1 == after {
            cf.set_property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("width", 640i32)
                    .field("height", 480i32)
                    .field("framerate", gst::Fraction::new(30, 1))
                    .build(),
            );
        }
        gst::PadProbeReturn::Ok
    });
}

#[test]
fn resolution_switch_mid_stream() {
    for encoded in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let enc = if encoded {
            "! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse"
        } else {
            ""
        };
        let p = launch(&format!(
            "videotestsrc name=src num-buffers=300 ! capsfilter name=cf \
               caps=video/x-raw,width=320,height=240,framerate=30/1 {enc} ! \
             thumbnailer interval=1 location={} ! fakesink",
            dir.path().join("t-%02d.jpg").display()
        ));
        switch_resolution(&p, 150);
        let run = run(&p, TIMEOUT);
        ok(&run);
        let sizes: Vec<(u32, u32)> = files(dir.path(), "jpg")
            .iter()
            .map(|f| check_image(f, "mjpeg"))
            .collect();
        // 10 s, one per second; the switch at 5 s.
        assert_eq!(sizes.len(), 10, "encoded={encoded}: {sizes:?}");
        assert_eq!(sizes[0], (320, 240));
        assert_eq!(sizes[9], (640, 480));
        let first_big = sizes.iter().position(|s| *s == (640, 480)).unwrap();
        assert!((5..=6).contains(&first_big), "{sizes:?}");
        assert!(sizes[first_big..].iter().all(|s| *s == (640, 480)));
    }
}

#[test]
fn snapshot_takes_the_next_frame_or_keyframe() {
    for encoded in [false, true] {
        let input = if encoded {
            h264(150)
        } else {
            raw(150, ",width=320,height=240")
        };
        let p = launch(&format!(
            "{input} ! identity name=tap ! thumbnailer name=t interval=0 ! appsink name=out sync=false"
        ));
        let t = p.by_name("t").unwrap();
        // Ask at the 45th frame (1.5 s), from the streaming thread.
        probe(&p, "tap", move |i, _| {
            if i == 45 {
                assert!(t.emit_by_name::<bool>("snapshot", &[]));
            }
            Some(())
        });
        let out = collect(&p);
        let run = run(&p, TIMEOUT);
        ok(&run);
        let msgs = run.named("thumbnailer-thumbnail");
        assert_eq!(msgs.len(), 1, "encoded={encoded}");
        assert_eq!(msgs[0].get::<String>("trigger").unwrap(), "snapshot");
        let pts = out.lock().unwrap()[0].0;
        if encoded {
            // The next keyframe: the encoder is asked for one, else the
            // regular one at 2 s.
            assert!((S * 3 / 2..=2 * S).contains(&pts), "{pts}");
        } else {
            // The frame the probe saw on its way in (1.5 s).
            assert_eq!(pts, 45 * S / 30);
        }
    }
}

#[test]
fn every_h264_and_h265_stream_format() {
    // x265enc puts VPS/SPS/PPS only before the first keyframe: with the
    // in-band formats (byte-stream, hev1) the keyframe at 1 s decodes only
    // because the element puts the sets seen at 0 s in front of it.
    let h265 = "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x265enc speed-preset=ultrafast key-int-max=30 ! h265parse";
    for input in [
        format!("{h265} ! video/x-h265,stream-format=byte-stream"),
        format!("{h265} ! video/x-h265,stream-format=hev1"),
        format!("{h265} ! video/x-h265,stream-format=hvc1"),
        format!("{} ! video/x-h264,stream-format=byte-stream", h264(60)),
        format!("{} ! video/x-h264,stream-format=avc3", h264(60)),
    ] {
        let p = launch(&format!(
            "{input} ! thumbnailer interval=1 width=64 ! appsink name=out sync=false"
        ));
        let out = collect(&p);
        let run = run(&p, TIMEOUT);
        ok(&run);
        assert!(run.warnings.is_empty(), "{:?}", run.warnings);
        let pts: Vec<u64> = out.lock().unwrap().iter().map(|o| o.0).collect();
        assert_eq!(pts, vec![0, S], "{input}");
    }
}

#[test]
fn max_files_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "{} ! thumbnailer interval=1 max-files=3 start-index=10 location={} ! fakesink",
        raw(300, ",width=160,height=120"),
        dir.path().join("t-%d.jpg").display()
    ));
    ok(&run(&p, TIMEOUT));
    let names: Vec<String> = files(dir.path(), "jpg")
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["t-17.jpg", "t-18.jpg", "t-19.jpg"]);
}

#[test]
fn unwritable_location_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let p = launch(&format!(
        "{} ! thumbnailer latest-location={} ! fakesink",
        raw(100, ",width=160,height=120"),
        blocker.join("latest.jpg").display()
    ));
    let run = run(&p, TIMEOUT);
    let error = run.error.expect("an error");
    assert!(
        error.contains(&blocker.join("latest.jpg").display().to_string()),
        "{error}"
    );
}

#[test]
fn flushing_seek_restarts_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("in.mp4");
    let enc = launch(&format!(
        "{} ! mp4mux ! filesink location={}",
        h264(300),
        mp4.display()
    ));
    ok(&run(&enc, TIMEOUT));
    let p = launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! thumbnailer interval=2 ! \
         appsink name=out sync=false",
        mp4.display()
    ));
    let out = collect(&p);
    p.set_state(gst::State::Paused).unwrap();
    let (res, _, _) = p.state(gst::ClockTime::from_seconds(30));
    assert!(res.is_ok(), "prerolls");
    p.seek_simple(
        gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
        gst::ClockTime::from_seconds(5),
    )
    .unwrap();
    let run = run(&p, TIMEOUT);
    ok(&run);
    let out = out.lock().unwrap();
    // The preroll may have made the image at 0 s before the seek; after it
    // the schedule starts again at the keyframe at 5 s (running time 0 of
    // the new segment): 5, 7, 9 s of media (mp4mux and qtdemux put the
    // first frame at 0).
    let after: Vec<u64> = out.iter().map(|o| o.0).filter(|&t| t > 0).collect();
    assert_eq!(after, vec![2 * S, 4 * S], "{out:?}");
    let msgs = run.named("thumbnailer-thumbnail");
    let media: Vec<u64> = msgs
        .iter()
        .map(|m| ns(m, "pts"))
        .filter(|&t| t >= 5 * S)
        .collect();
    // (The MP4 keeps x264's B-frame delay: every PTS is 2 frames late.)
    assert_eq!(media.len(), 3, "{media:?}");
    assert!((5 * S..5 * S + S / 10).contains(&media[0]), "{media:?}");
    assert_eq!(media[1] - media[0], 2 * S);
    assert_eq!(media[2] - media[1], 2 * S);
}

#[test]
fn live_source_snapshot_from_the_application() {
    let dir = tempfile::tempdir().unwrap();
    let latest = dir.path().join("now.jpg");
    let p = launch(&format!(
        "videotestsrc is-live=true num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         thumbnailer name=t interval=0 latest-location={} ! fakesink",
        latest.display()
    ));
    let t = p.by_name("t").unwrap();
    // Not running yet: nothing to snapshot.
    assert!(!t.emit_by_name::<bool>("snapshot", &[]));
    let asker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        assert!(t.emit_by_name::<bool>("snapshot", &[]));
    });
    let run = run(&p, TIMEOUT);
    asker.join().unwrap();
    ok(&run);
    let msgs = run.named("thumbnailer-thumbnail");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].get::<String>("trigger").unwrap(), "snapshot");
    let rt = ns(msgs[0], "running-time");
    assert!((S / 2..=3 * S / 2).contains(&rt), "{rt}");
    assert_eq!(check_image(&latest, "mjpeg"), (320, 240));
}

#[test]
fn files_only_without_anything_downstream() {
    // Nothing linked to the src pad: the element ends the stream itself.
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "{} ! thumbnailer interval=1 location={}",
        raw(90, ",width=160,height=120"),
        dir.path().join("t-%d.jpg").display()
    ));
    let run = run(&p, TIMEOUT);
    ok(&run);
    assert_eq!(files(dir.path(), "jpg").len(), 3);
}
