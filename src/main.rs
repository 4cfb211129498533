//! The `ucbridge` command.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use ucbridge::config::{Config, LogFormat, check_secret};
use ucbridge::matrix::registration;

/// The version and the git revision it was built from (`build.rs`).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("UCBRIDGE_GIT_REVISION"), ")");

/// Matrix ↔ XMPP bridge with the chat rules of a unified-communications suite.
#[derive(Parser)]
#[command(version = VERSION, about)]
struct Cli {
    /// Configuration file (see config/example.yaml).
    #[arg(short, long, env = "UCBRIDGE_CONFIG", default_value = "config.yaml")]
    config: PathBuf,
    /// Override `database.url` from the config.
    #[arg(long, env = "UCBRIDGE_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Run,
    /// Write an appservice registration with fresh random tokens for the homeserver.
    GenerateRegistration {
        /// Where to write it; `-` for standard output.
        #[arg(short, long, default_value = "registration.yaml")]
        output: PathBuf,
        /// Replace an existing file (its tokens stop working).
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration and the registration file, then exit.
    CheckConfig {
        /// List every key with where its value came from (file, environment, secret file,
        /// default); secrets are never shown.
        #[arg(long)]
        explain: bool,
    },
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ucbridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(&cli.config)?;
    config.override_database_url(cli.database_url)?;
    let command = cli.command.unwrap_or(Command::Run);
    // Before the checks below: where a refused value came from is what one wants to know then.
    if let Command::CheckConfig { explain: true } = command {
        for line in config.explain() {
            println!("{line}");
        }
    }
    if !matches!(command, Command::GenerateRegistration { .. }) {
        // Refuse to run (or to pass check-config) with a weak or example secret.
        config.check_secrets()?;
        let reg = config.resolve(&config.appservice.registration);
        let registration = registration::load(&reg, &config)?;
        check_secret("as_token (registration)", &registration.as_token)?;
        check_secret("hs_token (registration)", &registration.hs_token)?;
    }
    match command {
        Command::GenerateRegistration { output, force } => {
            let yaml = registration::to_yaml(&registration::generate(&config));
            if output.as_os_str() == "-" {
                print!("{yaml}");
                return Ok(());
            }
            if output.exists() && !force {
                anyhow::bail!(
                    "{} exists; use --force to replace it (the homeserver must then load the new one)",
                    output.display()
                );
            }
            std::fs::write(&output, yaml).with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "wrote {}; give it to the homeserver (app_service_config_files) and point appservice.registration at it",
                output.display()
            );
            Ok(())
        }
        Command::CheckConfig { .. } => {
            // The registration was loaded and its tokens checked above.
            let reg = config.resolve(&config.appservice.registration);
            println!("configuration OK ({}; registration {})", cli.config.display(), reg.display());
            Ok(())
        }
        Command::Run => {
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.filter));
            // Colours only on a terminal; log files stay plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
            match config.logging.format {
                LogFormat::Pretty => logs.with_ansi(ansi).init(),
                LogFormat::Json => logs.json().with_current_span(false).init(),
            }
            tracing::info!(version = VERSION, "starting");
            rustls::crypto::ring::default_provider()
                .install_default()
                .map_err(|_| anyhow::anyhow!("could not install the TLS crypto provider"))?;
            // `runtime.worker_threads` (see there); TOKIO_WORKER_THREADS still wins when set.
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if config.runtime.worker_threads > 0 && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
                runtime.worker_threads(config.runtime.worker_threads);
            }
            let runtime = runtime.enable_all().build()?;
            runtime.block_on(ucbridge::app::run(config))
        }
    }
}
