//! Prints a ferry node's messages as they arrive, resuming after any disconnect or restart.
//!
//! `cargo run -p ferry-rpc --example consume -- [ws://127.0.0.1:5050] [FROM_SEQ]`

use ferry_rpc::ResumingSubscriber;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:5050".to_owned());
    let from_seq = args.next().and_then(|seq| seq.parse().ok()).unwrap_or(0);
    eprintln!("consuming {url} from seq {from_seq} (Ctrl-C to stop)");
    let mut subscriber = ResumingSubscriber::new(url, from_seq);
    loop {
        for message in subscriber.next().await {
            let m = &message.l1.message;
            println!(
                "seq {} hash {} from {} to {:#x} selector {:#x} nonce {} fee {} payload {:?} (L1 block {}, log {})",
                message.seq,
                message.hash,
                m.from,
                m.to,
                m.selector,
                m.nonce,
                m.fee,
                m.payload,
                message.l1.origin.block_number,
                message.l1.origin.log_index
            );
        }
        // A real consumer persists subscriber.next_seq() with its own state here.
    }
}
