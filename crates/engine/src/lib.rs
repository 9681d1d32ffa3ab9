//! The engine: the store, the in-memory customer index and the settings, wired together.
//! Each operation here is one use case; the CLI and the API server only parse and print.
//!
//! The engine is shared (`&self` everywhere): the index sits behind a lock and is swapped
//! whole when customers change, in this process or (seen through the store's customers
//! generation) in another one.

pub mod rails;
pub mod views;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use outagecast_core::CoreError;
use outagecast_core::area::Area;
use outagecast_core::contact::{Channel, Language, Region};
use outagecast_core::customer::{AccountId, Customer, CustomerId, RecordRules};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentDraft, IncidentId};
use outagecast_core::message::{Locale, MessageText, Wording};
use outagecast_core::notice::{RecipientPlan, plan_recipients};
use outagecast_core::template::Templates;
use outagecast_index::CustomerIndex;
use outagecast_store::{
    Declaration, DeclareOutcome, Growth, ImportSummary, Provenance, Store, StoreError, Transition,
    TransitionOutcome,
};
use std::sync::{Arc, RwLock};

pub use rails::{Rails, Refusal, Spelling};

/// Everything an engine operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed, or refused (not found, a rule).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input was invalid.
    #[error(transparent)]
    Rule(#[from] CoreError),
    /// A safety rail refused the declaration; the message is in the front end's words.
    #[error("{message}")]
    Refused {
        /// Why.
        refusal: Refusal,
        /// The explanation.
        message: String,
    },
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Settings that shape every operation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region for national phone formats.
    pub default_region: Option<Region>,
    /// Time zone for times in messages.
    pub timezone: Tz,
    /// Who is acting, for the audit log (`cli:alice`).
    pub actor: String,
    /// The operator's templates (`OUTAGECAST_TEMPLATES`); the built-in wording when `None`.
    pub templates: Option<Templates>,
}

impl Settings {
    /// How customer CSV rows are read.
    pub fn record_rules(&self) -> RecordRules {
        RecordRules {
            default_region: self.default_region,
            default_language: Language::Fi,
        }
    }

    /// Where messages are written: the utility's zone, at `now`.
    pub fn locale(&self, now: DateTime<Utc>) -> Locale {
        Locale {
            zone: self.timezone,
            now,
        }
    }

    /// The same settings acting as someone else (an API token's name).
    #[must_use]
    pub fn acting_as(&self, actor: impl Into<String>) -> Settings {
        Settings {
            actor: actor.into(),
            ..self.clone()
        }
    }

    /// How notices and announcements are written at `now`: the operator's templates when
    /// there are any, the built-in wording otherwise.
    pub fn wording(&self, now: DateTime<Utc>) -> EngineWording {
        let locale = self.locale(now);
        match &self.templates {
            Some(t) => EngineWording::Operator(t.at(locale)),
            None => EngineWording::Builtin(locale),
        }
    }
}

/// The wording the engine writes with.
#[derive(Debug, Clone)]
pub enum EngineWording {
    /// The built-in texts.
    Builtin(Locale),
    /// The operator's templates.
    Operator(Templates),
}

impl Wording for EngineWording {
    fn notice(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
    ) -> MessageText {
        match self {
            EngineWording::Builtin(l) => l.notice(id, draft, event, lang),
            EngineWording::Operator(t) => t.notice(id, draft, event, lang),
        }
    }

    fn announcement(&self, draft: &IncidentDraft, lang: Language) -> String {
        match self {
            EngineWording::Builtin(l) => l.announcement(draft, lang),
            EngineWording::Operator(t) => t.announcement(draft, lang),
        }
    }
}

/// What selecting an area finds, before anything is written.
#[derive(Debug)]
pub struct Selection {
    /// Affected customers, by id.
    pub customers: Vec<(CustomerId, Customer)>,
    /// Who would be told, and which numbers armed.
    pub plan: RecipientPlan,
}

impl Selection {
    /// How many affected customers are on the priority register.
    pub fn priority_count(&self) -> usize {
        self.customers.iter().filter(|(_, c)| c.priority()).count()
    }
}

/// The engine.
pub struct Engine {
    store: Store,
    index: RwLock<LoadedIndex>,
    settings: Settings,
}

/// The customer index and the store's customers generation it was built at.
struct LoadedIndex {
    index: Arc<CustomerIndex>,
    generation: i64,
}

impl Engine {
    /// Opens the store and builds the customer index from it.
    pub async fn open(db: &str, settings: Settings) -> Result<Self> {
        let store = Store::open(db).await?;
        Self::with_store(store, settings).await
    }

