//! Half-open time spans in Unix milliseconds and the set operations the ledger needs.

/// `[start, end)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn new(start: i64, end: i64) -> Span {
        Span { start, end: end.max(start) }
    }

    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn clip(&self, to: Span) -> Option<Span> {
        let s = Span::new(self.start.max(to.start), self.end.min(to.end));
        (!s.is_empty()).then_some(s)
    }
}

/// Sorted, non-overlapping spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanSet(Vec<Span>);

impl SpanSet {
    pub fn new(mut spans: Vec<Span>) -> SpanSet {
        spans.retain(|s| !s.is_empty());
        spans.sort();
        let mut out: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match out.last_mut() {
                Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
                _ => out.push(s),
            }
        }
        SpanSet(out)
    }

    pub fn spans(&self) -> &[Span] {
        &self.0
    }

    pub fn total(&self) -> i64 {
        self.0.iter().map(Span::len).sum()
    }

    pub fn intersect(&self, other: &SpanSet) -> SpanSet {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < a.len() && j < b.len() {
            let s = Span::new(a[i].start.max(b[j].start), a[i].end.min(b[j].end));
            if !s.is_empty() {
                out.push(s);
            }
            if a[i].end < b[j].end {
                i += 1;
            } else {
                j += 1;
            }
        }
        SpanSet(out)
    }

    pub fn subtract(&self, other: &SpanSet) -> SpanSet {
        let mut out = Vec::new();
        for s in &self.0 {
            let mut cur = s.start;
            for o in other.0.iter().filter(|o| o.end > s.start && o.start < s.end) {
                if o.start > cur {
                    out.push(Span::new(cur, o.start));
                }
                cur = cur.max(o.end);
            }
            if cur < s.end {
                out.push(Span::new(cur, s.end));
            }
        }
        SpanSet(out)
    }

    pub fn clip(&self, to: Span) -> SpanSet {
        SpanSet(self.0.iter().filter_map(|s| s.clip(to)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[(i64, i64)]) -> SpanSet {
        SpanSet::new(v.iter().map(|(a, b)| Span::new(*a, *b)).collect())
    }

    #[test]
    fn merge_intersect_subtract() {
        let a = set(&[(0, 10), (5, 20), (30, 40)]);
        assert_eq!(a, set(&[(0, 20), (30, 40)]));
        assert_eq!(a.total(), 30);
        let b = set(&[(15, 35)]);
        assert_eq!(a.intersect(&b), set(&[(15, 20), (30, 35)]));
        assert_eq!(a.subtract(&b), set(&[(0, 15), (35, 40)]));
        assert_eq!(a.clip(Span::new(5, 32)), set(&[(5, 20), (30, 32)]));
        assert_eq!(set(&[(0, 10)]).subtract(&set(&[(0, 10)])).total(), 0);
    }
}
