// SPDX-License-Identifier: MPL-2.0
//! The `video`/`audio` request pads of hlsclipsink and periodicclipper: one
//! implementation of the pad map, pad request and release, and the
//! buffer and event handling that is the same for both (caps to a codec
//! configuration, segments, timestamps to samples, EOS, flushes). The
//! elements see tracks and samples only, through [`EncodedSink`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::SampleError;
use crate::core::periodic::Notice;
use crate::core::{Sample, TrackKind};
use crate::mp4::CodecConfig;

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "liveclip-sink",
        gst::DebugColorFlags::empty(),
        Some("liveclip encoded media request pads"),
    )
});

/// A request pad: the track it feeds and what its events said.
struct SinkPad {
    track: usize,
    kind: TrackKind,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// The configuration of the latest caps.
    config: Option<Arc<CodecConfig>>,
    eos: bool,
    /// Access units in a row that were not what the caps say.
    malformed: u32,
}

/// Video access units in a row that are not what the caps say before the
/// input counts as something else (an error).
const MALFORMED_IN_A_ROW: u32 = 25;

/// An element's request pads, by name (`video`, `audio`).
#[derive(Default)]
pub struct SinkPads(Mutex<HashMap<String, SinkPad>>);

impl SinkPads {
    /// A new run: the tracks are numbered again from 0 in their current
    /// order, every pad fresh (no segment, not ended). Returns each track's
    /// kind and latest codec configuration, in track order.
    pub fn restart(&self) -> Vec<(TrackKind, Option<Arc<CodecConfig>>)> {
        let mut pads = self.0.lock().unwrap();
        let mut all: Vec<&mut SinkPad> = pads.values_mut().collect();
        all.sort_by_key(|p| p.track);
        all.into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.track = i;
                p.eos = false;
                p.segment = gst::FormattedSegment::new();
                (p.kind, p.config.clone())
            })
            .collect()
    }

    /// Whether `track` leads the cuts: video, or any track without video.
    pub fn leads(&self, track: usize) -> bool {
        let pads = self.0.lock().unwrap();
        let has_video = pads.values().any(|p| p.kind == TrackKind::Video);
        pads.values()
            .any(|p| p.track == track && (p.kind == TrackKind::Video || !has_video))
    }

    /// The pads' names in track order.
    pub fn names(&self) -> Vec<String> {
        let pads = self.0.lock().unwrap();
        let mut all: Vec<(&String, &SinkPad)> = pads.iter().collect();
        all.sort_by_key(|(_, p)| p.track);
        all.into_iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn has_video(&self) -> bool {
        let pads = self.0.lock().unwrap();
        pads.values().any(|p| p.kind == TrackKind::Video)
    }
}

/// What an element with `video`/`audio` request pads does with their
/// media. The pad functions call these without holding the pad map's lock.
pub trait EncodedSink: ElementImpl {
    /// The container named in caps errors ("CMAF", "MP4").
    const FORMAT: &'static str;

    fn sink_pads(&self) -> &SinkPads;

    /// Whether writing failed: buffers are then refused with an error.
    fn failed(&self) -> bool;

    /// A track for a new pad of `kind`; returns its index.
    fn add_track(&self, kind: TrackKind) -> usize;

    /// The codec configuration of new caps on `track`.
    fn set_config(&self, pad: &gst::Pad, track: usize, config: Arc<CodecConfig>);

    /// A sample of `track` (times in running time); `reference` is the UTC
    /// of a keyframe's reference timestamp meta.
    fn push(
        &self,
        pad: &gst::Pad,
        track: usize,
        sample: Sample,
        reference: Option<DateTime<Utc>>,
    ) -> Result<gst::FlowSuccess, gst::FlowError>;

    /// `track` ended: EOS (`eos`), or its pad was released before that.
    fn end_track(&self, track: usize, eos: bool);

    /// `track` was flushed (running time starts again).
    fn flush(&self, track: usize);

    /// A custom downstream event on `track`'s pad (markers come this way),
    /// in order with its buffers.
    fn custom_event(&self, _pad: &gst::Pad, _track: usize, _event: &gst::Event) {}
}

