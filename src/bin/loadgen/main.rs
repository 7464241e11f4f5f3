//! `tollgate-loadgen`: an OTLP load generator and a blackhole OTLP sink, for benchmarking
//! tollgate against other collectors (see `BENCHMARKS.md` and `bench/run.sh`).
#![forbid(unsafe_code)]

mod client;
mod procstat;
mod send;
mod sink;
mod wire;

use clap::{Parser, Subcommand};

/// OTLP load generator and blackhole sink.
#[derive(Debug, Parser)]
#[command(name = "tollgate-loadgen", version)]
struct Cli {
    /// Runtime worker threads (default: the CPUs this process may use).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send realistic LLM-agent traces and report accepted spans/s and latency.
    Send(send::SendArgs),
    /// Receive OTLP, count spans and bytes, answer success.
    Sink(sink::SinkArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let threads = cli
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Send(args) => send::run(args).await,
            Command::Sink(args) => sink::run(args).await,
        }
    })
}
