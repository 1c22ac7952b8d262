//! The command line (DESIGN §2). Exit codes: 0 ok, 2 usage or configuration
//! error (naming the offending key), 1 anything else.

use crate::app::{self, App};
use crate::config::Config;
use crate::token::keys::{self, Alg, KeySet};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "appauth", version, about = "OAuth 2.0 client-credentials token server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// TOML configuration file (see config/appauth.toml); embedded defaults when absent
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. --set server.listen=127.0.0.1:0 (repeatable)
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (initialises an empty store on first start)
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Listen address, e.g. 127.0.0.1:8080 (same as --set server.listen=…)
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create the store, pepper, a signing key and the admin application
    Init {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the admin credentials as {"clientId": …, "secret": …}
        #[arg(long)]
        json: bool,
    },
    /// Offline administration of the store (the server must be stopped)
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Applications on a running server (admin API): list, create, show, enable, disable, regenerate, delete
    Apps {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::AppsCommand,
    },
    /// Access rules on a running server: list, create, delete
    Rules {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::RulesCommand,
    },
    /// Scopes on a running server: list, create, delete
    Scopes {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::ScopesCommand,
    },
    /// Roles of a running server
    Roles {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::RolesCommand,
    },
    /// The audit log of a running server
    Audit {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::AuditCommand,
    },
    /// Write the directory of a running server (scopes, applications,
    /// their policy, keys, federated credentials and access rules; never a
    /// secret) as YAML, or JSON with -o json
    Export {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(flatten)]
        args: crate::admin_cli::ExportArgs,
    },
    /// Make a running server's directory match a file written by export:
    /// prints the changes, makes them through the admin API with your
    /// credentials, stops at the first refusal
    Apply {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(flatten)]
        args: crate::admin_cli::ApplyArgs,
    },
    /// Take a consistent backup of a running server's sled store (System
    /// administrators only); it holds secret hashes and the audit log, not
    /// signing keys or the pepper
    Backup {
        #[command(flatten)]
        conn: crate::admin_cli::Connection,
        #[command(flatten)]
        args: crate::admin_cli::BackupArgs,
    },
    /// Replace the sled store with a backup (the server must be stopped; the
    /// previous store is kept beside it, renamed). Refuses when keys.dir does
    /// not hold the pepper the backup's secret hashes were made with.
    ///
    /// Example: appauth restore 2026-12-01.backup --config /etc/appauth/appauth.toml
    Restore {
        /// A file `appauth backup` wrote
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Restore even when keys.dir holds another pepper or none (every
        /// client secret will then be refused: regenerate them)
        #[arg(long)]
        force: bool,
    },
    /// Manage signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check a configuration without starting anything
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the man pages (appauth.1, appauth-apps.1, appauth-apps-create.1, …) into DIR
    #[command(hide = true)]
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a shell completion script: appauth completion bash > /etc/bash_completion.d/appauth
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Load-test a running server's token endpoint
    Bench {
        /// Base URL of the server, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        /// Base URL of the admin plane, where the applications are created
        /// (with server.admin_listen); default: --url
        #[arg(long)]
        admin_url: Option<String>,
        /// {"clientId","secret"} of an admin application (e.g. data/initial-admin.json)
        #[arg(long, value_name = "FILE")]
        admin_credentials: PathBuf,
        /// Applications to provision and rotate through
        #[arg(long, default_value_t = 1)]
        apps: usize,
        /// Keep-alive connections
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds of measurement
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of unrecorded warm-up
        #[arg(long, default_value_t = 3)]
        warmup: u64,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Allow a non-loopback target
        #[arg(long)]
        allow_remote: bool,
        /// Save provisioned credentials here and reuse them next time
        #[arg(long, value_name = "FILE")]
        reuse: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key; it is published now and signs after keys.publish_ahead_seconds
    Generate {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value = "ES256", value_parser = ["ES256", "EdDSA", "RS256"])]
        alg: String,
        /// RSA modulus size (RS256 only)
        #[arg(long, default_value = "2048", value_parser = ["2048", "3072"])]
        bits: String,
    },
    /// List keys with their algorithm, state and dates
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Withdraw a key: it stops signing (once another key takes over) and leaves the JWKS
    /// when its tokens have expired. With --now (the key leaked) it leaves the JWKS at once,
    /// every token it signed is refused, and a replacement signs immediately.
    ///
    /// Example: appauth keys retire 3Nq0…Vw --now
    Retire {
        #[command(flatten)]
        config: ConfigArgs,
        /// The key's kid (see `appauth keys list`); base64url, so it may
        /// start with `-`
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Key compromise: withdraw it immediately
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the layered configuration (defaults < file < APPAUTH_* < --set) and the files
    /// it names (TLS certificates and keys, federation CA files), then print the effective
    /// settings with secrets redacted. Exit 0 when valid, 2 naming the offending key otherwise.
    ///
    /// Example: appauth config check --config /etc/appauth/1.toml
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a new System administrator application and print its credentials once
    /// (when every administrator's credentials are lost). Refuses while a server holds the store.
    Recover {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the credentials as {"clientId": …, "secret": …}
        #[arg(long)]
        json: bool,
    },
}

