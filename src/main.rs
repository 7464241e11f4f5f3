//! The `tollgate` binary: parse the command line, load the config, run. Exit codes: 0 success,
//! 1 runtime failure, 2 configuration error.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use tollgate::app::config::Config;
use tollgate::cli::{Cli, Command};
use tollgate::config::{init_logging, ConfigError};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for an invalid or unreadable configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit code for any other failure.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.subcommand() {
        Command::Run => run(&cli.config),
        Command::Check => check(&cli.config),
        Command::Price(args) => price(&cli.config, args),
        Command::Usage(args) => usage(&cli.config, args),
    }
}

/// `tollgate usage`: invoice lines from the ledger of the config's `postgres` exporter.
fn usage(path: &Path, args: &tollgate::cli::UsageArgs) -> ExitCode {
    use tollgate::export::ExporterKind;
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let ledgers: Vec<_> = config
        .exporters
        .iter()
        .filter(|e| e.kind == ExporterKind::Postgres)
        .filter(|e| args.exporter.as_ref().is_none_or(|n| *n == e.name))
        .collect();
    let cfg = match ledgers.as_slice() {
        [one] => *one,
        [] => {
            eprintln!(
                "error: {} has no `postgres` exporter{}",
                path.display(),
                args.exporter
                    .as_ref()
                    .map(|n| format!(" named {n:?}"))
                    .unwrap_or_default()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        _ => {
            eprintln!("error: several `postgres` exporters; choose one with --exporter NAME");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let target = match tollgate::export::ledger_target(cfg) {
        Ok(t) => t,
        Err(reason) => {
            eprintln!("error: exporter {:?}: {reason}", cfg.name);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(tollgate::ledger::usage::lines(&target, args)) {
        Ok(lines) => {
            print!("{}", tollgate::ledger::usage::render(args, &lines));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `tollgate price`: the cost breakdown of one call from the configured table.
fn price(path: &Path, args: &tollgate::cli::PriceArgs) -> ExitCode {
    // Pricing needs only `[pricing]`: a file whose exporters want secrets that are not set here
    // (`${env:LANGFUSE_SECRET_KEY}`) still prices. When the whole file does not load, `[pricing]`
    // alone is tried, and its own problems are reported.
    let pricing = match Config::load(path) {
        Ok(config) => config.pricing,
        Err(error) => match pricing_only(path) {
            Some(Ok(pricing)) => pricing,
            Some(Err(issues)) => {
                for issue in issues {
                    eprintln!("error: {}: {issue}", path.display());
                }
                return ExitCode::from(EXIT_CONFIG);
            }
            None => {
                print_config_error(&error);
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    match tollgate::llm::cli::price_breakdown(&pricing, args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The `[pricing]` section of `path` alone (env vars expanded in it only); `None` when the file
/// cannot be read or parsed at all, else its issues located in the file as written.
fn pricing_only(
    path: &Path,
) -> Option<Result<tollgate::llm::PricingConfig, Vec<tollgate::config::Issue>>> {
    #[derive(serde::Deserialize)]
    struct PricingOnly {
        #[serde(default)]
        pricing: tollgate::llm::PricingConfig,
    }
    let original = std::fs::read_to_string(path).ok()?;
    let mut table: toml::Table = original.parse().ok()?;
    let mut only = toml::Table::new();
    if let Some(pricing) = table.remove("pricing") {
        only.insert("pricing".into(), pricing);
    }
    let text = toml::to_string(&only).ok()?;
    Some(
        tollgate::config::parse_str::<PricingOnly>(&text, &tollgate::config::ProcessEnv)
            .map(|p| p.pricing)
            .map_err(|mut issues| {
                // The key paths are the file's; the lines are found again in the file.
                for issue in &mut issues {
                    issue.location = None;
                }
                tollgate::config::locate_issues(&original, &mut issues);
                issues
            }),
    )
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|error| {
        print_config_error(&error);
        ExitCode::from(EXIT_CONFIG)
    })
}

fn print_config_error(error: &ConfigError) {
    for reason in error.reasons() {
        eprintln!("error: {reason}");
    }
}

fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("{}: configuration is valid", path.display());
    let otlp = &config.receivers.otlp;
    for warning in otlp.exposure_warnings() {
        eprintln!("warning: {warning}");
    }
    let receivers: Vec<String> = [("OTLP/gRPC", &otlp.grpc), ("OTLP/HTTP", &otlp.http)]
        .into_iter()
        .filter(|(_, addr)| !addr.is_empty())
        .map(|(name, addr)| format!("{name} on {addr}"))
        .collect();
    println!(
        "  receivers: {}",
        if receivers.is_empty() {
            "none".to_owned()
        } else {
            receivers.join(", ")
        }
    );
    let exporters: Vec<String> = config
        .exporters
        .iter()
        .map(|e| format!("{} ({})", e.name, e.kind))
        .collect();
    println!(
        "  exporters: {}",
        if exporters.is_empty() {
            "none".to_owned()
        } else {
            exporters.join(", ")
        }
    );
    println!("  admin: {}", config.admin.listen);
    ExitCode::SUCCESS
}

fn run(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(error) = init_logging(&config.log) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    // The blocking pool inflates compressed request bodies. tokio's default allows 512 threads:
    // with hundreds of clients posting gzip at once that is hundreds of threads, each with its
    // stack and its allocator heap kept warm (RSS), all contending for the same cores. Sixteen keep
    // the cores busy; further bodies wait their turn (they are already admitted and counted).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the async runtime.");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.display(),
        "Starting tollgate."
    );
    let result = runtime.block_on(tollgate::app::run(config, path.to_owned()));
    // Work still on the runtime (a connection or decode the deadline cut) must not hold the
    // exit: `shutdown_timeout` bounds the whole shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => {
            tracing::info!("Stopped.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = %format_args!("{error:#}"), "tollgate stopped with an error.");
            if error.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}
