//! The operator CLI: `ferry checkpoint ...` and `ferry status`, talking to a running node.

use crate::{
    CommandError,
    output::{describe, print_json},
};
use clap::{Args, Subcommand};
use ferry_primitives::{Checkpoint, Position};
use ferry_rpc::JwtSecret;
use ferry_rpc_api::{
    AdminApiClient, ChangeOptions, CheckpointChangeResult, CheckpointTarget, PublicApiClient,
};
use jsonrpsee::{
    core::ClientError,
    http_client::{HeaderMap, HeaderValue, HttpClient},
};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Commands that talk to a running node.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read or move the checkpoint of a running node (its admin listener).
    Checkpoint {
        /// What to do.
        #[command(subcommand)]
        action: CheckpointCommand,
        /// Which node.
        #[command(flatten)]
        admin: AdminTarget,
    },
    /// Check a store against L1: hashes, fields, origins, contract state, nonces; exit 0 only
    /// when everything matches.
    Verify(crate::verify::VerifyArgs),
    /// Look inside a datadir without a node (read-only; safe while one runs).
    Db(crate::db::DbArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print a running node's status (its public listener).
    Status {
        /// The node's public listener.
        #[arg(long = "rpc.addr", env = "FERRY_RPC_ADDR", default_value = "127.0.0.1:5050")]
        rpc_addr: SocketAddr,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `ferry checkpoint` actions.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Print the stored checkpoint.
    Get,
    /// Move the checkpoint: the node re-scans from (or skips to) this position at once.
    Set {
        /// Block to read from (decimal or 0x hex); the whole block is read again.
        #[arg(long, value_parser = parse_quantity, allow_hyphen_values = true,
            required_unless_present = "time", conflicts_with = "time")]
        block: Option<u64>,
        /// Log index within the block to read from. [default: 0]
        #[arg(long, value_parser = parse_quantity, allow_hyphen_values = true,
            conflicts_with = "time")]
        index: Option<u64>,
        /// Read from the first L1 block at or after this moment: Unix seconds or RFC 3339
        /// (`2026-11-30T12:00:00Z`); the node finds the block by its timestamp.
        #[arg(long, allow_hyphen_values = true)]
        time: Option<ferry_rpc_api::Timestamp>,
        /// Show what would be re-scanned or skipped; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Change it only if the node's checkpoint is still this one (what `ferry checkpoint
        /// get` printed: `BLOCK`, `BLOCK:INDEX`, or `none`); otherwise nothing changes and the
        /// node says where it is now.
        #[arg(long, value_name = "CHECKPOINT", value_parser = parse_checkpoint)]
        if_at: Option<Checkpoint>,
    },
    /// Delete the checkpoint: the node re-reads from its start block.
    Reset {
        /// Show what would be re-scanned; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Reset it only if the node's checkpoint is still this one (`BLOCK`, `BLOCK:INDEX`,
        /// or `none`).
        #[arg(long, value_name = "CHECKPOINT", value_parser = parse_checkpoint)]
        if_at: Option<Checkpoint>,
    },
    /// Store what one L1 transaction logged that the node missed: its receipt is read and
    /// proven against its block (receipts root; the block in the header window or final,
    /// and read already); the checkpoint does not move.
    Refetch {
        /// The transaction hash.
        #[arg(long = "tx", value_name = "HASH")]
        transaction: ferry_primitives::B256,
        /// Show what would be stored; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the newest checkpoint changes.
    History {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

/// Where the admin listener is and how to authenticate.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The node's admin listener.
    #[arg(
        long = "admin.addr",
        env = "FERRY_ADMIN_ADDR",
        default_value = "127.0.0.1:5051",
        global = true
    )]
    pub addr: SocketAddr,
    /// The admin JWT secret file, if the node uses one.
    #[arg(
        long = "admin.jwt-secret",
        env = "FERRY_ADMIN_JWT_SECRET",
        value_name = "FILE",
        global = true
    )]
    pub jwt_secret: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

