//! A source's contacts: the first one held inline, a hash table from the
//! second on. Under a flood of spoofed sources nearly every source has one
//! contact and never a second; its table (allocated, its control bytes
//! written, later freed by eviction) was most of the detector's time on
//! such a flood, in cache misses on memory no other source shares.

use crate::{Contact, ContactInfo};
use foldhash::fast::RandomState;
use hashbrown::HashMap;

pub(crate) type ContactTable = HashMap<Contact, ContactInfo, RandomState>;

/// The contacts of one source. Invariant: when `one` holds a contact the
/// table is empty, so the contacts are `one` or the table's, never both.
#[derive(Default)]
pub(crate) struct ContactSet {
    one: Option<(Contact, ContactInfo)>,
    table: ContactTable,
}

impl ContactSet {
    /// A set of one contact, held inline.
    pub fn one(k: Contact, info: ContactInfo) -> ContactSet {
        ContactSet {
            one: Some((k, info)),
            table: ContactTable::default(),
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.one.is_some()) + self.table.len()
    }

    pub fn contains_key(&self, k: &Contact) -> bool {
        match &self.one {
            Some((c, _)) => c == k,
            None => self.table.contains_key(k),
        }
    }

    /// The contact `k`, made with `make` if new (then `true`). A second
    /// contact moves the first into a table: one of `spare` if there is
    /// one, else a new one.
    pub fn get_or_insert_with(
        &mut self,
        k: Contact,
        spare: &mut Vec<ContactTable>,
        make: impl FnOnce() -> ContactInfo,
    ) -> (&mut ContactInfo, bool) {
        if self.table.is_empty() {
            match self.one {
                None => {
                    let (_, info) = self.one.insert((k, make()));
                    return (info, true);
                }
                Some((c, _)) if c == k => {
                    let info = self.one.as_mut().map(|(_, i)| i);
                    // Just matched as Some.
                    return (info.expect("the inline contact"), false);
                }
                Some(_) => {
                    if self.table.capacity() == 0 {
                        if let Some(t) = spare.pop() {
                            self.table = t;
                        }
                    }
                    if let Some((c, i)) = self.one.take() {
                        self.table.insert(c, i);
                    }
                }
            }
        }
        match self.table.entry(k) {
            hashbrown::hash_map::Entry::Occupied(e) => (e.into_mut(), false),
            hashbrown::hash_map::Entry::Vacant(v) => (v.insert(make()), true),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Contact, &ContactInfo)> {
        self.one
            .iter()
            .map(|(c, i)| (c, i))
            .chain(self.table.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &Contact> {
        self.iter().map(|(c, _)| c)
    }

    pub fn values(&self) -> impl Iterator<Item = &ContactInfo> {
        self.iter().map(|(_, i)| i)
    }

    pub fn remove(&mut self, k: &Contact) -> Option<ContactInfo> {
        match self.one {
            Some((c, i)) if c == *k => {
                self.one = None;
                Some(i)
            }
            Some(_) => None,
            None => self.table.remove(k),
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Contact, &mut ContactInfo) -> bool) {
        if let Some((c, i)) = self.one.as_mut() {
            if !keep(c, i) {
                self.one = None;
            }
        }
        self.table.retain(|c, i| keep(c, i));
    }

    /// The table, emptied, for reuse by another source if it is of the
    /// smallest allocation (`max_capacity`).
    pub fn into_spare(self, max_capacity: usize) -> Option<ContactTable> {
        let mut t = self.table;
        (t.capacity() > 0 && t.capacity() <= max_capacity).then(|| {
            t.clear();
            t
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{Addr, ProbePrint, Technique};

    fn contact(port: u16) -> Contact {
        Contact {
            dst: Addr::from_v4([198, 51, 100, 7]),
            proto: 6,
            tech: Technique::Syn,
            port,
        }
    }

    fn info(first: i64) -> ContactInfo {
        ContactInfo {
            first,
            last: first,
            probes: 1,
            answered: 0,
            rejected: 1,
            unanswered: 0,
            success: false,
            handshake: false,
            abortive: false,
            print: ProbePrint::default(),
            sport: 40000,
        }
    }

    #[test]
    fn behaves_as_a_map_through_inline_and_table() {
        let mut s = ContactSet::default();
        let mut spare = Vec::new();
        let mut model: std::collections::BTreeMap<Contact, i64> = Default::default();
        // Insert, repeat, remove and retain through both forms, against a
        // plain map.
        let ops: [(u8, u16); 14] = [
            (0, 1),
            (0, 1),
            (1, 1),
            (0, 2),
            (0, 3),
            (0, 2),
            (1, 2),
            (1, 9),
            (2, 0),
            (0, 4),
            (1, 3),
            (1, 4),
            (0, 5),
            (0, 5),
        ];
        for (n, (op, port)) in ops.into_iter().enumerate() {
            let k = contact(port);
            match op {
                0 => {
                    let (i, new) = s.get_or_insert_with(k, &mut spare, || info(n as i64));
                    assert_eq!(new, !model.contains_key(&k));
                    i.probes += 1;
                    model.entry(k).or_insert(n as i64);
                }
                1 => assert_eq!(s.remove(&k).map(|i| i.first), model.remove(&k)),
                _ => {
                    s.retain(|c, _| c.port % 2 == 1);
                    model.retain(|c, _| c.port % 2 == 1);
                }
            }
            assert_eq!(s.len(), model.len());
            let mut got: Vec<(Contact, i64)> = s.iter().map(|(c, i)| (*c, i.first)).collect();
            got.sort();
            let want: Vec<(Contact, i64)> = model.iter().map(|(c, f)| (*c, *f)).collect();
            assert_eq!(got, want, "after op {n}");
            for p in 0..10 {
                assert_eq!(s.contains_key(&contact(p)), model.contains_key(&contact(p)));
            }
        }
    }

    #[test]
    fn a_lone_contact_allocates_no_table() {
        let mut s = ContactSet::default();
        let mut spare = Vec::new();
        s.get_or_insert_with(contact(80), &mut spare, || info(1));
        s.get_or_insert_with(contact(80), &mut spare, || info(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.table.capacity(), 0);
        assert!(s.into_spare(3).is_none());
    }

    #[test]
    fn a_second_contact_takes_a_spare_table() {
        let mut spare = vec![ContactTable::with_capacity_and_hasher(
            3,
            RandomState::default(),
        )];
        let cap = spare[0].capacity();
        let mut s = ContactSet::default();
        s.get_or_insert_with(contact(1), &mut spare, || info(1));
        s.get_or_insert_with(contact(2), &mut spare, || info(2));
        assert!(spare.is_empty());
        assert_eq!(s.len(), 2);
        let back = s.into_spare(cap).expect("the table goes back");
        assert!(back.is_empty());
    }
}
