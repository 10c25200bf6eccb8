// SPDX-License-Identifier: MPL-2.0
//! Codec configurations the unit tests share: a real 320x240 H.264 avcC (as
//! x264enc ! h264parse make it) and AAC-LC stereo at 48 kHz.

use super::CodecConfig;

pub const AVCC: &[u8] = &[
    0x01, 0xf4, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x1d, 0x67, 0xf4, 0x00, 0x0d, 0x90, 0xd9, 0xb2, 0x82,
    0x83, 0xf6, 0x02, 0xd4, 0x18, 0x18, 0x19, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00,
    0x3c, 0x8f, 0x14, 0x29, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xec, 0x44, 0x84, 0x40,
];

/// 320x240 30 fps H.264 caps in `format`, with or without `codec_data`.
pub fn h264_caps(format: &str, with_data: bool) -> gst::Caps {
    gst::init().unwrap();
    let mut b = gst::Caps::builder("video/x-h264")
        .field("stream-format", format)
        .field("alignment", "au")
        .field("width", 320i32)
        .field("height", 240i32)
        .field("framerate", gst::Fraction::new(30, 1));
    if with_data {
        b = b.field("codec_data", gst::Buffer::from_slice(AVCC));
    }
    b.build()
}

/// H.264 `avc1`, 320x240, 30 fps (timescale 15360).
pub fn h264() -> CodecConfig {
    CodecConfig::from_caps(&h264_caps("avc", true)).unwrap()
}

/// AAC-LC, 48 kHz stereo.
pub fn aac() -> CodecConfig {
    gst::init().unwrap();
    let caps = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("rate", 48_000i32)
        .field("channels", 2i32)
        .field("codec_data", gst::Buffer::from_slice([0x11u8, 0x90]))
        .build();
    CodecConfig::from_caps(&caps).unwrap()
}
