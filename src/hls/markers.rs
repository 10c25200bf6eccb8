// SPDX-License-Identifier: MPL-2.0
//! Markers: named moments of a session (a goal, a keynote announcement, an
//! ad break), on the session's recording-time axis.
//!
//! They come from the `mark` action signal, `POST /{stream-id}/markers`,
//! a `liveclip-marker` event in the stream, or SCTE-35 splice events from
//! `tsdemux`; the writer thread keeps them in the session's
//! `markers.json` (replaced atomically, so a crash leaves the old list or
//! the new one), and the playlists carry them as `EXT-X-DATERANGE` tags
//! whose START-DATE follows the segments' program date times. Clip
//! requests can name one (`marker=ID`, with `before=`/`after=` padding).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::clip::ClipError;
use crate::core::NS;
use crate::core::atomic::write_atomic;
use crate::core::scte35::{SpliceCommand, SpliceInfo};
use crate::core::timespec::{TimePoint, parse_duration, parse_time_point};

/// The custom downstream event that carries a marker in a stream.
pub const EVENT: &str = "liveclip-marker";

/// Whether `event` marks a moment: a `liveclip-marker` event, or a SCTE-35
/// cue from tsdemux other than a heartbeat (splice_null).
pub fn is_marker_event(event: &gst::Event) -> bool {
    match crate::media::scte35::from_event(event) {
        Some(Ok(cue)) => !matches!(cue.info.command, SpliceCommand::Null),
        Some(Err(_)) => false,
        None => event.structure().is_some_and(|s| s.name() == EVENT),
    }
}

/// The class of markers made from SCTE-35 cues (the scheme DASH names the
/// binary SCTE-35 format with).
pub const SCTE35_CLASS: &str = "urn:scte:scte35:2013:bin";

/// The file beside a session's playlists.
pub const FILE: &str = "markers.json";

/// Markers a session keeps at most.
pub const MAX_MARKERS: usize = 10_000;

/// Before a point marker, what a clip of it takes by default (ns).
pub const POINT_BEFORE: u64 = 10 * NS;
/// After a point marker, what a clip of it takes by default (ns).
pub const POINT_AFTER: u64 = 5 * NS;

/// Where a marker came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /{stream-id}/markers`.
    Api,
    /// The `mark` action signal.
    Signal,
    /// A `liveclip-marker` event in the stream.
    Event,
    /// A SCTE-35 splice event of an MPEG-TS input.
    Scte35,
}

/// The SCTE-35 messages of a marker made from splice events: the event
/// id, and each message as hexadecimal (`0xFC…`), as EXT-X-DATERANGE's
/// SCTE35-OUT, SCTE35-IN and SCTE35-CMD carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scte35 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub r#in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
}

/// One marker, as markers.json keeps it (times in ns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Recording time of its start, ns.
    pub start: u64,
    /// Its length, ns (none: a point, or not known yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Its expected length, ns, when the actual one is not known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_duration: Option<u64>,
    /// Wall clock of its start, from the session's program date times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_utc: Option<DateTime<Utc>>,
    /// Client attributes (`X-…` names, values as written: a number, a
    /// `0x` hexadecimal sequence, or text).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scte35: Option<Scte35>,
}

impl Marker {
    /// The marker of a SCTE-35 cue at recording time `start`, and whether
    /// the cue is an out (`Some(true)`: a break or segment starts), an in
    /// (`Some(false)`), or neither. Its id is `scte35-{event id}` (an in
    /// then ends the out of the same id), its planned duration the break's
    /// or segment's, and the message goes into SCTE35-OUT, SCTE35-IN or
    /// SCTE35-CMD.
    pub fn from_splice(info: &SpliceInfo, start: u64) -> (Marker, Option<bool>) {
        let out = if info.is_cancel() {
            None
        } else {
            info.is_out()
        };
        let hex = info.hex();
        let id = match info.event_id() {
            Some(e) => format!("scte35-{e}"),
            None => format!("scte35-{}", start / 1_000_000),
        };
        let mut attributes = BTreeMap::new();
        attributes.insert("X-SCTE35-COMMAND".into(), info.class().into());
        if let Some(d) = info.primary_segmentation() {
            attributes.insert("X-SEGMENTATION-TYPE".into(), format!("{}", d.type_id));
        }
        let marker = Marker {
            id,
            class: Some(SCTE35_CLASS.into()),
            start,
            duration: None,
            planned_duration: (out == Some(true))
                .then(|| info.duration())
                .flatten()
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .filter(|&d| d > 0),
            start_utc: None,
            attributes,
            source: Source::Scte35,
            scte35: Some(Scte35 {
                event_id: info.event_id(),
                out: (out == Some(true)).then(|| hex.clone()),
                r#in: (out == Some(false)).then(|| hex.clone()),
                cmd: out.is_none().then_some(hex),
            }),
        };
        (marker, out)
    }