/// `request_new_pad` of an [`EncodedSink`]: one pad per template.
pub fn request_new_pad<T: EncodedSink>(
    imp: &T,
    templ: &gst::PadTemplate,
    requested: Option<&str>,
) -> Option<gst::Pad> {
    let template = templ.name_template().to_string();
    let kind = if template.starts_with("video") {
        TrackKind::Video
    } else {
        TrackKind::Audio
    };
    let name = {
        let mut pads = imp.sink_pads().0.lock().unwrap();
        // `video_%u`: the name asked for, else the first free number.
        let name = match template.strip_suffix("%u") {
            None => template.clone(),
            Some(prefix) => match requested {
                Some(r)
                    if r.strip_prefix(prefix)
                        .is_some_and(|n| n.parse::<u32>().is_ok()) =>
                {
                    r.to_string()
                }
                Some(r) => {
                    gst::warning!(CAT, imp = imp, "pad name {r} does not match {template}");
                    return None;
                }
                None => (0..)
                    .map(|n| format!("{prefix}{n}"))
                    .find(|n| !pads.contains_key(n))
                    .expect("a free number"),
            },
        };
        if pads.contains_key(&name) {
            gst::warning!(CAT, imp = imp, "there is a {name} pad already");
            return None;
        }
        let track = imp.add_track(kind);
        pads.insert(
            name.clone(),
            SinkPad {
                track,
                kind,
                segment: gst::FormattedSegment::new(),
                config: None,
                eos: false,
                malformed: 0,
            },
        );
        name
    };
    let pad = gst::Pad::builder_from_template(templ)
        .name(name.as_str())
        .chain_function(|pad, parent, buffer| {
            T::catch_panic_pad_function(
                parent,
                || Err(gst::FlowError::Error),
                |imp| chain(imp, pad, buffer),
            )
        })
        .event_function(|pad, parent, event| {
            T::catch_panic_pad_function(parent, || false, |imp| sink_event(imp, pad, event))
        })
        .flags(gst::PadFlags::ACCEPT_TEMPLATE)
        .build();
    pad.set_active(true).ok();
    imp.obj().add_pad(&pad).ok()?;
    if let Some(proxy) = imp.obj().dynamic_cast_ref::<gst::ChildProxy>() {
        proxy.child_added(&pad, &pad.name());
    }
    Some(pad)
}

/// `release_pad` of an [`EncodedSink`]: the track keeps what it had (it is
/// written) and counts as ended.
pub fn release_pad<T: EncodedSink>(imp: &T, pad: &gst::Pad) {
    let removed = imp
        .sink_pads()
        .0
        .lock()
        .unwrap()
        .remove(pad.name().as_str());
    if let Some(p) = removed
        && !p.eos
    {
        imp.end_track(p.track, false);
    }
    pad.set_active(false).ok();
    imp.obj().remove_pad(pad).ok();
    if let Some(proxy) = imp.obj().dynamic_cast_ref::<gst::ChildProxy>() {
        proxy.child_removed(pad, &pad.name());
    }
}

