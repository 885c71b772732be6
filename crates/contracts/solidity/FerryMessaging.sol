// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title ferry's own L1 messaging contract
/// @notice The part of Starknet's StarknetMessaging that ferry reads, written by this project
/// for dev mode, tests and benchmarks: the L1->L2 message lifecycle. `sendMessageToL2` emits
/// `LogMessageToL2` and records `fee + 1` under the message hash; `startL1ToL2MessageCancellation`
/// and `cancelL1ToL2Message` cancel a message after `messageCancellationDelay` seconds, emitting
/// `MessageToL2CancellationStarted` and `MessageToL2Canceled`; `consumeMessageToL2` stands in for
/// the L2 state update that consumes a message, emitting `ConsumedMessageToL2`. All of these
/// behave, and their events are encoded, as in the real contract. It adds a helper that sends
/// several messages in one transaction, one that emits an undecodable log, and a setter for the
/// cancellation delay.
contract FerryMessaging {
    event LogMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce,
        uint256 fee
    );

    event ConsumedMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    event MessageToL2CancellationStarted(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    event MessageToL2Canceled(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    /// @notice `fee + 1` for every message sent, under its L1->L2 message hash.
    mapping(bytes32 => uint256) public l1ToL2Messages;

    /// @notice The nonce the next message gets.
    uint256 public l1ToL2MessageNonce;

    /// @notice The time `startL1ToL2MessageCancellation` was last called for a message, under
    /// its hash; 0 if it never was.
    mapping(bytes32 => uint256) public l1ToL2MessageCancellations;

    /// @notice Seconds between starting a message's cancellation and being allowed to cancel it;
    /// 0 unless `setMessageCancellationDelay` was called (the real contract starts at 5 days).
    uint256 public messageCancellationDelay;

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

    /// @notice Sets `messageCancellationDelay`. A dev-contract convenience: anyone may call it
    /// (in the real contract only governance can).
    function setMessageCancellationDelay(uint256 delaySeconds) external {
        messageCancellationDelay = delaySeconds;
    }

    /// @notice Starts cancelling a message that `msg.sender` sent and that is still pending;
    /// `cancelL1ToL2Message` may complete it `messageCancellationDelay` seconds later.
    function startL1ToL2MessageCancellation(
        uint256 toAddress,
        uint256 selector,
        uint256[] calldata payload,
        uint256 nonce
    ) external returns (bytes32) {
        emit MessageToL2CancellationStarted(msg.sender, toAddress, selector, payload, nonce);
        bytes32 msgHash = l1ToL2MessageHash(msg.sender, toAddress, selector, payload, nonce);
        require(l1ToL2Messages[msgHash] > 0, "NO_MESSAGE_TO_CANCEL");
        l1ToL2MessageCancellations[msgHash] = block.timestamp;
        return msgHash;
    }

    /// @notice Cancels a message that `msg.sender` sent, is still pending and whose cancellation
    /// was started at least `messageCancellationDelay` seconds ago. Like the real contract it
    /// emits `MessageToL2Canceled` before its checks (a revert undoes the log).
    function cancelL1ToL2Message(
        uint256 toAddress,
        uint256 selector,
        uint256[] calldata payload,
        uint256 nonce
    ) external returns (bytes32) {
        emit MessageToL2Canceled(msg.sender, toAddress, selector, payload, nonce);
        // The hash depends on msg.sender, so no one can cancel another sender's message.
        bytes32 msgHash = l1ToL2MessageHash(msg.sender, toAddress, selector, payload, nonce);
        require(l1ToL2Messages[msgHash] != 0, "NO_MESSAGE_TO_CANCEL");

        uint256 requestTime = l1ToL2MessageCancellations[msgHash];
        require(requestTime != 0, "MESSAGE_CANCELLATION_NOT_REQUESTED");

        uint256 cancelAllowedTime;
        unchecked {
            cancelAllowedTime = requestTime + messageCancellationDelay;
        }
        require(cancelAllowedTime >= requestTime, "CANCEL_ALLOWED_TIME_OVERFLOW");
        require(block.timestamp >= cancelAllowedTime, "MESSAGE_CANCELLATION_NOT_ALLOWED_YET");

        l1ToL2Messages[msgHash] = 0;
        return msgHash;
    }

    /// @notice Consumes a pending message as the L2 state update (`processMessages` in the real
    /// contract) does: emits `ConsumedMessageToL2` and clears the message. Any caller may call it
    /// (this is a dev contract; the real one consumes messages only in a proven state update).
    function consumeMessageToL2(
        address fromAddress,
        uint256 toAddress,
        uint256 selector,
        uint256[] calldata payload,
        uint256 nonce
    ) external {
        bytes32 msgHash = l1ToL2MessageHash(fromAddress, toAddress, selector, payload, nonce);
        require(l1ToL2Messages[msgHash] > 0, "INVALID_MESSAGE_TO_CONSUME");
        emit ConsumedMessageToL2(fromAddress, toAddress, selector, payload, nonce);
        l1ToL2Messages[msgHash] = 0;
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
