//! Command-line interface: `tollgate [run]`, `tollgate check`, `tollgate price`, `tollgate usage`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An OpenTelemetry span processor that prices LLM calls, tracks agent tasks and alerts on cost.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = crate::app::config::ENV_CONFIG,
        default_value = crate::app::config::DEFAULT_PATH,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Run,
    /// Validate the configuration and exit: 0 when valid, 2 (with every reason) when not.
    Check,
    /// Price one model call with the configured price table.
    Price(PriceArgs),
    /// Print invoice lines from the usage ledger (a `postgres` exporter's database).
    Usage(UsageArgs),
}

/// `tollgate usage --from DATE --to DATE --by user.id …` (defined beside the ledger).
pub use crate::ledger::usage::UsageArgs;

/// `tollgate price MODEL --input N --output N …` (defined beside the price table).
pub use crate::llm::cli::PriceArgs;

impl Cli {
    /// The subcommand, `run` when none was given.
    pub fn subcommand(&self) -> &Command {
        self.command.as_ref().unwrap_or(&Command::Run)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_works_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["tollgate", "check", "--config", "a.toml"]).unwrap();
        assert_eq!(cli.config, PathBuf::from("a.toml"));
        assert!(matches!(cli.subcommand(), Command::Check));
        let cli = Cli::try_parse_from(["tollgate", "-c", "b.toml", "run"]).unwrap();
        assert_eq!(cli.config, PathBuf::from("b.toml"));
        let cli = Cli::try_parse_from(["tollgate", "--config", "c.toml"]).unwrap();
        assert!(matches!(cli.subcommand(), Command::Run));
    }

    #[test]
    fn price_args_parse() {
        let cli = Cli::try_parse_from([
            "tollgate",
            "price",
            "gpt-4o",
            "--input",
            "1000",
            "--output",
            "50",
            "--cache-read",
            "7",
            "--cache-write-1h",
            "3",
        ])
        .unwrap();
        let Command::Price(args) = cli.subcommand() else {
            panic!("not price")
        };
        assert_eq!(args.model, "gpt-4o");
        assert_eq!(
            (
                args.input,
                args.output,
                args.cache_read,
                args.cache_write,
                args.cache_write_1h
            ),
            (1000, 50, 7, 0, 3)
        );
    }
}
