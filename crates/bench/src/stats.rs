//! Small statistics over samples: sorted values, nearest-rank percentiles.

use std::time::Duration;

/// Samples in seconds (or any unit the caller picks), sorted ascending.
#[derive(Debug, Clone, Default)]
pub struct Dist {
    sorted: Vec<f64>,
}

impl Dist {
    pub fn new(mut values: Vec<f64>) -> Dist {
        values.retain(|v| v.is_finite());
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Dist { sorted: values }
    }

    pub fn from_durations<I: IntoIterator<Item = Duration>>(it: I) -> Dist {
        Dist::new(it.into_iter().map(|d| d.as_secs_f64()).collect())
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Nearest-rank percentile, `p` in 0..=100.
    pub fn pct(&self, p: f64) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, self.sorted.len()) - 1])
    }

    pub fn median(&self) -> Option<f64> {
        self.pct(50.0)
    }

    pub fn max(&self) -> Option<f64> {
        self.sorted.last().copied()
    }

    pub fn min(&self) -> Option<f64> {
        self.sorted.first().copied()
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.sorted.is_empty())
            .then(|| self.sorted.iter().sum::<f64>() / self.sorted.len() as f64)
    }

    pub fn values(&self) -> &[f64] {
        &self.sorted
    }
}

/// "0.95 s", "85 ms", "420 µs": seconds shown at a readable precision.
pub fn secs(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1} s")
    } else if v >= 1.0 {
        format!("{v:.2} s")
    } else if v >= 0.001 {
        format!("{:.0} ms", v * 1000.0)
    } else {
        format!("{:.0} µs", v * 1e6)
    }
}

pub fn opt_secs(v: Option<f64>) -> String {
    v.map(secs).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let d = Dist::new((1..=100).map(f64::from).collect());
        assert_eq!(d.pct(50.0), Some(50.0));
        assert_eq!(d.pct(99.0), Some(99.0));
        assert_eq!(d.pct(100.0), Some(100.0));
        assert_eq!(d.pct(0.0), Some(1.0));
        let one = Dist::new(vec![3.0]);
        assert_eq!(one.pct(99.0), Some(3.0));
        assert_eq!(Dist::default().median(), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(secs(12.34), "12.3 s");
        assert_eq!(secs(1.234), "1.23 s");
        assert_eq!(secs(0.0853), "85 ms");
        assert_eq!(secs(0.00042), "420 µs");
    }
}
