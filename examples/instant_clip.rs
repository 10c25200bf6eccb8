// SPDX-License-Identifier: MPL-2.0
//! Instant clips from a live recording through hlsclipsink's action
//! signals: after 8 s, a preview manifest of the last 6 s gives
//! `preview-start-seconds`; a position in the preview becomes a clip start,
//! asked for as a frame-accurate MP4 (`clip-mp4`, result in the
//! `hlsclipsink-clip-done` message) and as a clip manifest; then "the last
//! 4 s". Ends when both MP4s are written.
//!
//! `cargo run --example instant_clip [output-dir]`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstliveclip::plugin_register_static()?;
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "instant-clip-output".into());
    let pipeline = gst::parse::launch(&format!(
        "hlsclipsink name=rec location={dir}/recordings stream-id=cam target-duration=2 \
         videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! timeoverlay ! \
           x264enc tune=zerolatency key-int-max=30 ! h264parse ! queue ! rec.video \
         audiotestsrc is-live=true ! voaacenc ! aacparse ! queue ! rec.audio"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let rec = pipeline.by_name("rec").ok_or("no hlsclipsink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline.set_state(gst::State::Playing)?;

    // Let 8 s be recorded (watching for errors meanwhile).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100))
            && let gst::MessageView::Error(e) = msg.view()
        {
            return Err(e.error().into());
        }
    }

    // The last 6 s as a playlist, and where it starts in recording time.
    let preview =
        rec.emit_by_name::<gst::Structure>("get-preview-manifest", &[&None::<String>, &"6s"]);
    if let Ok(reason) = preview.get::<String>("error") {
        return Err(format!("preview refused: {reason}").into());
    }
    let start = preview.get::<f64>("preview-start-seconds")?;
    let media = preview.get::<String>("stream-media-id")?;
    println!("preview of session {media} starts at {start:.3} s");
    // A user marked 1.5 s into the preview: 2 s from there.
    let query = format!("time={:.3}&duration=2s", start + 1.5);
    let manifest =
        rec.emit_by_name::<gst::Structure>("get-clip-manifest", &[&Some(&media), &query]);
    println!(
        "clip manifest: {} lines, no new file",
        manifest.get::<String>("manifest")?.lines().count()
    );
    let mut pending = HashSet::new();
    pending.insert(rec.emit_by_name::<u64>(
        "clip-mp4",
        &[&Some(&media), &format!("{query}&location={dir}/moment.mp4")],
    ));
    pending.insert(rec.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &None::<String>,
            &format!("duration=4s&location={dir}/last-4s.mp4"),
        ],
    ));

    // The results arrive as element messages.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Error(e) => return Err(e.error().into()),
            gst::MessageView::Element(_) => {
                let Some(s) = msg.structure() else { continue };
                if s.name() != "hlsclipsink-clip-done" {
                    continue;
                }
                let id = s.get::<u64>("request-id")?;
                if !pending.remove(&id) {
                    continue;
                }
                match s.get::<String>("error") {
                    Ok(reason) => println!("clip failed: {reason}"),
                    Err(_) => println!(
                        "clip done: {} from {:.3} s, {:.3} s, pre-roll {:.3} s",
                        s.get::<String>("location")?,
                        s.get::<gst::ClockTime>("start")?.seconds_f64(),
                        s.get::<gst::ClockTime>("duration")?.seconds_f64(),
                        s.get::<gst::ClockTime>("preroll")?.seconds_f64(),
                    ),
                }
            }
            _ => {}
        }
    }
    pipeline.send_event(gst::event::Eos::new());
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos]);
    pipeline.set_state(gst::State::Null)?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err("clips did not arrive within 30 s".into())
    }
}
