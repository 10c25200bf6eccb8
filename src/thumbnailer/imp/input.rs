// SPDX-License-Identifier: MPL-2.0
//! What the thumbnailer makes of its sink caps, and the H.264 keyframes it
//! makes decodable alone.

use crate::core::nal::{self, Codec, Framing};

/// What the sink caps say about the input.
#[derive(Debug)]
pub struct Input {
    pub(super) caps: gst::Caps,
    pub(super) encoded: bool,
    /// Width and height, when the caps have them.
    pub(super) size: Option<(u32, u32)>,
    pub(super) par: (u32, u32),
    /// Codec and framing when parameter sets travel in band (byte-stream,
    /// avc3, hev1): keyframes may need the last ones put in front.
    pub(super) in_band: Option<(Codec, Framing)>,
    /// H.264 framing, and the sequence parameter sets of `codec_data`.
    pub(super) h264: Option<(Framing, Vec<Vec<u8>>)>,
}

impl Input {
    /// What the sink pad takes: raw video, and H.264/H.265 in access units
    /// in every stream format.
    pub(super) fn template_caps() -> gst::Caps {
        gst::Caps::builder_full()
            .structure(gst::Structure::new_empty("video/x-raw"))
            .structure(
                gst::Structure::builder("video/x-h264")
                    .field(
                        "stream-format",
                        gst::List::new(["avc", "avc3", "byte-stream"]),
                    )
                    .field("alignment", "au")
                    .build(),
            )
            .structure(
                gst::Structure::builder("video/x-h265")
                    .field(
                        "stream-format",
                        gst::List::new(["hvc1", "hev1", "byte-stream"]),
                    )
                    .field("alignment", "au")
                    .build(),
            )
            .build()
    }

    pub(super) fn from_caps(caps: &gst::Caps) -> Option<Input> {
        let s = caps.structure(0)?;
        let encoded = s.name() != "video/x-raw";
        let size = match (s.get::<i32>("width"), s.get::<i32>("height")) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => Some((w as u32, h as u32)),
            _ => None,
        };
        let par = s
            .get::<gst::Fraction>("pixel-aspect-ratio")
            .ok()
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map_or((1, 1), |f| (f.numer() as u32, f.denom() as u32));
        let codec = match s.name().as_str() {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            _ => None,
        };
        // NAL length size from avcC (byte 4) or hvcC (byte 21).
        let length_size = |at: usize| {
            s.get::<gst::Buffer>("codec_data")
                .ok()
                .and_then(|b| b.map_readable().ok().and_then(|m| m.get(at).copied()))
                .map_or(4, |v| usize::from(v & 3) + 1)
        };
        let in_band = match (codec, s.get::<&str>("stream-format").unwrap_or("")) {
            (Some(c), "byte-stream") => Some((c, Framing::ByteStream)),
            (Some(Codec::H264), "avc3") => Some((Codec::H264, Framing::Length(length_size(4)))),
            (Some(Codec::H265), "hev1") => Some((Codec::H265, Framing::Length(length_size(21)))),
            _ => None,
        };
        let h264 = (codec == Some(Codec::H264)).then(|| {
            let framing = in_band.map_or(Framing::Length(length_size(4)), |(_, f)| f);
            let sps = crate::mp4::CodecConfig::from_caps(caps)
                .ok()
                .and_then(|c| match c.entry {
                    mp4_atom::Codec::Avc1(a) => Some(a.avcc.sequence_parameter_sets),
                    mp4_atom::Codec::Avc3(a) => Some(a.avcc.sequence_parameter_sets),
                    _ => None,
                })
                .unwrap_or_default();
            (framing, sps)
        });
        Some(Input {
            caps: caps.clone(),
            encoded,
            size,
            par,
            in_band,
            h264,
        })
    }
}

/// An H.264 open-GOP I picture made decodable on its own (see
/// [`nal::h264_with_frame_num_zero`]); any other picture as it is.
pub(super) fn h264_alone(buffer: gst::Buffer, framing: Framing, sps: &[Vec<u8>]) -> gst::Buffer {
    let rewritten = buffer.map_readable().ok().and_then(|m| {
        (nal::classify(&m, Codec::H264, framing) == nal::Access::Open)
            .then(|| {
                let sps: Vec<&[u8]> = sps.iter().map(|s| s.as_slice()).collect();
                nal::h264_with_frame_num_zero(&m, framing, &sps)
            })
            .flatten()
    });
    match rewritten {
        Some(data) => {
            let mut out = gst::Buffer::from_mut_slice(data);
            let _ = buffer.copy_into(
                out.get_mut().unwrap(),
                gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
                ..,
            );
            out
        }
        None => buffer,
    }
}
