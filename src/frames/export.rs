// SPDX-License-Identifier: MPL-2.0
//! Export profiles: a clip re-encoded for where it goes (a vertical story,
//! a square post, a landscape video under a size cap), as H.264 High and
//! AAC-LC in a faststart MP4.
//!
//! The clip is first cut from the stored fragments as usual (its edit list
//! hides the pre-roll); then a private pipeline of GStreamer's own elements
//! decodes it, crops or pads it to the profile's shape (the thumbnailer's
//! geometry), scales it and encodes it:
//!
//! ```text
//! filesrc ! decodebin ─ video ! queue ! [crop] ! videoscale ! [pad] ! H.264 encoder ! h264parse ─┐
//!                    └ audio ! queue ! audioconvert ! audioresample ! AAC encoder ! aacparse ─── mp4mux faststart ! filesink
//! ```
//!
//! The decoders clip to the edit list's window, so the export holds
//! exactly the clip's frames. A hardware H.264 encoder is used where one
//! is installed (nvcodec, va, vaapi), else x264enc.

use std::path::Path;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pipeline::{capsfilter, make};
use crate::core::thumbs::{Fit, Geometry};
use crate::thumbnailer::render::scale_chain;

/// Longest an export may take.
const TIMEOUT: Duration = Duration::from_secs(600);

/// A shape and size a clip is exported to.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// `Crop` (fill the frame, cut the overflow) or `Pad` (black bars).
    pub fit: Fit,
    /// Video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Audio bitrate, kbit/s.
    pub audio_kbps: u32,
    /// Longest clip this profile exports.
    pub max_duration: Duration,
}

/// The profiles every stream has: `landscape` (1920×1080), `vertical`
/// (1080×1920, cropped from the middle), `square` (1080×1080, cropped),
/// `vertical-pad` (1080×1920 with bars) and `small` (640×360, 1 Mb/s).
pub fn builtin() -> Vec<Profile> {
    let p = |name: &str, width, height, fit, video_kbps| Profile {
        name: name.into(),
        width,
        height,
        fit,
        video_kbps,
        audio_kbps: 128,
        max_duration: Duration::from_secs(180),
    };
    vec![
        p("landscape", 1920, 1080, Fit::Pad, 6000),
        p("vertical", 1080, 1920, Fit::Crop, 6000),
        p("square", 1080, 1080, Fit::Crop, 5000),
        p("vertical-pad", 1080, 1920, Fit::Pad, 6000),
        p("small", 640, 360, Fit::Pad, 1000),
    ]
}

/// Parses the `export-profiles` property: profiles separated by `;`, each
/// `name=WIDTHxHEIGHT` then `,`-separated options `fit=crop|pad`,
/// `video-kbps=N`, `audio-kbps=N`, `max-duration=SECONDS`; e.g.
/// `story=720x1280,fit=crop,video-kbps=3000,max-duration=60`. They are
/// added to (or replace, by name) the built-in ones.
pub fn parse_profiles(text: &str) -> Result<Vec<Profile>, String> {
    let mut all = builtin();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = item.split(',').map(str::trim);
        let head = parts.next().unwrap_or_default();
        let (name, size) = head.split_once('=').ok_or_else(|| {
            format!("{head:?}: a profile is name=WIDTHxHEIGHT, e.g. story=720x1280")
        })?;
        if !crate::hls::sessions::is_safe_id(name) {
            return Err(format!(
                "{name:?} is not a profile name (letters, digits, '-', '_', '.')"
            ));
        }
        let (w, h) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .filter(|&(w, h)| (16..=4096).contains(&w) && (16..=4096).contains(&h))
            .ok_or_else(|| format!("{name}: {size:?} is not WIDTHxHEIGHT of 16 to 4096"))?;
        let mut p = Profile {
            name: name.into(),
            width: w & !1,
            height: h & !1,
            fit: Fit::Crop,
            video_kbps: ((u64::from(w) * u64::from(h)) / 350).clamp(300, 20_000) as u32,
            audio_kbps: 128,
            max_duration: Duration::from_secs(180),
        };
        for opt in parts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| format!("{name}: option {opt:?} is not key=value"))?;
            let number = |lo: u32, hi: u32| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(|| format!("{name}: {k} is {v:?}, not a number of {lo} to {hi}"))
            };
            match k {
                "fit" => {
                    p.fit = match v {
                        "crop" => Fit::Crop,
                        "pad" => Fit::Pad,
                        _ => return Err(format!("{name}: fit is crop or pad, not {v:?}")),
                    }
                }
                "video-kbps" => p.video_kbps = number(100, 100_000)?,
                "audio-kbps" => p.audio_kbps = number(32, 320)?,
                "max-duration" => p.max_duration = Duration::from_secs(u64::from(number(1, 3600)?)),
                _ => {
                    return Err(format!(
                        "{name}: unknown option {k:?} (fit, video-kbps, audio-kbps, max-duration)"
                    ));
                }
            }
        }
        all.retain(|x| x.name != p.name);
        all.push(p);
    }
    Ok(all)
}

