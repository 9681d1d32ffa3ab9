//! The caller index: E.164 caller number → the incidents to announce to that caller.
//!
//! # Layout and locking
//!
//! Numbers live in 64 shards. Each shard is one `RwLock` over a flat hash table (numbers and
//! their flags side by side, so a lookup costs one cache miss; see `table.rs`) and an `Arc` of
//! the incident table (status, ETR, expiry, the words in each language), which is small and
//! the same for every shard.
//!
//! A lookup takes its shard's read lock, reads the number's flags and their incidents, and
//! hands the caller a view borrowed from the shard ([`CallerIndex::with`]): no allocation,
//! no reference counting, one lock. Readers never block each other; two lookups rarely meet on
//! the same one of 64 locks; a writer holds one shard for the microseconds of its changes.
//! The alternatives cost more where it matters: one copy-on-write snapshot of everything
//! (`ArcSwap`) would copy ten million entries per change; a persistent map makes every lookup
//! chase pointers; a global `RwLock` would bounce one cache line between all cores.
//!
//! - restore, cancel, an ETR update: a new incident table is handed to every shard (64 brief
//!   write locks); the numbers are not touched;
//! - arming numbers touches only their shards;
//! - expiry and the "restored" grace are decided at lookup time from the incident entry, so
//!   they take effect to the second without any writer running.
//!
//! Writers (the store follower, a test) are serialised by one mutex.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use outagecast_core::contact::{Language, Region};
use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};
use outagecast_core::ivr::{ArmedIncident, IvrAnswer, answer};
use outagecast_core::message::restored_announcement;
use smallvec::SmallVec;

use crate::key::CallerKey;
use crate::table::{FlagRef, NumberTable};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Number of shards; a power of two (the shard is the top bits of a multiplicative hash).
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// How the index decides what is still worth saying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSettings {
    /// How long after a restore its callers still hear "it has been fixed". `None`: not at all.
    pub restored_grace: Option<TimeDelta>,
}

impl IndexSettings {
    /// Reads the "restored" grace period as an operator writes it: `off` (or `0`), or a number
    /// with a unit, `90s`, `15m`, `2h`.
    ///
    /// ```
    /// use outagecast_ivr::IndexSettings;
    /// assert_eq!(IndexSettings::parse_grace("15m").unwrap(), Some(chrono::TimeDelta::minutes(15)));
    /// assert_eq!(IndexSettings::parse_grace("off").unwrap(), None);
    /// assert!(IndexSettings::parse_grace("15").is_err());
    /// ```
    pub fn parse_grace(text: &str) -> crate::Result<Option<TimeDelta>> {
        let t = text.trim().to_ascii_lowercase();
        if t == "off" || t == "0" || t == "none" {
            return Ok(None);
        }
        let bad = || crate::IvrError::Invalid {
            field: "OUTAGECAST_IVR_RESTORED_GRACE",
            problem: format!(
                "{text:?} is not a duration; write off, or a number with s, m or h (e.g. 15m)"
            ),
        };
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = t.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        // A week is far longer than anyone should hear about a fixed outage.
        let limit = TimeDelta::days(7);
        let d = match unit {
            "s" => TimeDelta::try_seconds(n),
            "m" | "min" => TimeDelta::try_minutes(n),
            "h" => TimeDelta::try_hours(n),
            _ => None,
        }
        .filter(|d| *d <= limit)
        .ok_or_else(bad)?;
        Ok((d > TimeDelta::zero()).then_some(d))
    }
}

/// An incident as the IVR needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentInfo {
    /// Incident id.
    pub id: IncidentId,
    /// Service kind.
    pub kind: IncidentKind,
    /// Severity.
    pub severity: Severity,
    /// Current status.
    pub status: IncidentStatus,
    /// Estimated restoration.
    pub etr: Option<DateTime<Utc>>,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// When it was restored or cancelled (`None` while active).
    pub closed_at: Option<DateTime<Utc>>,
    /// When callers stop hearing about it, if set.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One stored IVR flag, as the index takes it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagInput {
    /// The caller number.
    pub key: CallerKey,
    /// The incident.
    pub incident: IncidentId,
    /// The caller's language.
    pub language: Language,
    /// What they hear. Every flag of an incident in one language carries the same words (the
    /// store writes them per incident and language, as `Wording::announcement` does), so the
    /// index keeps them once per incident.
    pub announcement: String,
    /// When the flag was disarmed, if it was.
    pub disarmed_at: Option<DateTime<Utc>>,
}

