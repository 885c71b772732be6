//! The process when a part of its world fails: L1 down at start, the ingestion task dying,
//! the listeners out of file descriptors.

use crate::{
    l1proxy::{HoldAt, L1Proxy},
    support::{Ferry, Launch, anvil, check_store, deploy, free_addr, head, http_get, send_many},
};
use alloy::{primitives::U256, providers::ext::AnvilApi};
use ferry_rpc_api::Phase;
use ferry_rpc_api::{AdminApiClient, PublicApiClient};
use jsonrpsee::http_client::HttpClient;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_l1_down_at_start_the_node_serves_what_it_stored_and_reads_on_when_l1_returns() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 5).await;
    let datadir = tempfile::tempdir().unwrap();
    let address = contract.address().to_string();
    let mut ferry = Ferry::against(&anvil, *contract.address(), datadir.path(), &[]);
    ferry.wait_status("5 messages are stored", |status| status.messages_stored == 5).await;
    let stored = ferry.public_client().get_messages(0, None, None).await.unwrap();
    let checkpoint = HttpClient::builder()
        .build(format!("http://{}", ferry.admin))
        .unwrap()
        .get_checkpoint()
        .await
        .unwrap();
    assert!(ferry.terminate().await.success());

    // Nothing listens where L1 was: the listeners come up anyway.
    let dead = format!("http://{}", free_addr());
    let metrics = free_addr();
    let metrics_flag = metrics.to_string();
    let args = ["--l1.rpc-url", &dead, "--l1.contract", &address, "--metrics.addr", &metrics_flag];
    let mut ferry = Ferry::start(datadir.path(), &args);
    let status = ferry
        .wait_status("the upstream shows down", |status| !status.pipeline.upstream.healthy)
        .await;
    assert_eq!(status.pipeline.phase, Phase::Connecting);
    assert_eq!((status.chain_id, status.messages_stored), (31337, 5));
    let served = ferry.public_client().get_messages(0, None, None).await.unwrap();
    assert_eq!(served, stored, "the stored log, entry by entry");
    let admin = HttpClient::builder().build(format!("http://{}", ferry.admin)).unwrap();
    assert_eq!(admin.get_checkpoint().await.unwrap(), checkpoint);
    let (code, body) = http_get(metrics, "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("L1"), "{body}");
    // A stop while L1 is away is a clean one.
    assert!(ferry.terminate().await.success());

    // L1 answers nothing for a while, then comes back: the node reads on from its checkpoint.
    let proxy = L1Proxy::start(vec![anvil.endpoint()]).await;
    let gate = proxy.hold(|_| true, HoldAt::Request);
    let args = ["--l1.rpc-url", proxy.url(), "--l1.contract", &address];
    let mut ferry = Ferry::start(datadir.path(), &args);
    gate.entered().await;
    assert_eq!(ferry.public_client().get_messages(0, None, None).await.unwrap(), served);
    let block = send_many(&contract, 3).await;
    gate.release();
    let status = ferry.wait_status("the new messages are stored", |s| s.messages_stored == 8).await;
    assert!(status.pipeline.upstream.healthy);
    let page = ferry.public_client().get_messages(5, None, None).await.unwrap();
    for (offset, entry) in page.entries.iter().enumerate() {
        let message = &entry.l1.message;
        assert_eq!(entry.seq.0, 5 + offset as u64);
        assert_eq!(message.nonce, U256::from(5 + offset));
        assert_eq!((message.to, message.selector), (U256::from(1), U256::from(2)));
        assert_eq!(message.payload, [U256::from(3)]);
        assert_eq!(entry.l1.origin.block_number, block);
    }
    assert!(ferry.terminate().await.success());
    let nonces = check_store(datadir.path(), 31337, *contract.address());
    assert_eq!(nonces, (0..8).map(U256::from).collect::<Vec<_>>());
}

#[tokio::test]
async fn when_the_ingestion_task_fails_the_node_exits_non_zero_with_the_cause() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 2).await;
    let fails_at = head(&contract).await + 5;
    let datadir = tempfile::tempdir().unwrap();
    let address = contract.address().to_string();
    let url = anvil.ws_endpoint();
    let launch = Launch {
        env: vec![("FERRY_FAULT_PANIC_AT_BLOCK".to_owned(), fails_at.to_string())],
        ..Launch::default()
    };
    let mut ferry =
        Ferry::launch(datadir.path(), &["--l1.rpc-url", &url, "--l1.contract", &address], &launch);
    ferry.wait_status("the messages are stored", |status| status.messages_stored == 2).await;
    contract.provider().anvil_mine(Some(10), None).await.unwrap();
    let exit = ferry.exit().await;
    let stderr = ferry.stderr();
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("FERRY_FAULT_PANIC_AT_BLOCK={fails_at} reached")), "{stderr}");
    assert!(stderr.contains("error: the ingestion task stopped"), "{stderr}");
    // What was committed before is intact.
    assert_eq!(check_store(datadir.path(), 31337, *contract.address()).len(), 2);
}

/// CPU time a process has used, from `/proc/<pid>/stat` (utime + stime).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel counts in USER_HZ, 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}

#[tokio::test]
async fn out_of_file_descriptors_the_listener_neither_spins_nor_floods_the_log() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    send_many(&contract, 1).await;
    let datadir = tempfile::tempdir().unwrap();
    let log = datadir.path().join("ferry.log");
    let store = datadir.path().join("db");
    let address = contract.address().to_string();
    let url = anvil.ws_endpoint();
    let launch = Launch { fd_limit: Some(64), stderr_file: Some(log.clone()), ..Launch::default() };
    let mut ferry =
        Ferry::launch(&store, &["--l1.rpc-url", &url, "--l1.contract", &address], &launch);
    ferry.wait_status("the message is stored", |status| status.messages_stored == 1).await;

    // More sockets than the process may open files: the kernel queues them, accept fails.
    let mut flood = Vec::new();
    for index in 0..120 {
        let connect = tokio::net::TcpStream::connect(ferry.public);
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(socket)) => flood.push(socket),
            other => panic!(
                "socket {index}: {other:?}; the node wrote: {}",
                std::fs::read_to_string(&log).unwrap()
            ),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log_before = std::fs::read_to_string(&log).unwrap().lines().count();
    let (cpu_before, started) = (cpu_time(ferry.child.id()), Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_time(ferry.child.id()) - cpu_before;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().count() - log_before;
    let failures = text.matches("Accept failed").count();
    assert!(failures > 0, "the limit was not reached: {text}");
    // A spinning loop takes a whole core and logs thousands of lines; paused, it wakes a
    // few times a second.
    assert!(cpu < started.elapsed() / 5, "{cpu:?} of CPU in {:?}", started.elapsed());
    assert!(lines <= 20, "{lines} log lines in 3 s: {text}");

    // Sockets given back, the listener serves again, and the node ingests on.
    drop(flood);
    send_many(&contract, 1).await;
    let status = ferry.wait_status("the next message is stored", |s| s.messages_stored == 2).await;
    assert!(status.pipeline.upstream.healthy);
    assert!(ferry.terminate().await.success());
}
