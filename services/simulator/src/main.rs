//! `distshop-sim`: run shoppers (default), `check` invariants, take a stock `snapshot`, `mark` a
//! fault; `journey`, `orders`, `load`, `new-replica` are the cluster suite's probes (JSON on
//! stdout). Exit codes: 0 pass, 1 a `--fail-on` condition or a violated invariant, 2 usage or
//! runtime error.

use std::process::ExitCode;

use clap::Parser;
use simulator::{
    check,
    config::{Cli, Command},
    faults, probe, runner, snapshot,
};

fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains([' ', '\'', '"']) { format!("'{}'", a.replace('\'', "'\\''")) } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn real_main() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run).await,
        Some(Command::Run(args)) => run(&args).await,
        Some(Command::Check(args)) => check::run(&args).await,
        Some(Command::Snapshot(args)) => {
            simulator::config::check_database_url(&args.database_url, args.allow_remote)
                .map_err(anyhow::Error::msg)?;
            let s = snapshot::from_database(&args.database_url).await?;
            s.write(&args.out)?;
            let units: i64 = s.products.iter().map(|p| p.stock + p.reserved.unwrap_or(0)).sum();
            println!(
                "snapshot of {} products ({} units in stock or in open orders) written to {}",
                s.products.len(),
                units,
                args.out.display()
            );
            Ok(true)
        }
        Some(Command::Mark(args)) => {
            let file = args.file.clone().unwrap_or_else(|| args.report.join("faults.jsonl"));
            let label = args.label.join(" ");
            let e = faults::mark(&file, &label, &args.source)?;
            println!("marked \"{}\" at {} ms in {}", e.label, e.t_unix_ms, file.display());
            Ok(true)
        }
        Some(Command::Journey(args)) => Ok(probe::print_outcome(probe::journey(&args).await)),
        Some(Command::Orders(args)) => Ok(probe::print_outcome(probe::orders(&args).await)),
        Some(Command::Load(args)) => Ok(probe::print_outcome(probe::load(&args).await)),
        Some(Command::NewReplica(args)) => Ok(probe::print_outcome(probe::new_replica(&args).await)),
    }
}

async fn run(args: &simulator::config::RunArgs) -> anyhow::Result<bool> {
    let cfg = runner::RunConfig::from_args(args, command_line())?;
    let outcome = runner::run(cfg).await?;
    Ok(outcome.passed())
}

#[tokio::main]
async fn main() -> ExitCode {
    match real_main().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("distshop-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}
