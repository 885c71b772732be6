//! The binary as an operator runs it: dev mode, refusals at start, and shutdown.

use crate::support::{Ferry, anvil, check_store, deploy, ferry_once, head, http_get, send_many};
use alloy::{
    primitives::{Address, U256},
    providers::ext::AnvilApi,
};
use ferry_primitives::Position;
use ferry_rpc::AdminApiClient;
use jsonrpsee::http_client::HttpClient;

#[tokio::test]
async fn dev_mode_runs_and_the_operator_cli_drives_it() {
    let datadir = tempfile::tempdir().unwrap();
    let metrics = crate::support::free_addr().to_string();
    let mut ferry =
        Ferry::start(datadir.path(), &["--dev", "--dev.messages", "3", "--metrics.addr", &metrics]);
    let status = ferry.wait_status("the dev messages are stored", |s| s.messages_stored == 3).await;
    assert_eq!(status.chain_id, 31337);
    assert_eq!(status.pipeline.lowest_nonce, Some(U256::ZERO));

    // Checkpoint over RPC and through the CLI agree.
    let admin = HttpClient::builder().build(format!("http://{}", ferry.admin)).unwrap();
    let checkpoint = admin.get_checkpoint().await.unwrap();
    assert!(checkpoint.is_some());
    let admin_addr = ferry.admin.to_string();
    let (exit, out, err) =
        ferry_once(&["checkpoint", "get", "--json", "--admin.addr", &admin_addr]);
    assert!(exit.success(), "{err}");
    let cli_checkpoint: Option<Position> = serde_json::from_str(&out).unwrap();
    assert!(cli_checkpoint.is_some_and(|position| position >= checkpoint.unwrap()));

    // The CLI moves the checkpoint; the node re-scans and stores nothing twice.
    let (exit, out, err) =
        ferry_once(&["checkpoint", "set", "--block", "0", "--json", "--admin.addr", &admin_addr]);
    assert!(exit.success(), "{err}");
    let change: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(change["current"], serde_json::json!({"block": 0, "index": 0}));
    assert_eq!(change["rewindApplied"], true);
    let status = ferry
        .wait_status("the re-scan found the 3 messages again", |s| {
            s.pipeline.duplicates_skipped == 3
        })
        .await;
    assert_eq!(status.messages_stored, 3);
    let (exit, out, _) = ferry_once(&["checkpoint", "history", "--admin.addr", &admin_addr]);
    assert!(exit.success() && out.contains("messaging_setCheckpoint"), "{out}");
    let public_addr = ferry.public.to_string();
    let (exit, out, _) = ferry_once(&["status", "--rpc.addr", &public_addr]);
    assert!(exit.success() && out.contains("messages stored: 3"), "{out}");

    // Orchestrator endpoints.
    let metrics = metrics.parse().unwrap();
    assert_eq!(http_get(metrics, "/health").await.0, 200);
    let (status, body) = http_get(metrics, "/ready").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let stored = body.lines().find(|line| line.starts_with("ferry_messages_stored_total"));
    assert_eq!(stored, Some("ferry_messages_stored_total 3"), "{body}");
    assert!(
        body.contains(
            "ferry_rpc_requests_total{method=\"messaging_setCheckpoint\",outcome=\"ok\"} 1"
        )
    );

    let exit = ferry.terminate().await;
    assert!(exit.success(), "SIGTERM must exit 0: {exit}, {}", ferry.stderr());
    assert!(ferry.stdout().contains("cast send"), "the banner shows how to send a message");
}

#[tokio::test]
async fn a_chain_id_mismatch_refuses_to_start_naming_both() {
    let anvil = anvil();
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry =
        Ferry::against(&anvil, Address::repeat_byte(1), datadir.path(), &["--l1.chain-id", "1"]);
    let exit = ferry.exit().await;
    assert_eq!(exit.code(), Some(1));
    let stderr = ferry.stderr();
    assert!(stderr.contains("--l1.chain-id is 1") && stderr.contains("31337"), "{stderr}");
}

#[tokio::test]
async fn a_datadir_made_for_another_contract_is_refused() {
    let anvil = anvil();
    let datadir = tempfile::tempdir().unwrap();
    let first = Address::repeat_byte(0xaa);
    let mut ferry = Ferry::against(&anvil, first, datadir.path(), &[]);
    ferry.wait_status("the node is up", |s| s.pipeline.cursor.is_some()).await;
    assert!(ferry.terminate().await.success());

    let second = Address::repeat_byte(0xbb);
    let mut ferry = Ferry::against(&anvil, second, datadir.path(), &[]);
    let exit = ferry.exit().await;
    assert_eq!(exit.code(), Some(1));
    let stderr = ferry.stderr();
    assert!(
        stderr.contains(&first.to_string()) && stderr.contains(&second.to_string()),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_command_lines_exit_2_naming_the_flag_and_value() {
    let (exit, _, stderr) = ferry_once(&["--l1.rpc-url", "ftp://nowhere", "--l1.contract", "0x01"]);
    assert_eq!(exit.code(), Some(2));
    assert!(stderr.contains("--l1.rpc-url") && stderr.contains("ftp://nowhere"), "{stderr}");
    let (exit, _, stderr) = ferry_once(&["--dev", "--from-block", "-3"]);
    assert_eq!(exit.code(), Some(2));
    assert!(stderr.contains("--from-block") && stderr.contains("-3 is negative"), "{stderr}");
    let (exit, _, stderr) =
        ferry_once(&["--l1.contract", "0x5FbDB2315678afecb367f032d93F642f64180aa3"]);
    assert_eq!(exit.code(), Some(2));
    assert!(stderr.contains("--l1.rpc-url is required"), "{stderr}");
}

#[tokio::test]
async fn sigterm_during_a_busy_ingest_leaves_a_consistent_store() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    const TXS: u64 = 40;
    const PER_TX: u64 = 25;
    for _ in 0..TXS {
        send_many(&contract, PER_TX).await;
        // Empty blocks between, read one per batch: a long ingest of many commits.
        contract.provider().anvil_mine(Some(50), None).await.unwrap();
    }
    let total = TXS * PER_TX;
    let datadir = tempfile::tempdir().unwrap();
    let address = *contract.address();
    let mut ferry = Ferry::against(&anvil, address, datadir.path(), &["--max-block-range", "1"]);
    let status = ferry.wait_status("ingest is under way", |s| s.messages_stored >= 100).await;
    assert!(status.messages_stored < total, "the ingest finished before the signal");
    let exit = ferry.terminate().await;
    assert!(exit.success(), "SIGTERM must exit 0: {exit}, {}", ferry.stderr());

    // What was committed is whole and consistent.
    let nonces = check_store(datadir.path(), anvil.chain_id(), address);
    assert_eq!(nonces, (0..nonces.len() as u64).map(U256::from).collect::<Vec<_>>());

    // A restart resumes exactly: every message once.
    let head = head(&contract).await;
    let mut ferry = Ferry::against(&anvil, address, datadir.path(), &["--max-block-range", "100"]);
    ferry
        .wait_status("the restart caught up", |s| {
            s.checkpoint == Some(Position::block_start(head + 1))
        })
        .await;
    assert!(ferry.terminate().await.success());
    let nonces = check_store(datadir.path(), anvil.chain_id(), address);
    assert_eq!(nonces, (0..total).map(U256::from).collect::<Vec<_>>());
}
