// SPDX-License-Identifier: MPL-2.0
//! GStreamer-side helpers shared by the elements that take encoded media on
//! `video` and `audio` request pads: pad templates, and buffers to samples.

use bytes::Bytes;

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
        .structure(gst::Structure::builder("audio/x-opus").build())
        .build()
}

/// The `video` and `audio` request pad templates.
pub fn request_pad_templates() -> Vec<gst::PadTemplate> {
    vec![
        gst::PadTemplate::new(
            "video",
            gst::PadDirection::Sink,
            gst::PadPresence::Request,
            &video_caps(),
        )
        .expect("valid template"),
        gst::PadTemplate::new(
            "audio",
            gst::PadDirection::Sink,
            gst::PadPresence::Request,
            &audio_caps(),
        )
        .expect("valid template"),
    ]
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

/// What an element with `video`/`audio` request pads does with their data.
pub trait EncodedSink: gst::subclass::prelude::ElementImpl {
    fn chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError>;
    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool;
}

/// The track kind a request pad template stands for.
pub fn kind_of(templ: &gst::PadTemplate) -> TrackKind {
    if templ.name_template() == "video" {
        TrackKind::Video
    } else {
        TrackKind::Audio
    }
}

/// A request pad named after its template (`video` or `audio`) whose data
/// and events go to `T`'s [`EncodedSink`] methods, panics turned into
/// errors.
pub fn request_pad<T: EncodedSink>(templ: &gst::PadTemplate) -> gst::Pad {
    use gst::subclass::prelude::ElementImplExt;
    gst::Pad::builder_from_template(templ)
        .name(templ.name_template())
        .chain_function(|pad, parent, buffer| {
            T::catch_panic_pad_function(
                parent,
                || Err(gst::FlowError::Error),
                |imp| imp.chain(pad, buffer),
            )
        })
        .event_function(|pad, parent, event| {
            T::catch_panic_pad_function(parent, || false, |imp| imp.sink_event(pad, event))
        })
        .flags(gst::PadFlags::ACCEPT_TEMPLATE)
        .build()
}
