// SPDX-License-Identifier: MPL-2.0
//! `periodicclipper`: MP4 clips of a live stream every N seconds and on demand.
//!
//! ```text
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! \
//!     periodicclipper interval=60 location=clip-%05d.mp4
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PeriodicClipper(ObjectSubclass<imp::PeriodicClipper>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "periodicclipper",
        gst::Rank::NONE,
        PeriodicClipper::static_type(),
    )
}
