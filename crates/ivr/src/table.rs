//! A flat hash table from caller numbers to their flags, built for one cache miss per lookup.
//!
//! A general-purpose map (SwissTable) keeps its control bytes apart from its entries, so a hit
//! in a table far larger than the CPU caches costs two dependent memory accesses. Here each slot
//! is 16 bytes, the number and its (packed) flag side by side, four to a cache line; with linear
//! probing at most 5/8 full, a lookup nearly always reads one line. Numbers on several
//! incidents at once (rare) keep their flags in a side slab.
//!
//! One cache line is not the whole cost: at ten million numbers the slots take half a
//! gigabyte, and with 4 KiB pages every lookup also misses the TLB, whose page walk is several
//! more dependent memory reads (more still in a virtual machine). So a table of a huge page
//! (2 MiB on x86-64) or more keeps its slots in an anonymous map advised for transparent huge
//! pages, which the TLB covers whole (a third off a lookup at ten million numbers); smaller
//! tables, a failed map and other systems than Linux use a plain `Vec`.

use outagecast_core::contact::Language;
use outagecast_core::incident::IncidentId;

/// One number's flag for one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlagRef {
    pub(crate) incident: IncidentId,
    pub(crate) language: Language,
}

/// A slot: `key` 0 is empty (E.164 digits never are 0). `value` holds one flag inline
/// (`incident << 2 | language`), or with [`SLAB`] set, an index into the slab.
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Slot {
    key: u64,
    value: u64,
}

const SLAB: u64 = 1 << 63;
/// Incident ids up to this are packed inline (SQLite ids count up from 1; larger ones go to
/// the slab, so nothing breaks, it is only slower).
const MAX_INLINE_ID: i64 = (1 << 60) - 1;

fn lang_bits(l: Language) -> u64 {
    match l {
        Language::Fi => 0,
        Language::Sv => 1,
        Language::En => 2,
    }
}

fn pack(f: FlagRef) -> Option<u64> {
    (0..=MAX_INLINE_ID)
        .contains(&f.incident.0)
        .then(|| ((f.incident.0 as u64) << 2) | lang_bits(f.language))
}

fn unpack(v: u64) -> FlagRef {
    FlagRef {
        incident: IncidentId((v >> 2) as i64),
        language: match v & 3 {
            0 => Language::Fi,
            1 => Language::Sv,
            _ => Language::En,
        },
    }
}

/// A number's flags as found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Found<'a> {
    One(FlagRef),
    Many(&'a [FlagRef]),
}

impl Found<'_> {
    pub(crate) fn as_slice(&self) -> &[FlagRef] {
        match self {
            Found::One(f) => std::slice::from_ref(f),
            Found::Many(all) => all,
        }
    }
}

/// The slots' memory, all zero (empty) when made: a `Vec`, or for a large table on Linux an
/// anonymous map advised for huge pages.
enum Slots {
    Heap(Vec<Slot>),
    /// `len` slots from byte `start` of `map`, which is a huge page's size in (so the slots
    /// begin on a huge page's boundary, wherever the map landed).
    #[cfg(target_os = "linux")]
    Mapped {
        map: memmap2::MmapMut,
        start: usize,
        len: usize,
    },
}

/// The huge page size (x86-64, and aarch64 with 4 KiB base pages); a table of less than one
/// gains nothing from a map of its own.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

impl Slots {
    /// `n` empty slots.
    fn zeroed(n: usize) -> Slots {
        #[cfg(target_os = "linux")]
        if let Some(mapped) = Self::mapped(n) {
            return mapped;
        }
        Slots::Heap(vec![Slot::default(); n])
    }