fn parse_quantity(text: &str) -> Result<u64, String> {
    ferry_primitives::quantity::parse(text).map_err(|error| error.to_string())
}

/// `none` (no checkpoint stored), `BLOCK` (its first log) or `BLOCK:INDEX`, numbers in decimal
/// or `0x` hex.
fn parse_checkpoint(text: &str) -> Result<Checkpoint, String> {
    if text == "none" {
        return Ok(None);
    }
    let (block, index) = text.split_once(':').unwrap_or((text, "0"));
    let named = |what: &str, part: &str| {
        parse_quantity(part).map_err(|error| {
            format!("{text:?} is not none, BLOCK or BLOCK:INDEX: {what} {part:?}: {error}")
        })
    };
    Ok(Some(Position::new(named("block", block)?, named("index", index)?)))
}

fn client_error(addr: SocketAddr) -> impl Fn(ClientError) -> CommandError {
    move |error| match error {
        ClientError::Call(error) => CommandError::Refused {
            code: error.code(),
            message: error.message().to_owned(),
            data: error.data().map(|data| data.get().to_owned()),
        },
        other => CommandError::Unreachable { addr, reason: other.to_string() },
    }
}

/// Runs `write` against the admin listener at `addr`; refused by a standby of a
/// high-availability group, runs it once more against the leader the refusal names (the
/// operator need not know which member leads).
async fn write_to_leader<T, Fut>(
    addr: SocketAddr,
    secret: Option<&JwtSecret>,
    write: impl Fn(HttpClient) -> Fut,
) -> Result<T, CommandError>
where
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    match write(client(addr, secret)?).await {
        Err(ClientError::Call(error)) if error.code() == ferry_rpc_api::codes::NOT_LEADER => {
            let leader = error
                .data()
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data.get()).ok())
                .and_then(|data| data["leader"]["admin"].as_str()?.parse::<SocketAddr>().ok());
            let Some(leader) = leader else {
                return Err(client_error(addr)(ClientError::Call(error)));
            };
            eprintln!(
                "{addr} is a standby of its HA group; sending the change to the leader at {leader}"
            );
            write(client(leader, secret)?).await.map_err(client_error(leader))
        }
        answer => answer.map_err(client_error(addr)),
    }
}

fn client(addr: SocketAddr, secret: Option<&JwtSecret>) -> Result<HttpClient, CommandError> {
    let mut headers = HeaderMap::new();
    if let Some(secret) = secret {
        let bearer = HeaderValue::from_str(&format!("Bearer {}", secret.token()))
            .map_err(|error| CommandError::Unreachable { addr, reason: error.to_string() })?;
        headers.insert(http::header::AUTHORIZATION, bearer);
    }
    HttpClient::builder()
        .set_headers(headers)
        .request_timeout(Duration::from_secs(30))
        .max_response_size(ferry_rpc_api::MAX_CLIENT_RESPONSE_BYTES)
        .build(format!("http://{addr}"))
        .map_err(|error| CommandError::Unreachable { addr, reason: error.to_string() })
}

fn print_change(change: &CheckpointChangeResult) {
    if let Some(resolved) = change.resolved {
        let clamped = if resolved.clamped_to_start_block {
            " (the moment is before the start block: reading from the start block)"
        } else {
            ""
        };
        println!(
            "time {} resolved to block {} (timestamp {}){clamped}",
            resolved.timestamp, resolved.block, resolved.block_timestamp
        );
    }
    println!("previous: {}", describe(change.previous));
    let verb = if change.dry_run { "would be" } else { "now" };
    println!("{verb}: {}", describe(change.current));
    if let Some(effect) = change.effect {
        let range = match (effect.from_block, effect.to_block) {
            (Some(from), Some(to)) => format!("blocks {from}..={to}"),
            _ => "no blocks".to_owned(),
        };
        match effect.action {
            ferry_rpc_api::ChangeAction::Rescan => println!(
                "would re-scan {range}: {} stored messages were logged there; they are \
                 recognised and not stored again, missed ones get new seqs",
                effect.stored_messages
            ),
            ferry_rpc_api::ChangeAction::Skip => println!(
                "would skip {range}: messages logged there are not read ({} of them are stored \
                 already)",
                effect.stored_messages
            ),
            ferry_rpc_api::ChangeAction::None => println!("reading would go on where it is"),
        }
        println!("(dry run: nothing was changed)");
        let at = match change.previous {
            Some(Position { block, index }) => format!("{block}:{index}"),
            None => "none".to_owned(),
        };
        println!(
            "to make the change only if the checkpoint is still {at} (the node moves it with every \
             batch read, and with a reorg; refused if it moved: read again), add --if-at {at}"
        );
    }
    if let Some(applied) = change.rewind_applied {
        println!(
            "{}",
            if applied {
                "the running node has moved its cursor"
            } else {
                "the ingestion task is not running; it reads the new checkpoint when it starts"
            }
        );
    }
}

