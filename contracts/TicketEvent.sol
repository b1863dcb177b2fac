// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC4906} from "@openzeppelin/contracts/interfaces/IERC4906.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ERC721Packed} from "./ERC721Packed.sol";
import {EventConfig, PurchasePermit, SellOrder, TierConfig} from "./TicketTypes.sol";

/// @title TicketEvent
/// @notice One event's tickets as an ERC-721 collection: card sales minted by the backend, crypto
/// sales against backend-signed EIP-712 permits with proceeds held in escrow, capped resale with an
/// ERC-2981 royalty to the organizer (paid in ether, or settled by the backend for card buyers),
/// check-in, and cancellation with refunds from escrow.
/// @dev Deployed as an EIP-1167 clone by TicketFactory and set up with `initialize`; the
/// implementation marks itself initialized in its constructor, so nobody can take it over, and
/// only the factory that deployed it may initialize a clone of it, so a clone made by anyone else
/// can't pass for one of the factory's events.
/// Token ids are `orderId * 256 + index`: an order's tickets are found without an index, and an
/// order id (card) or permit nonce (crypto) can issue tickets only once, because its first token
/// slot stays non-zero forever (a refunded ticket leaves a tombstone).
contract TicketEvent is
    ERC721Packed,
    AccessControl,
    EIP712,
    ReentrancyGuardTransient,
    IERC2981,
    IERC4906
{
    /// @notice Configures tiers, pauses sales, cancels or settles the event; receives royalties.
    bytes32 public constant ORGANIZER_ROLE = keccak256("ORGANIZER_ROLE");
    /// @notice Mints card-paid orders (the backend's hot key).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Signs crypto purchase permits (the backend, after queue admission).
    bytes32 public constant SIGNER_ROLE = keccak256("SIGNER_ROLE");
    /// @notice Marks tickets used at the door.
    bytes32 public constant SCANNER_ROLE = keccak256("SCANNER_ROLE");
    /// @notice Settles sell orders for card buyers (the backend, which took their payment in fiat).
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");

    /// @notice Most tiers an event can have (the per-wallet counters of 16 tiers fill one slot).
    uint256 public constant MAX_TIERS = 16;
    /// @notice Most tickets in one order or permit (token ids are orderId * 256 + index).
    uint256 public constant MAX_ORDER_QUANTITY = 255;
    /// @notice How long after a cancellation ticket holders can claim refunds; after it, anyone may
    /// sweep what is left in escrow to the organizer.
    uint256 public constant REFUND_CLAIM_PERIOD = 180 days;
    uint256 private constant _ORDER_HEADER_BYTES = 10;

    bytes32 private constant _PERMIT_TYPEHASH = keccak256(
        "PurchasePermit(address buyer,uint256 tier,uint256 quantity,uint256 unitPrice,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _SELL_ORDER_TYPEHASH =
        keccak256(
            "SellOrder(uint256 tokenId,uint256 price,uint256 nonce,uint256 deadline,address buyer,address payee)"
        );

    // Token slot, above the owner: tier (4 bits), flags, resale nonce (24 bits), gwei paid (64 bits).
    uint256 private constant _TIER_SHIFT = 160;
    uint256 private constant _FLAG_USED = 1 << 164;
    uint256 private constant _FLAG_BURNED = 1 << 165;
    // Set alone in the first token slot of a permit revoked before use: its nonce can never mint.
    uint256 private constant _FLAG_REVOKED = 1 << 166;
    uint256 private constant _NONCE_SHIFT = 168;
    uint256 private constant _NONCE_MASK = (1 << 24) - 1;
    uint256 private constant _PAID_SHIFT = 192;
    // Account slot, above the balance: credit in wei (96 bits), then one 8-bit counter per tier of
    // tickets received in primary sales (for per-wallet limits).
    uint256 private constant _CREDIT_SHIFT = 32;
    uint256 private constant _CREDIT_MASK = (1 << 96) - 1;
    uint256 private constant _MINTED_SHIFT = 128;

    uint8 private constant _INITIALIZED = 1;
    uint8 private constant _PAUSED = 2;
    uint8 private constant _CANCELLED = 4;
    uint8 private constant _SETTLED = 8;
    uint8 private constant _TRANSFERS_LOCKED = 16;
    uint8 private constant _TIER_EXISTS = 32;
    // The flags every primary sale checks; mirrored into each tier's slot (see Tier.flags).
    uint8 private constant _SALE_FLAGS = _PAUSED | _CANCELLED | _SETTLED;

    // keccak256("Transfer(address,address,uint256)"), for the assembly mint loop.
    bytes32 private constant _TRANSFER_EVENT =
        0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef;

    // keccak256("fairtix.TicketEvent.resaleInProgress"): a transient flag that lets a priced resale
    // settlement through the transfer policy while direct transfers are locked (a gift doesn't
    // set it: it is a direct transfer by another name).
    bytes32 private constant _RESALE_IN_PROGRESS =
        0xf2f446f08baaf6f810cf84d4189d9c1fb3f4163beaea904be817f48681afc89a;

    /// @dev Everything the hot paths check, in one slot.
    struct EventState {
        uint8 flags;
        uint16 resaleCapBps;
        uint16 royaltyBps;
        uint40 saleStart;
        uint40 saleEnd;
        uint40 eventEnd;
        uint8 tierCount;
        uint64 eventId;
    }

    /// @dev Everything a card mint needs, in one slot per tier: supply, the event's sale flags
    /// (mirrored here by `_setFlags`) and the primary minter (the minter the event was created
    /// with, cleared here when its role is revoked), so a mint reads no other slot to authorize,
    /// check and count.
    struct Tier {
        address minter;
        uint32 supply;
        uint32 issued;
        uint8 perWalletLimit;
        uint8 flags;
    }

    /// @dev The rest of a tier, read by purchases, resales and settlement.
    struct TierMoney {
        uint72 price;
        uint64 escrowGwei;
    }

    /// @dev The factory that deployed the implementation; in a clone's code too, as clones run the
    /// implementation's code.
    address private immutable _factory;

    EventState private _state;
    address private _organizer;
    uint96 private _organizerCredit;
    string private _name;
    string private _symbol;
    mapping(uint256 tierId => Tier) private _tiers;
    mapping(uint256 tierId => TierMoney) private _tierMoney;
    mapping(uint256 tierId => bytes32 digest) private _tierMetadata;
    // Written once, by cancelEvent: the last second at which claimRefund pays.
    uint40 private _refundDeadline;

    // ---------------------------------------------------------------- events

    /// @notice The collection was set up for `eventId`.
    /// @param eventId The off-chain event id.
    /// @param organizer The organizer (royalty receiver, settlement payee).
    event EventInitialized(uint64 indexed eventId, address indexed organizer);

    /// @notice Tier `tierId` was created or changed.
    /// @param tierId The tier.
    /// @param price Face price in wei.
    /// @param supply Tickets that can ever be issued in the tier.
    /// @param perWalletLimit Most tickets per wallet in primary sales (0 = no limit).
    /// @param metadataDigest SHA-256 digest of the tier's metadata (CIDv0).
    event TierConfigured(
        uint256 indexed tierId,
        uint256 price,
        uint256 supply,
        uint256 perWalletLimit,
        bytes32 metadataDigest
    );

    /// @notice A crypto purchase was paid and its tickets issued: token ids nonce * 256 + 0 .. quantity - 1.
    /// @param nonce The permit nonce (the off-chain order id).
    /// @param buyer Who paid and received the tickets.
    /// @param tierId The tier bought.
    /// @param quantity Number of tickets.
    /// @param paid Total wei paid, now held in escrow.
    event Purchased(
        uint256 indexed nonce, address indexed buyer, uint256 tierId, uint256 quantity, uint256 paid
    );

    /// @notice A ticket was resold (or given, at price 0) through a signed sell order.
    /// @param tokenId The ticket.
    /// @param seller Previous owner, who signed the order.
    /// @param buyer New owner: the wallet that paid `price` (buyResale), or the card buyer's wallet
    /// the backend settled for (buyResaleFor).
    /// @param payee Who the seller's proceeds, `price - royalty`, went to: the seller, or the
    /// payee the order named (the backend's treasury for a seller paid back by card). When the
    /// payee settled the sale itself its proceeds were netted from what it paid, not credited.
    /// @param price Resale price in wei.
    /// @param royalty Part of `price` credited to the organizer.
    event Resold(
        uint256 indexed tokenId,
        address indexed seller,
        address indexed buyer,
        address payee,
        uint256 price,
        uint256 royalty
    );

    /// @notice Every sell order signed for `tokenId` with a nonce below `newNonce` is void.
    /// @param tokenId The ticket.
    /// @param newNonce The ticket's sale nonce from now on.
    event SellOrdersCancelled(uint256 indexed tokenId, uint256 newNonce);

    /// @notice A ticket was scanned at the door; it can't be resold or transferred any more.
    /// @param tokenId The ticket.
    /// @param owner Its owner at check-in.
    event CheckedIn(uint256 indexed tokenId, address indexed owner);

    /// @notice A ticket in a check-in batch was left unused: it is no longer held by the wallet the
    /// door admitted (it was resold or moved between the scan and the block), or doesn't exist.
    /// @param tokenId The ticket.
    /// @param expected The holder the door admitted.
    /// @param actual Its holder now (the zero address if it doesn't exist or was burned).
    event CheckInSkipped(uint256 indexed tokenId, address expected, address actual);

    /// @notice The purchase permit with nonce `nonce` was revoked before use; it can never mint.
    /// @param nonce The permit nonce (the off-chain order id).
    event PermitRevoked(uint256 indexed nonce);

    /// @notice Primary sales (card mints and crypto purchases) and resale were paused.
    /// @param by The organizer who paused.
    event SalesPaused(address by);

    /// @notice Sales resumed after a pause.
    /// @param by The organizer who resumed.
    event SalesResumed(address by);

    /// @notice The direct-transfer policy changed.
    /// @param locked True when tickets can move only through priced resale.
    event TransferPolicyChanged(bool locked);

    /// @notice The organizer cancelled the event; holders of crypto-paid tickets can claim refunds
    /// until `refundDeadline`.
    /// @param refundDeadline The last second (unix time) at which claimRefund pays.
    event EventCancelled(uint256 refundDeadline);

    /// @notice After the refund claim period of a cancelled event, what nobody claimed was released
    /// from escrow to the organizer's credit.
    /// @param amount Wei released.
    event UnclaimedRefundsSwept(uint256 amount);

    /// @notice A crypto-paid ticket was refunded from escrow and burned.
    /// @param tokenId The ticket.
    /// @param owner Who received the refund.
    /// @param amount Wei refunded (what the ticket's buyer paid).
    event RefundClaimed(uint256 indexed tokenId, address indexed owner, uint256 amount);

    /// @notice After the event, escrow was released to the organizer's credit.
    /// @param amount Wei released.
    event Settled(uint256 amount);

    /// @notice `account` withdrew its credit.
    /// @param account Who was paid.
    /// @param amount Wei paid.
    event Withdrawn(address indexed account, uint256 amount);

    // ---------------------------------------------------------------- errors

    /// @notice The collection is already set up (or is the implementation, which never is).
    error AlreadyInitialized();
    /// @notice Only the factory that deployed the implementation initializes its clones.
    /// @param caller The account that tried.
    error NotFactory(address caller);
    /// @notice A role would have been granted to the zero address.
    /// @param role The role.
    error ZeroAddressForRole(bytes32 role);
    /// @notice The sale window and event end must satisfy saleStart < saleEnd <= eventEnd.
    /// @param saleStart The sale start asked for.
    /// @param saleEnd The sale end asked for.
    /// @param eventEnd The event end asked for.
    error InvalidSchedule(uint256 saleStart, uint256 saleEnd, uint256 eventEnd);
    /// @notice A royalty above 100% was asked for.
    /// @param royaltyBps The royalty in basis points.
    error RoyaltyTooHigh(uint256 royaltyBps);
    /// @notice The event already has MAX_TIERS tiers, or `tierId` would leave a gap.
    /// @param tierId The tier id asked for.
    /// @param tierCount How many tiers exist.
    error InvalidTierId(uint256 tierId, uint256 tierCount);
    /// @notice No tier `tierId` exists.
    /// @param tierId The tier asked for.
    error UnknownTier(uint256 tierId);
    /// @notice Prices must be whole gwei (escrow is kept in gwei) and below 2^72 wei.
    /// @param price The price in wei.
    error InvalidPrice(uint256 price);
    /// @notice A tier's supply can't drop below what it has already issued.
    /// @param tierId The tier.
    /// @param supply The supply asked for.
    /// @param issued Tickets the tier has already issued.
    error SupplyBelowIssued(uint256 tierId, uint256 supply, uint256 issued);
    /// @notice All tiers together may hold at most 2^32 - 1 tickets.
    /// @param total The total supply that was asked for.
    error TotalSupplyTooLarge(uint256 total);
    /// @notice Every tier needs metadata (tokenURI).
    /// @param tierId The tier without a metadata digest.
    error MissingMetadata(uint256 tierId);
    /// @notice Sales are paused.
    error SalesArePaused();
    /// @notice The event is cancelled.
    error EventIsCancelled();
    /// @notice The event is settled; escrow has been released.
    error EventAlreadySettled();
    /// @notice Crypto sales open at `saleStart`.
    /// @param saleStart When crypto sales open (unix seconds).
    error SaleNotStarted(uint256 saleStart);
    /// @notice Crypto sales closed at `saleEnd`.
    /// @param saleEnd When crypto sales closed (unix seconds).
    error SaleEnded(uint256 saleEnd);
    /// @notice An order or permit must be for 1 to MAX_ORDER_QUANTITY tickets.
    /// @param orderId The order id or permit nonce.
    /// @param quantity The quantity asked for.
    error InvalidQuantity(uint256 orderId, uint256 quantity);
    /// @notice The packed mint batch ends inside the order that starts at byte `offset`.
    /// @param offset Byte offset of the truncated order's header.
    error MalformedBatch(uint256 offset);
    /// @notice Order ids and permit nonces must be below 2^64.
    /// @param orderId The order id or permit nonce.
    error OrderIdTooLarge(uint256 orderId);
    /// @notice Tickets were already minted for `orderId`; a retry must not issue them twice.
    /// @param orderId The order id.
    error OrderAlreadyMinted(uint256 orderId);
    /// @notice Not enough tickets left in the tier.
    /// @param tierId The tier.
    /// @param remaining Tickets still available in it.
    error TierSoldOut(uint256 tierId, uint256 remaining);
    /// @notice `wallet` already holds the most primary-sale tickets this tier allows.
    /// @param wallet The recipient.
    /// @param tierId The tier.
    /// @param limit The tier's per-wallet limit.
    error WalletLimitExceeded(address wallet, uint256 tierId, uint256 limit);
    /// @notice A permit can be used only by its buyer.
    /// @param buyer The permit's buyer.
    /// @param caller The account that sent it.
    error PermitNotForCaller(address buyer, address caller);
    /// @notice The permit's deadline has passed.
    /// @param deadline The permit's deadline (unix seconds).
    error PermitExpired(uint256 deadline);
    /// @notice The permit's nonce has already issued tickets.
    /// @param nonce The permit nonce.
    error PermitAlreadyUsed(uint256 nonce);
    /// @notice The permit was revoked before use (revokePermit).
    /// @param nonce The permit nonce.
    error PermitIsRevoked(uint256 nonce);
    /// @notice The permit was not signed by a holder of SIGNER_ROLE.
    /// @param signer The address the signature recovers to.
    error InvalidPermitSigner(address signer);
    /// @notice Payment must be exact.
    /// @param expected Wei that must be sent.
    /// @param received Wei that was sent.
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice The sell order's deadline has passed.
    /// @param tokenId The ticket.
    /// @param deadline The order's deadline (unix seconds).
    error SellOrderExpired(uint256 tokenId, uint256 deadline);
    /// @notice The sell order was filled, cancelled, or the ticket moved since it was signed.
    /// @param tokenId The ticket.
    /// @param nonce The order's nonce.
    /// @param currentNonce The ticket's sale nonce now.
    error SellOrderInvalidated(uint256 tokenId, uint256 nonce, uint256 currentNonce);
    /// @notice The sell order was not signed by the ticket's current owner.
    /// @param signer The address the signature recovers to (zero if it recovers to none, as for
    /// a contract wallet's signature that the wallet refused).
    /// @param owner The ticket's owner.
    error SellOrderSignerNotOwner(address signer, address owner);
    /// @notice The sell order names its buyer, and the ticket would go to someone else.
    /// @param tokenId The ticket.
    /// @param buyer The buyer the order names.
    /// @param recipient Who would have received the ticket.
    error SellOrderNotForRecipient(uint256 tokenId, address buyer, address recipient);
    /// @notice A sell order at price 0 is a gift, and a gift must name its buyer.
    /// @param tokenId The ticket.
    error GiftWithoutBuyer(uint256 tokenId);
    /// @notice The resale price is above the event's cap for this ticket.
    /// @param price The order's price in wei.
    /// @param cap The most this ticket may be resold for, in wei.
    error PriceAboveCap(uint256 price, uint256 cap);
    /// @notice An owner can't buy their own ticket.
    /// @param account The owner who tried to buy.
    error BuyerIsSeller(address account);
    /// @notice Resale closed when the event ended.
    /// @param eventEnd The event end (unix seconds).
    error ResaleClosed(uint256 eventEnd);
    /// @notice The ticket was used at the door.
    /// @param tokenId The ticket.
    error TicketAlreadyUsed(uint256 tokenId);
    /// @notice Direct transfers are locked for this event; resell instead.
    /// @param tokenId The ticket.
    error TransfersLocked(uint256 tokenId);
    /// @notice Only the ticket's owner may do this.
    /// @param tokenId The ticket.
    /// @param caller The account that is not its owner.
    error NotTicketOwner(uint256 tokenId, address caller);
    /// @notice Refunds are only for cancelled events.
    error EventNotCancelled();
    /// @notice The ticket wasn't paid on chain (card tickets are refunded by the backend).
    /// @param tokenId The ticket.
    error NotRefundable(uint256 tokenId);
    /// @notice Settlement opens at `eventEnd`.
    /// @param eventEnd The event end (unix seconds).
    error EventNotOver(uint256 eventEnd);
    /// @notice The event ended at `eventEnd`: it can't be cancelled any more (it can be settled).
    /// @param eventEnd The event end (unix seconds).
    error EventEnded(uint256 eventEnd);
    /// @notice Refunds could be claimed until `refundDeadline`; what is left can be swept.
    /// @param refundDeadline The last second at which claimRefund paid.
    error RefundPeriodOver(uint256 refundDeadline);
    /// @notice Unclaimed refunds can be swept only after `refundDeadline`.
    /// @param refundDeadline The last second at which claimRefund pays.
    error RefundPeriodNotOver(uint256 refundDeadline);
    /// @notice A check-in batch needs one expected holder per ticket.
    /// @param tokenIds Number of tickets.
    /// @param holders Number of holders.
    error CheckInLengthMismatch(uint256 tokenIds, uint256 holders);
    /// @notice `account` has no credit.
    /// @param account The caller.
    error NothingToWithdraw(address account);
    /// @notice Sending `amount` wei to `to` failed.
    /// @param to The recipient.
    /// @param amount Wei that could not be sent.
    error PaymentFailed(address to, uint256 amount);

    // ---------------------------------------------------------------- setup

    /// @dev The implementation is born initialized; clones start from empty storage. Its deployer
    /// (TicketFactory's constructor) is the only account that may initialize clones.
    constructor() EIP712("fairtix TicketEvent", "1") {
        _factory = msg.sender;
        _state.flags = _INITIALIZED;
    }

    /// @notice Sets up a fresh clone. Only the factory that deployed the implementation may call
    /// it, and it does so in the same transaction that creates the clone.
    /// @param config Roles, schedule and resale terms.
    /// @param tiers The initial tiers (tier ids 0 .. tiers.length - 1).
    function initialize(EventConfig calldata config, TierConfig[] calldata tiers) external {
        if (_state.flags & _INITIALIZED != 0) revert AlreadyInitialized();
        // A clone of this implementation made by anyone else would otherwise look like one of the
        // factory's events, down to its code.
        if (msg.sender != _factory) revert NotFactory(msg.sender);
        if (!(config.saleStart < config.saleEnd && config.saleEnd <= config.eventEnd)) {
            revert InvalidSchedule(config.saleStart, config.saleEnd, config.eventEnd);
        }
        if (config.royaltyBps > 10_000) revert RoyaltyTooHigh(config.royaltyBps);
        _grantNonZero(DEFAULT_ADMIN_ROLE, config.admin);
        _grantNonZero(ORGANIZER_ROLE, config.organizer);
        _grantNonZero(MINTER_ROLE, config.minter);
        _grantNonZero(SIGNER_ROLE, config.signer);
        _grantNonZero(RELAYER_ROLE, config.relayer);
        // Door staff are often known only later: a zero scanner is granted nothing now.
        if (config.scanner != address(0)) _grantRole(SCANNER_ROLE, config.scanner);
        _state = EventState({
            flags: _INITIALIZED | (config.transfersLocked ? _TRANSFERS_LOCKED : 0),
            resaleCapBps: config.resaleCapBps,
            royaltyBps: config.royaltyBps,
            saleStart: config.saleStart,
            saleEnd: config.saleEnd,
            eventEnd: config.eventEnd,
            tierCount: 0,
            eventId: config.eventId
        });
        _organizer = config.organizer;
        _name = config.name;
        _symbol = config.symbol;
        for (uint256 i = 0; i < tiers.length; ++i) {
            _configureTier(i, tiers[i], config.minter);
        }
        emit EventInitialized(config.eventId, config.organizer);
    }

    /// @notice Adds tier `tierId` (when it equals tierCount) or changes an existing one. A change of
    /// an existing tier's metadata emits ERC-4906 BatchMetadataUpdate over every token id, as a
    /// tier's tickets are spread over the whole id space.
    /// @dev Supply can't drop below what was issued; a price change moves the resale cap but never
    /// what earlier buyers are refunded.
    /// @param tierId The tier to configure.
    /// @param config Its new configuration.
    function configureTier(uint256 tierId, TierConfig calldata config)
        external
        onlyRole(ORGANIZER_ROLE)
    {
        uint8 flags = _state.flags;
        if (flags & _CANCELLED != 0) revert EventIsCancelled();
        if (flags & _SETTLED != 0) revert EventAlreadySettled();
        _configureTier(tierId, config, _tiers[0].minter);
    }

    // ---------------------------------------------------------------- primary sales

    /// @notice Mints card-paid orders. Recipient i of an order receives token orderId * 256 + i;
    /// an order's mint is found by its first token's Transfer event (tokenId = orderId * 256).
    /// @dev `batch` is packed, not ABI-encoded, because calldata is a large share of a mint's gas:
    /// orders back to back, each `orderId` (8 bytes, big-endian) | `tier` (1 byte) | `count`
    /// (1 byte, 1-255) | `count` recipients (20 bytes each). Reverts as a whole if any order was
    /// already minted (OrderAlreadyMinted), so the backend can retry a batch safely. Per-wallet
    /// limits apply as for crypto purchases.
    /// @param batch The packed orders.
    function mintBatch(bytes calldata batch) external {
        if (batch.length == 0) revert MalformedBatch(0);
        bool roleChecked;
        uint256 offset = 0;
        while (offset < batch.length) {
            if (batch.length - offset < _ORDER_HEADER_BYTES) revert MalformedBatch(offset);
            uint256 header;
            // A plain 32-byte read: the header is the first 10 bytes; calldata past the end reads
            // as zeros, and the length checks above and below bound what is used.
            assembly ("memory-safe") {
                header := calldataload(add(batch.offset, offset))
            }
            uint256 orderId = header >> 192;
            uint256 tierId = (header >> 184) & 0xff;
            uint256 quantity = (header >> 176) & 0xff;
            uint256 start = offset + _ORDER_HEADER_BYTES;
            offset = start + quantity * 20;
            if (offset > batch.length) revert MalformedBatch(start - _ORDER_HEADER_BYTES);
            uint256 firstTokenId = _firstTokenId(orderId, quantity);
            // Only whole orders are ever written, starting at index 0, and index 0 never returns
            // to zero (tombstone), so this one slot tells whether the order was minted.
            if (_tokens[firstTokenId] != 0) revert OrderAlreadyMinted(orderId);
            (uint256 limit, address primaryMinter) = _issueFromTier(tierId, quantity);
            // The primary minter is cached in the tier slot just read; anyone else must hold
            // MINTER_ROLE (checked once per batch).
            if (msg.sender != primaryMinter && !roleChecked) {
                _checkRole(MINTER_ROLE);
                roleChecked = true;
            }
            _mintEach(batch[start:offset], firstTokenId, tierId, limit);
        }
    }

    /// @notice Buys tickets with a permit signed by the backend after queue admission. Payment must
    /// be exactly `unitPrice * quantity` and stays in escrow until settlement or refund.
    /// @param permit The EIP-712 purchase permit (see PurchasePermit).
    /// @param signature The signer's 65-byte signature over the permit; malleable (high-s)
    /// signatures are rejected.
    function purchase(PurchasePermit calldata permit, bytes calldata signature) external payable {
        if (permit.buyer != msg.sender) revert PermitNotForCaller(permit.buyer, msg.sender);
        if (block.timestamp > permit.deadline) revert PermitExpired(permit.deadline);
        EventState memory state = _state;
        if (block.timestamp < state.saleStart) revert SaleNotStarted(state.saleStart);
        if (block.timestamp >= state.saleEnd) revert SaleEnded(state.saleEnd);

        _verifyPermit(permit, signature);

        uint256 quantity = permit.quantity;
        uint256 firstTokenId = _firstTokenId(permit.nonce, quantity);
        uint256 first = _tokens[firstTokenId];
        if (first != 0) {
            if (first == _FLAG_REVOKED) revert PermitIsRevoked(permit.nonce);
            revert PermitAlreadyUsed(permit.nonce);
        }
        uint256 expected = permit.unitPrice * quantity;
        if (msg.value != expected) revert WrongPayment(expected, msg.value);
        uint256 unitGwei = _toGwei(permit.unitPrice);

        (uint256 limit,) = _issueFromTier(permit.tier, quantity);
        _tierMoney[permit.tier].escrowGwei += uint64(unitGwei * quantity);
        uint256 tokenData = (permit.tier << _TIER_SHIFT) | (unitGwei << _PAID_SHIFT);
        for (uint256 i = 0; i < quantity; ++i) {
            _issueTo(msg.sender, firstTokenId + i, tokenData, permit.tier, limit);
        }
        emit Purchased(permit.nonce, msg.sender, permit.tier, quantity, msg.value);
    }

    // ---------------------------------------------------------------- resale

    /// @notice Settles a sell order signed by the ticket's owner: the caller pays exactly
    /// `order.price` (only the royalty if it is the order's payee) and receives the ticket. See
    /// `_settle` for the rules.
    /// @param order The EIP-712 sell order (see SellOrder).
    /// @param signature The owner's signature over the order: 65 bytes from an EOA (malleable
    /// high-s signatures are rejected), or whatever the owner's contract wallet accepts (ERC-1271).
    function buyResale(SellOrder calldata order, bytes calldata signature) external payable {
        _settle(order, signature, msg.sender);
    }

    /// @notice Settles a sell order for a card buyer: the backend took the buyer's payment in fiat,
    /// pays `order.price` in ether (only the royalty if it is the order's payee), and the ticket
    /// goes to the buyer's wallet `recipient`. Every rule of buyResale applies, with `recipient`
    /// as the buyer.
    /// @dev Payout model: the seller chose the rail when signing, through `order.payee`. An
    /// ether-rail seller (payee zero) is credited on chain, to withdraw. A card-rail seller names
    /// the backend's treasury, which refunds their card off chain; when the treasury is the caller
    /// its proceeds are netted, so it sends only the royalty. Either way the organizer's royalty is
    /// credited on chain and the Resold event names the payee, so the seller is paid exactly once.
    /// @param order The EIP-712 sell order (see SellOrder).
    /// @param signature The owner's signature over the order (as for buyResale).
    /// @param recipient The card buyer's wallet, which receives the ticket.
    function buyResaleFor(SellOrder calldata order, bytes calldata signature, address recipient)
        external
        payable
        onlyRole(RELAYER_ROLE)
    {
        if (recipient == address(0)) revert ERC721InvalidReceiver(address(0));
        _settle(order, signature, recipient);
    }

    /// @notice Voids every sell order the owner has signed for `tokenId`.
    /// @param tokenId The ticket.
    function cancelSellOrders(uint256 tokenId) external {
        uint256 packed = _tokens[tokenId];
        address owner = address(uint160(packed));
        if (owner == address(0)) revert ERC721NonexistentToken(tokenId);
        if (owner != msg.sender) revert NotTicketOwner(tokenId, msg.sender);
        uint256 newNonce = _bumpSaleNonce(tokenId, packed);
        emit SellOrdersCancelled(tokenId, newNonce);
    }

    // ---------------------------------------------------------------- door

    /// @notice Marks tickets used, each only if it is still held by the wallet the door admitted.
    /// A ticket held by anyone else now (resold or moved between the scan and the block, or burned)
    /// is skipped with CheckInSkipped, and the rest of the batch goes on: one stale entry must not
    /// hold up everyone else's. A ticket already used is left as it is, without an event, so a
    /// retried batch changes nothing. Reverts as a whole only for a cancelled event or mismatched
    /// lengths.
    /// @param tokenIds The scanned tickets.
    /// @param holders For each ticket, the wallet the door admitted it for.
    function checkIn(uint256[] calldata tokenIds, address[] calldata holders)
        external
        onlyRole(SCANNER_ROLE)
    {
        if (_state.flags & _CANCELLED != 0) revert EventIsCancelled();
        if (tokenIds.length != holders.length) {
            revert CheckInLengthMismatch(tokenIds.length, holders.length);
        }
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            address holder = holders[i];
            uint256 packed = _tokens[tokenId];
            address owner = address(uint160(packed));
            if (owner != holder || owner == address(0)) {
                emit CheckInSkipped(tokenId, holder, owner);
            } else if (packed & _FLAG_USED == 0) {
                _tokens[tokenId] = packed | _FLAG_USED;
                emit CheckedIn(tokenId, owner);
            }
        }
    }

    // ---------------------------------------------------------------- permits

    /// @notice Revokes one purchase permit before it is used (its order was cancelled off chain):
    /// its nonce can never issue tickets, whatever the permit's deadline.
    /// @param nonce The permit nonce (the off-chain order id).
    function revokePermit(uint256 nonce) external onlyRole(SIGNER_ROLE) {
        uint256 firstTokenId = _firstTokenId(nonce, 1);
        uint256 first = _tokens[firstTokenId];
        if (first == _FLAG_REVOKED) revert PermitIsRevoked(nonce);
        if (first != 0) revert PermitAlreadyUsed(nonce);
        // The slot a purchase checks to refuse a used nonce, marked without an owner: nothing
        // exists at this token id, and no purchase or card mint can write it any more.
        _tokens[firstTokenId] = _FLAG_REVOKED;
        emit PermitRevoked(nonce);
    }

    // ---------------------------------------------------------------- organizer

    /// @notice Pauses card mints, crypto purchases and resale.
    function pause() external onlyRole(ORGANIZER_ROLE) {
        _setFlags(_state.flags | _PAUSED);
        emit SalesPaused(msg.sender);
    }

    /// @notice Resumes sales after a pause.
    function unpause() external onlyRole(ORGANIZER_ROLE) {
        _setFlags(_state.flags & ~_PAUSED);
        emit SalesResumed(msg.sender);
    }

    /// @notice Sets the direct-transfer policy. Priced resale through sell orders is always
    /// possible; a gift (a sell order at price 0) is a direct transfer by another name and is
    /// refused while transfers are locked, as a side payment would dodge the cap and royalty.
    /// @param locked True to allow tickets to move only through priced resale.
    function setTransfersLocked(bool locked) external onlyRole(ORGANIZER_ROLE) {
        uint8 flags = _state.flags;
        _setFlags(locked ? flags | _TRANSFERS_LOCKED : flags & ~_TRANSFERS_LOCKED);
        emit TransferPolicyChanged(locked);
    }

    /// @notice Cancels the event before its end: sales and transfers stop, holders of crypto-paid
    /// tickets can claimRefund for REFUND_CLAIM_PERIOD. Once the event has ended it can only be
    /// settled: a cancellation then would race `settle` for the same escrow.
    function cancelEvent() external onlyRole(ORGANIZER_ROLE) {
        EventState memory state = _state;
        if (state.flags & _SETTLED != 0) revert EventAlreadySettled();
        if (state.flags & _CANCELLED != 0) revert EventIsCancelled();
        if (block.timestamp >= state.eventEnd) revert EventEnded(state.eventEnd);
        _setFlags(state.flags | _CANCELLED);
        uint256 deadline = block.timestamp + REFUND_CLAIM_PERIOD;
        _refundDeadline = uint40(deadline);
        emit EventCancelled(deadline);
    }

    /// @notice After the event, releases all escrow to the organizer's credit (then `withdraw`).
    function settle() external onlyRole(ORGANIZER_ROLE) {
        EventState memory state = _state;
        if (state.flags & _CANCELLED != 0) revert EventIsCancelled();
        if (state.flags & _SETTLED != 0) revert EventAlreadySettled();
        if (block.timestamp < state.eventEnd) revert EventNotOver(state.eventEnd);
        emit Settled(_releaseEscrow(state));
    }

    /// @notice After the refund claim period of a cancelled event, releases the refunds nobody
    /// claimed to the organizer's credit, so escrow isn't locked forever. Anyone may call it: the
    /// ether can only go to the organizer.
    function sweepUnclaimedRefunds() external {
        EventState memory state = _state;
        if (state.flags & _CANCELLED == 0) revert EventNotCancelled();
        if (state.flags & _SETTLED != 0) revert EventAlreadySettled();
        uint256 deadline = _refundDeadline;
        if (block.timestamp <= deadline) revert RefundPeriodNotOver(deadline);
        emit UnclaimedRefundsSwept(_releaseEscrow(state));
    }

    // ---------------------------------------------------------------- money out

    /// @notice Refunds a crypto-paid ticket of a cancelled event to its current owner, exactly the
    /// face price its buyer paid at the primary sale, from escrow, and burns it. Resale doesn't
    /// change who is refunded or how much: the ticket's holder is, whoever sold it before (sellers
    /// keep their resale proceeds), and the burn makes a second claim impossible. Escrow always
    /// covers it: it holds what every unburned crypto-paid ticket's buyer paid, and only a refund
    /// or `settle`/`sweepUnclaimedRefunds` take from it. Open until `refundDeadline`.
    /// @dev Card-paid tickets (paid 0) are refunded by the backend through the card provider.
    /// @param tokenId The ticket.
    function claimRefund(uint256 tokenId) external nonReentrant {
        if (_state.flags & _CANCELLED == 0) revert EventNotCancelled();
        uint256 deadline = _refundDeadline;
        if (block.timestamp > deadline) revert RefundPeriodOver(deadline);
        uint256 packed = _tokens[tokenId];
        address owner = address(uint160(packed));
        if (owner != msg.sender) revert NotTicketOwner(tokenId, msg.sender);
        uint256 paidGwei = packed >> _PAID_SHIFT;
        if (paidGwei == 0) revert NotRefundable(tokenId);
        _update(address(0), tokenId, address(0));
        uint256 tierId = (packed >> _TIER_SHIFT) & 0xf;
        _tierMoney[tierId].escrowGwei -= uint64(paidGwei);
        uint256 amount = paidGwei * 1 gwei;
        _pay(msg.sender, amount);
        emit RefundClaimed(tokenId, msg.sender, amount);
    }

    /// @notice Pays out the caller's credit: resale proceeds, plus royalties and settled escrow
    /// for the organizer.
    function withdraw() external nonReentrant {
        uint256 account = _accounts[msg.sender];
        uint256 amount = (account >> _CREDIT_SHIFT) & _CREDIT_MASK;
        if (amount != 0) _accounts[msg.sender] = account & ~(_CREDIT_MASK << _CREDIT_SHIFT);
        if (msg.sender == _organizer) {
            amount += _organizerCredit;
            _organizerCredit = 0;
        }
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _pay(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice ERC-721 metadata: the collection name.
    /// @return The name.
    function name() external view returns (string memory) {
        return _name;
    }

    /// @notice ERC-721 metadata: the collection symbol.
    /// @return The symbol.
    function symbol() external view returns (string memory) {
        return _symbol;
    }

    /// @notice `ipfs://<CIDv0>` of the ticket's tier metadata.
    /// @param tokenId The ticket; reverts ERC721NonexistentToken if it doesn't exist.
    /// @return The metadata URI.
    function tokenURI(uint256 tokenId) external view returns (string memory) {
        uint256 packed = _tokens[tokenId];
        if (address(uint160(packed)) == address(0)) revert ERC721NonexistentToken(tokenId);
        return string.concat("ipfs://", _cidV0(_tierMetadata[(packed >> _TIER_SHIFT) & 0xf]));
    }

    /// @notice ERC-2981: the organizer receives `royaltyBps` of every sale price.
    /// @param salePrice The sale price.
    /// @return receiver The organizer.
    /// @return royaltyAmount The royalty on `salePrice`.
    function royaltyInfo(uint256, uint256 salePrice)
        external
        view
        returns (address receiver, uint256 royaltyAmount)
    {
        return (_organizer, salePrice * _state.royaltyBps / 10_000);
    }

    /// @notice The event's configuration and state.
    /// @return eventId Off-chain event id.
    /// @return organizer Organizer address.
    /// @return saleStart Crypto sales open (unix seconds).
    /// @return saleEnd Crypto sales close.
    /// @return eventEnd Event end: resale closes, settlement opens.
    /// @return resaleCapBps Resale cap in basis points of face price.
    /// @return royaltyBps Royalty in basis points of resale price.
    /// @return tierCount Number of tiers.
    /// @return paused Whether sales are paused.
    /// @return cancelled Whether the event is cancelled.
    /// @return settled Whether escrow was released.
    /// @return transfersLocked Whether direct transfers are locked.
    function eventInfo()
        external
        view
        returns (
            uint64 eventId,
            address organizer,
            uint40 saleStart,
            uint40 saleEnd,
            uint40 eventEnd,
            uint16 resaleCapBps,
            uint16 royaltyBps,
            uint8 tierCount,
            bool paused,
            bool cancelled,
            bool settled,
            bool transfersLocked
        )
    {
        EventState memory s = _state;
        return (
            s.eventId,
            _organizer,
            s.saleStart,
            s.saleEnd,
            s.eventEnd,
            s.resaleCapBps,
            s.royaltyBps,
            s.tierCount,
            s.flags & _PAUSED != 0,
            s.flags & _CANCELLED != 0,
            s.flags & _SETTLED != 0,
            s.flags & _TRANSFERS_LOCKED != 0
        );
    }

    /// @notice A tier's configuration, progress and escrow.
    /// @param tierId The tier.
    /// @return price Face price in wei.
    /// @return supply Tickets that can ever be issued.
    /// @return issued Tickets issued so far (refunds don't give them back).
    /// @return perWalletLimit Most primary-sale tickets per wallet (0 = no limit).
    /// @return escrow Wei held in escrow for the tier's crypto sales.
    /// @return metadataDigest SHA-256 digest of the tier's metadata (CIDv0).
    function tier(uint256 tierId)
        external
        view
        returns (
            uint256 price,
            uint256 supply,
            uint256 issued,
            uint256 perWalletLimit,
            uint256 escrow,
            bytes32 metadataDigest
        )
    {
        if (tierId >= _state.tierCount) revert UnknownTier(tierId);
        Tier memory t = _tiers[tierId];
        TierMoney memory money = _tierMoney[tierId];
        return (
            money.price,
            t.supply,
            t.issued,
            t.perWalletLimit,
            uint256(money.escrowGwei) * 1 gwei,
            _tierMetadata[tierId]
        );
    }

    /// @notice A ticket's tier, check-in state, price paid on chain and resale nonce.
    /// @param tokenId The ticket; reverts ERC721NonexistentToken if it doesn't exist.
    /// @return tierId Its tier.
    /// @return used Whether it was checked in.
    /// @return paid Wei its buyer paid on chain (0 for card tickets).
    /// @return saleNonce The nonce a sell order for it must carry now.
    function ticket(uint256 tokenId)
        external
        view
        returns (uint256 tierId, bool used, uint256 paid, uint256 saleNonce)
    {
        uint256 packed = _tokens[tokenId];
        if (address(uint160(packed)) == address(0)) revert ERC721NonexistentToken(tokenId);
        return (
            (packed >> _TIER_SHIFT) & 0xf,
            packed & _FLAG_USED != 0,
            (packed >> _PAID_SHIFT) * 1 gwei,
            (packed >> _NONCE_SHIFT) & _NONCE_MASK
        );
    }

    /// @notice Whether tickets were ever issued for an order id or permit nonce.
    /// @param orderId The order id or permit nonce.
    /// @return True once issued (also after a refund burned them); false for a revoked permit.
    function orderMinted(uint256 orderId) external view returns (bool) {
        if (orderId >= 1 << 64) return false;
        uint256 first = _tokens[orderId << 8];
        return first != 0 && first != _FLAG_REVOKED;
    }

    /// @notice The last second at which refunds of a cancelled event can be claimed.
    /// @return Unix seconds; 0 while the event isn't cancelled.
    function refundDeadline() external view returns (uint256) {
        return _refundDeadline;
    }

    /// @notice The factory whose events this implementation (and every clone of it) belongs to.
    /// @return The TicketFactory that deployed the implementation.
    function factory() external view returns (address) {
        return _factory;
    }

    /// @notice What `account` can withdraw now.
    /// @param account The account.
    /// @return Wei of credit.
    function creditOf(address account) external view returns (uint256) {
        uint256 amount = (_accounts[account] >> _CREDIT_SHIFT) & _CREDIT_MASK;
        return account == _organizer ? amount + _organizerCredit : amount;
    }

    /// @notice How many primary-sale tickets of `tierId` `wallet` received (counted only for tiers
    /// with a per-wallet limit).
    /// @param wallet The wallet.
    /// @param tierId The tier.
    /// @return The count.
    function primaryTicketsOf(address wallet, uint256 tierId) external view returns (uint256) {
        if (tierId >= MAX_TIERS) revert UnknownTier(tierId);
        return (_accounts[wallet] >> (_MINTED_SHIFT + 8 * tierId)) & 0xff;
    }

    /// @notice ERC-165: ERC-721, ERC-721 Metadata, ERC-2981, ERC-4906, AccessControl and ERC-165.
    /// @param interfaceId The interface identifier.
    /// @return True if the interface is supported.
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721Packed, AccessControl, IERC165)
        returns (bool)
    {
        // ERC-4906's id is fixed by the standard (0x49064906), not derived from its functions.
        return interfaceId == type(IERC2981).interfaceId || interfaceId == bytes4(0x49064906)
            || ERC721Packed.supportsInterface(interfaceId) || AccessControl.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Every rule on moving an existing ticket: no moves once the event is cancelled (refunds
    /// burn), none for used tickets, direct transfers only when the policy allows them (a priced
    /// resale settlement always may; a gift, price 0, is a direct transfer by another name and
    /// follows the policy), and every move voids the sell orders signed by the previous owner.
    function _update(address to, uint256 tokenId, address auth)
        internal
        override
        returns (address from)
    {
        uint256 packed = _tokens[tokenId];
        bool burning = to == address(0);
        if (!burning) {
            uint8 flags = _state.flags;
            if (flags & _CANCELLED != 0) revert EventIsCancelled();
            if (packed & _FLAG_USED != 0) revert TicketAlreadyUsed(tokenId);
            if (flags & _TRANSFERS_LOCKED != 0 && !_resaleInProgress()) {
                revert TransfersLocked(tokenId);
            }
        }
        from = super._update(to, tokenId, auth);
        if (burning) {
            // Tombstone: the slot stays non-zero so the token's order id can never mint again.
            _tokens[tokenId] = _FLAG_BURNED | (packed & (0xf << _TIER_SHIFT));
        } else {
            _bumpSaleNonce(tokenId, _tokens[tokenId]);
        }
    }

    /// @dev The one settlement path of buyResale and buyResaleFor: `recipient` receives the ticket
    /// and the caller pays `order.price`, when sales aren't paused, the event is neither cancelled
    /// nor over, the order is before its deadline and at the ticket's sale nonce, the ticket's
    /// owner signed it, the recipient isn't that owner and is the order's buyer if it names one,
    /// a gift (price 0) names its buyer, and the price is within the cap. The organizer is credited
    /// the royalty and the payee (the seller unless the order names another) the rest, except
    /// that a payee who is the caller pays only the royalty: proceeds that would come straight
    /// back to it aren't sent round trip.
    function _settle(SellOrder calldata order, bytes calldata signature, address recipient)
        private
    {
        EventState memory state = _state;
        if (state.flags & _PAUSED != 0) revert SalesArePaused();
        if (state.flags & _CANCELLED != 0) revert EventIsCancelled();
        if (block.timestamp >= state.eventEnd) revert ResaleClosed(state.eventEnd);
        uint256 tokenId = order.tokenId;
        if (block.timestamp > order.deadline) revert SellOrderExpired(tokenId, order.deadline);

        uint256 packed = _tokens[tokenId];
        address seller = address(uint160(packed));
        if (seller == address(0)) revert ERC721NonexistentToken(tokenId);
        uint256 currentNonce = (packed >> _NONCE_SHIFT) & _NONCE_MASK;
        if (order.nonce != currentNonce) {
            revert SellOrderInvalidated(tokenId, order.nonce, currentNonce);
        }
        _verifySellOrder(order, signature, seller);
        if (recipient == seller) revert BuyerIsSeller(seller);
        address buyer = order.buyer;
        // Without a named buyer, whoever sees the signed order in the mempool could take it.
        if (buyer != address(0) && buyer != recipient) {
            revert SellOrderNotForRecipient(tokenId, buyer, recipient);
        }
        uint256 price = order.price;
        if (price == 0 && buyer == address(0)) revert GiftWithoutBuyer(tokenId);
        uint256 cap = uint256(_tierMoney[(packed >> _TIER_SHIFT) & 0xf].price)
            * state.resaleCapBps / 10_000;
        if (price > cap) revert PriceAboveCap(price, cap);
        uint256 royalty = price * state.royaltyBps / 10_000;
        address payee = order.payee == address(0) ? seller : order.payee;
        uint256 due = payee == msg.sender ? royalty : price;
        if (msg.value != due) revert WrongPayment(due, msg.value);

        if (price == 0) {
            // A gift passes the transfer policy like any direct transfer (see _update).
            _update(recipient, tokenId, address(0));
        } else {
            assembly ("memory-safe") {
                tstore(_RESALE_IN_PROGRESS, 1)
            }
            _update(recipient, tokenId, address(0));
            assembly ("memory-safe") {
                tstore(_RESALE_IN_PROGRESS, 0)
            }
        }

        if (payee != msg.sender && price != royalty) {
            // unchecked: credits are bounded by the ether that ever entered this contract
            // (< 2^96 wei), so the payee's credit field can't carry into the per-tier counters.
            unchecked {
                _accounts[payee] += (price - royalty) << _CREDIT_SHIFT;
            }
        }
        if (royalty != 0) _organizerCredit += uint96(royalty);
        emit Resold(tokenId, seller, recipient, payee, price, royalty);
    }

    /// @dev Accepts the seller's ECDSA signature, else, for a contract wallet, whatever its ERC-1271
    /// `isValidSignature` accepts. ECDSA is tried first because most sellers are EOAs: it spares
    /// them the code-size lookup of the seller's account. An EOA's malformed signature reverts
    /// with ECDSA's own error, as a permit's does.
    function _verifySellOrder(SellOrder calldata order, bytes calldata signature, address seller)
        private
        view
    {
        // All of SellOrder's fields are static, so abi.encode lays them out as EIP-712 encodeData.
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(_SELL_ORDER_TYPEHASH, order)));
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, signature);
        if (signer == seller) return;
        if (seller.code.length != 0) {
            if (SignatureChecker.isValidERC1271SignatureNow(seller, digest, signature)) return;
        } else if (error != ECDSA.RecoverError.NoError) {
            ECDSA.recover(digest, signature); // reverts with the reason tryRecover returned
        }
        revert SellOrderSignerNotOwner(signer, seller);
    }

    /// @dev Moves every tier's escrow to the organizer's credit and marks the event settled.
    function _releaseEscrow(EventState memory state) private returns (uint256 amount) {
        uint256 totalGwei;
        for (uint256 tierId = 0; tierId < state.tierCount; ++tierId) {
            totalGwei += _tierMoney[tierId].escrowGwei;
            _tierMoney[tierId].escrowGwei = 0;
        }
        _setFlags(state.flags | _SETTLED);
        amount = totalGwei * 1 gwei;
        _organizerCredit += uint96(amount);
    }

    function _verifyPermit(PurchasePermit calldata permit, bytes calldata signature) private view {
        bytes32 structHash = keccak256(
            abi.encode(
                _PERMIT_TYPEHASH,
                permit.buyer,
                permit.tier,
                permit.quantity,
                permit.unitPrice,
                permit.nonce,
                permit.deadline
            )
        );
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        if (!hasRole(SIGNER_ROLE, signer)) revert InvalidPermitSigner(signer);
    }

    function _resaleInProgress() private view returns (bool inProgress) {
        assembly ("memory-safe") {
            inProgress := tload(_RESALE_IN_PROGRESS)
        }
    }

    function _bumpSaleNonce(uint256 tokenId, uint256 packed) private returns (uint256 newNonce) {
        newNonce = (((packed >> _NONCE_SHIFT) & _NONCE_MASK) + 1) & _NONCE_MASK;
        _tokens[tokenId] =
            (packed & ~(_NONCE_MASK << _NONCE_SHIFT)) | (newNonce << _NONCE_SHIFT);
    }

    /// @dev The one writer of the event flags, so the copies in the tier slots never drift.
    function _setFlags(uint8 flags) private {
        _state.flags = flags;
        uint256 tierCount = _state.tierCount;
        for (uint256 tierId = 0; tierId < tierCount; ++tierId) {
            _tiers[tierId].flags = (flags & _SALE_FLAGS) | _TIER_EXISTS;
        }
    }

    /// @dev Revoking (or renouncing) the primary minter's role also ends its fast path: every
    /// tier's cached minter is cleared, so only MINTER_ROLE holders can mint from then on.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked && role == MINTER_ROLE && account == _tiers[0].minter) {
            uint256 tierCount = _state.tierCount;
            for (uint256 tierId = 0; tierId < tierCount; ++tierId) {
                _tiers[tierId].minter = address(0);
            }
        }
    }

    function _firstTokenId(uint256 orderId, uint256 quantity) private pure returns (uint256) {
        if (orderId >= 1 << 64) revert OrderIdTooLarge(orderId);
        if (quantity == 0 || quantity > MAX_ORDER_QUANTITY) {
            revert InvalidQuantity(orderId, quantity);
        }
        return orderId << 8;
    }

    /// @dev Checks that primary sales are open and takes `quantity` tickets from the tier's supply;
    /// returns its per-wallet limit and primary minter.
    function _issueFromTier(uint256 tierId, uint256 quantity)
        private
        returns (uint256 limit, address primaryMinter)
    {
        Tier storage stored = _tiers[tierId];
        Tier memory t = stored; // one SLOAD; only `issued` is written back
        if (t.flags & _TIER_EXISTS == 0) revert UnknownTier(tierId);
        if (t.flags & _PAUSED != 0) revert SalesArePaused();
        if (t.flags & _CANCELLED != 0) revert EventIsCancelled();
        if (t.flags & _SETTLED != 0) revert EventAlreadySettled();
        uint256 issued = t.issued + quantity;
        if (issued > t.supply) revert TierSoldOut(tierId, t.supply - t.issued);
        stored.issued = uint32(issued);
        return (t.perWalletLimit, t.minter);
    }

    /// @dev The card-mint loop: per recipient one fresh token slot, one account slot and a Transfer
    /// event, in assembly because this loop is the bulk of a sale's gas (each Solidity-level
    /// helper call, bounds check and mapping hash adds up over every ticket sold). Same effects
    /// as `_issueTo` for each recipient in order.
    function _mintEach(
        bytes calldata recipients,
        uint256 firstTokenId,
        uint256 tierId,
        uint256 limit
    ) private {
        uint256 tokenData = tierId << _TIER_SHIFT;
        uint256 counterShift = _MINTED_SHIFT + 8 * tierId;
        address rejected;
        bool zeroRecipient;
        assembly ("memory-safe") {
            // Two hashing buffers: scratch space for account keys, unallocated memory past the
            // free pointer for token keys, so each mapping's slot word is stored once.
            let tokenKey := mload(0x40)
            mstore(add(tokenKey, 0x20), _tokens.slot)
            mstore(0x20, _accounts.slot)
            let tokenId := firstTokenId
            let end := add(recipients.offset, recipients.length)
            for { let p := recipients.offset } lt(p, end) { p := add(p, 20) } {
                let to := shr(96, calldataload(p))
                if iszero(to) {
                    zeroRecipient := 1
                    break
                }
                mstore(0x00, to)
                let accountSlot := keccak256(0x00, 0x40)
                let account := sload(accountSlot)
                if limit {
                    if iszero(lt(and(shr(counterShift, account), 0xff), limit)) {
                        rejected := to
                        break
                    }
                    // Below limit <= 255: the counter can't carry into the next tier's.
                    account := add(account, shl(counterShift, 1))
                }
                // A balance never exceeds the event's total supply (< 2^32): no carry either.
                sstore(accountSlot, add(account, 1))
                mstore(tokenKey, tokenId)
                sstore(keccak256(tokenKey, 0x40), or(tokenData, to))
                log4(0, 0, _TRANSFER_EVENT, 0, to, tokenId)
                tokenId := add(tokenId, 1)
            }
        }
        if (zeroRecipient) revert ERC721InvalidReceiver(address(0));
        if (rejected != address(0)) revert WalletLimitExceeded(rejected, tierId, limit);
    }

    /// @dev Writes one fresh ticket: its slot, the recipient's balance and per-tier counter.
    function _issueTo(address to, uint256 tokenId, uint256 tokenData, uint256 tierId, uint256 limit)
        private
    {
        if (to == address(0)) revert ERC721InvalidReceiver(address(0));
        uint256 account = _accounts[to];
        if (limit != 0) {
            uint256 shift = _MINTED_SHIFT + 8 * tierId;
            if ((account >> shift) & 0xff >= limit) revert WalletLimitExceeded(to, tierId, limit);
            // unchecked: the counter is below limit <= 255, so it can't carry into the next tier's.
            unchecked {
                account += 1 << shift;
            }
        }
        // unchecked: a balance never exceeds the event's total supply, which is below 2^32.
        unchecked {
            _accounts[to] = account + 1;
        }
        _tokens[tokenId] = tokenData | uint160(to);
        emit Transfer(address(0), to, tokenId);
    }

    function _configureTier(uint256 tierId, TierConfig calldata config, address primaryMinter)
        private
    {
        uint256 tierCount = _state.tierCount;
        if (tierId > tierCount || tierId >= MAX_TIERS) revert InvalidTierId(tierId, tierCount);
        if (config.price % 1 gwei != 0 || config.price >= 1 << 72) revert InvalidPrice(config.price);
        if (config.metadataDigest == bytes32(0)) revert MissingMetadata(tierId);
        Tier storage t = _tiers[tierId];
        if (config.supply < t.issued) revert SupplyBelowIssued(tierId, config.supply, t.issued);
        uint256 total = config.supply;
        for (uint256 i = 0; i < tierCount; ++i) {
            if (i != tierId) total += _tiers[i].supply;
        }
        if (total > type(uint32).max) revert TotalSupplyTooLarge(total);
        _tierMoney[tierId].price = uint72(config.price);
        t.supply = config.supply;
        t.minter = primaryMinter;
        t.perWalletLimit = config.perWalletLimit;
        t.flags = (_state.flags & _SALE_FLAGS) | _TIER_EXISTS;
        if (_tierMetadata[tierId] != config.metadataDigest) {
            _tierMetadata[tierId] = config.metadataDigest;
            // A new tier has no tickets yet; an existing tier's tickets are anywhere in the id space.
            if (tierId < tierCount) emit BatchMetadataUpdate(0, type(uint256).max);
        }
        if (tierId == tierCount) _state.tierCount = uint8(tierCount + 1);
        emit TierConfigured(
            tierId, config.price, config.supply, config.perWalletLimit, config.metadataDigest
        );
    }

    function _grantNonZero(bytes32 role, address account) private {
        if (account == address(0)) revert ZeroAddressForRole(role);
        _grantRole(role, account);
    }

    function _toGwei(uint256 price) private pure returns (uint256) {
        if (price % 1 gwei != 0 || price >= 1 << 72) revert InvalidPrice(price);
        return price / 1 gwei;
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert PaymentFailed(to, amount);
    }

    /// @dev Base58btc of the CIDv0 multihash 0x12 0x20 <digest>: always 46 characters, "Qm...".
    function _cidV0(bytes32 digest) private pure returns (string memory) {
        bytes memory alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        bytes memory input = abi.encodePacked(bytes2(0x1220), digest);
        uint8[46] memory digits;
        uint256 length = 1;
        for (uint256 i = 0; i < input.length; ++i) {
            uint256 carry = uint8(input[i]);
            for (uint256 j = 0; j < length; ++j) {
                carry += uint256(digits[j]) << 8;
                digits[j] = uint8(carry % 58);
                carry /= 58;
            }
            while (carry > 0) {
                digits[length++] = uint8(carry % 58);
                carry /= 58;
            }
        }
        bytes memory out = new bytes(length);
        for (uint256 k = 0; k < length; ++k) {
            out[k] = alphabet[digits[length - 1 - k]];
        }
        return string(out);
    }
}
