// SPDX-License-Identifier: MPL-2.0
//! SCTE-35 splice information: a parser of the `splice_info_section`
//! (ANSI/SCTE 35), the cue messages that mark ad breaks, programs, chapters
//! and other moments of a broadcast stream. The bytes start at `table_id`
//! (0xFC), as they travel in an MPEG-TS private section and as HLS carries
//! them (hex) in `EXT-X-DATERANGE`'s `SCTE35-OUT`, `SCTE35-IN` and
//! `SCTE35-CMD` attributes.
//!
//! [`SpliceInfo::parse`] checks the section's framing (table id, section
//! length, protocol version) and its CRC-32, then decodes:
//!
//! - the header: `pts_adjustment`, `cw_index`, `tier`;
//! - the command: `splice_null`, `splice_insert` (program or component
//!   mode, immediate or timed, with its break duration), `time_signal`,
//!   `bandwidth_reservation`; `splice_schedule`, `private_command` and
//!   reserved types are kept undecoded ([`SpliceCommand::Other`]); an
//!   encrypted section keeps only its clear header
//!   ([`SpliceCommand::Encrypted`]);
//! - the descriptor loop: every `segmentation_descriptor` (identifier
//!   `CUEI`, tag 2) is decoded ([`SegmentationDescriptor`]); the others are
//!   kept as bytes ([`OtherDescriptor`]).
//!
//! Times are 90 kHz ticks as in the section; [`SpliceInfo::splice_pts`]
//! applies `pts_adjustment` (modulo 2^33). Mapping a PTS to a pipeline's
//! running time is the demuxer's business, see `media::scte35`.
//!
//! Input is untrusted: every length is checked against the bytes present,
//! nothing panics, and errors ([`Scte35Error`]) say what is wrong and where.

use std::fmt;
use std::time::Duration;

/// `table_id` of a splice_info_section.
pub const TABLE_ID: u8 = 0xFC;

/// PTS and `pts_adjustment` are 33-bit values: arithmetic wraps at 2^33.
pub const PTS_MODULO: u64 = 1 << 33;

/// The identifier of SCTE-35's own splice descriptors: "CUEI".
pub const CUEI: u32 = 0x4355_4549;

/// Bytes of a section around its command and descriptors: `table_id`
/// through `splice_command_type` (14), `descriptor_loop_length` (2) and
/// `CRC_32` (4).
const MIN_SECTION: usize = 20;

/// splice_command_type values.
pub mod command_type {
    pub const SPLICE_NULL: u8 = 0x00;
    pub const SPLICE_SCHEDULE: u8 = 0x04;
    pub const SPLICE_INSERT: u8 = 0x05;
    pub const TIME_SIGNAL: u8 = 0x06;
    pub const BANDWIDTH_RESERVATION: u8 = 0x07;
    pub const PRIVATE_COMMAND: u8 = 0xFF;
}

/// splice_descriptor tags (with identifier `CUEI`).
pub mod descriptor_tag {
    pub const AVAIL: u8 = 0x00;
    pub const DTMF: u8 = 0x01;
    pub const SEGMENTATION: u8 = 0x02;
    pub const TIME: u8 = 0x03;
    pub const AUDIO: u8 = 0x04;
}

/// Why bytes are not a usable splice_info_section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scte35Error {
    /// Fewer bytes than the smallest section.
    TooShort { len: usize },
    /// The first byte is not 0xFC.
    NotSpliceInfo { table_id: u8 },
    /// `section_length` is below what any section needs.
    BadSectionLength { section_length: usize },
    /// `section_length` promises more bytes than were given.
    Incomplete { expected: usize, available: usize },
    /// The CRC-32 stored at the end does not match the bytes.
    Crc { stored: u32, computed: u32 },
    /// `protocol_version` other than 0.
    Protocol { version: u8 },
    /// A field runs past the end of the part of the section it belongs to.
    Truncated { what: &'static str },
    /// A length or value that contradicts the rest of the section.
    Invalid { what: &'static str },
}

impl fmt::Display for Scte35Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SCTE-35: ")?;
        match self {
            Scte35Error::TooShort { len } => write!(
                f,
                "{len} bytes, a splice_info_section has at least {MIN_SECTION}"
            ),
            Scte35Error::NotSpliceInfo { table_id } => write!(
                f,
                "table_id 0x{table_id:02X} is not a splice_info_section (0xFC)"
            ),
            Scte35Error::BadSectionLength { section_length } => write!(
                f,
                "section_length {section_length} is too small for a splice_info_section (at least {})",
                MIN_SECTION - 3
            ),
            Scte35Error::Incomplete {
                expected,
                available,
            } => write!(
                f,
                "section_length announces {expected} bytes but only {available} are present"
            ),
            Scte35Error::Crc { stored, computed } => write!(
                f,
                "CRC-32 mismatch: the section carries 0x{stored:08X}, its bytes give 0x{computed:08X} (corrupt section)"
            ),
            Scte35Error::Protocol { version } => write!(
                f,
                "protocol_version {version} is not supported (only 0 is defined)"
            ),
            Scte35Error::Truncated { what } => write!(f, "{what} is truncated"),
            Scte35Error::Invalid { what } => write!(f, "invalid {what}"),
        }
    }
}

impl std::error::Error for Scte35Error {}

/// A decoded splice_info_section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceInfo {
    /// 33-bit offset (90 kHz) to add to every splice time of the section.
    pub pts_adjustment: u64,
    /// Control word index (meaningful for encrypted sections only).
    pub cw_index: u8,
    /// 12-bit authorisation tier (0xFFF: none).
    pub tier: u16,
    pub command: SpliceCommand,
    /// The segmentation descriptors, in section order.
    pub descriptors: Vec<SegmentationDescriptor>,
    /// Every other splice descriptor, in section order.
    pub other_descriptors: Vec<OtherDescriptor>,
    /// The section's CRC-32 (checked).
    pub crc: u32,
    /// The section's bytes, from `table_id` through `CRC_32`.
    pub raw: Vec<u8>,
}

/// The splice command of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpliceCommand {
    /// `splice_null` (0x00): a heartbeat, or a carrier of descriptors.
    Null,
    /// `splice_insert` (0x05).
    Insert(SpliceInsert),
    /// `time_signal` (0x06): `pts` is the 33-bit `pts_time` (before
    /// `pts_adjustment`), `None` when `time_specified_flag` is 0.
    TimeSignal { pts: Option<u64> },
    /// `bandwidth_reservation` (0x07).
    BandwidthReservation,
    /// A command kept undecoded: `splice_schedule` (0x04),
    /// `private_command` (0xFF) or a reserved type; `data` is its bytes.
    Other { command_type: u8, data: Vec<u8> },
    /// `encrypted_packet` is set: the command and the descriptors are
    /// encrypted, only the header is known.
    Encrypted { algorithm: u8 },
}