enum Failure {
    Usage(String),
    Other(String),
}

fn load(args: &ConfigArgs, extra: Vec<String>) -> Result<Config, Failure> {
    let mut set = args.set.clone();
    set.extend(extra);
    Config::load(args.config.as_deref(), std::env::vars(), &set).map_err(|e| Failure::Usage(e.to_string()))
}

/// `appauth config check`: everything `serve` would refuse at start
/// before touching the store, without binding or writing anything.
fn config_check(args: &ConfigArgs) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    let tls = |cert: &Option<PathBuf>, key: &Option<PathBuf>, names: (&str, &str)| match (cert, key) {
        (Some(c), Some(k)) => crate::http::tls::tls_acceptor(c, k, names, &config.server)
            .map(|_| ())
            .map_err(Failure::Usage),
        _ => Ok(()),
    };
    tls(
        &config.server.tls_cert,
        &config.server.tls_key,
        ("server.tls_cert", "server.tls_key"),
    )?;
    tls(
        &config.server.admin_tls_cert,
        &config.server.admin_tls_key,
        ("server.admin_tls_cert", "server.admin_tls_key"),
    )?;
    crate::oauth::mtls::Mtls::new(&config.server).map_err(Failure::Usage)?;
    crate::federation::Federation::new(&config.federation.issuers, "https://check.invalid")
        .map_err(|e| Failure::Usage(format!("federation.issuers: {e}")))?;
    println!("{config:#?}");
    println!("configuration is valid");
    Ok(())
}

fn restore(args: &ConfigArgs, file: &std::path::Path, force: bool) -> Result<(), Failure> {
    use crate::store::backup::{RestoreRefused, restore_file};
    let config = load(args, Vec::new())?;
    match restore_file(&config, file, force) {
        Ok(told) => {
            println!("{told}");
            Ok(())
        }
        Err(RestoreRefused::Usage(m)) => Err(Failure::Usage(m)),
        Err(RestoreRefused::Other(m)) => Err(Failure::Other(m)),
    }
}

