//! A consumer on any machine: reads ferry's log from the JetStream stream, from any seq, with
//! a durable consumer that acknowledges each entry, and applies it as the log-subscription
//! convention says.
//!
//! ```sh
//! cargo run -p ferry-sink --example consume -- nats://127.0.0.1:4222 FERRY bridge-ui 0
//! ```
//!
//! Arguments: the NATS URL, the stream, the durable consumer's name, the first seq. ferry's
//! seq `n` is stream sequence `n + 1`. A durable consumer remembers what it acknowledged:
//! started again with the same name it goes on where it stopped (the seq is then ignored).

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use ferry_primitives::LogEntry;
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, stream, durable, from_seq] = args.as_slice() else {
        return Err("usage: consume <nats-url> <stream> <durable-name> <from-seq>".into());
    };
    let from_seq: u64 = from_seq.parse()?;
    let jetstream = jetstream::new(async_nats::connect(url.as_str()).await?);
    let stream = jetstream.get_stream(stream).await?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from_seq + 1 },
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let entry: LogEntry = serde_json::from_slice(&message.payload)?;
        // Put the message on `removed: false`, drop it on `removed: true`; a `stateChanged`
        // entry sets its state to `change.current`.
        println!(
            "seq {} {:?} message {} hash {} block {}",
            entry.seq, entry.kind, entry.message_seq, entry.hash, entry.l1.origin.block_number
        );
        message.ack().await.map_err(|error| error.to_string())?;
    }
    Ok(())
}
