//! The engine: the store, the in-memory customer index and the settings, wired together.
//! Each operation here is one use case; the CLI and the API server only parse and print.
//!
//! The engine is shared (`&self` everywhere): the index sits behind a lock and is swapped
//! whole when customers change, in this process or (seen through the store's customers
//! generation) in another one.

pub mod area;
pub mod cap;
pub mod incidents;
pub mod network;
pub mod publish;
pub mod rails;
pub mod registry;
pub mod reports;
pub mod tokens;
pub mod views;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use outagecast_core::CoreError;
use outagecast_core::area::Area;
use outagecast_core::contact::{Channel, Language, Region};
use outagecast_core::customer::{Customer, CustomerId, RecordRules};
use outagecast_core::incident::{EventKind, IncidentDraft, IncidentId};
use outagecast_core::message::{Locale, MessageText, Wording};
use outagecast_core::notice::{RecipientPlan, plan_recipients};
use outagecast_core::template::Templates;
use outagecast_index::CustomerIndex;
use outagecast_ingest::IngestError;
pub use outagecast_ingest::limits::Limits;
use outagecast_store::{Store, StoreError};
use std::sync::{Arc, RwLock};

pub use area::{AreaSpec, DEFAULT_ADDRESS_RADIUS_M, Geocoding, ResolvedArea};
pub use cap::{CapOutcome, CapOverrides, CapReceipt, CapRequest, CapView, FollowUp};
pub use incidents::{
    DeclareRequest, Declared, IncidentDetails, Preview, Transitioned, UpdateRequest,
};
pub use network::{DEFAULT_ATTACH_WITHIN_M, NetworkImport, Services, TopologySpec};
pub use publish::{PublishSettings, StatusAnswer};
pub use rails::{Counted, Rails, Refusal, Spelling};
pub use registry::ZonesFile;
pub use reports::{CLUSTER_CELL_DEGREES, CLUSTER_WINDOW, ReportCluster, ReportListing};
pub use tokens::{CreatedToken, Tokens};

/// Everything an engine operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed, or refused (not found, a rule).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input was invalid.
    #[error(transparent)]
    Rule(#[from] CoreError),
    /// An area, an address or a CAP alert was invalid.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The geocoding service failed.
    #[error("address: {0}")]
    Geocoder(#[from] outagecast_nominatim::NominatimError),
    /// An input named by the front end does not fit what is stored (an unknown zone, a CAP
    /// message applied already); the message is in the front end's words.
    #[error("{message}")]
    Invalid {
        /// The input at fault.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The input contradicts what is stored (a CAP Update for an incident never declared
    /// here, an identifier reused with another `sent`); the message is in the front end's
    /// words.
    #[error("{message}")]
    Conflict {
        /// The input at fault.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
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
    /// Most vertices per area and characters per address (`OUTAGECAST_MAX_AREA_VERTICES`,
    /// `OUTAGECAST_MAX_ADDRESS_CHARS`).
    pub limits: Limits,
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
    pub(crate) async fn current_index(&self) -> Result<Arc<CustomerIndex>> {
        let generation = self.store.customers_generation().await?;
        {
            let held = self.index.read().unwrap_or_else(|e| e.into_inner());
            if held.generation == generation {
                return Ok(Arc::clone(&held.index));
            }
        }
        self.reload_index().await
    }

    pub(crate) async fn reload_index(&self) -> Result<Arc<CustomerIndex>> {
        let loaded = load_index(&self.store).await?;
        let index = Arc::clone(&loaded.index);
        let mut held = self.index.write().unwrap_or_else(|e| e.into_inner());
        // Two reloads may race; keep the newer.
        if loaded.generation >= held.generation {
            *held = loaded;
        }
        Ok(index)
    }

    /// The store, for the parts that take the store itself as their port (the dispatcher
    /// and the IVR follower): no use case goes through here.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Brings the IVR flags of every live incident in line with the customers now in its area:
    /// after an import a customer may have moved in or out, changed number or language. A
    /// running `serve` follows through the store's change log.
    pub(crate) async fn rearm_ivr(&self, actor: &str, now: DateTime<Utc>) -> Result<()> {
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
        self.selection_of(customers).await
    }

    /// The customers with these account ids, with their recipients planned (the selection of
    /// a trace by topology).
    pub async fn select_accounts(&self, accounts: &[String]) -> Result<Selection> {
        let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
        let customers = self.store.customers_by_accounts(&accounts).await?;
        self.selection_of(customers).await
    }

    async fn selection_of(&self, customers: Vec<(CustomerId, Customer)>) -> Result<Selection> {
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
