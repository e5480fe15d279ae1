//! The `amiscan` binary: parses arguments, runs the command, maps the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use amiscan::cli::{Cli, Command};
use amiscan::commands::{self, CommandError};

/// Worker stacks large enough for the walk's recursion on deep trees.
const WORKER_STACK_BYTES: usize = 16 << 20;

/// Ends the process with exit 3 once `seconds` have passed. Reads of a crafted image are
/// bounded, but a huge or slow image can still take long: a gate needs an answer, and
/// "not proven in time" is incomplete, never a pass.
fn start_watchdog(seconds: u64) {
    let limit = std::time::Duration::from_secs(seconds);
    let spawned = std::thread::Builder::new()
        .name("timeout".into())
        .spawn(move || {
            std::thread::sleep(limit);
            eprintln!(
                "amiscan: time limit of {seconds} s reached (--timeout): stopped, nothing is \
                 proven; the result is incomplete"
            );
            std::process::exit(3);
        });
    if let Err(e) = spawned {
        eprintln!("amiscan: cannot start the --timeout watchdog: {e}");
        std::process::exit(2);
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if commands::version::verbose_flag_request(&args) {
        let mut out = std::io::stdout();
        return match commands::version::write(true, &mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(2),
        };
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let (threads, timeout) = match &cli.command {
        Command::Files {
            threads, timeout, ..
        } => (*threads, *timeout),
        Command::Scan(args) => (args.threads, args.timeout),
        _ => (None, None),
    };
    if let Some(seconds) = timeout {
        start_watchdog(seconds);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK_BYTES)
        .num_threads(threads.unwrap_or(0));
    if let Err(e) = pool.build_global() {
        eprintln!("amiscan: cannot start worker threads: {e}");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = std::io::stderr();
    let result = commands::run(cli, &mut out, &mut err);
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(outcome), Ok(())) => ExitCode::from(outcome.exit_code()),
        (Err(CommandError::Output(e)), _) | (Ok(_), Err(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::from(0)
        }
        (Err(e), _) => {
            let _ = writeln!(err, "amiscan: {e}");
            ExitCode::from(2)
        }
        (Ok(_), Err(e)) => {
            let _ = writeln!(err, "amiscan: writing output: {e}");
            ExitCode::from(2)
        }
    }
}