/// A `splice_insert` command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpliceInsert {
    pub event_id: u32,
    /// `splice_event_cancel_indicator`: the event `event_id` announced
    /// earlier is withdrawn; no other field is present.
    pub cancel: bool,
    /// `out_of_network_indicator`: leaving the network feed (start of a
    /// break) when set, returning to it when clear.
    pub out_of_network: bool,
    /// `program_splice_flag`: the whole program splices at once; clear,
    /// each component has its own time ([`SpliceInsert::components`]).
    pub program_splice: bool,
    /// `splice_immediate_flag`: at the next opportunity, no time given.
    pub immediate: bool,
    /// The program's 33-bit `pts_time` (before `pts_adjustment`); `None`
    /// when immediate, in component mode, or `time_specified_flag` is 0.
    pub pts: Option<u64>,
    /// Component mode: each elementary stream's tag and `pts_time`.
    pub components: Vec<SpliceComponent>,
    pub break_duration: Option<BreakDuration>,
    pub unique_program_id: u16,
    pub avail_num: u8,
    pub avails_expected: u8,
}

/// One component of a component-mode `splice_insert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpliceComponent {
    pub tag: u8,
    /// 33-bit `pts_time`, `None` when immediate or not specified.
    pub pts: Option<u64>,
}

/// `break_duration()` of a `splice_insert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakDuration {
    /// The splicer returns to the network at the end of the break by itself.
    pub auto_return: bool,
    /// 33-bit duration in 90 kHz ticks.
    pub duration: u64,
}

/// A `segmentation_descriptor` (tag 2, identifier `CUEI`).
///
/// A cancelled one (`cancel`) carries only its event id; its other fields
/// are zero/empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentationDescriptor {
    pub event_id: u32,
    /// `segmentation_event_cancel_indicator`.
    pub cancel: bool,
    /// `segmentation_event_id_compliance_indicator` (SCTE 35 2020+).
    pub event_id_compliance: bool,
    /// `program_segmentation_flag`: the whole program; clear, only
    /// [`SegmentationDescriptor::components`].
    pub program_segmentation: bool,
    /// `delivery_not_restricted_flag` clear: the restrictions.
    pub delivery_restrictions: Option<DeliveryRestrictions>,
    /// Component mode: each component's tag and 33-bit `pts_offset`.
    pub components: Vec<(u8, u64)>,
    /// `segmentation_duration`: 40-bit, 90 kHz ticks.
    pub duration: Option<u64>,
    pub upid_type: u8,
    pub upid: Vec<u8>,
    pub type_id: u8,
    pub segment_num: u8,
    pub segments_expected: u8,
    /// `sub_segment_num` and `sub_segments_expected`, when the type has
    /// them ([`has_sub_segments`]) and the descriptor carries them (older
    /// encoders leave them out).
    pub sub_segment: Option<(u8, u8)>,
}

/// The delivery flags of a segmentation descriptor whose
/// `delivery_not_restricted_flag` is clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRestrictions {
    pub web_delivery_allowed: bool,
    pub no_regional_blackout: bool,
    pub archive_allowed: bool,
    /// 2 bits: 0, 1, 2 restrict groups 0 to 2; 3 none.
    pub device_restrictions: u8,
}

/// A splice descriptor that is not decoded: avail, DTMF, time, audio,
/// private ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherDescriptor {
    pub tag: u8,
    /// The 32-bit identifier (`CUEI` for SCTE-35's own), if present.
    pub identifier: Option<u32>,
    /// The bytes after the identifier.
    pub data: Vec<u8>,
}

impl SpliceInfo {
    /// Decodes a splice_info_section. `bytes` starts at `table_id`; bytes
    /// after the section (the rest of a TS packet's payload) are ignored.
    pub fn parse(bytes: &[u8]) -> Result<SpliceInfo, Scte35Error> {
        if bytes.len() < 3 {
            return Err(Scte35Error::TooShort { len: bytes.len() });
        }
        if bytes[0] != TABLE_ID {
            return Err(Scte35Error::NotSpliceInfo { table_id: bytes[0] });
        }
        let section_length = (usize::from(bytes[1] & 0x0F) << 8) | usize::from(bytes[2]);
        if section_length + 3 < MIN_SECTION {
            return Err(Scte35Error::BadSectionLength { section_length });
        }
        let total = section_length + 3;
        if bytes.len() < total {
            return Err(Scte35Error::Incomplete {
                expected: total,
                available: bytes.len(),
            });
        }
        let section = &bytes[..total];
        let (body, crc_bytes) = section.split_at(total - 4);
        let stored = u32::from_be_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let computed = crc32(body);
        if stored != computed {
            return Err(Scte35Error::Crc { stored, computed });
        }

        let mut r = Reader::new(&body[3..], "splice_info_section header");
        let version = r.u8()?;
        if version != 0 {
            return Err(Scte35Error::Protocol { version });
        }
        let b = r.u8()?;
        let encrypted = b & 0x80 != 0;
        let algorithm = (b >> 1) & 0x3F;
        let pts_adjustment = (u64::from(b & 0x01) << 32) | u64::from(r.u32()?);
        let cw_index = r.u8()?;
        let t = r.u24()?;
        let tier = (t >> 12) as u16;
        let command_length = (t & 0xFFF) as usize;

        let mut info = SpliceInfo {
            pts_adjustment,
            cw_index,
            tier,
            command: SpliceCommand::Null,
            descriptors: Vec::new(),
            other_descriptors: Vec::new(),
            crc: stored,
            raw: section.to_vec(),
        };
        if encrypted {
            info.command = SpliceCommand::Encrypted { algorithm };
            return Ok(info);
        }

        let command_type = r.u8()?;
        // What follows the command: descriptor_loop_length and descriptors
        // (alignment stuffing may follow them, up to the CRC).
        let rest = r.rest();
        let (command, after) = match parse_command(command_type, rest)? {
            // The commands liveclip decodes end where their syntax says. The
            // declared length normally agrees; a longer one (bytes a later
            // version of the standard may add) is skipped; a shorter one (an
            // encoder's mistake) and 0xFFF ("unspecified", an old
            // convention) give way to the syntax, as in libgstmpegts.
            Some((command, used)) => {
                let end = if command_length != 0xFFF
                    && command_length > used
                    && command_length <= rest.len()
                {
                    command_length
                } else {
                    used
                };
                (command, &rest[end..])
            }
            // The others are only as long as the length says.
            None => {
                if command_length == 0xFFF {
                    return Err(Scte35Error::Invalid {
                        what: "splice_command_length (unspecified, 0xFFF, for a command whose end cannot be found)",
                    });
                }
                if command_length > rest.len() {
                    return Err(Scte35Error::Invalid {
                        what: "splice_command_length (runs past the end of the section)",
                    });
                }
                let (data, after) = rest.split_at(command_length);
                let command = SpliceCommand::Other {
                    command_type,
                    data: data.to_vec(),
                };
                (command, after)
            }
        };
        info.command = command;

        let mut d = Reader::new(after, "descriptor_loop_length");
        let loop_length = usize::from(d.u16()?);
        let mut l = Reader::new(d.take(loop_length, "descriptor loop")?, "splice descriptor");
        while !l.is_empty() {
            let tag = l.u8()?;
            let len = usize::from(l.u8()?);
            let body = l.take(len, "splice descriptor")?;
            let mut b = Reader::new(body, "splice descriptor");
            let identifier = if body.len() >= 4 {
                Some(b.u32()?)
            } else {
                None
            };
            if tag == descriptor_tag::SEGMENTATION && identifier == Some(CUEI) {
                info.descriptors.push(parse_segmentation(b.rest())?);
            } else {
                info.other_descriptors.push(OtherDescriptor {
                    tag,
                    identifier,
                    data: b.rest().to_vec(),
                });
            }
        }
        Ok(info)
    }

