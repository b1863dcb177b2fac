// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Everything fixed when an event's collection is created (TicketFactory.createEvent).
/// @param eventId Off-chain event id; also the CREATE2 salt of the clone, so its address is known
/// before it exists.
/// @param name Collection name (ERC-721 metadata).
/// @param symbol Collection symbol (ERC-721 metadata).
/// @param admin Receives DEFAULT_ADMIN_ROLE: grants and revokes every other role.
/// @param organizer Receives ORGANIZER_ROLE and is the ERC-2981 royalty receiver and settlement payee.
/// @param minter Receives MINTER_ROLE (the backend's hot key for card sales).
/// @param signer Receives SIGNER_ROLE (the backend's key that signs purchase permits).
/// @param scanner Receives SCANNER_ROLE (door staff or the backend's check-in key); zero grants nobody yet.
/// @param relayer Receives RELAYER_ROLE (the backend's key that settles resales for card buyers).
/// @param saleStart First second at which crypto purchases are accepted.
/// @param saleEnd First second at which crypto purchases are refused again.
/// @param eventEnd First second after the event: resale stops and the organizer may settle.
/// @param resaleCapBps Resale price cap in basis points of the face price (11000 = 110%).
/// @param royaltyBps Organizer royalty on every resale, in basis points of the resale price.
/// @param transfersLocked When true, tickets move only through priced resale (no direct transfers,
/// no gifts).
struct EventConfig {
    uint64 eventId;
    string name;
    string symbol;
    address admin;
    address organizer;
    address minter;
    address signer;
    address scanner;
    address relayer;
    uint40 saleStart;
    uint40 saleEnd;
    uint40 eventEnd;
    uint16 resaleCapBps;
    uint16 royaltyBps;
    bool transfersLocked;
}

/// @notice A ticket tier as the organizer configures it.
/// @param price Face price in wei, a whole number of gwei; the base of the resale cap.
/// @param supply Tickets that can ever be issued in this tier.
/// @param perWalletLimit Most tickets one wallet may receive in primary sales (0 = no limit).
/// @param metadataDigest SHA-256 digest of the tier's metadata (the CIDv0 multihash digest):
/// tokenURI is ipfs://<CIDv0>.
struct TierConfig {
    uint256 price;
    uint32 supply;
    uint8 perWalletLimit;
    bytes32 metadataDigest;
}

/// @notice One card order to mint: `recipients[i]` receives token `orderId * 256 + i`.
struct MintOrder {
    uint64 orderId;
    uint8 tier;
    address[] recipients;
}

/// @notice EIP-712 permit for a crypto purchase, signed by a holder of SIGNER_ROLE.
/// @param buyer The only account that may use the permit (it must be msg.sender) and receives the tickets.
/// @param tier Tier to buy from.
/// @param quantity Tickets to buy (1-256); token ids are `nonce * 256 + i`.
/// @param unitPrice Price per ticket in wei, a whole number of gwei; payment must be exact.
/// @param nonce The backend's order id (< 2^64); a permit's nonce can mint only once, ever.
/// @param deadline Last second (unix time) at which the permit is accepted.
struct PurchasePermit {
    address buyer;
    uint256 tier;
    uint256 quantity;
    uint256 unitPrice;
    uint256 nonce;
    uint256 deadline;
}

/// @notice EIP-712 sell order, signed off chain by the ticket's owner (an EOA, or a contract wallet
/// through ERC-1271).
/// @param tokenId The ticket for sale.
/// @param price Asking price in wei; the buyer pays exactly this. Zero makes the order a gift,
/// which must name its buyer and is refused while direct transfers are locked.
/// @param nonce The ticket's saleNonce when signed; any transfer or cancellation moves it on.
/// @param deadline Last second (unix time) at which the order can be filled.
/// @param buyer The only wallet that may receive the ticket; the zero address lets anyone buy.
/// @param payee Who is credited the seller's proceeds (price minus royalty); the zero address
/// means the seller. The seller picks the payout rail here: a seller to be paid back on their
/// card names the backend's treasury, which refunds the card off chain.
struct SellOrder {
    uint256 tokenId;
    uint256 price;
    uint256 nonce;
    uint256 deadline;
    address buyer;
    address payee;
}
