//! Prints a ferry node's log as it arrives (messages, and what reorgs removed and included
//! again), resuming after any disconnect or restart.
//!
//! `cargo run -p ferry-rpc-api --example consume-rpc -- [ws://127.0.0.1:5050] [FROM_SEQ] [latest|safe|finalized]`

use ferry_rpc_api::{Finality, ResumingSubscriber};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:5050".to_owned());
    let from_seq = args.next().and_then(|seq| seq.parse().ok()).unwrap_or(0);
    let finality: Finality = match args.next().map(|text| text.parse()) {
        Some(Ok(finality)) => finality,
        Some(Err(error)) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
        None => Finality::Latest,
    };
    eprintln!("consuming {url} from seq {from_seq}, {finality} blocks (Ctrl-C to stop)");
    let mut subscriber = ResumingSubscriber::new(url, from_seq).with_finality(finality);
    loop {
        for entry in subscriber.next().await {
            let m = &entry.l1.message;
            println!(
                "seq {} {:?} of seq {} hash {} from {} to {:#x} selector {:#x} nonce {} fee {} payload {:?} (L1 block {}, log {}){}",
                entry.seq,
                entry.kind,
                entry.message_seq,
                entry.hash,
                m.from,
                m.to,
                m.selector,
                m.nonce,
                m.fee,
                m.payload,
                entry.l1.origin.block_number,
                entry.l1.origin.log_index,
                if entry.removed { " REMOVED" } else { "" }
            );
        }
        // A real consumer persists subscriber.next_seq() with its own state here.
    }
}
