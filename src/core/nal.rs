// SPDX-License-Identifier: MPL-2.0
//! Just enough H.264/H.265 NAL parsing to cut and decode correctly:
//!
//! - [`classify`] tells from an access unit's NAL units whether a decoder can
//!   start there, and how ([`Access`]): buffer flags alone are not enough
//!   (parsers flag every I slice, and in GStreamer 1.22 h264parse even flags a
//!   P frame that it gave parameter sets to after a key-unit request).
//! - [`ParameterSets`] finds the parameter sets (SPS, PPS, VPS) at the head
//!   of an access unit, and puts the last ones seen in front of a keyframe
//!   that lacks them (streams in `byte-stream`, `avc3` or `hev1` format may
//!   carry them only now and then).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// How NAL units are delimited in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Annex B start codes (`00 00 01`, `00 00 00 01`).
    ByteStream,
    /// A big-endian length of 1 to 4 bytes before every unit.
    Length(usize),
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
        }
    }

    fn nal_type(self, header: u8) -> u8 {
        match self {
            Codec::H264 => header & 0x1f,
            Codec::H265 => (header >> 1) & 0x3f,
        }
    }

    fn is_vcl(self, t: u8) -> bool {
        match self {
            Codec::H264 => (1..=5).contains(&t),
            Codec::H265 => t < 32,
        }
    }

    fn is_parameter_set(self, t: u8) -> bool {
        match self {
            Codec::H264 => t == 7 || t == 8,
            Codec::H265 => (32..=34).contains(&t),
        }
    }

    fn is_sps(self, t: u8) -> bool {
        match self {
            Codec::H264 => t == 7,
            Codec::H265 => t == 33,
        }
    }
}

/// What an access unit means for random access, from its NAL units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Not classified (audio, or data the parser could not read): the
    /// buffer's keyframe flag is all there is.
    #[default]
    Unknown,
    /// Decoding can start here and nothing that follows refers to anything
    /// before (H.264 IDR; HEVC IDR, BLA without leading pictures).
    Closed,
    /// Decoding can start here, but pictures that follow in decode order
    /// and come first in presentation (leading pictures) may refer to
    /// pictures before it: an open GOP (H.264 I picture, with or without a
    /// recovery point SEI; HEVC CRA, BLA with leading pictures).
    Open,
    /// A leading picture that refers to pictures before its random-access
    /// point (HEVC RASL): it can't be decoded when decoding starts there.
    SkippedLeading,
    /// A leading picture decodable from its random-access point (HEVC RADL).
    DecodableLeading,
    /// Any other picture.
    Inter,
}

impl Access {
    /// Whether a decoder can start at this access unit.
    pub fn is_random_access(self) -> bool {
        matches!(self, Access::Closed | Access::Open)
    }
}

/// The NAL units of an access unit in `Length` framing, or in byte-stream
/// framing, all of them (empty units skipped).
fn units(data: &[u8], framing: Framing) -> Vec<&[u8]> {
    units_until(data, framing, |_| false)
}

