// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title OZPlainTicket
/// @notice Benchmark peer only (bench/gas.py): the plainest OpenZeppelin ERC721 that can issue
/// tickets, i.e. the floor a ticket contract built on OpenZeppelin pays before any rule of its own.
/// @dev Deliberately unguarded: anyone may mint. Never deploy outside the gas benchmark.
contract OZPlainTicket is ERC721 {
    constructor() ERC721("OZ Plain Ticket", "OZT") {}

    /// @notice Mints token `tokenId` to `to`.
    /// @param to Recipient of the new token.
    /// @param tokenId Id of the new token; reverts if it exists.
    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }

    /// @notice Mints tokens `firstTokenId + i` to `recipients[i]`, in one transaction.
    /// @param recipients One recipient per new token.
    /// @param firstTokenId Id of the first new token.
    function mintBatch(address[] calldata recipients, uint256 firstTokenId) external {
        uint256 count = recipients.length;
        for (uint256 i = 0; i < count; ++i) {
            _mint(recipients[i], firstTokenId + i);
        }
    }
}