    /// Builds the customer index from an open store.
    pub async fn with_store(store: Store, settings: Settings) -> Result<Self> {
        let loaded = load_index(&store).await?;
        Ok(Engine {
            store,
            index: RwLock::new(loaded),
            settings,
        })
    }

    /// The index, rebuilt first if customers changed since it was built (an import by another
    /// process: the store's customers generation moved).
    async fn current_index(&self) -> Result<Arc<CustomerIndex>> {
        let generation = self.store.customers_generation().await?;
        {
            let held = self.index.read().unwrap_or_else(|e| e.into_inner());
            if held.generation == generation {
                return Ok(Arc::clone(&held.index));
            }
        }
        self.reload_index().await
    }

    async fn reload_index(&self) -> Result<Arc<CustomerIndex>> {
        let loaded = load_index(&self.store).await?;
        let index = Arc::clone(&loaded.index);
        let mut held = self.index.write().unwrap_or_else(|e| e.into_inner());
        // Two reloads may race; keep the newer.
        if loaded.generation >= held.generation {
            *held = loaded;
        }
        Ok(index)
    }

    /// The store, for read-only queries the CLI prints directly.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Imports parsed customers, rebuilds the index and re-arms the IVR of live incidents.
    pub async fn import(
        &self,
        actor: &str,
        customers: &[Customer],
        source: &str,
    ) -> Result<ImportSummary> {
        let summary = self
            .store
            .upsert_customers(customers, actor, source, Utc::now())
            .await?;
        // A re-import may move service points; rebuilding from the store is simplest and
        // takes well under a second for a city.
        self.reload_index().await?;
        self.rearm_ivr(actor, Utc::now()).await?;
        Ok(summary)
    }

    /// Imports named zones (replacing ones of the same name), recording `source`.
    pub async fn import_zones(
        &self,
        actor: &str,
        zones: &[outagecast_ingest::zone::Zone],
        source: &str,
    ) -> Result<outagecast_store::ZoneImportSummary> {
        let keys: Vec<String> = zones.iter().map(|z| z.name.key()).collect();
        let records: Vec<outagecast_store::ZoneRecord<'_>> = zones
            .iter()
            .zip(&keys)
            .map(|(z, key)| outagecast_store::ZoneRecord {
                name: z.name.as_str(),
                key,
                area: &z.area,
                properties: &z.properties,
            })
            .collect();
        Ok(self
            .store
            .upsert_zones(&records, actor, source, Utc::now())
            .await?)
    }

    /// Deletes a customer (their unsent notices are withdrawn, their numbers disarmed).
    /// `false` when there was no such account.
    pub async fn delete_customer(&self, actor: &str, account: &AccountId) -> Result<bool> {
        let deleted = self
            .store
            .delete_customer(account, actor, Utc::now())
            .await?;
        if deleted {
            self.reload_index().await?;
        }
        Ok(deleted)
    }

    /// Brings the IVR flags of every live incident in line with the customers now in its area:
    /// after an import a customer may have moved in or out, changed number or language. A
    /// running `serve` follows through the store's change log.
    async fn rearm_ivr(&self, actor: &str, now: DateTime<Utc>) -> Result<()> {
        for summary in self.store.incidents(false).await? {
            let incident = summary.incident;
            if !incident.is_live(now) {
                continue;
            }
            let selection = self.select(incident.draft.area()).await?;
            self.store
                .rearm_ivr(
                    incident.id,
                    &incident.draft,
                    &selection.plan.armed,
                    &self.settings.wording(now),
                    actor,
                    now,
                )
                .await?;
        }
        Ok(())
    }

    /// Selects the customers in `area` and plans who is told, writing nothing.
    pub async fn select(&self, area: &Area) -> Result<Selection> {
        let ids = self.current_index().await?.select(area);
        let customers = self.store.customers(&ids).await?;
        let opted_out: HashSet<(Channel, String)> = self.store.opt_outs().await?;
        let refs: Vec<(CustomerId, &Customer)> = customers.iter().map(|(i, c)| (*i, c)).collect();
        let plan = plan_recipients(&refs, |ch, addr| {
            opted_out.contains(&(ch, addr.to_string()))
        });
        Ok(Selection { customers, plan })
    }

    /// Why declaring `area`, which holds `count` customers, must be refused under `rails`, if
    /// it must; see [`rails`].
    pub async fn refusal(&self, area: &Area, count: u64, rails: &Rails) -> Result<Option<Refusal>> {
        let index = self.current_index().await?;
        Ok(rails::check(rails, &area.describe(), count, || {
            outagecast_ingest::swap::swapped(area).map_or(0, |m| index.count(&m))
        }))
    }