    /// `splice_command_type`; `None` for an encrypted section (the type is
    /// encrypted too).
    pub fn command_type(&self) -> Option<u8> {
        Some(match &self.command {
            SpliceCommand::Null => command_type::SPLICE_NULL,
            SpliceCommand::Insert(_) => command_type::SPLICE_INSERT,
            SpliceCommand::TimeSignal { .. } => command_type::TIME_SIGNAL,
            SpliceCommand::BandwidthReservation => command_type::BANDWIDTH_RESERVATION,
            SpliceCommand::Other { command_type, .. } => *command_type,
            SpliceCommand::Encrypted { .. } => return None,
        })
    }

    /// The splice time in 90 kHz ticks with `pts_adjustment` applied
    /// (modulo 2^33), in the time base of the stream's PTS: a
    /// `splice_insert`'s program time (in component mode, the first
    /// component's that has one) or a `time_signal`'s time. `None`: the
    /// command has no time (immediate, unspecified, or a command without
    /// time).
    pub fn splice_pts(&self) -> Option<u64> {
        self.unadjusted_pts()
            .map(|pts| (pts + self.pts_adjustment) % PTS_MODULO)
    }

    fn unadjusted_pts(&self) -> Option<u64> {
        match &self.command {
            SpliceCommand::Insert(i) if !i.cancel => {
                i.pts.or_else(|| i.components.iter().find_map(|c| c.pts))
            }
            SpliceCommand::TimeSignal { pts } => *pts,
            _ => None,
        }
    }

    /// The segmentation descriptor that speaks for the section: the first
    /// one, not cancelled, whose type is a start or an end
    /// ([`segmentation_is_start`]); failing that, the first one.
    pub fn primary_segmentation(&self) -> Option<&SegmentationDescriptor> {
        self.descriptors
            .iter()
            .find(|d| !d.cancel && d.is_start().is_some())
            .or(self.descriptors.first())
    }

    /// Whether the section signals an *out* (`true`: the start of a break,
    /// a program, a chapter or another segment) or an *in* (`false`: its
    /// return or end).
    ///
    /// `splice_insert`: its `out_of_network_indicator` (`None` when it
    /// cancels). `time_signal` and `splice_null`: the type of the
    /// [primary](SpliceInfo::primary_segmentation) segmentation descriptor
    /// ([`segmentation_is_start`]). `None` otherwise.
    pub fn is_out(&self) -> Option<bool> {
        match &self.command {
            SpliceCommand::Insert(i) => (!i.cancel).then_some(i.out_of_network),
            SpliceCommand::TimeSignal { .. } | SpliceCommand::Null => self
                .primary_segmentation()
                .filter(|d| !d.cancel)
                .and_then(SegmentationDescriptor::is_start),
            _ => None,
        }
    }

    /// The event's id: `splice_event_id` of a `splice_insert`, else the
    /// `segmentation_event_id` of the primary segmentation descriptor.
    pub fn event_id(&self) -> Option<u32> {
        match &self.command {
            SpliceCommand::Insert(i) => Some(i.event_id),
            _ => self.primary_segmentation().map(|d| d.event_id),
        }
    }

    /// Whether the section withdraws an event announced earlier.
    pub fn is_cancel(&self) -> bool {
        match &self.command {
            SpliceCommand::Insert(i) => i.cancel,
            _ => self.primary_segmentation().is_some_and(|d| d.cancel),
        }
    }

    /// The announced length: a `splice_insert`'s break duration, else the
    /// primary segmentation descriptor's segmentation duration.
    pub fn duration(&self) -> Option<Duration> {
        let ticks = match &self.command {
            SpliceCommand::Insert(i) => i.break_duration.map(|b| b.duration),
            _ => self.primary_segmentation().and_then(|d| d.duration),
        }?;
        Some(ticks_to_duration(ticks))
    }

    /// The section as `0x` and uppercase hex digits, the form of
    /// `EXT-X-DATERANGE`'s `SCTE35-OUT`, `SCTE35-IN` and `SCTE35-CMD`.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(2 + 2 * self.raw.len());
        s.push_str("0x");
        for b in &self.raw {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0x0F)] as char);
        }
        s
    }

    /// The command's name as the standard spells it: `splice_null`,
    /// `splice_schedule`, `splice_insert`, `time_signal`,
    /// `bandwidth_reservation`, `private_command`; `reserved` for a
    /// reserved type, `encrypted` when it cannot be read.
    pub fn class(&self) -> &'static str {
        match self.command_type() {
            Some(command_type::SPLICE_NULL) => "splice_null",
            Some(command_type::SPLICE_SCHEDULE) => "splice_schedule",
            Some(command_type::SPLICE_INSERT) => "splice_insert",
            Some(command_type::TIME_SIGNAL) => "time_signal",
            Some(command_type::BANDWIDTH_RESERVATION) => "bandwidth_reservation",
            Some(command_type::PRIVATE_COMMAND) => "private_command",
            Some(_) => "reserved",
            None => "encrypted",
        }
    }
}