fn print_refetched(refetched: &ferry_rpc_api::Refetched) {
    println!(
        "transaction {} in block {} ({}): proven against the block's receipts root",
        refetched.transaction, refetched.block.number, refetched.block.hash
    );
    for message in &refetched.messages {
        let held = message.stored_seq.map_or_else(
            || "missed by the node".to_owned(),
            |seq| format!("stored already, seq {seq}"),
        );
        println!(
            "  log {}: message {} nonce {}: {held}",
            message.log_index, message.hash, message.nonce
        );
    }
    if refetched.dry_run {
        println!("(dry run: nothing was stored)");
    } else {
        println!(
            "stored {} message(s), included {} again, {} state change(s)",
            refetched.stored, refetched.reincluded, refetched.state_changes
        );
    }
}

/// `-` for nothing.
fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn print_status(status: &ferry_rpc_api::NodeStatus) {
    let p = &status.pipeline;
    println!("ferry {} on chain {}, contract {}", status.version, status.chain_id, status.contract);
    println!("phase:           {:?}", p.phase);
    println!("L1 head / safe:  {} / {}", or_dash(p.l1_head), or_dash(p.safe_head));
    println!("checkpoint:      {}", describe(status.checkpoint));
    println!("lag:             {} blocks", or_dash(status.lag_blocks));
    println!(
        "messages stored: {} (last seq {})",
        status.messages_stored,
        or_dash(p.last_seq.map(|seq| seq.0))
    );
    println!(
        "since start:     {} stored, {} duplicates skipped, {} malformed logs, {} reorgs, {} rewinds",
        p.stored_since_start, p.duplicates_skipped, p.malformed_logs, p.reorgs_detected, p.rewinds
    );
    println!(
        "reorgs:          {} recorded, {} messages orphaned now, header window {}",
        status.reorgs,
        status.orphaned_messages,
        status.header_window.map_or_else(
            || "empty".to_owned(),
            |window| format!("{}..={}", window.from, window.to)
        )
    );
    let states = &status.message_states;
    println!(
        "states:          {} pending, {} cancellation started, {} cancelled, {} consumed, {} unmatched",
        states.pending,
        states.cancellation_started,
        states.cancelled,
        states.consumed,
        states.unmatched
    );
    if let Some(halt) = &p.halted {
        println!("HALTED:          {}", halt.reason);
    }
    println!(
        "nonces:          {}..={}, {} missing",
        or_dash(p.lowest_nonce),
        or_dash(p.highest_nonce),
        p.missing_nonces
    );
    print_upstreams(p);
}

