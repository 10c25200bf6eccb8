// SPDX-License-Identifier: MPL-2.0
//! Just enough H.264/H.265 NAL parsing to decode a keyframe alone: find the
//! parameter sets (SPS, PPS, VPS) at the head of an access unit, and put the
//! last ones seen in front of a keyframe that lacks them (streams in
//! `byte-stream`, `avc3` or `hev1` format may carry them only now and then).

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

/// The NAL units of `data` up to (not including) the first VCL unit: the
/// head of an access unit, where parameter sets live. Stops early, so the
/// cost does not depend on the size of the picture. Malformed data ends the
/// walk; nothing here panics.
pub fn head_units(data: &[u8], codec: Codec, framing: Framing) -> Vec<&[u8]> {
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
                if unit.is_empty() {
                    continue;
                }
                if codec.is_vcl(codec.nal_type(unit[0])) {
                    break;
                }
                out.push(unit);
            }
        }
        Framing::Length(_) => {}
        Framing::ByteStream => {
            let mut start = match find_start_code(data, 0) {
                Some((_, s)) => s,
                None => return out,
            };
            while let Some(&header) = data.get(start) {
                if codec.is_vcl(codec.nal_type(header)) {
                    break;
                }
                match find_start_code(data, start) {
                    Some((end, next)) => {
                        out.push(trim_zeros(&data[start..end]));
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
}