    /// Where it ends (ns): its duration, else its planned one, else its
    /// start.
    pub fn end(&self) -> u64 {
        self.start
            .saturating_add(self.duration.or(self.planned_duration).unwrap_or(0))
    }

    /// Whether it has a length (actual or planned).
    pub fn is_range(&self) -> bool {
        self.duration
            .or(self.planned_duration)
            .is_some_and(|d| d > 0)
    }

    /// The range a clip of it covers (ns): a range marker from its start
    /// less `before` (default 0) to its end plus `after` (default 0); a
    /// point marker from `before` (default 10 s) before it to `after`
    /// (default 5 s) after it. The start stops at 0.
    pub fn clip_range(&self, before: Option<u64>, after: Option<u64>) -> (u64, u64) {
        let (b, a) = if self.is_range() {
            (before.unwrap_or(0), after.unwrap_or(0))
        } else {
            (before.unwrap_or(POINT_BEFORE), after.unwrap_or(POINT_AFTER))
        };
        (self.start.saturating_sub(b), self.end().saturating_add(a))
    }

    /// The marker as the HTTP API and the signals show it (seconds).
    pub fn to_json(&self) -> serde_json::Value {
        let s = |ns: u64| ns as f64 / 1e9;
        serde_json::json!({
            "id": self.id,
            "class": self.class,
            "start": s(self.start),
            "end": self.is_range().then(|| s(self.end())),
            "duration": self.duration.map(s),
            "planned_duration": self.planned_duration.map(s),
            "start_utc": self.start_utc.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "attributes": self.attributes,
            "source": self.source,
            "scte35": self.scte35,
        })
    }

    /// Its EXT-X-DATERANGE attribute list (what follows the colon), with
    /// `start_date` as START-DATE. Attributes are in a fixed order.
    pub fn daterange(&self, start_date: DateTime<Utc>) -> String {
        use std::fmt::Write;
        let mut out = format!("ID=\"{}\"", self.id);
        if let Some(c) = &self.class {
            let _ = write!(out, ",CLASS=\"{c}\"");
        }
        let _ = write!(
            out,
            ",START-DATE=\"{}\"",
            start_date.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        if let Some(d) = self.duration {
            let _ = write!(out, ",DURATION={:.3}", d as f64 / 1e9);
        }
        if let Some(d) = self.planned_duration {
            let _ = write!(out, ",PLANNED-DURATION={:.3}", d as f64 / 1e9);
        }
        for (name, value) in &self.attributes {
            if is_number(value) || is_hex(value) {
                let _ = write!(out, ",{name}={value}");
            } else {
                let _ = write!(out, ",{name}=\"{value}\"");
            }
        }
        if let Some(s) = &self.scte35 {
            for (name, value) in [
                ("SCTE35-CMD", &s.cmd),
                ("SCTE35-OUT", &s.out),
                ("SCTE35-IN", &s.r#in),
            ] {
                if let Some(v) = value {
                    let _ = write!(out, ",{name}={v}");
                }
            }
        }
        out
    }
}

/// A session's markers as the HTTP API and `get-markers` show them.
pub fn markers_json(media_id: &str, live: bool, markers: &[Marker]) -> serde_json::Value {
    serde_json::json!({
        "media_id": media_id,
        "live": live,
        "markers": markers.iter().map(Marker::to_json).collect::<Vec<_>>(),
    })
}

fn is_number(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().filter(|&b| b == b'.').count() <= 1
        && v.as_bytes()[0].is_ascii_digit()
        && !v.ends_with('.')
}

fn is_hex(v: &str) -> bool {
    let digits = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"));
    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `id` can name a marker: 1 to 128 letters, digits, `-`, `_`,
/// `.` or `:` (it goes into URLs and quoted playlist attributes).
pub fn is_marker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Checks a class: up to 256 characters of text without quotes or line
/// breaks (it is a quoted playlist attribute).
pub fn check_class(class: &str) -> Result<(), ClipError> {
    if class.is_empty() || class.len() > 256 || class.chars().any(|c| c == '"' || c.is_control()) {
        return Err(ClipError::BadRequest(format!(
            "class {class:?} must be 1 to 256 characters without quotes or control characters, \
             e.g. com.example.goal"
        )));
    }
    Ok(())
}

/// The client attribute name of `name`: upper case, with the `X-` prefix
/// added when missing; letters, digits and `-` only.
pub fn attribute_name(name: &str) -> Result<String, ClipError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("X-") {
        upper
    } else {
        format!("X-{upper}")
    };
    let ok = full.len() > 2
        && full.len() <= 64
        && full
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(ClipError::BadRequest(format!(
            "attribute name {name:?}: use letters, digits and '-' (EXT-X-DATERANGE client \
             attributes, e.g. X-SCORE)"
        )));
    }
    Ok(full)
}

/// Checks an attribute value: up to 1024 characters without quotes or
/// line breaks.
pub fn check_value(name: &str, value: &str) -> Result<(), ClipError> {
    if value.len() > 1024 || value.chars().any(|c| c == '"' || c.is_control()) {
        return Err(ClipError::BadRequest(format!(
            "attribute {name}: values are at most 1024 characters without quotes or control \
             characters"
        )));
    }
    Ok(())
}

/// When a marker asked for starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At the live edge.
    Now,
    /// That long (ns) before the live edge.
    Ago(u64),
    /// At a recording time or a UTC instant.
    At(TimePoint),
}

