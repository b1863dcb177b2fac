// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {TicketEvent} from "./TicketEvent.sol";

/// @title TicketFactory
/// @notice Deploys one TicketEvent collection per event and remembers which event id it belongs to.
/// @dev First version deploys full contracts; a later version switches to EIP-1167 clones.
contract TicketFactory is AccessControl {
    /// @notice Role allowed to create events (the backend's admin key).
    bytes32 public constant EVENT_CREATOR_ROLE = keccak256("EVENT_CREATOR_ROLE");

    mapping(uint256 eventId => address ticketEvent) private _events;

    /// @notice A TicketEvent collection was deployed for `eventId`.
    /// @param eventId The off-chain event id.
    /// @param ticketEvent Address of the new collection.
    /// @param organizer The collection's admin.
    event EventCreated(uint256 indexed eventId, address indexed ticketEvent, address indexed organizer);

    /// @notice A collection already exists for `eventId`.
    /// @param eventId The event id that was reused.
    /// @param ticketEvent The collection already deployed for it.
    error EventAlreadyCreated(uint256 eventId, address ticketEvent);

    /// @notice A constructor address for `role` was the zero address.
    /// @param role The role that would have been granted to nobody.
    error ZeroAddressForRole(bytes32 role);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and EVENT_CREATOR_ROLE.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddressForRole(DEFAULT_ADMIN_ROLE);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(EVENT_CREATOR_ROLE, admin);
    }

    /// @notice Deploys the ticket collection for `eventId`.
    /// @param eventId Off-chain event id; one collection per id, ever.
    /// @param name Collection name.
    /// @param symbol Collection symbol.
    /// @param organizer Admin of the new collection.
    /// @param minter Holder of the collection's MINTER_ROLE (the backend).
    /// @return ticketEvent Address of the new collection.
    function createEvent(
        uint256 eventId,
        string calldata name,
        string calldata symbol,
        address organizer,
        address minter
    ) external onlyRole(EVENT_CREATOR_ROLE) returns (address ticketEvent) {
        address existing = _events[eventId];
        if (existing != address(0)) revert EventAlreadyCreated(eventId, existing);

        ticketEvent = address(new TicketEvent(name, symbol, organizer, minter));
        _events[eventId] = ticketEvent;
        emit EventCreated(eventId, ticketEvent, organizer);
    }

    /// @notice The collection deployed for `eventId`, or the zero address if none.
    /// @param eventId The off-chain event id.
    /// @return The TicketEvent address.
    function eventAddress(uint256 eventId) external view returns (address) {
        return _events[eventId];
    }
}