/// Where a cropped picture is taken from across the source: 0 the left
/// edge, 0.5 the middle, 1 the right edge. Moves the crop of `g`.
pub fn crop_at(g: &mut Geometry, x: f64) {
    let total = g.crop.left + g.crop.right;
    let left = (f64::from(total) * x.clamp(0.0, 1.0)).round() as u32 & !1;
    g.crop.left = left.min(total);
    g.crop.right = total - g.crop.left;
}

/// What an export made.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    /// The H.264 encoder used.
    pub encoder: String,
}

/// The H.264 encoder: a hardware one when installed, else x264enc, set
/// to `kbps`.
fn h264_encoder(kbps: u32, gop: u32) -> Result<gst::Element, String> {
    for (factory, prop) in [
        ("nvh264enc", "bitrate"),
        ("vah264enc", "bitrate"),
        ("vaapih264enc", "bitrate"),
    ] {
        if let Ok(e) = gst::ElementFactory::make(factory).build() {
            // A hardware encoder that can't open its device fails here.
            if e.set_state(gst::State::Ready).is_ok() {
                let _ = e.set_state(gst::State::Null);
                e.set_property(prop, kbps);
                return Ok(e);
            }
        }
    }
    let e = make("x264enc")?;
    e.set_property("bitrate", kbps);
    e.set_property_from_str("speed-preset", "faster");
    e.set_property("key-int-max", gop);
    Ok(e)
}

fn aac_encoder(kbps: u32) -> Result<gst::Element, String> {
    match make("voaacenc") {
        Ok(e) => {
            e.set_property("bitrate", (kbps * 1000) as i32);
            Ok(e)
        }
        Err(_) => {
            let e = make("avenc_aac")?;
            e.set_property("bitrate", i32::try_from(kbps * 1000).unwrap_or(128_000));
            Ok(e)
        }
    }
}

