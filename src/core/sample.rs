// SPDX-License-Identifier: MPL-2.0
//! One coded frame of one track.

use bytes::Bytes;

use super::nal::Access;

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrackKind {
    #[default]
    Video,
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

/// A coded sample (an access unit or an audio frame).
///
/// Times are nanoseconds of running time and signed: with B-frames the decode
/// time of the first frames lies before the start of the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Presentation time, ns.
    pub pts: i64,
    /// Decode time, ns; equal to `pts` for streams without reordering.
    pub dts: i64,
    /// Duration, ns; 0 when upstream did not say.
    pub duration: u64,
    /// Whether decoding can start at this sample (every audio frame is one).
    pub keyframe: bool,
    /// What the sample means for random access, when its NAL units were
    /// read ([`Access::Unknown`] for audio and unclassified video).
    pub access: Access,
    /// The coded bytes (for GStreamer input, a mapped buffer: no copy).
    pub data: Bytes,
}

impl Sample {
    /// Presentation end: `pts + duration`.
    pub fn pts_end(&self) -> i64 {
        self.pts
            .saturating_add(i64::try_from(self.duration).unwrap_or(i64::MAX))
    }

    /// The middle of its presentation: `pts + duration / 2`. An audio frame
    /// that straddles a cut instant belongs to the side that holds most of
    /// it (timestamps from different demuxers and parsers disagree by a few
    /// ns or ms at the start of a stream).
    pub fn pts_mid(&self) -> i64 {
        self.pts
            .saturating_add(i64::try_from(self.duration / 2).unwrap_or(i64::MAX))
    }

    /// Whether this is a leading picture of the random-access point `rap`
    /// that precedes it in decode order: it comes first in presentation.
    pub fn leads(&self, rap: &Sample) -> bool {
        self.pts < rap.pts
    }

    /// Reads the random-access class from the NAL units (video): the
    /// sample is a keyframe exactly where a decoder can start. Data the
    /// parser can't read keeps its flag.
    pub fn classify(&mut self, codec: super::nal::Codec, framing: super::nal::Framing) {
        self.access = super::nal::classify(&self.data, codec, framing);
        if self.access != Access::Unknown {
            self.keyframe = self.access.is_random_access();
        }
    }

    /// Number of payload bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_end_adds_duration_and_saturates() {
        let s = Sample {
            pts: 1_000,
            dts: 500,
            duration: 40,
            keyframe: true,
            access: Access::Unknown,
            data: Bytes::from_static(b"abc"),
        };
        assert_eq!(s.pts_end(), 1_040);
        assert_eq!(s.size(), 3);
        let huge = Sample {
            pts: i64::MAX - 1,
            duration: u64::MAX,
            ..s
        };
        assert_eq!(huge.pts_end(), i64::MAX);
    }
}