/// A marker as asked for (the HTTP body, the signal's arguments), before
/// it is placed on the session.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkInput {
    pub id: Option<String>,
    pub class: Option<String>,
    /// A recording time (`600s`) or a UTC instant.
    pub time: Option<String>,
    /// A duration before the live edge (`10s`).
    pub ago: Option<String>,
    /// Seconds (a number) or a duration (`30s`).
    pub duration: Option<serde_json::Value>,
    pub planned_duration: Option<serde_json::Value>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// A length in seconds (a number) or a duration text, more than 0 and at
/// most a day.
fn length(name: &str, v: &serde_json::Value) -> Result<u64, ClipError> {
    let ns = match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1e9).round() as u64),
        serde_json::Value::String(t) => parse_duration(t)
            .ok()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        _ => None,
    };
    match ns {
        Some(ns) if ns > 0 && ns <= 86_400 * NS => Ok(ns),
        _ => Err(ClipError::BadRequest(format!(
            "{name}: give seconds (30) or a duration (\"30s\"), more than 0 and at most 24h"
        ))),
    }
}

impl MarkInput {
    /// Parses an HTTP body.
    pub fn from_json(body: &[u8]) -> Result<Self, ClipError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            ClipError::BadRequest(format!(
                "the body is not a marker: {e} (fields: id, class, time, ago, duration, \
                 planned_duration, attributes)"
            ))
        })
    }

    /// When it starts.
    pub fn when(&self) -> Result<When, ClipError> {
        match (&self.time, &self.ago) {
            (Some(_), Some(_)) => Err(ClipError::BadRequest(
                "give either time or ago, not both".into(),
            )),
            (Some(t), None) => parse_time_point(t)
                .map(When::At)
                .map_err(|e| ClipError::BadRequest(format!("time: {e}"))),
            (None, Some(a)) => parse_duration(a)
                .map(|d| When::Ago(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
                .map_err(|e| ClipError::BadRequest(format!("ago: {e}"))),
            (None, None) => Ok(When::Now),
        }
    }

    /// The marker it asks for, at `start` (ns); `fallback_id` when it names
    /// none.
    pub fn to_marker(
        &self,
        start: u64,
        source: Source,
        fallback_id: impl FnOnce() -> String,
    ) -> Result<Marker, ClipError> {
        let id = self.id.clone().unwrap_or_else(fallback_id);
        if !is_marker_id(&id) {
            return Err(ClipError::BadRequest(format!(
                "id {id:?}: 1 to 128 letters, digits, '-', '_', '.' or ':'"
            )));
        }
        if let Some(c) = &self.class {
            check_class(c)?;
        }
        let duration = self
            .duration
            .as_ref()
            .map(|v| length("duration", v))
            .transpose()?;
        let planned_duration = self
            .planned_duration
            .as_ref()
            .map(|v| length("planned_duration", v))
            .transpose()?;
        let mut attributes = BTreeMap::new();
        for (name, value) in &self.attributes {
            let full = attribute_name(name)?;
            let text = match value {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0) => {
                    n.to_string()
                }
                _ => {
                    return Err(ClipError::BadRequest(format!(
                        "attribute {name}: a text or a number of at least 0"
                    )));
                }
            };
            check_value(&full, &text)?;
            attributes.insert(full, text);
        }
        Ok(Marker {
            id,
            class: self.class.clone(),
            start,
            duration,
            planned_duration,
            start_utc: None,
            attributes,
            source,
            scte35: None,
        })
    }
}