    /// `n` empty slots in an anonymous map advised for huge pages, if the table is large enough
    /// to gain from one and the map can be had. The kernel zero-fills the map; nothing touches
    /// it before the advice, so every page is faulted in after it (as a huge one, when the
    /// kernel has one to give).
    #[cfg(target_os = "linux")]
    fn mapped(n: usize) -> Option<Slots> {
        let bytes = n.checked_mul(size_of::<Slot>())?;
        if bytes < HUGE_PAGE {
            return None;
        }
        // One huge page more than needed, to start the slots on a huge page boundary.
        let map = memmap2::MmapMut::map_anon(bytes.checked_add(HUGE_PAGE)?).ok()?;
        // Without the advice (huge pages off, or not built into the kernel) the map is still
        // good memory, only paged in 4 KiB pages.
        let _ = map.advise(memmap2::Advice::HugePage);
        let start = (HUGE_PAGE - map.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE;
        Some(Slots::Mapped { map, start, len: n })
    }
}

impl Default for Slots {
    fn default() -> Self {
        Slots::Heap(Vec::new())
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        match self {
            Slots::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Slots::Mapped { map, start, len } => {
                bytemuck::cast_slice(&map[*start..*start + *len * size_of::<Slot>()])
            }
        }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [Slot] {
        match self {
            Slots::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Slots::Mapped { map, start, len } => {
                bytemuck::cast_slice_mut(&mut map[*start..*start + *len * size_of::<Slot>()])
            }
        }
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Slots::Heap(_) => "heap",
            #[cfg(target_os = "linux")]
            Slots::Mapped { .. } => "huge-page map",
        };
        f.debug_struct("Slots")
            .field("len", &self.len())
            .field("memory", &kind)
            .finish()
    }
}

/// The table.
#[derive(Debug, Default)]
pub(crate) struct NumberTable {
    /// A power of two in length, or empty.
    slots: Slots,
    len: usize,
    slab: Vec<Box<[FlagRef]>>,
    free: Vec<usize>,
}

/// SplitMix64's finaliser: phone numbers are far from random (long runs of neighbours), and
/// linear probing needs their homes spread evenly.
fn mix(key: u64) -> u64 {
    let mut z = key;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl NumberTable {
    /// A table sized for `n` numbers.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut t = NumberTable::default();
        if n > 0 {
            t.slots = Slots::zeroed(Self::slots_for(n));
        }
        t
    }

    fn slots_for(n: usize) -> usize {
        // At most 5/8 full.
        (n.saturating_mul(8) / 5 + 1).next_power_of_two().max(8)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, key: u64) -> usize {
        (mix(key) as usize) & self.mask()
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn probe(&self, key: u64) -> (usize, bool) {
        let slots: &[Slot] = &self.slots;
        let mask = slots.len() - 1;
        let mut i = (mix(key) as usize) & mask;
        loop {
            let k = slots[i].key;
            if k == key {
                return (i, true);
            }
            if k == 0 {
                return (i, false);
            }
            i = (i + 1) & mask;
        }
    }

    /// The flags of `key`.
    pub(crate) fn get(&self, key: u64) -> Option<Found<'_>> {
        if self.slots.is_empty() || key == 0 {
            return None;
        }
        let (i, found) = self.probe(key);
        if !found {
            return None;
        }
        let v = self.slots[i].value;
        Some(if v & SLAB == 0 {
            Found::One(unpack(v))
        } else {
            Found::Many(self.slab.get((v & !SLAB) as usize).map_or(&[], |b| b))
        })
    }

    fn store(&mut self, flags: &[FlagRef]) -> u64 {
        if let [one] = flags
            && let Some(v) = pack(*one)
        {
            return v;
        }
        let boxed: Box<[FlagRef]> = flags.into();
        let at = match self.free.pop() {
            Some(at) => {
                self.slab[at] = boxed;
                at
            }
            None => {
                self.slab.push(boxed);
                self.slab.len() - 1
            }
        };
        SLAB | at as u64
    }

    fn release(&mut self, value: u64) {
        if value & SLAB != 0 {
            let at = (value & !SLAB) as usize;
            if let Some(b) = self.slab.get_mut(at) {
                *b = Box::new([]);
                self.free.push(at);
            }
        }
    }

    /// Replaces the flags of `key` (`key` must not be 0); an empty list removes it.
    fn put(&mut self, key: u64, flags: &[FlagRef]) {
        if flags.is_empty() {
            self.remove(key);
            return;
        }
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let (i, found) = self.probe(key);
        if found {
            let old = self.slots[i].value;
            self.release(old);
        } else {
            self.len += 1;
        }
        let value = self.store(flags);
        self.slots[i] = Slot { key, value };
    }

    /// Sets `f` for `key`, replacing any flag for the same incident. `true` when the number had
    /// none for that incident before.
    pub(crate) fn set(&mut self, key: u64, f: FlagRef) -> bool {
        if key == 0 {
            return false;
        }
        if self.get(key).is_none() {
            // The usual case: a number on one incident, stored inline without a detour.
            self.put(key, std::slice::from_ref(&f));
            return true;
        }
        let mut flags: Vec<FlagRef> = self
            .get(key)
            .map(|found| found.as_slice().to_vec())
            .unwrap_or_default();
        let fresh = match flags.iter_mut().find(|x| x.incident == f.incident) {
            Some(existing) if *existing == f => return false,
            Some(existing) => {
                *existing = f;
                false
            }
            None => {
                flags.push(f);
                true
            }
        };
        self.put(key, &flags);
        fresh
    }

    /// Removes the flag of `key` for `incident`; `true` if there was one.
    pub(crate) fn unset(&mut self, key: u64, incident: IncidentId) -> bool {
        let Some(found) = self.get(key) else {
            return false;
        };
        let all = found.as_slice();
        if !all.iter().any(|f| f.incident == incident) {
            return false;
        }
        let rest: Vec<FlagRef> = all
            .iter()
            .copied()
            .filter(|f| f.incident != incident)
            .collect();
        self.put(key, &rest);
        true
    }

    /// Removes `key` altogether, shifting later entries of its probe run back so that no
    /// lookup stops early at the hole (no tombstones).
    fn remove(&mut self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let (mut hole, found) = self.probe(key);
        if !found {
            return;
        }
        let old = self.slots[hole].value;
        self.release(old);
        self.len -= 1;
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = self.slots[j];
            if slot.key == 0 {
                break;
            }
            let home = self.home(slot.key);
            // The entry at j may move into the hole unless its home lies cyclically in
            // (hole, j]: then it would move before its own home and become unreachable.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
    }

    fn grow(&mut self) {
        let bigger = Self::slots_for(self.len + 1).max(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(bigger));
        for &slot in old.iter().filter(|s| s.key != 0) {
            let (i, _) = self.probe(slot.key);
            self.slots[i] = slot;
        }
    }

    /// Keeps the flags for which `keep` holds; returns how many went. Rebuilds the table (it
    /// runs when incidents end, not per lookup).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, &FlagRef) -> bool) -> usize {
        let mut removed = 0;
        let mut survivors: Vec<(u64, Vec<FlagRef>)> = Vec::new();
        let mut untouched = true;
        for slot in self.slots.iter().filter(|s| s.key != 0) {
            let flags: Vec<FlagRef> = if slot.value & SLAB == 0 {
                vec![unpack(slot.value)]
            } else {
                self.slab
                    .get((slot.value & !SLAB) as usize)
                    .map(|b| b.to_vec())
                    .unwrap_or_default()
            };
            let before = flags.len();
            let kept: Vec<FlagRef> = flags.into_iter().filter(|f| keep(slot.key, f)).collect();
            if kept.len() != before {
                untouched = false;
                removed += before - kept.len();
            }
            if !kept.is_empty() {
                survivors.push((slot.key, kept));
            }
        }
        if untouched {
            return 0;
        }
        let mut fresh = NumberTable::with_capacity(survivors.len());
        for (key, flags) in survivors {
            fresh.put(key, &flags);
        }
        *self = fresh;
        removed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn flag(id: i64, lang: u8) -> FlagRef {
        FlagRef {
            incident: IncidentId(id),
            language: match lang % 3 {
                0 => Language::Fi,
                1 => Language::Sv,
                _ => Language::En,
            },
        }
    }

    fn model_get(model: &HashMap<u64, Vec<FlagRef>>, key: u64) -> Vec<FlagRef> {
        model.get(&key).cloned().unwrap_or_default()
    }

    #[test]
    fn huge_incident_ids_still_work() {
        let mut t = NumberTable::default();
        let big = flag(i64::MAX, 1);
        assert!(t.set(358_401_234_567, big));
        assert_eq!(t.get(358_401_234_567).unwrap().as_slice(), [big]);
        assert!(t.unset(358_401_234_567, big.incident));
        assert!(t.get(358_401_234_567).is_none());
        assert!(!t.set(0, big), "0 is the empty marker, never a number");
    }

    /// A table of megabytes keeps its slots in a map starting on a huge page boundary (on
    /// Linux), and works the same through growth, removals and a rebuild.
    #[test]
    fn large_tables_work_from_a_map() {
        let number = |i: u64| 358_400_000_000 + i * 7;
        let mut t = NumberTable::with_capacity(100_000);
        #[cfg(target_os = "linux")]
        {
            assert!(matches!(t.slots, Slots::Mapped { .. }), "{:?}", t.slots);
            assert_eq!(t.slots.as_ptr() as usize % HUGE_PAGE, 0);
        }
        let before = t.slots.len();
        // Past the capacity, so the table grows into a new map.
        for i in 0..200_000 {
            assert!(t.set(number(i), flag(i as i64 % 7 + 1, 0)));
        }
        assert!(t.slots.len() > before);
        #[cfg(target_os = "linux")]
        assert!(matches!(t.slots, Slots::Mapped { .. }));
        for i in (0..200_000).step_by(2) {
            assert!(t.unset(number(i), IncidentId(i as i64 % 7 + 1)));
        }
        assert_eq!(t.len(), 100_000);
        for i in 0..200_000 {
            let got = t.get(number(i)).map(|f| f.as_slice().to_vec());
            let want = (i % 2 == 1).then(|| vec![flag(i as i64 % 7 + 1, 0)]);
            assert_eq!(got, want, "number {i}");
        }
        assert_eq!(t.retain(|_, f| f.incident.0 != 1), 100_000 / 7 + 1);
        assert!(t.get(number(7)).is_none());
        assert!(t.get(number(1)).is_some());
        // Small tables stay on the heap.
        let small = NumberTable::with_capacity(1_000);
        assert!(matches!(small.slots, Slots::Heap(_)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u64, i64, u8),
        Unset(u64, i64),
        RetainNot(i64),
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The table agrees with a plain map under any mix of operations, including keys that
        /// collide in small tables (few distinct keys, so runs form and removals shift them).
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(prop_oneof![
            8 => (1u64..40, 1i64..5, 0u8..3).prop_map(|(k, i, l)| Op::Set(k * 1_000_003, i, l)),
            4 => (1u64..40, 1i64..5).prop_map(|(k, i)| Op::Unset(k * 1_000_003, i)),
            1 => (1i64..5).prop_map(Op::RetainNot),
        ], 0..300)) {
            let mut t = NumberTable::default();
            let mut model: HashMap<u64, Vec<FlagRef>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Set(k, i, l) => {
                        let f = flag(i, l);
                        let entry = model.entry(k).or_default();
                        let fresh = match entry.iter_mut().find(|x| x.incident == f.incident) {
                            Some(x) => { *x = f; false }
                            None => { entry.push(f); true }
                        };
                        prop_assert_eq!(t.set(k, f), fresh);
                    }
                    Op::Unset(k, i) => {
                        let entry = model.entry(k).or_default();
                        let had = entry.iter().any(|x| x.incident.0 == i);
                        entry.retain(|x| x.incident.0 != i);
                        prop_assert_eq!(t.unset(k, IncidentId(i)), had);
                    }
                    Op::RetainNot(i) => {
                        let before: usize = model.values().map(Vec::len).sum();
                        for v in model.values_mut() {
                            v.retain(|x| x.incident.0 != i);
                        }
                        let after: usize = model.values().map(Vec::len).sum();
                        prop_assert_eq!(t.retain(|_, f| f.incident.0 != i), before - after);
                    }
                }
                model.retain(|_, v| !v.is_empty());
                prop_assert_eq!(t.len(), model.len());
                for k in 1u64..40 {
                    let key = k * 1_000_003;
                    let got = t.get(key).map(|f| f.as_slice().to_vec()).unwrap_or_default();
                    prop_assert_eq!(got, model_get(&model, key));
                }
            }
        }
    }
}