    /// Declares an incident: selection, the rails, then notices and IVR flags written in one
    /// transaction. A refusal is explained in `spelling`'s words.
    pub async fn declare(
        &self,
        actor: &str,
        draft: &IncidentDraft,
        rails: &Rails,
        spelling: &Spelling,
        now: DateTime<Utc>,
    ) -> Result<(Selection, DeclareOutcome)> {
        let selection = self.select(draft.area()).await?;
        let count = selection.customers.len() as u64;
        if let Some(refusal) = self.refusal(draft.area(), count, rails).await? {
            return Err(EngineError::Refused {
                message: refusal.explain(spelling),
                refusal,
            });
        }
        self.declare_selected(actor, draft, selection, None, now)
            .await
    }

    /// Declares an incident on a selection already made (and checked with
    /// [`Engine::refusal`]), recording where it came from when `provenance` is given, in the
    /// same transaction.
    pub async fn declare_selected(
        &self,
        actor: &str,
        draft: &IncidentDraft,
        selection: Selection,
        provenance: Option<&Provenance>,
        now: DateTime<Utc>,
    ) -> Result<(Selection, DeclareOutcome)> {
        let ids: Vec<CustomerId> = selection.customers.iter().map(|(i, _)| *i).collect();
        let declaration = Declaration {
            draft,
            affected: &ids,
            plan: &selection.plan,
            actor,
            now,
        };
        let wording = self.settings.wording(now);
        let outcome = match provenance {
            Some(p) => self.store.declare_with(declaration, &wording, p).await?,
            None => self.store.declare(declaration, &wording).await?,
        };
        Ok((selection, outcome))
    }

    /// How many customers `area` holds (the index alone, nothing loaded).
    pub async fn count(&self, area: &Area) -> Result<usize> {
        Ok(self.current_index().await?.count(area))
    }

    /// [`Engine::count`] for each of `areas`, on one index.
    pub async fn counts<'a>(
        &self,
        areas: impl IntoIterator<Item = &'a Area>,
    ) -> Result<Vec<usize>> {
        let index = self.current_index().await?;
        Ok(areas.into_iter().map(|a| index.count(a)).collect())
    }

    /// Updates, restores or cancels an incident. A new area on an update tells only the
    /// customers it adds.
    pub async fn transition(
        &self,
        actor: &str,
        id: IncidentId,
        event: EventKind,
        changes: IncidentChanges,
        now: DateTime<Utc>,
    ) -> Result<TransitionOutcome> {
        self.transition_with(actor, id, event, changes, None, now)
            .await
    }

    /// [`Engine::transition`], recording the message behind it (a CAP Update or Cancel) in
    /// the same transaction when `provenance` is given.
    pub async fn transition_with(
        &self,
        actor: &str,
        id: IncidentId,
        event: EventKind,
        changes: IncidentChanges,
        provenance: Option<&Provenance>,
        now: DateTime<Utc>,
    ) -> Result<TransitionOutcome> {
        let grown = match (&changes.area, event) {
            (Some(area), EventKind::Updated) => {
                let before: HashSet<CustomerId> =
                    self.store.affected_ids(id).await?.into_iter().collect();
                let selection = self.select(area).await?;
                let added: Vec<(CustomerId, Customer)> = selection
                    .customers
                    .into_iter()
                    .filter(|(i, _)| !before.contains(i))
                    .collect();
                let opted_out = self.store.opt_outs().await?;
                let refs: Vec<(CustomerId, &Customer)> =
                    added.iter().map(|(i, c)| (*i, c)).collect();
                let plan = plan_recipients(&refs, |ch, addr| {
                    opted_out.contains(&(ch, addr.to_string()))
                });
                Some((added.iter().map(|(i, _)| *i).collect::<Vec<_>>(), plan))
            }
            _ => None,
        };
        let transition = Transition {
            id,
            event,
            changes,
            actor,
            now,
            growth: grown.as_ref().map(|(added, plan)| Growth { added, plan }),
        };
        let wording = self.settings.wording(now);
        Ok(match provenance {
            Some(p) => self.store.transition_with(transition, &wording, p).await?,
            None => self.store.transition(transition, &wording).await?,
        })
    }

    /// Closes the store cleanly.
    pub async fn close(self) {
        self.store.close().await;
    }
}

async fn load_index(store: &Store) -> Result<LoadedIndex> {
    // The generation is read first: a change that lands while the points are read makes the
    // next check reload, never the reverse.
    let generation = store.customers_generation().await?;
    let points = store.service_points().await?;
    Ok(LoadedIndex {
        index: Arc::new(CustomerIndex::bulk_load(points)),
        generation,
    })
}