fn chain<T: EncodedSink>(
    imp: &T,
    pad: &gst::Pad,
    buffer: gst::Buffer,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    if imp.failed() {
        return Err(gst::FlowError::Error);
    }
    let (track, kind, segment, nal, adts) = {
        let pads = imp.sink_pads().0.lock().unwrap();
        let Some(p) = pads.get(pad.name().as_str()) else {
            return Err(gst::FlowError::NotLinked);
        };
        let Some(config) = &p.config else {
            drop(pads);
            gst::element_imp_error!(
                imp,
                gst::CoreError::Negotiation,
                ("{} buffer before caps", pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        (
            p.track,
            p.kind,
            p.segment.clone(),
            config.nal_format(),
            config.adts,
        )
    };
    let reference = if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
        None
    } else {
        super::reference_utc(&buffer)
    };
    match super::sample_from_buffer(&segment, kind, nal, buffer) {
        Ok(mut sample) if adts => match crate::mp4::codec::strip_adts(&sample.data) {
            Ok(raw) => {
                sample.data = raw;
                imp.push(pad, track, sample, reference)
            }
            Err(why) => {
                gst::element_imp_error!(
                    imp,
                    gst::StreamError::Format,
                    ("{}: {why}; put aacparse before this element", pad.name())
                );
                Err(gst::FlowError::NotNegotiated)
            }
        },
        Ok(sample) => {
            if let (TrackKind::Video, Some((codec, framing))) = (kind, nal) {
                let verdict = crate::core::nal::check(&sample.data, codec, framing);
                let run = {
                    let mut pads = imp.sink_pads().0.lock().unwrap();
                    match (pads.get_mut(pad.name().as_str()), &verdict) {
                        (Some(p), Ok(())) => std::mem::take(&mut p.malformed),
                        (Some(p), Err(_)) => {
                            p.malformed += 1;
                            p.malformed
                        }
                        (None, _) => 0,
                    }
                };
                if let Err(why) = verdict {
                    return malformed(imp, pad, codec, &why, run);
                }
            }
            imp.push(pad, track, sample, reference)
        }
        Err(SampleError::NoTimestamp) => {
            gst::warning!(CAT, obj = pad, "dropping a buffer without timestamps");
            Ok(gst::FlowSuccess::Ok)
        }
        Err(SampleError::Unmappable) => {
            gst::element_imp_error!(imp, gst::CoreError::Failed, ("cannot map buffer"));
            Err(gst::FlowError::Error)
        }
    }
}

/// An access unit that is not what the caps say is dropped with a warning
/// (the first of a run); a run of them is an error: the input is not
/// what its caps claim (random bytes under valid caps would otherwise be
/// recorded as media no decoder can read).
fn malformed<T: EncodedSink>(
    imp: &T,
    pad: &gst::Pad,
    codec: crate::core::nal::Codec,
    why: &str,
    run: u32,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let codec = codec.name();
    if run >= MALFORMED_IN_A_ROW {
        gst::element_imp_error!(
            imp,
            gst::StreamError::Decode,
            (
                "{}: {run} access units in a row are not {codec} as the caps say ({why}); \
                 check what feeds this pad (a parser such as h264parse or h265parse belongs \
                 right before it)",
                pad.name()
            )
        );
        return Err(gst::FlowError::Error);
    }
    if run == 1 {
        gst::element_imp_warning!(
            imp,
            gst::StreamError::Decode,
            (
                "{}: dropping an access unit that is not {codec}: {why}",
                pad.name()
            )
        );
    }
    Ok(gst::FlowSuccess::Ok)
}

fn sink_event<T: EncodedSink>(imp: &T, pad: &gst::Pad, event: gst::Event) -> bool {
    use gst::EventView;
    let name = pad.name();
    let mut pads = imp.sink_pads().0.lock().unwrap();
    let Some(p) = pads.get_mut(name.as_str()) else {
        return !matches!(event.view(), EventView::Caps(_));
    };
    let track = p.track;
    match event.view() {
        EventView::Caps(c) => {
            let caps = c.caps_owned();
            match CodecConfig::from_caps(&caps) {
                Ok(config) => {
                    let config = Arc::new(config);
                    gst::debug!(CAT, obj = pad, "caps {caps}");
                    p.config = Some(config.clone());
                    drop(pads);
                    imp.set_config(pad, track, config);
                    true
                }
                Err(e) => {
                    drop(pads);
                    gst::element_imp_error!(
                        imp,
                        gst::StreamError::Format,
                        ("{} caps not usable for {}: {}", name, T::FORMAT, e),
                        ["caps: {}", caps]
                    );
                    false
                }
            }
        }
        EventView::Segment(s) => match s.segment().clone().downcast::<gst::ClockTime>() {
            Ok(segment) => {
                p.segment = segment;
                true
            }
            Err(_) => {
                drop(pads);
                gst::element_imp_error!(
                    imp,
                    gst::StreamError::Format,
                    ("{}: only TIME segments are supported", name)
                );
                false
            }
        },
        EventView::Eos(_) => {
            let first = !std::mem::replace(&mut p.eos, true);
            drop(pads);
            if first {
                imp.end_track(track, true);
            }
            true
        }
        EventView::FlushStop(_) => {
            p.eos = false;
            drop(pads);
            imp.flush(track);
            true
        }
        EventView::CustomDownstream(_) | EventView::CustomDownstreamOob(_) => {
            drop(pads);
            imp.custom_event(pad, track, &event);
            true
        }
        // Sticky events are kept by the pad; nothing goes downstream of a
        // sink.
        _ => true,
    }
}

/// Says what the cutter noticed: details at debug level, problems as
/// element warnings.
pub fn report<T: ElementImpl>(imp: &T, notices: Vec<Notice>) {
    for n in notices {
        match n.describe() {
            Ok(line) => gst::debug!(CAT, imp = imp, "{line}"),
            Err(warning) => {
                gst::element_imp_warning!(imp, gst::StreamError::Format, ["{warning}"])
            }
        }
    }
}

/// The `ElementImpl` methods of an [`EncodedSink`]'s request pads:
/// `pad_templates` (`video` and `audio`), `request_new_pad` and
/// `release_pad`.
macro_rules! request_pad_methods {
    () => {
        $crate::media::sink::request_pad_methods!($crate::media::request_pad_templates);
    };
    ($templates:expr) => {
        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
                std::sync::LazyLock::new($templates);
            TEMPLATES.as_ref()
        }

        fn request_new_pad(
            &self,
            templ: &gst::PadTemplate,
            name: Option<&str>,
            _caps: Option<&gst::Caps>,
        ) -> Option<gst::Pad> {
            $crate::media::sink::request_new_pad(self, templ, name)
        }

        fn release_pad(&self, pad: &gst::Pad) {
            $crate::media::sink::release_pad(self, pad);
        }
    };
}
pub(crate) use request_pad_methods;
