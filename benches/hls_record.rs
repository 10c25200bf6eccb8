// SPDX-License-Identifier: MPL-2.0
//! Records the same pre-encoded 60 s 1080p stream, as fast as possible, with
//! hlsclipsink, hlssink2 and `ffmpeg -c copy -f hls -hls_segment_type fmp4`,
//! and measures CPU time against the floor (demux and parse into fakesink).
//! The measurement is `common::hls_record`, which `benches/scale.rs` runs
//! too.
//!
//! `cargo bench --bench hls_record`

mod common;

const RUNS: usize = 5;

fn main() {
    gst::init().unwrap();
    let out = tempfile::tempdir().unwrap();
    let results = common::hls_record::measure(RUNS, out.path());
    common::hls_record::print(&results, RUNS);
}
