//! Where a file is cut into segments: pure decisions from the spool's
//! settled point and the media time written so far.
//!
//! About every [`SEGMENT_MS`] the recorder asks for a keyframe (a VP8
//! keyframe starts a new cluster, whose start settles the bytes before it)
//! and cuts at the first settled point after that. At the end the rest of
//! the file is the last segment, and every earlier segment that finalize
//! wrote into is uploaded again.

use std::ops::Range;
use veche_protocol::limits::recording::SEGMENT_MS;

/// One upload to do: bytes `range` of the spool as segment `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The segment's position in the file.
    pub seq: u32,
    /// Its bytes in the spool file.
    pub range: Range<u64>,
    /// Media time covered, from the file's start.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// An earlier segment uploaded again with its final bytes.
    pub rewrite: bool,
}

/// What the segmenter wants after a frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Ask the video's publisher for a keyframe, so a cluster starts.
    pub request_keyframe: bool,
    /// Upload this segment now.
    pub upload: Option<Upload>,
}

/// The segmenter of one file.
#[derive(Debug, Default)]
pub struct Segmenter {
    /// Segments cut so far: (seq, bytes, start_ms, end_ms).
    cut: Vec<(u32, Range<u64>, u64, u64)>,
    /// Bytes uploaded (the end of the last cut).
    uploaded: u64,
    /// Media time where the current segment starts.
    start_ms: u64,
    /// A keyframe was asked for in the current segment.
    asked: bool,
}

impl Segmenter {
    /// Bytes handed out as segments so far.
    pub fn uploaded(&self) -> u64 {
        self.uploaded
    }

    /// Segments cut so far.
    pub fn segments(&self) -> usize {
        self.cut.len()
    }

    /// After a frame at media time `media_ms` was written, with the spool
    /// settled up to `settled` by a cluster that started at `settled_ms`.
    pub fn on_frame(&mut self, media_ms: u64, settled: u64, settled_ms: u64) -> Step {
        let mut step = Step::default();
        let due = self.start_ms + SEGMENT_MS;
        if settled > self.uploaded && settled_ms >= due {
            step.upload = Some(self.cut_at(settled, settled_ms));
            self.asked = false;
        } else if media_ms >= due && !self.asked {
            self.asked = true;
            step.request_keyframe = true;
        }
        step
    }

    fn cut_at(&mut self, end: u64, media_ms: u64) -> Upload {
        let seq = self.cut.len() as u32;
        let start_ms = self.start_ms;
        let end_ms = media_ms.max(start_ms);
        self.cut.push((seq, self.uploaded..end, start_ms, end_ms));
        let up = Upload {
            seq,
            range: self.uploaded..end,
            start_ms,
            end_ms,
            rewrite: false,
        };
        self.uploaded = end;
        self.start_ms = end_ms;
        up
    }

    /// After finalize: the file is `len` bytes, `duration_ms` long, and
    /// finalize wrote `dirty` ranges below uploaded bytes. Returns the
    /// last segment (if any bytes are left) and the re-uploads, and the
    /// seqs rewritten.
    pub fn finish(&mut self, len: u64, duration_ms: u64, dirty: &[(u64, u64)]) -> Vec<Upload> {
        let mut out = Vec::new();
        for (seq, range, start_ms, end_ms) in &self.cut {
            let touched = dirty.iter().any(|&(a, b)| a < range.end && b > range.start);
            if touched {
                out.push(Upload {
                    seq: *seq,
                    range: range.clone(),
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                    rewrite: true,
                });
            }
        }
        if len > self.uploaded {
            let mut last = self.cut_at(len, duration_ms);
            last.end_ms = duration_ms.max(last.start_ms);
            out.push(last);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_cut_only_at_a_settled_point_after_the_segment_length() {
        let mut s = Segmenter::default();
        // Settled points before 10 s do not cut.
        assert_eq!(s.on_frame(4_000, 5_000, 4_000), Step::default());
        // At 10 s with nothing newly settled: ask for a keyframe, once.
        let st = s.on_frame(10_000, 5_000, 4_000);
        assert!(st.request_keyframe && st.upload.is_none());
        let st = s.on_frame(10_100, 5_000, 4_000);
        assert!(!st.request_keyframe && st.upload.is_none());
        // The keyframe started a cluster: cut there.
        let st = s.on_frame(10_300, 9_000, 10_300);
        let up = st.upload.expect("cut at the settled point");
        assert_eq!(
            (up.seq, up.range, up.start_ms, up.end_ms),
            (0, 0..9_000, 0, 10_300)
        );
        // The next segment counts from that cut.
        assert_eq!(s.on_frame(15_000, 12_000, 15_000), Step::default());
        let up = s
            .on_frame(20_400, 13_000, 20_300)
            .upload
            .expect("second segment");
        assert_eq!((up.seq, up.range, up.end_ms), (1, 9_000..13_000, 20_300));
    }

    #[test]
    fn finishing_uploads_the_rest_and_every_segment_finalize_touched() {
        let mut s = Segmenter::default();
        s.on_frame(10_000, 1_000, 10_000).upload.unwrap();
        s.on_frame(20_000, 2_000, 20_000).upload.unwrap();
        let ups = s.finish(3_000, 25_000, &[(40, 48), (100, 120)]);
        assert_eq!(ups.len(), 2);
        assert!(ups[0].rewrite && ups[0].seq == 0 && ups[0].range == (0..1_000));
        assert!(!ups[1].rewrite && ups[1].seq == 2 && ups[1].range == (2_000..3_000));
        assert_eq!((ups[1].start_ms, ups[1].end_ms), (20_000, 25_000));
    }
}
