//! The command line: the public contract that operators' scripts rely on. Keep spellings stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use outagecast_core::incident::{IncidentKind, Severity};

/// outagecast: tell utility customers about an outage before they call.
#[derive(Debug, Parser)]
#[command(
    name = "outagecast",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 done; 1 failed (the message names the field and the fix); 2 bad usage; \
                  3 refused by a safety rail, nothing written (repeat the count with --confirm N, or --allow-empty). \
                  With --json a failure is one JSON object on stderr: {\"error\": {\"code\", \"message\", \"field\"}}."
)]
pub struct Cli {
    /// The database: a SQLite file path (created if missing), a sqlite: URL, or a
    /// postgres:// URL (PostgreSQL with PostGIS, shared by several nodes).
    #[arg(
        long,
        global = true,
        env = "OUTAGECAST_DATABASE_URL",
        default_value = "./outagecast.db"
    )]
    pub db: String,

    /// Country for phone numbers written without a country code, e.g. FI.
    #[arg(long, global = true, env = "OUTAGECAST_DEFAULT_REGION")]
    pub default_region: Option<String>,

    /// Time zone that message times are written in (IANA name, e.g. Europe/Helsinki).
    #[arg(
        long,
        global = true,
        env = "OUTAGECAST_TIMEZONE",
        default_value = "UTC"
    )]
    pub timezone: String,

    /// Operator templates for the notice texts (TOML; `template preview` shows them).
    #[arg(long, global = true, env = "OUTAGECAST_TEMPLATES", value_name = "FILE")]
    pub templates: Option<PathBuf>,

    /// Configuration file (TOML): its keys are the OUTAGECAST_* variables in lower case without
    /// the prefix (`smtp_url = "..."`). Flags beat the environment, which beats the file.
    #[arg(long, global = true, env = "OUTAGECAST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import data.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Declare, inspect and close incidents.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// What the phone system hears for a caller.
    #[command(subcommand)]
    Ivr(IvrCommand),
    /// Import and list named zones (district metered areas, pressure zones, feeder areas).
    #[command(subcommand)]
    Zones(crate::zones::ZonesCommand),
    /// Import the water (or power) network model for targeting by topology.
    #[command(subcommand)]
    Network(crate::network::NetworkCommand),
    /// Send the pending notices (SMS over a Twilio-compatible API, email over SMTP).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Run the service until Ctrl-C/SIGTERM: the REST API (/v1), the dispatcher workers, the
    /// provider webhooks, the IVR front ends (HTTP JSON, Twilio, Asterisk FastAGI), the public
    /// feeds and status page, /healthz and /metrics.
    #[command(
        after_help = "Examples:\n  outagecast serve --listen 0.0.0.0:8080\n  OUTAGECAST_DATABASE_URL=postgres://outagecast@db/outagecast outagecast serve --listen 0.0.0.0:8080 --metrics-listen 127.0.0.1:9090\n  outagecast serve --no-workers   # API and IVR only; run `notify run` elsewhere"
    )]
    Serve(crate::serve::ServeArgs),
    /// Preview notice texts: SMS encoding and segments, email subject.
    #[command(subcommand)]
    Template(crate::template::TemplateCommand),
    /// Run the whole flow on the Helsinki sample in a temporary database.
    Demo,
    /// Check the configuration: the file, the environment and the flags.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// API tokens for the HTTP API's callers.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a shell completion script, e.g.
    /// `outagecast completions bash > /etc/bash_completion.d/outagecast`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `outagecast man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Build every setting as the commands would and print each effective value with where it
    /// came from (flag, env, file or default), secrets as ***; exits non-zero listing every
    /// problem.
    Check(CheckArgs),
}

