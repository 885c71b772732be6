//! `ferry db`: looking inside a datadir without a node. Every command opens the store
//! read-only (MDBX readers), so it is safe while a node runs on the same datadir and never
//! makes that node wait.

use crate::CommandError;
use clap::{Args, Subcommand, ValueEnum};
use ferry_primitives::{B256, Seq, StoredMessage};
use ferry_storage::Store;
use serde::Serialize;
use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// `ferry db` options.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DbCommand,
    /// The node's data directory.
    #[arg(long, env = "FERRY_DATADIR", default_value = "ferry-data", global = true)]
    pub datadir: PathBuf,
}

/// `ferry db` actions.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Tables, entries, sizes, free pages, schema version, chain id, contract, checkpoint.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One stored thing, as JSON.
    Get {
        /// What to get.
        #[command(subcommand)]
        what: GetCommand,
    },
    /// Every stored message in seq order, one per line.
    Export {
        /// `jsonl` (one JSON message per line, as `messaging_getMessageByHash` answers) or
        /// `csv`.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// The first seq to export.
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
        /// The last seq to export.
        #[arg(long)]
        to_seq: Option<u64>,
    },
}

/// `ferry db get` targets.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// A message, by its seq or its message hash (`0x` and 64 hex digits).
    Message {
        /// A seq or a message hash.
        key: String,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON lines.
    Jsonl,
    /// Comma-separated values with a header row; the payload's felts separated by spaces.
    Csv,
}

/// Runs `ferry db`.
pub(crate) fn run(args: DbArgs) -> Result<(), CommandError> {
    let store = open(&args.datadir)?;
    match args.action {
        DbCommand::Stats { json } => stats(&store, json),
        DbCommand::Get { what: GetCommand::Message { key } } => get_message(&store, &key),
        DbCommand::Export { format, from_seq, to_seq } => {
            export(&store, format, Seq(from_seq), to_seq.map(Seq))
        }
    }
}

fn open(datadir: &Path) -> Result<Store, CommandError> {
    Ok(Store::open_read_only(datadir)?)
}

/// `ferry db stats --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsView {
    schema_version: u32,
    chain_id: u64,
    contract: ferry_primitives::Address,
    from_block: u64,
    checkpoint: ferry_primitives::Checkpoint,
    last_seq: Option<Seq>,
    tables: Vec<TableView>,
    page_size: u32,
    file_pages: u64,
    free_pages: u64,
    file_bytes: u64,
    map_size: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TableView {
    name: &'static str,
    entries: u64,
    depth: u32,
    pages: u64,
    bytes: u64,
}

fn stats(store: &Store, json: bool) -> Result<(), CommandError> {
    let info = store.info()?;
    let view = StatsView {
        schema_version: info.schema_version,
        chain_id: info.config.chain_id,
        contract: info.config.contract,
        from_block: info.config.from_block,
        checkpoint: info.checkpoint,
        last_seq: info.last_seq,
        tables: info
            .tables
            .iter()
            .map(|table| TableView {
                name: table.table.name(),
                entries: table.entries,
                depth: table.depth,
                pages: table.pages,
                bytes: table.bytes,
            })
            .collect(),
        page_size: info.space.page_size,
        file_pages: info.space.file_pages,
        free_pages: info.space.free_pages,
        file_bytes: info.space.file_pages * u64::from(info.space.page_size),
        map_size: info.space.map_size,
    };
    if json {
        crate::output::print_json(&view);
        return Ok(());
    }
    println!(
        "schema version {}, chain {}, contract {}, start block {}",
        view.schema_version, view.chain_id, view.contract, view.from_block
    );
    println!(
        "checkpoint: {}; last seq {}",
        crate::output::describe(view.checkpoint),
        view.last_seq.map_or_else(|| "-".to_owned(), |seq| seq.to_string())
    );
    println!("{:<18}{:>12}{:>7}{:>10}{:>14}", "table", "entries", "depth", "pages", "bytes");
    for table in &view.tables {
        println!(
            "{:<18}{:>12}{:>7}{:>10}{:>14}",
            table.name, table.entries, table.depth, table.pages, table.bytes
        );
    }
    println!(
        "file: {} pages of {} bytes ({} bytes), {} of them free; map size {} bytes",
        view.file_pages, view.page_size, view.file_bytes, view.free_pages, view.map_size
    );
    Ok(())
}

