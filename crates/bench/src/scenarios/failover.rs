//! `failover`: a group of three release ferries on a three-server NATS cluster, messages
//! arriving all along; the leader is killed (SIGKILL) again and again: the time from the kill
//! to another member leading, and to the first entry that member publishes.

use crate::{
    chain::wallet_provider,
    process::NodeProcess,
    stats::{millis, percentile},
};
use alloy::primitives::U256;
use ferry_contracts::FerryMessaging;
use ferry_primitives::HaRole;
use ferry_test_support::NatsCluster;
use std::time::{Duration, Instant};

/// The stream the group publishes to.
const STREAM: &str = "FAILOVER";

pub(crate) async fn failover(kills: usize, lease: Duration) {
    let anvil = ferry_test_support::anvil(&[]);
    let contract = FerryMessaging::deploy(wallet_provider(&anvil)).await.unwrap();
    let cluster = NatsCluster::start(3);
    let (urls, lease_arg) = (cluster.urls(), format!("{}ms", lease.as_millis()));
    let args = [
        "--sink.nats-url",
        &urls,
        "--sink.stream",
        STREAM,
        "--sink.replicas",
        "3",
        "--ha.group",
        "bench",
        "--ha.lease",
        &lease_arg,
        "--poll-interval",
        "100ms",
    ];
    let url = anvil.ws_endpoint();
    let address = *contract.address();
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(Some(NodeProcess::start_with(&url, address, 16, &args).await));
    }
    // A message every 100 ms, one block each, for as long as the run lasts.
    let sender = tokio::spawn(async move {
        for i in 0u64.. {
            let call = contract.sendMessageToL2(U256::from(1), U256::from(2), vec![U256::from(i)]);
            let _ = call.send().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let jetstream =
        async_nats::jetstream::new(async_nats::connect(cluster.servers[0].url()).await.unwrap());
    // Warmed up: every member reaches the group and has read the journal.
    for member in members.iter().flatten() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ha = member.try_status().await.and_then(|status| status.pipeline.ha);
            if ha.is_some_and(|ha| ha.connected && ha.journal_last.is_some()) {
                break;
            }
            assert!(Instant::now() < deadline, "a member did not join the group within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (mut leading, mut publishing) = (Vec::new(), Vec::new());
    for _ in 0..kills {
        let leader = leader_of(&members, None).await;
        // Settled: the stream holds what the leader stored.
        tokio::time::sleep(lease).await;
        let published = stream_last(&jetstream).await;
        let killed_at = Instant::now();
        members[leader] = None; // SIGKILL
        let next = leader_of(&members, Some(leader)).await;
        leading.push(killed_at.elapsed());
        while stream_last(&jetstream).await <= published {
            assert!(killed_at.elapsed() < Duration::from_secs(60), "nothing published");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        publishing.push(killed_at.elapsed());
        eprintln!("kill {}: member {next} leads", leading.len());
        // The killed member comes back on a fresh datadir and replays the journal.
        members[leader] = Some(NodeProcess::start_with(&url, address, 16, &args).await);
    }
    sender.abort();
    let max = |durations: &[Duration]| durations.iter().max().copied().unwrap_or_default();
    let row = |durations: &mut Vec<Duration>| {
        format!(
            "{} | {} | {}",
            millis(percentile(durations, 50)),
            millis(percentile(durations, 99)),
            millis(max(durations))
        )
    };
    println!(
        "\n## Failover: 3 ferries (release), 3 nats-servers (R3), a message every 100 ms, \
         {kills} leader kills, lease {lease:?}\n"
    );
    println!("| from the kill to | p50 | p99 | max |\n| --- | --- | --- | --- |");
    println!("| another member leading | {} |", row(&mut leading));
    println!("| its first publish | {} |", row(&mut publishing));
}

/// The member that leads (not `not`), once exactly one does.
async fn leader_of(members: &[Option<NodeProcess>], not: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut leaders = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let Some(member) = member else { continue };
            let role = member.try_status().await.and_then(|status| status.pipeline.ha);
            if role.is_some_and(|ha| ha.role == HaRole::Leader) {
                leaders.push(index);
            }
        }
        if let [leader] = leaders[..]
            && Some(leader) != not
        {
            return leader;
        }
        assert!(Instant::now() < deadline, "no single leader within 60 s: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn stream_last(jetstream: &async_nats::jetstream::Context) -> u64 {
    let mut stream = jetstream.get_stream(STREAM).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}
