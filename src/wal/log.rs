//! raft log semantics over the entries of a WAL, as etcd's `ReadAll` applies
//! them: an entry whose index is lower than or equal to an earlier one
//! replaces it and everything after it (a new leader overwrote uncommitted
//! entries); an index that skips ahead leaves a gap etcd refuses
//! (`ErrSliceOutOfRange`).
//!
//! Only the term of each index is kept (8 bytes an entry), so memory grows
//! with the entries actually read, never with a length from disk.

use super::ids::{Index, Term};

/// A hole in the log: entries `after+1 .. next-1` are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// Last index before the hole.
    pub after: Index,
    /// First index after it.
    pub next: Index,
}

/// What appending did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The next index.
    Next,
    /// Replaced this many entries from the same index on.
    Replaced(u64),
    /// Skipped ahead.
    Gap(Gap),
    /// Index 0: etcd ignores it.
    Ignored,
}

/// The terms of the log, by index.
#[derive(Clone, Debug, Default)]
pub struct Log {
    base: u64,
    terms: Vec<u64>,
    /// Entries replaced so far.
    pub replaced: u64,
    /// Gaps so far (the log restarts after each).
    pub gaps: Vec<Gap>,
}

impl Log {
    /// Appends an entry.
    pub fn append(&mut self, index: Index, term: Term) -> Appended {
        let i = index.0;
        if i == 0 {
            return Appended::Ignored;
        }
        if self.terms.is_empty() {
            self.base = i;
            self.terms.push(term.0);
            return Appended::Next;
        }
        // The last index is at most u64::MAX, but the one after it may not
        // exist: compare with the last, never compute the next.
        let last = self.base + (self.terms.len() as u64 - 1);
        if i > last && i - 1 == last {
            self.terms.push(term.0);
            Appended::Next
        } else if i <= last {
            let keep = i.saturating_sub(self.base) as usize;
            let n = (self.terms.len() - keep) as u64;
            self.terms.truncate(keep);
            if keep == 0 {
                self.base = i;
            }
            self.terms.push(term.0);
            self.replaced += n;
            Appended::Replaced(n)
        } else {
            let g = Gap {
                after: Index(last),
                next: index,
            };
            self.gaps.push(g);
            self.base = i;
            self.terms.clear();
            self.terms.push(term.0);
            Appended::Gap(g)
        }
    }

    /// First index (after the last gap).
    pub fn first(&self) -> Option<Index> {
        (!self.terms.is_empty()).then_some(Index(self.base))
    }

    /// Last index.
    pub fn last(&self) -> Option<Index> {
        (!self.terms.is_empty()).then(|| Index(self.base + (self.terms.len() as u64 - 1)))
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> Option<Term> {
        self.terms.last().map(|&t| Term(t))
    }

    /// Term of the entry at `index`, if the log holds it.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        let off = index.0.checked_sub(self.base)?;
        self.terms.get(usize::try_from(off).ok()?).map(|&t| Term(t))
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.terms.len() as u64
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Which of the entry records read in file order raft keeps in its log:
/// `false` for one that a later record with the same or a lower index
/// replaced (a new leader overwrote it), and for records etcd does not read
/// (`seen` false: found by salvage).
pub fn kept_by_raft(records: impl Iterator<Item = (Index, bool)>) -> Vec<bool> {
    let mut n = 0;
    let mut stack: Vec<(Index, usize)> = Vec::new();
    for (i, (index, seen)) in records.enumerate() {
        n = i + 1;
        if !seen {
            continue;
        }
        while stack.last().is_some_and(|(idx, _)| *idx >= index) {
            stack.pop();
        }
        stack.push((index, i));
    }
    let mut kept = vec![false; n];
    for (_, i) in stack {
        kept[i] = true;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_and_gap() {
        let mut l = Log::default();
        for i in 1..=5 {
            assert_eq!(l.append(Index(i), Term(1)), Appended::Next);
        }
        // a new leader at term 2 overwrites 4 and 5
        assert_eq!(l.append(Index(4), Term(2)), Appended::Replaced(2));
        assert_eq!((l.last(), l.last_term()), (Some(Index(4)), Some(Term(2))));
        assert_eq!(l.term_at(Index(3)), Some(Term(1)));
        assert_eq!(l.term_at(Index(5)), None);
        assert_eq!(
            l.append(Index(9), Term(2)),
            Appended::Gap(Gap {
                after: Index(4),
                next: Index(9)
            })
        );
        assert_eq!((l.first(), l.len()), (Some(Index(9)), 1));
        assert_eq!(l.append(Index(0), Term(2)), Appended::Ignored);
        assert_eq!(l.append(Index(3), Term(3)), Appended::Replaced(1));
        assert_eq!(l.first(), Some(Index(3)));
    }

    #[test]
    fn the_last_possible_index_does_not_overflow() {
        let mut l = Log::default();
        assert_eq!(l.append(Index(u64::MAX - 1), Term(1)), Appended::Next);
        assert_eq!(l.append(Index(u64::MAX), Term(1)), Appended::Next);
        assert_eq!(l.last(), Some(Index(u64::MAX)));
        assert_eq!(l.append(Index(u64::MAX), Term(2)), Appended::Replaced(1));
        assert_eq!(l.term_at(Index(u64::MAX)), Some(Term(2)));
        assert_eq!(l.append(Index(1), Term(3)), Appended::Replaced(2));
        assert_eq!((l.first(), l.last()), (Some(Index(1)), Some(Index(1))));
    }

    #[test]
    fn kept_by_raft_follows_the_replace_rule() {
        let recs = [(1, true), (2, true), (3, true), (2, true), (3, false), (3, true)];
        let kept = kept_by_raft(recs.iter().map(|&(i, s)| (Index(i), s)));
        assert_eq!(kept, [true, false, false, true, false, true]);
    }
}
