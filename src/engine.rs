//! The engine: the store, the in-memory customer index and the settings, wired together.
//! Each operation here is one use case; the CLI (and later the server) only parse and print.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use outagecast_core::area::Area;
use outagecast_core::contact::{Channel, Language, Region};
use outagecast_core::customer::{Customer, CustomerId, RecordRules};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentDraft, IncidentId};
use outagecast_core::ivr::{IvrAnswer, answer, normalise_caller};
use outagecast_core::message::Locale;
use outagecast_core::notice::{RecipientPlan, plan_recipients};
use outagecast_index::CustomerIndex;
use outagecast_store::{
    Declaration, DeclareOutcome, Growth, ImportSummary, Provenance, SqliteStore, Transition,
    TransitionOutcome,
};

/// Settings that shape every operation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region for national phone formats.
    pub default_region: Option<Region>,
    /// Time zone for times in messages.
    pub timezone: Tz,
    /// Who is acting, for the audit log (`cli:alice`).
    pub actor: String,
}

impl Settings {
    /// How customer CSV rows are read.
    pub fn record_rules(&self) -> RecordRules {
        RecordRules {
            default_region: self.default_region,
            default_language: Language::Fi,
        }
    }

    fn locale(&self, now: DateTime<Utc>) -> Locale {
        Locale {
            zone: self.timezone,
            now,
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
    store: SqliteStore,
    index: CustomerIndex,
    settings: Settings,
}

impl Engine {
    /// Opens the store and builds the customer index from it.
    pub async fn open(db: &str, settings: Settings) -> Result<Self> {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            bail!(
                "--db: PostgreSQL is not supported yet; give a SQLite file path such as ./outagecast.db"
            );
        }
        let store = SqliteStore::open_url(db)
            .await
            .with_context(|| format!("--db: cannot open the database {db:?}"))?;
        let points = store.service_points().await?;
        let index = CustomerIndex::bulk_load(points);
        Ok(Engine {
            store,
            index,
            settings,
        })
    }

    /// The store, for read-only queries the CLI prints directly.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Imports parsed customers and rebuilds the index.
    pub async fn import(&mut self, customers: &[Customer], source: &str) -> Result<ImportSummary> {
        let summary = self
            .store
            .upsert_customers(customers, &self.settings.actor, source, Utc::now())
            .await?;
        // A re-import may move service points; rebuilding from the store is simplest and
        // takes well under a second for a city.
        self.index = CustomerIndex::bulk_load(self.store.service_points().await?);
        self.rearm_ivr(Utc::now()).await?;
        Ok(summary)
    }

    /// Brings the IVR flags of every live incident in line with the customers now in its area:
    /// after an import a customer may have moved in or out, changed number or language. A
    /// running `serve` follows through the store's change log.
    async fn rearm_ivr(&self, now: DateTime<Utc>) -> Result<()> {
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
                    &self.settings.locale(now),
                    &self.settings.actor,
                    now,
                )
                .await?;
        }
        Ok(())
    }

    /// Selects the customers in `area` and plans who is told, writing nothing.
    pub async fn select(&self, area: &Area) -> Result<Selection> {
        let ids = self.index.select(area);
        let customers = self.store.customers(&ids).await?;
        let opted_out: HashSet<(Channel, String)> = self.store.opt_outs().await?;
        let refs: Vec<(CustomerId, &Customer)> = customers.iter().map(|(i, c)| (*i, c)).collect();
        let plan = plan_recipients(&refs, |ch, addr| {
            opted_out.contains(&(ch, addr.to_string()))
        });
        Ok(Selection { customers, plan })
    }

    /// Declares an incident: selection, notices and IVR flags written in one transaction.
    pub async fn declare(
        &self,
        draft: &IncidentDraft,
        allow_empty: bool,
        now: DateTime<Utc>,
    ) -> Result<(Selection, DeclareOutcome)> {
        let selection = self.select(draft.area()).await?;
        if selection.customers.is_empty() && !allow_empty {
            bail!(
                "area: holds no customers ({}); check the coordinates (the order is lon,lat) \
                 and the radius, or pass --allow-empty to declare it anyway",
                draft.area().describe()
            );
        }
        self.declare_selected(draft, selection, None, now).await
    }

    /// Declares an incident on a selection already made (and checked: see `crate::areas`),
    /// recording where it came from when `provenance` is given, in the same transaction.
    pub async fn declare_selected(
        &self,
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
            actor: &self.settings.actor,
            now,
        };
        let wording = self.settings.locale(now);
        let outcome = match provenance {
            Some(p) => self.store.declare_with(declaration, &wording, p).await?,
            None => self.store.declare(declaration, &wording).await?,
        };
        Ok((selection, outcome))
    }

    /// How many customers `area` holds (the index alone, nothing loaded).
    pub fn count(&self, area: &Area) -> usize {
        self.index.count(area)
    }

    /// Updates, restores or cancels an incident. A new area on an update tells only the
    /// customers it adds.
    pub async fn transition(
        &self,
        id: IncidentId,
        event: EventKind,
        changes: IncidentChanges,
        now: DateTime<Utc>,
    ) -> Result<TransitionOutcome> {
        self.transition_with(id, event, changes, None, now).await
    }

    /// [`Engine::transition`], recording the message behind it (a CAP Update or Cancel) in
    /// the same transaction when `provenance` is given.
    pub async fn transition_with(
        &self,
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
            actor: &self.settings.actor,
            now,
            growth: grown.as_ref().map(|(added, plan)| Growth { added, plan }),
        };
        let wording = self.settings.locale(now);
        Ok(match provenance {
            Some(p) => self.store.transition_with(transition, &wording, p).await?,
            None => self.store.transition(transition, &wording).await?,
        })
    }

    /// What the IVR says to `raw_number`. Never an error for a bad number: it is just not armed.
    pub async fn ivr_lookup(&self, raw_number: &str, now: DateTime<Utc>) -> Result<IvrAnswer> {
        let Some(caller) = normalise_caller(raw_number, self.settings.default_region) else {
            return Ok(answer(None, vec![]));
        };
        let armed = self.store.armed_for(&caller, now).await?;
        Ok(answer(Some(caller), armed))
    }

    /// Closes the store cleanly.
    pub async fn close(self) {
        self.store.close().await;
    }
}
