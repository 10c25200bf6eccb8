// SPDX-License-Identifier: MPL-2.0
//! `hlsclipsink`: crash-safe CMAF HLS recording with live and replay
//! playlists per session, the storage every clip is cut from.
//!
//! ```text
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! \
//!     hlsclipsink location=recordings stream-id=cam1
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
mod pad;

pub use pad::RenditionPad;

/// Where EXT-X-PROGRAM-DATE-TIME comes from.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstHlsClipSinkPdtSource")]
pub enum PdtSource {
    /// The pipeline clock: wall clock at the first buffer, advancing with the
    /// media's running time.
    #[default]
    #[enum_value(
        name = "Pipeline clock: advances with running time",
        nick = "pipeline-clock"
    )]
    PipelineClock = 0,
    /// The system clock when each segment starts.
    #[enum_value(name = "System clock at each segment start", nick = "system-clock")]
    SystemClock = 1,
    /// Reference timestamp meta (timestamp/x-unix) on keyframes, as capture
    /// cards and RTSP/NTP sources attach it.
    #[enum_value(
        name = "Reference timestamp meta of keyframes (timestamp/x-unix)",
        nick = "reference-timestamp"
    )]
    ReferenceTimestamp = 2,
}

glib::wrapper! {
    pub struct HlsClipSink(ObjectSubclass<imp::HlsClipSink>) @extends gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    PdtSource::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    RenditionPad::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "hlsclipsink",
        gst::Rank::NONE,
        HlsClipSink::static_type(),
    )
}