/// Flags of `config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also connect to each configured channel: the SMTP server's greeting and EHLO, the SMS
    /// provider's account URL with the credentials. Sends nothing.
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token. Its secret is printed once and cannot be shown again.
    #[command(
        after_help = "Examples:\n  outagecast token create --role operator --name console\n  outagecast token create --role ivr --name asterisk --json"
    )]
    Create {
        /// What it may do: admin, operator, viewer, ivr or webhook.
        #[arg(long)]
        role: String,
        /// A unique name that says who uses it (ci-deploy, asterisk); `token revoke` takes it.
        #[arg(long)]
        name: String,
        /// Print one JSON object (the secret in "token").
        #[arg(long)]
        json: bool,
    },
    /// List the tokens, revoked ones too (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name: it is refused from now on.
    Revoke {
        /// The token's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import customers from CSV (header: account_id,lon,lat,address,phone,email,language,priority)
    /// or GeoJSON (Point features with those properties). Existing accounts are updated; bad rows
    /// are reported with their line (or feature) and skipped.
    #[command(
        after_help = "Examples:\n  outagecast import customers customers.csv\n  outagecast import customers customers.geojson --strict --json"
    )]
    Customers {
        /// The CSV or GeoJSON file.
        file: PathBuf,
        /// Refuse the whole file if any row is bad (nothing is written).
        #[arg(long)]
        strict: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per run: the size of the `Update` variant (its flags inline) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Declare an incident: select the affected customers, plan their notices, arm the IVR.
    #[command(
        after_help = "Examples:\n  outagecast incident declare --kind water --cause \"burst main\" --circle 24.9384,60.1699,300 --etr 15:00\n  outagecast incident declare --kind water --cause \"burst main\" --address \"Kaivokatu 1, Helsinki\" --radius 200 --etr +3h\n  outagecast incident declare --kind power --cause \"cable fault\" --zone \"Feeder 12\" --severity severe\n  outagecast incident declare --kind water --cause \"burst main\" --burst-pipe P-402\n  outagecast incident declare --cap alert.xml"
    )]
    Declare(Box<DeclareArgs>),
    /// Show what a declaration would do, writing nothing: the count needs only the area, the
    /// texts also --kind and --cause.
    #[command(
        after_help = "Examples:\n  outagecast incident preview --circle 24.9384,60.1699,300\n  outagecast incident preview --kind water --cause \"burst main\" --polygon area.geojson --json"
    )]
    Preview(Box<DeclareArgs>),
    /// List active incidents (all with --all).
    List {
        /// Include restored and cancelled incidents.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one incident with its counts.
    Show(IdArgs),
    /// Change the ETR, cause, severity or area; tells those already told, and only the
    /// customers a new area adds are told as newly affected.
    #[command(
        after_help = "Examples:\n  outagecast incident update INC-12 --etr 18:00\n  outagecast incident update INC-12 --etr +2h --cause \"burst main, crew on site\"\n  outagecast incident update INC-12 --zone \"DMA Kallio\"\n  outagecast incident update INC-12 --burst-pipe P-402 --broken-valve V-17"
    )]
    Update(Box<UpdateArgs>),
    /// Mark the service restored: tells those told, disarms the IVR.
    Restore(IdArgs),
    /// Withdraw an incident declared in error: tells those told, disarms the IVR.
    Cancel(IdArgs),
    /// Counts by channel and status, and every recipient's outcome.
    #[command(
        after_help = "Examples:\n  outagecast incident report INC-12\n  outagecast incident report INC-12 --csv recipients.csv --json"
    )]
    Report {
        #[command(flatten)]
        id: IdArgs,
        /// Also write the per-recipient outcomes to this CSV file.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Incident id (`12` or `INC-12`).
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The details `incident declare`/`preview` and `incident update` share.
#[derive(Debug, Args)]
#[group(skip)]
pub struct DetailArgs {
    /// Estimated time of restoration in the utility's time zone: 15:00 (the next 15:00),
    /// "tomorrow 08:00", +3h, +90m, 2026-11-25 15:00, or RFC 3339 with an offset.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub etr: Option<String>,
    /// What happened, one line (it goes into every SMS).
    #[arg(long)]
    pub cause: Option<String>,
    /// CAP severity (declare: moderate unless given, or the alert's with --cap).
    #[arg(long, value_parser = crate::commands::severity_values(), ignore_case = true)]
    pub severity: Option<Severity>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("area").args(crate::areas::AREA_FLAGS)))]
pub struct UpdateArgs {
    #[command(flatten)]
    pub id: IdArgs,
    #[command(flatten)]
    pub details: DetailArgs,
    /// A new area (any of the declare area flags).
    #[command(flatten)]
    pub area: crate::areas::AreaArgs,
    #[command(flatten)]
    pub rails: crate::areas::RailArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("area").required(true).args(crate::areas::AREA_FLAGS).arg("cap")))]
pub struct DeclareArgs {
    /// Service kind (declare needs it unless --cap gives it; preview counts without it, and
    /// shows the texts with it and --cause).
    #[arg(long, value_parser = crate::commands::kind_values(), ignore_case = true)]
    pub kind: Option<IncidentKind>,
    #[command(flatten)]
    pub details: DetailArgs,
    /// Your own id for the incident (work order, ticket).
    #[arg(long)]
    pub reference: Option<String>,
    /// When callers stop hearing about it if nobody restores it (as --etr).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub area: crate::areas::AreaArgs,
    /// A CAP 1.2 alert (XML): msgType Alert declares, Update and Cancel act on the incident
    /// that the message in its <references> declared.
    #[arg(long, value_name = "FILE.xml")]
    pub cap: Option<PathBuf>,
    #[command(flatten)]
    pub rails: crate::areas::RailArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Run the dispatcher in the foreground until Ctrl-C/SIGTERM (or --until-empty).
    #[command(
        after_help = "Examples:\n  outagecast notify run --until-empty\n  outagecast notify run --quiet-hours 21:00-08:00 --json"
    )]
    Run(crate::notify::NotifyArgs),
    /// Put an incident's failed notices back in the queue (after fixing what made them fail).
    Requeue(crate::notify::RequeueArgs),
}

#[derive(Debug, Subcommand)]
pub enum IvrCommand {
    /// Is an announcement armed for this caller number, and what does it say?
    #[command(
        after_help = "Examples:\n  outagecast ivr lookup +358401234567\n  outagecast --default-region FI ivr lookup 040 123 4567 --json"
    )]
    Lookup {
        /// The caller number, in any common form (+358…, 00358…, national with --default-region).
        number: String,
        /// How long after a restore callers still hear that it has been fixed (as `serve`).
        #[arg(
            long,
            env = "OUTAGECAST_IVR_RESTORED_GRACE",
            default_value = "off",
            value_name = "DURATION"
        )]
        ivr_restored_grace: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
