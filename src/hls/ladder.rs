// SPDX-License-Identifier: MPL-2.0
//! An adaptive ladder in one session: several renditions of the same
//! picture (and audio renditions, such as languages), recorded side by side
//! with the same segment boundaries, and the multivariant playlist
//! (`master.m3u8`) that lets a player switch between them.
//!
//! A session with one video and at most one audio track keeps the single
//! layout: one directory with muxed segments. A ladder has one directory
//! per rendition under the session's (`{media-id}/{rendition}/`), each with
//! its own init and media segments and playlists; audio renditions are
//! audio-only and the video renditions name them as one EXT-X-MEDIA group.

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, MasterPlaylist, Playlist, Resolution, VariantStream,
};

use crate::core::TrackKind;

/// The multivariant playlist of a ladder session, in its directory.
pub const MASTER: &str = "master.m3u8";
/// The EXT-X-MEDIA group of a ladder's audio renditions.
const AUDIO_GROUP: &str = "audio";

/// A rendition as the element lays it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenditionSpec {
    /// Its directory under the session's; empty for the single layout
    /// (the session's own directory).
    pub name: String,
    /// The planner's tracks it records.
    pub tracks: Vec<usize>,
    /// Declared peak bandwidth, bits/s; 0: measured.
    pub bandwidth: u64,
    /// RFC 5646 language of an audio rendition.
    pub language: Option<String>,
}

impl RenditionSpec {
    /// The single layout: every track in the session's directory.
    pub fn single(tracks: usize) -> Vec<RenditionSpec> {
        vec![RenditionSpec {
            tracks: (0..tracks).collect(),
            ..Default::default()
        }]
    }
}

/// Whether `layout` is a ladder (directories per rendition).
pub fn is_ladder(layout: &[RenditionSpec]) -> bool {
    layout.iter().any(|r| !r.name.is_empty())
}

/// Which rendition of a ladder a request asks for (`rendition=`,
/// `height=`); by default the highest video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pick {
    pub name: Option<String>,
    pub height: Option<u32>,
}

impl Pick {
    /// Whether the request named no rendition (a ladder then answers a
    /// multivariant playlist where it can).
    pub fn is_default(&self) -> bool {
        self.name.is_none() && self.height.is_none()
    }
}

/// What the multivariant playlist says of one rendition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rendition {
    pub name: String,
    pub kind: TrackKind,
    /// RFC 6381 codec string of its own media.
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
    /// Peak bits per second of its own media (declared or measured; for a
    /// video variant read back, with its audio).
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub language: Option<String>,
    pub channels: Option<u32>,
}

