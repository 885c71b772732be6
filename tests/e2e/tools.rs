//! The operator tools against real stores: `ferry verify` on a correct store (offline and
//! through a running node) and on stores damaged in each way it reports, each found as
//! exactly its category; `ferry db` against a store a running node is writing; completions
//! and the man page.

use crate::{
    lifecycle::{cancel, consume, send},
    scenarios::caught_up,
    support::{Ferry, anvil, deploy, ferry_once, head},
};
use alloy::{
    primitives::{B256, U256},
    providers::ext::AnvilApi,
};
use ferry_primitives::{L1Message, Message, Origin, Position, Seq, StoredMessage};
use ferry_rpc_api::PublicApiClient;
use ferry_storage::{Store, StoreConfig};
use serde_json::Value;
use std::path::Path;

/// `ferry verify --json` with `args`: whether it passed, and its report.
fn verify(l1: &str, source: &[&str], extra: &[&str]) -> (bool, Value) {
    let mut args = vec!["verify", "--l1.rpc-url", l1, "--json", "--max-rps", "200"];
    args.extend_from_slice(source);
    args.extend_from_slice(extra);
    let (exit, out, err) = ferry_once(&args);
    let report = serde_json::from_str(&out)
        .unwrap_or_else(|error| panic!("verify printed no report ({error}): {out}{err}"));
    (exit.success(), report)
}

