// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title TicketEvent
/// @notice One ERC-721 collection per event. The backend's minter key issues tickets in batches,
/// each batch tagged with the off-chain order id, so a retried mint can never double-issue.
/// @dev First version: one contract per event, deployed by TicketFactory. Tiers, permits, resale
/// and check-in come later.
contract TicketEvent is ERC721, AccessControl {
    /// @notice Role allowed to mint tickets (the backend's hot key).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    uint256 private _totalMinted;
    mapping(uint256 orderId => bool minted) private _orderMinted;
    mapping(uint256 tokenId => string cid) private _cids;

    /// @notice A batch of tickets was minted for an order.
    /// @param orderId The off-chain order id the batch fulfils.
    /// @param firstTokenId Id of the first ticket; the batch holds ids firstTokenId .. firstTokenId+quantity-1.
    /// @param quantity Number of tickets minted.
    event OrderMinted(uint256 indexed orderId, uint256 firstTokenId, uint256 quantity);

    /// @notice A constructor address for `role` was the zero address.
    /// @param role The role that would have been granted to nobody.
    error ZeroAddressForRole(bytes32 role);

    /// @notice Tickets were already minted for `orderId`; a retry must not issue them twice.
    /// @param orderId The order id that was reused.
    error OrderAlreadyMinted(uint256 orderId);

    /// @notice `recipients` and `cids` must pair up one to one.
    /// @param recipients Number of recipients given.
    /// @param cids Number of metadata CIDs given.
    error LengthMismatch(uint256 recipients, uint256 cids);

    /// @notice A batch must mint at least one ticket.
    error EmptyBatch();

    /// @notice The metadata CID at `index` was empty, which would leave a ticket without metadata.
    /// @param index Position of the empty CID in the batch.
    error EmptyCid(uint256 index);

    /// @param name_ Collection name (ERC-721 metadata).
    /// @param symbol_ Collection symbol (ERC-721 metadata).
    /// @param admin Receives DEFAULT_ADMIN_ROLE (the organizer).
    /// @param minter Receives MINTER_ROLE (the backend).
    constructor(string memory name_, string memory symbol_, address admin, address minter)
        ERC721(name_, symbol_)
    {
        if (admin == address(0)) revert ZeroAddressForRole(DEFAULT_ADMIN_ROLE);
        if (minter == address(0)) revert ZeroAddressForRole(MINTER_ROLE);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Mints one ticket per recipient for `orderId`; recipient i gets token firstTokenId+i
    /// with tokenURI `ipfs://<cids[i]>`.
    /// @param orderId Off-chain order id; each id can be minted once, ever.
    /// @param recipients Ticket owners, in order.
    /// @param cids IPFS CIDs of each ticket's metadata JSON, in the same order.
    /// @return firstTokenId Id of the first minted ticket (ids start at 1 and are sequential).
    function mintBatch(uint256 orderId, address[] calldata recipients, string[] calldata cids)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256 firstTokenId)
    {
        uint256 quantity = recipients.length;
        if (quantity == 0) revert EmptyBatch();
        if (quantity != cids.length) revert LengthMismatch(quantity, cids.length);
        if (_orderMinted[orderId]) revert OrderAlreadyMinted(orderId);

        _orderMinted[orderId] = true;
        firstTokenId = _totalMinted + 1;
        _totalMinted += quantity;
        for (uint256 i = 0; i < quantity; ++i) {
            if (bytes(cids[i]).length == 0) revert EmptyCid(i);
            uint256 tokenId = firstTokenId + i;
            _cids[tokenId] = cids[i];
            // _mint, not _safeMint: the backend mints to buyers' EOAs, and a contract recipient
            // whose onERC721Received reverts must not be able to block the other tickets in the batch.
            _mint(recipients[i], tokenId);
        }
        emit OrderMinted(orderId, firstTokenId, quantity);
    }

    /// @notice Metadata URI of `tokenId`: `ipfs://<cid>`.
    /// @dev Reverts with ERC721NonexistentToken for a token that was never minted.
    /// @param tokenId The ticket.
    /// @return The ticket's metadata URI.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        return string.concat("ipfs://", _cids[tokenId]);
    }

    /// @notice Whether tickets were ever minted for `orderId`.
    /// @param orderId The off-chain order id.
    /// @return True once a batch for `orderId` was minted.
    function orderMinted(uint256 orderId) external view returns (bool) {
        return _orderMinted[orderId];
    }

    /// @notice Number of tickets minted so far (also the highest token id).
    /// @return The count of minted tickets.
    function totalMinted() external view returns (uint256) {
        return _totalMinted;
    }

    /// @notice ERC-165: ERC-721, ERC-721 Metadata, AccessControl and ERC-165 itself.
    /// @param interfaceId The interface identifier.
    /// @return True if the interface is supported.
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }
}
