//! The messaging contract's events ferry reads, and the topics asked for in one `eth_getLogs`.

alloy::sol! {
    /// The messaging contract's event, as Starknet's StarknetMessaging emits it.
    #[derive(Debug, PartialEq, Eq)]
    event LogMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce,
        uint256 fee
    );

    /// The sender started cancelling a message (`startL1ToL2MessageCancellation`).
    #[derive(Debug, PartialEq, Eq)]
    event MessageToL2CancellationStarted(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    /// The cancellation completed (`cancelL1ToL2Message`).
    #[derive(Debug, PartialEq, Eq)]
    event MessageToL2Canceled(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );

    /// The L2's state update consumed a message. Starknet's contract logs no fee here (unlike
    /// `LogMessageToL2`): the topic is that of this exact signature.
    #[derive(Debug, PartialEq, Eq)]
    event ConsumedMessageToL2(
        address indexed fromAddress,
        uint256 indexed toAddress,
        uint256 indexed selector,
        uint256[] payload,
        uint256 nonce
    );
}

impl From<LogMessageToL2> for ferry_primitives::Message {
    fn from(event: LogMessageToL2) -> Self {
        Self {
            from: event.fromAddress,
            to: event.toAddress,
            selector: event.selector,
            payload: event.payload,
            nonce: event.nonce,
            fee: event.fee,
        }
    }
}

/// The topics of every event ferry reads, asked for in one `eth_getLogs` (an OR-list).
pub(crate) const EVENT_TOPICS: [alloy::primitives::B256; 4] = {
    use alloy::sol_types::SolEvent;
    [
        LogMessageToL2::SIGNATURE_HASH,
        MessageToL2CancellationStarted::SIGNATURE_HASH,
        MessageToL2Canceled::SIGNATURE_HASH,
        ConsumedMessageToL2::SIGNATURE_HASH,
    ]
};