fn admin_call(result: Result<(), crate::admin_cli::Failure>) -> Result<(), Failure> {
    result.map_err(|e| match e {
        crate::admin_cli::Failure::Usage(m) => Failure::Usage(m),
        crate::admin_cli::Failure::Refused(m) => Failure::Other(m),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // Connections run on their own per-core runtimes (see app/server.rs); this
    // one accepts, runs background work and the CLI commands.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))
}

pub fn main() -> ExitCode {
    // Everything appauth writes (store, keys, credentials files) is for
    // its own user only, whatever umask it was started with; sled creates
    // snapshot files long after the store was made private.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, listen } => serve(&config, listen),
        Command::Init { config, json } => init(&config, json),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => config_check(&config),
        Command::Man { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                .map_err(|e| Failure::Other(format!("cannot write man pages to {}: {e}", dir.display())))
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "appauth", &mut std::io::stdout());
            Ok(())
        }
        Command::Apps { conn, command } => admin_call(crate::admin_cli::apps(&conn, command)),
        Command::Rules { conn, command } => admin_call(crate::admin_cli::rules(&conn, command)),
        Command::Scopes { conn, command } => admin_call(crate::admin_cli::scopes(&conn, command)),
        Command::Roles { conn, command } => admin_call(crate::admin_cli::roles(&conn, command)),
        Command::Audit { conn, command } => admin_call(crate::admin_cli::audit(&conn, command)),
        Command::Export { conn, args } => admin_call(crate::admin_cli::export(&conn, args)),
        Command::Apply { conn, args } => admin_call(crate::admin_cli::apply(&conn, args)),
        Command::Backup { conn, args } => admin_call(crate::admin_cli::backup(&conn, args)),
        Command::Restore { file, config, force } => restore(&config, &file, force),
        // The load generator is only for benchmarks, so the default build
        // leaves it out; say how to get it rather than claim it is unknown.
        #[cfg(not(feature = "loadgen"))]
        Command::Bench { .. } => Err(Failure::Usage(
            "this build has no load generator: build with `cargo build --release --features loadgen`".into(),
        )),
        #[cfg(feature = "loadgen")]
        Command::Bench {
            url,
            admin_url,
            admin_credentials,
            apps,
            concurrency,
            duration,
            warmup,
            json,
            allow_remote,
            reuse,
        } => bench(crate::bench::BenchArgs {
            url,
            admin_url,
            admin_credentials,
            apps,
            concurrency,
            duration: std::time::Duration::from_secs(duration),
            warmup: std::time::Duration::from_secs(warmup),
            json,
            allow_remote,
            credentials_cache: reuse,
        }),
        Command::Admin {
            command: AdminCommand::Recover { config, json },
        } => recover(&config, json),
        Command::Keys { command } => match command {
            KeysCommand::Generate { config, alg, bits } => {
                keys_generate(&config, &alg, bits.parse().unwrap_or(keys::RSA_BITS[0]))
            }
            KeysCommand::List { config } => keys_list(&config),
            KeysCommand::Retire { config, kid, now } => keys_retire(&config, &kid, now),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("appauth: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("appauth: {m}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: &ConfigArgs, listen: Option<String>) -> Result<(), Failure> {
    let config = load(args, listen.map(|l| format!("server.listen={l}")).into_iter().collect())?;
    let logging = crate::telemetry::init(&config.log);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    runtime()?.block_on(async {
        let app = App::build(config).await.map_err(|e| Failure::Other(e.to_string()))?;
        app.log_to(&logging);
        app.run_until_stopped().await.map_err(|e| Failure::Other(e.to_string()))
    })
}

fn init(args: &ConfigArgs, json: bool) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    runtime()?.block_on(async {
        let boot = app::bootstrap(&config, true, |_, _| Ok(()), || {})
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let Some((app, secret)) = boot.created_admin else {
            return Err(Failure::Other(format!(
                "the store at {} is already initialised; nothing was changed. Use the admin credentials you saved at init (or initial-admin.json), or regenerate the admin secret through the API.",
                config.store.path.display()
            )));
        };
        if json {
            println!("{}", app::admin_credentials_json(&app, &secret));
        } else {
            println!("Initialised the store at {}.", config.store.path.display());
            println!("Admin application (System administrator on the tenant):");
            println!("  client ID:     {}", app.client_id);
            println!("  client secret: {}", secret.expose());
            println!("The secret is shown only now and cannot be recovered; store it securely.");
        }
        Ok(())
    })
}

fn recover(args: &ConfigArgs, json: bool) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    if !config.store.path.join("db").exists() && !config.store.path.join("conf").exists() {
        return Err(Failure::Other(format!(
            "there is no store at {}; check store.path (or run `appauth init`)",
            config.store.path.display()
        )));
    }
    runtime()?.block_on(async {
        let boot = app::bootstrap(&config, false, |_, _| Ok(()), || {})
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        let (app, secret) = boot
            .directory
            .recover()
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        if json {
            println!("{}", app::admin_credentials_json(&app, &secret));
        } else {
            println!(
                "Created application {} with System administrator on the tenant:",
                app.name.as_str()
            );
            println!("  client ID:     {}", app.client_id);
            println!("  client secret: {}", secret.expose());
            println!(
                "The secret is shown only now. Sign in with it, then regenerate or remove the lost administrators."
            );
        }
        Ok(())
    })
}

#[cfg(feature = "loadgen")]
fn bench(args: crate::bench::BenchArgs) -> Result<(), Failure> {
    if args.duration.is_zero() || args.duration.as_secs() > 3600 {
        return Err(Failure::Usage("--duration must be 1..=3600 seconds".into()));
    }
    let json = args.json;
    let report = runtime()?.block_on(crate::bench::run(args)).map_err(|e| {
        if e.starts_with("refusing") || e.starts_with("--") {
            Failure::Usage(e)
        } else {
            Failure::Other(e)
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        println!("{}", report.human());
    }
    Ok(())
}

/// With the PostgreSQL backend the cluster's keys live in the database
/// (sealed, see `token::vault`): brings `keys.dir` up to date with them
/// first, and hands back what `share_keys` needs afterwards.
fn shared_keys(
    config: &crate::config::Config,
) -> Result<Option<(crate::store::PostgresStore, crate::token::vault::Kek)>, Failure> {
    let (crate::config::StoreBackend::Postgres, Some(url)) = (config.store.backend, &config.store.postgres_url) else {
        return Ok(None);
    };
    let other = |e: &dyn std::fmt::Display| Failure::Other(e.to_string());
    let store = crate::store::PostgresStore::open(url).map_err(|e| other(&e))?;
    let kek = crate::token::vault::Kek::load(&config.keys.kek_path(), false).map_err(|e| other(&e))?;
    crate::token::vault::pull(&store, &kek, &config.keys.dir).map_err(|e| other(&e))?;
    Ok(Some((store, kek)))
}

/// Seals what a key command changed into the shared store, where every
/// running instance picks it up within a second.
fn share_keys(
    shared: Option<(crate::store::PostgresStore, crate::token::vault::Kek)>,
    dir: &std::path::Path,
    names: Option<&[String]>,
) -> Result<(), Failure> {
    if let Some((store, kek)) = shared {
        crate::token::vault::push(&store, &kek, dir, names).map_err(|e| Failure::Other(e.to_string()))?;
    }
    Ok(())
}

fn keys_generate(args: &ConfigArgs, alg: &str, bits: usize) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    let alg = Alg::parse(alg).ok_or_else(|| Failure::Usage(format!("unknown algorithm {alg}")))?;
    let shared = shared_keys(&config)?;
    let existing =
        KeySet::load(&config.keys.dir, config.issuer.token_ttl_seconds).map_err(|e| Failure::Other(e.to_string()))?;
    let now = crate::domain::now_ms() / 1000;
    // The first key of its chain (default, or RSA) signs at once; later
    // ones wait until verifiers have had time to fetch them from the JWKS.
    let activates = if existing
        .all()
        .iter()
        .all(|k| keys::Chain::of(k.alg()) != keys::Chain::of(alg))
    {
        now
    } else {
        now + config.keys.publish_ahead_seconds
    };
    let kid =
        keys::generate_sized(&config.keys.dir, alg, bits, activates).map_err(|e| Failure::Other(e.to_string()))?;
    share_keys(
        shared,
        &config.keys.dir,
        Some(&[format!("{kid}.json"), format!("{kid}.pem")]),
    )?;
    println!(
        "{kid}\t{}\tsigns from {}",
        alg.as_str(),
        crate::domain::format_ms(activates * 1000)
    );
    Ok(())
}

fn keys_retire(args: &ConfigArgs, kid: &str, now: bool) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    let shared = shared_keys(&config)?;
    let done = keys::retire(
        &config.keys.dir,
        kid,
        now,
        config.keys.publish_ahead_seconds,
        config.issuer.token_ttl_seconds,
    )
    .map_err(|e| Failure::Other(e.to_string()))?;
    let mut changed = vec![format!("{kid}.json")];
    if let Some(r) = &done.replacement {
        changed.extend([format!("{r}.json"), format!("{r}.pem")]);
    }
    share_keys(shared, &config.keys.dir, Some(&changed))?;
    if let Some(r) = &done.replacement {
        println!("generated replacement key {r}");
    }
    if now {
        println!(
            "{kid} withdrawn: out of the JWKS, and its tokens are refused. Running servers pick this up within a second; verifiers within one JWKS refresh."
        );
    } else {
        println!(
            "{kid} stops signing at {} and leaves the JWKS once its tokens have expired",
            crate::domain::format_ms(done.stops_signing_at * 1000)
        );
    }
    Ok(())
}

fn keys_list(args: &ConfigArgs) -> Result<(), Failure> {
    let config = load(args, Vec::new())?;
    shared_keys(&config)?;
    let set =
        KeySet::load(&config.keys.dir, config.issuer.token_ttl_seconds).map_err(|e| Failure::Other(e.to_string()))?;
    let now = crate::domain::now_ms() / 1000;
    println!("KID\tALG\tSTATE\tCREATED\tSIGNS FROM");
    for (i, k) in set.all().iter().enumerate() {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            k.kid,
            k.alg().as_str(),
            set.state(i, now),
            crate::domain::format_ms(k.meta.created_at * 1000),
            crate::domain::format_ms(k.meta.activates_at * 1000)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kid_starting_with_a_hyphen_is_a_kid_before_or_after_the_flag() {
        // base64url kids start with `-` one time in 64.
        for args in [["-_kid", "--now"], ["--now", "-_kid"]] {
            let cli = Cli::try_parse_from(["appauth", "keys", "retire", args[0], args[1]]).unwrap();
            let Command::Keys {
                command: KeysCommand::Retire { kid, now, .. },
            } = cli.command
            else {
                panic!("not keys retire");
            };
            assert_eq!((kid.as_str(), now), ("-_kid", true));
        }
    }
}