/// What changed in the store since the last [`CallerIndex::apply`] (see
/// `outagecast_store::IvrChanges`, which this mirrors).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Every incident something changed for.
    pub touched: Vec<IncidentId>,
    /// Those that still exist, as they are now.
    pub incidents: Vec<IncidentInfo>,
    /// Incidents whose flags were all re-read: `flags` holds all their relevant flags, and any
    /// other number held for them is stale.
    pub reloaded: Vec<IncidentId>,
    /// Single numbers re-read: `flags` holds the row if it still exists.
    pub phones: Vec<(IncidentId, CallerKey)>,
    /// The flags re-read.
    pub flags: Vec<FlagInput>,
}

/// One incident announced to a caller, borrowed from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced<'a> {
    /// The incident.
    pub incident: &'a IncidentInfo,
    /// The language of the announcement.
    pub language: Language,
    /// What to say.
    pub announcement: &'a str,
    /// Whether this is the "it has been fixed" note of a restored incident.
    pub restored: bool,
}

/// What to tell one caller: the incidents to announce, live ones first, then the most severe,
/// then the newest (the order of [`outagecast_core::ivr::answer`]). Empty: nothing to announce.
/// Borrowed from the index for the duration of [`CallerIndex::with`]; [`Lookup`] is the owned
/// copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcements<'a> {
    items: SmallVec<[Announced<'a>; 2]>,
}

impl<'a> Announcements<'a> {
    /// Nothing to announce.
    pub fn nothing() -> Self {
        Announcements::default()
    }

