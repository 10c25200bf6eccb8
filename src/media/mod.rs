// SPDX-License-Identifier: MPL-2.0
//! GStreamer-side helpers shared by the elements that take encoded media on
//! `video` and `audio` request pads: pad templates, buffers to samples, the
//! pads themselves ([`sink`]) and the thread that writes ([`Worker`]).

pub mod scte35;
pub mod sink;
mod worker;

pub use sink::{EncodedSink, SinkPads};
pub use worker::{Receiver, Sender, Worker, background_thread, send_all};

use bytes::Bytes;
use gst::glib;

use crate::core::nal::{self, Access};

use crate::core::{Sample, TrackKind};

/// Caps of the `video` request pad: what MP4/CMAF can carry.
pub fn video_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(
            gst::Structure::builder("video/x-h264")
                .field("stream-format", gst::List::new(["avc", "avc3"]))
                .field("alignment", "au")
                .build(),
        )
        .structure(
            gst::Structure::builder("video/x-h265")
                .field("stream-format", gst::List::new(["hvc1", "hev1"]))
                .field("alignment", "au")
                .build(),
        )
        .build()
}

/// Caps of the `audio` request pad.
pub fn audio_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(
            gst::Structure::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .build(),
        )
        // Framed ADTS (a parser's or an encoder's) is taken too, its headers
        // stripped; unframed ADTS links, and its caps get an error that
        // says to put aacparse before the element.
        .structure(
            gst::Structure::builder("audio/mpeg")
                .field("mpegversion", gst::List::new([4i32, 2]))
                .field("stream-format", "adts")
                .build(),
        )
        .structure(gst::Structure::builder("audio/x-opus").build())
        .build()
}

/// The `video` and `audio` request pad templates.
pub fn request_pad_templates() -> Vec<gst::PadTemplate> {
    templates(&["video", "audio"], None)
}

/// The request pad templates of an element that also records several
/// renditions (`video_%u`, `audio_%u`), its pads of type `pad`.
pub fn rendition_pad_templates(pad: glib::Type) -> Vec<gst::PadTemplate> {
    templates(&["video", "audio", "video_%u", "audio_%u"], Some(pad))
}

fn templates(names: &[&str], pad: Option<glib::Type>) -> Vec<gst::PadTemplate> {
    names
        .iter()
        .map(|&name| {
            let caps = if name.starts_with("video") {
                video_caps()
            } else {
                audio_caps()
            };
            let (dir, presence) = (gst::PadDirection::Sink, gst::PadPresence::Request);
            match pad {
                Some(t) => gst::PadTemplate::with_gtype(name, dir, presence, &caps, t),
                None => gst::PadTemplate::new(name, dir, presence, &caps),
            }
            .expect("valid template")
        })
        .collect()
}

/// Signed running time (ns) of a timestamp in `segment`.
pub fn running_time(
    segment: &gst::FormattedSegment<gst::ClockTime>,
    t: Option<gst::ClockTime>,
) -> Option<i64> {
    t.and_then(|t| segment.to_running_time_full(t))
        .map(|rt| match rt {
            gst::Signed::Positive(t) => t.nseconds() as i64,
            gst::Signed::Negative(t) => -(t.nseconds() as i64),
        })
}

/// Why a buffer did not become a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleError {
    /// Neither PTS nor DTS: nothing to place it with.
    NoTimestamp,
    /// The memory could not be mapped.
    Unmappable,
}

/// A sample from a buffer, times in running time; no copy of the data.
///
/// Video with NAL units (`nal`: codec and framing) is classified from them
/// ([`nal::classify`]): the sample is a keyframe where a decoder can start,
/// whatever the buffer flags say (parsers flag every I slice, and may flag a
/// P frame after a key-unit request). Unreadable data falls back to the
/// `DELTA_UNIT` flag.
pub fn sample_from_buffer(
    segment: &gst::FormattedSegment<gst::ClockTime>,
    kind: TrackKind,
    nal: Option<(nal::Codec, nal::Framing)>,
    buffer: gst::Buffer,
) -> Result<Sample, SampleError> {
    let flagged =
        kind == TrackKind::Audio || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let pts = running_time(segment, buffer.pts());
    let dts = running_time(segment, buffer.dts());
    let (pts, dts) = match (pts, dts) {
        (Some(p), Some(d)) => (p, d),
        (Some(p), None) => (p, p),
        (None, Some(d)) => (d, d),
        (None, None) => return Err(SampleError::NoTimestamp),
    };
    let duration = buffer.duration().map_or(0, |d| d.nseconds());
    let data = buffer
        .into_mapped_buffer_readable()
        .map(Bytes::from_owner)
        .map_err(|_| SampleError::Unmappable)?;
    let mut sample = Sample {
        pts,
        dts,
        duration,
        keyframe: flagged,
        access: Access::Unknown,
        data,
    };
    if let (TrackKind::Video, Some((codec, framing))) = (kind, nal) {
        sample.classify(codec, framing);
    }
    Ok(sample)
}

/// UTC from a reference timestamp meta (`timestamp/x-unix` or NTP), if any.
pub fn reference_utc(buffer: &gst::BufferRef) -> Option<chrono::DateTime<chrono::Utc>> {
    const NS: i64 = crate::core::NS as i64;
    for meta in buffer.iter_meta::<gst::ReferenceTimestampMeta>() {
        let name = meta.reference().structure(0)?.name().to_string();
        let ts = meta.timestamp().nseconds() as i64;
        let unix = match name.as_str() {
            "timestamp/x-unix" => ts,
            // NTP epoch (1900) to Unix epoch (1970).
            "timestamp/x-ntp" => ts - 2_208_988_800 * NS,
            _ => continue,
        };
        return chrono::DateTime::from_timestamp(unix.div_euclid(NS), unix.rem_euclid(NS) as u32);
    }
    None
}

/// Asks upstream of every `video` pad of `element` for a keyframe at `running_time`
/// (as soon as it can, for `None`), with the headers.
pub fn request_keyframe(element: &gst::Element, running_time: Option<gst::ClockTime>) {
    use gst::prelude::*;
    // Every video pad: the renditions of a ladder key together.
    for pad in element.sink_pads() {
        if !pad.name().starts_with("video") {
            continue;
        }
        gst::debug!(
            sink::CAT,
            obj = pad,
            "requesting a keyframe at {}",
            running_time.display()
        );
        pad.push_event(
            gst_video::UpstreamForceKeyUnitEvent::builder()
                .running_time(running_time)
                .all_headers(true)
                .build(),
        );
    }
}
