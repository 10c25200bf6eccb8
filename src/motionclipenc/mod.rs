// SPDX-License-Identifier: MPL-2.0
//! `motionclipenc`: short muted motion clips (animated previews) of raw
//! video at intervals and on demand, as MP4 (H.264) or looping GIF.
//!
//! ```text
//! gst-launch-1.0 -e videotestsrc is-live=true ! motionclipenc interval=60 duration=3 ! \
//!     multifilesink location=preview-%05d.mp4
//! ```

use gst::glib;
use gst::prelude::*;

pub(crate) mod encode;
mod imp;

glib::wrapper! {
    pub struct MotionClipEnc(ObjectSubclass<imp::MotionClipEnc>) @extends gst::Element, gst::Object;
}

/// The file format of the clips.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMotionClipEncFormat")]
pub enum ClipFormat {
    #[default]
    #[enum_value(name = "MP4: H.264, no audio, faststart", nick = "mp4")]
    Mp4 = 0,
    #[enum_value(name = "GIF: looping animated GIF", nick = "gif")]
    Gif = 1,
}

impl ClipFormat {
    /// Caps of the src pad.
    pub fn caps(self) -> gst::Caps {
        match self {
            ClipFormat::Mp4 => gst::Caps::builder("video/quicktime")
                .field("variant", "iso")
                .build(),
            ClipFormat::Gif => gst::Caps::new_empty_simple("image/gif"),
        }
    }

    /// Every format's caps: the src pad template.
    pub fn template_caps() -> gst::Caps {
        [ClipFormat::Mp4, ClipFormat::Gif]
            .into_iter()
            .fold(gst::Caps::builder_full(), |caps, f| {
                caps.structure(f.caps().structure(0).unwrap().to_owned())
            })
            .build()
    }

    pub fn nick(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "mp4",
            ClipFormat::Gif => "gif",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    #[cfg(feature = "doc")]
    ClipFormat::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "motionclipenc",
        gst::Rank::NONE,
        MotionClipEnc::static_type(),
    )
}
