//! The engine's queue of due times: a calendar of buckets one tick wide over the next
//! [`HORIZON`] ticks, and a heap for what is due later.
//!
//! A binary heap of every target costs a probe a cache line per level (a pop sifts down the
//! whole depth of the heap, which grows with the fleet), all cold at a low probe rate. Here a
//! probe's entry goes into the bucket of its tick and comes out with the rest of that bucket,
//! read in order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Ticks the ring covers (at 5 ms a tick, 82 s: the usual intervals stay in the ring).
pub const HORIZON: u64 = 1 << 14;

/// An entry: `(due ms, id)`.
pub type Due = (u64, u64);

pub struct Calendar {
    /// `ring[tick % HORIZON]`: the entries of that tick, for ticks `base..base + HORIZON`.
    ring: Vec<Vec<Due>>,
    /// One bit a bucket: set when it holds entries.
    occupied: Vec<u64>,
    /// The first tick not yet taken; every entry is at this tick or later.
    base: u64,
    /// Entries due at `base + HORIZON` or later, as `(tick, due, id)`.
    later: BinaryHeap<Reverse<(u64, u64, u64)>>,
    /// The earliest tick holding an entry, when known (`None`: empty).
    head: Option<u64>,
    /// `head` must be found again (entries were taken).
    stale: bool,
    tick_ms: u64,
}

impl Calendar {
    pub fn new(tick_ms: u64) -> Calendar {
        Calendar {
            ring: (0..HORIZON).map(|_| Vec::new()).collect(),
            occupied: vec![0; (HORIZON / 64) as usize],
            base: 0,
            later: BinaryHeap::new(),
            head: None,
            stale: false,
            tick_ms: tick_ms.max(1),
        }
    }

    /// The tick (on the grid) at which an entry due at `due_ms` starts.
    pub fn tick_of(&self, due_ms: u64) -> u64 {
        due_ms.div_ceil(self.tick_ms)
    }

    /// Adds an entry; one due before the first tick not yet taken goes into that tick.
    pub fn push(&mut self, due_ms: u64, id: u64) {
        let tick = self.tick_of(due_ms).max(self.base);
        self.place(tick, (due_ms, id));
        if !self.stale {
            self.head = Some(self.head.map_or(tick, |h| h.min(tick)));
        }
    }

    fn place(&mut self, tick: u64, entry: Due) {
        if tick - self.base < HORIZON {
            let i = (tick % HORIZON) as usize;
            self.ring[i].push(entry);
            self.occupied[i / 64] |= 1 << (i % 64);
        } else {
            self.later.push(Reverse((tick, entry.0, entry.1)));
        }
    }

    /// The earliest tick holding an entry.
    pub fn head(&mut self) -> Option<u64> {
        if self.stale {
            self.head = self.scan();
            self.stale = false;
        }
        self.head
    }

    fn scan(&self) -> Option<u64> {
        let ring = self.first_occupied().map(|i| self.base + (i + HORIZON - self.base % HORIZON) % HORIZON);
        let later = self.later.peek().map(|Reverse((tick, ..))| *tick);
        match (ring, later) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first occupied bucket at or after `base`, going round the ring once.
    fn first_occupied(&self) -> Option<u64> {
        let words = self.occupied.len() as u64;
        let start = self.base % HORIZON;
        let (w0, b0) = (start / 64, start % 64);
        for k in 0..=words {
            let w = (w0 + k) % words;
            let mut bits = self.occupied[w as usize];
            if k == 0 {
                bits &= !0u64 << b0;
            } else if k == words {
                // Back at the first word: only the bits before `start`.
                bits &= (1u64 << b0).wrapping_sub(1);
            }
            if bits != 0 {
                return Some(w * 64 + u64::from(bits.trailing_zeros()));
            }
        }
        None
    }

    /// Moves every entry of ticks up to and including `tick` to `out`, earliest tick first.
    pub fn take_until(&mut self, tick: u64, out: &mut Vec<Due>) {
        if tick < self.base {
            return;
        }
        let span = (tick - self.base + 1).min(HORIZON);
        for j in 0..span {
            let i = ((self.base + j) % HORIZON) as usize;
            if self.occupied[i / 64] & (1 << (i % 64)) != 0 {
                out.append(&mut self.ring[i]);
                self.occupied[i / 64] &= !(1 << (i % 64));
            }
        }
        self.base = tick + 1;
        // What the ring now covers comes out of the heap.
        while let Some(&Reverse((t, due, id))) = self.later.peek() {
            if t >= self.base + HORIZON {
                break;
            }
            self.later.pop();
            if t <= tick {
                out.push((due, id));
            } else {
                self.place(t, (due, id));
            }
        }
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry comes out exactly once, at the first take that reaches its tick, whether it
    /// sat in the ring or in the heap, across many turns of the ring.
    #[test]
    fn entries_come_out_once_at_their_tick() {
        let mut c = Calendar::new(5);
        let mut pending = std::collections::HashMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut now_tick = 0u64;
        let mut out = Vec::new();
        let mut id = 0u64;
        let mut taken = 0u64;
        for round in 0..6_000u64 {
            // New entries from 0 to 4 horizons ahead (some in the past: they go to the next tick).
            for _ in 0..3 {
                let ahead = next() % (4 * HORIZON * 5);
                let due = (now_tick * 5 + ahead).saturating_sub(if round % 7 == 0 { 40 } else { 0 });
                c.push(due, id);
                pending.insert(id, due);
                id += 1;
            }
            let head = c.head().expect("entries pending");
            let expected = pending.values().map(|d| c.tick_of(*d).max(now_tick + 1)).min();
            assert_eq!(Some(head.max(now_tick + 1)), expected, "head at round {round}");
            // Jump to the head, or step a little (takes that find nothing are allowed).
            now_tick = if round % 3 == 0 { head.max(now_tick + 1) } else { now_tick + 1 + next() % 50 };
            out.clear();
            c.take_until(now_tick, &mut out);
            taken += out.len() as u64;
            for (due, id) in &out {
                let was = pending.remove(id).expect("taken once");
                assert_eq!(was, *due);
                assert!(c.tick_of(*due) <= now_tick, "taken before its tick");
            }
            assert!(
                pending.values().all(|d| c.tick_of(*d) > now_tick),
                "an entry due by tick {now_tick} was left behind"
            );
        }
        assert_eq!(taken + pending.len() as u64, id, "entries lost");
    }

    #[test]
    fn empty_has_no_head_and_a_late_entry_goes_to_the_next_tick() {
        let mut c = Calendar::new(5);
        assert_eq!(c.head(), None);
        let mut out = Vec::new();
        c.take_until(100, &mut out);
        assert!(out.is_empty());
        assert_eq!(c.head(), None);
        c.push(3, 1);
        assert_eq!(c.head(), Some(101));
        c.take_until(101, &mut out);
        assert_eq!(out, vec![(3, 1)]);
        assert_eq!(c.head(), None);
    }
}
