// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title ERC721Packed
/// @notice ERC-721 core that keeps each token in one storage slot and each account in one slot.
/// @dev Why not OpenZeppelin's ERC721: it keeps the owner and the balance in slots of their own,
/// so every extra per-token or per-account fact a ticket needs (tier, used flag, price paid,
/// resale nonce, seller credits) would cost another 22,100 gas cold slot per mint. Here:
///   token slot   = owner (bits 0-159) | extra data owned by the derived contract (bits 160-255)
///   account slot = balance (bits 0-31) | extra data owned by the derived contract (bits 32-255)
/// Mechanics and errors (ERC-6093) follow OpenZeppelin's ERC721 so wallets and tools see the
/// usual behaviour. Derived contracts must keep any one account's balance below 2^32.
abstract contract ERC721Packed is IERC721, IERC721Metadata, IERC721Errors {
    uint256 internal constant _ADDRESS_MASK = (1 << 160) - 1;
    uint256 internal constant _BALANCE_MASK = (1 << 32) - 1;

    mapping(uint256 tokenId => uint256 packed) internal _tokens;
    mapping(address account => uint256 packed) internal _accounts;
    mapping(uint256 tokenId => address approved) private _tokenApprovals;
    mapping(address owner => mapping(address operator => bool approved)) private _operatorApprovals;

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) public view virtual returns (bool) {
        return interfaceId == type(IERC721).interfaceId
            || interfaceId == type(IERC721Metadata).interfaceId
            || interfaceId == type(IERC165).interfaceId;
    }

    /// @inheritdoc IERC721
    function balanceOf(address owner) public view virtual returns (uint256) {
        if (owner == address(0)) revert ERC721InvalidOwner(address(0));
        return _accounts[owner] & _BALANCE_MASK;
    }

    /// @inheritdoc IERC721
    function ownerOf(uint256 tokenId) public view virtual returns (address) {
        return _requireOwned(tokenId);
    }

    /// @inheritdoc IERC721
    function approve(address to, uint256 tokenId) public virtual {
        address owner = _requireOwned(tokenId);
        if (msg.sender != owner && !isApprovedForAll(owner, msg.sender)) {
            revert ERC721InvalidApprover(msg.sender);
        }
        _tokenApprovals[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    /// @inheritdoc IERC721
    function getApproved(uint256 tokenId) public view virtual returns (address) {
        _requireOwned(tokenId);
        return _tokenApprovals[tokenId];
    }

    /// @inheritdoc IERC721
    function setApprovalForAll(address operator, bool approved) public virtual {
        if (operator == address(0)) revert ERC721InvalidOperator(operator);
        _operatorApprovals[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @inheritdoc IERC721
    function isApprovedForAll(address owner, address operator) public view virtual returns (bool) {
        return _operatorApprovals[owner][operator];
    }

    /// @inheritdoc IERC721
    function transferFrom(address from, address to, uint256 tokenId) public virtual {
        if (to == address(0)) revert ERC721InvalidReceiver(address(0));
        address previousOwner = _update(to, tokenId, msg.sender);
        if (previousOwner != from) revert ERC721IncorrectOwner(from, tokenId, previousOwner);
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId) public virtual {
        safeTransferFrom(from, to, tokenId, "");
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data)
        public
        virtual
    {
        transferFrom(from, to, tokenId);
        _checkOnERC721Received(from, to, tokenId, data);
    }

    /// @dev The owner of `tokenId`, or the zero address if it doesn't exist (or was burned).
    function _ownerOf(uint256 tokenId) internal view returns (address) {
        return address(uint160(_tokens[tokenId]));
    }

    function _requireOwned(uint256 tokenId) internal view returns (address owner) {
        owner = _ownerOf(tokenId);
        if (owner == address(0)) revert ERC721NonexistentToken(tokenId);
    }

    function _isAuthorized(address owner, address spender, uint256 tokenId)
        internal
        view
        returns (bool)
    {
        return spender != address(0)
            && (owner == spender || isApprovedForAll(owner, spender)
                || _tokenApprovals[tokenId] == spender);
    }

    /// @dev Moves `tokenId` to `to` (or burns it when `to` is zero), keeping the token's extra data.
    /// When `auth` is non-zero it must be the owner or approved. Returns the previous owner.
    /// Mints don't come through here: derived contracts write fresh slots in their own batch loops.
    function _update(address to, uint256 tokenId, address auth)
        internal
        virtual
        returns (address from)
    {
        uint256 packed = _tokens[tokenId];
        from = address(uint160(packed));
        if (from == address(0)) revert ERC721NonexistentToken(tokenId);
        if (auth != address(0) && !_isAuthorized(from, auth, tokenId)) {
            revert ERC721InsufficientApproval(auth, tokenId);
        }
        // Read before write: clearing an approval that is already clear would cost a cold SSTORE.
        if (_tokenApprovals[tokenId] != address(0)) delete _tokenApprovals[tokenId];
        // unchecked: `from` owns tokenId so its balance is at least 1, and derived contracts
        // bound every balance below 2^32, so neither side can carry into the extra-data bits.
        unchecked {
            _accounts[from] -= 1;
            if (to != address(0)) _accounts[to] += 1;
        }
        _tokens[tokenId] = (packed & ~_ADDRESS_MASK) | uint160(to);
        emit Transfer(from, to, tokenId);
    }

    /// @dev ERC-721's receiver check for safe transfers, as OpenZeppelin's ERC721Utils does it.
    function _checkOnERC721Received(address from, address to, uint256 tokenId, bytes memory data)
        private
    {
        if (to.code.length == 0) return;
        try IERC721Receiver(to).onERC721Received(msg.sender, from, tokenId, data) returns (
            bytes4 retval
        ) {
            if (retval != IERC721Receiver.onERC721Received.selector) {
                revert ERC721InvalidReceiver(to);
            }
        } catch (bytes memory reason) {
            if (reason.length == 0) revert ERC721InvalidReceiver(to);
            assembly ("memory-safe") {
                revert(add(32, reason), mload(reason))
            }
        }
    }
}
