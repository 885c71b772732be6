//! `rpc-spec/openrpc.json` against the running server: the same methods, examples that
//! validate, real answers that validate, and every documented error code producible.

use crate::support::{Node, raw_post};
use ferry_messaging::test_utils::{Call, ScriptedLog, block_time, scripted_message};
use ferry_primitives::LifecycleKind;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const DOCUMENT_URI: &str = "urn:ferry:openrpc";

fn document() -> Value {
    serde_json::from_str(ferry_rpc_api::OPENRPC_DOCUMENT).expect("rpc-spec/openrpc.json is JSON")
}

/// A validator for the schema at `pointer` (a JSON pointer into the document).
fn validator(document: &Value, pointer: &str) -> Validator {
    let registry = Registry::new()
        .draft(Draft::Draft7)
        .add(DOCUMENT_URI, document.clone())
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_registry(&registry)
        .build(&json!({ "$ref": format!("{DOCUMENT_URI}#{pointer}") }))
        .unwrap_or_else(|error| panic!("schema at {pointer}: {error}"))
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what} does not match the spec: {errors:?}\n{instance}");
}

fn methods_on(document: &Value, listener: &str) -> BTreeSet<String> {
    document["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|method| method["x-listener"] == listener)
        .map(|method| method["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_served_methods_are_the_documented_ones() {
    let node = Node::start(2, None).await;
    let document = document();
    let served = |methods: &[&str]| methods.iter().map(|name| name.to_string()).collect();
    let admin: BTreeSet<String> = served(node.server.admin_methods());
    let mut public: BTreeSet<String> = served(node.server.public_methods());
    assert!(public.remove("rpc.discover"), "the public listener serves rpc.discover");
    assert_eq!(admin, methods_on(&document, "admin"));
    assert_eq!(public, methods_on(&document, "public"));

    // rpc.discover answers the document itself.
    let discovered = node.public_post(r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#).await;
    assert_eq!(discovered.json()["result"], document);
    node.stop().await;
}

#[test]
fn every_example_validates_against_its_method_schemas() {
    let document = document();
    for (m, method) in document["methods"].as_array().unwrap().iter().enumerate() {
        let name = method["name"].as_str().unwrap();
        let examples = method["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{name} has no example");
        let result = validator(&document, &format!("/methods/{m}/result/schema"));
        let params: Vec<_> = method["params"].as_array().unwrap().iter().collect();
        for example in examples {
            assert_valid(&result, &example["result"]["value"], &format!("{name} example result"));
            for param in example["params"].as_array().unwrap() {
                let p = params
                    .iter()
                    .position(|declared| declared["name"] == param["name"])
                    .unwrap_or_else(|| panic!("{name} example uses an undeclared param {param}"));
                let schema = validator(&document, &format!("/methods/{m}/params/{p}/schema"));
                assert_valid(&schema, &param["value"], &format!("{name} example param"));
            }
        }
    }
}

fn request(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string()
}

#[tokio::test]
async fn real_answers_validate_against_the_result_schemas() {
    let node = Node::start(4, None).await;
    // A reorg, so that the log holds notices and status a reorg.
    node.chain.reorg_with_new_messages(2, &[1, 0]);
    node.chain.mine(1);
    node.wait_until_reorgs(1).await;
    // Lifecycle events: a cancellation started, a consumption, and one about a message the
    // node never read.
    let lifecycle = |kind, nonce| ScriptedLog::Lifecycle(kind, scripted_message(nonce));
    node.chain.mine_logs(vec![
        lifecycle(LifecycleKind::CancellationStarted, 0),
        lifecycle(LifecycleKind::Consumed, 1),
        lifecycle(LifecycleKind::Consumed, 999),
    ]);
    node.caught_up().await;
    let hash_of = |nonce| format!("{}", scripted_message(nonce).hash());
    let moment = humantime::format_rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(block_time(3) - 5),
    )
    .to_string();
    let document = document();
    let methods = document["methods"].as_array().unwrap();
    let result_schema = |name: &str| {
        let m = methods.iter().position(|method| method["name"] == name).unwrap();
        validator(&document, &format!("/methods/{m}/result/schema"))
    };
    let calls = [
        ("messaging_getCheckpoint", json!([]), true),
        ("messaging_setCheckpoint", json!([2, null, { "dryRun": true }]), true),
        ("messaging_setCheckpoint", json!({ "block": "0x2", "index": 1 }), true),
        (
            "messaging_setCheckpoint",
            json!([{ "timestamp": block_time(2) }, null, { "dryRun": true }]),
            true,
        ),
        ("messaging_setCheckpoint", json!({ "block": { "timestamp": moment } }), true),
        ("messaging_setCheckpoint", json!([{ "timestamp": 0 }, null, { "dryRun": true }]), true),
        ("messaging_resetCheckpoint", json!([{ "dryRun": true }]), true),
        ("messaging_resetCheckpoint", json!([]), true),
        ("messaging_getCheckpoint", json!([]), true),
        ("messaging_getCheckpointHistory", json!([10]), true),
        ("messaging_status", json!([]), false),
        ("messaging_getMessages", json!([0, 3]), false),
        ("messaging_getMessages", json!({ "fromSeq": "0x5" }), false),
        ("messaging_getMessages", json!([0, 1000]), false),
        ("messaging_getMessages", json!([0, 10, { "finality": "finalized" }]), false),
        (
            "messaging_getMessages",
            json!({ "fromSeq": 2, "options": { "finality": "safe" } }),
            false,
        ),
        ("messaging_getMessages", json!([0, 100, { "executable": true }]), false),
        ("messaging_getMessageState", json!([hash_of(0)]), false),
        ("messaging_getMessageState", json!([hash_of(1)]), false),
        ("messaging_getMessageState", json!([hash_of(999)]), false),
        ("messaging_getMessageState", json!([hash_of(2)]), false),
        ("messaging_getMessageState", json!({ "hash": format!("0x{}", "00".repeat(32)) }), false),
        ("messaging_getReorgs", json!([]), false),
        ("messaging_getReorgs", json!([1]), false),
        (
            "messaging_getMessageByHash",
            json!([format!(
                "{}",
                node.store.messages_from(ferry_primitives::Seq(1), 1).unwrap()[0].hash
            )]),
            false,
        ),
        ("messaging_getMessageByHash", json!([format!("0x{}", "00".repeat(32))]), false),
        (
            "messaging_getMessageByHash",
            json!([format!(
                "{}",
                node.store.messages_from(ferry_primitives::Seq(6), 1).unwrap()[0].hash
            )]),
            false,
        ),
    ];
    for (method, params, admin) in calls {
        node.caught_up().await;
        let body = request(method, params.clone());
        let response =
            if admin { node.admin_post(&body).await } else { node.public_post(&body).await };
        let answer = response.json();
        assert!(answer.get("error").is_none(), "{method} {params}: {answer}");
        assert_valid(&result_schema(method), &answer["result"], &format!("{method} {params}"));
    }
    // A refetch of a transaction the node stored: a dry run, then for real (nothing new).
    let stored = node.store.messages_from(ferry_primitives::Seq(0), 1).unwrap();
    let transaction = format!("{}", stored[0].l1.origin.transaction_hash);
    for params in [json!([transaction, { "dryRun": true }]), json!({ "transaction": transaction })]
    {
        let body = request("messaging_refetchTransaction", params.clone());
        let answer = node.admin_post(&body).await.json();
        assert!(answer.get("error").is_none(), "{params}: {answer}");
        assert_valid(&result_schema("messaging_refetchTransaction"), &answer["result"], "refetch");
        assert_eq!(answer["result"]["stored"], 0, "{answer}");
    }
    // Compare-and-set moves back and forth with the checkpoint just read (reading held), then
    // the trail with what the forward move skipped.
    node.caught_up().await;
    let gate = node.chain.pause(Call::Gather);
    let read = node.checkpoint();
    for (block, expected) in [(1, json!(read)), (3, json!({ "block": 1, "index": 0 }))] {
        let params = json!([block, null, { "expected": expected }]);
        let body = request("messaging_setCheckpoint", params.clone());
        let answer = node.admin_post(&body).await.json();
        assert!(answer.get("error").is_none(), "{params}: {answer}");
        assert_valid(&result_schema("messaging_setCheckpoint"), &answer["result"], "a set if at");
    }
    let history = node.admin_post(&request("messaging_getCheckpointHistory", json!([]))).await;
    let history = history.json();
    assert_valid(&result_schema("messaging_getCheckpointHistory"), &history["result"], "history");
    let skips = history["result"].as_array().unwrap().iter().filter(|e| !e["skipped"].is_null());
    assert!(skips.count() > 0, "a forward move is in the trail: {history}");
    gate.release();
    node.stop().await;
}

#[tokio::test]
async fn every_documented_error_code_can_be_produced() {
    let node = Node::start(3, None).await;
    let document = document();
    let documented: BTreeSet<i64> = document["components"]["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|error| error["code"].as_i64().unwrap())
        .collect();
    let admin = node.server.admin_addr();
    let big = "x".repeat(2 << 20);
    let batch: Vec<Value> = (0..51)
        .map(|id| json!({ "jsonrpc": "2.0", "id": id, "method": "messaging_getCheckpoint" }))
        .collect();
    let producers: Vec<(i64, String)> = vec![
        (-32700, "{".to_owned()),
        (-32600, "[]".to_owned()),
        (-32601, request("messaging_nothing", json!([]))),
        (-32602, request("messaging_setCheckpoint", json!([-1]))),
        (-32007, request("messaging_setCheckpoint", json!([1, 0, { "pad": big }]))),
        (-32010, Value::Array(batch).to_string()),
        (-32050, request("messaging_setCheckpoint", json!([99_999_999]))),
        (-32051, request("messaging_setCheckpoint", json!([1]))),
        (-32052, request("messaging_setCheckpoint", json!([{ "timestamp": u32::MAX }]))),
        (
            -32053,
            request("messaging_setCheckpoint", json!([{ "timestamp": "2025-11-30T12:00:00Z" }])),
        ),
        (
            -32054,
            request(
                "messaging_resetCheckpoint",
                json!([{ "expected": { "block": 2, "index": 0 } }]),
            ),
        ),
        (
            -32055,
            request("messaging_refetchTransaction", json!([format!("0x{}", "ee".repeat(32))])),
        ),
    ];
    let mut produced: BTreeSet<i64> = producers.iter().map(|(code, _)| *code).collect();
    produced.insert(i64::from(ferry_rpc_api::codes::SUBSCRIPTION_LIMIT));
    produced.insert(i64::from(ferry_rpc_api::codes::NOT_LEADER));
    assert_eq!(produced, documented, "every documented code has a producer, and no other");
    for (code, body) in producers {
        if code == -32051 {
            node.store.fail_next_checkpoint_change();
        }
        if code == -32053 {
            node.chain.fail_next(Call::Header, usize::MAX);
        }
        let response = raw_post(admin, body.as_bytes(), None).await;
        let answer = response.json();
        let error = if answer.is_array() { &answer[0]["error"] } else { &answer["error"] };
        assert_eq!(error["code"].as_i64(), Some(code), "{answer}");
    }
    // The failed write changed nothing.
    assert_eq!(node.checkpoint(), Some(ferry_primitives::Position::block_start(4)));
    // A standby of a high-availability group refuses writes, naming the leader.
    assert!(node.store.attach_journal(std::sync::Arc::new(Standby)));
    let answer = raw_post(admin, request("messaging_setCheckpoint", json!([1])).as_bytes(), None)
        .await
        .json();
    assert_eq!(answer["error"]["code"].as_i64(), Some(i64::from(ferry_rpc_api::codes::NOT_LEADER)));
    assert_eq!(answer["error"]["data"]["leader"]["admin"], "10.0.0.2:5051", "{answer}");
    assert_eq!(node.checkpoint(), Some(ferry_primitives::Position::block_start(4)));
    node.stop().await;

    // Subscriptions beyond the limit are refused.
    let limits = ferry_rpc::Limits { max_subscriptions_total: 1, ..ferry_rpc::Limits::default() };
    let chain = ferry_messaging::test_utils::ScriptedCollector::new(0, 100);
    let node = Node::start_with(chain, 1, 1, None, limits).await;
    let client =
        jsonrpsee::ws_client::WsClientBuilder::default().build(node.public_ws_url()).await.unwrap();
    use ferry_rpc_api::PublicApiClient;
    let _first = client.subscribe_messages(None, None).await.unwrap();
    match client.subscribe_messages(None, None).await {
        Err(jsonrpsee::core::ClientError::Call(error)) => {
            assert_eq!(error.code(), ferry_rpc_api::codes::SUBSCRIPTION_LIMIT);
        }
        other => panic!("expected the subscription limit, got {other:?}"),
    }
    node.stop().await;
}

/// The journal of a group member that does not lead.
#[derive(Debug)]
struct Standby;

impl ferry_storage::Journal for Standby {
    fn append(
        &self,
        _after: u64,
        _entry: &ferry_storage::JournalEntry,
    ) -> Result<u64, ferry_storage::JournalRefusal> {
        Err(ferry_storage::JournalRefusal::NotLeader {
            group: "relay".to_owned(),
            leader: Some(ferry_primitives::HaLeader {
                node: "5a0c1f9e22d4".to_owned(),
                admin: "10.0.0.2:5051".to_owned(),
                public: "10.0.0.2:5050".to_owned(),
                term: 41,
            }),
        })
    }
}

#[test]
fn the_schemas_reject_answers_the_server_must_not_give() {
    let document = document();
    let position = validator(&document, "/components/schemas/Position");
    assert!(position.is_valid(&json!({ "block": 1, "index": 0 })));
    for wrong in [
        json!({ "block": -1, "index": 0 }),
        json!({ "block": "0x1", "index": 0 }),
        json!({ "block": 1 }),
    ] {
        assert!(!position.is_valid(&wrong), "{wrong}");
    }
    let status = validator(&document, "/components/schemas/NodeStatus");
    let methods = document["methods"].as_array().unwrap();
    let status_method = methods.iter().find(|method| method["name"] == "messaging_status").unwrap();
    let mut example = status_method["examples"][0]["result"]["value"].clone();
    assert!(status.is_valid(&example));
    example["surprise"] = json!(1);
    assert!(!status.is_valid(&example), "unknown fields are refused");
}