impl SegmentationDescriptor {
    /// Start (`true`) or end (`false`) per its type, see
    /// [`segmentation_is_start`].
    pub fn is_start(&self) -> Option<bool> {
        segmentation_is_start(self.type_id)
    }

    /// The type's name, see [`segmentation_type_name`].
    pub fn type_name(&self) -> &'static str {
        segmentation_type_name(self.type_id)
    }

    /// `segmentation_duration` as a duration.
    pub fn duration(&self) -> Option<Duration> {
        self.duration.map(ticks_to_duration)
    }
}

/// The name of a `segmentation_type_id` (SCTE 35 2023, table 23), or
/// `"Reserved"`.
pub fn segmentation_type_name(type_id: u8) -> &'static str {
    match type_id {
        0x00 => "Not Indicated",
        0x01 => "Content Identification",
        0x02 => "Call Ad Server",
        0x10 => "Program Start",
        0x11 => "Program End",
        0x12 => "Program Early Termination",
        0x13 => "Program Breakaway",
        0x14 => "Program Resumption",
        0x15 => "Program Runover Planned",
        0x16 => "Program Runover Unplanned",
        0x17 => "Program Overlap Start",
        0x18 => "Program Blackout Override",
        0x19 => "Program Start - In Progress",
        0x20 => "Chapter Start",
        0x21 => "Chapter End",
        0x22 => "Break Start",
        0x23 => "Break End",
        0x24 => "Opening Credit Start",
        0x25 => "Opening Credit End",
        0x26 => "Closing Credit Start",
        0x27 => "Closing Credit End",
        0x30 => "Provider Advertisement Start",
        0x31 => "Provider Advertisement End",
        0x32 => "Distributor Advertisement Start",
        0x33 => "Distributor Advertisement End",
        0x34 => "Provider Placement Opportunity Start",
        0x35 => "Provider Placement Opportunity End",
        0x36 => "Distributor Placement Opportunity Start",
        0x37 => "Distributor Placement Opportunity End",
        0x38 => "Provider Overlay Placement Opportunity Start",
        0x39 => "Provider Overlay Placement Opportunity End",
        0x3A => "Distributor Overlay Placement Opportunity Start",
        0x3B => "Distributor Overlay Placement Opportunity End",
        0x3C => "Provider Promo Start",
        0x3D => "Provider Promo End",
        0x3E => "Distributor Promo Start",
        0x3F => "Distributor Promo End",
        0x40 => "Unscheduled Event Start",
        0x41 => "Unscheduled Event End",
        0x42 => "Alternate Content Opportunity Start",
        0x43 => "Alternate Content Opportunity End",
        0x44 => "Provider Ad Block Start",
        0x45 => "Provider Ad Block End",
        0x46 => "Distributor Ad Block Start",
        0x47 => "Distributor Ad Block End",
        0x50 => "Network Start",
        0x51 => "Network End",
        _ => "Reserved",
    }
}

/// Whether a `segmentation_type_id` starts something (`true`: an *out*)
/// or ends it (`false`: an *in*).
///
/// Starts: Program Start (0x10), Program Breakaway (0x13, the program is
/// left), Program Overlap Start (0x17), Program Start - In Progress (0x19),
/// and the even types of 0x20-0x27, 0x30-0x47 and 0x50-0x51 (chapters,
/// breaks, credits, advertisements, placement opportunities, overlays,
/// promos, unscheduled events, alternate content, ad blocks, network).
/// Ends: Program End (0x11), Program Early Termination (0x12), Program
/// Resumption (0x14, back from a breakaway) and the odd types of those
/// ranges. `None`: Not Indicated, Content Identification, Call Ad Server,
/// the runovers (0x15, 0x16, which move an end), Program Blackout Override
/// (0x18) and reserved values.
pub fn segmentation_is_start(type_id: u8) -> Option<bool> {
    match type_id {
        0x10 | 0x13 | 0x17 | 0x19 => Some(true),
        0x11 | 0x12 | 0x14 => Some(false),
        0x20..=0x27 | 0x30..=0x47 | 0x50..=0x51 => Some(type_id.is_multiple_of(2)),
        _ => None,
    }
}

/// The `segmentation_type_id`s whose descriptors may carry
/// `sub_segment_num` and `sub_segments_expected`.
pub fn has_sub_segments(type_id: u8) -> bool {
    matches!(
        type_id,
        0x30 | 0x32 | 0x34 | 0x36 | 0x38 | 0x3A | 0x44 | 0x46
    )
}

/// 90 kHz ticks as a duration (exact to the nanosecond, rounded down).
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos((u128::from(ticks) * 100_000 / 9) as u64)
}

/// The MPEG-2 CRC-32 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no
/// reflection, no final xor) of the section syntax.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from(((crc >> 24) as u8) ^ b)];
    }
    crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes a command of a type liveclip knows from the bytes that follow