/// The L1 endpoints: the one provider, or each of several with the answers they disagreed on.
fn print_upstreams(p: &ferry_primitives::StatusSnapshot) {
    match &p.upstream.last_error {
        Some(error) if !p.upstream.healthy => println!("upstream:        failing: {error}"),
        _ => println!("upstream:        healthy"),
    }
    if p.upstreams.len() <= 1 {
        return;
    }
    for endpoint in &p.upstreams {
        let last_error = endpoint.last_error.as_ref().map(|error| format!(" (last: {error})"));
        println!(
            "  {} {}{}, head {}, {} requests, {} errors{}",
            endpoint.url,
            if endpoint.healthy { "healthy" } else { "failing" },
            if endpoint.active { ", active" } else { "" },
            or_dash(endpoint.head),
            endpoint.requests,
            endpoint.errors,
            last_error.unwrap_or_default()
        );
    }
    println!(
        "L1 answers:      {} disagreements, {} refused as disproven by their block",
        p.l1_disagreements, p.l1_answers_refused
    );
}

/// Runs `command` and prints its answer.
pub(crate) async fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Status { rpc_addr, json } => {
            let status = client(rpc_addr, None)?.status().await.map_err(client_error(rpc_addr))?;
            if json {
                print_json(&status);
            } else {
                print_status(&status);
            }
            Ok(())
        }
        Command::Checkpoint { action, admin } => checkpoint(action, &admin).await,
        Command::Verify(args) => crate::verify::run(args).await,
        Command::Db(args) => crate::db::run(args),
        Command::Completions { shell } => {
            crate::completions::completions(shell);
            Ok(())
        }
        Command::Man => Ok(crate::completions::man_page()?),
    }
}

/// `ferry checkpoint get|set|reset|history` against the admin listener `admin` names.
async fn checkpoint(action: CheckpointCommand, admin: &AdminTarget) -> Result<(), CommandError> {
    let secret = admin.jwt_secret.as_deref().map(JwtSecret::from_file).transpose()?;
    let client = client(admin.addr, secret.as_ref())?;
    let error = client_error(admin.addr);
    match action {
        CheckpointCommand::Get => {
            let checkpoint = client.get_checkpoint().await.map_err(error)?;
            if admin.json {
                print_json(&checkpoint)
            } else {
                println!("checkpoint: {}", describe(checkpoint))
            }
        }
        CheckpointCommand::Set { block, index, time, dry_run, if_at } => {
            let options = ChangeOptions { dry_run, expected: if_at };
            let target = match (block, time) {
                (_, Some(timestamp)) => CheckpointTarget::Time { timestamp },
                (Some(block), None) => CheckpointTarget::Block(block),
                (None, None) => return Err(CommandError::Usage("give --block or --time")),
            };
            let change = write_to_leader(admin.addr, secret.as_ref(), |client| async move {
                client.set_checkpoint(target, index, Some(options)).await
            })
            .await?;
            if admin.json { print_json(&change) } else { print_change(&change) }
        }
        CheckpointCommand::Reset { dry_run, if_at } => {
            let options = ChangeOptions { dry_run, expected: if_at };
            let change = write_to_leader(admin.addr, secret.as_ref(), |client| async move {
                client.reset_checkpoint(Some(options)).await
            })
            .await?;
            if admin.json { print_json(&change) } else { print_change(&change) }
        }
        CheckpointCommand::Refetch { transaction, dry_run } => {
            let options = ferry_rpc_api::RefetchOptions { dry_run };
            let refetched = write_to_leader(admin.addr, secret.as_ref(), |client| async move {
                client.refetch_transaction(transaction, Some(options)).await
            })
            .await?;
            if admin.json { print_json(&refetched) } else { print_refetched(&refetched) }
        }
        CheckpointCommand::History { limit } => {
            let history = client.get_checkpoint_history(Some(limit)).await.map_err(error)?;
            if admin.json {
                print_json(&history);
            } else {
                for entry in history {
                    let skipped = entry.skipped.map_or_else(String::new, |skipped| {
                        format!(
                            " (skipped {} blocks, {} stored messages logged there)",
                            skipped.blocks, skipped.stored_messages
                        )
                    });
                    println!(
                        "#{} at {} ms: {} by {}: {} -> {}{skipped}",
                        entry.id,
                        entry.time,
                        entry.method,
                        entry.caller,
                        describe(entry.previous),
                        describe(entry.current)
                    );
                }
            }
        }
    }
    Ok(())
}
