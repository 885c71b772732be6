// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title ferry's own L1 messaging contract
/// @notice The part of Starknet's StarknetMessaging that ferry reads, written by this project
/// for dev mode, tests and benchmarks: `sendMessageToL2` emits `LogMessageToL2` and records
/// `fee + 1` under the message hash, as the real contract does. It adds a helper that sends
/// several messages in one transaction and one that emits an undecodable log.
contract FerryMessaging {
    event LogMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce,
        uint256 fee
    );

    /// @notice `fee + 1` for every message sent, under its L1->L2 message hash.
    mapping(bytes32 => uint256) public l1ToL2Messages;

    /// @notice The nonce the next message gets.
    uint256 public l1ToL2MessageNonce;

    /// @notice Sends one message to L2; the fee is `msg.value`.
    function sendMessageToL2(uint256 toAddress, uint256 selector, uint256[] calldata payload)
        external
        payable
        returns (bytes32, uint256)
    {
        return _send(toAddress, selector, payload, msg.value);
    }

    /// @notice Sends `count` messages in one transaction, all with the same payload and
    /// consecutive nonces; `msg.value` is split evenly, the remainder going to the last one.
    function sendMessagesToL2(
        uint256 toAddress,
        uint256 selector,
        uint256[] calldata payload,
        uint256 count
    ) external payable {
        require(count > 0, "count must be positive");
        uint256 fee = msg.value / count;
        for (uint256 i = 0; i + 1 < count; i++) {
            _send(toAddress, selector, payload, fee);
        }
        _send(toAddress, selector, payload, msg.value - fee * (count - 1));
    }

    /// @notice Emits a log with LogMessageToL2's topics whose data does not decode, as a
    /// broken or hostile contract could; ferry must report and skip it, never drop it silently.
    function emitMalformedLog() external {
        bytes32 topic = LogMessageToL2.selector;
        assembly {
            mstore(0, 0xbad)
            log4(0, 32, topic, caller(), 1, 2)
        }
    }

    /// @notice The L1->L2 message hash, as Starknet computes it.
    function l1ToL2MessageHash(
        address fromAddress,
        uint256 toAddress,
        uint256 selector,
        uint256[] calldata payload,
        uint256 nonce
    ) public pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(uint256(uint160(fromAddress)), toAddress, nonce, selector, payload.length, payload)
        );
    }

    function _send(uint256 toAddress, uint256 selector, uint256[] calldata payload, uint256 fee)
        private
        returns (bytes32, uint256)
    {
        uint256 nonce = l1ToL2MessageNonce;
        l1ToL2MessageNonce = nonce + 1;
        emit LogMessageToL2(msg.sender, toAddress, selector, payload, nonce, fee);
        bytes32 msgHash = l1ToL2MessageHash(msg.sender, toAddress, selector, payload, nonce);
        l1ToL2Messages[msgHash] = fee + 1;
        return (msgHash, nonce);
    }
}
