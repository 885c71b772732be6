//! Round trips through the typed clients: every method of both listeners against a running node.

use crate::support::Node;
use ferry_primitives::Position;
use ferry_rpc_api::{AdminApiClient, ChangeAction, ChangeOptions, Phase, PublicApiClient};
use jsonrpsee::core::client::ClientT;

const DRY_RUN: Option<ChangeOptions> = Some(ChangeOptions { dry_run: true, expected: None });

/// get, set, reset and history through one typed client, checking the store and the cursor.
async fn drive(node: &Node, client: &impl ClientT) {
    assert_eq!(
        AdminApiClient::get_checkpoint(client).await.unwrap(),
        Some(Position::block_start(6))
    );

    // A preview changes nothing.
    let preview = client.set_checkpoint(2.into(), None, DRY_RUN).await.unwrap();
    assert!(preview.dry_run);
    let effect = preview.effect.unwrap();
    assert_eq!(
        (effect.action, effect.from_block, effect.to_block),
        (ChangeAction::Rescan, Some(2), Some(5))
    );
    assert_eq!(effect.stored_messages, 8);
    assert_eq!(node.checkpoint(), Some(Position::block_start(6)));

    // A set is applied to the store and to the running task before it returns.
    let change = client.set_checkpoint(3.into(), Some(1), None).await.unwrap();
    assert_eq!(change.previous, Some(Position::block_start(6)));
    assert_eq!(change.current, Some(Position::new(3, 1)));
    assert_eq!(change.rewind_applied, Some(true));
    assert!(!change.dry_run && change.effect.is_none());
    node.caught_up().await;

    let change = client.reset_checkpoint(None).await.unwrap();
    assert_eq!((change.previous, change.current), (Some(Position::block_start(6)), None));
    node.caught_up().await;

    let history = client.get_checkpoint_history(Some(2)).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].method, "messaging_resetCheckpoint");
    assert_eq!(history[1].current, Some(Position::new(3, 1)));
    assert!(history[0].caller.starts_with("127.0.0.1:"), "{:?}", history[0]);
}

#[tokio::test]
async fn checkpoint_round_trips_over_http_and_websocket() {
    let node = Node::start(5, None).await;
    drive(&node, &node.admin_http()).await;
    drive(&node, &node.admin_ws().await).await;

    // Everything re-scanned was recognised; nothing was stored twice.
    let status = node.public_http().status().await.unwrap();
    assert_eq!(status.messages_stored, 10);
    // Per client: from (3, 1), five messages found again; after the reset, all ten.
    assert_eq!(status.pipeline.duplicates_skipped, 2 * (5 + 10));
    assert_eq!(status.checkpoint, Some(Position::block_start(6)));
    assert_eq!(status.pipeline.cursor, Some(Position::block_start(6)));
    assert_eq!(status.pipeline.phase, Phase::Idle);
    assert_eq!((status.chain_id, status.from_block, status.lag_blocks), (31337, 0, Some(0)));
    assert_eq!(status.version, "test");
    node.stop().await;
}
