// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TransparentUpgradeableProxy} from
    "@openzeppelin/contracts/proxy/transparent/TransparentUpgradeableProxy.sol";

/// @title UnlockProxy
/// @notice Benchmark only (bench/gas.py): the transparent proxy the Unlock contract runs behind,
/// as on mainnet. UnlockV13's `initialize` nests a second `initializer`, which its Initializable
/// allows only while the caller is being constructed, so Unlock can only be initialized through a
/// proxy's constructor (`data`).
contract UnlockProxy is TransparentUpgradeableProxy {
    /// @param logic The UnlockV13 implementation.
    /// @param initialOwner Owner of the ProxyAdmin this proxy creates.
    /// @param data The encoded `initialize(owner)` call, run in the proxy's context.
    constructor(address logic, address initialOwner, bytes memory data)
        payable
        TransparentUpgradeableProxy(logic, initialOwner, data)
    {}
}