/// Re-encodes the clip `src` (an MP4 of the stored media, `width`×`height`
/// with pixel aspect ratio `par`) to `out` as profile `p` asks, the crop
/// taken at `crop_x` (0..1; `None`: the middle). `progress` is told the
/// share done (0..1) now and then. Blocks until done.
pub fn export(
    src: &Path,
    out: &Path,
    p: &Profile,
    source: ((u32, u32), (u32, u32)),
    crop_x: Option<f64>,
    clip_duration: Duration,
    progress: &dyn Fn(f64),
) -> Result<Exported, String> {
    let mut g = Geometry::compute(source.0, source.1, p.width, p.height, p.fit);
    if let Some(x) = crop_x {
        crop_at(&mut g, x);
    }
    let pipeline = gst::Pipeline::with_name("hlsclipsink-export");
    let filesrc = make("filesrc")?;
    filesrc.set_property("location", src.to_string_lossy().to_string());
    let decode = make("decodebin")?;
    let mux = make("mp4mux")?;
    mux.set_property("faststart", true);
    let sink = make("filesink")?;
    sink.set_property("location", out.to_string_lossy().to_string());
    pipeline
        .add_many([&filesrc, &decode, &mux, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&filesrc, &decode]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&mux, &sink]).map_err(|e| e.to_string())?;

    let mut video: Vec<gst::Element> = vec![make("queue")?];
    video.extend(scale_chain(&g)?);
    video.push(h264_encoder(p.video_kbps, 60)?);
    video.push(capsfilter(
        gst::Caps::builder("video/x-h264")
            .field("profile", "high")
            .build(),
    )?);
    video.push(make("h264parse")?);
    let audio = vec![
        make("queue")?,
        make("audioconvert")?,
        make("audioresample")?,
        aac_encoder(p.audio_kbps)?,
        make("aacparse")?,
    ];
    let encoder = video
        .iter()
        .find_map(|e| {
            e.factory()
                .filter(|f| f.name().ends_with("264enc"))
                .map(|f| f.name().to_string())
        })
        .unwrap_or_default();
    let branches = std::sync::Mutex::new(Some((video, audio)));
    let pipe = pipeline.downgrade();
    let mux_weak = mux.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(mux)) = (pipe.upgrade(), mux_weak.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let name = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let mut guard = branches.lock().unwrap();
        let Some((video, audio)) = guard.as_mut() else {
            return;
        };
        let chain = if name.starts_with("video/") {
            std::mem::take(video)
        } else if name.starts_with("audio/") {
            std::mem::take(audio)
        } else {
            return;
        };
        if chain.is_empty() {
            return;
        }
        let link = || -> Result<(), String> {
            pipeline.add_many(&chain).map_err(|e| e.to_string())?;
            gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
            let last = chain.last().ok_or("empty branch")?;
            last.link(&mux).map_err(|e| e.to_string())?;
            for e in &chain {
                e.sync_state_with_parent().map_err(|e| e.to_string())?;
            }
            let first = chain[0]
                .static_pad("sink")
                .ok_or("queue without sink pad")?;
            pad.link(&first).map_err(|e| e.to_string())?;
            Ok(())
        };
        if let Err(e) = link() {
            gst::element_error!(
                pipeline,
                gst::CoreError::Negotiation,
                ("cannot build the export's {name} branch: {e}")
            );
        }
    });
    struct Stop(gst::Pipeline);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.set_state(gst::State::Null);
        }
    }
    let pipeline = Stop(pipeline);
    let bus = pipeline.0.bus().ok_or("pipeline without a bus")?;
    pipeline
        .0
        .set_state(gst::State::Playing)
        .map_err(|_| "the export pipeline did not start".to_string())?;
    let started = Instant::now();
    let total = clip_duration.as_nanos().max(1) as f64;
    loop {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(250),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => break,
            Some(gst::MessageView::Error(e)) => {
                return Err(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            _ => {
                if started.elapsed() > TIMEOUT {
                    return Err(format!("the export took more than {TIMEOUT:?}"));
                }
                if let Some(pos) = pipeline.0.query_position::<gst::ClockTime>() {
                    progress((pos.nseconds() as f64 / total).clamp(0.0, 0.99));
                }
            }
        }
    }
    drop(pipeline);
    progress(1.0);
    let bytes = std::fs::metadata(out).map_err(|e| e.to_string())?.len();
    Ok(Exported {
        bytes,
        width: g.out.0,
        height: g.out.1,
        encoder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_bad_ones_say_why() {
        let all = parse_profiles(
            "story=720x1280,fit=crop,video-kbps=3000,max-duration=60; square=500x500,fit=pad",
        )
        .unwrap();
        let story = all.iter().find(|p| p.name == "story").unwrap();
        assert_eq!(
            (story.width, story.height, story.fit),
            (720, 1280, Fit::Crop)
        );
        assert_eq!(story.video_kbps, 3000);
        assert_eq!(story.max_duration, Duration::from_secs(60));
        let square = all.iter().find(|p| p.name == "square").unwrap();
        assert_eq!(
            (square.width, square.fit),
            (500, Fit::Pad),
            "replaces the built-in one"
        );
        assert_eq!(all.iter().filter(|p| p.name == "square").count(), 1);
        assert!(all.iter().any(|p| p.name == "vertical"));
        for bad in [
            "story",
            "story=720",
            "story=720x9999",
            "a b=10x10",
            "story=720x1280,fit=zoom",
            "story=720x1280,video-kbps=lots",
            "story=720x1280,colour=red",
        ] {
            assert!(parse_profiles(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_profiles("").unwrap(), builtin());
    }

    #[test]
    fn the_crop_moves_across_the_source() {
        // 1920x1080 into a 1080x1920 box: the height fills, 1920 - 608
        // columns are cut.
        let mut g = Geometry::compute((1920, 1080), (1, 1), 1080, 1920, Fit::Crop);
        let total = g.crop.left + g.crop.right;
        assert!(total > 1000, "{g:?}");
        crop_at(&mut g, 0.0);
        assert_eq!((g.crop.left, g.crop.right), (0, total));
        crop_at(&mut g, 1.0);
        assert_eq!(g.crop.left + g.crop.right, total);
        assert!(g.crop.right <= 1);
        crop_at(&mut g, 0.25);
        assert!((g.crop.left as f64 - total as f64 / 4.0).abs() <= 2.0);
    }
}
