//! The binary as an operator runs it: dev mode, refusals at start, and shutdown.

use crate::support::{
    Ferry, anvil, check_store, deploy, ferry_once, head, http_get, http_post, send_many,
};
use alloy::{
    primitives::{Address, U256},
    providers::ext::AnvilApi,
};
use ferry_primitives::Position;
use ferry_rpc_api::{AdminApiClient, PublicApiClient};
use jsonrpsee::http_client::HttpClient;

#[tokio::test]
async fn dev_mode_runs_and_the_operator_cli_drives_it() {
    let datadir = tempfile::tempdir().unwrap();
    let metrics = crate::support::free_addr().to_string();
    let mut ferry =
        Ferry::start(datadir.path(), &["--dev", "--dev.messages", "3", "--metrics.addr", &metrics]);
    // The store shows a commit the moment it lands; the pipeline's counters follow.
    let status = ferry
        .wait_status("the dev messages are stored", |s| {
            s.messages_stored == 3 && s.pipeline.highest_nonce == Some(U256::from(2))
        })
        .await;
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

    // A set made on condition of a checkpoint the node no longer holds changes nothing and
    // says where it is; one made on the checkpoint just read goes through.
    let before = admin.get_checkpoint_history(Some(100)).await.unwrap();
    let stale = ["checkpoint", "set", "--block", "0", "--if-at", "1:7", "--admin.addr"];
    let (exit, _, err) = ferry_once(&[&stale[..], &[admin_addr.as_str()]].concat());
    assert!(!exit.success(), "a stale --if-at must fail");
    assert!(err.contains("checkpoint moved: expected (block 1, index 7)"), "{err}");
    assert!(err.contains("-32054"), "{err}");
    assert_eq!(admin.get_checkpoint_history(Some(100)).await.unwrap(), before, "nothing changed");
    let mut applied = false;
    for _ in 0..5 {
        let read = admin.get_checkpoint().await.unwrap().unwrap();
        let at = format!("{}:{}", read.block, read.index);
        let set = ["checkpoint", "set", "--block", "0", "--if-at", &at, "--json", "--admin.addr"];
        let (exit, out, err) = ferry_once(&[&set[..], &[admin_addr.as_str()]].concat());
        if exit.success() {
            let change: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(change["previous"], serde_json::json!(read));
            applied = true;
            break;
        }
        // Refused only because a new block moved the checkpoint meanwhile.
        assert!(err.contains("checkpoint moved"), "{err}");
    }
    assert!(applied, "a set on the checkpoint just read goes through");
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
            "ferry_rpc_requests_total{method=\"messaging_setCheckpoint\",outcome=\"ok\"} 2"
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

#[tokio::test]
async fn with_a_jwt_secret_the_admin_listener_refuses_everyone_else() {
    use ferry_rpc::JwtSecret;
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 2).await;
    let datadir = tempfile::tempdir().unwrap();
    let hex = "7365637265742d7365637265742d7365637265742d7365637265742d31323334";
    let secret_file = datadir.path().join("jwt.hex");
    std::fs::write(&secret_file, hex).unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let mut ferry = Ferry::against(
        &anvil,
        *contract.address(),
        datadir.path(),
        &["--admin.jwt-secret", secret_path],
    );
    let status = ferry.wait_status("caught up", |s| s.messages_stored == 2).await;
    let checkpoint = status.checkpoint;

    let secret = JwtSecret::from_hex(hex).unwrap();
    let forged = JwtSecret::from_hex(&hex.replace('7', "8")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let set = r#"{"jsonrpc":"2.0","id":1,"method":"messaging_setCheckpoint","params":[1]}"#;
    for (what, authorization) in [
        ("no token", None),
        ("forged", Some(format!("Bearer {}", forged.token()))),
        ("stale", Some(format!("Bearer {}", secret.token_issued_at(now - 300)))),
    ] {
        let (code, _) = http_post(ferry.admin, set, authorization.as_deref()).await;
        assert_eq!(code, 401, "{what}");
    }
    let status = ferry.public_client().status().await.unwrap();
    assert_eq!(status.checkpoint, checkpoint, "nothing changed");
    assert_eq!(status.pipeline.rewinds, 0);

    // cast rpc --jwt-secret and the operator CLI with the file both get in.
    let url = format!("http://{}", ferry.admin);
    let cast = ferry_test_support::cast()
        .args(["rpc", "--rpc-url", &url, "--jwt-secret", hex, "messaging_getCheckpoint"])
        .output()
        .unwrap();
    assert!(cast.status.success(), "{}", String::from_utf8_lossy(&cast.stderr));
    let answer: Option<Position> = serde_json::from_slice(&cast.stdout).unwrap();
    assert_eq!(answer, checkpoint);
    let admin = ferry.admin.to_string();
    let (exit, out, err) = ferry_once(&[
        "checkpoint",
        "set",
        "--block",
        "1",
        "--json",
        "--admin.addr",
        &admin,
        "--admin.jwt-secret",
        secret_path,
    ]);
    assert!(exit.success(), "{err}");
    assert!(out.contains("\"rewindApplied\": true"), "{out}");
    let (exit, _, err) = ferry_once(&["checkpoint", "get", "--admin.addr", &admin]);
    assert!(!exit.success() && err.contains("401"), "{err}");
}

#[tokio::test]
async fn hostile_requests_over_the_network_change_nothing() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 2).await;
    let datadir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    let status = ferry.wait_status("caught up", |s| s.messages_stored == 2).await;
    let call = |params: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"messaging_setCheckpoint","params":{params}}}"#
        )
    };
    let cases = [
        (call("[-1]"), -32602, "invalid param `block`: -1 is negative"),
        (call(r#"["0xzz"]"#), -32602, "malformed hex"),
        (call("[1, 2, null, 4]"), -32602, "expected at most 3 params"),
        (call("[99999999]"), -32050, "beyond the L1 head"),
        (call(r#"{"blok": 1}"#), -32602, "unknown param `blok`"),
        ("{".to_owned(), -32700, "Parse error"),
        ("[]".to_owned(), -32600, "Invalid request"),
        (call("[1]").replace("setCheckpoint", "dropDatabase"), -32601, "Method not found"),
    ];
    for (body, code, message) in cases {
        let (http, answer) = http_post(ferry.admin, &body, None).await;
        assert_eq!(http, 200);
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{answer}");
    }
    let (http, _) = http_post(
        ferry.admin,
        &call(&format!("[1, 0, {{\"x\": \"{}\"}}]", "y".repeat(2 << 20))),
        None,
    )
    .await;
    assert_eq!(http, 413);
    let after = ferry.public_client().status().await.unwrap();
    assert_eq!((after.checkpoint, after.pipeline.rewinds), (status.checkpoint, 0));
}
