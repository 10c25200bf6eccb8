// SPDX-License-Identifier: MPL-2.0
//! Time arithmetic shared by the MP4 writers and readers: nanoseconds and
//! track ticks, each conversion rounded to the nearest (never truncated,
//! so a value survives the round trip through a timescale that holds it).

pub use crate::core::NS;

/// `v / d` rounded to nearest (halves away from zero), saturated to i64.
fn div_round(v: i128, d: i128) -> i64 {
    let d = d.max(1);
    let r = if v >= 0 {
        (v + d / 2) / d
    } else {
        (v - d / 2) / d
    };
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `value * to / from`, rounded to nearest, saturating.
pub fn rescale(value: i64, from: u64, to: u64) -> i64 {
    div_round(i128::from(value) * i128::from(to), i128::from(from))
}

/// Nanoseconds to ticks of `timescale`.
pub fn ticks(ns: i64, timescale: u32) -> i64 {
    rescale(ns, NS, u64::from(timescale))
}

/// Ticks of `timescale` to nanoseconds (wide input: sums of many ticks).
pub fn to_ns(ticks: i128, timescale: u32) -> i64 {
    div_round(ticks.saturating_mul(i128::from(NS)), i128::from(timescale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_to_nearest_and_round_trip() {
        // 1/30 s at 15360 ticks/s is 512 ticks; 33_333_333 ns rounds to it.
        assert_eq!(ticks(33_333_333, 15_360), 512);
        assert_eq!(to_ns(512, 15_360), 33_333_333);
        // 29.97 fps at 30000: 1001 ticks a frame.
        assert_eq!(ticks(33_366_667, 30_000), 1001);
        assert_eq!(to_ns(1001, 30_000), 33_366_667);
        // Negative times (decode times before zero) round symmetrically.
        assert_eq!(ticks(-33_333_333, 15_360), -512);
        assert_eq!(to_ns(-512, 15_360), -33_333_333);
        for n in [0i64, 1, 7, 1_000_000_007, -41_666_667, 3_600_000_000_000] {
            assert_eq!(
                to_ns(i128::from(ticks(n, 90_000)), 90_000) / 11_112,
                n / 11_112
            );
        }
        assert_eq!(rescale(i64::MAX, 1, 1000), i64::MAX);
        assert_eq!(rescale(5, 0, 1), 5);
    }
}
