// SPDX-License-Identifier: MPL-2.0
//! A track's recent samples in decode order, with keyframe lookup.
//!
//! Samples get a sequence number ("index") that stays valid when older samples
//! are dropped from the front, so callers can keep positions across drops.

use std::collections::VecDeque;

use super::Sample;

/// Samples of one track in decode order.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    samples: VecDeque<Sample>,
    /// Indices of keyframes, ascending.
    keyframes: VecDeque<u64>,
    /// Index of `samples[0]`.
    first: u64,
    bytes: usize,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample; returns its index.
    pub fn push(&mut self, sample: Sample) -> u64 {
        let index = self.end();
        if sample.keyframe {
            self.keyframes.push_back(index);
        }
        self.bytes += sample.size();
        self.samples.push_back(sample);
        index
    }

    /// Index of the oldest sample held (equal to [`end`](Self::end) when empty).
    pub fn start(&self) -> u64 {
        self.first
    }

    /// Index the next pushed sample will get.
    pub fn end(&self) -> u64 {
        self.first + self.samples.len() as u64
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&self, index: u64) -> Option<&Sample> {
        let offset = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.samples.get(offset)
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Samples with indices in `[from, to)`, clamped to what is held.
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = &Sample> {
        let from = from.clamp(self.first, self.end());
        let to = to.clamp(from, self.end());
        self.samples
            .range((from - self.first) as usize..(to - self.first) as usize)
    }

    /// The newest keyframe whose presentation time is at or before `pts`.
    pub fn keyframe_at_or_before(&self, pts: i64) -> Option<u64> {
        // Keyframe pts ascend in decode order for the closed GOPs we cut at.
        let n = self
            .keyframes
            .partition_point(|&i| self.get(i).is_some_and(|s| s.pts <= pts));
        n.checked_sub(1).map(|k| self.keyframes[k])
    }

    /// The oldest keyframe whose presentation time is at or after `pts`.
    pub fn keyframe_at_or_after(&self, pts: i64) -> Option<u64> {
        let n = self
            .keyframes
            .partition_point(|&i| self.get(i).is_some_and(|s| s.pts < pts));
        self.keyframes.get(n).copied()
    }

    /// The oldest keyframe with an index greater than `index`.
    pub fn next_keyframe_after(&self, index: u64) -> Option<u64> {
        let n = self.keyframes.partition_point(|&i| i <= index);
        self.keyframes.get(n).copied()
    }

    /// Index of the first sample (in decode order) presented mostly at or
    /// after `pts` (its middle, [`Sample::pts_mid`], is), for streams whose
    /// pts ascend (audio); `end()` if none.
    pub fn first_at_or_after(&self, pts: i64) -> u64 {
        self.first + self.samples.partition_point(|s| s.pts_mid() < pts) as u64
    }

    /// Drops every sample with an index below `index`.
    pub fn drop_before(&mut self, index: u64) {
        while self.first < index {
            let Some(s) = self.samples.pop_front() else {
                self.first = index;
                break;
            };
            self.bytes -= s.size();
            self.first += 1;
        }
        while self.keyframes.front().is_some_and(|&k| k < self.first) {
            self.keyframes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(pts: i64, dts: i64, key: bool) -> Sample {
        Sample {
            pts,
            dts,
            duration: 10,
            keyframe: key,
            access: crate::core::nal::Access::Unknown,
            data: Bytes::from(vec![0u8; 4]),
        }
    }

    /// I0 P3 B1 B2 | I4 P7 B5 B6 | I8 (decode order, pts in units of 10)
    fn gops() -> Timeline {
        let mut t = Timeline::new();
        for g in 0..3 {
            let b = g * 40;
            t.push(s(b, b - 10, true));
            if g < 2 {
                t.push(s(b + 30, b, false));
                t.push(s(b + 10, b + 10, false));
                t.push(s(b + 20, b + 20, false));
            }
        }
        t
    }

    #[test]
    fn keyframe_lookup() {
        let t = gops();
        assert_eq!(t.len(), 9);
        assert_eq!(t.bytes(), 36);
        assert_eq!(t.keyframe_at_or_before(0), Some(0));
        assert_eq!(t.keyframe_at_or_before(39), Some(0));
        assert_eq!(t.keyframe_at_or_before(40), Some(4));
        assert_eq!(t.keyframe_at_or_before(-1), None);
        assert_eq!(t.keyframe_at_or_after(1), Some(4));
        assert_eq!(t.keyframe_at_or_after(40), Some(4));
        assert_eq!(t.keyframe_at_or_after(81), None);
        assert_eq!(t.next_keyframe_after(0), Some(4));
        assert_eq!(t.next_keyframe_after(4), Some(8));
        assert_eq!(t.next_keyframe_after(8), None);
    }

    #[test]
    fn indices_survive_drops() {
        let mut t = gops();
        t.drop_before(4);
        assert_eq!(t.start(), 4);
        assert_eq!(t.end(), 9);
        assert_eq!(t.len(), 5);
        assert_eq!(t.bytes(), 20);
        assert!(t.get(3).is_none());
        assert_eq!(t.get(4).map(|s| s.pts), Some(40));
        assert_eq!(t.keyframe_at_or_before(39), None);
        assert_eq!(t.keyframe_at_or_before(45), Some(4));
        let pts: Vec<i64> = t.range(0, 7).map(|s| s.pts).collect();
        assert_eq!(pts, vec![40, 70, 50]);
        let idx = t.push(s(90, 90, false));
        assert_eq!(idx, 9);
        t.drop_before(100);
        assert!(t.is_empty());
        assert_eq!(t.start(), 100);
        assert_eq!(t.end(), 100);
        assert_eq!(t.bytes(), 0);
        assert_eq!(t.keyframe_at_or_before(1000), None);
    }

    #[test]
    fn first_at_or_after_for_audio() {
        let mut t = Timeline::new();
        for i in 0..10 {
            t.push(Sample {
                duration: 20,
                ..s(i * 20, i * 20, true)
            });
        }
        // A frame belongs after an instant when most of it is presented
        // after it: frame 0 spans 0..20, its middle is 10.
        assert_eq!(t.first_at_or_after(0), 0);
        assert_eq!(t.first_at_or_after(10), 0);
        assert_eq!(t.first_at_or_after(11), 1);
        assert_eq!(t.first_at_or_after(20), 1);
        assert_eq!(t.first_at_or_after(31), 2);
        assert_eq!(t.first_at_or_after(1000), 10);
    }
}
