// SPDX-License-Identifier: MPL-2.0
//! A live pipeline into periodicclipper with on-demand clips from the
//! `clip-now` action signal. Runs for 12 s, asking for a clip every 4 s.
//!
//! `cargo run --example clip_now [output-dir]`

use std::time::Duration;

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstliveclip::plugin_register_static()?;
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "clip-now-output".into());
    let pipeline = gst::parse::launch(&format!(
        "periodicclipper name=c interval=0 location={dir}/moment-%03d.mp4 \
         videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! timeoverlay ! \
           x264enc tune=zerolatency key-int-max=300 ! h264parse ! queue ! c.video \
         audiotestsrc is-live=true ! voaacenc ! aacparse ! queue ! c.audio"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let clipper = pipeline.by_name("c").ok_or("no clipper")?;
    pipeline.set_state(gst::State::Playing)?;

    let asker = {
        let clipper = clipper.clone();
        let pipeline = pipeline.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_secs(4));
                let location: Option<String> = clipper.emit_by_name("clip-now", &[]);
                println!("asked for a clip: {location:?}");
            }
            pipeline.send_event(gst::event::Eos::new());
        })
    };

    let bus = pipeline.bus().ok_or("no bus")?;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && s.name() == "periodicclipper-clip-ready"
                {
                    println!(
                        "clip ready: {} ({}, {} video frames, {})",
                        s.get::<String>("location")?,
                        s.get::<String>("trigger")?,
                        s.get::<u64>("video-frames")?,
                        s.get::<gst::ClockTime>("duration")?
                    );
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => return Err(e.error().into()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    asker.join().map_err(|_| "asker panicked")?;
    Ok(())
}
