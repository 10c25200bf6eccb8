// SPDX-License-Identifier: MPL-2.0
//! Codec configuration: caps -> MP4 sample entry.
//!
//! Supported: H.264 (`avc`/`avc3`), H.265 (`hvc1`/`hev1`), AAC (raw, with
//! `codec_data`) and Opus. Whatever MP4 needs but the caps lack is reported by
//! name, so that a negotiation failure tells the user what to put upstream.

use std::fmt;

use mp4_atom::{Atom, Codec};

use crate::core::TrackKind;

/// Why caps can't be stored in MP4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

/// Everything a writer needs to describe one track.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecConfig {
    pub kind: TrackKind,
    /// Short codec name for messages ("h264", "h265", "aac", "opus").
    pub name: &'static str,
    /// The `stsd` sample entry.
    pub entry: Codec,
    /// Media timescale (ticks per second) of the track.
    pub timescale: u32,
    /// Display size (video), 0 for audio.
    pub width: u32,
    pub height: u32,
    /// Frame rate (num, den), when the caps carry a non-zero one.
    pub framerate: Option<(i32, i32)>,
    /// Sample rate and channel count (audio), 0 for video.
    pub rate: u32,
    pub channels: u32,
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`.
    pub codec_string: String,
    /// AAC frames arrive with ADTS headers, which [`strip_adts`] takes off
    /// (the AudioSpecificConfig comes from the caps).
    pub adts: bool,
}

impl CodecConfig {
    /// Builds the configuration from fixed caps.
    pub fn from_caps(caps: &gst::CapsRef) -> Result<Self, CodecError> {
        let Some(s) = caps.structure(0) else {
            return err("empty caps");
        };
        match s.name().as_str() {
            "video/x-h264" => video(s, false),
            "video/x-h265" => video(s, true),
            "audio/mpeg" => aac(s),
            "audio/x-opus" => opus(s),
            other => err(format!(
                "unsupported media type {other}: use H.264, H.265, AAC or Opus"
            )),
        }
    }

    /// The configuration a stored track was written with (an init segment's
    /// `trak`), for clips cut from recordings.
    pub fn from_trak(trak: &mp4_atom::Trak) -> Result<Self, CodecError> {
        let entry = trak
            .mdia
            .minf
            .stbl
            .stsd
            .codecs
            .first()
            .cloned()
            .ok_or_else(|| CodecError("track has no sample entry".into()))?;
        let timescale = trak.mdia.mdhd.timescale;
        let (kind, name, rate, channels) = match &entry {
            Codec::Avc1(_) | Codec::Avc3(_) => (TrackKind::Video, "h264", 0, 0),
            Codec::Hvc1(_) | Codec::Hev1(_) => (TrackKind::Video, "h265", 0, 0),
            Codec::Mp4a(m) => (
                TrackKind::Audio,
                "aac",
                timescale,
                u32::from(m.audio.channel_count),
            ),
            Codec::Opus(o) => (
                TrackKind::Audio,
                "opus",
                48_000,
                u32::from(o.audio.channel_count),
            ),
            other => {
                return err(format!("unsupported stored sample entry {other:?}"));
            }
        };
        if timescale == 0 {
            return err("track has no timescale");
        }
        Ok(CodecConfig {
            kind,
            name,
            entry,
            timescale,
            width: u32::from(trak.tkhd.width.integer()),
            height: u32::from(trak.tkhd.height.integer()),
            framerate: None,
            rate,
            channels,
            codec_string: String::new(),
            adts: false,
        })
    }

    /// How the track's NAL units are framed, for video that has them.
    pub fn nal_format(&self) -> Option<(crate::core::nal::Codec, crate::core::nal::Framing)> {
        use crate::core::nal::{Codec as C, Framing};
        let length = |n: u8| Framing::Length(usize::from(n.clamp(1, 4)));
        match &self.entry {
            Codec::Avc1(a) => Some((C::H264, length(a.avcc.length_size))),
            Codec::Avc3(a) => Some((C::H264, length(a.avcc.length_size))),
            Codec::Hvc1(h) => Some((C::H265, length(h.hvcc.length_size_minus_one + 1))),
            Codec::Hev1(h) => Some((C::H265, length(h.hvcc.length_size_minus_one + 1))),
            _ => None,
        }
    }

    /// Caps a decoder takes for this stored video track (`avc`/`avc3`,
    /// `hvc1`/`hev1` with `codec_data` from the sample entry), with its
    /// coded size and pixel aspect ratio (from `pasp`, else 1:1). `None`
    /// for audio.
    pub fn video_caps(&self) -> Option<gst::Caps> {
        let mut body = Vec::new();
        let (name, format, visual, pasp) = match &self.entry {
            Codec::Avc1(a) => {
                a.avcc.encode_body(&mut body).ok()?;
                ("video/x-h264", "avc", &a.visual, a.pasp.as_ref())
            }
            Codec::Avc3(a) => {
                a.avcc.encode_body(&mut body).ok()?;
                ("video/x-h264", "avc3", &a.visual, a.pasp.as_ref())
            }
            Codec::Hvc1(h) => {
                h.hvcc.encode_body(&mut body).ok()?;
                ("video/x-h265", "hvc1", &h.visual, h.pasp.as_ref())
            }
            Codec::Hev1(h) => {
                h.hvcc.encode_body(&mut body).ok()?;
                ("video/x-h265", "hev1", &h.visual, h.pasp.as_ref())
            }
            _ => return None,
        };
        let par = pasp
            .filter(|p| p.h_spacing > 0 && p.v_spacing > 0)
            .map_or((1, 1), |p| (p.h_spacing as i32, p.v_spacing as i32));
        Some(
            gst::Caps::builder(name)
                .field("stream-format", format)
                .field("alignment", "au")
                .field("width", i32::from(visual.width))
                .field("height", i32::from(visual.height))
                .field("pixel-aspect-ratio", gst::Fraction::new(par.0, par.1))
                .field("codec_data", gst::Buffer::from_mut_slice(body))
                .build(),
        )
    }

    /// Whether the codec configuration of `other` can share a sample entry
    /// with this one (same codec and same parameters).
    pub fn same_entry(&self, other: &CodecConfig) -> bool {
        self.entry == other.entry && self.timescale == other.timescale
    }

    /// Video timescale from a frame rate: a multiple of the rate's numerator
    /// so that every frame time is an exact tick count, as high as 10000 at
    /// least (15360 for 30 fps, 30000 for 29.97), else 90 kHz.
    pub fn video_timescale(framerate: Option<(i32, i32)>) -> u32 {
        match framerate {
            Some((n, d)) if n > 0 && d > 0 => {
                let mut ts = n as u32;
                while ts < 10_000 {
                    ts *= 2;
                }
                ts
            }
            _ => 90_000,
        }
    }
}

fn codec_data(s: &gst::StructureRef, what: &str, hint: &str) -> Result<Vec<u8>, CodecError> {
    match s.get::<gst::Buffer>("codec_data") {
        Ok(buf) => {
            let map = buf
                .map_readable()
                .map_err(|_| CodecError(format!("{what} codec_data is not readable")))?;
            Ok(map.as_slice().to_vec())
        }
        Err(_) => err(format!("{what} caps have no codec_data: {hint}")),
    }
}

fn video(s: &gst::StructureRef, hevc: bool) -> Result<CodecConfig, CodecError> {
    let (what, parser) = if hevc {
        ("H.265", "h265parse")
    } else {
        ("H.264", "h264parse")
    };
    let format = s.get::<&str>("stream-format").unwrap_or("(none)");
    let in_band = match (hevc, format) {
        (false, "avc") | (true, "hvc1") => false,
        (false, "avc3") | (true, "hev1") => true,
        _ => {
            return err(format!(
                "{what} stream-format={format} is not supported: MP4 needs {}; put {parser} before this element",
                if hevc { "hvc1 or hev1" } else { "avc or avc3" }
            ));
        }
    };
    let alignment = s.get::<&str>("alignment").unwrap_or("(none)");
    if alignment != "au" {
        return err(format!(
            "{what} alignment={alignment} is not supported: MP4 needs alignment=au; put {parser} before this element"
        ));
    }
    let width = s.get::<i32>("width").unwrap_or(0);
    let height = s.get::<i32>("height").unwrap_or(0);
    if width <= 0 || height <= 0 || width > u16::MAX as i32 || height > u16::MAX as i32 {
        return err(format!(
            "{what} caps have no valid width and height; put {parser} before this element"
        ));
    }
    let framerate = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .map(|f| (f.numer(), f.denom()))
        .filter(|&(n, d)| n > 0 && d > 0);
    let pasp = s
        .get::<gst::Fraction>("pixel-aspect-ratio")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0 && f.numer() != f.denom())
        .map(|f| mp4_atom::Pasp {
            h_spacing: f.numer() as u32,
            v_spacing: f.denom() as u32,
        });
    let hint = format!("put {parser} before this element");
    let data = codec_data(s, what, &hint)?;
    let visual = mp4_atom::Visual {
        data_reference_index: 1,
        width: width as u16,
        height: height as u16,
        ..Default::default()
    };
    let (entry, codec_string) = if hevc {
        let hvcc = mp4_atom::Hvcc::decode_body(&mut data.as_slice())
            .map_err(|e| CodecError(format!("H.265 codec_data is not an hvcC record: {e}")))?;
        let codec_string = hevc_codec_string(&hvcc, in_band);
        let entry = if in_band {
            Codec::Hev1(mp4_atom::Hev1 {
                visual,
                hvcc,
                pasp,
                ..Default::default()
            })
        } else {
            Codec::Hvc1(mp4_atom::Hvc1 {
                visual,
                hvcc,
                pasp,
                ..Default::default()
            })
        };
        (entry, codec_string)
    } else {
        let avcc = mp4_atom::Avcc::decode_body(&mut data.as_slice())
            .map_err(|e| CodecError(format!("H.264 codec_data is not an avcC record: {e}")))?;
        let codec_string = format!(
            "{}.{:02x}{:02x}{:02x}",
            if in_band { "avc3" } else { "avc1" },
            avcc.avc_profile_indication,
            avcc.profile_compatibility,
            avcc.avc_level_indication
        );
        let entry = if in_band {
            Codec::Avc3(mp4_atom::Avc3 {
                visual,
                avcc,
                pasp,
                ..Default::default()
            })
        } else {
            Codec::Avc1(mp4_atom::Avc1 {
                visual,
                avcc,
                pasp,
                ..Default::default()
            })
        };
        (entry, codec_string)
    };
    Ok(CodecConfig {
        kind: TrackKind::Video,
        name: if hevc { "h265" } else { "h264" },
        entry,
        timescale: CodecConfig::video_timescale(framerate),
        width: width as u32,
        height: height as u32,
        framerate,
        rate: 0,
        channels: 0,
        codec_string,
        adts: false,
    })
}

fn hevc_codec_string(h: &mp4_atom::Hvcc, in_band: bool) -> String {
    // ISO/IEC 14496-15 annex E: hvc1.<space+profile>.<compat reversed>.<tier+level>.<constraints>
    let space = ["", "A", "B", "C"][(h.general_profile_space & 3) as usize];
    let compat = u32::from_be_bytes(h.general_profile_compatibility_flags).reverse_bits();
    let mut s = format!(
        "{}.{space}{}.{:x}.{}{}",
        if in_band { "hev1" } else { "hvc1" },
        h.general_profile_idc,
        compat,
        if h.general_tier_flag { 'H' } else { 'L' },
        h.general_level_idc
    );
    let flags = &h.general_constraint_indicator_flags;
    let used = flags.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    for b in &flags[..used] {
        s.push_str(&format!(".{b:x}"));
    }
    s
}

fn audio_entry(rate: u32, channels: u32) -> mp4_atom::Audio {
    mp4_atom::Audio {
        data_reference_index: 1,
        channel_count: channels as u16,
        sample_size: 16,
        // The field is 16.16 fixed point; rates above 65535 Hz don't fit and
        // players take the rate from the decoder configuration anyway.
        sample_rate: (u16::try_from(rate).unwrap_or(0)).into(),
    }
}

fn rate_channels(s: &gst::StructureRef, what: &str) -> Result<(u32, u32), CodecError> {
    let rate = s.get::<i32>("rate").unwrap_or(0);
    let channels = s.get::<i32>("channels").unwrap_or(0);
    if rate <= 0 || channels <= 0 || channels > 255 {
        return err(format!("{what} caps have no valid rate and channels"));
    }
    Ok((rate as u32, channels as u32))
}

fn aac(s: &gst::StructureRef) -> Result<CodecConfig, CodecError> {
    let version = s.get::<i32>("mpegversion").unwrap_or(0);
    if version != 4 && version != 2 {
        return err(format!(
            "audio/mpeg mpegversion={version} is not supported: only AAC (mpegversion=4) is"
        ));
    }
    let format = s.get::<&str>("stream-format").unwrap_or("(none)");
    let adts = format == "adts";
    if adts && !s.get::<bool>("framed").unwrap_or(false) {
        return err(
            "AAC stream-format=adts is not framed (one frame per buffer): put aacparse before this element",
        );
    }
    if format != "raw" && !adts {
        return err(format!(
            "AAC stream-format={format} is not supported: MP4 needs stream-format=raw (or framed adts); put aacparse before this element"
        ));
    }
    let (rate, channels) = rate_channels(s, "AAC")?;
    let asc = if adts {
        adts_config(s, rate, channels)?
    } else {
        codec_data(s, "AAC", "put aacparse before this element")?
    };
    if asc.len() < 2 {
        return err("AAC codec_data is shorter than an AudioSpecificConfig");
    }
    let object_type = asc[0] >> 3;
    let dec_specific = mp4_atom::esds::DecoderSpecific {
        profile: object_type,
        freq_index: ((asc[0] & 0x07) << 1) | (asc[1] >> 7),
        chan_conf: (asc[1] >> 3) & 0x0f,
        raw: asc,
    };
    let esds = mp4_atom::Esds {
        es_desc: mp4_atom::esds::EsDescriptor {
            es_id: 0,
            depends_on_es_id: None,
            url: None,
            ocr_es_id: None,
            stream_priority: 0,
            dec_config: mp4_atom::esds::DecoderConfig {
                object_type_indication: 0x40,
                stream_type: 0x05,
                up_stream: 0,
                buffer_size_db: Default::default(),
                max_bitrate: 0,
                avg_bitrate: 0,
                dec_specific: Some(dec_specific),
            },
            sl_config: mp4_atom::esds::SLConfig {},
        },
    };
    Ok(CodecConfig {
        kind: TrackKind::Audio,
        name: "aac",
        entry: Codec::Mp4a(mp4_atom::Mp4a {
            audio: audio_entry(rate, channels),
            esds,
            btrt: None,
            taic: None,
        }),
        timescale: rate,
        width: 0,
        height: 0,
        framerate: None,
        rate,
        channels,
        codec_string: format!("mp4a.40.{object_type}"),
        adts,
    })
}

/// The AudioSpecificConfig of framed ADTS caps: object type from
/// `profile` (LC when absent), sampling frequency index from the rate,
/// channel configuration from the channels.
fn adts_config(s: &gst::StructureRef, rate: u32, channels: u32) -> Result<Vec<u8>, CodecError> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let object_type: u8 = match s.get::<&str>("profile").unwrap_or("lc") {
        "main" => 1,
        "lc" => 2,
        "ssr" => 3,
        "ltp" => 4,
        other => return err(format!("AAC profile {other} in ADTS is not supported")),
    };
    let Some(index) = RATES.iter().position(|&r| r == rate) else {
        return err(format!("ADTS AAC at {rate} Hz: not a rate ADTS can carry"));
    };
    let channels: u8 = match channels {
        1..=6 => channels as u8,
        8 => 7,
        _ => {
            return err(format!(
                "ADTS AAC with {channels} channels is not supported"
            ));
        }
    };
    let index = index as u8;
    Ok(vec![
        (object_type << 3) | (index >> 1),
        ((index & 1) << 7) | (channels << 3),
    ])
}

/// The raw AAC frame inside a buffer holding exactly one ADTS frame.
pub fn strip_adts(data: &bytes::Bytes) -> Result<bytes::Bytes, String> {
    if data.len() < 7 || data[0] != 0xff || data[1] & 0xf0 != 0xf0 {
        return Err("the buffer does not start with an ADTS header".into());
    }
    let header = if data[1] & 0x01 == 0 { 9 } else { 7 };
    let length = (usize::from(data[3] & 0x03) << 11)
        | (usize::from(data[4]) << 3)
        | usize::from(data[5] >> 5);
    if length != data.len() || length <= header {
        return Err(format!(
            "an ADTS frame of {length} bytes in a buffer of {}: one frame per buffer is needed",
            data.len()
        ));
    }
    if data[6] & 0x03 != 0 {
        return Err("ADTS frames with several raw data blocks are not supported".into());
    }
    Ok(data.slice(header..))
}

fn opus(s: &gst::StructureRef) -> Result<CodecConfig, CodecError> {
    // The OpusHead header, from the first streamheader buffer when present.
    let head: Option<Vec<u8>> = s
        .get::<gst::ArrayRef>("streamheader")
        .ok()
        .and_then(|a| a.first().and_then(|v| v.get::<gst::Buffer>().ok()))
        .and_then(|b| b.map_readable().ok().map(|m| m.to_vec()))
        .filter(|h| h.len() >= 19 && h.starts_with(b"OpusHead"));
    let family = s.get::<i32>("channel-mapping-family").unwrap_or(0);
    let dops = if let Some(h) = head {
        let channels = h[9];
        let mapping = if h[18] != 0 && h.len() >= 21 + channels as usize {
            Some(mp4_atom::OpusChannelMapping {
                family: h[18],
                stream_count: h[19],
                coupled_count: h[20],
                channel_mapping: h[21..21 + channels as usize].to_vec(),
            })
        } else if h[18] != 0 {
            return err("Opus header announces a channel mapping table but does not carry it");
        } else {
            None
        };
        mp4_atom::Dops {
            output_channel_count: channels,
            pre_skip: u16::from_le_bytes([h[10], h[11]]),
            input_sample_rate: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            output_gain: i16::from_le_bytes([h[16], h[17]]),
            channel_mapping: mapping,
        }
    } else {
        if family != 0 {
            return err(format!(
                "Opus channel-mapping-family={family} needs a streamheader with the mapping table; use opusenc or opusparse upstream"
            ));
        }
        let (_, channels) = rate_channels(s, "Opus")?;
        if channels > 2 {
            return err("Opus with more than 2 channels needs a streamheader");
        }
        mp4_atom::Dops {
            output_channel_count: channels as u8,
            pre_skip: 0,
            input_sample_rate: s.get::<i32>("rate").unwrap_or(48_000).max(0) as u32,
            output_gain: 0,
            channel_mapping: None,
        }
    };
    let channels = u32::from(dops.output_channel_count);
    if channels == 0 {
        return err("Opus caps have no channels");
    }
    Ok(CodecConfig {
        kind: TrackKind::Audio,
        name: "opus",
        entry: Codec::Opus(mp4_atom::Opus {
            audio: audio_entry(48_000, channels),
            dops,
            btrt: None,
        }),
        // Opus always decodes at 48 kHz.
        timescale: 48_000,
        width: 0,
        height: 0,
        framerate: None,
        rate: 48_000,
        channels,
        codec_string: "opus".into(),
        adts: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    use crate::mp4::testing::h264_caps;

    #[test]
    fn h264_avc_and_avc3() {
        let c = CodecConfig::from_caps(&h264_caps("avc", true)).unwrap();
        assert_eq!(c.kind, TrackKind::Video);
        assert_eq!(c.codec_string, "avc1.f4000d");
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(c.timescale, 15_360);
        let Codec::Avc1(avc1) = &c.entry else {
            panic!("not avc1: {:?}", c.entry)
        };
        assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);
        let c3 = CodecConfig::from_caps(&h264_caps("avc3", true)).unwrap();
        assert!(matches!(c3.entry, Codec::Avc3(_)));
        assert!(!c.same_entry(&c3));
    }

    #[test]
    fn h264_errors_name_what_is_missing() {
        let e = CodecConfig::from_caps(&h264_caps("avc", false)).unwrap_err();
        assert!(
            e.0.contains("codec_data") && e.0.contains("h264parse"),
            "{e}"
        );
        let e = CodecConfig::from_caps(&h264_caps("byte-stream", true)).unwrap_err();
        assert!(e.0.contains("byte-stream"), "{e}");
        let mut caps = h264_caps("avc", true);
        caps.make_mut().set("alignment", "nal");
        let e = CodecConfig::from_caps(&caps).unwrap_err();
        assert!(e.0.contains("alignment=nal"), "{e}");
        let mut caps = h264_caps("avc", true);
        caps.make_mut()
            .set("codec_data", gst::Buffer::from_slice([1u8, 2, 3]));
        let e = CodecConfig::from_caps(&caps).unwrap_err();
        assert!(e.0.contains("avcC"), "{e}");
        gst::init().unwrap();
        let e = CodecConfig::from_caps(&gst::Caps::new_empty_simple("video/x-vp8")).unwrap_err();
        assert!(e.0.contains("video/x-vp8"), "{e}");
    }

    #[test]
    fn aac_from_codec_data() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .field("codec_data", gst::Buffer::from_slice([0x11u8, 0x90]))
            .build();
        let c = CodecConfig::from_caps(&caps).unwrap();
        assert_eq!(c.timescale, 48_000);
        assert_eq!(c.codec_string, "mp4a.40.2");
        let Codec::Mp4a(m) = &c.entry else {
            panic!("not mp4a")
        };
        let ds = m.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
        assert_eq!((ds.profile, ds.freq_index, ds.chan_conf), (2, 3, 2));

        let adts = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "adts")
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .build();
        // Unframed ADTS: a parser is needed.
        let e = CodecConfig::from_caps(&adts).unwrap_err();
        assert!(e.0.contains("adts") && e.0.contains("aacparse"), "{e}");
        // Framed ADTS: the same sample entry as raw AAC with its
        // AudioSpecificConfig, and frames lose their headers.
        let mut framed = adts.clone();
        framed.make_mut().set("framed", true);
        framed.make_mut().set("profile", "lc");
        let f = CodecConfig::from_caps(&framed).unwrap();
        assert!(f.adts);
        assert!(f.same_entry(&c), "{:?} vs {:?}", f.entry, c.entry);
        assert_eq!(f.codec_string, "mp4a.40.2");
        let payload = [0x21u8, 0x10, 0x05, 0x00];
        let len = 7 + payload.len();
        let mut frame = vec![
            0xff,
            0xf1,
            0x4c,
            0x80 | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1f,
            0xfc,
        ];
        frame.extend_from_slice(&payload);
        let frame = bytes::Bytes::from(frame);
        assert_eq!(&strip_adts(&frame).unwrap()[..], &payload);
        // Two frames in one buffer, or no header: refused.
        let mut two = frame.to_vec();
        two.extend_from_slice(&frame);
        assert!(
            strip_adts(&bytes::Bytes::from(two))
                .unwrap_err()
                .contains("one frame")
        );
        assert!(strip_adts(&bytes::Bytes::from_static(&[0x21, 0x10, 0, 0, 0, 0, 0, 0])).is_err());
        let mut odd = framed.clone();
        odd.make_mut().set("rate", 47_000i32);
        assert!(CodecConfig::from_caps(&odd).is_err());
    }

    #[test]
    fn opus_with_and_without_header() {
        gst::init().unwrap();
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let caps = gst::Caps::builder("audio/x-opus")
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .field("channel-mapping-family", 0i32)
            .field(
                "streamheader",
                gst::Array::new([gst::Buffer::from_slice(head).to_send_value()]),
            )
            .build();
        let c = CodecConfig::from_caps(&caps).unwrap();
        let Codec::Opus(o) = &c.entry else {
            panic!("not opus")
        };
        assert_eq!(o.dops.pre_skip, 312);
        assert_eq!(o.dops.input_sample_rate, 48_000);
        assert_eq!(c.timescale, 48_000);

        let bare = gst::Caps::builder("audio/x-opus")
            .field("rate", 48_000i32)
            .field("channels", 1i32)
            .build();
        let c = CodecConfig::from_caps(&bare).unwrap();
        assert_eq!(c.channels, 1);
    }

    #[test]
    fn timescales_are_exact_for_common_rates() {
        assert_eq!(CodecConfig::video_timescale(Some((30, 1))), 15_360);
        assert_eq!(CodecConfig::video_timescale(Some((25, 1))), 12_800);
        assert_eq!(CodecConfig::video_timescale(Some((30_000, 1001))), 30_000);
        assert_eq!(CodecConfig::video_timescale(Some((24_000, 1001))), 24_000);
        assert_eq!(CodecConfig::video_timescale(None), 90_000);
    }
}
