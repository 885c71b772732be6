//! How flags, variables and the file resolve, and how bad values are named.

use super::*;
use crate::Cli;
use alloy::primitives::Address;
use clap::Parser;
use ferry_messaging::{L1Mode, VerifyLogs};

const CONTRACT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

fn parse(args: &[&str]) -> Result<Cli, String> {
    Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
        .map_err(|error| error.to_string())
}

fn resolve(args: &[&str]) -> Result<NodeConfig, String> {
    parse(args)?.node.resolve().map_err(|error| error.to_string())
}

#[test]
fn defaults_fill_what_is_not_given() {
    let config =
        resolve(&["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT]).unwrap();
    assert_eq!(config.l1.as_ref().unwrap().contract, CONTRACT.parse::<Address>().unwrap());
    assert_eq!(config.confirmations, Confirmations::Blocks(0));
    assert_eq!(config.poll_interval, Duration::from_secs(1));
    assert_eq!(config.max_block_range, 1_000);
    assert_eq!(config.reorg_window, 128);
    assert_eq!(config.rpc_addr, "127.0.0.1:5050".parse().unwrap());
    assert_eq!(config.admin_addr, "127.0.0.1:5051".parse().unwrap());
    assert_eq!(config.rpc_limits, ferry_rpc::Limits::default());
    assert_eq!(config.public_access, ferry_rpc::AccessRules::default());
    assert_eq!(config.admin_access.hosts, ferry_rpc::Allowed::Only(vec!["localhost".into()]));
    assert_eq!(config.admin_access.origins, ferry_rpc::Allowed::None);
    assert_eq!(config.datadir, Some(PathBuf::from("ferry-data")));
    assert_eq!(config.dev_messages, None);
}

#[test]
fn missing_values_name_the_flag_the_variable_and_the_key() {
    let error = resolve(&["--l1.contract", CONTRACT]).unwrap_err();
    assert!(error.contains("--l1.rpc-url is required"), "{error}");
    assert!(error.contains("FERRY_L1_RPC_URL") && error.contains("l1.rpc-url"), "{error}");
    let error = resolve(&["--l1.rpc-url", "ws://127.0.0.1:8545"]).unwrap_err();
    assert!(error.contains("--l1.contract is required"), "{error}");
}

#[test]
fn bad_values_name_the_flag_and_the_value() {
    let base = ["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT];
    let cases: &[(&[&str], &str)] = &[
        (&["--from-block", "-5"], "-5"),
        (&["--from-block", "12.5"], "12.5"),
        (&["--confirmations", "soon"], "soon"),
        (&["--poll-interval", "fast"], "fast"),
        (&["--poll-interval", "0s"], "0s"),
        (&["--l1.request-timeout", "0s"], "0s"),
        (&["--l1.request-timeout", "never"], "never"),
        (&["--l1.max-rps", "0"], "0"),
        (&["--l1.max-rps", "fast"], "fast"),
        (&["--max-block-range", "0"], "0"),
        (&["--reorg-window", "0"], "0"),
        (&["--rpc.max-connections", "0"], "0"),
        (&["--rpc.max-subscriptions", "many"], "many"),
        (&["--rpc.max-subscriptions-per-peer", "0"], "0"),
        (&["--rpc.max-page-bytes", "10"], "10"),
        (&["--rpc.idle-timeout", "soon"], "soon"),
        (&["--rpc.addr", "localhost"], "localhost"),
        (&["--log.format", "xml"], "xml"),
    ];
    for (extra, value) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let error = resolve(&args).unwrap_err();
        assert!(error.contains(extra[0]) && error.contains(value), "{extra:?}: {error}");
    }
    let error =
        resolve(&["--l1.rpc-url", "ftp://example.org", "--l1.contract", CONTRACT]).unwrap_err();
    assert!(error.contains("--l1.rpc-url") && error.contains("ftp://example.org"), "{error}");
    let error = resolve(&["--l1.rpc-url", "http://x", "--l1.contract", "0x1234"]).unwrap_err();
    assert!(error.contains("--l1.contract") && error.contains("0x1234"), "{error}");
}

#[test]
fn conflicting_values_are_refused_naming_both() {
    let error = parse(&["--dev", "--l1.rpc-url", "http://127.0.0.1:8545"]).unwrap_err();
    assert!(error.contains("--dev") && error.contains("--l1.rpc-url"), "{error}");
    let error = parse(&["--dev.messages", "3"]).unwrap_err();
    assert!(error.contains("--dev"), "{error}");
    let error =
        resolve(&["--dev", "--rpc.addr", "127.0.0.1:7000", "--admin.addr", "127.0.0.1:7000"])
            .unwrap_err();
    assert!(
        error.contains("--rpc.addr")
            && error.contains("--admin.addr")
            && error.contains("127.0.0.1:7000"),
        "{error}"
    );
}

#[test]
fn the_sink_comes_from_flags_over_the_file_and_is_off_without_a_url() {
    assert_eq!(resolve(&["--dev"]).unwrap().sink, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        "[sink]\nnats-url = \"nats://a:4222,nats://b:4222\"\nstream = \"LOG\"\nreplicas = 3\n\
         ready-max-lag = 50\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let config = resolve(&["--dev", "--config", path, "--sink.stream", "MINE"]).unwrap();
    let sink = config.sink.unwrap();
    assert_eq!((sink.url.as_str(), sink.stream.as_str()), ("nats://a:4222,nats://b:4222", "MINE"));
    assert_eq!((sink.replicas, sink.subject_prefix.as_str()), (3, "ferry.log"));
    assert_eq!(config.sink_ready_max_lag, Some(50));
    let error =
        resolve(&["--dev", "--sink.nats-url", "nats://x", "--sink.replicas", "7"]).unwrap_err();
    assert!(error.contains("sink.replicas") && error.contains('7'), "{error}");
}

#[test]
fn a_group_needs_the_sink_a_plain_name_and_a_sane_lease() {
    assert_eq!(resolve(&["--dev"]).unwrap().ha, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        "[sink]\nnats-url = \"nats://a:4222\"\n[ha]\ngroup = \"relay\"\nlease = \"9s\"\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let ha = resolve(&["--dev", "--config", path]).unwrap().ha.unwrap();
    assert_eq!((ha.group.as_str(), ha.lease), ("relay", std::time::Duration::from_secs(9)));
    let ha = resolve(&["--dev", "--config", path, "--ha.lease", "3s"]).unwrap().ha.unwrap();
    assert_eq!(ha.lease, std::time::Duration::from_secs(3));
    let sink = ["--dev", "--sink.nats-url", "nats://x"];
    assert_eq!(
        resolve(&[&sink[..], &["--ha.group", "g"]].concat()).unwrap().ha.unwrap().lease,
        std::time::Duration::from_secs(5),
        "5 s by default"
    );
    let error = resolve(&["--dev", "--ha.group", "relay"]).unwrap_err();
    assert!(error.contains("ha.group") && error.contains("--sink.nats-url"), "{error}");
    let error = resolve(&[&sink[..], &["--ha.group", "a.b"]].concat()).unwrap_err();
    assert!(error.contains("\"a.b\"") || error.contains("a.b"), "{error}");
    for lease in ["500ms", "10m"] {
        let error =
            resolve(&[&sink[..], &["--ha.group", "g", "--ha.lease", lease]].concat()).unwrap_err();
        assert!(error.contains("ha.lease") && error.contains("1s to 300s"), "{error}");
    }
}

#[test]
fn the_file_fills_in_under_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            "from-block = 77\nconfirmations = \"safe\"\npoll-interval = \"250ms\"\nreorg-window = 300\n\
             [l1]\nrpc-url = \"wss://l1.example\"\ncontract = \"{CONTRACT}\"\nchain-id = 11155111\n\
             [rpc]\nmax-subscriptions = 5000\nidle-timeout = \"30s\"\nvhosts = [\"*\"]\n\
             cors = [\"https://Dash.example/\"]\n\
             [admin]\naddr = \"127.0.0.1:6001\"\n[log]\nformat = \"json\"\n"
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let config =
        resolve(&["--config", path, "--from-block", "0x10", "--rpc.max-connections", "2000"])
            .unwrap();
    let limits = config.rpc_limits;
    assert_eq!((limits.max_connections, limits.max_subscriptions_total), (2_000, 5_000));
    assert_eq!(limits.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.public_access.hosts, ferry_rpc::Allowed::Any);
    assert_eq!(
        config.public_access.origins,
        ferry_rpc::Allowed::Only(vec!["https://dash.example".into()])
    );
    assert_eq!(config.admin_access.origins, ferry_rpc::Allowed::None);
    let l1 = config.l1.unwrap();
    assert_eq!(
        (l1.rpc_urls.as_slice(), l1.chain_id),
        (&["wss://l1.example".to_owned()][..], Some(11155111))
    );
    assert_eq!(config.from_block, 16, "the flag wins over the file");
    assert_eq!(config.confirmations, Confirmations::Safe);
    assert_eq!(config.poll_interval, Duration::from_millis(250));
    assert_eq!(config.reorg_window, 300);
    assert_eq!(config.admin_addr, "127.0.0.1:6001".parse().unwrap());
    assert_eq!(config.log_format, LogFormat::Json);

    std::fs::write(dir.path().join("bad.toml"), "[l1]\nrpc-urll = \"http://x\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let error = resolve(&["--config", bad.to_str().unwrap()]).unwrap_err();
    assert!(error.contains("rpc-urll") && error.contains("bad.toml"), "{error}");
    std::fs::write(&bad, "[rpc]\nmax-connections = 0\n").unwrap();
    let l1 = ["--l1.rpc-url", "http://127.0.0.1:8545", "--l1.contract", CONTRACT];
    let error = resolve(&[&l1[..], &["--config", bad.to_str().unwrap()]].concat()).unwrap_err();
    assert!(error.contains("rpc.max-connections") && error.contains("at least 1"), "{error}");
    std::fs::write(&bad, "confirmations = \"soon\"\n").unwrap();
    let error = resolve(&["--config", bad.to_str().unwrap()]).unwrap_err();
    assert!(error.contains("soon"), "{error}");
    let error = resolve(&["--config", "/nonexistent/ferry.toml"]).unwrap_err();
    assert!(error.contains("/nonexistent/ferry.toml"), "{error}");
}

#[test]
fn host_and_origin_lists_are_comma_separated_and_star_allows_any() {
    let config = resolve(&[
        "--dev",
        "--admin.vhosts",
        "Node.Internal,ops.internal",
        "--admin.origins",
        "https://ops.example",
        "--rpc.cors",
        "*",
        "--rpc.max-subscriptions-per-peer",
        "8",
    ])
    .unwrap();
    assert_eq!(
        config.admin_access.hosts,
        ferry_rpc::Allowed::Only(vec!["node.internal".into(), "ops.internal".into()])
    );
    assert_eq!(
        config.admin_access.origins,
        ferry_rpc::Allowed::Only(vec!["https://ops.example".into()])
    );
    assert_eq!(config.public_access.origins, ferry_rpc::Allowed::Any);
    assert_eq!(config.public_access.hosts, ferry_rpc::AccessRules::default().hosts);
    assert_eq!(config.rpc_limits.max_subscriptions_per_peer, 8);
}

#[test]
fn dev_mode_needs_no_l1_and_sends_three_messages_by_default() {
    let config = resolve(&["--dev"]).unwrap();
    assert_eq!((config.l1, config.datadir, config.dev_messages), (None, None, Some(3)));
    assert_eq!(resolve(&["--dev", "--dev.messages", "0"]).unwrap().dev_messages, Some(0));
}

#[test]
fn operator_commands_parse_their_values() {
    let cli = parse(&["checkpoint", "set", "--block", "0x3e8", "--dry-run", "--json"]).unwrap();
    match cli.command {
        Some(crate::Command::Checkpoint {
            action: crate::CheckpointCommand::Set { block, index, time, dry_run, if_at },
            admin,
        }) => {
            assert_eq!((block, index, dry_run, admin.json), (Some(1_000), None, true, true));
            assert_eq!((time, if_at), (None, None));
        }
        other => panic!("{other:?}"),
    }
    let if_at = |value: &str| match parse(&["checkpoint", "set", "--block", "1", "--if-at", value])
        .map(|cli| cli.command)
    {
        Ok(Some(crate::Command::Checkpoint {
            action: crate::CheckpointCommand::Set { if_at, .. },
            ..
        })) => Ok(if_at),
        Ok(other) => panic!("{other:?}"),
        Err(error) => Err(error),
    };
    use ferry_primitives::Position;
    assert_eq!(if_at("162"), Ok(Some(Some(Position::block_start(162)))));
    assert_eq!(if_at("0xa2:3"), Ok(Some(Some(Position::new(162, 3)))));
    assert_eq!(if_at("none"), Ok(Some(None)));
    let error = if_at("162:x").unwrap_err();
    assert!(error.contains("--if-at") && error.contains("index \"x\""), "{error}");
    let error = parse(&["checkpoint", "set", "--block", "-1"]).unwrap_err();
    assert!(error.contains("--block") && error.contains("-1"), "{error}");
    assert!(parse(&["checkpoint", "set"]).unwrap_err().contains("--block"));
    let cli = parse(&["checkpoint", "set", "--time", "2026-11-30T12:00:00Z"]).unwrap();
    match cli.command {
        Some(crate::Command::Checkpoint {
            action: crate::CheckpointCommand::Set { block, time, .. },
            ..
        }) => {
            assert_eq!((block, time), (None, Some(ferry_rpc_api::Timestamp(1_796_040_000))));
        }
        other => panic!("{other:?}"),
    }
    let error = parse(&["checkpoint", "set", "--time", "noon"]).unwrap_err();
    assert!(error.contains("--time") && error.contains("noon"), "{error}");
    let both = parse(&["checkpoint", "set", "--time", "5", "--block", "5"]).unwrap_err();
    assert!(both.contains("cannot be used with"), "{both}");
}

#[test]
fn several_endpoints_come_as_a_list_with_their_mode_and_a_bad_mode_names_its_value() {
    let urls = "http://a.example:8545, https://b.example/KEY";
    let config = resolve(&["--l1.rpc-url", urls, "--l1.contract", CONTRACT]).unwrap();
    let l1 = config.l1.unwrap();
    assert_eq!(l1.rpc_urls, ["http://a.example:8545", "https://b.example/KEY"]);
    assert_eq!(config.l1_trust.mode, L1Mode::Failover, "failover is the default");
    assert_eq!(config.l1_trust.verify_logs, VerifyLogs::Bloom, "bloom is the default");
    assert_eq!(config.l1_trust.request_timeout, Duration::from_secs(30), "30 s by default");
    assert_eq!(config.l1_trust.max_rps, None, "no limit by default");

    // From the file, a TOML array; quorum without K is a majority of the endpoints.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            "[l1]\nrpc-url = [\"http://a:1\", \"http://b:2\", \"http://c:3\"]\n\
             contract = \"{CONTRACT}\"\nmode = \"quorum\"\nverify-logs = \"receipts\"\n\
             request-timeout = \"5s\"\nmax-rps = 25\n"
        ),
    )
    .unwrap();
    let config = resolve(&["--config", path.to_str().unwrap()]).unwrap();
    assert_eq!(config.l1.unwrap().rpc_urls.len(), 3);
    assert_eq!(config.l1_trust.mode, L1Mode::Quorum(2));
    assert_eq!(config.l1_trust.verify_logs, VerifyLogs::Receipts);
    assert_eq!(config.l1_trust.request_timeout, Duration::from_secs(5));
    assert_eq!(config.l1_trust.max_rps, Some(25));

    let base = ["--l1.rpc-url", urls, "--l1.contract", CONTRACT];
    let error = resolve(&[&base[..], &["--l1.mode", "quorum", "--l1.quorum", "3"]].concat());
    let error = error.unwrap_err();
    assert!(error.contains("l1.quorum") && error.contains('3') && error.contains("(2)"), "{error}");
    let error = resolve(&[&base[..], &["--l1.mode", "failover", "--l1.quorum", "2"]].concat());
    let error = error.unwrap_err();
    assert!(error.contains("--l1.quorum") && error.contains("quorum mode only"), "{error}");
    let error = resolve(&[&base[..], &["--l1.mode", "majority"]].concat()).unwrap_err();
    assert!(error.contains("majority") && error.contains("failover, quorum"), "{error}");
    std::fs::write(&path, "[l1]\nmax-rps = 0\n").unwrap();
    let error = resolve(&[&base[..], &["--config", path.to_str().unwrap()]].concat());
    let error = error.unwrap_err();
    assert!(error.contains("l1.max-rps") && error.contains("at least 1"), "{error}");
    std::fs::write(&path, "[l1]\nmode = \"majority\"\n").unwrap();
    let error = resolve(&[&base[..], &["--config", path.to_str().unwrap()]].concat());
    let error = error.unwrap_err();
    assert!(error.contains("majority") && error.contains("failover or quorum"), "{error}");
    let error = resolve(&[&base[..], &["--l1.verify-logs", "trust"]].concat()).unwrap_err();
    assert!(error.contains("trust") && error.contains("bloom, receipts or off"), "{error}");
}
