//! High availability with real `nats-server`s, a real Anvil and real binaries: a group of
//! ferries where the leader is killed at random moments, paused past its lease, and rewound
//! and reorged across a failover. Every check compares the group's stream with the
//! contract's logs, field by field, and every member's log with the stream.

use crate::{
    reorgs::{assert_consumers_hold_the_chain, canonical, message_tx, plain, send},
    scenarios::{admin, caught_up, log},
    sink::{CutProxy, as_written, stream_entries},
    support::{Ferry, Launch, Messaging, anvil, deploy, ferry_once, send_many},
};
use alloy::{
    node_bindings::AnvilInstance,
    primitives::U256,
    providers::{Provider, ext::AnvilApi},
    rpc::types::anvil::{ReorgOptions, TransactionData},
};
use ferry_primitives::{EntryKind, HaRole, HaSnapshot, LogEntry, Position};
use ferry_rpc_api::{AdminApiClient, ChangeOptions, PublicApiClient, codes};
use ferry_test_support::{NatsCluster, NatsServer};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The lease in these tests: failover within seconds, renewals every 0.67 s.
const LEASE: Duration = Duration::from_secs(2);

/// One member: its datadir, and its process while it runs.
struct Member {
    datadir: TempDir,
    ferry: Option<Ferry>,
    /// Its NATS servers.
    url: String,
    /// What each of its processes wrote, in launch order.
    logs: Vec<std::path::PathBuf>,
}

/// A group of ferries on one contract and one set of NATS servers.
struct Group {
    members: Vec<Member>,
    args: Vec<String>,
    contract: alloy::primitives::Address,
    anvil_ws: String,
    logs: TempDir,
}

impl Group {
    /// `size` members on the NATS servers at `urls`.
    fn start(anvil: &AnvilInstance, contract: &Messaging, urls: &str, size: usize) -> Self {
        Self::start_each(anvil, contract, vec![urls.to_owned(); size])
    }