/// A session's markers, by start time (then by when they were added).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MarkerBook {
    pub markers: Vec<Marker>,
}

/// What adding a marker did.
#[derive(Debug, Clone, PartialEq)]
pub enum Added {
    /// A new marker.
    New(Marker),
    /// An existing marker got its end (a SCTE-35 in for its out).
    Ended(Marker),
    /// A repeat of a splice event already recorded: nothing changed.
    Repeat,
}

impl MarkerBook {
    /// Reads `dir/markers.json`; a missing file is an empty book, an
    /// unreadable one an error naming it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a marker list: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Replaces `dir/markers.json` atomically.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&dir.join(FILE), &json, true)
    }

    pub fn get(&self, id: &str) -> Option<&Marker> {
        self.markers.iter().find(|m| m.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }

    /// Adds `m`; an id already used is refused (409).
    pub fn add(&mut self, m: Marker) -> Result<Added, ClipError> {
        if let Some(x) = self.get(&m.id) {
            // The same event reaching the element on each of its pads.
            if x.source == Source::Event
                && m.source == Source::Event
                && x.start.abs_diff(m.start) < NS
            {
                return Ok(Added::Repeat);
            }
            return Err(ClipError::Conflict(format!(
                "a marker {:?} exists already in this session; give another id",
                m.id
            )));
        }
        if self.markers.len() >= MAX_MARKERS {
            return Err(ClipError::Busy(format!(
                "the session has {MAX_MARKERS} markers, as many as it keeps"
            )));
        }
        let at = self.markers.partition_point(|x| x.start <= m.start);
        self.markers.insert(at, m.clone());
        Ok(Added::New(m))
    }

    /// Adds a SCTE-35 signal: an out (`out == Some(true)`) starts marker
    /// `scte35-{event id}` (or a marker per message when there is no event
    /// id), an in ends the open marker of the same event id (its DURATION
    /// becomes known), and a signal seen before (encoders repeat them) is a
    /// [`Added::Repeat`].
    pub fn add_splice(&mut self, m: Marker, out: Option<bool>) -> Result<Added, ClipError> {
        let s = m.scte35.clone().unwrap_or_default();
        let message = s.out.as_ref().or(s.r#in.as_ref()).or(s.cmd.as_ref());
        let seen = self.markers.iter().any(|x| {
            x.scte35.as_ref().is_some_and(|xs| {
                [&xs.out, &xs.r#in, &xs.cmd]
                    .into_iter()
                    .flatten()
                    .any(|h| Some(h) == message)
            })
        });
        if seen {
            return Ok(Added::Repeat);
        }
        if out == Some(false)
            && let Some(event) = s.event_id
            && let Some(open) = self.markers.iter_mut().rev().find(|x| {
                x.source == Source::Scte35
                    && x.scte35.as_ref().is_some_and(|xs| {
                        xs.event_id == Some(event) && xs.out.is_some() && xs.r#in.is_none()
                    })
            })
        {
            if m.start >= open.start {
                open.duration = Some(m.start - open.start);
                open.planned_duration = None;
            }
            if let Some(xs) = open.scte35.as_mut() {
                xs.r#in = s.r#in.or(s.cmd);
            }
            return Ok(Added::Ended(open.clone()));
        }
        let mut m = m;
        if self.get(&m.id).is_some() {
            // The same event id again (a new break): a unique id.
            let base = m.id.clone();
            let n = (2..).find(|n| self.get(&format!("{base}-{n}")).is_none());
            m.id = format!("{base}-{}", n.unwrap_or(2));
        }
        self.add(m)
    }
}

/// Where each marker's EXT-X-DATERANGE goes in a playlist of segments
/// covering `spans` (recording-time `[start, end)` per segment, ascending):
/// for each segment, the markers shown before it. A marker is shown when
/// it ends at or after the first segment's start (and, unless `future`,
/// starts before the last one's end), at the segment holding its start (the
/// first one for a marker that began earlier, the last one for a marker
/// past the end). `utc_at` gives the START-DATE of a recording time from
/// the program date times; without one there is no tag (a playlist with
/// EXT-X-DATERANGE must have EXT-X-PROGRAM-DATE-TIME).
pub fn daterange_tags(
    markers: &[Marker],
    spans: &[(u64, u64)],
    future: bool,
    utc_at: impl Fn(u64) -> Option<DateTime<Utc>>,
) -> Vec<Vec<m3u8_rs::ExtTag>> {
    let mut tags = vec![Vec::new(); spans.len()];
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return tags;
    };
    for m in markers {
        if m.end() < first.0 || (!future && m.start >= last.1) {
            continue;
        }
        let Some(date) = utc_at(m.start) else {
            continue;
        };
        let at = spans.iter().rposition(|s| s.0 <= m.start).unwrap_or(0);
        tags[at].push(m3u8_rs::ExtTag {
            tag: "X-DATERANGE".into(),
            rest: Some(m.daterange(date)),
        });
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(id: &str, start: u64, duration: Option<u64>) -> Marker {
        Marker {
            id: id.into(),
            class: Some("com.example.goal".into()),
            start,
            duration,
            planned_duration: None,
            start_utc: None,
            attributes: BTreeMap::new(),
            source: Source::Api,
            scte35: None,
        }
    }

    fn splice(start: u64, event: u32, out: bool, hex: &str) -> Marker {
        let mut m = marker(&format!("scte35-{event}"), start, None);
        m.source = Source::Scte35;
        m.class = Some("urn:scte:scte35:2013:bin".into());
        m.scte35 = Some(Scte35 {
            event_id: Some(event),
            out: out.then(|| hex.to_string()),
            r#in: (!out).then(|| hex.to_string()),
            cmd: None,
        });
        m
    }

    #[test]
    fn daterange_attributes_are_in_a_fixed_order_and_typed() {
        let mut m = marker("goal-1", 12 * NS, Some(30 * NS));
        m.attributes.insert("X-SCORE".into(), "1-0".into());
        m.attributes.insert("X-MINUTE".into(), "23.5".into());
        m.attributes.insert("X-BLOB".into(), "0xA1B2".into());
        let date = "2026-12-03T15:00:12.345Z".parse().unwrap();
        assert_eq!(
            m.daterange(date),
            "ID=\"goal-1\",CLASS=\"com.example.goal\",START-DATE=\"2026-12-03T15:00:12.345Z\",\
             DURATION=30.000,X-BLOB=0xA1B2,X-MINUTE=23.5,X-SCORE=\"1-0\""
        );
    }

    #[test]
    fn the_tags_parse_with_m3u8_rs() {
        let mut m = splice(4 * NS, 7, true, "0xFC3000");
        m.planned_duration = Some(4 * NS);
        m.attributes.insert("X-AD".into(), "break".into());
        let base: DateTime<Utc> = "2026-12-03T15:00:00Z".parse().unwrap();
        let spans = [(0, 6 * NS), (6 * NS, 12 * NS)];
        let tags = daterange_tags(&[m], &spans, false, |t| {
            Some(base + chrono::Duration::nanoseconds(t as i64))
        });
        assert_eq!(tags[0].len(), 1);
        assert!(tags[1].is_empty());
        let text = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-03T15:00:00.000Z\n{}\n#EXTINF:6,\na.m4s\n\
             #EXTINF:6,\nb.m4s\n#EXT-X-ENDLIST\n",
            tags[0][0]
        );
        let m3u8_rs::Playlist::MediaPlaylist(p) =
            m3u8_rs::parse_playlist_res(text.as_bytes()).expect("parses")
        else {
            panic!("a media playlist")
        };
        let d = p.segments[0].daterange.as_ref().expect("a daterange");
        assert_eq!(d.id, "scte35-7");
        assert_eq!(d.class.as_deref(), Some("urn:scte:scte35:2013:bin"));
        assert_eq!(d.planned_duration, Some(4.0));
        assert_eq!(
            d.start_date,
            "2026-12-03T15:00:04Z"
                .parse::<DateTime<chrono::FixedOffset>>()
                .unwrap()
        );
        let x = d.x_prefixed.as_ref().unwrap();
        assert_eq!(x["X-AD"].to_string(), "\"break\"");
        let other = d.other_attributes.as_ref().unwrap();
        assert_eq!(other["SCTE35-OUT"].to_string(), "0xFC3000");
    }

    #[test]
    fn markers_are_placed_at_the_segment_of_their_start() {
        let spans = [(10 * NS, 16 * NS), (16 * NS, 22 * NS), (22 * NS, 28 * NS)];
        let ms = [
            // Ended before the playlist: left out.
            marker("old", 2 * NS, Some(NS)),
            // Began before, still running: the first segment.
            marker("long", 5 * NS, Some(10 * NS)),
            marker("mid", 17 * NS, None),
            // Past the end: the last segment, or left out.
            marker("next", 30 * NS, None),
        ];
        let ids = |future| {
            daterange_tags(&ms, &spans, future, |_| Some(Utc::now()))
                .iter()
                .map(|t| t.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(true), vec![1, 1, 1]);
        assert_eq!(ids(false), vec![1, 1, 0]);
        // Without a date there is no tag.
        let none = daterange_tags(&ms, &spans, true, |_| None);
        assert!(none.iter().all(Vec::is_empty));
    }

    #[test]
    fn clip_ranges_pad_points_by_default_and_ranges_on_request() {
        let point = marker("p", 20 * NS, None);
        assert_eq!(point.clip_range(None, None), (10 * NS, 25 * NS));
        assert_eq!(point.clip_range(Some(2 * NS), Some(NS)), (18 * NS, 21 * NS));
        let range = marker("r", 20 * NS, Some(4 * NS));
        assert_eq!(range.clip_range(None, None), (20 * NS, 24 * NS));
        assert_eq!(range.clip_range(Some(NS), Some(NS)), (19 * NS, 25 * NS));
        let early = marker("e", 3 * NS, None);
        assert_eq!(early.clip_range(None, None).0, 0);
    }

    #[test]
    fn duplicate_ids_conflict_and_the_book_stays_sorted() {
        let mut book = MarkerBook::default();
        book.add(marker("b", 20 * NS, None)).unwrap();
        book.add(marker("a", 10 * NS, None)).unwrap();
        let e = book.add(marker("a", 30 * NS, None)).unwrap_err();
        assert_eq!(e.status(), 409);
        // An event seen on a second pad is the same marker.
        let mut ev = marker("ev", 40 * NS, None);
        ev.source = Source::Event;
        book.add(ev.clone()).unwrap();
        ev.start += 20_000_000;
        assert_eq!(book.add(ev), Ok(Added::Repeat));
        let ids: Vec<_> = book.markers.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "ev"]);
    }

    #[test]
    fn a_splice_in_ends_its_out_and_repeats_change_nothing() {
        let mut book = MarkerBook::default();
        let mut out = splice(4 * NS, 1001, true, "0xFC01");
        out.planned_duration = Some(4 * NS);
        assert!(matches!(
            book.add_splice(out.clone(), Some(true)),
            Ok(Added::New(_))
        ));
        assert_eq!(book.add_splice(out, Some(true)), Ok(Added::Repeat));
        let back = splice(8 * NS + 33_000_000, 1001, false, "0xFC02");
        let Ok(Added::Ended(m)) = book.add_splice(back.clone(), Some(false)) else {
            panic!("the in ends the out")
        };
        assert_eq!(m.duration, Some(4 * NS + 33_000_000));
        assert_eq!(m.planned_duration, None);
        let s = m.scte35.as_ref().unwrap();
        assert_eq!(s.out.as_deref(), Some("0xFC01"));
        assert_eq!(s.r#in.as_deref(), Some("0xFC02"));
        assert_eq!(book.add_splice(back, Some(false)), Ok(Added::Repeat));
        assert_eq!(book.markers.len(), 1);
        // The same event id later: a second break with its own id.
        let again = splice(40 * NS, 1001, true, "0xFC03");
        let Ok(Added::New(m)) = book.add_splice(again, Some(true)) else {
            panic!("a new break")
        };
        assert_eq!(m.id, "scte35-1001-2");
        // An in without an out is a point of its own.
        let lone = splice(50 * NS, 77, false, "0xFC04");
        assert!(matches!(
            book.add_splice(lone, Some(false)),
            Ok(Added::New(_))
        ));
    }

    #[test]
    fn the_book_survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MarkerBook::load(dir.path()).unwrap(), MarkerBook::default());
        let mut book = MarkerBook::default();
        let mut m = splice(4 * NS, 9, true, "0xFC");
        m.attributes.insert("X-A".into(), "1".into());
        book.add(m).unwrap();
        book.add(marker("goal", 12 * NS, Some(3 * NS))).unwrap();
        book.save(dir.path()).unwrap();
        assert_eq!(MarkerBook::load(dir.path()).unwrap(), book);
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let e = MarkerBook::load(dir.path()).unwrap_err();
        assert!(e.contains("markers.json"), "{e}");
    }

    #[test]
    fn inputs_parse_and_bad_ones_say_why() {
        let i = MarkInput::from_json(
            br#"{"id":"goal-1","class":"com.example.goal","ago":"10s","duration":"4s",
                "attributes":{"score":"1-0","X-MINUTE":23}}"#,
        )
        .unwrap();
        assert_eq!(i.when().unwrap(), When::Ago(10 * NS));
        let m = i.to_marker(5 * NS, Source::Api, || unreachable!()).unwrap();
        assert_eq!(m.id, "goal-1");
        assert_eq!(m.duration, Some(4 * NS));
        assert_eq!(m.attributes["X-SCORE"], "1-0");
        assert_eq!(m.attributes["X-MINUTE"], "23");
        let empty = MarkInput::from_json(b"").unwrap();
        assert_eq!(empty.when().unwrap(), When::Now);
        let m = empty.to_marker(0, Source::Api, || "m-1".into()).unwrap();
        assert_eq!(m.id, "m-1");
        assert!(m.duration.is_none());
        let at =
            MarkInput::from_json(br#"{"time":"2026-12-03T15:00:00Z","duration":2.5}"#).unwrap();
        assert!(matches!(at.when().unwrap(), When::At(TimePoint::Utc(_))));
        assert_eq!(
            at.to_marker(0, Source::Api, || "x".into())
                .unwrap()
                .duration,
            Some(2_500_000_000)
        );
        for bad in [
            &br#"{"id":"a b"}"#[..],
            br#"{"duration":-1}"#,
            br#"{"duration":"soon"}"#,
            br#"{"attributes":{"X-A":true}}"#,
            br#"{"attributes":{"bad name":"1"}}"#,
            br#"{"class":"say \"hi\""}"#,
        ] {
            let i = MarkInput::from_json(bad).unwrap();
            let e = i.to_marker(0, Source::Api, || "x".into()).unwrap_err();
            assert_eq!(e.status(), 400, "{}", String::from_utf8_lossy(bad));
        }
        for bad in [&br#"{"time":"1s","ago":"2s"}"#[..], br#"{"ago":"-3"}"#] {
            let e = MarkInput::from_json(bad).unwrap().when().unwrap_err();
            assert_eq!(e.status(), 400);
        }
        let e = MarkInput::from_json(br#"{"start":"1s"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert_eq!(MarkInput::from_json(b"{").unwrap_err().status(), 400);
    }

    #[test]
    fn names_and_values_are_checked() {
        assert_eq!(attribute_name("score").unwrap(), "X-SCORE");
        assert_eq!(attribute_name("X-Team-A").unwrap(), "X-TEAM-A");
        assert!(attribute_name("bad name").is_err());
        assert!(attribute_name("X-").is_err());
        assert!(check_value("X-A", "say \"hi\"").is_err());
        assert!(check_value("X-A", "line\nbreak").is_err());
        assert!(check_class("com.example.goal").is_ok());
        assert!(check_class("").is_err());
        assert!(is_marker_id("goal-1:a.b_c"));
        assert!(!is_marker_id("goal 1"));
        assert!(!is_marker_id(""));
        assert!(is_number("23.5") && is_number("7") && !is_number("1-0") && !is_number("1."));
        assert!(is_hex("0xFC30") && !is_hex("0x") && !is_hex("FC"));
    }
}
