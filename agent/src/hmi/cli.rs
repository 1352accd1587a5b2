//! `rapport-agent prompts`: the HMI API from a terminal — list what is on screen, act on a
//! prompt, follow the event stream.
//!
//! Owns: the subcommand's arguments and the text people read (a table, one line per event).
//! Does not own: HTTP ([`super::client`]), nor finding the agent's address from `--hmi` or
//! the config (`crate::settings::hmi_address`, which the binary calls).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::HmiError;
use super::client::Client;
use super::views::{DriverAction, HmiEvent, PromptView};

/// Arguments of `rapport-agent prompts`.
#[derive(Args, Debug)]
pub struct PromptsArgs {
    /// The agent's HMI address (default: `[hmi].listen` of --config, else 127.0.0.1:8686).
    #[arg(long, global = true, env = "RAPPORT_HMI")]
    pub hmi: Option<SocketAddr>,
    /// The agent config (TOML), to read `[hmi].listen` from; --hmi wins over it.
    #[arg(long, global = true, env = "RAPPORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text (one event per line for `watch`).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// What to do; default: list.
    #[command(subcommand)]
    pub(crate) command: Option<PromptsCommand>,
}

/// `prompts` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum PromptsCommand {
    /// List the prompts that may be on screen now (the default).
    List,
    /// Act on a prompt as the driver would.
    Act {
        /// The prompt id.
        id: String,
        /// What to do.
        action: ActionName,
        /// For snooze: how long, 1 to 10080.
        #[arg(long)]
        minutes: Option<u32>,
    },
    /// Follow the event stream, one line per event, until the agent ends it.
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// An action named on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActionName {
    /// Acknowledge.
    Ack,
    /// Snooze (needs --minutes).
    Snooze,
    /// Dismiss.
    Dismiss,
    /// Ask to book a service.
    Book,
}

/// Exit code when the agent refused, could not be reached or answered nonsense.
const EXIT_FAILED: u8 = 1;
/// Exit code for unusable arguments or config.
const EXIT_USAGE: u8 = 2;

