//! The command line: the public contract that operators' scripts rely on. Keep spellings stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Serve the IVR lookup over HTTP (JSON, Twilio) and Asterisk FastAGI until Ctrl-C/SIGTERM.
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
    /// Import customers from CSV (header: account_id,lon,lat,address,phone,email,language,priority).
    /// Existing accounts are updated; bad rows are reported with their line and skipped.
    Customers {
        /// The CSV file.
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
    Declare(Box<DeclareArgs>),
    /// Show what a declaration would do, writing nothing.
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
    /// Change the ETR, cause or severity; tells those already told.
    Update {
        #[command(flatten)]
        id: IdArgs,
        /// New estimated time of restoration (RFC 3339).
        #[arg(long)]
        etr: Option<String>,
        /// New cause text.
        #[arg(long)]
        cause: Option<String>,
        /// New severity: minor, moderate, severe or extreme.
        #[arg(long)]
        severity: Option<String>,
        /// A new area as a circle LON,LAT,METRES: only customers it adds are told.
        #[arg(long, value_name = "LON,LAT,METRES", allow_hyphen_values = true, conflicts_with_all = ["polygon", "corridor"])]
        circle: Option<String>,
        /// A new area from a GeoJSON polygon file: only customers it adds are told.
        #[arg(long, value_name = "FILE.geojson", conflicts_with = "corridor")]
        polygon: Option<PathBuf>,
        /// A new area along a GeoJSON line (with --buffer): only customers it adds are told.
        #[arg(long, value_name = "FILE.geojson", requires = "buffer")]
        corridor: Option<PathBuf>,
        /// Metres each side of the --corridor line.
        #[arg(long, value_name = "METRES")]
        buffer: Option<f64>,
        /// Re-run the isolation trace of this burst pipe (power: --faulted-section), e.g. with
        /// a valve found broken: only the customers it adds are told.
        #[arg(long, value_name = "PIPE", visible_alias = "faulted-section", conflicts_with_all = ["circle", "polygon", "corridor"])]
        burst_pipe: Option<String>,
        /// With --burst-pipe: an isolation valve that will not turn (repeatable).
        #[arg(
            long = "broken-valve",
            value_name = "VALVE",
            requires = "burst_pipe",
            visible_alias = "broken-switch"
        )]
        broken_valve: Vec<String>,
        /// A new area adding more customers than the threshold: repeat the exact count it adds.
        #[arg(long, value_name = "N")]
        confirm: Option<u64>,
        /// Customers a new area may add before --confirm N is needed.
        #[arg(long, value_name = "N", env = "OUTAGECAST_CONFIRM_THRESHOLD", default_value_t = outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD)]
        confirm_threshold: u64,
        /// Accept a new area that holds no customers.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Mark the service restored: tells those told, disarms the IVR.
    Restore(IdArgs),
    /// Withdraw an incident declared in error: tells those told, disarms the IVR.
    Cancel(IdArgs),
    /// Counts by channel and status, and every recipient's outcome.
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

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("area").required(true).args(["circle", "polygon", "corridor", "geojson", "wkt", "cap", "zone", "address", "burst_pipe"])))]
pub struct DeclareArgs {
    /// Service kind: water, power, gas, heating, telecom or sewer (declare needs it unless
    /// --cap gives it; preview counts without it, and shows the texts with it and --cause).
    #[arg(long)]
    pub kind: Option<String>,
    /// What happened, one line (it goes into every SMS; as --kind).
    #[arg(long)]
    pub cause: Option<String>,
    /// Estimated time of restoration, RFC 3339 (2026-11-25T15:00:00+02:00).
    #[arg(long)]
    pub etr: Option<String>,
    /// CAP severity: minor, moderate (the default, or the alert's with --cap), severe or extreme.
    #[arg(long)]
    pub severity: Option<String>,
    /// Your own id for the incident (work order, ticket).
    #[arg(long)]
    pub reference: Option<String>,
    /// When callers stop hearing about it if nobody restores it (RFC 3339).
    #[arg(long)]
    pub expires: Option<String>,
    /// A circle: LON,LAT,METRES (geodesic radius).
    #[arg(long, value_name = "LON,LAT,METRES", allow_hyphen_values = true)]
    pub circle: Option<String>,
    /// A GeoJSON file with a Polygon or MultiPolygon (a Feature or FeatureCollection is fine).
    #[arg(long, value_name = "FILE.geojson")]
    pub polygon: Option<PathBuf>,
    /// A GeoJSON file with one LineString (a main or a street); needs --buffer.
    #[arg(long, value_name = "FILE.geojson", requires = "buffer")]
    pub corridor: Option<PathBuf>,
    /// Metres each side of the --corridor line.
    #[arg(long, value_name = "METRES")]
    pub buffer: Option<f64>,
    /// GeoJSON, WKT, CAP, zone and address areas; the --confirm rail (see `crate::areas`).
    #[command(flatten)]
    pub ingest: crate::areas::IngestArgs,
    /// A burst pipe of the imported network (`network import`): the customers fed from its
    /// isolated segment and those left with no path to a source (power: --faulted-section).
    #[arg(long, value_name = "PIPE", visible_alias = "faulted-section")]
    pub burst_pipe: Option<String>,
    /// An isolation valve that will not turn, so the trace grows to the next ones (repeatable;
    /// power: --broken-switch).
    #[arg(
        long = "broken-valve",
        value_name = "VALVE",
        requires = "burst_pipe",
        visible_alias = "broken-switch"
    )]
    pub broken_valve: Vec<String>,
    /// Declare even if the area holds no customers.
    #[arg(long)]
    pub allow_empty: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Run the dispatcher in the foreground until Ctrl-C/SIGTERM (or --until-empty).
    Run(crate::notify::NotifyArgs),
    /// Put an incident's failed notices back in the queue (after fixing what made them fail).
    Requeue(crate::notify::RequeueArgs),
}

#[derive(Debug, Subcommand)]
pub enum IvrCommand {
    /// Is an announcement armed for this caller number, and what does it say?
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