    /// One member on each of `urls` (a member's way to NATS can then be cut alone).
    fn start_each(anvil: &AnvilInstance, contract: &Messaging, urls: Vec<String>) -> Self {
        let replicas = if urls[0].contains(',') { "3" } else { "1" };
        let args = [
            "--sink.stream",
            "HA",
            "--sink.replicas",
            replicas,
            "--ha.group",
            "relay",
            "--ha.lease",
            "2s",
            "--poll-interval",
            "50ms",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut group = Self {
            members: Vec::new(),
            args,
            contract: *contract.address(),
            anvil_ws: anvil.ws_endpoint(),
            logs: tempfile::tempdir().unwrap(),
        };
        for url in urls {
            let datadir = tempfile::tempdir().unwrap();
            group.members.push(Member { datadir, url, ferry: None, logs: Vec::new() });
            group.restart(group.members.len() - 1);
        }
        group
    }

    fn restart(&mut self, index: usize) {
        let contract = self.contract.to_string();
        let mut args = vec!["--l1.rpc-url", &self.anvil_ws, "--l1.contract", &contract];
        let member = &self.members[index];
        args.extend(["--sink.nats-url", member.url.as_str()]);
        args.extend(self.args.iter().map(String::as_str));
        let log = self.logs.path().join(format!("member-{index}-{}.log", member.logs.len()));
        let launch = Launch { stderr_file: Some(log.clone()), ..Launch::default() };
        let ferry = Ferry::launch(member.datadir.path(), &args, &launch);
        let member = &mut self.members[index];
        member.logs.push(log);
        member.ferry = Some(ferry);
    }

    /// The lines about the group in what member `index`'s current process wrote.
    fn group_log(&self, index: usize) -> String {
        let Some(path) = self.members[index].logs.last() else { return String::new() };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("ferry::ha") || line.contains("Leading"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn ferry(&mut self, index: usize) -> &mut Ferry {
        self.members[index].ferry.as_mut().unwrap()
    }

    /// What every running member says of its membership (`None` for one that does not answer).
    async fn roles(&self) -> Vec<Option<HaSnapshot>> {
        let mut roles = Vec::new();
        for member in &self.members {
            let role = match &member.ferry {
                Some(ferry) => {
                    tokio::time::timeout(Duration::from_millis(500), ferry.public_client().status())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .and_then(|status| status.pipeline.ha)
                }
                None => None,
            };
            roles.push(role);
        }
        roles
    }

    /// Waits (30 s at most) until a member other than `not` leads, and its sink is up: which.
    async fn leader(&self, not: Option<usize>) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let roles = self.roles().await;
            let leaders: Vec<usize> = (0..roles.len())
                .filter(|&index| roles[index].as_ref().is_some_and(|ha| ha.role == HaRole::Leader))
                .collect();
            if let [leader] = leaders[..]
                && Some(leader) != not
            {
                return leader;
            }
            assert!(Instant::now() < deadline, "no single leader: {roles:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The group's stream holds every message of the chain once, in L1 order, each field as the
/// contract logged it; every member's log equals the stream, entry by entry.
async fn assert_group_holds_the_chain(
    group: &mut Group,
    leader: usize,
    contract: &Messaging,
    nats: &str,
    messages: usize,
) {
    let status = caught_up(group.ferry(leader), contract).await;
    let last_seq = status.pipeline.last_seq;
    group
        .ferry(leader)
        .wait_status("the stream holds the whole log", |status| {
            status.pipeline.sink.as_ref().is_some_and(|sink| {
                sink.connected && sink.published_seq == last_seq && !sink.fenced
            })
        })
        .await;
    let published = stream_entries(nats, "HA").await;
    let chain = canonical(contract.provider(), *contract.address()).await;
    let mut held = std::collections::HashMap::new();
    for entry in &published {
        assert_eq!(entry.l1.message.hash(), entry.hash, "fields and hash agree: {entry:?}");
        match entry.kind {
            EntryKind::Removed => {
                held.remove(&entry.hash);
            }
            _ => {
                held.insert(entry.hash, (entry.l1.origin, entry.l1.message.fee));
            }
        }
    }
    assert_eq!(held, chain, "a consumer of the stream holds exactly the chain's messages");
    let firsts = published.iter().filter(|entry| entry.kind == EntryKind::Message).count();
    assert_eq!(firsts, messages, "each message once");
    for index in 0..group.members.len() {
        if group.members[index].ferry.is_none() {
            continue;
        }
        let ferry = group.ferry(index);
        ferry
            .wait_status("the member replayed the whole journal", |status| {
                status.pipeline.last_seq == last_seq
            })
            .await;
        let logged: Vec<LogEntry> = log(ferry).await;
        assert_eq!(logged.len(), published.len(), "member {index} holds the stream");
        for (logged, published) in logged.iter().zip(&published) {
            assert_eq!(as_written(logged), as_written(published), "member {index}");
        }
    }
}

/// Sends `transactions` transactions of 100 messages each, mined in one block.
async fn one_block_of_messages(anvil: &AnvilInstance, contract: &Messaging, transactions: usize) {
    let provider = plain(anvil);
    let _: bool = provider
        .raw_request("evm_setBlockGasLimit".into(), (U256::from(1_000_000_000u64),))
        .await
        .unwrap();
    provider.anvil_set_auto_mine(false).await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..transactions {
        let call = contract.sendMessagesToL2(
            U256::from(1),
            U256::from(2),
            vec![U256::from(3)],
            U256::from(100),
        );
        pending.push(call.send().await.unwrap());
    }
    provider.anvil_mine(Some(1), None).await.unwrap();
    provider.anvil_set_auto_mine(true).await.unwrap();
    let mut blocks = std::collections::HashSet::new();
    for sent in pending {
        blocks.insert(sent.get_receipt().await.unwrap().block_number.unwrap());
    }
    assert_eq!(blocks.len(), 1, "mined in one block");
}

/// The most messages one write of the group's journal took.
async fn largest_write(url: &str) -> u64 {
    let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = jetstream.get_stream("ferry-ha-relay-journal").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut largest = 0;
    for sequence in 1..=last {
        let message = stream.direct_get(sequence).await.unwrap();
        let part = message.headers.get("Ferry-Part").unwrap().as_str().to_owned();
        let (_, parts) = part.split_once('/').unwrap();
        largest = largest.max(parts.parse().unwrap());
    }
    largest
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_cross_leader_kills_and_a_paused_leader_once_each() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mut cluster = NatsCluster::start(3);
    let mut group = Group::start(&anvil, &contract, &cluster.urls(), 3);
    let mut leader = group.leader(None).await;
    let sender = {
        let contract = contract.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                send_many(&contract, 100).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let seed = seed.as_nanos() as u64;
    println!("FERRY_SEED={seed}");
    let mut dice = ferry_test_support::Dice::from_env(seed);
    let mut failovers = Vec::new();
    let mut kills = 0;
    // Twelve turns: ten SIGKILLs (one restarted in place at once), one SIGSTOP, and one more
    // kill for every turn the sender still runs.
    while kills < 12 || !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(200 + dice.roll(1_200))).await;
        // One NATS server of three lost for a while: the R3 journal, lease and stream keep a
        // quorum, and members reconnect to the others.
        if kills == 2 {
            cluster.servers[2].kill();
        }
        if kills == 6 {
            cluster.servers[2].restart();
        }
        if kills == 4 {
            // Paused past its lease: another member takes over; resumed, the old leader
            // finds its lease gone and stands by without writing anything.
            group.ferry(leader).signal("-STOP");
            let paused = leader;
            leader = group.leader(Some(paused)).await;
            group.ferry(paused).signal("-CONT");
            group
                .ferry(paused)
                .wait_status("the resumed leader stands by", |status| {
                    status.pipeline.ha.as_ref().is_some_and(|ha| ha.role == HaRole::Standby)
                })
                .await;
        } else if kills == 7 {
            // Killed and started again at once on its datadir: its new process gives up the
            // lease its dead one held, and the group need not wait for it to expire.
            group.ferry(leader).signal("-KILL");
            group.ferry(leader).exit().await;
            group.restart(leader);
            leader = group.leader(None).await;
        } else {
            group.ferry(leader).signal("-KILL");
            let killed_at = Instant::now();
            group.ferry(leader).exit().await;
            let killed = leader;
            group.members[killed].ferry = None;
            leader = group.leader(Some(killed)).await;
            let failover = killed_at.elapsed();
            if failover > 2 * LEASE {
                println!(
                    "slow failover {failover:?} (kill {kills}) to member {leader}:\n{}",
                    group.group_log(leader)
                );
            }
            failovers.push(failover);
            group.restart(killed);
        }
        kills += 1;
    }
    sender.await.unwrap();
    failovers.sort();
    println!(
        "failover (kill to a new leader) over {} kills with a {LEASE:?} lease: p50 {:?}, p99 \
         {:?}, max {:?}",
        failovers.len(),
        percentile(&failovers, 0.5),
        percentile(&failovers, 0.99),
        failovers.last().unwrap()
    );
    assert_group_holds_the_chain(&mut group, leader, &contract, &cluster.servers[0].url(), 10_000)
        .await;
    let published = stream_entries(&cluster.servers[1].url(), "HA").await;
    let nonces: Vec<U256> = published.iter().map(|entry| entry.l1.message.nonce).collect();
    assert_eq!(nonces, (0..10_000u64).map(U256::from).collect::<Vec<_>>(), "in L1 order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_and_a_reorg_across_a_failover_are_honoured_and_standbys_refuse_writes() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let nats = NatsServer::start();
    // Before the group starts, 5,000 messages in one block: the batch holding it is one write
    // of more than a megabyte, which the journal holds in several messages (the server takes
    // at most 1 MiB in one).
    one_block_of_messages(&anvil, &contract, 50).await;
    let mut group = Group::start(&anvil, &contract, &nats.url(), 2);
    let leader = group.leader(None).await;
    let standby = 1 - leader;
    send_many(&contract, 20).await;
    // Two messages in blocks of their own: the reorg below replaces both blocks.
    let provider = plain(&anvil);
    let from = anvil.addresses()[1];
    send(&provider, message_tx(*contract.address(), from, 6_001)).await;
    send(&provider, message_tx(*contract.address(), from, 6_002)).await;
    caught_up(group.ferry(leader), &contract).await;

    // A standby refuses writes, naming the leader's admin address.
    let refused = admin(group.ferry(standby))
        .set_checkpoint(1.into(), None, None)
        .await
        .expect_err("a standby does not write");
    let refused = match refused {
        jsonrpsee::core::client::Error::Call(error) => error,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused.code(), codes::NOT_LEADER, "{refused:?}");
    let leader_admin = group.ferry(leader).admin.to_string();
    assert!(refused.message().contains(&leader_admin), "{}", refused.message());
    let data: serde_json::Value = serde_json::from_str(refused.data().unwrap().get()).unwrap();
    assert_eq!(data["leader"]["admin"], leader_admin.as_str());

    // `ferry checkpoint set` sent to a standby goes on to the leader.
    let current = group.ferry(leader).public_client().status().await.unwrap().checkpoint;
    let at = current.unwrap().block.to_string();
    let standby_admin = group.ferry(standby).admin.to_string();
    let (exit, _, err) =
        ferry_once(&["checkpoint", "set", "--block", &at, "--admin.addr", &standby_admin]);
    assert!(exit.success(), "{err}");
    assert!(err.contains(&format!("sending the change to the leader at {leader_admin}")), "{err}");
    let history = admin(group.ferry(leader)).get_checkpoint_history(Some(1)).await.unwrap();
    assert_eq!(history[0].current, Some(Position::block_start(current.unwrap().block)));

    // The leader rewinds, then dies at once: the new leader reads from there.
    let current = group.ferry(leader).public_client().status().await.unwrap().checkpoint;
    let options = ChangeOptions { dry_run: false, expected: Some(current) };
    admin(group.ferry(leader)).set_checkpoint(2.into(), None, Some(options)).await.unwrap();
    group.ferry(leader).signal("-KILL");
    group.ferry(leader).exit().await;
    group.members[leader].ferry = None;
    // A reorg while no one leads: two blocks replaced, the new ones with other messages.
    provider
        .anvil_reorg(ReorgOptions {
            depth: 2,
            tx_block_pairs: vec![
                (TransactionData::JSON(message_tx(*contract.address(), from, 7_001)), 0),
                (TransactionData::JSON(message_tx(*contract.address(), from, 7_002)), 1),
            ],
        })
        .await
        .unwrap();
    let new_leader = group.leader(Some(leader)).await;
    assert_eq!(new_leader, standby);
    let history = admin(group.ferry(new_leader)).get_checkpoint_history(Some(10)).await.unwrap();
    assert!(
        history.iter().any(|change| change.current == Some(Position::block_start(2))),
        "the rewind reached the new leader: {history:?}"
    );
    send(&provider, message_tx(*contract.address(), from, 7_003)).await;
    group.restart(leader);
    caught_up(group.ferry(new_leader), &contract).await;
    assert_consumers_hold_the_chain(group.ferry(new_leader), &contract).await;
    assert!(largest_write(&nats.url()).await > 1, "a write was cut into several messages");
    let messages = canonical(contract.provider(), *contract.address()).await.len();
    assert_eq!(messages, 5_023);
    let orphaned = 2; // the two messages of the blocks the reorg replaced
    assert_group_holds_the_chain(
        &mut group,
        new_leader,
        &contract,
        &nats.url(),
        messages + orphaned,
    )
    .await;

    // Stopped cleanly, a leader gives its lease up: the lease names no one, or the other.
    let stopping = group.roles().await[new_leader].clone().unwrap();
    assert!(group.ferry(new_leader).terminate().await.success());
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let lease = jetstream.get_key_value("ferry-ha-relay").await.unwrap();
    let holder = lease.get("leader").await.unwrap();
    assert!(
        holder.is_none_or(|holder| !String::from_utf8_lossy(&holder).contains(&stopping.node)),
        "the stopped leader gave its lease up"
    );
    group.members[new_leader].ferry = None;
    let last = group.leader(Some(new_leader)).await;
    assert_eq!(last, leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_nats_stands_down_and_the_group_goes_on_without_it() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let nats = NatsServer::start();
    let ways = [CutProxy::start(nats.addr()).await, CutProxy::start(nats.addr()).await];
    let mut group = Group::start_each(&anvil, &contract, ways.iter().map(CutProxy::url).collect());
    let leader = group.leader(None).await;
    send_many(&contract, 50).await;
    caught_up(group.ferry(leader), &contract).await;

    // Partitioned from NATS while L1 goes on: it stops writing before its lease can expire,
    // and the other member takes over once it has.
    ways[leader].partition();
    let partitioned_at = Instant::now();
    send_many(&contract, 50).await;
    let status = group
        .ferry(leader)
        .wait_status("the partitioned leader stands by", |status| {
            status
                .pipeline
                .ha
                .as_ref()
                .is_some_and(|ha| ha.role == HaRole::Standby && !ha.connected)
        })
        .await;
    let stood_down = partitioned_at.elapsed();
    let new_leader = group.leader(Some(leader)).await;
    println!("stood down after {stood_down:?}; a new leader after {:?}", partitioned_at.elapsed());
    assert!(stood_down < LEASE, "it stood down before its lease could expire: {stood_down:?}");
    let isolated_last_seq = status.pipeline.last_seq;
    caught_up(group.ferry(new_leader), &contract).await;
    let cut_off = group.ferry(leader).public_client().status().await.unwrap();
    assert_eq!(cut_off.pipeline.last_seq, isolated_last_seq, "cut off, it wrote nothing");
    assert!(cut_off.pipeline.ha.unwrap().last_error.is_some());

    // Healed: it replays what the group wrote meanwhile, and holds the stream.
    ways[leader].heal();
    send_many(&contract, 10).await;
    assert_group_holds_the_chain(&mut group, new_leader, &contract, &nats.url(), 110).await;
    assert_eq!(group.roles().await[leader].as_ref().unwrap().role, HaRole::Standby);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_stops_every_write_and_the_group_goes_on_after_it() {
    let anvil = anvil();
    let contract = deploy(&anvil).await;
    let mut nats = NatsServer::start();
    let mut group = Group::start(&anvil, &contract, &nats.url(), 2);
    let leader = group.leader(None).await;
    send_many(&contract, 20).await;
    caught_up(group.ferry(leader), &contract).await;
    let before = group.ferry(leader).public_client().status().await.unwrap().pipeline.last_seq;

    // Every NATS server gone: no member can renew or append, so none leads and nothing is
    // written anywhere, while L1 goes on and both members still serve what they hold.
    nats.kill();
    for index in 0..2 {
        group
            .ferry(index)
            .wait_status("no member leads without NATS", |status| {
                status.pipeline.ha.as_ref().is_some_and(|ha| ha.role == HaRole::Standby)
            })
            .await;
    }
    send_many(&contract, 30).await;
    tokio::time::sleep(2 * LEASE).await;
    for index in 0..2 {
        let status = group.ferry(index).public_client().status().await.unwrap();
        assert_eq!(status.pipeline.last_seq, before, "member {index} wrote nothing");
        let ha = status.pipeline.ha.unwrap();
        assert!(ha.role == HaRole::Standby && !ha.connected, "{ha:?}");
        assert_eq!(log(group.ferry(index)).await.len() as u64, before.unwrap().0 + 1);
    }

    // Back: a member leads, reads what L1 logged meanwhile, and every member holds it.
    nats.restart();
    let leader = group.leader(None).await;
    assert_group_holds_the_chain(&mut group, leader, &contract, &nats.url(), 50).await;
}
