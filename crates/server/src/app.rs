//! The whole HTTP server of `outagecast serve`, built from typed configuration: the `/v1` API
//! with `/openapi.json` and its browser `/docs`, the provider webhooks, `/metrics`, and (in [`run`]) the IVR routes
//! and `/healthz`. The binary builds a [`ServerConfig`] and calls [`Server::new`]; it builds
//! no routes itself.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use outagecast_engine::Engine;
use outagecast_store::Store;
use tokio::net::TcpListener;

use crate::api::{ApiSettings, ApiState};
use crate::auth::{Auth, INSECURE_WARNING};
use crate::webhooks::{WebhookSettings, Webhooks};
use crate::{Listeners, Result, ServeSettings, run};
use outagecast_core::auth::Role;

/// Everything the HTTP server needs to know. Secrets inside print as `***`.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The IVR front ends, FastAGI and the change-log poll. Its `ivr_guard` and
    /// `voice_guard` are filled in by [`Server::new`] from the tokens and the webhooks.
    pub serve: ServeSettings,
    /// The `/v1` API.
    pub api: ApiSettings,
    /// The provider webhooks (and the voice webhook's signature check).
    pub webhooks: WebhookSettings,
}

/// The server with every route built, not yet serving.
#[derive(Debug)]
pub struct Server {
    store: Store,
    settings: ServeSettings,
    routes: Router,
    metrics: Option<TcpListener>,
}

impl Server {
    /// Checks `config` and builds every route over `store` and `engine`: a bad setting is an
    /// error naming it, before anything listens.
    pub fn new(store: Store, engine: Arc<Engine>, config: ServerConfig) -> Result<Server> {
        let webhooks = Webhooks::new(config.webhooks)?;
        let auth = Auth::new(store.clone());
        let mut settings = config.serve;
        settings.ivr_guard = Some(auth.clone());
        settings.voice_guard = webhooks.guard();
        let state = ApiState::new(engine, auth.clone(), config.api);
        settings.api_health = Some(state.health());
        let (api, doc) = crate::api::api(state);
        let doc = Arc::new(doc);
        let webhooks = webhooks.router(store.clone(), auth.clone());
        let routes = api
            .merge(webhooks)
            .merge(crate::metrics::guarded_metrics_routes(store.clone(), auth))
            .route(
                "/openapi.json",
                axum::routing::get(move || {
                    let doc = Arc::clone(&doc);
                    async move { axum::Json(doc.as_ref().clone()) }
                }),
            )
            .merge(crate::docs::docs_routes());
        Ok(Server {
            store,
            settings,
            routes,
            metrics: None,
        })
    }

    /// The same server, also answering `/metrics` without a token on `listener` (bound by the
    /// caller on an address only the scraper reaches: `serve --metrics-listen`).
    #[must_use]
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics = Some(listener);
        self
    }

    /// Serves on `listeners` until `shutdown` completes (see [`run`]), after one log line per
    /// inbound route group that is closed (or opened with `--insecure-webhooks`) and why.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<()> {
        for line in self.closed_routes().await {
            tracing::warn!("{line}");
        }
        let Some(listener) = self.metrics else {
            return run(listeners, self.store, self.settings, self.routes, shutdown).await;
        };
        // One shutdown for both: the metrics listener stops when the main server is told to.
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        // The same accept loop and limits as the main listener.
        let metrics = tokio::spawn(crate::listen::serve_http(
            listener,
            crate::metrics::metrics_routes(self.store.clone()),
            self.settings.http,
            async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            },
            crate::run::DRAIN_TIMEOUT,
        ));
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let served = run(listeners, self.store, self.settings, self.routes, shutdown).await;
        metrics.await?;
        served
    }

    /// What is closed to whom, for the start-up lines: the routes Twilio calls when no
    /// signature can be checked (or all of them, open, with `--insecure-webhooks`), `/metrics`
    /// without a listener of its own, and the IVR lookup while no `ivr` token exists.
    pub async fn closed_routes(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let guard = &self.settings.voice_guard;
        if guard.is_insecure() {
            lines.push(format!("WARNING {INSECURE_WARNING}"));
        } else if guard.signer().is_none() {
            lines.push(
                "closed: /webhooks/sms/status, /webhooks/sms/inbound and /v1/ivr/twilio/voice \
                 take only webhook-role tokens (as the password in the webhook URL, \
                 https://twilio:TOKEN@host/path; `outagecast token create --role webhook --name \
                 NAME`): OUTAGECAST_SMS_AUTH_TOKEN and OUTAGECAST_PUBLIC_URL are not both set, so \
                 X-Twilio-Signature cannot be checked"
                    .to_string(),
            );
        }
        let ivr_token = match self.store.tokens().await {
            Ok(tokens) => tokens
                .iter()
                .any(|t| t.revoked_at.is_none() && t.role == Role::Ivr),
            Err(e) => {
                tracing::debug!(error = %e, "token list for the start-up lines");
                true
            }
        };
        if self.metrics.is_none() {
            lines.push(
                "closed: /metrics needs an admin token; give the scraper a listener of its own \
                 with --metrics-listen ADDR (no token there)"
                    .to_string(),
            );
        }
        if !ivr_token {
            lines.push(
                "closed: /v1/ivr/lookup needs an ivr-role token and none exists yet; create one \
                 for the phone system with `outagecast token create --role ivr --name NAME`"
                    .to_string(),
            );
        }
        lines
    }
}
