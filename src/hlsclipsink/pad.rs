// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink's request pads: what a rendition of a ladder is called and
//! what it declares (`video_%u`, `audio_%u`; also `video` and `audio`).

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

glib::wrapper! {
    /// A request pad of hlsclipsink, with the properties of its rendition.
    pub struct RenditionPad(ObjectSubclass<imp::RenditionPad>) @extends gst::Pad, gst::Object;
}

impl RenditionPad {
    /// The rendition's directory and NAME (the pad's name unless set).
    pub fn rendition(&self) -> String {
        let name = self.imp().settings.lock().unwrap().rendition.clone();
        name.filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.name().to_string())
    }

    /// Declared peak bandwidth (bits/s), 0 when measured.
    pub fn bandwidth(&self) -> u64 {
        self.imp().settings.lock().unwrap().bandwidth
    }

    pub fn language(&self) -> Option<String> {
        let language = self.imp().settings.lock().unwrap().language.clone();
        language.filter(|l| !l.is_empty())
    }
}

mod imp {
    use std::sync::{LazyLock, Mutex};

    use gst::glib;
    use gst::prelude::*;
    use gst::subclass::prelude::*;

    #[derive(Debug, Default, Clone)]
    pub(super) struct Settings {
        pub(super) rendition: Option<String>,
        pub(super) bandwidth: u64,
        pub(super) language: Option<String>,
    }

    #[derive(Default)]
    pub struct RenditionPad {
        pub(super) settings: Mutex<Settings>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RenditionPad {
        const NAME: &'static str = "GstHlsClipSinkPad";
        type Type = super::RenditionPad;
        type ParentType = gst::Pad;
    }

    impl ObjectImpl for RenditionPad {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecString::builder("rendition")
                        .nick("Rendition")
                        .blurb(
                            "Name of this rendition in a ladder (several video or audio pads): \
                             its directory {media-id}/{rendition}/ and its NAME in master.m3u8 \
                             (default: the pad's name, e.g. video_0)",
                        )
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecUInt64::builder("bandwidth")
                        .nick("Bandwidth")
                        .blurb(
                            "Peak bandwidth of this rendition in bits/s for BANDWIDTH in \
                             master.m3u8 (0: measured over the recorded segments)",
                        )
                        .default_value(0)
                        .maximum(100_000_000_000)
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecString::builder("language")
                        .nick("Language")
                        .blurb(
                            "RFC 5646 language of an audio rendition (LANGUAGE in master.m3u8), \
                             e.g. en",
                        )
                        .mutable_ready()
                        .build(),
                ]
            });
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut s = self.settings.lock().unwrap();
            match pspec.name() {
                "rendition" => s.rendition = value.get().expect("type checked upstream"),
                "bandwidth" => s.bandwidth = value.get().expect("type checked upstream"),
                "language" => s.language = value.get().expect("type checked upstream"),
                _ => unreachable!("no other properties"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = self.settings.lock().unwrap();
            match pspec.name() {
                "rendition" => s.rendition.to_value(),
                "bandwidth" => s.bandwidth.to_value(),
                "language" => s.language.to_value(),
                _ => unreachable!("no other properties"),
            }
        }
    }

    impl GstObjectImpl for RenditionPad {}
    impl PadImpl for RenditionPad {}
}