/// `splice_command_type` (to the end of the section): the command and the
/// bytes it used. `None` for the other types.
fn parse_command(
    command_type: u8,
    bytes: &[u8],
) -> Result<Option<(SpliceCommand, usize)>, Scte35Error> {
    use command_type::*;
    let mut r = Reader::new(bytes, "splice command");
    let command = match command_type {
        SPLICE_NULL => SpliceCommand::Null,
        BANDWIDTH_RESERVATION => SpliceCommand::BandwidthReservation,
        SPLICE_INSERT => {
            r.what = "splice_insert";
            SpliceCommand::Insert(parse_insert(&mut r)?)
        }
        TIME_SIGNAL => {
            r.what = "time_signal";
            SpliceCommand::TimeSignal {
                pts: splice_time(&mut r)?,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some((command, bytes.len() - r.remaining())))
}

fn parse_insert(r: &mut Reader<'_>) -> Result<SpliceInsert, Scte35Error> {
    let mut i = SpliceInsert {
        event_id: r.u32()?,
        cancel: r.u8()? & 0x80 != 0,
        ..SpliceInsert::default()
    };
    if i.cancel {
        return Ok(i);
    }
    let flags = r.u8()?;
    i.out_of_network = flags & 0x80 != 0;
    i.program_splice = flags & 0x40 != 0;
    let has_duration = flags & 0x20 != 0;
    i.immediate = flags & 0x10 != 0;
    if i.program_splice {
        if !i.immediate {
            i.pts = splice_time(r)?;
        }
    } else {
        let count = r.u8()?;
        for _ in 0..count {
            let tag = r.u8()?;
            let pts = if i.immediate { None } else { splice_time(r)? };
            i.components.push(SpliceComponent { tag, pts });
        }
    }
    if has_duration {
        let (flag, duration) = r.flag_u33()?;
        i.break_duration = Some(BreakDuration {
            auto_return: flag,
            duration,
        });
    }
    i.unique_program_id = r.u16()?;
    i.avail_num = r.u8()?;
    i.avails_expected = r.u8()?;
    Ok(i)
}

/// `splice_time()`: a flag, then 33 bits when it is set.
fn splice_time(r: &mut Reader<'_>) -> Result<Option<u64>, Scte35Error> {
    if r.peek()? & 0x80 == 0 {
        r.u8()?;
        return Ok(None);
    }
    Ok(Some(r.flag_u33()?.1))
}

/// A segmentation descriptor's bytes after its identifier.
fn parse_segmentation(bytes: &[u8]) -> Result<SegmentationDescriptor, Scte35Error> {
    let mut r = Reader::new(bytes, "segmentation_descriptor");
    let event_id = r.u32()?;
    let b = r.u8()?;
    let mut d = SegmentationDescriptor {
        event_id,
        cancel: b & 0x80 != 0,
        event_id_compliance: b & 0x40 != 0,
        ..SegmentationDescriptor::default()
    };
    if d.cancel {
        return Ok(d);
    }
    let flags = r.u8()?;
    d.program_segmentation = flags & 0x80 != 0;
    let has_duration = flags & 0x40 != 0;
    if flags & 0x20 == 0 {
        d.delivery_restrictions = Some(DeliveryRestrictions {
            web_delivery_allowed: flags & 0x10 != 0,
            no_regional_blackout: flags & 0x08 != 0,
            archive_allowed: flags & 0x04 != 0,
            device_restrictions: flags & 0x03,
        });
    }
    if !d.program_segmentation {
        let count = r.u8()?;
        for _ in 0..count {
            let tag = r.u8()?;
            let (_, offset) = r.flag_u33()?;
            d.components.push((tag, offset));
        }
    }
    if has_duration {
        let hi = u64::from(r.u8()?);
        d.duration = Some((hi << 32) | u64::from(r.u32()?));
    }
    d.upid_type = r.u8()?;
    let upid_len = usize::from(r.u8()?);
    d.upid = r.take(upid_len, "segmentation_upid")?.to_vec();
    d.type_id = r.u8()?;
    d.segment_num = r.u8()?;
    d.segments_expected = r.u8()?;
    if has_sub_segments(d.type_id) && r.remaining() >= 2 {
        d.sub_segment = Some((r.u8()?, r.u8()?));
    }
    Ok(d)
}

/// A bounds-checked big-endian reader over one part of a section; `what`
/// names the part in errors.
struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, what }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Scte35Error> {
        if n > self.data.len() {
            return Err(Scte35Error::Truncated { what });
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Scte35Error> {
        let what = self.what;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn peek(&self) -> Result<u8, Scte35Error> {
        self.data
            .first()
            .copied()
            .ok_or(Scte35Error::Truncated { what: self.what })
    }

    fn u8(&mut self) -> Result<u8, Scte35Error> {
        Ok(self.bytes::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Scte35Error> {
        Ok(u16::from_be_bytes(self.bytes()?))
    }

    fn u24(&mut self) -> Result<u32, Scte35Error> {
        let [a, b, c] = self.bytes()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    fn u32(&mut self) -> Result<u32, Scte35Error> {
        Ok(u32::from_be_bytes(self.bytes()?))
    }

    /// A flag (top bit), 6 reserved bits and a 33-bit value.
    fn flag_u33(&mut self) -> Result<(bool, u64), Scte35Error> {
        let [a, b, c, d, e] = self.bytes()?;
        let v = (u64::from(a & 0x01) << 32) | u64::from(u32::from_be_bytes([b, c, d, e]));
        Ok((a & 0x80 != 0, v))
    }

    fn remaining(&self) -> usize {
        self.data.len()
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- A small section builder (computes lengths and the CRC) ----

    fn section(
        pts_adjustment: u64,
        command_type: u8,
        command: &[u8],
        descriptors: &[u8],
    ) -> Vec<u8> {
        let mut s = vec![TABLE_ID, 0, 0, 0];
        s.push(((pts_adjustment >> 32) & 1) as u8);
        s.extend_from_slice(&(pts_adjustment as u32).to_be_bytes());
        s.push(0xFF); // cw_index
        let t = (0xFFFu32 << 12) | command.len() as u32;
        s.extend_from_slice(&t.to_be_bytes()[1..]);
        s.push(command_type);
        s.extend_from_slice(command);
        s.extend_from_slice(&(descriptors.len() as u16).to_be_bytes());
        s.extend_from_slice(descriptors);
        sign(&mut s);
        s
    }

    /// Sets section_length (bytes present + CRC) and appends the CRC.
    fn sign(s: &mut Vec<u8>) {
        let len = s.len() + 4 - 3;
        s[1] = 0x30 | ((len >> 8) as u8 & 0x0F);
        s[2] = len as u8;
        let crc = crc32(s);
        s.extend_from_slice(&crc.to_be_bytes());
    }

    fn time(pts: Option<u64>) -> Vec<u8> {
        match pts {
            Some(p) => {
                let mut v = vec![0xFE | ((p >> 32) & 1) as u8];
                v.extend_from_slice(&(p as u32).to_be_bytes());
                v
            }
            None => vec![0x7F],
        }
    }

    struct Insert {
        id: u32,
        out: bool,
        pts: Option<u64>,
        duration: Option<(bool, u64)>,
        program: u16,
        avail: (u8, u8),
    }

    fn insert(i: &Insert) -> Vec<u8> {
        let mut v = i.id.to_be_bytes().to_vec();
        v.push(0x7F);
        let immediate = i.pts.is_none();
        v.push(
            (u8::from(i.out) << 7)
                | 0x40
                | (u8::from(i.duration.is_some()) << 5)
                | (u8::from(immediate) << 4)
                | 0x0F,
        );
        if !immediate {
            v.extend(time(i.pts));
        }
        if let Some((auto, d)) = i.duration {
            v.push((u8::from(auto) << 7) | 0x7E | ((d >> 32) & 1) as u8);
            v.extend_from_slice(&(d as u32).to_be_bytes());
        }
        v.extend_from_slice(&i.program.to_be_bytes());
        v.push(i.avail.0);
        v.push(i.avail.1);
        v
    }

    fn segmentation(
        id: u32,
        type_id: u8,
        duration: Option<u64>,
        upid: (u8, &[u8]),
        num: (u8, u8),
        sub: Option<(u8, u8)>,
    ) -> Vec<u8> {
        let mut body = CUEI.to_be_bytes().to_vec();
        body.extend_from_slice(&id.to_be_bytes());
        body.push(0x7F);
        // program segmentation, duration flag, delivery not restricted.
        body.push(0x80 | (u8::from(duration.is_some()) << 6) | 0x20 | 0x1F);
        if let Some(d) = duration {
            body.push((d >> 32) as u8);
            body.extend_from_slice(&(d as u32).to_be_bytes());
        }
        body.push(upid.0);
        body.push(upid.1.len() as u8);
        body.extend_from_slice(upid.1);
        body.push(type_id);
        body.push(num.0);
        body.push(num.1);
        if let Some((a, b)) = sub {
            body.push(a);
            body.push(b);
        }
        let mut v = vec![descriptor_tag::SEGMENTATION, body.len() as u8];
        v.extend(body);
        v
    }

    fn out_section() -> Vec<u8> {
        section(
            0,
            command_type::SPLICE_INSERT,
            &insert(&Insert {
                id: 1001,
                out: true,
                pts: Some(360_000),
                duration: Some((true, 360_000)),
                program: 7,
                avail: (1, 2),
            }),
            &[],
        )
    }

    fn time_signal_section() -> Vec<u8> {
        section(
            90_000,
            command_type::TIME_SIGNAL,
            &time(Some(810_000)),
            &segmentation(
                0xCAFE,
                0x34,
                Some(180_000),
                (0x09, b"SIGNAL:abc"),
                (1, 3),
                Some((2, 4)),
            ),
        )
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        let s = s.trim_start_matches("0x");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // ---- Hand-built sections ----

    #[test]
    fn crc_of_the_standard_check_string() {
        // CRC-32/MPEG-2 of "123456789".
        assert_eq!(crc32(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn splice_insert_out() {
        let s = out_section();
        let info = SpliceInfo::parse(&s).unwrap();
        let SpliceCommand::Insert(i) = &info.command else {
            panic!("{:?}", info.command)
        };
        assert_eq!(i.event_id, 1001);
        assert!(!i.cancel && i.out_of_network && i.program_splice && !i.immediate);
        assert_eq!(i.pts, Some(360_000));
        assert_eq!(
            i.break_duration,
            Some(BreakDuration {
                auto_return: true,
                duration: 360_000
            })
        );
        assert_eq!(
            (i.unique_program_id, i.avail_num, i.avails_expected),
            (7, 1, 2)
        );
        assert_eq!(info.class(), "splice_insert");
        assert_eq!(info.splice_pts(), Some(360_000));
        assert_eq!(info.is_out(), Some(true));
        assert_eq!(info.event_id(), Some(1001));
        assert_eq!(info.duration(), Some(Duration::from_secs(4)));
        assert_eq!(info.tier, 0xFFF);
        assert_eq!(info.raw, s);
        assert!(info.hex().starts_with("0xFC30"));
        assert_eq!(hex_bytes(&info.hex()), s);
    }

    #[test]
    fn splice_insert_in_immediate_and_cancel() {
        let s = section(
            0,
            command_type::SPLICE_INSERT,
            &insert(&Insert {
                id: 1001,
                out: false,
                pts: None,
                duration: None,
                program: 0,
                avail: (0, 0),
            }),
            &[],
        );
        let info = SpliceInfo::parse(&s).unwrap();
        let SpliceCommand::Insert(i) = &info.command else {
            panic!()
        };
        assert!(i.immediate && !i.out_of_network);
        assert_eq!(info.splice_pts(), None);
        assert_eq!(info.is_out(), Some(false));
        assert_eq!(info.duration(), None);

        let mut cancel = 77u32.to_be_bytes().to_vec();
        cancel.push(0xFF);
        let info = SpliceInfo::parse(&section(0, 5, &cancel, &[])).unwrap();
        assert!(info.is_cancel());
        assert_eq!(info.is_out(), None);
        assert_eq!(info.event_id(), Some(77));
        assert_eq!(info.splice_pts(), None);
    }

    #[test]
    fn component_splice_uses_the_first_timed_component() {
        let mut c = 5u32.to_be_bytes().to_vec();
        c.push(0x7F);
        c.push(0x80 | 0x0F); // out, component mode, no duration, not immediate
        c.push(2);
        c.push(0x01);
        c.extend(time(None));
        c.push(0x02);
        c.extend(time(Some(1234)));
        c.extend_from_slice(&[0, 0, 0, 0]);
        let info = SpliceInfo::parse(&section(10, 5, &c, &[])).unwrap();
        let SpliceCommand::Insert(i) = &info.command else {
            panic!()
        };
        assert!(!i.program_splice);
        assert_eq!(
            i.components,
            vec![
                SpliceComponent { tag: 1, pts: None },
                SpliceComponent {
                    tag: 2,
                    pts: Some(1234)
                }
            ]
        );
        assert_eq!(info.splice_pts(), Some(1244));
    }

    #[test]
    fn time_signal_with_segmentation() {
        let info = SpliceInfo::parse(&time_signal_section()).unwrap();
        assert_eq!(
            info.command,
            SpliceCommand::TimeSignal { pts: Some(810_000) }
        );
        assert_eq!(info.pts_adjustment, 90_000);
        assert_eq!(info.splice_pts(), Some(900_000));
        assert_eq!(info.class(), "time_signal");
        let d = &info.descriptors[0];
        assert_eq!(d.event_id, 0xCAFE);
        assert_eq!(d.type_id, 0x34);
        assert_eq!(d.type_name(), "Provider Placement Opportunity Start");
        assert_eq!(d.duration, Some(180_000));
        assert_eq!((d.upid_type, d.upid.as_slice()), (0x09, &b"SIGNAL:abc"[..]));
        assert_eq!((d.segment_num, d.segments_expected), (1, 3));
        assert_eq!(d.sub_segment, Some((2, 4)));
        assert!(d.program_segmentation && d.delivery_restrictions.is_none());
        assert_eq!(info.is_out(), Some(true));
        assert_eq!(info.event_id(), Some(0xCAFE));
        assert_eq!(info.duration(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn pts_adjustment_wraps_at_33_bits() {
        let s = section(
            PTS_MODULO - 100,
            command_type::TIME_SIGNAL,
            &time(Some(PTS_MODULO - 1)),
            &[],
        );
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.pts_adjustment, PTS_MODULO - 100);
        assert_eq!(info.splice_pts(), Some(PTS_MODULO - 101));
    }

    #[test]
    fn null_bandwidth_private_and_other_descriptors() {
        let info = SpliceInfo::parse(&section(0, 0, &[], &[])).unwrap();
        assert_eq!(info.command, SpliceCommand::Null);
        assert_eq!(
            (info.class(), info.is_out(), info.event_id()),
            ("splice_null", None, None)
        );
        let info = SpliceInfo::parse(&section(0, 7, &[], &[])).unwrap();
        assert_eq!(info.class(), "bandwidth_reservation");
        let avail = [0x00, 0x08, b'C', b'U', b'E', b'I', 0, 0, 1, 0x35];
        let info = SpliceInfo::parse(&section(0, 0xFF, b"ABCDxyz", &avail)).unwrap();
        assert_eq!(
            info.command,
            SpliceCommand::Other {
                command_type: 0xFF,
                data: b"ABCDxyz".to_vec()
            }
        );
        assert_eq!(info.class(), "private_command");
        assert_eq!(
            info.other_descriptors,
            vec![OtherDescriptor {
                tag: 0,
                identifier: Some(CUEI),
                data: vec![0, 0, 1, 0x35]
            }]
        );
        assert!(info.descriptors.is_empty());
    }

    #[test]
    fn segmentation_end_types_and_cancel() {
        for (type_id, out) in [
            (0x10, Some(true)),
            (0x11, Some(false)),
            (0x22, Some(true)),
            (0x23, Some(false)),
            (0x35, Some(false)),
            (0x42, Some(true)),
            (0x47, Some(false)),
            (0x50, Some(true)),
            (0x01, None),
            (0x18, None),
            (0x60, None),
        ] {
            let s = section(
                0,
                6,
                &time(Some(1)),
                &segmentation(9, type_id, None, (0, &[]), (0, 0), None),
            );
            assert_eq!(
                SpliceInfo::parse(&s).unwrap().is_out(),
                out,
                "type 0x{type_id:02X}"
            );
        }
        // A cancelled descriptor: id only, no direction.
        let cancel = [0x02, 0x09, b'C', b'U', b'E', b'I', 0, 0, 0, 9, 0xFF];
        let info = SpliceInfo::parse(&section(0, 6, &time(None), &cancel)).unwrap();
        assert!(info.descriptors[0].cancel && info.is_cancel());
        assert_eq!(
            (info.is_out(), info.event_id(), info.splice_pts()),
            (None, Some(9), None)
        );
        // A start after an unclassified one speaks for the section.
        let mut two = segmentation(1, 0x01, None, (0, &[]), (0, 0), None);
        two.extend(segmentation(2, 0x23, None, (0, &[]), (0, 0), None));
        let info = SpliceInfo::parse(&section(0, 6, &time(Some(1)), &two)).unwrap();
        assert_eq!((info.is_out(), info.event_id()), (Some(false), Some(2)));
    }

    #[test]
    fn unspecified_command_length() {
        let mut s = time_signal_section();
        s.truncate(s.len() - 4);
        s[11] |= 0x0F;
        s[12] = 0xFF;
        sign(&mut s);
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.splice_pts(), Some(900_000));
        assert_eq!(info.descriptors.len(), 1);
        // A length of 0 for a time_signal: its syntax decides.
        let mut z = time_signal_section();
        z.truncate(z.len() - 4);
        z[11] &= 0xF0;
        z[12] = 0;
        sign(&mut z);
        assert_eq!(SpliceInfo::parse(&z).unwrap().descriptors.len(), 1);
        // A longer length than the syntax: the extra bytes are skipped.
        let mut command = time(Some(5));
        command.extend_from_slice(&[0xAB, 0xCD]);
        let info = SpliceInfo::parse(&section(0, 6, &command, &[])).unwrap();
        assert_eq!(info.splice_pts(), Some(5));
        // A private command of unspecified length cannot be delimited.
        let mut p = section(0, 0xFF, b"ABCD", &[]);
        p.truncate(p.len() - 4);
        p[11] |= 0x0F;
        p[12] = 0xFF;
        sign(&mut p);
        assert!(matches!(
            SpliceInfo::parse(&p),
            Err(Scte35Error::Invalid { .. })
        ));
    }

    #[test]
    fn trailing_bytes_after_the_section_are_ignored() {
        let mut s = out_section();
        let n = s.len();
        s.extend_from_slice(&[0xFF; 20]);
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.raw.len(), n);
    }

    #[test]
    fn encrypted_keeps_the_header() {
        let mut s = out_section();
        s.truncate(s.len() - 4);
        s[4] |= 0x80 | (2 << 1);
        sign(&mut s);
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.command, SpliceCommand::Encrypted { algorithm: 2 });
        assert_eq!(
            (info.class(), info.splice_pts(), info.is_out()),
            ("encrypted", None, None)
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let mut s = out_section();
        let last = s.len() - 1;
        s[last] ^= 0x01;
        let e = SpliceInfo::parse(&s).unwrap_err();
        assert!(matches!(e, Scte35Error::Crc { .. }));
        assert!(e.to_string().contains("CRC-32 mismatch"), "{e}");

        let s = out_section();
        let e = SpliceInfo::parse(&s[..s.len() - 1]).unwrap_err();
        assert_eq!(
            e,
            Scte35Error::Incomplete {
                expected: s.len(),
                available: s.len() - 1
            }
        );
        assert!(e.to_string().contains("only"), "{e}");

        let e = SpliceInfo::parse(&[0x00, 0x30, 0x11]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SCTE-35: table_id 0x00 is not a splice_info_section (0xFC)"
        );

        let mut v = out_section();
        v.truncate(v.len() - 4);
        v[3] = 1;
        sign(&mut v);
        assert_eq!(
            SpliceInfo::parse(&v).unwrap_err(),
            Scte35Error::Protocol { version: 1 }
        );

        // A command shorter than its syntax.
        let i = insert(&Insert {
            id: 1,
            out: true,
            pts: Some(5),
            duration: Some((false, 5)),
            program: 0,
            avail: (0, 0),
        });
        let s = section(0, 5, &i[..i.len() - 3], &[]);
        let e = SpliceInfo::parse(&s).unwrap_err();
        assert_eq!(
            e,
            Scte35Error::Truncated {
                what: "splice_insert"
            }
        );
        assert_eq!(e.to_string(), "SCTE-35: splice_insert is truncated");

        // A descriptor longer than the loop.
        let s = section(0, 0, &[], &[0x02, 0x30, b'C', b'U', b'E', b'I']);
        assert_eq!(
            SpliceInfo::parse(&s).unwrap_err(),
            Scte35Error::Truncated {
                what: "splice descriptor"
            }
        );
    }

    // ---- Published examples (SCTE 35, "Sample SCTE 35 Messages") ----

    #[test]
    fn sample_time_signal_placement_opportunity_start() {
        let s = hex_bytes(
            "FC3034000000000000FFFFF00506FE72BD0050001E021C435545494800008E7FCF0001A599B00808000000002CA0A18A3402009AC9D17E",
        );
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.pts_adjustment, 0);
        assert_eq!(info.cw_index, 0xFF);
        assert_eq!(info.tier, 0xFFF);
        assert_eq!(
            info.command,
            SpliceCommand::TimeSignal {
                pts: Some(0x72BD_0050)
            }
        );
        assert_eq!(info.splice_pts(), Some(1_924_989_008)); // 21388.766756 s
        assert_eq!(info.crc, 0x9AC9_D17E);
        assert_eq!(info.descriptors.len(), 1);
        let d = &info.descriptors[0];
        assert_eq!(d.event_id, 0x4800_008E);
        assert!(!d.cancel && d.program_segmentation);
        assert_eq!(
            d.delivery_restrictions,
            Some(DeliveryRestrictions {
                web_delivery_allowed: false,
                no_regional_blackout: true,
                archive_allowed: true,
                device_restrictions: 3
            })
        );
        assert_eq!(d.duration, Some(0x01A5_99B0)); // 307.0 s
        assert_eq!(d.duration(), Some(Duration::from_secs(307)));
        assert_eq!(d.upid_type, 0x08);
        assert_eq!(d.upid, hex_bytes("000000002CA0A18A"));
        assert_eq!(d.type_id, 0x34);
        assert_eq!((d.segment_num, d.segments_expected), (2, 0));
        // This sample predates sub-segments: none carried.
        assert_eq!(d.sub_segment, None);
        assert_eq!(info.is_out(), Some(true));
        assert_eq!(info.event_id(), Some(0x4800_008E));
        assert_eq!(
            info.hex(),
            format!(
                "0x{}",
                "FC3034000000000000FFFFF00506FE72BD0050001E021C435545494800008E7FCF0001A599B00808000000002CA0A18A3402009AC9D17E"
            )
        );
    }

    #[test]
    fn sample_splice_insert() {
        let s = hex_bytes(
            "FC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF500000000000A0008435545490000013562DBA30A",
        );
        let info = SpliceInfo::parse(&s).unwrap();
        let SpliceCommand::Insert(i) = &info.command else {
            panic!("{:?}", info.command)
        };
        assert_eq!(i.event_id, 0x4800_008F);
        assert!(!i.cancel && i.out_of_network && i.program_splice && !i.immediate);
        assert_eq!(i.pts, Some(0x7369_C02E)); // 21514.559089 s
        assert_eq!(
            i.break_duration,
            Some(BreakDuration {
                auto_return: true,
                duration: 0x0052_CCF5 // 60.293567 s
            })
        );
        assert_eq!(
            (i.unique_program_id, i.avail_num, i.avails_expected),
            (0, 0, 0)
        );
        assert_eq!(info.duration(), Some(Duration::from_nanos(60_293_566_666)));
        // An avail_descriptor, provider_avail_id 0x135.
        assert_eq!(
            info.other_descriptors,
            vec![OtherDescriptor {
                tag: descriptor_tag::AVAIL,
                identifier: Some(CUEI),
                data: vec![0, 0, 1, 0x35]
            }]
        );
        assert_eq!(info.is_out(), Some(true));
    }

    #[test]
    fn sample_time_signal_program_end_and_start() {
        let s = hex_bytes(
            "FC3048000000000000FFFFF00506FE7A4D88B60032021743554549480000187F9F0808000000002CCBC344110000021743554549480000197F9F0808000000002CA4DBA01000009972E343",
        );
        let info = SpliceInfo::parse(&s).unwrap();
        assert_eq!(info.splice_pts(), Some(0x7A4D_88B6));
        let types: Vec<_> = info
            .descriptors
            .iter()
            .map(|d| (d.event_id, d.type_id))
            .collect();
        assert_eq!(types, vec![(0x4800_0018, 0x11), (0x4800_0019, 0x10)]);
        assert!(info.descriptors.iter().all(|d| d.duration.is_none()));
        // The first descriptor (Program End) speaks for the section.
        assert_eq!(info.is_out(), Some(false));
    }

    // ---- Robustness ----

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u8
        }
    }

    fn valid_sections() -> Vec<Vec<u8>> {
        vec![
            out_section(),
            time_signal_section(),
            hex_bytes(
                "FC3034000000000000FFFFF00506FE72BD0050001E021C435545494800008E7FCF0001A599B00808000000002CA0A18A3402009AC9D17E",
            ),
            hex_bytes(
                "FC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF500000000000A0008435545490000013562DBA30A",
            ),
        ]
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        for s in valid_sections() {
            for n in 0..s.len() {
                assert!(SpliceInfo::parse(&s[..n]).is_err(), "{n} bytes of {s:02X?}");
            }
            // Truncated *and re-signed*: the inner parsers see short data.
            for n in 3..s.len() - 4 {
                let mut t = s[..n].to_vec();
                sign(&mut t);
                let _ = SpliceInfo::parse(&t);
            }
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = Lcg(0x005C_7E35);
        for _ in 0..20_000 {
            let n = usize::from(rng.next()) % 64;
            let mut v: Vec<u8> = (0..n).map(|_| rng.next()).collect();
            let _ = SpliceInfo::parse(&v);
            if v.len() > 3 {
                v[0] = TABLE_ID;
                let _ = SpliceInfo::parse(&v);
            }
        }
        // Valid sections with random bytes changed and the CRC made right
        // again, so that parsing goes past the CRC check.
        for s in valid_sections() {
            for _ in 0..5_000 {
                let mut m = s[..s.len() - 4].to_vec();
                for _ in 0..1 + rng.next() % 4 {
                    let at = 3 + usize::from(rng.next()) % (m.len() - 3);
                    m[at] = rng.next();
                }
                sign(&mut m);
                if let Ok(info) = SpliceInfo::parse(&m) {
                    let _ = (
                        info.splice_pts(),
                        info.is_out(),
                        info.duration(),
                        info.hex(),
                    );
                }
            }
        }
    }
}
