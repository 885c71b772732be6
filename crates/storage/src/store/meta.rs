//! What a database is for (chain, contract, start block, schema), checked on every open, and
//! the migration of older schemas.

use crate::{
    Error, Result, SCHEMA_VERSION, StoreConfig,
    codec::AuditRecord,
    codec::{DecodeError, Name},
    tables::{self, Table},
    txn::{Txn, WriteTxn},
};
use ferry_primitives::Address;
use std::path::Path;
use tracing::{info, warn};

const LOG_TARGET: &str = "ferry::storage::meta";

const SCHEMA: Name = Name("schema_version");
const CHAIN_ID: Name = Name("chain_id");
const CONTRACT: Name = Name("contract");
const FROM_BLOCK: Name = Name("from_block");
const NODE_ID: Name = Name("node_id");

impl super::Store {
    /// This database's identity: 32 random bytes drawn when first asked for and kept in Meta,
    /// so that a restarted node is the same node and a copy elsewhere is not (a sink fences
    /// out a second writer by it).
    pub fn node_id(&self) -> Result<ferry_primitives::B256> {
        if let Some(id) = self.read()?.get::<tables::Meta>(&NODE_ID)? {
            return id_of(&id);
        }
        let txn = self.write()?;
        if let Some(id) = txn.get::<tables::Meta>(&NODE_ID)? {
            return id_of(&id);
        }
        let id = random_id();
        txn.put::<tables::Meta>(&NODE_ID, &id.to_vec())?;
        txn.commit("store the node id")?;
        Ok(id)
    }
}

fn id_of(bytes: &[u8]) -> Result<ferry_primitives::B256> {
    Ok(ferry_primitives::B256::from(fixed::<32>(&NODE_ID, bytes)?))
}

/// 32 random bytes from the standard library's per-process random hasher keys (no crate
/// needed for an identity drawn once per database).
fn random_id() -> ferry_primitives::B256 {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 32];
    for (index, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(index);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        chunk.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    ferry_primitives::B256::from(bytes)
}

