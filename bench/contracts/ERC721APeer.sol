// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721A} from "erc721a/contracts/ERC721A.sol";

/// @title ERC721APeer
/// @notice Benchmark peer only (bench/gas.py): ERC721A 4.3.0 (npm `erc721a`) with public mints.
/// @dev ERC721A's batch saving comes from minting consecutive ids to ONE owner; `mintEach` shows
/// what it costs when every ticket goes to a different wallet, as tickets of a card order do.
/// Deliberately unguarded: anyone may mint. Never deploy outside the gas benchmark.
contract ERC721APeer is ERC721A {
    constructor() ERC721A("ERC721A Ticket", "AT") {}

    /// @notice Mints `quantity` consecutive tokens to `to`.
    /// @param to Recipient of all the new tokens.
    /// @param quantity Number of tokens to mint.
    function mint(address to, uint256 quantity) external {
        _mint(to, quantity);
    }

    /// @notice Mints one token to each of `recipients`, in one transaction.
    /// @param recipients One recipient per new token.
    function mintEach(address[] calldata recipients) external {
        uint256 count = recipients.length;
        for (uint256 i = 0; i < count; ++i) {
            _mint(recipients[i], 1);
        }
    }
}