/// Renders the multivariant playlist: a variant per video rendition, with
/// the audio renditions as one EXT-X-MEDIA group (each variant's BANDWIDTH
/// and CODECS count the highest audio in); or, without video, a variant per
/// audio rendition. `uri(name)` is each rendition's media playlist.
pub fn render_master(renditions: &[Rendition], uri: impl Fn(&str) -> String) -> String {
    let audio: Vec<&Rendition> = renditions
        .iter()
        .filter(|r| r.kind == TrackKind::Audio)
        .collect();
    let video: Vec<&Rendition> = renditions
        .iter()
        .filter(|r| r.kind == TrackKind::Video)
        .collect();
    let mut playlist = MasterPlaylist {
        version: Some(7),
        independent_segments: true,
        ..Default::default()
    };
    let variant = |r: &Rendition, with_audio: bool| {
        let audio_peak = if with_audio {
            audio.iter().map(|a| a.bandwidth).max().unwrap_or(0)
        } else {
            0
        };
        let audio_average = if with_audio {
            audio
                .iter()
                .filter_map(|a| a.average_bandwidth)
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let mut codecs = vec![r.codecs.clone()];
        if with_audio {
            for a in &audio {
                if !codecs.contains(&a.codecs) {
                    codecs.push(a.codecs.clone());
                }
            }
        }
        VariantStream {
            uri: uri(&r.name),
            bandwidth: (r.bandwidth + audio_peak).max(1),
            average_bandwidth: r.average_bandwidth.map(|b| b + audio_average),
            codecs: Some(codecs.join(",")),
            resolution: (r.kind == TrackKind::Video && r.width > 0).then_some(Resolution {
                width: u64::from(r.width),
                height: u64::from(r.height),
            }),
            frame_rate: r.frame_rate.map(|f| (f * 1000.0).round() / 1000.0),
            audio: (with_audio && !audio.is_empty()).then(|| AUDIO_GROUP.to_string()),
            ..Default::default()
        }
    };
    if video.is_empty() {
        playlist.variants = audio.iter().map(|r| variant(r, false)).collect();
    } else {
        playlist.alternatives = audio
            .iter()
            .enumerate()
            .map(|(i, r)| AlternativeMedia {
                media_type: AlternativeMediaType::Audio,
                uri: Some(uri(&r.name)),
                group_id: AUDIO_GROUP.into(),
                language: r.language.clone(),
                name: r.name.clone(),
                default: i == 0,
                autoselect: true,
                channels: r.channels.map(|c| c.to_string()),
                ..Default::default()
            })
            .collect();
        playlist.variants = video.iter().map(|r| variant(r, true)).collect();
    }
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .expect("writing to a Vec does not fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
}

/// The rendition a media playlist URI of [`render_master`] names: its first
/// path component (`720p/replay.m3u8`).
fn name_of(uri: &str) -> String {
    uri.split('/').next().unwrap_or_default().to_string()
}

/// Reads the renditions back from a stored multivariant playlist, video
/// first. `None` if it is not one.
pub fn parse_master(text: &[u8]) -> Option<Vec<Rendition>> {
    let Ok(Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(text) else {
        return None;
    };
    let mut out: Vec<Rendition> = master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| {
            let kind = if v.resolution.is_some() {
                TrackKind::Video
            } else {
                TrackKind::Audio
            };
            Rendition {
                name: name_of(&v.uri),
                kind,
                codecs: v.codecs.clone().unwrap_or_default(),
                width: v.resolution.map_or(0, |r| r.width as u32),
                height: v.resolution.map_or(0, |r| r.height as u32),
                frame_rate: v.frame_rate,
                bandwidth: v.bandwidth,
                average_bandwidth: v.average_bandwidth,
                ..Default::default()
            }
        })
        .collect();
    for a in &master.alternatives {
        if a.media_type != AlternativeMediaType::Audio {
            continue;
        }
        let Some(uri) = &a.uri else { continue };
        out.push(Rendition {
            name: name_of(uri),
            kind: TrackKind::Audio,
            language: a.language.clone(),
            channels: a.channels.as_deref().and_then(|c| c.parse().ok()),
            ..Default::default()
        });
    }
    Some(out)
}

/// Points every URI of a multivariant playlist (variants and EXT-X-MEDIA)
/// somewhere else: `uri(name)` for the rendition each names.
pub fn rewrite_master(text: &str, uri: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(&uri(&name_of(line)));
        } else if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            match rest.find('"') {
                Some(q) => {
                    out.push_str(&line[..i + 5]);
                    out.push_str(&uri(&name_of(&rest[..q])));
                    out.push_str(&rest[q..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The rendition a request picks: by name, else the one closest to
/// `height` (the higher of two as close), else the highest video (by
/// height, then bandwidth). Audio renditions are picked by name only.
pub fn pick<'a>(
    renditions: &'a [Rendition],
    name: Option<&str>,
    height: Option<u32>,
) -> Result<&'a Rendition, String> {
    let names = || {
        renditions
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = name {
        return renditions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("no rendition {name:?}; this session has {}", names()));
    }
    let video = renditions.iter().filter(|r| r.kind == TrackKind::Video);
    let best = match height {
        Some(h) => video.min_by_key(|r| (r.height.abs_diff(h), u32::MAX - r.height)),
        None => video.max_by_key(|r| (r.height, r.bandwidth)),
    };
    best.or_else(|| renditions.first())
        .ok_or_else(|| "the session has no renditions".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Vec<Rendition> {
        let v = |name: &str, w, h, bw| Rendition {
            name: name.into(),
            kind: TrackKind::Video,
            codecs: "avc1.64001f".into(),
            width: w,
            height: h,
            frame_rate: Some(30000.0 / 1001.0),
            bandwidth: bw,
            average_bandwidth: Some(bw / 2),
            ..Default::default()
        };
        vec![
            v("720p", 1280, 720, 3_000_000),
            v("1080p", 1920, 1080, 6_000_000),
            v("360p", 640, 360, 800_000),
            Rendition {
                name: "en".into(),
                kind: TrackKind::Audio,
                codecs: "mp4a.40.2".into(),
                bandwidth: 128_000,
                average_bandwidth: Some(128_000),
                language: Some("en".into()),
                channels: Some(2),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn the_master_names_every_rendition_and_reads_back() {
        let text = render_master(&ladder(), |n| format!("{n}/replay.m3u8"));
        let Ok(Playlist::MasterPlaylist(m)) = m3u8_rs::parse_playlist_res(text.as_bytes()) else {
            panic!("not a master playlist: {text}");
        };
        assert_eq!(m.variants.len(), 3);
        let v = &m.variants[1];
        assert_eq!(v.uri, "1080p/replay.m3u8");
        assert_eq!(v.bandwidth, 6_128_000, "the audio counts in");
        assert_eq!(v.average_bandwidth, Some(3_128_000));
        assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(v.resolution.unwrap().height, 1080);
        assert_eq!(v.frame_rate, Some(29.97));
        assert_eq!(v.audio.as_deref(), Some("audio"));
        assert_eq!(m.alternatives.len(), 1);
        let a = &m.alternatives[0];
        assert_eq!(a.uri.as_deref(), Some("en/replay.m3u8"));
        assert!(a.default && a.autoselect);
        assert_eq!(a.language.as_deref(), Some("en"));
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{text}");

        let back = parse_master(text.as_bytes()).unwrap();
        let names: Vec<&str> = back.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "1080p", "360p", "en"]);
        assert_eq!(back[3].kind, TrackKind::Audio);

        let moved = rewrite_master(&text, |n| format!("video.m3u8?rendition={n}"));
        let again = parse_master(moved.as_bytes()).unwrap();
        assert_eq!(again.len(), 4);
        assert!(moved.contains("URI=\"video.m3u8?rendition=en\""), "{moved}");
        assert!(moved.contains("\nvideo.m3u8?rendition=360p\n"), "{moved}");
    }

    #[test]
    fn audio_alone_is_a_variant_per_rendition() {
        let audio = vec![ladder().pop().unwrap()];
        let text = render_master(&audio, |n| format!("{n}/replay.m3u8"));
        let back = parse_master(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kind, TrackKind::Audio);
        assert!(!text.contains("EXT-X-MEDIA:"), "{text}");
    }

    #[test]
    fn picks_by_name_height_or_the_highest() {
        let l = ladder();
        assert_eq!(pick(&l, None, None).unwrap().name, "1080p");
        assert_eq!(pick(&l, Some("360p"), None).unwrap().name, "360p");
        assert_eq!(pick(&l, None, Some(700)).unwrap().name, "720p");
        assert_eq!(
            pick(&l, None, Some(540)).unwrap().name,
            "720p",
            "ties go up"
        );
        assert_eq!(pick(&l, None, Some(100)).unwrap().name, "360p");
        let e = pick(&l, Some("4k"), None).unwrap_err();
        assert!(e.contains("720p, 1080p, 360p, en"), "{e}");
    }
}