/// Runs the subcommand against the agent at `addr` (found from `--hmi` or `--config` by the
/// caller: `crate::settings::hmi_address`), printing to stdout and errors to stderr.
pub fn run(args: PromptsArgs, addr: SocketAddr) -> ExitCode {
    let client = match Client::new(addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let action = match &args.command {
        Some(PromptsCommand::Act {
            action, minutes, ..
        }) => match driver_action(*action, *minutes) {
            Ok(a) => Some(a),
            Err(msg) => {
                eprintln!("error: {msg}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(async {
        match (&args.command, action) {
            (Some(PromptsCommand::Act { id, .. }), Some(action)) => {
                act(&client, id, action, args.json, &mut out).await
            }
            (Some(PromptsCommand::Watch { count }), _) => {
                watch(&client, *count, args.json, &mut out).await
            }
            _ => list(&client, args.json, &mut out).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// What can fail while printing.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API.
    #[error(transparent)]
    Hmi(#[from] HmiError),
    /// Writing the output.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The action for the command line's words.
///
/// # Errors
/// `--minutes` missing for snooze or given for another action, or out of range.
pub(crate) fn driver_action(
    name: ActionName,
    minutes: Option<u32>,
) -> Result<DriverAction, String> {
    match (name, minutes) {
        (ActionName::Snooze, None) => Err("snooze needs --minutes (1 to 10080)".to_owned()),
        (ActionName::Snooze, Some(m)) if (1..=super::MAX_SNOOZE_MINUTES).contains(&m) => {
            Ok(DriverAction::Snooze { minutes: m })
        }
        (ActionName::Snooze, Some(m)) => Err(format!(
            "--minutes {m}: must be 1 to {}",
            super::MAX_SNOOZE_MINUTES
        )),
        (_, Some(_)) => Err("--minutes is for snooze only".to_owned()),
        (ActionName::Ack, None) => Ok(DriverAction::Ack),
        (ActionName::Dismiss, None) => Ok(DriverAction::Dismiss),
        (ActionName::Book, None) => Ok(DriverAction::Book),
    }
}

/// Prints the visible prompts: a table, or a JSON array with `json`.
///
/// # Errors
/// The API failed or the output could not be written.
pub async fn list(client: &Client, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let prompts = client.prompts().await?;
    if json {
        writeln!(out, "{}", to_json(&prompts))?;
    } else {
        out.write_all(table(&prompts).as_bytes())?;
    }
    Ok(())
}

/// Acts on a prompt and prints it as it stands after.
///
/// # Errors
/// The API refused (unknown id, closed prompt) or failed, or the output could not be written.
pub(crate) async fn act(
    client: &Client,
    id: &str,
    action: DriverAction,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let p = client.act(id, action).await?;
    if json {
        writeln!(out, "{}", to_json(&p))?;
    } else {
        writeln!(out, "{}: {}", clean(&p.id), p.state)?;
    }
    Ok(())
}

/// Follows the event stream, one line per event, until it ends or `count` events came.
///
/// # Errors
/// The API failed or the output could not be written.
pub async fn watch(
    client: &Client,
    count: Option<u64>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut stream = client.watch().await?;
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        let Some(ev) = stream.next().await? else {
            break;
        };
        seen += 1;
        if json {
            writeln!(out, "{}", to_json(&ev))?;
        } else {
            writeln!(out, "{}", event_line(&ev))?;
        }
        out.flush()?;
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Plain structs of strings and numbers: serialisation cannot fail.
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Text from the agent (titles may come from a cloud campaign) with control characters
/// replaced, so it cannot move the terminal's cursor or change its colours.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One line for an event: `prompt <id> <state> [critical] <title>`, `closed <id> <state>`,
/// `hidden <id>`, `resync`.
pub(crate) fn event_line(ev: &HmiEvent) -> String {
    match ev {
        HmiEvent::Prompt(p) => format!(
            "prompt {} {}{} {:?}",
            clean(&p.id),
            p.state,
            if p.critical { " critical" } else { "" },
            clean(&p.title)
        ),
        HmiEvent::Closed { id, state } => format!("closed {} {}", clean(id), clean(state)),
        HmiEvent::Hidden { id } => format!("hidden {}", clean(id)),
        HmiEvent::Resync => "resync".to_owned(),
    }
}

/// The prompts as an aligned table (ID, KIND, STATE, CRITICAL, TITLE).
pub(crate) fn table(prompts: &[PromptView]) -> String {
    if prompts.is_empty() {
        return "no prompts on screen\n".to_owned();
    }
    let rows: Vec<[String; 5]> = prompts
        .iter()
        .map(|p| {
            [
                clean(&p.id),
                clean(&p.kind),
                clean(&p.state),
                if p.critical { "yes" } else { "no" }.to_owned(),
                clean(&p.title),
            ]
        })
        .collect();
    let header = ["ID", "KIND", "STATE", "CRITICAL", "TITLE"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn prompt(id: &str, critical: bool, title: &str) -> PromptView {
        PromptView {
            id: id.into(),
            kind: "fault".into(),
            subject: "P0300".into(),
            critical,
            title: title.into(),
            text: String::new(),
            state: "shown".into(),
            created_ms: 0,
            first_shown_ms: None,
        }
    }

    #[test]
    fn table_aligns_columns_and_cleans_control_characters() {
        let t = table(&[
            prompt("fault:P0300:1", true, "Misfire"),
            prompt("x", false, "Bad\x1b[31mred"),
        ]);
        assert_eq!(
            t,
            "ID             KIND   STATE  CRITICAL  TITLE\n\
             fault:P0300:1  fault  shown  yes       Misfire\n\
             x              fault  shown  no        Bad [31mred\n"
        );
        assert_eq!(table(&[]), "no prompts on screen\n");
    }

    #[test]
    fn event_lines_name_the_event_first() {
        assert_eq!(
            event_line(&HmiEvent::Prompt(prompt("a", true, "T"))),
            "prompt a shown critical \"T\""
        );
        assert_eq!(
            event_line(&HmiEvent::Closed {
                id: "a".into(),
                state: "booked".into()
            }),
            "closed a booked"
        );
        assert_eq!(event_line(&HmiEvent::Resync), "resync");
    }

    #[test]
    fn command_line_actions_check_minutes() {
        assert_eq!(
            driver_action(ActionName::Snooze, Some(30)),
            Ok(DriverAction::Snooze { minutes: 30 })
        );
        assert!(driver_action(ActionName::Snooze, None).is_err());
        assert!(driver_action(ActionName::Snooze, Some(0)).is_err());
        assert!(driver_action(ActionName::Ack, Some(5)).is_err());
        assert_eq!(
            driver_action(ActionName::Book, None),
            Ok(DriverAction::Book)
        );
    }
}