/// Writes Meta into a new database, or checks an existing one against `config` (invariant: one
/// chain per database) and migrates it to [`SCHEMA_VERSION`].
pub(super) fn check_or_init(txn: &WriteTxn<'_>, path: &Path, config: StoreConfig) -> Result<()> {
    let put = |key: &Name, value: &[u8]| txn.put::<tables::Meta>(key, &value.to_vec());
    let Some(version) = txn.get::<tables::Meta>(&SCHEMA)? else {
        info!(target: LOG_TARGET, path = %path.display(), chain_id = config.chain_id,
            contract = %config.contract, from_block = config.from_block, "Creating database");
        put(&SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        put(&CHAIN_ID, &config.chain_id.to_be_bytes())?;
        put(&CONTRACT, config.contract.as_slice())?;
        return put(&FROM_BLOCK, &config.from_block.to_be_bytes());
    };

    let found = u32::from_be_bytes(fixed(&SCHEMA, &version)?);
    match found {
        SCHEMA_VERSION => {}
        1..=4 => {
            if found == 1 {
                migrate_v1(txn)?;
            }
            if found <= 3 {
                let indexed = migrate_v3(txn)?;
                info!(target: LOG_TARGET, path = %path.display(), messages = indexed,
                    "Indexed every stored message by nonce and by partitioned hash");
            }
            migrate_v4(txn)?;
            put(&SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            info!(target: LOG_TARGET, path = %path.display(), from = found, to = SCHEMA_VERSION,
                "Migrated the database");
        }
        _ => {
            return Err(Error::SchemaVersion {
                path: path.to_owned(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    let stored = u64::from_be_bytes(fixed(&CHAIN_ID, &required(txn, &CHAIN_ID)?)?);
    if stored != config.chain_id {
        return Err(Error::ChainIdMismatch {
            path: path.to_owned(),
            stored,
            configured: config.chain_id,
        });
    }
    let stored = Address::from(fixed::<20>(&CONTRACT, &required(txn, &CONTRACT)?)?);
    if stored != config.contract {
        return Err(Error::ContractMismatch {
            path: path.to_owned(),
            stored,
            configured: config.contract,
        });
    }
    let stored = u64::from_be_bytes(fixed(&FROM_BLOCK, &required(txn, &FROM_BLOCK)?)?);
    if stored != config.from_block {
        warn!(target: LOG_TARGET, previous = stored, current = config.from_block,
            "Start block changed; it applies while no checkpoint is stored");
        put(&FROM_BLOCK, &config.from_block.to_be_bytes())?;
    }
    Ok(())
}

/// What an existing database says it is: its schema version and the config it was created for.
pub(super) fn stored<K: signet_libmdbx::TransactionKind>(
    txn: &Txn<'_, K>,
) -> Result<(u32, StoreConfig)> {
    let version = u32::from_be_bytes(fixed(&SCHEMA, &required(txn, &SCHEMA)?)?);
    let chain_id = u64::from_be_bytes(fixed(&CHAIN_ID, &required(txn, &CHAIN_ID)?)?);
    let contract = Address::from(fixed::<20>(&CONTRACT, &required(txn, &CONTRACT)?)?);
    let from_block = u64::from_be_bytes(fixed(&FROM_BLOCK, &required(txn, &FROM_BLOCK)?)?);
    Ok((version, StoreConfig { chain_id, contract, from_block }))
}

/// The chain id a database was created for; `None` for a new one.
pub(super) fn stored_chain_id(txn: &WriteTxn<'_>) -> Result<Option<u64>> {
    if txn.get::<tables::Meta>(&SCHEMA)?.is_none() {
        return Ok(None);
    }
    Ok(Some(u64::from_be_bytes(fixed(&CHAIN_ID, &required(txn, &CHAIN_ID)?)?)))
}

/// Version 1 kept the hashes of message blocks and of each batch's last block in a `Blocks`
/// table, and had no notices. Its Messages, Nonces, Checkpoint and Audit rows
/// have the layout version 2 reads: they stay as they are. `Blocks` is dropped: it was no
/// contiguous window, so the first batch after the upgrade starts a new one (as on a fresh
/// start) rather than trusting it.
///
/// Version 2 had no lifecycle tables; they are created empty on open, and their notices use a
/// kind byte version 2 never wrote, so its rows all read as they are. Lifecycle events of the
/// blocks read before the upgrade are not known until an operator re-scans them.
fn migrate_v1(txn: &WriteTxn<'_>) -> Result<()> {
    txn.drop_table_named("Blocks")
}

/// Versions 1 to 3 kept one index, `MessageHashes` (hash → seq), with random keys. Version 4
/// finds messages by nonce and by partitioned hash instead (`index.rs`): both are built from
/// Messages, in the upgrade's transaction, and the old table is dropped. The runs of held
/// nonces (`nonces.rs`) are built from Nonces. Every other row reads as it is. How many
/// messages were indexed.
fn migrate_v3(txn: &WriteTxn<'_>) -> Result<u64> {
    let indexed = super::index::rebuild(txn)?;
    txn.drop_table_named("MessageHashes")?;
    super::nonces::rebuild(txn)?;
    Ok(indexed)
}

/// Versions 1 to 4 wrote audit entries without what a forward move skipped; version 5 keeps
/// it in each entry (`audit.rs`). Every entry is rewritten in the new layout, saying it
/// skipped nothing known (the trail is an operator's few rows, not a hot table).
fn migrate_v4(txn: &WriteTxn<'_>) -> Result<()> {
    let corrupt = |key: &[u8], reason: DecodeError| Error::Corrupt {
        table: Table::Audit.name(),
        key: key.iter().map(|byte| format!("{byte:02x}")).collect(),
        reason: reason.to_string(),
    };
    let mut entries = Vec::new();
    txn.walk_raw::<tables::Audit>(|key, value| {
        let id = <u64 as crate::codec::Key>::decode(key).map_err(|error| corrupt(key, error))?;
        let record = AuditRecord::decode_v4(value).map_err(|error| corrupt(key, error))?;
        entries.push((id, record));
        Ok(())
    })?;
    for (id, record) in &entries {
        txn.put::<tables::Audit>(id, record)?;
    }
    Ok(())
}

fn required<K: signet_libmdbx::TransactionKind>(txn: &Txn<'_, K>, key: &Name) -> Result<Vec<u8>> {
    txn.get::<tables::Meta>(key)?.ok_or_else(|| Error::Corrupt {
        table: Table::Meta.name(),
        key: key.0.to_owned(),
        reason: "missing".to_owned(),
    })
}

fn fixed<const N: usize>(key: &Name, bytes: &[u8]) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| Error::Corrupt {
        table: Table::Meta.name(),
        key: key.0.to_owned(),
        reason: DecodeError::length(N, bytes.len()).to_string(),
    })
}