    fn ranked(mut items: SmallVec<[Announced<'a>; 2]>) -> Self {
        if items.len() > 1 {
            items.sort_by(|a, b| {
                a.restored
                    .cmp(&b.restored)
                    .then_with(|| b.incident.severity.cmp(&a.incident.severity))
                    .then_with(|| b.incident.declared_at.cmp(&a.incident.declared_at))
                    .then_with(|| b.incident.id.cmp(&a.incident.id))
            });
        }
        Announcements { items }
    }

    /// Whether there is anything to say.
    pub fn armed(&self) -> bool {
        !self.items.is_empty()
    }

    /// The incidents, in the order to announce them.
    pub fn items(&self) -> &[Announced<'a>] {
        &self.items
    }

    /// The language to speak in: the first announcement's.
    pub fn language(&self) -> Option<Language> {
        self.items.first().map(|a| a.language)
    }

    /// Every announcement joined into one text.
    pub fn announcement(&self) -> Option<Cow<'a, str>> {
        match self.items.as_slice() {
            [] => None,
            [one] => Some(Cow::Borrowed(one.announcement)),
            many => Some(Cow::Owned(
                many.iter()
                    .map(|a| a.announcement)
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
        }
    }

    /// An owned copy.
    pub fn to_lookup(&self) -> Lookup {
        Lookup {
            items: self
                .items
                .iter()
                .map(|a| Owned {
                    incident: *a.incident,
                    language: a.language,
                    announcement: a.announcement.to_string(),
                    restored: a.restored,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    incident: IncidentInfo,
    language: Language,
    announcement: String,
    restored: bool,
}

/// What to tell one caller, owned (see [`Announcements`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    items: Vec<Owned>,
}

impl Lookup {
    /// Nothing to announce.
    pub fn nothing() -> Self {
        Lookup::default()
    }

    /// Whether there is anything to say.
    pub fn armed(&self) -> bool {
        !self.items.is_empty()
    }

    /// A borrowed view, for the formatters that take one.
    pub fn view(&self) -> Announcements<'_> {
        Announcements {
            items: self
                .items
                .iter()
                .map(|o| Announced {
                    incident: &o.incident,
                    language: o.language,
                    announcement: &o.announcement,
                    restored: o.restored,
                })
                .collect(),
        }
    }

    /// The same answer in the core's terms (what `outagecast ivr lookup` prints).
    pub fn into_answer(self, caller: Option<String>) -> IvrAnswer {
        let incidents = self
            .items
            .into_iter()
            .map(|a| ArmedIncident {
                id: a.incident.id,
                kind: a.incident.kind,
                severity: a.incident.severity,
                status: a.incident.status,
                etr: a.incident.etr,
                declared_at: a.incident.declared_at,
                language: a.language,
                announcement: a.announcement,
            })
            .collect();
        answer(caller, incidents)
    }
}

/// An incident in the index, with its words.
#[derive(Debug, Clone)]
struct Entry {
    info: IncidentInfo,
    /// The announcement in each language (indexed by [`slot`]), as the store wrote it.
    texts: [Option<Arc<str>>; 3],
    /// "It has been fixed", in each language.
    restored: [Arc<str>; 3],
}

type Table = FastMap<IncidentId, Entry>;

fn slot(lang: Language) -> usize {
    match lang {
        Language::Fi => 0,
        Language::Sv => 1,
        Language::En => 2,
    }
}

fn restored_texts(kind: IncidentKind) -> [Arc<str>; 3] {
    Language::ALL.map(|l| Arc::from(restored_announcement(kind, l)))
}

/// One shard: its numbers and (a shared copy of) the incident table.
#[derive(Debug, Default)]
struct Shard {
    numbers: NumberTable,
    incidents: Arc<Table>,
}

/// What the writers share.
#[derive(Debug, Default)]
struct WriterState {
    /// The incident table every shard has a copy of.
    table: Arc<Table>,
    /// How many numbers each incident has in the shards, so a reload knows without a scan
    /// whether stale numbers are left.
    counts: HashMap<IncidentId, usize>,
}

/// A change to one number, grouped by shard so each shard is locked once per batch.
#[derive(Debug, Clone, Copy)]
enum Op {
    Set(CallerKey, FlagRef),
    Unset(CallerKey, IncidentId),
}

/// Where an incident is in its life, for a caller at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Announce it.
    Live,
    /// Say it has been fixed.
    Restored,
    /// Say nothing (closed and past any grace, or expired); can be forgotten.
    Over,
}

/// A shard's lock on cache lines of its own (two: the adjacent-line prefetcher pulls pairs),
/// so lookups on different cores never contend for a line that holds a neighbour's lock.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(RwLock<Shard>);

impl std::ops::Deref for Padded {
    type Target = RwLock<Shard>;
    fn deref(&self) -> &RwLock<Shard> {
        &self.0
    }
}

/// The caller index. Share it behind an `Arc`: lookups and writers take `&self`.
pub struct CallerIndex {
    settings: IndexSettings,
    shards: Box<[Padded]>,
    /// How many numbers the shards hold, kept by the writers (lookups read it to skip parsing
    /// an odd caller number when there is nothing to find).
    numbers: AtomicUsize,
    writer: Mutex<WriterState>,
}

impl std::fmt::Debug for CallerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerIndex")
            .field("settings", &self.settings)
            .field("numbers", &self.len())
            .finish_non_exhaustive()
    }
}

fn phase(settings: &IndexSettings, info: &IncidentInfo, now: DateTime<Utc>) -> Phase {
    if info.expires_at.is_some_and(|e| now >= e) {
        return Phase::Over;
    }
    if info.status.is_active() {
        return Phase::Live;
    }
    let in_grace = info.status == IncidentStatus::Restored
        && matches!(
            (info.closed_at, settings.restored_grace),
            (Some(closed), Some(grace)) if now < closed + grace
        );
    if in_grace {
        Phase::Restored
    } else {
        Phase::Over
    }
}

/// Whether a stored flag belongs in the index: armed, or disarmed by the restore of its
/// incident (for the "restored" note). A flag disarmed before that (its number left the area)
/// does not.
fn relevant(info: &IncidentInfo, disarmed_at: Option<DateTime<Utc>>) -> bool {
    match disarmed_at {
        None => true,
        Some(t) => {
            info.status == IncidentStatus::Restored && info.closed_at.is_some_and(|c| t >= c)
        }
    }
}

fn shard_of(key: CallerKey) -> usize {
    // Fibonacci hashing: the top bits of the product mix every digit of the number. The
    // tables inside mix the key with another function, so this does not correlate with where
    // a number lands inside its shard.
    (key.value().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

impl CallerIndex {
    /// An empty index.
    pub fn new(settings: IndexSettings) -> Self {
        CallerIndex {
            settings,
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            numbers: AtomicUsize::new(0),
            writer: Mutex::new(WriterState::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> IndexSettings {
        self.settings
    }

    /// Calls `f` with what to tell the caller `key` at `now`, borrowed from the index (no
    /// allocation). `f` runs under a shard's read lock: keep it short (format the answer, do
    /// not wait on I/O).
    pub fn with<R>(
        &self,
        key: CallerKey,
        now: DateTime<Utc>,
        f: impl FnOnce(&Announcements<'_>) -> R,
    ) -> R {
        let shard = self.shards[shard_of(key)]
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut items = SmallVec::new();
        if let Some(found) = shard.numbers.get(key.value()) {
            for flag in found.as_slice() {
                // A number can briefly reference an incident a writer has just forgotten: it
                // is simply not announced.
                let Some(entry) = shard.incidents.get(&flag.incident) else {
                    continue;
                };
                let (text, restored) = match phase(&self.settings, &entry.info, now) {
                    Phase::Live => match &entry.texts[slot(flag.language)] {
                        Some(text) => (&**text, false),
                        None => continue,
                    },
                    Phase::Restored => (&*entry.restored[slot(flag.language)], true),
                    Phase::Over => continue,
                };
                items.push(Announced {
                    incident: &entry.info,
                    language: flag.language,
                    announcement: text,
                    restored,
                });
            }
        }
        f(&Announcements::ranked(items))
    }

    /// Like [`CallerIndex::with`], for a caller number as a phone system sent it (`raw`). A
    /// number that cannot be read is simply not armed.
    ///
    /// A number already in E.164 form (`+358…`, or ` 358…` where a query string's `+` was
    /// decoded as a space) is taken as it is, without the numbering-plan parser: E.164 is the
    /// canonical form, and the index only holds valid numbers. Anything else (national form,
    /// `00…`, digits without `+`, punctuation) goes through
    /// [`outagecast_core::ivr::normalise_caller`], which costs microseconds.
    pub fn with_caller<R>(
        &self,
        raw: &str,
        default_region: Option<Region>,
        now: DateTime<Utc>,
        f: impl FnOnce(&Announcements<'_>) -> R,
    ) -> R {
        self.with_caller_key(raw, default_region, now, |_, found| f(found))
    }

    /// As [`CallerIndex::with_caller`], also giving `f` the caller's number when it could be
    /// read (the call log keeps it). With nothing armed, only a number already in E.164 is
    /// read: the numbering plan is not consulted for an answer that is "nothing" anyway.
    pub fn with_caller_key<R>(
        &self,
        raw: &str,
        default_region: Option<Region>,
        now: DateTime<Utc>,
        f: impl FnOnce(Option<CallerKey>, &Announcements<'_>) -> R,
    ) -> R {
        let key = CallerKey::fast(raw).or_else(|| {
            if self.numbers.load(Ordering::Relaxed) == 0 {
                None
            } else {
                CallerKey::read(raw, default_region)
            }
        });
        match key {
            Some(key) => self.with(key, now, |found| f(Some(key), found)),
            None => f(None, &Announcements::nothing()),
        }
    }

    /// What to tell the caller `key` at `now`, as an owned copy.
    pub fn lookup(&self, key: CallerKey, now: DateTime<Utc>) -> Lookup {
        self.with(key, now, |a| a.to_lookup())
    }

    /// What to tell a caller whose number arrived as `raw`, as an owned copy.
    pub fn lookup_caller(
        &self,
        raw: &str,
        default_region: Option<Region>,
        now: DateTime<Utc>,
    ) -> Lookup {
        self.with_caller(raw, default_region, now, |a| a.to_lookup())
    }

    /// How many numbers the index holds (armed, or in a "restored" grace period).
    pub fn len(&self) -> usize {
        self.numbers.load(Ordering::Relaxed)
    }

    /// Whether the index holds no number at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many incidents the index holds.
    pub fn incident_count(&self) -> usize {
        self.writer().table.len()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recount(&self) {
        let total = self
            .shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .numbers
                    .len()
            })
            .sum();
        self.numbers.store(total, Ordering::Relaxed);
    }

    /// Hands every shard the writer's incident table.
    fn publish(&self, writer: &WriterState) {
        for lock in self.shards.iter() {
            lock.write()
                .unwrap_or_else(PoisonError::into_inner)
                .incidents = writer.table.clone();
        }
    }

    /// Replaces everything with a full read of the store (at start, or after the follower
    /// lost track). Flags of incidents not in `incidents` are ignored.
    pub fn replace_all(
        &self,
        incidents: Vec<IncidentInfo>,
        flags: impl IntoIterator<Item = FlagInput>,
        now: DateTime<Utc>,
    ) {
        let mut writer = self.writer();
        let mut table: Table = incidents
            .into_iter()
            .map(|info| {
                (
                    info.id,
                    Entry {
                        info,
                        texts: Default::default(),
                        restored: restored_texts(info.kind),
                    },
                )
            })
            .collect();
        let flags = flags.into_iter();
        let per_shard = flags.size_hint().0 / SHARDS;
        let mut shards: Vec<NumberTable> = (0..SHARDS)
            .map(|_| NumberTable::with_capacity(per_shard))
            .collect();
        let mut counts: HashMap<IncidentId, usize> = HashMap::new();
        for f in flags {
            let Some(entry) = table.get_mut(&f.incident) else {
                continue;
            };
            if !relevant(&entry.info, f.disarmed_at) {
                continue;
            }
            let text = &mut entry.texts[slot(f.language)];
            if f.disarmed_at.is_none() && text.is_none() {
                *text = Some(Arc::from(f.announcement));
            }
            let flag = FlagRef {
                incident: f.incident,
                language: f.language,
            };
            if shards[shard_of(f.key)].set(f.key.value(), flag) {
                *counts.entry(f.incident).or_default() += 1;
            }
        }
        writer.table = Arc::new(table);
        writer.counts = counts;
        for (lock, numbers) in self.shards.iter().zip(shards) {
            let old = {
                let mut shard = lock.write().unwrap_or_else(PoisonError::into_inner);
                shard.incidents = writer.table.clone();
                std::mem::replace(&mut shard.numbers, numbers)
            };
            // Freeing millions of entries happens outside the lock.
            drop(old);
        }
        self.forget_over(&mut writer, now);
        self.recount();
    }

    /// Applies what changed in the store (one poll's worth).
    pub fn apply(&self, changes: Changes, now: DateTime<Utc>) {
        let mut writer = self.writer();
        let infos: HashMap<IncidentId, IncidentInfo> =
            changes.incidents.iter().map(|i| (i.id, *i)).collect();
        let reloaded: HashSet<IncidentId> = changes.reloaded.iter().copied().collect();
        let mut flags_of: HashMap<IncidentId, Vec<&FlagInput>> = HashMap::new();
        for f in &changes.flags {
            flags_of.entry(f.incident).or_default().push(f);
        }
        let flags_of = |id: &IncidentId| flags_of.get(id).map_or(&[][..], Vec::as_slice);

        // The incident table first: new incidents must be there before their numbers, and a
        // restore or an ETR change reaches every caller of the incident at once.
        let mut table: Table = (*writer.table).clone();
        let mut gone: HashSet<IncidentId> = HashSet::new();
        for id in &changes.touched {
            let Some(info) = infos.get(id) else {
                table.remove(id);
                gone.insert(*id);
                continue;
            };
            let mut texts: [Option<Arc<str>>; 3] = match table.get(id) {
                Some(old) if !reloaded.contains(id) => old.texts.clone(),
                _ => Default::default(),
            };
            for f in flags_of(id) {
                if f.disarmed_at.is_none() {
                    let text = &mut texts[slot(f.language)];
                    if text.as_deref() != Some(f.announcement.as_str()) {
                        *text = Some(Arc::from(f.announcement.as_str()));
                    }
                }
            }
            let restored = match table.get(id) {
                Some(old) if old.info.kind == info.kind => old.restored.clone(),
                _ => restored_texts(info.kind),
            };
            table.insert(
                *id,
                Entry {
                    info: *info,
                    texts,
                    restored,
                },
            );
        }
        writer.table = Arc::new(table);
        self.publish(&writer);
        if !gone.is_empty() {
            self.remove_incidents(&mut writer, &gone);
        }

        // The numbers, grouped by shard.
        let mut ops: Vec<Vec<Op>> = vec![Vec::new(); SHARDS];
        let mut push = |key: CallerKey, op: Op| ops[shard_of(key)].push(op);
        let mut keep: HashMap<IncidentId, HashSet<CallerKey>> = HashMap::new();
        for id in &changes.reloaded {
            let Some(info) = infos.get(id) else {
                continue;
            };
            let kept = keep.entry(*id).or_default();
            for f in flags_of(id) {
                if relevant(info, f.disarmed_at) {
                    kept.insert(f.key);
                    push(
                        f.key,
                        Op::Set(
                            f.key,
                            FlagRef {
                                incident: *id,
                                language: f.language,
                            },
                        ),
                    );
                } else {
                    push(f.key, Op::Unset(f.key, *id));
                }
            }
        }
        if !changes.phones.is_empty() {
            let rows: HashMap<(IncidentId, CallerKey), &FlagInput> = changes
                .flags
                .iter()
                .map(|f| ((f.incident, f.key), f))
                .collect();
            for (id, key) in &changes.phones {
                if reloaded.contains(id) {
                    continue;
                }
                match (rows.get(&(*id, *key)), infos.get(id)) {
                    (Some(f), Some(info)) if relevant(info, f.disarmed_at) => push(
                        *key,
                        Op::Set(
                            *key,
                            FlagRef {
                                incident: *id,
                                language: f.language,
                            },
                        ),
                    ),
                    _ => push(*key, Op::Unset(*key, *id)),
                }
            }
        }
        for (lock, ops) in self.shards.iter().zip(ops) {
            if ops.is_empty() {
                continue;
            }
            let mut shard = lock.write().unwrap_or_else(PoisonError::into_inner);
            for op in ops {
                match op {
                    Op::Set(key, flag) => {
                        if shard.numbers.set(key.value(), flag) {
                            *writer.counts.entry(flag.incident).or_default() += 1;
                        }
                    }
                    Op::Unset(key, incident) => {
                        if shard.numbers.unset(key.value(), incident)
                            && let Some(n) = writer.counts.get_mut(&incident)
                        {
                            *n = n.saturating_sub(1);
                        }
                    }
                }
            }
        }
        // Numbers of a reloaded incident that were not in the reload (their rows are gone):
        // found by a scan, only when the counts say there are some.
        for (id, kept) in &keep {
            if writer.counts.get(id).copied().unwrap_or(0) > kept.len() {
                let removed = self.retain(|key, f| {
                    f.incident != *id || kept.contains(&CallerKey::from_value(key))
                });
                if let Some(n) = writer.counts.get_mut(id) {
                    *n = n.saturating_sub(removed);
                }
            }
        }
        self.forget_over(&mut writer, now);
        self.recount();
    }

    /// Forgets incidents that will never be announced again (closed and past any grace, or
    /// expired) and their numbers. Lookups already skip them; this only frees the memory, so
    /// calling it now and then is enough.
    pub fn sweep(&self, now: DateTime<Utc>) {
        let mut writer = self.writer();
        self.forget_over(&mut writer, now);
        self.recount();
    }

    fn forget_over(&self, writer: &mut WriterState, now: DateTime<Utc>) {
        let over: HashSet<IncidentId> = writer
            .table
            .values()
            .filter(|e| phase(&self.settings, &e.info, now) == Phase::Over)
            .map(|e| e.info.id)
            .collect();
        if over.is_empty() {
            return;
        }
        let mut table: Table = (*writer.table).clone();
        table.retain(|id, _| !over.contains(id));
        writer.table = Arc::new(table);
        self.publish(writer);
        self.remove_incidents(writer, &over);
    }

    fn remove_incidents(&self, writer: &mut WriterState, ids: &HashSet<IncidentId>) {
        if ids
            .iter()
            .any(|id| writer.counts.get(id).copied().unwrap_or(0) > 0)
        {
            self.retain(|_, f| !ids.contains(&f.incident));
        }
        for id in ids {
            writer.counts.remove(id);
        }
    }

    /// Keeps only the flags for which `keep` holds, shard by shard (each write-locked only for
    /// its own pass). Returns how many flags went.
    fn retain(&self, keep: impl Fn(u64, &FlagRef) -> bool) -> usize {
        self.shards
            .iter()
            .map(|lock| {
                lock.write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .numbers
                    .retain(&keep)
            })
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn info(id: i64, severity: Severity) -> IncidentInfo {
        IncidentInfo {
            id: IncidentId(id),
            kind: IncidentKind::Water,
            severity,
            status: IncidentStatus::Declared,
            etr: None,
            declared_at: t(id),
            closed_at: None,
            expires_at: None,
        }
    }

    fn key(n: &str) -> CallerKey {
        CallerKey::parse(n).unwrap()
    }

    fn flag(n: &str, id: i64, lang: Language, text: &str) -> FlagInput {
        FlagInput {
            key: key(n),
            incident: IncidentId(id),
            language: lang,
            announcement: text.into(),
            disarmed_at: None,
        }
    }

    const A: &str = "+358401111111";
    const B: &str = "+358402222222";
    const C: &str = "+358403333333";

    fn loaded(settings: IndexSettings) -> CallerIndex {
        let index = CallerIndex::new(settings);
        index.replace_all(
            vec![info(1, Severity::Minor), info(2, Severity::Severe)],
            vec![
                flag(A, 1, Language::Fi, "yksi"),
                flag(B, 1, Language::En, "one"),
                flag(B, 2, Language::En, "two"),
            ],
            t(10),
        );
        index
    }

    fn texts(l: &Lookup) -> Vec<String> {
        l.view()
            .items()
            .iter()
            .map(|a| a.announcement.to_string())
            .collect()
    }

    #[test]
    fn a_number_on_several_incidents_hears_the_most_severe_first() {
        let index = loaded(IndexSettings::default());
        assert_eq!(texts(&index.lookup(key(A), t(10))), ["yksi"]);
        let b = index.lookup(key(B), t(10));
        assert_eq!(texts(&b), ["two", "one"]);
        assert_eq!(b.view().announcement().as_deref(), Some("two one"));
        assert!(!index.lookup(key(C), t(10)).armed());
        assert_eq!(index.len(), 2);
        // The core's ranking agrees.
        let answer = b.clone().into_answer(None);
        let ids: Vec<IncidentId> = answer.incidents.iter().map(|i| i.id).collect();
        let ours: Vec<IncidentId> = b.view().items().iter().map(|a| a.incident.id).collect();
        assert_eq!(ids, ours);
    }

    #[test]
    fn restore_disarms_at_once_and_grace_says_it_is_fixed() {
        let index = loaded(IndexSettings {
            restored_grace: Some(TimeDelta::minutes(15)),
        });
        let mut restored = info(1, Severity::Minor);
        restored.status = IncidentStatus::Restored;
        restored.closed_at = Some(t(20));
        let mut a = flag(A, 1, Language::Fi, "yksi");
        a.disarmed_at = Some(t(20));
        let mut b = flag(B, 1, Language::En, "one");
        b.disarmed_at = Some(t(20));
        index.apply(
            Changes {
                touched: vec![IncidentId(1)],
                incidents: vec![restored],
                reloaded: vec![IncidentId(1)],
                phones: vec![],
                flags: vec![a, b],
            },
            t(20),
        );
        let a = index.lookup(key(A), t(21));
        assert!(a.view().items()[0].restored);
        assert_eq!(
            texts(&a),
            ["Alueellanne ollut vesikatko on korjattu. Kiitos kärsivällisyydestänne."]
        );
        // The live incident first, then the "fixed" note.
        let b = index.lookup(key(B), t(21));
        assert_eq!(b.view().items()[0].incident.id, IncidentId(2));
        assert!(b.view().items()[1].restored);
        // After the grace: nothing, and the sweep frees the numbers.
        assert!(!index.lookup(key(A), t(35)).armed());
        index.sweep(t(35));
        assert_eq!(index.incident_count(), 1);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn without_grace_a_restore_is_silent_and_forgotten() {
        let index = loaded(IndexSettings::default());
        let mut restored = info(2, Severity::Severe);
        restored.status = IncidentStatus::Restored;
        restored.closed_at = Some(t(20));
        index.apply(
            Changes {
                touched: vec![IncidentId(2)],
                incidents: vec![restored],
                reloaded: vec![IncidentId(2)],
                phones: vec![],
                flags: vec![],
            },
            t(20),
        );
        assert_eq!(texts(&index.lookup(key(B), t(20))), ["one"]);
        assert_eq!(index.incident_count(), 1);
    }

    #[test]
    fn expiry_is_decided_at_lookup_time() {
        let index = CallerIndex::new(IndexSettings::default());
        let mut i = info(1, Severity::Minor);
        i.expires_at = Some(t(30));
        index.replace_all(vec![i], vec![flag(A, 1, Language::Sv, "ett")], t(0));
        assert!(index.lookup(key(A), t(29)).armed());
        assert!(!index.lookup(key(A), t(30)).armed());
        index.sweep(t(30));
        assert!(index.is_empty());
    }

    #[test]
    fn single_numbers_follow_a_reimport() {
        let index = loaded(IndexSettings::default());
        // C joins incident 1 in Swedish, A leaves it, B switches to Finnish.
        let mut a = flag(A, 1, Language::Fi, "yksi");
        a.disarmed_at = Some(t(15));
        index.apply(
            Changes {
                touched: vec![IncidentId(1)],
                incidents: vec![info(1, Severity::Minor)],
                reloaded: vec![],
                phones: vec![
                    (IncidentId(1), key(A)),
                    (IncidentId(1), key(B)),
                    (IncidentId(1), key(C)),
                ],
                flags: vec![
                    a,
                    flag(B, 1, Language::Fi, "yksi"),
                    flag(C, 1, Language::Sv, "ett"),
                ],
            },
            t(15),
        );
        assert!(!index.lookup(key(A), t(15)).armed());
        assert_eq!(texts(&index.lookup(key(B), t(15))), ["two", "yksi"]);
        assert_eq!(texts(&index.lookup(key(C), t(15))), ["ett"]);
    }

    #[test]
    fn an_update_rewrites_every_callers_words_and_a_reload_drops_stale_numbers() {
        let index = loaded(IndexSettings::default());
        let mut updated = info(1, Severity::Extreme);
        updated.status = IncidentStatus::Updated;
        index.apply(
            Changes {
                touched: vec![IncidentId(1)],
                incidents: vec![updated],
                reloaded: vec![IncidentId(1)],
                phones: vec![],
                // A's row is gone altogether.
                flags: vec![flag(B, 1, Language::En, "one, later")],
            },
            t(15),
        );
        assert!(!index.lookup(key(A), t(15)).armed());
        assert_eq!(texts(&index.lookup(key(B), t(15))), ["one, later", "two"]);
    }

    #[test]
    fn caller_forms_reach_the_same_number() {
        let index = loaded(IndexSettings::default());
        let fi = Some(Region::parse("FI").unwrap());
        for raw in [
            A,
            " 358401111111",
            "0401111111",
            "00358401111111",
            "358401111111",
        ] {
            assert!(index.lookup_caller(raw, fi, t(10)).armed(), "{raw}");
        }
        for raw in [
            "",
            "anonymous",
            "+",
            "0401111112",
            "\u{0}",
            "+999999999999999",
        ] {
            assert!(!index.lookup_caller(raw, fi, t(10)).armed(), "{raw}");
        }
    }

    #[test]
    fn lookups_during_writes_see_a_whole_answer_or_none() {
        let index = CallerIndex::new(IndexSettings::default());
        let keys: Vec<CallerKey> = (0..2000)
            .map(|i| key(&format!("+35840{:07}", 1_000_000 + i)))
            .collect();
        index.replace_all(vec![info(1, Severity::Minor)], vec![], t(0));
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    for k in &keys {
                        index.with(*k, t(1), |a| {
                            // Armed for incident 1 with its words, or not armed: never half.
                            if a.armed() {
                                assert_eq!(a.items().len(), 1);
                                assert_eq!(a.items()[0].announcement, "yksi");
                            }
                        });
                    }
                }
            });
            for round in 0..20 {
                let flags: Vec<FlagInput> = keys
                    .iter()
                    .map(|k| FlagInput {
                        key: *k,
                        incident: IncidentId(1),
                        language: Language::Fi,
                        announcement: "yksi".into(),
                        disarmed_at: (round % 2 == 1).then(|| t(0)),
                    })
                    .collect();
                index.apply(
                    Changes {
                        touched: vec![IncidentId(1)],
                        incidents: vec![info(1, Severity::Minor)],
                        reloaded: vec![],
                        phones: keys.iter().map(|k| (IncidentId(1), *k)).collect(),
                        flags,
                    },
                    t(1),
                );
                assert_eq!(index.len(), if round % 2 == 0 { keys.len() } else { 0 });
            }
            done.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn grace_is_read_as_operators_write_it() {
        assert_eq!(
            IndexSettings::parse_grace("90s").unwrap(),
            Some(TimeDelta::seconds(90))
        );
        assert_eq!(
            IndexSettings::parse_grace(" 2H ").unwrap(),
            Some(TimeDelta::hours(2))
        );
        assert_eq!(IndexSettings::parse_grace("0").unwrap(), None);
        for bad in [
            "",
            "m",
            "-5m",
            "15 m",
            "1d",
            "99999999999999999999h",
            "8000h",
        ] {
            assert!(IndexSettings::parse_grace(bad).is_err(), "{bad}");
        }
    }
}
