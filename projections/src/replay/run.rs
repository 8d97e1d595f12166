//! Runs one parsed command and prints its report; answers the exit code
//! (errors are the caller's to print).

use serde_json::json;

use super::cli::{Cli, Command, DeadLetterCommand, RebuildArgs, Selection, VerifyArgs};
use super::output::Output;
use super::rebuild::{self, Options, RebuildReport};
use super::shadow::Start;
use super::{Context, ReplayError, Target, exchange, exit, history, letters, tail, verify};
use crate::dispatch::ViewSet;

pub async fn execute(cli: Cli) -> Result<u8, ReplayError> {
    let out = Output {
        format: cli.global.output,
        quiet: cli.global.quiet,
    };
    let mut ctx = Context::new(Target {
        kafka: cli.global.kafka.into(),
        database_url: cli.global.database_url,
        redis_url: cli.global.redis_url,
    });
    match cli.command {
        Command::Rebuild(args) => rebuild_command(&mut ctx, &args, out).await,
        Command::Verify(args) => verify_command(&mut ctx, &args, out).await,
        Command::History(args) => {
            let found = history::history(&ctx, &args.aggregate_type, &args.id, out).await?;
            if found == 0 {
                let text = format!("no events of {} {}", args.aggregate_type, args.id);
                out.report(&text, &json!({"events": 0}));
            }
            Ok(exit::OK)
        }
        Command::Tail(args) => tail::tail(&ctx, &args, out).await.map(|_| exit::OK),
        Command::Export(args) => {
            let written = exchange::export(&ctx, &args.to, &args.streams, out).await?;
            let text = format!("exported {written} events to {}", args.to.display());
            out.report(&text, &json!({"exported": written, "file": args.to}));
            Ok(exit::OK)
        }
        Command::Import(args) => {
            let sent = exchange::import(&ctx, &args.from, out).await?;
            let text = format!("imported {sent} events from {}", args.from.display());
            out.report(&text, &json!({"imported": sent, "file": args.from}));
            Ok(exit::OK)
        }
        Command::DeadLetters(command) => dead_letters_command(&mut ctx, command, out).await,
        Command::Asyncapi => {
            print!("{}", events::asyncapi::render());
            Ok(exit::OK)
        }
    }
}

async fn rebuild_command(
    ctx: &mut Context,
    args: &RebuildArgs,
    out: Output,
) -> Result<u8, ReplayError> {
    let sets = match &args.view {
        Some(name) => vec![super::view_set(name)?],
        None => ViewSet::ALL.to_vec(),
    };
    let options = Options {
        start: match args.from.from {
            Some(at) => Start::At(at),
            None => Start::Beginning,
        },
        swap: args.swap,
        restart: args.tuning.restart,
        batch: args.tuning.batch(),
    };
    for set in sets {
        let report = rebuild::rebuild(ctx, set, &options, out).await?;
        out.report(&describe(&report), &json!(report));
    }
    Ok(exit::OK)
}

fn describe(r: &RebuildReport) -> String {
    let head = format!(
        "rebuilt {} from {}{}: {} events in {:.1} s ({:.0} events/s)",
        r.view,
        r.from,
        if r.resumed { " (resumed)" } else { "" },
        r.events,
        r.seconds,
        r.events_per_second
    );
    match r.swapped {
        true => format!("{head}; swapped in, the projector continues from its positions"),
        false => format!(
            "{head}; shadow schema replay_{} is ready, `replay rebuild {} --swap` switches to it",
            r.view, r.view
        ),
    }
}

async fn verify_command(
    ctx: &mut Context,
    args: &VerifyArgs,
    out: Output,
) -> Result<u8, ReplayError> {
    let set = super::view_set(&args.view)?;
    let report = verify::verify(ctx, set, &args.tuning, args.limit, args.keep, out).await?;
    let mut text = format!(
        "{}: {} differences after replaying {} events",
        report.view, report.differences, report.events
    );
    for d in &report.shown {
        text.push_str(&format!("\n{}  {}  {}", d.kind, d.table, d.key));
    }
    if !out.quiet {
        out.report(&text, &json!(report));
    }
    Ok(match report.differences {
        0 => exit::OK,
        _ => exit::DIFFERENT,
    })
}

async fn dead_letters_command(
    ctx: &mut Context,
    command: DeadLetterCommand,
    out: Output,
) -> Result<u8, ReplayError> {
    let ids = |s: &Selection| (!s.all).then(|| s.ids.clone());
    match command {
        DeadLetterCommand::List { limit } => {
            letters::list(ctx, limit, out).await?;
        }
        DeadLetterCommand::Retry(selection) => {
            let r = letters::retry(ctx, ids(&selection).as_deref()).await?;
            let text = format!("applied {}, still failing {}", r.applied, r.failing);
            out.report(&text, &json!({"applied": r.applied, "failing": r.failing}));
        }
        DeadLetterCommand::Skip(selection) => {
            let skipped = letters::skip(ctx, ids(&selection).as_deref()).await?;
            out.report(&format!("skipped {skipped}"), &json!({"skipped": skipped}));
        }
    }
    Ok(exit::OK)
}