fn get_message(store: &Store, key: &str) -> Result<(), CommandError> {
    let bad = |reason: &str| {
        CommandError::Db(format!("{key:?} is not a seq or a message hash: {reason}"))
    };
    let message = if key.starts_with("0x") {
        let hash: B256 = key.parse().map_err(|_| bad("a hash is 0x and 64 hex digits"))?;
        match store.message_by_hash(hash)? {
            Some(message) => Some(message),
            None => {
                // Known from lifecycle events only?
                if let Some(known) = store.message_lifecycle(hash)? {
                    crate::output::print_json(&known);
                    return Ok(());
                }
                None
            }
        }
    } else {
        let seq: u64 = key.parse().map_err(|_| bad("a seq is a decimal number"))?;
        store.messages_from(Seq(seq), 1)?.into_iter().find(|message| message.seq == Seq(seq))
    };
    match message {
        Some(message) => {
            crate::output::print_json(&message);
            Ok(())
        }
        None => Err(CommandError::Db(format!("no stored message has seq or hash {key}"))),
    }
}

/// One CSV row.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CsvRow {
    seq: u64,
    hash: B256,
    from: ferry_primitives::Address,
    to: ferry_primitives::U256,
    selector: ferry_primitives::U256,
    nonce: ferry_primitives::U256,
    fee: ferry_primitives::U256,
    payload: String,
    block: u64,
    block_hash: B256,
    transaction_hash: B256,
    log_index: u64,
    inclusion: &'static str,
    state: &'static str,
}

impl CsvRow {
    fn of(message: &StoredMessage) -> Self {
        let payload: Vec<String> =
            message.l1.message.payload.iter().map(|felt| format!("{felt:#x}")).collect();
        Self {
            seq: message.seq.0,
            hash: message.hash,
            from: message.l1.message.from,
            to: message.l1.message.to,
            selector: message.l1.message.selector,
            nonce: message.l1.message.nonce,
            fee: message.l1.message.fee,
            payload: payload.join(" "),
            block: message.l1.origin.block_number,
            block_hash: message.l1.origin.block_hash,
            transaction_hash: message.l1.origin.transaction_hash,
            log_index: message.l1.origin.log_index,
            inclusion: match message.inclusion {
                ferry_primitives::Inclusion::Canonical => "canonical",
                ferry_primitives::Inclusion::Orphaned => "orphaned",
            },
            state: message.lifecycle.state.name(),
        }
    }
}

/// Writes the messages from `from` through `to`; stops quietly when the reader closes the
/// pipe (`| head`).
fn export(
    store: &Store,
    format: ExportFormat,
    from: Seq,
    to: Option<Seq>,
) -> Result<(), CommandError> {
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match format {
        ExportFormat::Jsonl => {
            let mut out = out;
            each_message(store, from, to, |message| {
                serde_json::to_writer(&mut out, message).map_err(std::io::Error::from)?;
                out.write_all(b"\n")
            })
            .and_then(|()| out.flush().map_err(CommandError::from))
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            each_message(store, from, to, |message| {
                writer.serialize(CsvRow::of(message)).map_err(std::io::Error::other)
            })
            .and_then(|()| writer.flush().map_err(CommandError::from))
        }
    };
    match written {
        Err(CommandError::Io(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Calls `write` on the stored messages from `from` through `to`, read a page at a time so
/// that memory stays bounded whatever the store's size.
fn each_message(
    store: &Store,
    from: Seq,
    to: Option<Seq>,
    mut write: impl FnMut(&StoredMessage) -> std::io::Result<()>,
) -> Result<(), CommandError> {
    let mut next = from;
    loop {
        let page = store.messages_from(next, 1_000)?;
        let Some(last) = page.last() else { return Ok(()) };
        next = last.seq.next();
        for message in page.iter().filter(|message| to.is_none_or(|to| message.seq <= to)) {
            write(message)?;
        }
        if to.is_some_and(|to| last.seq >= to) {
            return Ok(());
        }
    }
}