/// The report's categories that hold findings, and the findings' nonces in each.
fn found(report: &Value) -> Vec<(&'static str, Vec<u64>)> {
    let mut found = Vec::new();
    let categories =
        ["missing", "extra", "mismatched", "orphaned", "contractState", "nonceGaps", "unproven"];
    for category in categories {
        let findings = report[category].as_array().unwrap();
        if findings.is_empty() {
            continue;
        }
        let nonce = |finding: &Value| {
            let text = finding.get("nonce").or_else(|| finding.get("first")).unwrap();
            u64::from_str_radix(text.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        found.push((category, findings.iter().map(nonce).collect()));
    }
    found
}

/// A copy of `datadir` to damage.
fn copy_of(datadir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(datadir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

fn config(contract: alloy::primitives::Address) -> StoreConfig {
    StoreConfig { chain_id: 31337, contract, from_block: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_correct_store_and_names_each_damage_as_its_category() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mut messages = Vec::new();
    for nonce in 0..6 {
        messages.push(send(&contract, nonce, 10 + nonce).await);
    }
    // A consumed message and a cancelled one: the contract then holds 0 for them.
    consume(&contract, &messages[3]).await;
    cancel(&contract, &messages[4], false).await;
    cancel(&contract, &messages[4], true).await;
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    let l1 = anvil.endpoint();
    let offline = ["--datadir", datadir.path().to_str().unwrap()];
    let (passed, report) = verify(&l1, &offline, &[]);
    assert!(passed, "a correct store, read while the node runs: {report}");
    assert_eq!((report["checked"].as_u64(), report["onL1"].as_u64()), (Some(6), Some(6)));
    // Every message proven against its block's receipts root (one block each).
    let (passed, report) = verify(&l1, &offline, &["--proofs"]);
    assert!(passed, "a correct store proves out: {report}");
    assert_eq!(report["provenBlocks"].as_u64(), Some(6), "{report}");
    let public = format!("http://{}", ferry.public);
    let (passed, report) = verify(&l1, &["--rpc.url", &public], &[]);
    assert!(passed, "a correct store, read through the node: {report}");
    assert!(ferry.terminate().await.success());
    // Blocks after the checkpoint, for a message from elsewhere to sit in.
    contract.provider().anvil_mine(Some(2), None).await.unwrap();

    // The newest message deleted: missing, and nothing else.
    let damaged = copy_of(datadir.path());
    Store::open(damaged.path(), config(*contract.address()))
        .unwrap()
        .damage_delete_message(Seq(5))
        .unwrap();
    let source = ["--datadir", damaged.path().to_str().unwrap()];
    let (passed, report) = verify(&l1, &source, &[]);
    assert!(!passed);
    assert_eq!(found(&report), [("missing", vec![5])], "{report}");

    // A field changed (the payload, its stored hash kept): mismatched, naming it.
    let damaged = copy_of(datadir.path());
    let store = Store::open(damaged.path(), config(*contract.address())).unwrap();
    let mut changed = store.messages_from(Seq(2), 1).unwrap().remove(0).l1;
    changed.message.payload = vec![U256::from(999)];
    store.damage_rewrite_message(Seq(2), &changed).unwrap();
    drop(store);
    let source = ["--datadir", damaged.path().to_str().unwrap()];
    let (passed, report) = verify(&l1, &source, &[]);
    assert!(!passed);
    assert_eq!(found(&report), [("mismatched", vec![2])], "{report}");
    let fields = &report["mismatched"][0]["fields"];
    assert_eq!(fields, &serde_json::json!(["payload", "hash"]), "{report}");
    // Its block's receipts do not hold it as stored.
    let (_, report) = verify(&l1, &source, &["--proofs"]);
    assert_eq!(found(&report), [("mismatched", vec![2]), ("unproven", vec![2])], "{report}");
    let reason = report["unproven"][0]["fields"][0].as_str().unwrap();
    assert!(reason.contains("proven receipts"), "{report}");

    // A message from another chain, stored after the others: extra.
    let damaged = copy_of(datadir.path());
    let store = Store::open(damaged.path(), config(*contract.address())).unwrap();
    let at = store.resume_position(store.checkpoint().unwrap());
    let foreign = L1Message {
        message: Message { nonce: U256::from(6), ..messages[0].clone() },
        origin: Origin {
            block_number: at.block,
            block_hash: B256::repeat_byte(0xf0),
            transaction_hash: B256::repeat_byte(0xf1),
            log_index: 0,
        },
    };
    let outcome = store.commit_batch(
        at,
        std::slice::from_ref(&foreign),
        Position::block_start(at.block + 1),
        &[],
    );
    assert!(matches!(outcome, Ok(ferry_storage::CommitOutcome::Committed(_))), "{outcome:?}");
    drop(store);
    assert!(head(&contract).await > at.block, "the block exists on L1");
    let source = ["--datadir", damaged.path().to_str().unwrap()];
    let (passed, report) = verify(&l1, &source, &[]);
    assert!(!passed);
    assert_eq!(found(&report), [("extra", vec![6])], "{report}");
    // Its block is not the one L1 holds at that number.
    let (_, report) = verify(&l1, &source, &["--proofs"]);
    assert_eq!(found(&report), [("extra", vec![6]), ("unproven", vec![6])], "{report}");
    let reason = report["unproven"][0]["fields"][0].as_str().unwrap();
    assert!(reason.contains("not the stored"), "{report}");

    // A message deleted below where a resumed verify starts: a nonce gap, and nothing else.
    let damaged = copy_of(datadir.path());
    Store::open(damaged.path(), config(*contract.address()))
        .unwrap()
        .damage_delete_message(Seq(1))
        .unwrap();
    let source = ["--datadir", damaged.path().to_str().unwrap()];
    let (passed, report) = verify(&l1, &source, &["--from-seq", "2"]);
    assert!(!passed);
    assert_eq!(found(&report), [("nonceGaps", vec![1])], "{report}");
    // Without --from-seq the same store shows the message as missing, which explains the gap.
    let (_, report) = verify(&l1, &source, &[]);
    assert_eq!(found(&report), [("missing", vec![1])], "{report}");

    // The human summary says what it found.
    let (exit, out, _) =
        ferry_once(&["verify", "--l1.rpc-url", &l1, "--datadir", damaged.path().to_str().unwrap()]);
    assert!(!exit.success());
    assert!(out.contains("missing         1") && out.contains("FAILED"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_db_reads_a_store_that_a_running_node_is_writing() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    for nonce in 0..3 {
        send(&contract, nonce, 1).await;
    }
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    caught_up(&mut ferry, &contract).await;
    let dir = datadir.path().to_str().unwrap().to_owned();
    // The node keeps ingesting while the tools read.
    let sender = {
        let contract = contract.clone();
        tokio::spawn(async move {
            for nonce in 3..15 {
                send(&contract, nonce, 1).await;
            }
        })
    };
    let (exit, out, err) = ferry_once(&["db", "stats", "--json", "--datadir", &dir]);
    assert!(exit.success(), "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (stats["schemaVersion"].as_u64(), stats["chainId"].as_u64()),
        (Some(u64::from(ferry_storage::SCHEMA_VERSION)), Some(31337))
    );
    assert_eq!(stats["contract"].as_str().unwrap(), contract.address().to_string().to_lowercase());
    let messages =
        stats["tables"].as_array().unwrap().iter().find(|t| t["name"] == "Messages").unwrap();
    assert!(messages["entries"].as_u64().unwrap() >= 3, "{stats}");
    let (exit, text, _) = ferry_once(&["db", "stats", "--datadir", &dir]);
    assert!(
        exit.success()
            && text.contains("Messages")
            && text.contains(&format!("schema version {}", ferry_storage::SCHEMA_VERSION)),
        "{text}"
    );

    let (exit, out, err) = ferry_once(&["db", "export", "--format", "jsonl", "--datadir", &dir]);
    assert!(exit.success(), "{err}");
    let exported: Vec<StoredMessage> =
        out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(exported.len() >= 3);
    let seqs: Vec<u64> = exported.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, (0..exported.len() as u64).collect::<Vec<_>>(), "every seq once, in order");
    let last = exported.len() as u64 - 1;
    let (exit, csv, _) = ferry_once(&[
        "db",
        "export",
        "--format",
        "csv",
        "--to-seq",
        &last.to_string(),
        "--datadir",
        &dir,
    ]);
    assert!(exit.success());
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("seq,hash,from,to,selector,nonce,fee,payload,block"),
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), exported.len() + 1, "a header and a row per message");

    sender.await.unwrap();
    caught_up(&mut ferry, &contract).await;
    // What the tools read is what the node serves, field by field.
    let client = ferry.public_client();
    for message in &exported {
        let served = client.get_message_by_hash(message.hash).await.unwrap().unwrap();
        assert_eq!(&served, message);
        let by_seq =
            ferry_once(&["db", "get", "message", &message.seq.to_string(), "--datadir", &dir]);
        let by_hash =
            ferry_once(&["db", "get", "message", &message.hash.to_string(), "--datadir", &dir]);
        for (exit, out, err) in [by_seq, by_hash] {
            assert!(exit.success(), "{err}");
            assert_eq!(&serde_json::from_str::<StoredMessage>(&out).unwrap(), message);
        }
    }
    let (exit, _, err) = ferry_once(&["db", "get", "message", "999999", "--datadir", &dir]);
    assert!(!exit.success() && err.contains("no stored message"), "{err}");
    let (exit, _, err) = ferry_once(&["db", "get", "message", "0xnothex", "--datadir", &dir]);
    assert!(!exit.success() && err.contains("\"0xnothex\""), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (exit, _, err) = ferry_once(&["db", "stats", "--datadir", empty.path().to_str().unwrap()]);
    assert!(!exit.success() && err.contains("holds no ferry database"), "{err}");
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none(), "nothing was created");
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    for (shell, marker) in
        [("bash", "_ferry()"), ("zsh", "#compdef ferry"), ("fish", "complete -c ferry")]
    {
        let (exit, out, err) = ferry_once(&["completions", shell]);
        assert!(exit.success(), "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(
            out.contains("checkpoint") && out.contains("verify"),
            "{shell} completes the commands"
        );
    }
    let (exit, out, _) = ferry_once(&["man"]);
    assert!(exit.success());
    assert!(out.starts_with(".ie") || out.contains(".TH ferry"), "{}", &out[..out.len().min(200)]);
    assert!(out.contains("l1.rpc\\-url") || out.contains("l1.rpc-url"), "the flags are in it");
}