/// The NAL units of an access unit up to (not including) the first one
/// whose header byte `stop` accepts; that unit's payload is not scanned,
/// so the cost of stopping at a picture does not depend on its size.
/// Malformed data ends the walk; nothing here panics.
fn units_until(data: &[u8], framing: Framing, stop: impl Fn(u8) -> bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    match framing {
        Framing::Length(n) if (1..=4).contains(&n) => {
            let mut pos = 0usize;
            while pos + n <= data.len() {
                let len = data[pos..pos + n]
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                pos += n;
                let Some(unit) = data.get(pos..pos.saturating_add(len)) else {
                    break;
                };
                pos += len;
                match unit.first() {
                    None => {}
                    Some(&h) if stop(h) => break,
                    Some(_) => out.push(unit),
                }
            }
        }
        Framing::Length(_) => {}
        Framing::ByteStream => {
            let Some((_, mut start)) = find_start_code(data, 0) else {
                return out;
            };
            while let Some(&header) = data.get(start) {
                if stop(header) {
                    break;
                }
                match find_start_code(data, start) {
                    Some((end, next)) => {
                        let u = trim_zeros(&data[start..end]);
                        if !u.is_empty() {
                            out.push(u);
                        }
                        start = next;
                    }
                    None => {
                        out.push(&data[start..]);
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Checks that `data` is an access unit of `codec` in `framing`, cheaply
/// (unit lengths and headers, not payloads): every length prefix fits the
/// buffer exactly, every unit has a valid header (forbidden bit clear, no
/// reserved unit type) and at least one unit is a picture slice.
/// Random bytes under valid caps fail here at once. Says what is wrong.
pub fn check(data: &[u8], codec: Codec, framing: Framing) -> Result<(), String> {
    let mut units = Vec::new();
    match framing {
        Framing::Length(n) if (1..=4).contains(&n) => {
            let mut pos = 0usize;
            while pos < data.len() {
                let Some(prefix) = data.get(pos..pos + n) else {
                    return Err(format!(
                        "{} trailing bytes after the last NAL unit",
                        data.len() - pos
                    ));
                };
                let len = prefix
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                pos += n;
                let Some(unit) = data
                    .get(pos..pos.saturating_add(len))
                    .filter(|u| !u.is_empty())
                else {
                    return Err(format!(
                        "a NAL unit length of {len} at byte {} does not fit the {}-byte buffer",
                        pos - n,
                        data.len()
                    ));
                };
                units.push(unit);
                pos += len;
            }
        }
        Framing::Length(n) => return Err(format!("NAL length size {n} is not 1 to 4")),
        Framing::ByteStream => {
            if find_start_code(data, 0).is_none_or(|(at, _)| data[..at].iter().any(|&b| b != 0)) {
                return Err("the buffer does not start with a start code".into());
            }
            units = self::units(data, framing);
        }
    }
    let mut pictures = 0;
    for u in &units {
        let header = u[0];
        if header & 0x80 != 0 {
            return Err("a NAL unit header has its forbidden bit set".into());
        }
        let t = codec.nal_type(header);
        // Reserved types are refused; unspecified ones are left to
        // applications (Dolby Vision's RPU is H.265 type 62).
        let reserved = match codec {
            Codec::H264 => matches!(t, 16..=18 | 22 | 23),
            Codec::H265 => (41..=47).contains(&t) || u.get(1).is_none_or(|b| b & 0x07 == 0),
        };
        if reserved {
            return Err(format!(
                "NAL unit type {t} is reserved in {} (or its header is cut short)",
                codec.name()
            ));
        }
        pictures += usize::from(codec.is_vcl(t));
    }
    if pictures == 0 {
        return Err("the access unit holds no picture slice".into());
    }
    Ok(())
}

/// H.264 `slice_type` of a slice NAL unit (0..=4 after `% 5`: P, B, I, SP, SI).
fn h264_slice_type(unit: &[u8]) -> Option<u32> {
    // Two Exp-Golomb codes fit in the first 16 bytes of the payload.
    let head = unescape(unit.get(1..unit.len().min(17))?);
    let mut bits = Rbsp {
        data: &head,
        pos: 0,
    };
    let _first_mb = bits.ue()?;
    Some(bits.ue()? % 5)
}

/// Classifies an access unit from its NAL units. Reads NAL headers and, for
/// H.264, the first two fields of each slice header: with `Length` framing
/// the walk jumps from unit to unit, so the cost does not grow with the
/// picture's size.
pub fn classify(data: &[u8], codec: Codec, framing: Framing) -> Access {
    let mut vcl = 0usize;
    match codec {
        Codec::H264 => {
            let mut intra = true;
            for u in units(data, framing) {
                match codec.nal_type(u[0]) {
                    5 => return Access::Closed,
                    1..=4 => {
                        vcl += 1;
                        // I (2) and SI (4) slices; anything else, or a slice
                        // header that does not read, is not intra.
                        if !matches!(h264_slice_type(u), Some(2 | 4)) {
                            intra = false;
                        }
                    }
                    _ => {}
                }
            }
            match (vcl, intra) {
                (0, _) => Access::Unknown,
                (_, true) => Access::Open,
                (_, false) => Access::Inter,
            }
        }
        Codec::H265 => {
            for u in units(data, framing) {
                let t = codec.nal_type(u[0]);
                match t {
                    16 | 21 => return Access::Open,
                    17..=20 => return Access::Closed,
                    6 | 7 => return Access::DecodableLeading,
                    8 | 9 => return Access::SkippedLeading,
                    0..=31 => return Access::Inter,
                    _ => {}
                }
            }
            Access::Unknown
        }
    }
}

/// Whether a later picture may refer to the picture in `data`, and its
/// temporal sub-layer (HEVC's TemporalId; 0 for H.264). H.264: a picture
/// whose slices all have `nal_ref_idc` 0 is never referred to. HEVC: a
/// sub-layer non-reference picture (`TRAIL_N`, `TSA_N`, `STSA_N`, `RADL_N`,
/// `RASL_N`) is referred to only by pictures of higher sub-layers. Data
/// that does not read counts as referred to.
pub fn reference(data: &[u8], codec: Codec, framing: Framing) -> (bool, u8) {
    match codec {
        Codec::H264 => {
            let mut vcl = false;
            for u in units(data, framing) {
                if codec.is_vcl(codec.nal_type(u[0])) {
                    vcl = true;
                    if u[0] & 0x60 != 0 {
                        return (true, 0);
                    }
                }
            }
            (!vcl, 0)
        }
        Codec::H265 => {
            for u in units(data, framing) {
                let t = codec.nal_type(u[0]);
                if codec.is_vcl(t) {
                    let Some(&second) = u.get(1) else {
                        return (true, 0);
                    };
                    let tid = (second & 7).saturating_sub(1);
                    return (!(t <= 14 && t.is_multiple_of(2)), tid);
                }
            }
            (true, 0)
        }
    }
}

/// The NAL units of `data` up to (not including) the first VCL unit: the
/// head of an access unit, where parameter sets live. Stops early, so the
/// cost does not depend on the size of the picture. Malformed data ends the
/// walk; nothing here panics.
pub fn head_units(data: &[u8], codec: Codec, framing: Framing) -> Vec<&[u8]> {
    units_until(data, framing, |h| codec.is_vcl(codec.nal_type(h)))
}

/// The next start code at or after `from`: (where it begins, where its
/// unit begins).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

/// Drops the trailing zero bytes of a unit (the leading zero of a 4-byte
/// start code that follows it).
fn trim_zeros(unit: &[u8]) -> &[u8] {
    let end = unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &unit[..end]
}

/// The last parameter sets seen in a stream, to complete keyframes that
/// come without them.
#[derive(Debug, Clone)]
pub struct ParameterSets {
    codec: Codec,
    framing: Framing,
    units: Vec<Vec<u8>>,
}

impl ParameterSets {
    pub fn new(codec: Codec, framing: Framing) -> Self {
        Self {
            codec,
            framing,
            units: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The remembered sequence parameter sets.
    pub fn sps(&self) -> Vec<&[u8]> {
        self.units
            .iter()
            .filter(|u| {
                u.first()
                    .is_some_and(|&h| self.codec.is_sps(self.codec.nal_type(h)))
            })
            .map(|u| u.as_slice())
            .collect()
    }

    /// Looks at the head of an access unit: remembers its parameter sets
    /// (if any) and says whether it has a sequence parameter set.
    pub fn observe(&mut self, data: &[u8]) -> bool {
        let head = head_units(data, self.codec, self.framing);
        let sets: Vec<&[u8]> = head
            .into_iter()
            .filter(|u| self.codec.is_parameter_set(self.codec.nal_type(u[0])))
            .collect();
        let has_sps = sets
            .iter()
            .any(|u| self.codec.is_sps(self.codec.nal_type(u[0])));
        if has_sps {
            self.units = sets.iter().map(|u| u.to_vec()).collect();
        } else {
            // A lone PPS (or VPS) update replaces the one of its type.
            for u in sets {
                let t = self.codec.nal_type(u[0]);
                self.units.retain(|k| self.codec.nal_type(k[0]) != t);
                self.units.push(u.to_vec());
            }
        }
        has_sps
    }

    /// `data` with the remembered parameter sets in front, in the stream's
    /// framing.
    pub fn prepend(&self, data: &[u8]) -> Vec<u8> {
        let extra: usize = self.units.iter().map(|u| u.len() + 4).sum();
        let mut out = Vec::with_capacity(data.len() + extra);
        for u in &self.units {
            match self.framing {
                Framing::ByteStream => out.extend_from_slice(&[0, 0, 0, 1]),
                Framing::Length(n) => {
                    let len = (u.len() as u32).to_be_bytes();
                    out.extend_from_slice(&len[4 - n.clamp(1, 4)..]);
                }
            }
            out.extend_from_slice(u);
        }
        out.extend_from_slice(data);
        out
    }
}

/// The RBSP of a NAL unit payload: emulation prevention bytes removed.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A NAL unit payload from an RBSP: emulation prevention bytes put back.
fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    // A unit never ends in a zero byte (trailing cabac_zero_words).
    if out.last() == Some(&0) {
        out.push(3);
    }
    out
}

/// Reads an RBSP bit by bit (no emulation bytes left).
struct Rbsp<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Rbsp<'_> {
    fn bit(&mut self) -> Option<u32> {
        let b = *self.data.get(self.pos / 8)?;
        let v = (b >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    fn bits(&mut self, n: usize) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let v = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { v } else { -v })
    }
}

/// From an H.264 SPS unit (with its header byte): `log2_max_frame_num`,
/// and whether colour planes are coded separately.
fn h264_sps_frame_num(sps: &[u8]) -> Option<(usize, bool)> {
    let rbsp = unescape(sps.get(1..)?);
    let mut r = Rbsp {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut separate = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            separate = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            // Scaling matrices: skipped list by list.
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    let log2 = r.ue()? as usize + 4;
    (4..=16).contains(&log2).then_some((log2, separate))
}

/// An H.264 access unit whose slices say `frame_num` 0, for decoding one
/// open-GOP I picture on its own.
///
/// A decoder that starts at a non-IDR picture sees a gap in `frame_num`
/// and makes up the missing reference pictures; GStreamer 1.22's libav
/// decoder can't allocate those and fails the picture ("decode_slice_header
/// error"). With `frame_num` 0 there is no gap. The picture itself (all
/// intra slices) decodes the same. `sps`: the stream's sequence parameter
/// sets, used when the access unit carries none. `None` when the unit
/// can't be read.
pub fn h264_with_frame_num_zero(data: &[u8], framing: Framing, sps: &[&[u8]]) -> Option<Vec<u8>> {
    h264_rewrite_frame_num(data, framing, sps, |_, _| 0)
}

/// The `frame_num` of an H.264 access unit's first slice. `None` when the
/// unit can't be read.
pub fn h264_frame_num(data: &[u8], framing: Framing, sps: &[&[u8]]) -> Option<u32> {
    let all = units(data, framing);
    let own_sps = all.iter().copied().find(|u| u[0] & 0x1f == 7);
    let (log2, separate) = h264_sps_frame_num(own_sps.or(sps.first().copied())?)?;
    let slice = all.iter().find(|u| matches!(u[0] & 0x1f, 1 | 5))?;
    let (rbsp, at) = frame_num_at(slice, separate)?;
    Rbsp {
        data: &rbsp,
        pos: at,
    }
    .bits(log2)
}

/// A slice's unescaped payload and the bit where its `frame_num` starts.
fn frame_num_at(slice: &[u8], separate_colour_planes: bool) -> Option<(Vec<u8>, usize)> {
    let rbsp = unescape(slice.get(1..)?);
    let mut r = Rbsp {
        data: &rbsp,
        pos: 0,
    };
    r.ue()?; // first_mb_in_slice
    r.ue()?; // slice_type
    r.ue()?; // pic_parameter_set_id
    if separate_colour_planes {
        r.bits(2)?;
    }
    let at = r.pos;
    Some((rbsp, at))
}

/// A copy of an H.264 access unit whose slices say `frame_num` minus
/// `base` (modulo MaxFrameNum): a run of pictures decoded from an open-GOP
/// I picture (not an IDR) keeps its `frame_num` sequence without the gap
/// before the first one (see [`h264_with_frame_num_zero`]); reference
/// marking is relative and picture order counts are not touched, so the
/// pictures decode the same. `None` when the unit can't be read.
pub fn h264_with_frame_num_from(
    data: &[u8],
    framing: Framing,
    sps: &[&[u8]],
    base: u32,
) -> Option<Vec<u8>> {
    h264_rewrite_frame_num(data, framing, sps, |n, log2| {
        let max = 1u64 << log2;
        ((u64::from(n) + max - u64::from(base) % max) % max) as u32
    })
}

/// A copy of an H.264 access unit whose slices' `frame_num` is `f(frame_num,
/// log2_max_frame_num)`.
fn h264_rewrite_frame_num(
    data: &[u8],
    framing: Framing,
    sps: &[&[u8]],
    f: impl Fn(u32, usize) -> u32,
) -> Option<Vec<u8>> {
    let all = units(data, framing);
    let own_sps = all.iter().copied().find(|u| u[0] & 0x1f == 7);
    let (log2, separate) = h264_sps_frame_num(own_sps.or(sps.first().copied())?)?;
    let mut out = Vec::with_capacity(data.len() + 16);
    for u in all {
        let unit = if matches!(u[0] & 0x1f, 1 | 5) {
            let (mut rbsp, at) = frame_num_at(u, separate)?;
            let old = Rbsp {
                data: &rbsp,
                pos: at,
            }
            .bits(log2)?;
            let value = f(old, log2);
            for (k, bit) in (at..at + log2).enumerate() {
                let mask = 0x80 >> (bit % 8);
                if value >> (log2 - 1 - k) & 1 == 1 {
                    rbsp[bit / 8] |= mask;
                } else {
                    rbsp[bit / 8] &= !mask;
                }
            }
            let mut unit = vec![u[0]];
            unit.extend(escape(&rbsp));
            unit
        } else {
            u.to_vec()
        };
        match framing {
            Framing::ByteStream => out.extend_from_slice(&[0, 0, 0, 1]),
            Framing::Length(n) => {
                let len = (unit.len() as u64).to_be_bytes();
                out.extend_from_slice(len.get(8 - n..)?);
            }
        }
        out.extend(unit);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0x00, 0x1e];
    const PPS: &[u8] = &[0x68, 0xce, 0x38, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01];
    const SLICE: &[u8] = &[0x41, 0x9a, 0x00];

    fn annexb(units: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for u in units {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(u);
        }
        v
    }

    fn lengths(units: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for u in units {
            v.extend_from_slice(&(u.len() as u32).to_be_bytes());
            v.extend_from_slice(u);
        }
        v
    }

    #[test]
    fn head_units_stop_at_the_first_slice() {
        let au = annexb(&[SPS, PPS, IDR, SLICE]);
        assert_eq!(
            head_units(&au, Codec::H264, Framing::ByteStream),
            vec![SPS, PPS]
        );
        let au = lengths(&[&[0x09, 0xf0], SPS, PPS, IDR]);
        assert_eq!(
            head_units(&au, Codec::H264, Framing::Length(4)),
            vec![&[0x09, 0xf0][..], SPS, PPS]
        );
        // 3-byte start codes, and a 4-byte one whose zero ends a unit.
        let mut au = vec![0, 0, 1];
        au.extend_from_slice(SPS);
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(IDR);
        assert_eq!(head_units(&au, Codec::H264, Framing::ByteStream), vec![SPS]);
    }

    #[test]
    fn check_takes_access_units_and_refuses_random_bytes() {
        let l4 = Framing::Length(4);
        assert_eq!(check(&lengths(&[SPS, PPS, IDR]), Codec::H264, l4), Ok(()));
        assert_eq!(check(&lengths(&[SLICE]), Codec::H264, l4), Ok(()));
        assert_eq!(
            check(&annexb(&[SPS, PPS, IDR]), Codec::H264, Framing::ByteStream),
            Ok(())
        );
        // A length past the end, trailing bytes, an empty unit.
        let mut au = lengths(&[IDR]);
        au[3] += 1;
        assert!(
            check(&au, Codec::H264, l4)
                .unwrap_err()
                .contains("does not fit")
        );
        let mut au = lengths(&[IDR]);
        au.push(0);
        assert!(
            check(&au, Codec::H264, l4)
                .unwrap_err()
                .contains("trailing")
        );
        assert!(check(&lengths(&[&[]]), Codec::H264, l4).is_err());
        // Headers: the forbidden bit, undefined types, no picture.
        assert!(
            check(&lengths(&[&[0xe5, 1]]), Codec::H264, l4)
                .unwrap_err()
                .contains("forbidden")
        );
        assert!(
            check(&lengths(&[&[0x11, 1], IDR]), Codec::H264, l4)
                .unwrap_err()
                .contains("type 17")
        );
        // Unspecified types are the application's.
        assert_eq!(check(&lengths(&[&[0x18, 1], IDR]), Codec::H264, l4), Ok(()));
        assert_eq!(
            check(
                &lengths(&[&[0x7c, 0x01, 7], &[0x2a, 0x01, 7]]),
                Codec::H265,
                l4
            ),
            Ok(())
        );
        assert!(
            check(&lengths(&[SPS, PPS]), Codec::H264, l4)
                .unwrap_err()
                .contains("no picture")
        );
        // H.265: a CRA slice (type 21) and a VPS (32); a zero temporal id.
        assert_eq!(
            check(
                &lengths(&[&[0x40, 0x01, 7], &[0x2a, 0x01, 7]]),
                Codec::H265,
                l4
            ),
            Ok(())
        );
        assert!(check(&lengths(&[&[0x2a, 0x00, 7]]), Codec::H265, l4).is_err());
        assert!(check(&annexb(&[IDR])[4..], Codec::H264, Framing::ByteStream).is_err());
        // Random bytes (a fixed generator) are refused, all of them.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut refused = 0;
        for _ in 0..1000 {
            let data: Vec<u8> = (0..200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            refused += usize::from(check(&data, Codec::H264, l4).is_err());
        }
        assert_eq!(refused, 1000);
    }

    #[test]
    fn garbage_never_panics() {
        for data in [
            &[][..],
            &[0, 0, 1],
            &[0, 0, 0, 1],
            &[0xff; 7],
            &[0, 0, 0, 200, 0x67],
            &[0, 0, 1, 0x67, 0, 0],
        ] {
            for framing in [Framing::ByteStream, Framing::Length(4), Framing::Length(0)] {
                let _ = head_units(data, Codec::H264, framing);
                let _ = head_units(data, Codec::H265, framing);
            }
        }
    }

    #[test]
    fn keyframes_without_parameter_sets_get_the_last_ones() {
        for framing in [Framing::ByteStream, Framing::Length(4)] {
            let wrap = |u: &[&[u8]]| match framing {
                Framing::ByteStream => annexb(u),
                Framing::Length(_) => lengths(u),
            };
            let mut ps = ParameterSets::new(Codec::H264, framing);
            assert!(ps.observe(&wrap(&[SPS, PPS, IDR])));
            let bare = wrap(&[IDR]);
            assert!(!ps.observe(&bare));
            assert_eq!(ps.prepend(&bare), wrap(&[SPS, PPS, IDR]));
            // A new PPS alone replaces the old one.
            let pps2: &[u8] = &[0x68, 0xee];
            ps.observe(&wrap(&[pps2, IDR]));
            assert_eq!(ps.prepend(&bare), wrap(&[SPS, pps2, IDR]));
        }
    }

    /// Heads of real access units (NAL units cut after their first bytes,
    /// which is all the classification reads): libx264 with
    /// `-bf 3 -x264opts open-gop=1:b-pyramid=normal`, libx265 with
    /// `keyint=50:bframes=3:b-adapt=0` (CRA followed by RASL pictures).
    mod real {
        pub const H264_SPS: &[u8] = &[0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01];
        pub const H264_PPS: &[u8] = &[0x68, 0xef, 0x8f, 0xcb];
        pub const H264_AUD: &[u8] = &[0x09, 0xf0];
        pub const H264_SEI_RECOVERY: &[u8] = &[0x06, 0x06, 0x01, 0xc4, 0x80];
        pub const H264_IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x2f, 0xff, 0xcd, 0xf8, 0x1e, 0xe7];
        pub const H264_OPEN_I: &[u8] =
            &[0x41, 0x88, 0xcc, 0x80, 0xdf, 0xd6, 0x78, 0x1e, 0xff, 0xf4];
        pub const H264_P: &[u8] = &[0x41, 0x9a, 0x24, 0x18, 0x85, 0x7f, 0xbb, 0xbf, 0xc0, 0xa3];
        pub const H264_B: &[u8] = &[0x41, 0x9e, 0x42, 0x42, 0x17, 0xff, 0x17, 0x2f, 0x17, 0xe0];
        pub const H265_VPS: &[u8] = &[0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60];
        pub const H265_IDR_N_LP: &[u8] = &[0x28, 0x01, 0xaf, 0x1d, 0x20, 0xbc, 0x00, 0xa0];
        pub const H265_CRA: &[u8] = &[0x2a, 0x01, 0xac, 0xc8, 0x5a, 0x22, 0x27, 0x19];
        pub const H265_RASL: &[u8] = &[0x10, 0x01, 0xe6, 0x22, 0x2d, 0x49, 0xfd, 0xc6];
        pub const H265_TRAIL_R: &[u8] = &[0x02, 0x01, 0xd0, 0x11, 0x57, 0x84, 0x31, 0x8e];
        pub const H265_TRAIL_N: &[u8] = &[0x00, 0x01, 0xe0, 0x24, 0xbf, 0x86, 0x14, 0x90];
    }

    #[test]
    fn classifies_real_h264_access_units() {
        use real::*;
        for framing in [Framing::ByteStream, Framing::Length(4)] {
            let wrap = |u: &[&[u8]]| match framing {
                Framing::ByteStream => annexb(u),
                Framing::Length(_) => lengths(u),
            };
            let c = |u: &[&[u8]]| classify(&wrap(u), Codec::H264, framing);
            assert_eq!(c(&[H264_AUD, H264_SPS, H264_PPS, H264_IDR]), Access::Closed);
            assert_eq!(
                c(&[H264_AUD, H264_SPS, H264_PPS, H264_SEI_RECOVERY, H264_OPEN_I]),
                Access::Open
            );
            assert_eq!(c(&[H264_AUD, H264_OPEN_I]), Access::Open);
            assert_eq!(c(&[H264_AUD, H264_P]), Access::Inter);
            assert_eq!(c(&[H264_AUD, H264_B]), Access::Inter);
            // A P frame that a parser gave parameter sets (and a keyframe
            // flag) is still a P frame.
            assert_eq!(c(&[H264_SPS, H264_PPS, H264_P]), Access::Inter);
            // An I slice next to a P slice: not a place to start.
            assert_eq!(c(&[H264_OPEN_I, H264_P]), Access::Inter);
            assert_eq!(c(&[H264_SPS, H264_PPS]), Access::Unknown);
        }
        assert!(Access::Open.is_random_access() && Access::Closed.is_random_access());
        assert!(!Access::Inter.is_random_access() && !Access::Unknown.is_random_access());
    }

    #[test]
    fn classifies_real_h265_access_units() {
        use real::*;
        for framing in [Framing::ByteStream, Framing::Length(4)] {
            let wrap = |u: &[&[u8]]| match framing {
                Framing::ByteStream => annexb(u),
                Framing::Length(_) => lengths(u),
            };
            let c = |u: &[&[u8]]| classify(&wrap(u), Codec::H265, framing);
            assert_eq!(c(&[H265_VPS, H265_IDR_N_LP]), Access::Closed);
            assert_eq!(c(&[H265_VPS, H265_CRA]), Access::Open);
            assert_eq!(c(&[H265_RASL]), Access::SkippedLeading);
            assert_eq!(c(&[H265_TRAIL_R]), Access::Inter);
            assert_eq!(c(&[H265_TRAIL_N]), Access::Inter);
            assert_eq!(c(&[H265_VPS]), Access::Unknown);
        }
    }

    #[test]
    fn slice_headers_skip_emulation_prevention() {
        // first_mb_in_slice has 16 leading zero bits, which the encoder
        // had to write as 00 00 03: then "1", 16 value bits, and
        // slice_type "011" (2, I). A reader that kept the 03 would see a
        // different code.
        let unit = [0x01, 0x00, 0x00, 0x03, 0x80, 0x00, 0x30];
        assert_eq!(h264_slice_type(&unit), Some(2));
        for bad in [&[0x01][..], &[0x01, 0x00, 0x00, 0x03], &[0x01, 0x00]] {
            let _ = h264_slice_type(bad);
            let _ = classify(bad, Codec::H264, Framing::ByteStream);
        }
    }

    #[test]
    fn h265_types() {
        let vps: &[u8] = &[0x40, 0x01, 0x0c];
        let sps: &[u8] = &[0x42, 0x01, 0x01];
        let pps: &[u8] = &[0x44, 0x01, 0xc1];
        let cra: &[u8] = &[0x2a, 0x01, 0xaf];
        let mut ps = ParameterSets::new(Codec::H265, Framing::ByteStream);
        assert!(ps.observe(&annexb(&[vps, sps, pps, cra])));
        assert!(!ps.observe(&annexb(&[cra])));
        assert_eq!(ps.prepend(&annexb(&[cra])), annexb(&[vps, sps, pps, cra]));
    }

    /// An open-GOP I picture of libx264 gets `frame_num` 0 and keeps every
    /// other bit; parameter sets, SEI and framing stay as they are.
    #[test]
    fn h264_frame_num_zero_rewrites_only_frame_num() {
        use real::*;
        let (log2, separate) = h264_sps_frame_num(H264_SPS).unwrap();
        assert!(!separate);
        assert!((4..=16).contains(&log2));
        for framing in [Framing::ByteStream, Framing::Length(4)] {
            let au = match framing {
                Framing::ByteStream => annexb(&[H264_AUD, H264_SEI_RECOVERY, H264_OPEN_I]),
                Framing::Length(_) => lengths(&[H264_AUD, H264_SEI_RECOVERY, H264_OPEN_I]),
            };
            // The SPS comes from the stream (codec_data), not the unit.
            let out = h264_with_frame_num_zero(&au, framing, &[H264_SPS]).unwrap();
            let got = units(&out, framing);
            assert_eq!(got.len(), 3);
            assert_eq!(got[0], H264_AUD);
            assert_eq!(got[1], H264_SEI_RECOVERY);
            let (before, after) = (unescape(&H264_OPEN_I[1..]), unescape(&got[2][1..]));
            let mut r = Rbsp {
                data: &after,
                pos: 0,
            };
            assert_eq!((r.ue(), r.ue(), r.ue()), (Some(0), Some(7), Some(0)));
            let at = r.pos;
            assert_eq!(r.bits(log2), Some(0), "frame_num");
            let bit = |d: &[u8], i: usize| (d[i / 8] >> (7 - i % 8)) & 1;
            for i in (0..before.len() * 8).filter(|i| !(at..at + log2).contains(i)) {
                assert_eq!(bit(&before, i), bit(&after, i), "bit {i}");
            }
            assert_eq!(classify(&out, Codec::H264, framing), Access::Open);
        }
        // Without any SPS there is nothing to read the width from.
        assert!(
            h264_with_frame_num_zero(&annexb(&[H264_OPEN_I]), Framing::ByteStream, &[]).is_none()
        );
        // A run decoded from this picture counts from it: its frame_num
        // less the base, modulo MaxFrameNum; reading it back gives that.
        let au = lengths(&[H264_OPEN_I]);
        let f = Framing::Length(4);
        let n = h264_frame_num(&au, f, &[H264_SPS]).unwrap();
        let shifted = h264_with_frame_num_from(&au, f, &[H264_SPS], n).unwrap();
        assert_eq!(h264_frame_num(&shifted, f, &[H264_SPS]), Some(0));
        let max = 1u32 << log2;
        let wrapped = h264_with_frame_num_from(&au, f, &[H264_SPS], n + 3).unwrap();
        assert_eq!(h264_frame_num(&wrapped, f, &[H264_SPS]), Some(max - 3));
        let back = h264_with_frame_num_from(&wrapped, f, &[H264_SPS], max - n - 3).unwrap();
        assert_eq!(back, au, "every other bit kept");
        // Escaping round-trips, and a unit never ends in a zero byte.
        for raw in [&[0u8, 0, 0, 1, 0, 0, 2][..], &[1, 0, 0], &[0, 0, 3, 0, 0]] {
            assert_eq!(unescape(&escape(raw)), raw);
            assert_ne!(escape(raw).last(), Some(&0));
        }
    }

    #[test]
    fn reference_pictures() {
        let len = |units: &[&[u8]]| -> Vec<u8> {
            units
                .iter()
                .flat_map(|u| {
                    (u.len() as u32)
                        .to_be_bytes()
                        .into_iter()
                        .chain(u.iter().copied())
                })
                .collect()
        };
        let f = Framing::Length(4);
        // H.264: IDR (ref_idc 3), P (ref_idc 2), B (ref_idc 0), SEI only.
        assert_eq!(reference(&len(&[&[0x65, 0x88]]), Codec::H264, f), (true, 0));
        assert_eq!(
            reference(&len(&[&[0x06, 1], &[0x41, 0x9a]]), Codec::H264, f),
            (true, 0)
        );
        assert_eq!(
            reference(&len(&[&[0x06, 1], &[0x01, 0x9e]]), Codec::H264, f),
            (false, 0)
        );
        assert_eq!(reference(&len(&[&[0x06, 1]]), Codec::H264, f), (true, 0));
        // HEVC: TRAIL_R (1), TRAIL_N (0) at TemporalId 0 and 2, RASL_N (8),
        // CRA (21).
        assert_eq!(reference(&len(&[&[0x02, 0x01]]), Codec::H265, f), (true, 0));
        assert_eq!(
            reference(&len(&[&[0x00, 0x01]]), Codec::H265, f),
            (false, 0)
        );
        assert_eq!(
            reference(&len(&[&[0x00, 0x03]]), Codec::H265, f),
            (false, 2)
        );
        assert_eq!(
            reference(&len(&[&[0x10, 0x01]]), Codec::H265, f),
            (false, 0)
        );
        assert_eq!(reference(&len(&[&[0x2a, 0x01]]), Codec::H265, f), (true, 0));
    }
}
