// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

import {TicketEvent} from "./TicketEvent.sol";
import {EventConfig, TierConfig} from "./TicketTypes.sol";

/// @title TicketFactory
/// @notice Creates one TicketEvent collection per event as an EIP-1167 clone of a single
/// implementation, at an address derived from the event id.
/// @dev Clones cost a fraction of a full deployment. The clone address is CREATE2-derived from the
/// event id, so the backend knows it before the transaction lands and can recover after a crash.
/// That address is also the registry: only this factory can put code there, and clones never
/// self-destruct, so an event id has a collection exactly when its address has code (a mapping
/// would cost every event another storage slot).
contract TicketFactory is AccessControl {
    /// @notice Role allowed to create events (the backend's admin key).
    bytes32 public constant EVENT_CREATOR_ROLE = keccak256("EVENT_CREATOR_ROLE");

    /// @notice The TicketEvent every clone delegates to; deployed by this factory, never initialized.
    address public immutable implementation;

    /// @notice A TicketEvent collection was created for `eventId`.
    /// @param eventId The off-chain event id.
    /// @param ticketEvent Address of the new collection.
    /// @param organizer The event's organizer.
    event EventCreated(uint256 indexed eventId, address indexed ticketEvent, address indexed organizer);

    /// @notice A collection already exists for `eventId`.
    /// @param eventId The event id that was reused.
    /// @param ticketEvent The collection already created for it.
    error EventAlreadyCreated(uint256 eventId, address ticketEvent);

    /// @notice A constructor address for `role` was the zero address.
    /// @param role The role that would have been granted to nobody.
    error ZeroAddressForRole(bytes32 role);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and EVENT_CREATOR_ROLE.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddressForRole(DEFAULT_ADMIN_ROLE);
        implementation = address(new TicketEvent());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(EVENT_CREATOR_ROLE, admin);
    }

    /// @notice Creates and initializes the ticket collection for `config.eventId`.
    /// @param config Roles, schedule and resale terms (see EventConfig).
    /// @param tiers The initial tiers.
    /// @return ticketEvent Address of the new collection.
    function createEvent(EventConfig calldata config, TierConfig[] calldata tiers)
        external
        onlyRole(EVENT_CREATOR_ROLE)
        returns (address ticketEvent)
    {
        uint256 eventId = config.eventId;
        address existing = _existingEvent(eventId);
        if (existing != address(0)) revert EventAlreadyCreated(eventId, existing);
        ticketEvent = Clones.cloneDeterministic(implementation, bytes32(eventId));
        // Initialized in the creating transaction: nobody can initialize the clone before us.
        TicketEvent(ticketEvent).initialize(config, tiers);
        emit EventCreated(eventId, ticketEvent, config.organizer);
    }

    /// @notice The collection created for `eventId`, or the zero address if none.
    /// @param eventId The off-chain event id.
    /// @return The TicketEvent address.
    function eventAddress(uint256 eventId) external view returns (address) {
        return _existingEvent(eventId);
    }

    /// @notice Where the collection for `eventId` is (or will be) deployed.
    /// @param eventId The off-chain event id.
    /// @return The clone's CREATE2 address.
    function predictEventAddress(uint64 eventId) external view returns (address) {
        return Clones.predictDeterministicAddress(implementation, bytes32(uint256(eventId)));
    }

    function _existingEvent(uint256 eventId) private view returns (address) {
        address predicted = Clones.predictDeterministicAddress(implementation, bytes32(eventId));
        return predicted.code.length != 0 ? predicted : address(0);
    }
}
